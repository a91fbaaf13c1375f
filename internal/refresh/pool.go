package refresh

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/graphql"
)

// Fetcher fetches one instance with all its config; nil and no error means
// it does not exist. *graphql.Client satisfies it.
type Fetcher interface {
	FetchInstance(ctx context.Context, id string) (*graphql.Instance, error)
}

// Defaults of PoolOptions.
const (
	DefaultWorkers      = 8
	DefaultMaxAttempts  = 6
	DefaultBackoffBase  = time.Second
	DefaultBackoffMax   = 5 * time.Minute
	DefaultPollInterval = time.Second
)

// PoolOptions configure a Pool; zero values mean the defaults.
type PoolOptions struct {
	// Workers is how many fetches run at once in this process.
	Workers int
	// MaxAttempts is how many failed runs of an id are retried before the
	// entry is marked stale with last_error and left to the reconciler.
	MaxAttempts int
	// BackoffBase and BackoffMax bound the exponential backoff between
	// retries of one id (with jitter; a Retry-After from the API wins when
	// it is longer).
	BackoffBase, BackoffMax time.Duration
	// PollInterval is how often the work set is polled when no wake-up
	// arrives (wake-ups come over pub/sub; polling covers a lost one).
	PollInterval time.Duration
	// Logger gets one line per run; discarded if nil.
	Logger *slog.Logger
	// OnResult, when set, is called after every run.
	OnResult func(Result)
	// Resolver expands connection jobs; connection jobs are dropped if nil.
	Resolver Resolver
	// OnRedisError, when set, is told of every Redis operation of the
	// workers that failed.
	OnRedisError func(error)
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Pool runs the workers of one process: it claims due ids from the work
// set, fetches each instance, and writes its entry. Start it once, Close it
// once.
type Pool struct {
	ws       *WorkSet
	store    *cache.Store
	fetcher  Fetcher
	resolver Resolver
	opts     PoolOptions
	log      *slog.Logger
	tokenID  string
	seq      atomic.Uint64

	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	runCtx  context.Context
	cancel  context.CancelFunc
	running sync.WaitGroup
	mu      sync.Mutex
	claims  map[string]Claim // in flight, by id
}

// NewPool returns a Pool; nothing runs until Start.
func NewPool(ws *WorkSet, store *cache.Store, f Fetcher, opts PoolOptions) *Pool {
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = DefaultBackoffBase
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = DefaultBackoffMax
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 6)
	_, _ = crand.Read(b)
	return &Pool{
		ws: ws, store: store, fetcher: f, resolver: opts.Resolver, opts: opts, log: log, tokenID: hex.EncodeToString(b),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		claims: map[string]Claim{},
	}
}

// Start subscribes to wake-ups and starts claiming. It returns once the
// subscription is confirmed.
func (p *Pool) Start(ctx context.Context) error {
	ps := p.store.Client().Subscribe(ctx, p.store.Keys().WorkWake())
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return fmt.Errorf("subscribe to work wake-ups: %w", err)
	}
	p.runCtx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		for range ps.Channel() {
			p.Wake()
		}
	}()
	go func() {
		defer close(p.done)
		defer ps.Close()
		p.dispatch()
	}()
	return nil
}

// Wake makes the dispatcher look for due work now.
func (p *Pool) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Close stops claiming and waits for the runs in flight to finish; when ctx
// ends first, they are cancelled and their ids handed back to the work set,
// due at once, so nothing claimed is lost.
func (p *Pool) Close(ctx context.Context) error {
	if p.cancel == nil {
		return nil
	}
	close(p.stop)
	<-p.done
	finished := make(chan struct{})
	go func() { p.running.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
		p.cancel()
		<-finished
	}
	p.cancel()
	return nil
}

func (p *Pool) token() string {
	return fmt.Sprintf("%s-%d", p.tokenID, p.seq.Add(1))
}

func (p *Pool) inFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.claims)
}

// dispatch claims due ids whenever a worker is free, until stop.
func (p *Pool) dispatch() {
	freed := make(chan struct{}, 1)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		free := p.opts.Workers - p.inFlight()
		claimed := 0
		var nextDue time.Time
		if free > 0 {
			claims, next, err := p.ws.ClaimNext(p.runCtx, free, p.token())
			nextDue = next
			if err != nil {
				p.log.Warn("claim work", "err", err)
				p.redisErr(err)
			}
			for _, c := range claims {
				p.mu.Lock()
				p.claims[c.ID] = c
				p.mu.Unlock()
				p.running.Add(1)
				go func() {
					defer func() {
						p.mu.Lock()
						delete(p.claims, c.ID)
						p.mu.Unlock()
						p.running.Done()
						select {
						case freed <- struct{}{}:
						default:
						}
					}()
					p.run(c)
				}()
			}
			claimed = len(claims)
		}
		if free == 0 || (claimed > 0 && claimed == free) {
			// Every worker is busy (and more may be due): nothing to do
			// until one frees up — no polling meanwhile.
			select {
			case <-p.stop:
				return
			case <-freed:
			}
			continue
		}
		wait := p.opts.PollInterval
		if !nextDue.IsZero() {
			if d := nextDue.Sub(p.opts.Now()); d < wait {
				wait = max(d, time.Millisecond)
			}
		}
		timer.Reset(wait)
		select {
		case <-p.stop:
			return
		case <-p.wake:
		case <-freed:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// run fetches one claimed id and writes its entry.
func (p *Pool) run(c Claim) {
	ctx, cancel := context.WithCancel(p.runCtx)
	defer cancel()
	stopExtend := p.keepLease(ctx, cancel, c)
	defer stopExtend()
	if IsJob(c.ID) {
		p.runJob(ctx, c)
		return
	}

	started := p.opts.Now()
	// The entry is read while the API answers, so that writing the answer
	// takes one round trip instead of two; if the entry changes meanwhile,
	// the write's compare-and-set sees it and reads again.
	prior := make(chan *cache.State, 1)
	go func() {
		st, err := p.store.Load(ctx, c.ID)
		if err != nil {
			prior <- nil // the write reads it itself, and reports the error
			return
		}
		prior <- &st
	}()
	// Only a null instance in the answer means it is gone. An error that
	// merely says "not found" is a failure like any other: deleting on it
	// would let a misrouted request wipe entries and tombstone them for a
	// day. (The reconciler removes instances its complete listing lacks.)
	inst, err := p.fetcher.FetchInstance(ctx, c.ID)
	var doc *cache.Doc
	if err == nil && inst != nil {
		doc, err = ToDoc(inst)
		if err != nil {
			err = &graphql.Error{Op: "GetInstance", Kind: graphql.Invalid, Message: err.Error()}
		}
	}
	st := <-prior
	if err != nil {
		p.failed(ctx, c, err, started)
		return
	}
	res, werr := p.write(ctx, c.ID, doc, started, st)
	res.Started = started
	if werr != nil {
		p.redisErr(werr)
		p.failed(ctx, c, werr, started)
		return
	}
	fin := context.WithoutCancel(ctx)
	rerun, derr := p.ws.Done(fin, c)
	if derr != nil && !errors.Is(derr, ErrLeaseLost) {
		p.log.Warn("finish work", "id", c.ID, "err", derr)
		p.redisErr(derr)
	}
	if rerun {
		p.Wake()
	}
	p.log.Info("fetch", "id", c.ID, "outcome", outcome(res), "took", p.opts.Now().Sub(started).Round(time.Millisecond),
		"deployed_version", deployedVersion(doc), "rev", res.Rev, "skip", res.Skip, "rerun", rerun)
	p.publish(fin, res)
}

// write applies the fetched document with a compare-and-set, deciding again
// whenever another write got in first; prior, when not nil, is the entry as
// read during the fetch.
func (p *Pool) write(ctx context.Context, id string, doc *cache.Doc, started time.Time, prior *cache.State) (Result, error) {
	res := Result{ID: id, OK: true}
	up, err := p.store.Update(ctx, id, cache.UpdateOnce{Prior: prior}, func(st cache.State) *cache.Mutation {
		m, skip := DecideWrite(st, doc, started, p.opts.Now())
		res.Skip = skip
		return m
	})
	switch {
	case err != nil:
		return res, err
	case up.Tombstoned:
		res.Skip = SkipDeleted
	case up.Mutation != nil:
		res.Rev, res.Change, res.Skip = up.Rev, up.Mutation.Kind, ""
		if up.IndexErr != nil {
			p.log.Warn("entry written; its lookup rows were not", "id", id, "err", up.IndexErr)
		}
	}
	return res, nil
}

// failed handles a run that did not complete: handed back on shutdown,
// retried with backoff, or given up on with the entry marked stale.
func (p *Pool) failed(ctx context.Context, c Claim, err error, started time.Time) {
	fin := context.WithoutCancel(ctx)
	if p.runCtx.Err() != nil {
		if rerr := p.ws.Release(fin, c); rerr != nil && !errors.Is(rerr, ErrLeaseLost) {
			p.log.Warn("release work", "id", c.ID, "err", rerr)
		}
		return
	}
	attempts := c.Attempts + 1
	res := Result{ID: c.ID, Error: err.Error(), Started: started}
	// A job (the instances behind a connection or customer event) has no
	// entry to mark failed and the reconciler would not notice it was lost:
	// it is retried, at most every BackoffMax, for as long as it fails.
	if graphql.Retryable(err) && (attempts < p.opts.MaxAttempts || IsJob(c.ID)) {
		delay := p.backoff(attempts, graphql.RetryAfter(err))
		res.Retrying = true
		if rerr := p.ws.Retry(fin, c, p.opts.Now().Add(delay)); rerr != nil && !errors.Is(rerr, ErrLeaseLost) {
			p.log.Warn("requeue work", "id", c.ID, "err", rerr)
		}
		p.log.Warn("fetch", "id", c.ID, "outcome", "retry", "attempt", attempts, "retry_in", delay.Round(time.Millisecond), "err", err)
		p.publish(fin, res)
		return
	}
	if !IsJob(c.ID) {
		up, uerr := p.store.Update(fin, c.ID, cache.UpdateOnce{}, func(st cache.State) *cache.Mutation {
			return DecideFailure(st, err.Error(), p.opts.Now())
		})
		if uerr != nil {
			p.log.Warn("mark the entry failed", "id", c.ID, "err", uerr)
			p.redisErr(uerr)
		} else if up.Mutation != nil {
			res.Rev, res.Change = up.Rev, up.Mutation.Kind
		}
	}
	if gerr := p.ws.GiveUp(fin, c); gerr != nil && !errors.Is(gerr, ErrLeaseLost) {
		p.log.Warn("finish work", "id", c.ID, "err", gerr)
	}
	p.log.Error("fetch", "id", c.ID, "outcome", "failed", "attempts", attempts, "took", p.opts.Now().Sub(started).Round(time.Millisecond), "err", err)
	p.publish(fin, res)
}

// backoff is exponential in attempts with jitter in [50%, 100%], capped, and
// never shorter than what the API asked for.
func (p *Pool) backoff(attempts int, retryAfter time.Duration) time.Duration {
	d := p.opts.BackoffBase
	for i := 1; i < attempts && d < p.opts.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, p.opts.BackoffMax)
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	return max(d, retryAfter)
}

// keepLease extends c's lease while the run lasts; if the lease is lost the
// run is cancelled, since another worker may now hold the id.
func (p *Pool) keepLease(ctx context.Context, cancel context.CancelFunc, c Claim) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(p.ws.Lease() / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := p.ws.Extend(ctx, c); errors.Is(err, ErrLeaseLost) {
					p.log.Warn("lease lost; abandoning run", "id", c.ID)
					cancel()
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

func (p *Pool) publish(ctx context.Context, r Result) {
	if r.Claimed.IsZero() {
		if c, ok := p.claimOf(r.ID); ok {
			r.Claimed = c.ClaimedAt
		}
	}
	if !r.Started.IsZero() {
		r.Took = p.opts.Now().Sub(r.Started)
	}
	if err := publishResult(ctx, p.store.Client(), p.store.Keys(), r); err != nil {
		p.log.Warn("publish result", "id", r.ID, "err", err)
	}
	if p.opts.OnResult != nil {
		p.opts.OnResult(r)
	}
}

// claimOf returns the claim this process holds on id.
func (p *Pool) claimOf(id string) (Claim, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.claims[id]
	return c, ok
}

// redisErr reports a failed Redis operation.
func (p *Pool) redisErr(err error) {
	if err != nil && p.opts.OnRedisError != nil && !errors.Is(err, ErrLeaseLost) && !errors.Is(err, context.Canceled) {
		p.opts.OnRedisError(err)
	}
}

func outcome(r Result) string {
	switch {
	case r.Change != "":
		return string(r.Change)
	case r.Skip != "":
		return "skipped"
	}
	return "ok"
}

func deployedVersion(d *cache.Doc) int {
	if d == nil {
		return 0
	}
	return d.DeployedVersion
}
