package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// Errors of a Reader, besides ErrNotFound; test for them with errors.Is.
var (
	// ErrUnavailable: Redis could not answer (down, unreachable, timed out,
	// or replied with an error) and the Reader had nothing it may serve.
	ErrUnavailable = errors.New("redis unavailable")
	// ErrDegraded comes with a usable Entry: Redis could not answer and the
	// Reader, configured with ServeLastKnown, returned the last copy it held.
	// That copy may be out of date by any amount; Entry.Age tells how old the
	// fetch behind it is.
	ErrDegraded = errors.New("redis unavailable, serving the last known entry")
	// ErrReaderClosed: the Reader was closed.
	ErrReaderClosed = errors.New("reader closed")
)

// RedisDownPolicy is what a Reader's Get does when Redis cannot answer.
type RedisDownPolicy int

const (
	// FailWhenDown (the default): Get returns an error wrapping
	// ErrUnavailable. The in-process tier is emptied whenever the
	// subscription to the events channel drops, so nothing unverified is
	// ever served.
	FailWhenDown RedisDownPolicy = iota
	// ServeLastKnown: Get returns the last entry the in-process tier held
	// for the id together with an error wrapping ErrDegraded, or an error
	// wrapping ErrUnavailable when it held none. When the subscription drops,
	// the tier stops serving hits (every Get asks Redis) but keeps its
	// entries as this fallback.
	ServeLastKnown
)

func (p RedisDownPolicy) String() string {
	switch p {
	case FailWhenDown:
		return "fail"
	case ServeLastKnown:
		return "serve-last-known"
	}
	return fmt.Sprintf("RedisDownPolicy(%d)", int(p))
}

// Defaults of ReaderOptions.
const (
	DefaultReaderSize         = 10_000
	DefaultReaderMaxAge       = time.Minute
	DefaultReaderNegativeTTL  = 2 * time.Second
	DefaultReaderHealthCheck  = time.Second
	readerMinReconnectBackoff = 20 * time.Millisecond
	readerMaxReconnectBackoff = time.Second
)

// ReaderOptions configure a Reader. The zero value means the defaults.
type ReaderOptions struct {
	// Prefix of every key; DefaultPrefix when empty. It must be the prefix
	// the daemon writes under.
	Prefix string
	// Size is how many instances (and remembered "not found"s) the
	// in-process tier holds, least recently used first out;
	// DefaultReaderSize when zero.
	Size int
	// MaxAge caps how long an entry is served from the tier without asking
	// Redis, even when no invalidation arrives: a bound on the damage of a
	// lost message the health check did not catch. DefaultReaderMaxAge when
	// zero.
	MaxAge time.Duration
	// NegativeTTL is how long "not found" is remembered; an event for the id
	// ends it sooner. DefaultReaderNegativeTTL when zero; negative disables
	// negative caching.
	NegativeTTL time.Duration
	// OnRedisDown chooses what Get does when Redis cannot answer.
	OnRedisDown RedisDownPolicy
	// HealthCheckInterval is how long the subscription may stay silent
	// before the Reader pings it; a ping unanswered for another interval
	// counts as a lost subscription. DefaultReaderHealthCheck when zero.
	HealthCheckInterval time.Duration
	// OnInvalidate, when set, is called after the tier dropped an id because
	// of an event, and with id "" after the whole tier was flushed (the
	// subscription dropped or came back). It runs on the subscription's
	// goroutine: it must return quickly and must not call Close.
	OnInvalidate func(id string)
	// Logger receives one line per subscription loss, restore and bad
	// message; nil discards them.
	Logger *slog.Logger
	// Sentinel, for a Reader whose client is a Sentinel failover client
	// (redis.NewFailoverClient), is the options that client was made with
	// (MasterName, SentinelAddrs and the sentinels' credentials are used).
	// The Reader then listens to the sentinels: when they switch to another
	// master it flushes its tier and subscribes again, on the new master,
	// within about a second of the switch. Without it the subscription stays
	// on the old master, which receives no more changes, until Redis
	// disconnects it — seconds after the switch, or never when the old master
	// is cut off from the sentinels but not from the app — and the tier
	// serves what it held all that time. Nil for a single server or a
	// Cluster.
	Sentinel *redis.FailoverOptions

	// afterRead, when set (in-package tests only), runs between a fill's
	// Redis read and its insert into the tier.
	afterRead func(ids []string)
	// clock, when set (in-package tests only), replaces the clock the tier's
	// ages are measured with.
	clock func() time.Duration
}

// Reader reads instance entries for apps: from an in-process LRU tier when it
// holds a verified copy, else from Redis. The tier is kept correct by the
// events channel (every change drops its id), is flushed whole when the
// subscription drops and again when it comes back, never keeps a read that
// raced with an invalidation, and remembers "not found" briefly. Concurrent
// misses of one id share one Redis read.
//
// Entries returned share their Doc with the tier: treat them as read-only.
// A Reader is safe for concurrent use. Create it with NewReader; the zero
// value is not usable.
type Reader struct {
	rdb  redis.UniversalClient
	keys Keys
	opts ReaderOptions
	log  *slog.Logger

	// tier bounds the items and orders them for eviction; index is the
	// same set of items, read without locks by hits. Items are added and
	// removed only under mu (evictions leave index through the tier's
	// callback); hits only reorder the tier.
	tier   *lru.Cache[string, *tierItem]
	index  sync.Map     // id → *tierItem
	base   time.Time    // origin of the tier's clock
	coarse atomic.Int64 // the tier's clock (time since base) as of its last tick

	// epoch counts subscription transitions: odd while subscribed (the tier
	// may serve hits), even while not. An item serves a hit only if it was
	// filled in the current odd epoch, so bumping it flushes the tier at
	// once.
	epoch atomic.Uint64

	mu      sync.Mutex // orders inserts against invalidations and flushes
	pending map[string]*pendingFill

	flights singleflight.Group
	stats   readerCounters

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the subscription and the clock
	psMu   sync.Mutex
	ps     *redis.PubSub // the live subscription, closed by Close

	watches watchRegistry // the live watches (watch.go)
}

// NewReader returns a Reader over rdb and starts its subscription to the
// events channel in the background. Until the subscription is confirmed
// every Get reads Redis. It fails only on options it cannot use. Its
// counters are in Stats; the cacheprom package exports them to Prometheus.
func NewReader(rdb redis.UniversalClient, opts ReaderOptions) (*Reader, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Size <= 0 {
		opts.Size = DefaultReaderSize
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultReaderMaxAge
	}
	if opts.NegativeTTL == 0 {
		opts.NegativeTTL = DefaultReaderNegativeTTL
	}
	if opts.HealthCheckInterval <= 0 {
		opts.HealthCheckInterval = DefaultReaderHealthCheck
	}
	if s := opts.Sentinel; s != nil && (s.MasterName == "" || len(s.SentinelAddrs) == 0) {
		return nil, errors.New("new reader: ReaderOptions.Sentinel needs MasterName and SentinelAddrs")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reader{
		rdb: rdb, keys: NewKeys(opts.Prefix), opts: opts, log: log,
		base: time.Now(), pending: make(map[string]*pendingFill),
	}
	tier, err := lru.NewWithEvict(opts.Size, func(id string, it *tierItem) { r.index.CompareAndDelete(id, it) })
	if err != nil {
		return nil, fmt.Errorf("new reader: %w", err)
	}
	r.tier = tier
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.wg.Add(2)
	go r.subscribe()
	go r.tick()
	if opts.Sentinel != nil {
		r.watchSentinels(opts.Sentinel)
	}
	return r, nil
}

// Close stops the subscription, ends every watch (closing its channel) and
// empties the tier. Calls after Close fail with ErrReaderClosed. Close
// waits for the Reader's goroutines and is safe to call more than once.
func (r *Reader) Close() error {
	r.cancel()
	r.mu.Lock()
	if r.epoch.Load()&1 == 1 {
		r.epoch.Add(1) // stop serving hits now; transition refuses to undo it
	}
	r.mu.Unlock()
	r.psMu.Lock()
	if r.ps != nil {
		_ = r.ps.Close()
	}
	r.psMu.Unlock()
	r.watches.close()
	r.wg.Wait()
	r.mu.Lock()
	r.tier.Purge()
	r.mu.Unlock()
	return nil
}

// Keys returns the key names the Reader reads.
func (r *Reader) Keys() Keys { return r.keys }

// Get returns the entry of instance id: from the tier when it holds a
// verified copy (no allocation, no lock), else from Redis.
// It returns an error wrapping ErrNotFound when the instance is not cached,
// ErrUnavailable when Redis cannot answer, or — with ServeLastKnown — the
// last known entry together with an error wrapping ErrDegraded.
func (r *Reader) Get(ctx context.Context, id string) (Entry, error) {
	if it, ok := r.item(id); ok && r.serves(it) {
		r.touch(id, it)
		if it.err != nil {
			r.stats.negativeHits.Add(1)
			return Entry{}, it.err
		}
		r.stats.hits.Add(1)
		return it.entry, nil
	}
	return r.miss(ctx, id)
}

// loadResult is what one shared Redis read gives every caller waiting on it.
type loadResult struct {
	entry Entry
	err   error
}

func (r *Reader) miss(ctx context.Context, id string) (Entry, error) {
	if r.ctx.Err() != nil {
		return Entry{}, fmt.Errorf("get %s: %w", id, ErrReaderClosed)
	}
	r.stats.misses.Add(1)
	ch := r.flights.DoChan(id, func() (any, error) { return r.load(id), nil })
	select {
	case res := <-ch:
		lr := res.Val.(loadResult)
		return lr.entry, lr.err
	case <-ctx.Done():
		return Entry{}, fmt.Errorf("get %s: %w", id, ctx.Err())
	}
}

// load reads id from Redis for every caller waiting on the flight, and puts
// the result in the tier unless an invalidation or flush overtook it.
func (r *Reader) load(id string) loadResult {
	tok := r.beginFill(id)
	h, err := r.rdb.HGetAll(r.ctx, r.keys.Instance(id)).Result()
	if r.opts.afterRead != nil {
		r.opts.afterRead([]string{id})
	}
	if err != nil {
		r.endFill(id, tok, nil)
		r.stats.redisErrors[opGet].Add(1)
		r.reloadTopology()
		return r.unavailable(id, err)
	}
	e, err := decodeEntry(id, h)
	r.endFill(id, tok, r.itemFor(e, err))
	return loadResult{entry: e, err: err}
}

// unavailable is Get's answer when Redis could not give one: the last known
// copy under ServeLastKnown, else an error.
func (r *Reader) unavailable(id string, cause error) loadResult {
	if r.ctx.Err() != nil {
		return loadResult{err: fmt.Errorf("get %s: %w", id, ErrReaderClosed)}
	}
	if r.opts.OnRedisDown == ServeLastKnown {
		if it, ok := r.item(id); ok && it.err == nil {
			r.stats.degraded.Add(1)
			return loadResult{entry: it.entry, err: fmt.Errorf("get %s: %w: %w", id, ErrDegraded, cause)}
		}
	}
	return loadResult{err: fmt.Errorf("get %s: %w: %w", id, ErrUnavailable, cause)}
}

// ByCustomer returns the entries of every cached instance of the customer
// with this external id, ordered by instance id. The index set is read from
// Redis on every call (events name instances, not index rows); the entries
// come from the tier when it has them. Rows whose entry is missing or belongs
// to another customer are skipped.
func (r *Reader) ByCustomer(ctx context.Context, externalID string) ([]Entry, error) {
	return r.lookup(ctx, customerQuery(externalID))
}

// Find is ByCustomer restricted to the instances of one integration (by
// integration name).
func (r *Reader) Find(ctx context.Context, externalID, integrationName string) ([]Entry, error) {
	return r.lookup(ctx, integrationQuery(externalID, integrationName))
}

func (r *Reader) lookup(ctx context.Context, q indexQuery) ([]Entry, error) {
	if r.ctx.Err() != nil {
		return nil, fmt.Errorf("lookup %s: %w", q, ErrReaderClosed)
	}
	ids, err := r.rdb.SMembers(ctx, q.key(r.keys)).Result()
	if err != nil {
		r.stats.redisErrors[opLookup].Add(1)
		r.reloadTopology()
		return nil, fmt.Errorf("lookup %s: %w: %w", q, ErrUnavailable, err)
	}
	slices.Sort(ids)
	found := make([]*Entry, len(ids))
	var missed []int
	for i, id := range ids {
		if it, ok := r.item(id); ok && r.serves(it) {
			r.touch(id, it)
			if it.err == nil {
				r.stats.hits.Add(1)
				found[i] = &it.entry
			} else {
				r.stats.negativeHits.Add(1)
			}
			continue
		}
		r.stats.misses.Add(1)
		missed = append(missed, i)
	}
	if len(missed) > 0 {
		if err := r.fillMany(ctx, ids, missed, found); err != nil {
			return nil, fmt.Errorf("lookup %s: %w", q, err)
		}
	}
	out := make([]Entry, 0, len(ids))
	for _, e := range found {
		if e != nil && q.matches(*e) {
			out = append(out, *e)
		}
	}
	return out, nil
}

// fillMany reads the entries of ids[i] for every i in missed in one
// pipeline, stores each in found[i] and in the tier (with the same
// race-safety as a Get's fill).
func (r *Reader) fillMany(ctx context.Context, ids []string, missed []int, found []*Entry) error {
	mids := make([]string, len(missed))
	toks := make([]fillToken, len(missed))
	for j, i := range missed {
		mids[j] = ids[i]
		toks[j] = r.beginFill(ids[i])
	}
	hs, err := readHashes(ctx, r.rdb, r.keys, mids)
	if r.opts.afterRead != nil {
		r.opts.afterRead(mids)
	}
	if err != nil {
		for j, id := range mids {
			r.endFill(id, toks[j], nil)
		}
		r.stats.redisErrors[opLookup].Add(1)
		r.reloadTopology()
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var bad error
	for j, id := range mids {
		e, err := decodeEntry(id, hs[j])
		r.endFill(id, toks[j], r.itemFor(e, err))
		switch {
		case err == nil:
			found[missed[j]] = &e
		case !errors.Is(err, ErrNotFound) && bad == nil:
			bad = err
		}
	}
	return bad
}
