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

// Busy reports whether a reconcile pass holds the lease now.
func (r *Reconciler) Busy(ctx context.Context) (bool, error) {
	n, err := r.Store.Client().Exists(ctx, r.Store.Keys().ReconcileLease()).Result()
	return n > 0, err
}

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
// missing, then whenever Interval (with this replica's jitter) has passed
// since the last complete pass of ANY replica — the time is read from the
// marker in Redis, so N replicas make one pass per interval, not N — and
// again whenever the marker disappears. Only the replica holding the
// reconcile lease runs a pass.
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
	every := jitter(opts.Interval)
	var lastSync time.Time
	var retryAt time.Time
	retry := time.Second
	for {
		at, err := r.Store.SyncedAt(ctx)
		if err != nil && ctx.Err() == nil {
			r.log().Warn("reconcile: read the sync marker", "err", err)
		}
		if !at.Equal(lastSync) {
			lastSync, every = at, jitter(opts.Interval) // a pass completed somewhere
		}
		now := r.now()
		due := err == nil && (at.IsZero() || !now.Before(at.Add(every))) && !now.Before(retryAt)
		if due {
			// Another replica may finish a pass between the marker's read
			// and taking the lease: with the lease held, the marker must
			// still be the one read, or that pass was this interval's.
			seen := at
			ran, rep, perr := r.runExclusive(ctx, opts.Lease, func(ctx context.Context) bool {
				now, err := r.Store.SyncedAt(ctx)
				return err == nil && now.Equal(seen)
			})
			switch {
			case !ran:
				// Another replica holds the lease; look again soon.
			case perr != nil:
				r.log().Warn("reconcile pass failed; retrying", "err", perr, "retry_in", retry)
				retryAt, retry = r.now().Add(retry), min(2*retry, opts.MarkerCheck*6)
			default:
				retry, retryAt = time.Second, time.Time{}
			}
			if ran && opts.OnPass != nil {
				opts.OnPass(rep, perr)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(opts.MarkerCheck):
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

// RunExclusive runs one pass if no other pass holds the reconcile lease
// (ran is false when one does). The lease is renewed while the pass runs,
// and the pass is cancelled if it is lost.
func (r *Reconciler) RunExclusive(ctx context.Context, lease time.Duration) (ran bool, rep Report, err error) {
	return r.runExclusive(ctx, lease, nil)
}

// runExclusive is RunExclusive; with still set, the pass runs only if still
// reports true once the lease is held (ran is false otherwise).
func (r *Reconciler) runExclusive(ctx context.Context, lease time.Duration, still func(context.Context) bool) (ran bool, rep Report, err error) {
	if lease <= 0 {
		lease = DefaultReconcileLease
	}
	rdb, key, token := r.Store.Client(), r.Store.Keys().ReconcileLease(), newToken()
	ok, err := rdb.SetNX(ctx, key, token, lease).Result()
	if err != nil {
		return false, Report{}, fmt.Errorf("take the reconcile lease: %w", err)
	}
	if !ok {
		return false, Report{}, nil
	}
	if still != nil && !still(ctx) {
		_ = releaseLeaseScript.Run(context.WithoutCancel(ctx), rdb, []string{key}, token).Err()
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
