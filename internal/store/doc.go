// Package store writes prismcache's Redis contract (the keys and entries
// the public cache package describes): every write of an entry is a
// compare-and-set on its rev, done by one script in the instance's slot,
// that refuses to write over a tombstone, marks the webhook body it applies
// and publishes the change. It also reads what the daemon's own decisions
// need, and holds the daemon's bookkeeping keys. Apps read the contract
// through the cache package; nothing here is for them.
package store
