package refresh

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prismcache/prismcache/internal/lease"
	"github.com/prismcache/prismcache/internal/retry"
)

// Defaults of LoopOptions.
const (
	// DefaultResyncInterval is short because a pass is cheap: one request
	// per 100 instances (docs/operations.md has the cost for N).
	DefaultResyncInterval = 5 * time.Minute
	DefaultMarkerCheck    = 2 * time.Second
	DefaultReconcileLease = 30 * time.Second
)

// passShare bounds the time periodic passes take: a pass begins no sooner
// than passShare times as long as the last pass took after it ended, so
// that passes never take more than about 1/passShare of the API quota,
// however short the interval is for the fleet (100,000 instances at the
// default rate take 100 s a pass: one every 17 minutes, not every 5).
const passShare = 10

// repairMargin absorbs clock differences between replicas when a pass's
// start (another replica's clock) is compared with when this one owed a
// repair.
const repairMargin = time.Second

// Reasons a repair pass is owed.
const (
	RepairRefused   = "webhooks_refused" // webhooks were answered 5xx
	RepairRedisLost = "redis_lost"       // Redis stopped answering
	// RepairMasterChanged: the Redis master changed (a Sentinel switch);
	// writes the old one acknowledged may not have reached the new one.
	RepairMasterChanged = "master_changed"
)

// lock is the reconcile lease: one pass at a time among all replicas.
func (r *Reconciler) lock(ttl time.Duration) lease.Lock {
	if ttl <= 0 {
		ttl = DefaultReconcileLease
	}
	return r.Store.Lock(r.Store.Keys().ReconcileLease(), ttl)
}

// Busy reports whether a reconcile pass holds the lease now.
func (r *Reconciler) Busy(ctx context.Context) (bool, error) {
	return r.lock(0).Held(ctx)
}

// LoopOptions configure Reconciler.Run; zero values mean the defaults.
type LoopOptions struct {
	// Interval between periodic passes, spread by ±10% jitter so replicas
	// started together do not line up — or ten times as long as the last
	// pass took, if that is longer (passShare).
	Interval time.Duration
	// MarkerCheck is how often the sync marker is checked: a missing marker
	// (Redis flushed, failed over to an empty replica, replaced) starts a
	// full pass at once. The check is also how the loop learns that Redis
	// answers again after an outage.
	MarkerCheck time.Duration
	// Lease is how long the reconcile lease lasts without renewal; it is
	// renewed while a pass runs, so one replica reconciles at a time.
	Lease time.Duration
	// OnPass, when set, is told of every pass this replica ran, and of the
	// repair it made, if the pass was one ("" otherwise).
	OnPass func(rep Report, err error, repair string)
	// OnRedis, when set, is told whether each check of the sync marker
	// reached Redis.
	OnRedis func(err error)
}

// Repair is a reconcile pass owed because events may have been lost.
type Repair struct {
	// Reason is RepairRefused or RepairRedisLost (the latest one owed).
	Reason string
	// Since is when it was last owed: a pass that began after it pays it.
	Since time.Time
	// Running is true while this replica runs the pass that pays it.
	Running bool
}

// repairs tracks the repair this replica owes. Safe for concurrent use.
type repairs struct {
	mu      sync.Mutex
	owed    *Repair
	wake    chan struct{}
	running bool
}

// Owe records that events may have been lost at now — this replica refused
// webhooks through its own fault, or lost Redis — so a reconcile pass must
// run as soon as Redis answers, rather than at the next periodic one. Only
// a pass that begins after now pays it.
func (r *Reconciler) Owe(reason string, now time.Time) {
	r.rep.mu.Lock()
	if r.rep.owed == nil || now.After(r.rep.owed.Since) {
		r.rep.owed = &Repair{Reason: reason, Since: now}
	}
	wake := r.rep.wake
	r.rep.mu.Unlock()
	if wake != nil {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// Owed returns the repair this replica owes, nil when none.
func (r *Reconciler) Owed() *Repair {
	r.rep.mu.Lock()
	defer r.rep.mu.Unlock()
	if r.rep.owed == nil {
		return nil
	}
	o := *r.rep.owed
	o.Running = r.rep.running
	return &o
}

// paidBy clears the owed repair if a pass that began at began pays it, and
// returns the reason it paid ("" when none).
func (r *Reconciler) paidBy(began time.Time) string {
	r.rep.mu.Lock()
	defer r.rep.mu.Unlock()
	if r.rep.owed == nil || began.IsZero() || !began.After(r.rep.owed.Since.Add(repairMargin)) {
		return ""
	}
	reason := r.rep.owed.Reason
	r.rep.owed = nil
	return reason
}

func (r *Reconciler) setRepairing(on bool) {
	r.rep.mu.Lock()
	r.rep.running = on
	r.rep.mu.Unlock()
}

// Run reconciles until ctx ends: a pass at once when the sync marker is
// missing, then whenever Interval (with this replica's jitter) has passed
// since the last complete pass of ANY replica — the time is read from the
// marker in Redis, so N replicas make one pass per interval, not N — and
// again whenever the marker disappears, and as soon as Redis answers when a
// repair is owed (Owe). Only the replica holding the reconcile lease runs a
// pass.
func (r *Reconciler) Run(ctx context.Context, opts LoopOptions) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultResyncInterval
	}
	if opts.MarkerCheck <= 0 {
		opts.MarkerCheck = DefaultMarkerCheck
	}
	wake := make(chan struct{}, 1)
	r.rep.mu.Lock()
	r.rep.wake = wake
	r.rep.mu.Unlock()
	lock := r.lock(opts.Lease)
	every := jitter(opts.Interval)
	var last time.Time
	var retryAt time.Time
	backoff := retry.Backoff{Policy: retry.Policy{Base: time.Second, Cap: 6 * opts.MarkerCheck}}
	for {
		st, err := r.Store.SyncState(ctx)
		if opts.OnRedis != nil && ctx.Err() == nil {
			opts.OnRedis(err)
		}
		if err != nil && ctx.Err() == nil {
			r.log().Warn("reconcile: read the sync marker", "err", err)
			r.Owe(RepairRedisLost, r.now())
		}
		if !st.At.Equal(last) {
			// A pass completed somewhere: the next is due an interval
			// later, or later still if that pass was long.
			last, every = st.At, max(jitter(opts.Interval), passShare*st.At.Sub(st.Began))
		}
		if err == nil {
			if reason := r.paidBy(st.Began); reason != "" {
				r.log().Info("reconcile: the repair owed is paid by a pass of another replica", "reason", reason, "began", st.Began)
			}
		}
		now := r.now()
		owed := r.Owed()
		periodic := st.At.IsZero() || !now.Before(st.At.Add(every))
		due := err == nil && (periodic || owed != nil) && !now.Before(retryAt)
		if due {
			// Another replica may finish a pass between the marker's read
			// and taking the lease: with the lease held, the marker must
			// still be the one read, or that pass was this interval's (and
			// began after the repair was owed, if one was).
			seen := st
			var rep Report
			var perr error
			repairing := owed != nil
			if repairing {
				r.setRepairing(true)
			}
			began := r.now()
			ran, lerr := lock.Do(ctx, func(ctx context.Context) error {
				if cur, err := r.Store.SyncState(ctx); err != nil || !cur.At.Equal(seen.At) {
					return errSkipped
				}
				began = r.now()
				rep, perr = r.RunOnce(ctx)
				return perr
			})
			if repairing {
				r.setRepairing(false)
			}
			skipped := errors.Is(lerr, errSkipped)
			switch {
			case !ran || skipped:
				// Another replica holds the lease, or finished a pass
				// meanwhile; look again soon.
			case lerr != nil:
				if perr == nil {
					perr = lerr // the lease was lost mid-pass
				}
				wait := backoff.Next(0)
				r.log().Warn("reconcile pass failed; retrying", "err", perr, "retry_in", wait)
				retryAt = r.now().Add(wait)
			default:
				backoff.Reset()
				retryAt = time.Time{}
			}
			if ran && !skipped {
				repair := ""
				if perr == nil {
					repair = r.paidBy(began)
				}
				if opts.OnPass != nil {
					opts.OnPass(rep, perr, repair)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-time.After(opts.MarkerCheck):
		}
	}
}

// errSkipped: the pass was not run, a pass of another replica having
// completed between the marker's read and the lease.
var errSkipped = errors.New("reconcile pass skipped")

func jitter(d time.Duration) time.Duration {
	spread := int64(d / 10)
	if spread <= 0 {
		return d
	}
	return d - time.Duration(spread) + time.Duration(rand.Int64N(2*spread+1))
}

// RunExclusive runs one pass if no other pass holds the reconcile lease
// (ran is false when one does). The lease is renewed while the pass runs,
// and the pass is cancelled if it is lost.
func (r *Reconciler) RunExclusive(ctx context.Context, ttl time.Duration) (ran bool, rep Report, err error) {
	var perr error
	ran, err = r.lock(ttl).Do(ctx, func(ctx context.Context) error {
		rep, perr = r.RunOnce(ctx)
		return perr
	})
	if perr != nil {
		err = perr
	}
	return ran, rep, err
}
