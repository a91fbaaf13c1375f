// Package cache is prismcache's Redis contract: the keys, the fields of an
// instance entry and the JSON document it holds, the writer (Store) that the
// daemon uses, and the types that apps read.
//
// The contract is public and versioned: apps in any language read these keys
// directly (docs/redis.md describes them), and Go apps read them through this
// package. Everything here is safe for concurrent use unless a comment says
// otherwise.
package cache
