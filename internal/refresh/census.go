package refresh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/lease"
)

// Defaults of Census.
const (
	DefaultCensusEvery = 30 * time.Second
	// DefaultCensusRate bounds how many entries a census reads per second,
	// so that counting a large cache never loads Redis much: a million
	// entries take under a minute.
	DefaultCensusRate = 20_000
	censusBatch       = 1000
)

// Counts are the cached entries by state, as a census found them.
type Counts struct {
	// Fresh entries are not stale; Stale ones are, for any reason but
	// failing fetches; FetchFailed ones say fetch_failed.
	Fresh       int `json:"fresh"`
	Stale       int `json:"stale"`
	FetchFailed int `json:"fetchFailed"`
	// OldestFetch is the fetched_at of the least recently fetched entry.
	OldestFetch time.Time `json:"oldestFetch,omitzero"`
	// OldestStaleID has been stale the longest, since OldestStaleSince.
	OldestStaleID    string    `json:"oldestStaleId,omitempty"`
	OldestStaleSince time.Time `json:"oldestStaleSince,omitzero"`
	// At is when the census that found these ended; Took how long it ran.
	At   time.Time     `json:"at"`
	Took time.Duration `json:"took"`
}

// Census counts the cached entries by state, at a bounded pace, on one
// replica at a time, and records the counts in Redis for every replica to
// show: /status and the metrics tell what the cache holds now, not what a
// reconcile pass found before the entries were fetched. Fill its fields,
// then Run; it is safe for concurrent use.
type Census struct {
	Store *cache.Store
	Log   *slog.Logger
	// Every is how often a census runs; DefaultCensusEvery if zero.
	Every time.Duration
	// Rate bounds the entries read per second; DefaultCensusRate if zero.
	Rate int

	pokeOnce sync.Once
	poke     chan struct{}
}

func (c *Census) pokes() chan struct{} {
	c.pokeOnce.Do(func() { c.poke = make(chan struct{}, 1) })
	return c.poke
}

// Poke asks for a census soon, before Every has passed: after a reconcile
// pass, say, when many entries may have changed.
func (c *Census) Poke() {
	select {
	case c.pokes() <- struct{}{}:
	default:
	}
}

func (c *Census) key() string     { return c.Store.Keys().Prefix() + "census" }
func (c *Census) lockKey() string { return c.Store.Keys().Prefix() + "census:lease" }

// Run takes a census every Every, when no other replica is taking one,
// until ctx ends.
func (c *Census) Run(ctx context.Context) {
	every := c.Every
	if every <= 0 {
		every = DefaultCensusEvery
	}
	lock := lease.NewLock(c.Store.Client(), c.lockKey(), 30*time.Second)
	poked := false
	for {
		if prev, err := c.Read(ctx); err == nil && (prev == nil || poked || time.Since(prev.At) >= every) {
			_, err := lock.Do(ctx, func(ctx context.Context) error {
				counts, err := c.Take(ctx)
				if err != nil {
					return err
				}
				return c.record(ctx, counts)
			})
			if err != nil && ctx.Err() == nil {
				c.log().Warn("census of the cached entries", "err", err)
			}
		}
		poked = false
		select {
		case <-ctx.Done():
			return
		case <-c.pokes():
			poked = true
		case <-time.After(every / 3):
		}
	}
}

func (c *Census) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Take counts every cached entry once.
func (c *Census) Take(ctx context.Context) (Counts, error) {
	rate := c.Rate
	if rate <= 0 {
		rate = DefaultCensusRate
	}
	start := time.Now()
	prefix := strings.TrimSuffix(c.Store.Keys().Instance(""), "{}")
	var counts Counts
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := c.count(ctx, prefix, batch, &counts)
		batch = batch[:0]
		// Pace: a batch of n entries takes at least n/rate.
		time.Sleep(time.Duration(censusBatch) * time.Second / time.Duration(rate))
		return err
	}
	var ferr error
	err := scanKeys(ctx, c.Store.Client(), prefix+"{*}", func(key string) {
		if ferr != nil {
			return
		}
		batch = append(batch, key)
		if len(batch) == censusBatch {
			ferr = flush()
		}
	})
	if err == nil {
		err = ferr
	}
	if err == nil {
		err = flush()
	}
	if err != nil {
		return Counts{}, fmt.Errorf("census: %w", err)
	}
	counts.At = time.Now()
	counts.Took = counts.At.Sub(start)
	return counts, nil
}

// count reads the state fields of a batch of entries into counts.
func (c *Census) count(ctx context.Context, prefix string, keys []string, counts *Counts) error {
	pipe := c.Store.Client().Pipeline()
	cmds := make([]*redis.SliceCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HMGet(ctx, k, cache.FieldStale, cache.FieldStaleReason, cache.FieldFetchedAt, cache.FieldStaleSince)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for i, cmd := range cmds {
		vals := cmd.Val()
		if len(vals) < 4 {
			continue
		}
		str := func(j int) string { s, _ := vals[j].(string); return s }
		if str(2) == "" && str(0) == "" {
			continue // deleted since the scan
		}
		switch {
		case str(1) == cache.StaleFetchFailed:
			counts.FetchFailed++
		case str(0) == "1":
			counts.Stale++
		default:
			counts.Fresh++
		}
		if t, err := time.Parse(time.RFC3339Nano, str(2)); err == nil && (counts.OldestFetch.IsZero() || t.Before(counts.OldestFetch)) {
			counts.OldestFetch = t
		}
		if str(0) == "1" {
			if t, err := time.Parse(time.RFC3339Nano, str(3)); err == nil && (counts.OldestStaleSince.IsZero() || t.Before(counts.OldestStaleSince)) {
				counts.OldestStaleSince = t
				counts.OldestStaleID = strings.TrimSuffix(strings.TrimPrefix(keys[i], prefix+"{"), "}")
			}
		}
	}
	return nil
}

func (c *Census) record(ctx context.Context, counts Counts) error {
	b, err := json.Marshal(counts)
	if err != nil {
		return err
	}
	if err := c.Store.Client().Set(ctx, c.key(), b, 0).Err(); err != nil {
		return fmt.Errorf("record the census: %w", err)
	}
	return nil
}

// Read returns the latest census of any replica, nil when none was taken
// (or Redis was flushed since).
func (c *Census) Read(ctx context.Context) (*Counts, error) {
	b, err := c.Store.Client().Get(ctx, c.key()).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the census: %w", err)
	}
	var counts Counts
	if err := json.Unmarshal(b, &counts); err != nil {
		return nil, fmt.Errorf("read the census: %w", err)
	}
	return &counts, nil
}
