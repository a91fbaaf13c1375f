// Package cacheprom exports a cache.Reader's counters as Prometheus
// metrics (prismcache_reader_*). It is apart from the cache package so that
// apps that read the cache without Prometheus do not import it.
package cacheprom

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prismcache/prismcache/cache"
)

// Collector exports one Reader's counters; register one per Reader (wrap the
// registerer, e.g. with prometheus.WrapRegistererWith, to tell several
// Readers of one process apart). It reads the counters when scraped and is
// safe for concurrent use.
type Collector struct {
	r                                                                   *cache.Reader
	hits, misses, invalidations, flushes, redisErrors, degraded, subbed *prometheus.Desc
}

// New returns the collector of r.
func New(r *cache.Reader) *Collector {
	return &Collector{
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

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.invalidations, c.flushes, c.redisErrors, c.degraded, c.subbed} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.r.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.hits, s.Hits, "entry")
	counter(c.hits, s.NegativeHits, "not_found")
	counter(c.misses, s.Misses)
	for _, k := range sorted(s.InvalidationsByChange) {
		counter(c.invalidations, s.InvalidationsByChange[k], k)
	}
	for _, k := range sorted(s.FlushesByReason) {
		counter(c.flushes, s.FlushesByReason[k], k)
	}
	for _, k := range sorted(s.RedisErrorsByOp) {
		counter(c.redisErrors, s.RedisErrorsByOp[k], k)
	}
	counter(c.degraded, s.Degraded)
	subscribed := 0.0
	if s.Subscribed {
		subscribed = 1
	}
	ch <- prometheus.MustNewConstMetric(c.subbed, prometheus.GaugeValue, subscribed)
}

func sorted(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
