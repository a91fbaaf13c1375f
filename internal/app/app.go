package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/metrics"
	"github.com/prismcache/prismcache/internal/ratelimit"
	"github.com/prismcache/prismcache/internal/redisbatch"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/retry"
	"github.com/prismcache/prismcache/internal/server"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/webhook"
)

// App is one running daemon. Fill in its fields, call Start, and Close it.
type App struct {
	// Config must be valid (Config.Validate).
	Config config.Config
	// Version is reported in /status and prismcache_build_info.
	Version string
	// Log receives the daemon's log lines; discarded if nil.
	Log *slog.Logger
	// Redis, when set, is used instead of a client opened from
	// Config.RedisURL; the caller keeps ownership of it, and batching its
	// commands (--redis-batching) is the caller's to install: Batcher.
	Redis redis.UniversalClient
	// Batcher, with Redis, is the batcher the caller installed on it, if any
	// (its counts are exported); with a client of the App's own, the App
	// installs one when Config.RedisBatching says so and sets it here.
	Batcher *redisbatch.Batcher
	// Listener, when set, is served instead of listening on Config.Listen.
	Listener net.Listener
	// AdminListener, when set, serves /metrics, /status and /v1 instead of
	// a listener on Config.AdminListen; Listener then serves only the
	// webhook route and health checks.
	AdminListener net.Listener
	// HTTPClient, when set, carries the GraphQL requests.
	HTTPClient *http.Client
	// Registry, when set, receives the metrics (a fresh registry if nil).
	Registry *prometheus.Registry
	// OnDelivery and OnResult, when set, are told of every webhook delivery
	// and every worker run (prismcache dev prints them).
	OnDelivery func(server.Delivery)
	OnResult   func(refresh.Result)

	rdb      redis.UniversalClient
	ownRedis bool
	store    *store.Store
	work     *refresh.WorkSet
	api      *graphql.Client
	limiter  *ratelimit.Shared
	pool     *refresh.Pool
	waiters  *refresh.Waiters
	srv      *server.Server
	adminSrv *server.Server // nil when the admin routes share srv
	recon    *refresh.Reconciler
	census   *refresh.Census
	metrics  *metrics.Metrics
	health   *health

	bg       sync.WaitGroup
	bgCtx    context.Context
	cancel   context.CancelFunc
	resyncMu sync.Mutex
	resyncOn bool
	insecure bool // webhook signatures are not checked
}

// insecureWarning is logged at start-up and every insecureWarnEvery while
// webhook signatures are not checked.
const (
	insecureWarning   = "webhook signatures are NOT checked (--insecure-skip-signature): anyone who can reach the daemon can change the cache"
	insecureWarnEvery = 10 * time.Minute
)

// warnInsecure repeats the insecure-mode warning until ctx ends, so that it
// is in every window of the log anyone looks at.
func (a *App) warnInsecure(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.log().Warn(insecureWarning)
		}
	}
}

func (a *App) log() *slog.Logger {
	if a.Log == nil {
		a.Log = slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// Start connects to Redis, starts the workers, the reconciler and the HTTP
// server. It returns once the daemon serves.
func (a *App) Start(ctx context.Context) error {
	cfg := a.Config
	if err := cfg.Validate(); err != nil {
		return err
	}
	actions, err := cfg.Actions()
	if err != nil {
		return err
	}
	log := a.log()
	if a.Version == "" {
		a.Version = "dev"
	}
	if a.Registry == nil {
		a.Registry = prometheus.NewRegistry()
	}
	a.health = newHealth(time.Now)
	a.rdb = a.Redis
	if a.rdb == nil {
		if a.rdb, err = OpenRedis(cfg.RedisURL); err != nil {
			return err
		}
		a.ownRedis = true
		if c, ok := a.rdb.(*redis.Client); ok {
			watchServer(c, a.masterChanged)
		}
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.rdb.Ping(pingCtx).Err(); err != nil {
		a.closeRedis()
		return fmt.Errorf("redis at %s does not answer: %w", redactURL(cfg.RedisURL), err)
	}
	switch {
	case a.ownRedis && cfg.RedisBatching:
		a.Batcher = redisbatch.Install(a.rdb)
		registerBatchMetrics(a.Registry, a.Batcher)
	case a.Batcher != nil:
		registerBatchMetrics(a.Registry, a.Batcher)
	}
	a.store = store.New(a.rdb, store.Options{Prefix: cfg.RedisPrefix, TombstoneTTL: cfg.TombstoneTTL, HistoryDepth: cfg.HistoryDepth})
	shards, changed, err := refresh.RecordedShards(pingCtx, a.rdb, a.store.Keys(), cfg.WorkShards)
	if err != nil {
		a.closeRedis()
		return err
	}
	if changed {
		log.Warn("this Redis's work set has another shard count than --work-shards; following the Redis (see docs/operations.md to change it)",
			"work_shards", cfg.WorkShards, "recorded", shards)
	}
	a.work = refresh.NewWorkSet(a.rdb, a.store.Keys(), refresh.WorkSetOptions{Lease: cfg.WorkLease, Shards: shards, FailedAfter: cfg.MaxAttempts})
	a.recon = &refresh.Reconciler{Store: a.store, Work: a.work, Log: log}
	a.census = &refresh.Census{Store: a.store, Log: log}
	a.metrics = metrics.New(a.Registry, a.Version, metrics.Sources{
		Work:       a.work.Stats,
		RepairOwed: func() bool { return a.recon.Owed() != nil },
		Census:     a.census.Read,
	})

	// --prismatic-rate is the organisation's: every replica reserves its
	// requests in one limit kept in Redis.
	if a.limiter, err = ratelimit.New(a.rdb, ratelimit.Options{Rate: cfg.PrismaticRate, Prefix: cfg.RedisPrefix, Log: log}); err == nil {
		err = a.limiter.Start(pingCtx)
	}
	if err != nil {
		a.closeRedis()
		return err
	}
	registerLimiterMetrics(a.Registry, a.limiter)
	a.api, err = graphql.New(graphql.Options{
		URL: cfg.PrismaticURL, Token: cfg.PrismaticToken, RefreshToken: cfg.PrismaticRefreshToken,
		TenantID: cfg.PrismaticTenantID, Timeout: cfg.PrismaticTimeout, HTTPClient: a.HTTPClient,
		Limiter: a.limiter,
		Observe: func(op string, took time.Duration, err error) {
			result := "ok"
			if err != nil {
				result = graphql.KindOf(err).String()
			}
			a.metrics.APIRequest(op, took, result)
			a.health.apiResult(err)
		},
		ObserveWait: a.metrics.LimiterWait,
	})
	if err != nil {
		a.closeRedis()
		return err
	}
	a.recon.API = a.api
	a.pool = refresh.NewPool(a.work, a.store, a.api, refresh.PoolOptions{
		Workers: cfg.Workers, FailedAfter: cfg.MaxAttempts, Logger: log,
		Retry:        retry.Policy{Base: refresh.DefaultRetryBase, Cap: cfg.RetryMax},
		Resolver:     refresh.IndexResolver{Store: a.store, API: a.api},
		OnRedisError: func(err error) { a.redisFailed("worker", err) },
		OnResult: func(r refresh.Result) {
			a.metrics.Result(r)
			if a.OnResult != nil {
				a.OnResult(r)
			}
		},
	})
	a.waiters = refresh.NewWaiters(a.rdb, a.store.Keys(), log)
	if err := a.waiters.Start(ctx); err != nil {
		a.closeRedis()
		return err
	}
	if err := a.pool.Start(ctx); err != nil {
		_ = a.waiters.Close()
		a.closeRedis()
		return err
	}
	intake := &server.Intake{
		Verifier:         webhook.NewVerifier(cfg.WebhookSecrets...),
		Actions:          actions,
		Store:            a.store,
		Work:             a.work,
		Log:              log,
		MaxBody:          int64(cfg.MaxBody),
		DedupWindow:      cfg.DedupWindow,
		TimestampWindow:  cfg.TimestampWindow,
		MaxClockSkew:     cfg.MaxClockSkew,
		MaxInFlightBytes: int64(cfg.IntakeMaxBytes),
		MaxInFlight:      cfg.IntakeMaxRequests,
		BodyStall:        cfg.BodyStallTimeout,
		Wake:             a.pool.Wake,
		Observe: func(d server.Delivery) {
			a.metrics.Delivery(d)
			if d.Outcome == "unavailable" {
				// A signed webhook refused through our fault: the sender
				// may give up before it retries, so assume the event is
				// lost and repair as soon as Redis answers. (Bodies cut
				// unverified under a flood do not count: else anyone could
				// make the daemon spend the API quota on passes.)
				a.recon.Owe(refresh.RepairRefused, time.Now())
			}
			if a.OnDelivery != nil {
				a.OnDelivery(d)
			}
		},
	}
	a.insecure = !intake.Verifier.Enabled()
	metrics.RegisterIntake(a.Registry, intake.Stats, a.insecure)
	if a.insecure {
		log.Warn(insecureWarning)
	}
	exec := refresh.Executor{Store: a.store, Work: a.work}
	req := refresh.Requester{Exec: exec, Waiters: a.waiters}
	admin := &server.Admin{
		Token: cfg.AdminToken, Store: a.store, Refresh: req.Refresh, Log: log,
		Queue: func(ctx context.Context, id string) error {
			_, err := exec.Execute(ctx, webhook.FetchPlan(id), nil, refresh.Once{})
			return err
		},
		Resync:       a.startResync,
		OnRedisError: func(err error) { a.redisFailed("admin", err) },
	}
	for _, w := range cfg.Warnings() {
		log.Warn(w.Msg, w.Attrs...)
	}
	if err := a.openServers(server.Options{
		Intake: intake, Admin: admin, Log: log,
		Ready:   a.ready,
		Status:  a.status,
		Metrics: promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{Registry: a.Registry}),
	}); err != nil {
		_ = a.pool.Close(ctx)
		_ = a.waiters.Close()
		a.closeRedis()
		return err
	}
	bgCtx, bgCancel := context.WithCancel(context.WithoutCancel(ctx))
	a.bgCtx, a.cancel = bgCtx, bgCancel
	if a.insecure {
		a.bg.Add(1)
		go func() {
			defer a.bg.Done()
			a.warnInsecure(bgCtx, insecureWarnEvery)
		}()
	}
	a.bg.Add(4)
	go func() {
		defer a.bg.Done()
		a.census.Run(bgCtx)
	}()
	go func() {
		defer a.bg.Done()
		a.recon.Run(bgCtx, refresh.LoopOptions{
			Interval: cfg.ResyncInterval,
			OnPass:   a.passDone,
			OnRedis:  a.health.redisResult,
		})
	}()
	go func() {
		defer a.bg.Done()
		a.probeAPI(bgCtx)
	}()
	go func() {
		defer a.bg.Done()
		a.watchEviction(bgCtx)
	}()
	log.Info("prismcache started", "version", a.Version, "listen", a.srv.Addr(), "admin_listen", a.AdminAddr(), "prefix", cfg.RedisPrefix,
		"prismatic", a.api.Endpoint(), "workers", cfg.Workers, "rate", cfg.PrismaticRate)
	return nil
}

// startResync starts a pass that queues every instance, unless one runs.
func (a *App) startResync(ctx context.Context) error {
	a.resyncMu.Lock()
	defer a.resyncMu.Unlock()
	if a.resyncOn {
		return server.ErrBusy
	}
	// A pass running on any replica would be cut short by another one
	// starting (each records its own token in the sync marker): refuse.
	if busy, err := a.recon.Busy(ctx); err != nil || busy {
		if err != nil {
			return err
		}
		return server.ErrBusy
	}
	a.resyncOn = true
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		defer func() { a.resyncMu.Lock(); a.resyncOn = false; a.resyncMu.Unlock() }()
		r := &refresh.Reconciler{API: a.recon.API, Store: a.recon.Store, Work: a.recon.Work, Log: a.recon.Log, Force: true}
		ran, rep, err := r.RunExclusive(a.bgCtx, 0)
		switch {
		case !ran:
			a.log().Warn("resync not run: another replica started a pass first")
		default:
			a.passDone(rep, err, "")
			if err != nil {
				a.log().Error("resync failed", "err", err)
			}
		}
	}()
	return nil
}

// passDone records a reconcile pass, and the repair it made if it paid
// one; a failure that is not the API's is Redis's.
func (a *App) passDone(rep refresh.Report, err error, repair string) {
	a.metrics.Pass(rep, err)
	a.census.Poke()
	if repair != "" {
		a.metrics.Repair(repair)
		a.log().Info("repair done: every instance compared with Prismatic after events may have been lost", "reason", repair,
			"queued", rep.Queued, "listed", rep.Listed)
	}
	a.health.pass(rep, err)
	var apiErr *graphql.Error
	if err != nil && !errors.As(err, &apiErr) && !errors.Is(err, refresh.ErrPassLost) && !errors.Is(err, context.Canceled) {
		a.metrics.RedisError("reconcile")
	}
}

// redisFailed records a failed Redis operation of a component: Redis may
// have lost events meanwhile, so a repair is owed.
func (a *App) redisFailed(component string, err error) {
	a.metrics.RedisError(component)
	a.health.redisResult(err)
	a.recon.Owe(refresh.RepairRedisLost, time.Now())
}

// Addr returns the address the HTTP server listens on.
func (a *App) Addr() string { return a.srv.Addr() }

// URL returns the daemon's base URL.
func (a *App) URL() string { return "http://" + a.Addr() }

// WorkStats reads the size of the work set.
func (a *App) WorkStats(ctx context.Context) (refresh.Stats, error) { return a.work.Stats(ctx) }

// Store returns the daemon's store.
func (a *App) Store() *store.Store { return a.store }

// Close shuts down in order: stop taking webhooks, let fetches in flight
// finish until ctx ends (then hand their ids back), stop the rest.
func (a *App) Close(ctx context.Context) error {
	var errs []error
	if a.srv != nil {
		errs = append(errs, a.srv.Close(ctx), a.closeAdminServer(ctx))
	}
	if a.cancel != nil {
		a.cancel()
		a.bg.Wait()
	}
	if a.pool != nil {
		errs = append(errs, a.pool.Close(ctx))
	}
	if a.waiters != nil {
		errs = append(errs, a.waiters.Close())
	}
	a.closeRedis()
	return errors.Join(errs...)
}

func (a *App) closeRedis() {
	if a.limiter != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = a.limiter.Close(ctx)
		cancel()
		a.limiter = nil
	}
	if a.ownRedis && a.rdb != nil {
		_ = a.rdb.Close()
		a.rdb = nil
	}
}

// registerLimiterMetrics exports the state of the shared API rate limit.
func registerLimiterMetrics(reg prometheus.Registerer, l *ratelimit.Shared) {
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prismcache_api_rate_replicas",
			Help: "Replicas sharing --prismatic-rate, as this replica last counted them.",
		}, func() float64 { return float64(l.Replicas()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prismcache_api_rate_fallback",
			Help: "1 while this replica cannot reach the shared rate limit in Redis and paces itself at its share (--prismatic-rate / replicas).",
		}, func() float64 {
			if l.Fallback() {
				return 1
			}
			return 0
		}),
	} {
		if err := reg.Register(c); err != nil {
			var dup prometheus.AlreadyRegisteredError
			if !errors.As(err, &dup) {
				panic(err)
			}
		}
	}
}

// registerBatchMetrics exports what the Redis batcher did. A client shared
// by several Apps (tests) has one batcher; it is registered once per
// registry.
func registerBatchMetrics(reg prometheus.Registerer, b *redisbatch.Batcher) {
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "prismcache_redis_pipelines_total",
			Help: "Pipelines the daemon sent to Redis batching single commands (--redis-batching).",
		}, func() float64 { return float64(b.Stats().Pipelines) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "prismcache_redis_batched_commands_total",
			Help: "Commands those pipelines carried; divided by prismcache_redis_pipelines_total, the mean batch.",
		}, func() float64 { return float64(b.Stats().Commands) }),
	} {
		if err := reg.Register(c); err != nil {
			var dup prometheus.AlreadyRegisteredError
			if !errors.As(err, &dup) {
				panic(err)
			}
		}
	}
}
