package refresh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/lease"
	"github.com/prismcache/prismcache/internal/retry"
	"github.com/prismcache/prismcache/internal/store"
)

// Fetcher fetches one instance with all its config; nil and no error means
// it does not exist. *graphql.Client satisfies it.
type Fetcher interface {
	FetchInstance(ctx context.Context, id string) (*graphql.Instance, error)
}

// Defaults of PoolOptions.
const (
	DefaultWorkers = 8
	// DefaultFailedAfter is how many failed runs of an id make its entry say
	// fetch_failed.
	DefaultFailedAfter = 6
	// DefaultRetryBase and DefaultRetryMax bound the backoff between the
	// retries of one id.
	DefaultRetryBase    = time.Second
	DefaultRetryMax     = time.Minute
	DefaultPollInterval = time.Second
	// maintainEvery is how often the pool has the work set keep its layout.
	maintainEvery = 10 * time.Second
)

// PoolOptions configure a Pool; zero values mean the defaults.
type PoolOptions struct {
	// Workers is how many fetches run at once in this process.
	Workers int
	// FailedAfter is how many failed runs of an id make its entry say
	// stale_reason=fetch_failed, with last_error; the id is retried all the
	// same, for as long as it fails.
	FailedAfter int
	// Retry is the backoff between the retries of one id; a Retry-After from
	// the API wins when longer. Base DefaultRetryBase and cap DefaultRetryMax
	// when zero.
	Retry retry.Policy
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
	store    *store.Store
	fetcher  Fetcher
	resolver Resolver
	opts     PoolOptions
	log      *slog.Logger
	tokenID  string
	seq      atomic.Uint64

	// apiFailed is set when a run failed because of the API, and cleared
	// by the next success, which then brings the failed work forward.
	apiFailed atomic.Bool
	// notBefore is the end (unix ms) of the latest wait the API asked for.
	notBefore atomic.Int64

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
func NewPool(ws *WorkSet, db *store.Store, f Fetcher, opts PoolOptions) *Pool {
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.FailedAfter <= 0 {
		opts.FailedAfter = DefaultFailedAfter
	}
	if opts.Retry.Base <= 0 {
		opts.Retry.Base = DefaultRetryBase
	}
	if opts.Retry.Cap <= 0 {
		opts.Retry.Cap = DefaultRetryMax
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
	return &Pool{
		ws: ws, store: db, fetcher: f, resolver: opts.Resolver, opts: opts, log: log, tokenID: lease.Token(),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		claims: map[string]Claim{},
	}
}

// Start subscribes to wake-ups and starts claiming. It returns once the
// subscription is confirmed.
func (p *Pool) Start(ctx context.Context) error {
	ps := p.ws.rdb.Subscribe(ctx, p.ws.WakeChannel())
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

// APIRecovered tells the pool that Prismatic's API answers again (a probe
// succeeded): the work that failed meanwhile is brought forward, to be tried
// now instead of at the end of its backoff.
func (p *Pool) APIRecovered() {
	p.apiFailed.Store(false)
	go p.pullIn()
}

// pullIn brings the failed work of every replica forward, to now or to the
// end of the latest wait the API asked for.
func (p *Pool) pullIn() {
	at := max(p.opts.Now().UnixMilli(), p.notBefore.Load())
	n, err := p.ws.PullIn(p.runCtx, time.UnixMilli(at))
	if err != nil {
		p.log.Warn("bring failed work forward", "err", err)
		p.redisErr(err)
	}
	if n > 0 {
		p.log.Info("Prismatic's API answers again; failed work brought forward", "ids", n)
		p.Wake()
	}
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
	var maintained time.Time
	for {
		if now := p.opts.Now(); now.Sub(maintained) >= maintainEvery {
			maintained = now
			if n, err := p.ws.Maintain(p.runCtx); err != nil {
				p.log.Warn("work set upkeep", "err", err)
				p.redisErr(err)
			} else if n > 0 {
				p.log.Info("moved work queued by an earlier version into the sharded work set", "ids", n)
			}
		}
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

func (p *Pool) publish(ctx context.Context, r Result) {
	if r.Claimed.IsZero() {
		if c, ok := p.claimOf(r.ID); ok {
			r.Claimed = c.ClaimedAt
		}
	}
	if !r.Started.IsZero() {
		r.Took = p.opts.Now().Sub(r.Started)
	}
	if err := publishResult(ctx, p.ws.rdb, p.ws.results, r); err != nil {
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
