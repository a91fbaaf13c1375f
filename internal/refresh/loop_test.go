package refresh_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/testutil"
)

// emptyLister lists no instances, counting the passes that asked.
type emptyLister struct{ pages atomic.Int64 }

func (l *emptyLister) ListInstances(context.Context, string) (graphql.ListPage, error) {
	l.pages.Add(1)
	return graphql.ListPage{}, nil
}

// TestReplicasShareOneReconcileInterval: two replicas' loops, one Redis.
// After the first pass, however many replicas run, a new pass happens only
// once the interval has passed since the last pass of any of them.
func TestReplicasShareOneReconcileInterval(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		db := store.New(b.Client, store.Options{Prefix: b.Prefix})
		work := refresh.NewWorkSet(b.Client, db.Keys(), refresh.WorkSetOptions{})
		clk := testutil.NewClock()
		api := &emptyLister{}
		var passes atomic.Int64
		done := make(chan struct{}, 2)
		for range 2 {
			r := &refresh.Reconciler{API: api, Store: db, Work: work, Now: clk.Now}
			go func() {
				defer func() { done <- struct{}{} }()
				r.Run(ctx, refresh.LoopOptions{Interval: time.Hour, MarkerCheck: 5 * time.Millisecond,
					OnPass: func(_ refresh.Report, err error, _ string) {
						if err == nil {
							passes.Add(1)
						}
					}})
			}()
		}
		testutil.Eventually(t, "the first pass", func() bool { return passes.Load() >= 1 })
		// Both replicas keep checking; within the interval nobody passes.
		time.Sleep(100 * time.Millisecond) // let each loop check the marker many times
		if n := passes.Load(); n != 1 {
			t.Fatalf("%d passes within one interval, want 1", n)
		}
		clk.Advance(2 * time.Hour) // the interval is over for both
		testutil.Eventually(t, "the second pass", func() bool { return passes.Load() >= 2 })
		time.Sleep(100 * time.Millisecond)
		if n := passes.Load(); n != 2 {
			t.Fatalf("%d passes after one interval, want 2: each replica ran its own", n)
		}
		cancel()
		<-done
		<-done
	})
}

// TestAnOwedRepairRunsAPassAtOnce: a replica that refused webhooks (or lost
// Redis) owes a pass; it runs as soon as Redis answers, long before the
// interval, on whichever replica takes the lease, and pays the debt of the
// replica that owed it.
func TestAnOwedRepairRunsAPassAtOnce(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		db := store.New(b.Client, store.Options{Prefix: b.Prefix})
		work := refresh.NewWorkSet(b.Client, db.Keys(), refresh.WorkSetOptions{})
		clk := testutil.NewClock()
		api := &emptyLister{}
		var passes atomic.Int64
		repairs := make(chan string, 4)
		done := make(chan struct{}, 2)
		var replicas []*refresh.Reconciler
		for range 2 {
			r := &refresh.Reconciler{API: api, Store: db, Work: work, Now: clk.Now}
			replicas = append(replicas, r)
			go func() {
				defer func() { done <- struct{}{} }()
				r.Run(ctx, refresh.LoopOptions{Interval: time.Hour, MarkerCheck: 5 * time.Millisecond,
					OnPass: func(_ refresh.Report, err error, repair string) {
						if err == nil {
							passes.Add(1)
						}
						if repair != "" {
							repairs <- repair
						}
					}})
			}()
		}
		testutil.Eventually(t, "the first pass", func() bool { return passes.Load() >= 1 })
		owing := replicas[1]
		owing.Owe(refresh.RepairRefused, clk.Now())
		if o := owing.Owed(); o == nil || o.Reason != refresh.RepairRefused {
			t.Fatalf("Owed = %+v, want the refusal", o)
		}
		clk.Advance(2 * time.Second) // well within the hour
		testutil.Eventually(t, "the repair pass", func() bool { return passes.Load() >= 2 })
		testutil.Eventually(t, "the debt to be paid", func() bool { return owing.Owed() == nil })
		time.Sleep(100 * time.Millisecond)
		if n := passes.Load(); n != 2 {
			t.Fatalf("%d passes, want 2: one repair pays the debt", n)
		}
		// The pass that paid reported it, when it ran on the replica that
		// owed; either way the debt is gone and no other pass was owed.
		select {
		case r := <-repairs:
			if r != refresh.RepairRefused {
				t.Fatalf("repair reason %q", r)
			}
		default:
		}
		cancel()
		<-done
		<-done
	})
}

// slowLister lists no instances, and its page takes took of the clock.
type slowLister struct {
	clk   *testutil.Clock
	took  time.Duration
	pages atomic.Int64
}

func (l *slowLister) ListInstances(context.Context, string) (graphql.ListPage, error) {
	l.pages.Add(1)
	l.clk.Advance(l.took)
	return graphql.ListPage{}, nil
}

// TestALongPassSpacesTheNextOut: with an interval of a minute and passes
// that take 30 s, the next pass waits ten times the last one's length
// (5 minutes), so passes never take more than a tenth of the API quota.
func TestALongPassSpacesTheNextOut(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		db := store.New(b.Client, store.Options{Prefix: b.Prefix})
		work := refresh.NewWorkSet(b.Client, db.Keys(), refresh.WorkSetOptions{})
		clk := testutil.NewClock()
		api := &slowLister{clk: clk, took: 30 * time.Second}
		r := &refresh.Reconciler{API: api, Store: db, Work: work, Now: clk.Now}
		var passes atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			r.Run(ctx, refresh.LoopOptions{Interval: time.Minute, MarkerCheck: 5 * time.Millisecond,
				OnPass: func(_ refresh.Report, err error, _ string) {
					if err == nil {
						passes.Add(1)
					}
				}})
		}()
		// The clock moves only once the first pass is over (its end in
		// the marker): it took 30 s.
		testutil.Eventually(t, "the first pass", func() bool { return passes.Load() == 1 })
		clk.Advance(2 * time.Minute) // past the interval, within 10 × 30 s
		time.Sleep(100 * time.Millisecond)
		if n := api.pages.Load(); n != 1 {
			t.Fatalf("%d passes 2 minutes after a 30 s pass, want 1", n)
		}
		clk.Advance(3*time.Minute + time.Second)
		testutil.Eventually(t, "the second pass", func() bool { return passes.Load() == 2 })
		cancel()
		<-done
	})
}
