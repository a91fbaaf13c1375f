package refresh_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/testutil"
)

// TestCensusCountsWhatTheCacheHoldsNow: the census counts entries by state
// as they are in Redis, and records the counts for every replica to read.
func TestCensusCountsWhatTheCacheHoldsNow(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		db := store.New(b.Client, store.Options{Prefix: b.Prefix})
		census := &refresh.Census{Store: db, Rate: 1_000_000}
		if c, err := census.Read(ctx); err != nil || c != nil {
			t.Fatalf("Read before any census = %+v, %v; want none", c, err)
		}
		oldest := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		put := func(id string, f func(*cache.Entry)) {
			e := cache.Entry{Doc: &cache.Doc{ID: id, DeployedVersion: 1}, DeployedVersion: 1, FetchedAt: oldest.Add(time.Hour)}
			if f != nil {
				f(&e)
			}
			if _, err := db.Apply(ctx, id, cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 5 {
			put(fmt.Sprintf("fresh-%d", i), nil)
		}
		put("stale-1", func(e *cache.Entry) {
			e.Stale, e.StaleReason, e.StaleSince = true, cache.StaleUpdated, oldest.Add(2*time.Hour)
		})
		put("stale-2", func(e *cache.Entry) {
			e.Stale, e.StaleReason, e.StaleSince, e.FetchedAt = true, cache.StaleNeedsDeploy, oldest.Add(time.Minute), oldest
		})
		put("failing", func(e *cache.Entry) {
			e.Stale, e.StaleReason, e.PriorStaleReason, e.LastError, e.StaleSince = true, cache.StaleFetchFailed, cache.StaleUpdated, "HTTP 502", oldest.Add(3*time.Hour)
		})
		counts, err := census.Take(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if counts.Fresh != 5 || counts.Stale != 2 || counts.FetchFailed != 1 {
			t.Fatalf("counts %+v, want 5 fresh, 2 stale, 1 fetch_failed", counts)
		}
		if counts.OldestStaleID != "stale-2" || !counts.OldestStaleSince.Equal(oldest.Add(time.Minute)) || !counts.OldestFetch.Equal(oldest) {
			t.Fatalf("oldest: %+v", counts)
		}
		// Run records a census that any replica reads.
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); census.Run(runCtx) }()
		testutil.Eventually(t, "a recorded census", func() bool {
			other := &refresh.Census{Store: db}
			c, err := other.Read(ctx)
			return err == nil && c != nil && c.Fresh == 5 && c.FetchFailed == 1
		})
		cancel()
		<-done
	})
}
