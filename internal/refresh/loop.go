package refresh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of LoopOptions.
const (
	DefaultResyncInterval = 15 * time.Minute
	DefaultMarkerCheck    = 2 * time.Second
	DefaultReconcileLease = 30 * time.Second
)

// LoopOptions configure Reconciler.Run; zero values mean the defaults.
type LoopOptions struct {
	// Interval between periodic passes, spread by ±10% jitter so replicas
	// started together do not line up.
	Interval time.Duration
	// MarkerCheck is how often the sync marker is checked: a missing marker
	// (Redis flushed, failed over to an empty replica, replaced) starts a
	// full pass at once.
	MarkerCheck time.Duration
	// Lease is how long the reconcile lease lasts without renewal; it is
	// renewed while a pass runs, so one replica reconciles at a time.
	Lease time.Duration
	// OnPass, when set, is told of every pass this replica ran.
	OnPass func(Report, error)
}

func newToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Run reconciles until ctx ends: a pass at once when the sync marker is
// missing, then every Interval, and again whenever the marker disappears.
// Only the replica holding the reconcile lease runs a pass.
func (r *Reconciler) Run(ctx context.Context, opts LoopOptions) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultResyncInterval
	}
	if opts.MarkerCheck <= 0 {
		opts.MarkerCheck = DefaultMarkerCheck
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultReconcileLease
	}
	next := r.now().Add(jitter(opts.Interval))
	retry := time.Second
	for {
		synced, err := r.Store.Synced(ctx)
		due := err == nil && (!synced || !r.now().Before(next))
		if err != nil && ctx.Err() == nil {
			r.log().Warn("reconcile: read the sync marker", "err", err)
		}
		wait := opts.MarkerCheck
		if due {
			ran, rep, perr := r.runLeased(ctx, opts.Lease)
			switch {
			case !ran:
				// Another replica holds the lease; look again soon.
			case perr != nil:
				r.log().Warn("reconcile pass failed; retrying", "err", perr, "retry_in", retry)
				wait, retry = retry, min(2*retry, opts.MarkerCheck*6)
			default:
				retry = time.Second
				next = r.now().Add(jitter(opts.Interval))
			}
			if ran && opts.OnPass != nil {
				opts.OnPass(rep, perr)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(wait, max(time.Millisecond, next.Sub(r.now())))):
		}
	}
}

func jitter(d time.Duration) time.Duration {
	spread := int64(d / 10)
	if spread <= 0 {
		return d
	}
	return d - time.Duration(spread) + time.Duration(mrand.Int64N(2*spread+1))
}

var (
	renewLeaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`)
	releaseLeaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])`)
)

// errLeaseLost cancels a pass whose lease could not be renewed.
var errLeaseLost = errors.New("reconcile lease lost")

// runLeased runs one pass if this replica can take the reconcile lease.
func (r *Reconciler) runLeased(ctx context.Context, lease time.Duration) (bool, Report, error) {
	rdb, key, token := r.Store.Client(), r.Store.Keys().ReconcileLease(), newToken()
	ok, err := rdb.SetNX(ctx, key, token, lease).Result()
	if err != nil {
		return false, Report{}, fmt.Errorf("take the reconcile lease: %w", err)
	}
	if !ok {
		return false, Report{}, nil
	}
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n, err := renewLeaseScript.Run(pctx, rdb, []string{key}, token, lease.Milliseconds()).Int()
				if err == nil && n == 0 {
					cancel(errLeaseLost)
					return
				}
			}
		}
	}()
	rep, perr := r.RunOnce(pctx)
	close(done)
	if cause := context.Cause(pctx); errors.Is(cause, errLeaseLost) {
		perr = errLeaseLost
	}
	_ = releaseLeaseScript.Run(context.WithoutCancel(ctx), rdb, []string{key}, token).Err()
	return true, rep, perr
}
