package metrics

import (
	"context"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/server"
	"github.com/prismcache/prismcache/internal/webhook"
)

// Metrics holds the daemon's collectors. Build it with New; its methods are
// safe for concurrent use.
type Metrics struct {
	knownEvents map[string]bool

	webhooks        *prometheus.CounterVec
	webhookDuration *prometheus.HistogramVec
	fetches         *prometheus.CounterVec
	fetchDuration   prometheus.Histogram
	retries         prometheus.Counter
	apiRequests     *prometheus.CounterVec
	apiDuration     *prometheus.HistogramVec
	limiterWait     prometheus.Counter
	reconciles      *prometheus.CounterVec
	reconcileTime   prometheus.Histogram
	reconcileFound  *prometheus.CounterVec
	redisErrors     *prometheus.CounterVec
	repairs         *prometheus.CounterVec
	evictionUnsafe  prometheus.Gauge
}

// WorkStats reads the work set for the depth gauges at scrape time.
type WorkStats func(ctx context.Context) (refresh.Stats, error)

// Sources are read at every scrape. Nil ones leave their metrics out.
type Sources struct {
	// Work is the work set's size.
	Work WorkStats
	// RepairOwed reports whether this replica owes a repair pass.
	RepairOwed func() bool
	// Census reads the latest count of the cached entries by state.
	Census func(ctx context.Context) (*refresh.Counts, error)
}

// New registers every metric on reg. version labels prismcache_build_info.
func New(reg prometheus.Registerer, version string, src Sources) *Metrics {
	known := map[string]bool{}
	for typ := range webhook.DefaultActions() {
		known[typ] = true
	}
	m := &Metrics{
		knownEvents: known,
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prismcache_webhooks_total",
			Help: "Webhook deliveries by event type (known types, else \"other\") and outcome (accepted, ignored, duplicate, rejected, overloaded, unavailable).",
		}, []string{"event", "outcome"}),
		webhookDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prismcache_webhook_duration_seconds",
			Help:    "Time from a webhook's arrival to its answer, by outcome.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"outcome"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prismcache_fetches_total",
			Help: "Worker runs by outcome: refreshed, stale, deleted (wrote the entry), skipped (nothing to write), retry (failed, queued again with backoff), dropped (failed, and the work was moot: the instance is deleted or does not exist), resolved / unresolved (a connection or customer event that did / did not map to instances).",
		}, []string{"outcome"}),
		fetchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "prismcache_fetch_duration_seconds",
			Help:    "Duration of a worker run: fetching an instance (every page) and writing its entry.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prismcache_fetch_retries_total",
			Help: "Failed runs queued again with backoff.",
		}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prismcache_graphql_requests_total",
			Help: "GraphQL requests to Prismatic by operation and result (ok, transient, rate_limited, unauthorized, forbidden, not_found, invalid).",
		}, []string{"operation", "result"}),
		apiDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prismcache_graphql_request_duration_seconds",
			Help:    "Duration of GraphQL requests to Prismatic, rate-limiter wait included, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"operation"}),
		limiterWait: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prismcache_rate_limiter_wait_seconds_total",
			Help: "Time requests spent waiting for the GraphQL rate limiter (--prismatic-rate).",
		}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prismcache_reconcile_runs_total",
			Help: "Reconcile passes this replica ran, by result (ok, failed).",
		}, []string{"result"}),
		reconcileTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "prismcache_reconcile_duration_seconds",
			Help:    "Duration of a reconcile pass.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 14),
		}),
		reconcileFound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prismcache_reconcile_instances_total",
			Help: "What reconcile passes found: listed, written (missing or different in the cache, written from the page), queued (for a fetch: no page could settle them), removed (gone from Prismatic).",
		}, []string{"found"}),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prismcache_redis_errors_total",
			Help: "Redis operations that failed, by component (intake, worker, reconcile, admin).",
		}, []string{"component"}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prismcache_repairs_total",
			Help: "Reconcile passes this replica ran because events may have been lost, by reason (webhooks_refused, redis_lost, master_changed).",
		}, []string{"reason"}),
		evictionUnsafe: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "prismcache_redis_eviction_unsafe",
			Help: "1 when Redis's maxmemory-policy lets it evict keys (entries, tombstones, queued work), else 0.",
		}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "prismcache_build_info",
		Help: "Always 1; labels say which build runs.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	reg.MustRegister(m.webhooks, m.webhookDuration, m.fetches, m.fetchDuration, m.retries, m.apiRequests, m.apiDuration,
		m.limiterWait, m.reconciles, m.reconcileTime, m.reconcileFound, m.redisErrors,
		m.repairs, m.evictionUnsafe, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src.Work != nil {
		reg.MustRegister(&workCollector{stats: src.Work})
	}
	if src.Census != nil {
		reg.MustRegister(&censusCollector{read: src.Census})
	}
	if src.RepairOwed != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prismcache_repair_pending",
			Help: "1 while this replica owes a repair pass (it refused webhooks or lost Redis, and no pass has compared every instance since), else 0.",
		}, func() float64 {
			if src.RepairOwed() {
				return 1
			}
			return 0
		}))
	}
	for _, r := range []string{"webhooks_refused", "redis_lost", "master_changed"} {
		m.repairs.WithLabelValues(r)
	}
	for _, o := range []string{"accepted", "ignored", "duplicate", "rejected", "overloaded", "unavailable"} {
		m.webhooks.WithLabelValues("other", o)
		m.webhookDuration.WithLabelValues(o)
	}
	for _, c := range []string{"intake", "worker", "reconcile", "admin"} {
		m.redisErrors.WithLabelValues(c)
	}
	for _, r := range []string{"ok", "failed"} {
		m.reconciles.WithLabelValues(r)
	}
	for _, o := range []string{"refreshed", "stale", "deleted", "skipped", "retry", "dropped", "resolved", "unresolved"} {
		m.fetches.WithLabelValues(o)
	}
	return m
}

// Delivery records one webhook delivery (server.Intake.Observe).
func (m *Metrics) Delivery(d server.Delivery) {
	event := d.Event
	if !m.knownEvents[event] {
		event = "other"
	}
	m.webhooks.WithLabelValues(event, d.Outcome).Inc()
	m.webhookDuration.WithLabelValues(d.Outcome).Observe(d.Took.Seconds())
	if d.Outcome == "unavailable" {
		m.redisErrors.WithLabelValues("intake").Inc()
	}
}

// Result records one worker run (refresh.PoolOptions.OnResult).
func (m *Metrics) Result(r refresh.Result) {
	var outcome string
	switch {
	case refresh.IsJob(r.ID) && r.Error == "" && r.Skip != "":
		outcome = "unresolved" // a connection or customer that maps to no instance
	case refresh.IsJob(r.ID) && r.Error == "":
		outcome = "resolved"
	case r.Error != "" && r.Dropped:
		outcome = "dropped"
	case r.Error != "":
		outcome = "retry"
		m.retries.Inc()
	case r.Change != "":
		outcome = string(r.Change)
	default:
		outcome = "skipped"
	}
	m.fetches.WithLabelValues(outcome).Inc()
	if r.Took > 0 {
		m.fetchDuration.Observe(r.Took.Seconds())
	}
}

// APIRequest records one GraphQL request (graphql.Options.Observe).
func (m *Metrics) APIRequest(op string, took time.Duration, result string) {
	m.apiRequests.WithLabelValues(op, result).Inc()
	m.apiDuration.WithLabelValues(op).Observe(took.Seconds())
}

// LimiterWait records time spent waiting for the rate limiter.
func (m *Metrics) LimiterWait(d time.Duration) { m.limiterWait.Add(d.Seconds()) }

// Pass records one reconcile pass (refresh.LoopOptions.OnPass).
func (m *Metrics) Pass(rep refresh.Report, err error) {
	if err != nil {
		m.reconciles.WithLabelValues("failed").Inc()
		return
	}
	m.reconciles.WithLabelValues("ok").Inc()
	m.reconcileTime.Observe(rep.Took.Seconds())
	m.reconcileFound.WithLabelValues("listed").Add(float64(rep.Listed))
	m.reconcileFound.WithLabelValues("written").Add(float64(rep.Written))
	m.reconcileFound.WithLabelValues("queued").Add(float64(rep.Queued))
	m.reconcileFound.WithLabelValues("removed").Add(float64(rep.Removed))
}

// Repair counts a repair pass this replica ran, by why it was owed.
func (m *Metrics) Repair(reason string) { m.repairs.WithLabelValues(reason).Inc() }

// EvictionUnsafe records whether Redis may evict keys.
func (m *Metrics) EvictionUnsafe(unsafe bool) {
	v := 0.0
	if unsafe {
		v = 1
	}
	m.evictionUnsafe.Set(v)
}

// RedisError counts a failed Redis operation of a component.
func (m *Metrics) RedisError(component string) { m.redisErrors.WithLabelValues(component).Inc() }

// workCollector reads the work set at scrape time.
type workCollector struct {
	stats WorkStats
}

var (
	workQueuedDesc = prometheus.NewDesc("prismcache_work_queued", "Instances (and jobs) queued in the work set, due now or later.", nil, nil)
	workDueDesc    = prometheus.NewDesc("prismcache_work_due", "Queued work that is due now.", nil, nil)
	workLeasedDesc = prometheus.NewDesc("prismcache_work_in_flight", "Work claimed by a worker of any replica.", nil, nil)
	workAgeDesc    = prometheus.NewDesc("prismcache_work_oldest_due_age_seconds", "How long the oldest due item has been waiting (0 when none is due).", nil, nil)
	workFailDesc   = prometheus.NewDesc("prismcache_work_failing", "Queued work that failed at least once since its last success (retried with backoff until it succeeds).", nil, nil)
	workFFDesc     = prometheus.NewDesc("prismcache_entries_fetch_failed", "Work that failed often enough (--max-attempts) that its entry says fetch_failed.", nil, nil)
	workShardDesc  = prometheus.NewDesc("prismcache_work_shards_unreachable", "Work-set shards Redis did not answer for at the last scrape.", nil, nil)
)

func (c *workCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- workQueuedDesc
	ch <- workDueDesc
	ch <- workLeasedDesc
	ch <- workAgeDesc
	ch <- workFailDesc
	ch <- workFFDesc
	ch <- workShardDesc
}

func (c *workCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := c.stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(workQueuedDesc, err)
		return
	}
	age := 0.0
	if s.Due > 0 && !s.OldestDue.IsZero() {
		age = max(0, time.Since(s.OldestDue).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(workQueuedDesc, prometheus.GaugeValue, float64(s.Queued))
	ch <- prometheus.MustNewConstMetric(workDueDesc, prometheus.GaugeValue, float64(s.Due))
	ch <- prometheus.MustNewConstMetric(workLeasedDesc, prometheus.GaugeValue, float64(s.Leased))
	ch <- prometheus.MustNewConstMetric(workAgeDesc, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(workFailDesc, prometheus.GaugeValue, float64(s.Failing))
	ch <- prometheus.MustNewConstMetric(workFFDesc, prometheus.GaugeValue, float64(s.Failed))
	ch <- prometheus.MustNewConstMetric(workShardDesc, prometheus.GaugeValue, float64(len(s.Unreachable)))
}

// IntakeStats reads the webhook intake's guards at scrape time.
type IntakeStats func() server.IntakeStats

// RegisterIntake exports the intake's memory budget, what it cut and
// refused, the refused requests left out of the log, and whether webhook
// signatures are checked at all.
func RegisterIntake(reg prometheus.Registerer, stats IntakeStats, insecure bool) {
	b := func(f func(server.IntakeStats) float64) func() float64 {
		return func() float64 { return f(stats()) }
	}
	insecureValue := 0.0
	if insecure {
		insecureValue = 1
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prismcache_intake_inflight_bytes",
			Help: "Webhook body bytes reserved now (--intake-max-bytes bounds it).",
		}, b(func(s server.IntakeStats) float64 { return float64(s.Budget.Bytes) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prismcache_intake_inflight_bytes_peak",
			Help: "The most webhook body bytes ever reserved at once by this process.",
		}, b(func(s server.IntakeStats) float64 { return float64(s.Budget.PeakBytes) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prismcache_intake_max_bytes",
			Help: "The budget of webhook body bytes in flight (--intake-max-bytes).",
		}, b(func(s server.IntakeStats) float64 { return float64(s.Budget.MaxBytes) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prismcache_intake_inflight_requests",
			Help: "Webhook requests holding room in the budget now (--intake-max-requests bounds it).",
		}, b(func(s server.IntakeStats) float64 { return float64(s.Budget.Requests) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "prismcache_intake_bodies_cut_total",
			Help: "Webhook bodies still arriving that were cut, and answered 503, to make room for newer requests.",
		}, b(func(s server.IntakeStats) float64 { return float64(s.Budget.Shed) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "prismcache_intake_refused_total",
			Help: "Webhook requests answered 503 at once because no room could be made for their bodies.",
		}, b(func(s server.IntakeStats) float64 { return float64(s.Budget.Refused) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "prismcache_log_lines_suppressed_total",
			Help: "Log lines of refused webhook requests left out to keep the log from flooding (one is written per interval, with the count).",
		}, b(func(s server.IntakeStats) float64 { return float64(s.LogsSuppressed) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prismcache_insecure_skip_signature",
			Help: "1 when webhook signatures are not checked (--insecure-skip-signature): anyone who reaches the endpoint can change the cache.",
		}, func() float64 { return insecureValue }),
	)
}

// censusCollector reads the latest census at scrape time.
type censusCollector struct {
	read func(ctx context.Context) (*refresh.Counts, error)
}

var (
	entriesDesc     = prometheus.NewDesc("prismcache_entries", "Cached entries by state (fresh, stale, error = fetch_failed), as the latest census of any replica counted them (every 30s).", []string{"state"}, nil)
	oldestFetchDesc = prometheus.NewDesc("prismcache_oldest_entry_age_seconds", "Age of the least recently fetched entry, as of the latest census.", nil, nil)
	censusAgeDesc   = prometheus.NewDesc("prismcache_census_age_seconds", "How long ago the latest census of the entries ended.", nil, nil)
)

func (c *censusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- entriesDesc
	ch <- oldestFetchDesc
	ch <- censusAgeDesc
}

func (c *censusCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(entriesDesc, err)
		return
	}
	if counts == nil {
		return // no census yet
	}
	ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.GaugeValue, float64(counts.Fresh), "fresh")
	ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.GaugeValue, float64(counts.Stale), "stale")
	ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.GaugeValue, float64(counts.FetchFailed), "error")
	if !counts.OldestFetch.IsZero() {
		ch <- prometheus.MustNewConstMetric(oldestFetchDesc, prometheus.GaugeValue, time.Since(counts.OldestFetch).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(censusAgeDesc, prometheus.GaugeValue, time.Since(counts.At).Seconds())
}
