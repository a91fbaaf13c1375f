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

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/server"
	"github.com/prismcache/prismcache/internal/webhook"
)

// App is one running daemon. Fill in its fields, call Start, and Close it.
type App struct {
	// Config must be valid (Config.Validate).
	Config config.Config
	// Log receives the daemon's log lines; discarded if nil.
	Log *slog.Logger
	// Redis, when set, is used instead of a client opened from
	// Config.RedisURL; the caller keeps ownership of it.
	Redis redis.UniversalClient
	// Listener, when set, is served instead of listening on Config.Listen.
	Listener net.Listener
	// HTTPClient, when set, carries the GraphQL requests.
	HTTPClient *http.Client
	// OnDelivery and OnResult, when set, are told of every webhook delivery
	// and every worker run (prismcache dev prints them).
	OnDelivery func(server.Delivery)
	OnResult   func(refresh.Result)

	rdb      redis.UniversalClient
	ownRedis bool
	store    *cache.Store
	work     *refresh.WorkSet
	api      *graphql.Client
	pool     *refresh.Pool
	waiters  *refresh.Waiters
	srv      *server.Server
	recon    *refresh.Reconciler

	bg     sync.WaitGroup
	cancel context.CancelFunc
}

func (a *App) log() *slog.Logger {
	if a.Log == nil {
		a.Log = slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// Start connects to Redis, starts the workers and the HTTP server, and, when
// the sync marker is missing, a first full sync in the background.
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
	a.rdb = a.Redis
	if a.rdb == nil {
		if a.rdb, err = OpenRedis(cfg.RedisURL); err != nil {
			return err
		}
		a.ownRedis = true
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.rdb.Ping(pingCtx).Err(); err != nil {
		a.closeRedis()
		return fmt.Errorf("redis does not answer: %w", err)
	}
	a.store = cache.NewStore(a.rdb, cache.StoreOptions{Prefix: cfg.RedisPrefix, TombstoneTTL: cfg.TombstoneTTL})
	a.work = refresh.NewWorkSet(a.rdb, a.store.Keys(), refresh.WorkSetOptions{})
	a.api, err = graphql.New(graphql.Options{
		URL: cfg.PrismaticURL, Token: cfg.PrismaticToken, RefreshToken: cfg.PrismaticRefreshToken,
		TenantID: cfg.PrismaticTenantID, Timeout: cfg.PrismaticTimeout, HTTPClient: a.HTTPClient,
		Limiter: rate.NewLimiter(rate.Limit(cfg.PrismaticRate), max(1, int(cfg.PrismaticRate))),
	})
	if err != nil {
		a.closeRedis()
		return err
	}
	a.pool = refresh.NewPool(a.work, a.store, a.api, refresh.PoolOptions{
		Workers: cfg.Workers, MaxAttempts: cfg.MaxAttempts, Logger: log, OnResult: a.OnResult,
		Resolver: refresh.IndexResolver{Store: a.store, API: a.api},
	})
	a.waiters = refresh.NewWaiters(a.rdb, a.store.Keys(), log)
	a.recon = &refresh.Reconciler{API: a.api, Store: a.store, Work: a.work, Log: log}
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
		Verifier:        webhook.NewVerifier(cfg.WebhookSecrets...),
		Actions:         actions,
		Store:           a.store,
		Work:            a.work,
		Log:             log,
		MaxBody:         int64(cfg.MaxBody),
		DedupWindow:     cfg.DedupWindow,
		TimestampWindow: cfg.TimestampWindow,
		Observe:         a.OnDelivery,
	}
	if !intake.Verifier.Enabled() {
		log.Warn("webhook signatures are NOT checked (--insecure-skip-signature): anyone who can reach the daemon can change the cache")
	}
	a.srv = server.New(server.Options{Intake: intake, Ready: a.ready, Log: log})
	if a.Listener != nil {
		a.srv.Serve(a.Listener)
	} else if err := a.srv.Open(cfg.Listen); err != nil {
		_ = a.pool.Close(ctx)
		_ = a.waiters.Close()
		a.closeRedis()
		return err
	}
	bgCtx, bgCancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = bgCancel
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		a.initialSync(bgCtx)
	}()
	log.Info("prismcache started", "listen", a.srv.Addr(), "prefix", cfg.RedisPrefix, "prismatic", a.api.Endpoint(), "workers", cfg.Workers)
	return nil
}

// initialSync runs a full pass when the sync marker is missing, retrying
// with backoff until it completes.
func (a *App) initialSync(ctx context.Context) {
	delay := time.Second
	for {
		synced, err := a.store.Synced(ctx)
		if err == nil && synced {
			return
		}
		if err == nil {
			_, err = a.recon.RunOnce(ctx)
			if err == nil {
				return
			}
		}
		a.log().Warn("first sync failed; retrying", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Minute)
	}
}

func (a *App) ready(ctx context.Context) error {
	synced, err := a.store.Synced(ctx)
	if err != nil {
		return errors.New("redis unreachable")
	}
	if !synced {
		return errors.New("never synced: the first full sync has not completed")
	}
	return nil
}

// Addr returns the address the HTTP server listens on.
func (a *App) Addr() string { return a.srv.Addr() }

// URL returns the daemon's base URL.
func (a *App) URL() string { return "http://" + a.Addr() }

// WorkStats reads the size of the work set.
func (a *App) WorkStats(ctx context.Context) (refresh.Stats, error) { return a.work.Stats(ctx) }

// Store returns the daemon's store.
func (a *App) Store() *cache.Store { return a.store }

// Close shuts down in order: stop taking webhooks, let fetches in flight
// finish until ctx ends (then hand their ids back), stop the rest.
func (a *App) Close(ctx context.Context) error {
	var errs []error
	if a.srv != nil {
		errs = append(errs, a.srv.Close(ctx))
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
	if a.ownRedis && a.rdb != nil {
		_ = a.rdb.Close()
		a.rdb = nil
	}
}
