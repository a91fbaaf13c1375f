package cache

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// ReaderStats are a Reader's counters since it was created, the same numbers
// its metrics export.
type ReaderStats struct {
	Hits         uint64 // Gets (and lookup rows) answered by the tier with an entry
	NegativeHits uint64 // … answered by the tier with a remembered "not found"
	Misses       uint64 // … that went to Redis
	// Invalidations counts ids dropped because of an event.
	Invalidations uint64
	// Flushes counts whole-tier flushes: the subscription dropped, came
	// back, or carried a message that could not be read, or the sentinels
	// switched masters.
	Flushes uint64
	// RedisErrors counts failed Redis reads and subscription failures.
	RedisErrors uint64
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
		Subscribed: r.epoch.Load()&1 == 1,
	}
	for i := range r.stats.invalidations {
		s.Invalidations += r.stats.invalidations[i].Load()
	}
	for i := range r.stats.flushes {
		s.Flushes += r.stats.flushes[i].Load()
	}
	for i := range r.stats.redisErrors {
		s.RedisErrors += r.stats.redisErrors[i].Load()
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
// add whether or not metrics are registered; the collector reads them when
// scraped.
type readerCounters struct {
	hits, negativeHits, misses, degraded atomic.Uint64
	invalidations                        [len(changeNames)]atomic.Uint64
	flushes                              [numFlushReasons]atomic.Uint64
	redisErrors                          [numRedisOps]atomic.Uint64
}

// readerCollector exports a Reader's counters as prismcache_reader_* metrics.
type readerCollector struct {
	r                                                                   *Reader
	hits, misses, invalidations, flushes, redisErrors, degraded, subbed *prometheus.Desc
}

func newReaderCollector(r *Reader) *readerCollector {
	return &readerCollector{
		r: r,
		hits: prometheus.NewDesc("prismcache_reader_hits_total",
			"Reads answered by the in-process tier, by result (entry or not_found).", []string{"result"}, nil),
		misses: prometheus.NewDesc("prismcache_reader_misses_total",
			"Reads the in-process tier could not answer, which went to Redis.", nil, nil),
		invalidations: prometheus.NewDesc("prismcache_reader_invalidations_total",
			"Ids dropped from the in-process tier because of an event, by change.", []string{"change"}, nil),
		flushes: prometheus.NewDesc("prismcache_reader_flushes_total",
			"Whole-tier flushes, by reason (disconnected, reconnected, bad_message, failover).", []string{"reason"}, nil),
		redisErrors: prometheus.NewDesc("prismcache_reader_redis_errors_total",
			"Failed Redis reads and subscriptions, by operation (get, lookup, subscribe).", []string{"op"}, nil),
		degraded: prometheus.NewDesc("prismcache_reader_degraded_total",
			"Reads answered with the last known entry because Redis could not answer.", nil, nil),
		subbed: prometheus.NewDesc("prismcache_reader_subscribed",
			"1 while the subscription to the events channel is live and the tier may serve hits.", nil, nil),
	}
}

func (c *readerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.invalidations, c.flushes, c.redisErrors, c.degraded, c.subbed} {
		ch <- d
	}
}

func (c *readerCollector) Collect(ch chan<- prometheus.Metric) {
	s := &c.r.stats
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.hits, s.hits.Load(), "entry")
	counter(c.hits, s.negativeHits.Load(), "not_found")
	counter(c.misses, s.misses.Load())
	for i, name := range changeNames {
		counter(c.invalidations, s.invalidations[i].Load(), name)
	}
	for i, name := range flushReasonNames {
		counter(c.flushes, s.flushes[i].Load(), name)
	}
	for i, name := range redisOpNames {
		counter(c.redisErrors, s.redisErrors[i].Load(), name)
	}
	counter(c.degraded, s.degraded.Load())
	subscribed := 0.0
	if c.r.epoch.Load()&1 == 1 {
		subscribed = 1
	}
	ch <- prometheus.MustNewConstMetric(c.subbed, prometheus.GaugeValue, subscribed)
}
