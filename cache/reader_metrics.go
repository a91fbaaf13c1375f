package cache

import (
	"sync/atomic"
)

// ReaderStats are a Reader's counters since it was created (the numbers
// the cacheprom package exports as prismcache_reader_* metrics).
type ReaderStats struct {
	Hits         uint64 // Gets (and lookup rows) answered by the tier with an entry
	NegativeHits uint64 // … answered by the tier with a remembered "not found"
	Misses       uint64 // … that went to Redis
	// Invalidations counts ids dropped because of an event;
	// InvalidationsByChange splits them by the change announced
	// (refreshed, stale, enabled, deleted, other).
	Invalidations         uint64
	InvalidationsByChange map[string]uint64
	// Flushes counts whole-tier flushes; FlushesByReason splits them by why:
	// the subscription dropped (disconnected), came back (reconnected),
	// carried a message that could not be read (bad_message), or the
	// sentinels switched masters (failover).
	Flushes         uint64
	FlushesByReason map[string]uint64
	// RedisErrors counts failed Redis reads and subscription failures;
	// RedisErrorsByOp splits them by operation (get, lookup, subscribe).
	RedisErrors     uint64
	RedisErrorsByOp map[string]uint64
	// Degraded counts Gets answered with the last known entry because Redis
	// could not answer (ServeLastKnown).
	Degraded uint64
	// Subscribed reports whether the subscription to the events channel is
	// live, i.e. whether the tier may serve hits.
	Subscribed bool
}

// Stats returns the Reader's counters.
func (r *Reader) Stats() ReaderStats {
	s := ReaderStats{
		Hits: r.stats.hits.Load(), NegativeHits: r.stats.negativeHits.Load(),
		Misses: r.stats.misses.Load(), Degraded: r.stats.degraded.Load(),
		Subscribed:            r.epoch.Load()&1 == 1,
		InvalidationsByChange: make(map[string]uint64, len(changeNames)),
		FlushesByReason:       make(map[string]uint64, len(flushReasonNames)),
		RedisErrorsByOp:       make(map[string]uint64, len(redisOpNames)),
	}
	for i, name := range changeNames {
		n := r.stats.invalidations[i].Load()
		s.Invalidations += n
		s.InvalidationsByChange[name] = n
	}
	for i, name := range flushReasonNames {
		n := r.stats.flushes[i].Load()
		s.Flushes += n
		s.FlushesByReason[name] = n
	}
	for i, name := range redisOpNames {
		n := r.stats.redisErrors[i].Load()
		s.RedisErrors += n
		s.RedisErrorsByOp[name] = n
	}
	return s
}

// Label values of the counters: small fixed sets, so the metrics' cardinality
// is bounded whatever arrives on the channel.
type flushReason int

const (
	flushDisconnected flushReason = iota
	flushReconnected
	flushBadMessage
	flushFailover
	numFlushReasons
)

var flushReasonNames = [numFlushReasons]string{"disconnected", "reconnected", "bad_message", "failover"}

type redisOp int

const (
	opGet redisOp = iota
	opLookup
	opSubscribe
	numRedisOps
)

var redisOpNames = [numRedisOps]string{"get", "lookup", "subscribe"}

// changeNames are the label values of invalidations; the last one counts
// changes this version does not know.
var changeNames = [...]string{string(ChangeRefreshed), string(ChangeStale), string(ChangeEnabled), string(ChangeDeleted), "other"}

func changeIndex(c Change) int {
	switch c {
	case ChangeRefreshed:
		return 0
	case ChangeStale:
		return 1
	case ChangeEnabled:
		return 2
	case ChangeDeleted:
		return 3
	}
	return 4
}

// readerCounters are plain atomics, so that counting costs a hit one atomic
// add; Stats reads them.
type readerCounters struct {
	hits, negativeHits, misses, degraded atomic.Uint64
	invalidations                        [len(changeNames)]atomic.Uint64
	flushes                              [numFlushReasons]atomic.Uint64
	redisErrors                          [numRedisOps]atomic.Uint64
}
