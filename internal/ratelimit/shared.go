package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// Defaults of Options.
const (
	// DefaultHeartbeat is how often a replica renews its registration.
	DefaultHeartbeat = 5 * time.Second
	// registrationTTLs is how many heartbeats a registration outlives: a
	// replica that stops (or loses Redis) is forgotten after that.
	registrationTTLs = 3
	// redisTimeout bounds one reservation in Redis: past it the request
	// goes by this replica's share instead.
	redisTimeout = time.Second
	// blockTime is how much of the rate one reservation in Redis takes at
	// most: above 100 requests a second a replica reserves 10 ms worth of
	// requests at once and spaces them itself, so that a high rate does not
	// cost a script in Redis per request.
	blockTime = 10 * time.Millisecond
	// maxBlock bounds the requests of one reservation.
	maxBlock = 100
	// DefaultRedisRetry is how long a replica that could not reach Redis
	// paces itself before it asks Redis again.
	DefaultRedisRetry = 5 * time.Second
)

// Options configure a Shared limit.
type Options struct {
	// Rate is how many requests per second all replicas together may send.
	// It must be positive.
	Rate float64
	// Burst is how many requests may go at once after a quiet spell; 1
	// (requests spaced 1/Rate apart) when zero.
	Burst int
	// Prefix is the key prefix (the cache's); the limit's keys share one
	// hash slot, {ratelimit}.
	Prefix string
	// Heartbeat is how often this replica renews its registration;
	// DefaultHeartbeat when zero.
	Heartbeat time.Duration
	// RedisRetry is how long this replica paces itself at its share after
	// Redis failed to answer, before it asks Redis again; DefaultRedisRetry
	// when zero.
	RedisRetry time.Duration
	// Log gets a line when the limit falls back to this replica's share and
	// when it comes back; discarded if nil.
	Log *slog.Logger
}

// Shared is the request limit of the whole organisation, kept in Redis.
// Wait is safe for concurrent use; Start it before use and Close it once.
type Shared struct {
	rdb       redis.UniversalClient
	opts      Options
	log       *slog.Logger
	id        string
	tatKey    string
	aliveKey  string
	interval  time.Duration
	tolerance time.Duration

	block int // requests reserved at once

	mu        sync.Mutex
	slots     []time.Time   // reserved send times not used yet, earliest first
	reserving chan struct{} // closed when the block being reserved is in
	replicas  int           // as last counted, at least 1
	local     *rate.Limiter // this replica's share, used while Redis fails
	downUntil time.Time     // until then, Wait does not ask Redis
	fallback  bool

	stop chan struct{}
	done chan struct{}
}

// Keys returns the keys of the limit under prefix: the limit's state and
// the replicas' registrations.
func Keys(prefix string) (limit, replicas string) {
	return prefix + "{ratelimit}:gcra", prefix + "{ratelimit}:replicas"
}

// New returns a Shared limit in rdb; nothing runs until Start.
func New(rdb redis.UniversalClient, opts Options) (*Shared, error) {
	if !(opts.Rate > 0) || math.IsInf(opts.Rate, 0) {
		return nil, fmt.Errorf("rate limit: rate %v must be a positive number", opts.Rate)
	}
	if opts.Burst <= 0 {
		opts.Burst = 1
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.RedisRetry <= 0 {
		opts.RedisRetry = DefaultRedisRetry
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("rate limit: replica id: %w", err)
	}
	interval := time.Duration(float64(time.Second) / opts.Rate)
	s := &Shared{
		rdb: rdb, opts: opts, log: log, id: hex.EncodeToString(b),
		interval: max(interval, time.Microsecond), tolerance: time.Duration(opts.Burst-1) * interval,
		replicas: 1, local: rate.NewLimiter(rate.Limit(opts.Rate), opts.Burst),
	}
	s.block = min(maxBlock, max(1, int(opts.Rate*blockTime.Seconds())))
	s.tatKey, s.aliveKey = Keys(opts.Prefix)
	return s, nil
}

// Start registers this replica and keeps its registration alive until
// Close. It fails when Redis does not answer: without the count of
// replicas, this one would not know its share.
func (s *Shared) Start(ctx context.Context) error {
	if err := s.beat(ctx); err != nil {
		return fmt.Errorf("rate limit: register this replica: %w", err)
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.heartbeat()
	return nil
}

// Close stops the heartbeat and removes this replica's registration, so
// the others' shares grow at once rather than when it expires.
func (s *Shared) Close(ctx context.Context) error {
	if s.stop == nil {
		return nil
	}
	close(s.stop)
	<-s.done
	s.stop = nil
	if err := s.rdb.ZRem(ctx, s.aliveKey, s.id).Err(); err != nil {
		return fmt.Errorf("rate limit: unregister this replica: %w", err)
	}
	return nil
}

func (s *Shared) heartbeat() {
	defer close(s.done)
	t := time.NewTicker(s.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.Heartbeat)
		if err := s.beat(ctx); err != nil {
			s.log.Debug("rate limit: renew this replica's registration", "err", err)
		}
		cancel()
	}
}

// beat renews the registration and updates the count of replicas, and with
// it this replica's share.
func (s *Shared) beat(ctx context.Context) error {
	n, err := beat(ctx, s.rdb, s.aliveKey, s.id, registrationTTLs*s.opts.Heartbeat)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n = max(n, 1); n != s.replicas {
		s.replicas = n
		s.local.SetLimit(rate.Limit(s.opts.Rate / float64(n)))
	}
	return nil
}

// Replicas returns how many replicas share the limit, as last counted.
func (s *Shared) Replicas() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replicas
}

// Fallback reports whether this replica paces itself at its share because
// Redis did not answer its last reservation.
func (s *Shared) Fallback() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fallback
}

// Wait blocks until one more request may be sent, by the shared limit or,
// while Redis does not answer, by this replica's share of it. It fails when
// ctx ends first, or when its deadline comes before the request's turn.
func (s *Shared) Wait(ctx context.Context) error {
	at, err := s.slot(ctx)
	if err != nil || at.IsZero() {
		return err
	}
	wait := time.Until(at)
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// slot returns when the caller's request may go: a time reserved in Redis
// (in a block, above 100 requests a second), or zero once this replica's
// own share let it go (Redis failing).
func (s *Shared) slot(ctx context.Context) (time.Time, error) {
	s.mu.Lock()
	for {
		now := time.Now()
		// A slot that passed more than an interval ago is dropped: used
		// late, it would bunch up with slots reserved since.
		for len(s.slots) > 0 && s.slots[0].Before(now.Add(-s.interval)) {
			s.slots = s.slots[1:]
		}
		if len(s.slots) > 0 {
			at := s.slots[0]
			s.slots = s.slots[1:]
			s.mu.Unlock()
			return at, nil
		}
		if s.reserving == nil {
			break
		}
		// Another caller is reserving a block: its slots are for us too.
		wait := s.reserving
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-wait:
		}
		s.mu.Lock()
	}
	useRedis := time.Now().After(s.downUntil)
	local := s.local
	var done chan struct{}
	if useRedis && s.block > 1 {
		done = make(chan struct{})
		s.reserving = done
	}
	s.mu.Unlock()
	if !useRedis {
		return time.Time{}, local.Wait(ctx)
	}
	at, err := s.reserve(ctx)
	if done != nil {
		s.mu.Lock()
		s.reserving = nil
		s.mu.Unlock()
		close(done)
	}
	if errors.Is(err, errRedis) {
		return time.Time{}, local.Wait(ctx)
	}
	return at, err
}

// errRedis: Redis did not answer the reservation.
var errRedis = errors.New("rate limit: Redis did not answer")

// reserve reserves a block of requests in Redis, keeps all but the first
// in slots, and returns when the first may go.
func (s *Shared) reserve(ctx context.Context) (time.Time, error) {
	args := reserveArgs{Interval: s.interval, Tolerance: s.tolerance, Count: s.block}
	if dl, ok := ctx.Deadline(); ok {
		args.Longest = max(time.Until(dl), time.Microsecond)
	}
	rctx, cancel := context.WithTimeout(ctx, redisTimeout)
	wait, ok, err := reserve(rctx, s.rdb, s.tatKey, args)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return time.Time{}, ctx.Err()
		}
		s.redisFailed(err)
		return time.Time{}, errRedis
	}
	s.redisAnswered()
	if !ok {
		return time.Time{}, errors.New("rate limit: the request's turn comes after its deadline")
	}
	first := time.Now().Add(wait)
	if s.block > 1 {
		s.mu.Lock()
		for i := 1; i < s.block; i++ {
			s.slots = append(s.slots, first.Add(time.Duration(i)*s.interval))
		}
		s.mu.Unlock()
	}
	return first, nil
}

func (s *Shared) redisFailed(err error) {
	s.mu.Lock()
	s.downUntil = time.Now().Add(s.opts.RedisRetry)
	was := s.fallback
	s.fallback = true
	n := s.replicas
	s.mu.Unlock()
	if !was {
		s.log.Warn("rate limit: Redis does not answer; pacing this replica at its share of the rate",
			"share_per_s", s.opts.Rate/float64(n), "replicas", n, "err", err)
	}
}

func (s *Shared) redisAnswered() {
	s.mu.Lock()
	was := s.fallback
	s.fallback = false
	s.mu.Unlock()
	if was {
		s.log.Info("rate limit: Redis answers again; back on the limit shared by every replica")
	}
}
