package refresh

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/store"
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
	Store *store.Store
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

// Run takes a census every Every, when no other replica is taking one,
// until ctx ends.
func (c *Census) Run(ctx context.Context) {
	every := c.Every
	if every <= 0 {
		every = DefaultCensusEvery
	}
	lock := c.Store.Lock(c.Store.Keys().CensusLease(), 30*time.Second)
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
	var counts Counts
	err := c.Store.Scan(ctx, censusBatch, func(ids []string) error {
		states, err := c.Store.Peek(ctx, ids)
		if err != nil {
			return err
		}
		for i, st := range states {
			counts.add(ids[i], st)
		}
		// Pace: a batch of n entries takes at least n/rate.
		time.Sleep(time.Duration(len(ids)) * time.Second / time.Duration(rate))
		return ctx.Err()
	})
	if err != nil {
		return Counts{}, fmt.Errorf("census: %w", err)
	}
	counts.At = time.Now()
	counts.Took = counts.At.Sub(start)
	return counts, nil
}

// add counts one entry.
func (counts *Counts) add(id string, st store.State) {
	e := st.Entry
	if !st.Exists {
		return // deleted since the scan
	}
	switch {
	case e.StaleReason == cache.StaleFetchFailed:
		counts.FetchFailed++
	case e.Stale:
		counts.Stale++
	default:
		counts.Fresh++
	}
	if !e.FetchedAt.IsZero() && (counts.OldestFetch.IsZero() || e.FetchedAt.Before(counts.OldestFetch)) {
		counts.OldestFetch = e.FetchedAt
	}
	if e.Stale && !e.StaleSince.IsZero() && (counts.OldestStaleSince.IsZero() || e.StaleSince.Before(counts.OldestStaleSince)) {
		counts.OldestStaleID, counts.OldestStaleSince = id, e.StaleSince
	}
}

func (c *Census) record(ctx context.Context, counts Counts) error {
	return c.Store.SaveCensus(ctx, counts)
}

// Read returns the latest census of any replica, nil when none was taken
// (or Redis was flushed since).
func (c *Census) Read(ctx context.Context) (*Counts, error) {
	var counts Counts
	found, err := c.Store.LoadCensus(ctx, &counts)
	if err != nil || !found {
		return nil, err
	}
	return &counts, nil
}
