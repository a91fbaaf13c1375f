// Package cache is prismcache's Redis contract for the apps that read it:
// the key layout (Keys), the entry hash and the JSON document it holds
// (Entry, Doc), the change feed's message (Message), and the ways to read
// them — Reader, with an in-process tier kept correct by the change feed
// and Watch to follow one instance's changes key by key, and Direct, one
// round trip per call. ChangedKeys is the rule for which config keys a
// refresh changed. The daemon writes the contract; this
// package only reads it.
//
// The contract is public and versioned: apps in any language read these keys
// directly (docs/redis.md describes them), and Go apps read them through this
// package (docs/reader.md). Everything here is safe for concurrent use unless
// a comment says otherwise. Prometheus metrics of a Reader are in the
// cacheprom sub-package, so that this package does not import Prometheus.
package cache
