package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/app"
	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/ratelimit"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/retry"
	"github.com/prismcache/prismcache/internal/store"
)

func runResync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var all, wait bool
	fs := newFlagSet("resync [flags]",
		"Runs one reconcile pass now: lists every instance in Prismatic with its config, writes those missing from\nthe cache or different, queues those a page cannot settle, removes those Prismatic no longer has, and\n(unless --wait=false) fetches what it queued with workers of its own, alongside any running daemons,\nwithin the same --prismatic-rate. Takes the same settings as serve (--config, env, flags).",
		"prismcache resync --config /etc/prismcache/prismcache.conf --all",
		stderr)
	fs.BoolVar(&all, "all", false, "rewrite (or queue) every instance, not only those that differ")
	fs.BoolVar(&wait, "wait", true, "fetch what was queued before exiting")
	cfg, err := config.LoadTool(fs, args, os.Getenv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return err
	case errors.Is(err, config.ErrFlags):
		return errUsage
	case err != nil:
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	rdb, err := app.OpenRedis(cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	db := store.New(rdb, store.Options{Prefix: cfg.RedisPrefix, TombstoneTTL: cfg.TombstoneTTL})
	shards, _, err := refresh.RecordedShards(ctx, rdb, db.Keys(), cfg.WorkShards)
	if err != nil {
		return err
	}
	work := refresh.NewWorkSet(rdb, db.Keys(), refresh.WorkSetOptions{Lease: cfg.WorkLease, Shards: shards, FailedAfter: cfg.MaxAttempts})
	// The pass shares the organisation's rate with the daemon's replicas.
	limiter, err := ratelimit.New(rdb, ratelimit.Options{Rate: cfg.PrismaticRate, Prefix: cfg.RedisPrefix})
	if err != nil {
		return err
	}
	if err := limiter.Start(ctx); err != nil {
		return err
	}
	defer limiter.Close(context.WithoutCancel(ctx))
	api, err := graphql.New(graphql.Options{
		URL: cfg.PrismaticURL, Token: cfg.PrismaticToken, RefreshToken: cfg.PrismaticRefreshToken,
		TenantID: cfg.PrismaticTenantID, Timeout: cfg.PrismaticTimeout,
		Limiter: limiter,
	})
	if err != nil {
		return err
	}
	p := newProgress(stderr)
	recon := &refresh.Reconciler{API: api, Store: db, Work: work, Force: all,
		Progress: func(r refresh.Report) {
			p.show("listed %d of %d instances (%d pages), written %d, queued %d", r.Listed, r.Total, r.Pages, r.Written, r.Queued)
		}}
	ran, rep, err := recon.RunExclusive(ctx, 0)
	p.done()
	if err != nil {
		return err
	}
	if !ran {
		return fmt.Errorf("a reconcile pass is running on a daemon replica; it does the same — try again when it is done")
	}
	fmt.Fprintf(stdout, "pass done in %s: %d instances listed, %d written from their pages, %d queued, %d removed from the cache\n",
		rep.Took.Round(time.Millisecond), rep.Listed, rep.Written, rep.Queued, rep.Removed)
	if !wait || rep.Queued == 0 {
		return nil
	}
	var fetched, failed atomic.Int64
	pool := refresh.NewPool(work, db, api, refresh.PoolOptions{
		Workers: cfg.Workers, FailedAfter: cfg.MaxAttempts,
		Retry:    retry.Policy{Base: refresh.DefaultRetryBase, Cap: cfg.RetryMax},
		Resolver: refresh.IndexResolver{Store: db, API: api},
		OnResult: func(r refresh.Result) {
			if r.Error != "" {
				failed.Add(1)
			} else {
				fetched.Add(1)
			}
		},
	})
	if err := pool.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = pool.Close(sctx)
	}()
	for {
		s, err := work.Stats(ctx)
		if err != nil {
			return err
		}
		p.show("fetching: %d queued (%d of them failing), %d in flight (this process: %d done, %d failed attempts)",
			s.Queued, s.Failing, s.Leased, fetched.Load(), failed.Load())
		if s.Queued == 0 && s.Leased == 0 {
			break
		}
		if s.Leased == 0 && s.Failed > 0 && s.Queued == s.Failing {
			// Everything left keeps failing: the daemon retries it with
			// backoff for as long as it takes; waiting here would not end.
			p.done()
			return fmt.Errorf("%d queued instances keep failing (see prismcache get <id> for last_error); the daemon retries them until they succeed", s.Queued)
		}
		select {
		case <-ctx.Done():
			p.done()
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	p.done()
	fmt.Fprintf(stdout, "all queued instances fetched (%d by this process, %d failed)\n", fetched.Load(), failed.Load())
	return nil
}

// progress rewrites one line on a terminal, and prints a line at most every
// few seconds elsewhere.
type progress struct {
	w     io.Writer
	tty   bool
	last  time.Time
	dirty bool
}

func newProgress(w io.Writer) *progress { return &progress{w: w, tty: isTerminal(w)} }

func (p *progress) show(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", msg)
		p.dirty = true
		return
	}
	if time.Since(p.last) >= 2*time.Second {
		fmt.Fprintln(p.w, msg)
		p.last = time.Now()
	}
}

func (p *progress) done() {
	if p.tty && p.dirty {
		fmt.Fprintln(p.w)
		p.dirty = false
	}
}
