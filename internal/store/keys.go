package store

import "github.com/prismcache/prismcache/cache"

// Keys are the contract's keys (cache.Keys) and the daemon's own
// bookkeeping keys, under one prefix. It is a value and safe to share.
type Keys struct {
	cache.Keys
}

// NewKeys returns the keys under prefix.
func NewKeys(prefix string) Keys { return Keys{cache.NewKeys(prefix)} }

// InstanceDedup records a webhook body about one instance that was already
// applied. It shares the instance's hash tag, so the write script sets it in
// the same step as the effect.
func (k Keys) InstanceDedup(id, sum string) string { return k.Prefix() + "dedup:{" + id + "}:" + sum }

// ReconcileLease is held by the one replica whose reconciler is running.
func (k Keys) ReconcileLease() string { return k.Prefix() + "reconcile:lease" }

// Census holds the latest count of the entries by state; CensusLease is
// held by the one replica counting.
func (k Keys) Census() string      { return k.Prefix() + "census" }
func (k Keys) CensusLease() string { return k.Prefix() + "census:lease" }

// WorkShards records the work set's shard count.
func (k Keys) WorkShards() string { return k.Prefix() + "work:shards" }

// WorkWake is the channel on which new due work is announced to all
// replicas; WorkResults the one on which workers announce each run's
// outcome, for callers that wait on a refresh.
func (k Keys) WorkWake() string    { return k.Prefix() + "{work}:wake" }
func (k Keys) WorkResults() string { return k.Prefix() + "{work}:results" }
