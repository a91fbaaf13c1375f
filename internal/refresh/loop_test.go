package refresh_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/refresh"
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
		store := cache.NewStore(b.Client, cache.StoreOptions{Prefix: b.Prefix})
		work := refresh.NewWorkSet(b.Client, store.Keys(), refresh.WorkSetOptions{})
		clk := newClock()
		api := &emptyLister{}
		var passes atomic.Int64
		done := make(chan struct{}, 2)
		for range 2 {
			r := &refresh.Reconciler{API: api, Store: store, Work: work, Now: clk.Now}
			go func() {
				defer func() { done <- struct{}{} }()
				r.Run(ctx, refresh.LoopOptions{Interval: time.Hour, MarkerCheck: 5 * time.Millisecond,
					OnPass: func(_ refresh.Report, err error) {
						if err == nil {
							passes.Add(1)
						}
					}})
			}()
		}
		eventually(t, "the first pass", func() bool { return passes.Load() >= 1 })
		// Both replicas keep checking; within the interval nobody passes.
		time.Sleep(100 * time.Millisecond) // let each loop check the marker many times
		if n := passes.Load(); n != 1 {
			t.Fatalf("%d passes within one interval, want 1", n)
		}
		clk.Advance(2 * time.Hour) // the interval is over for both
		eventually(t, "the second pass", func() bool { return passes.Load() >= 2 })
		time.Sleep(100 * time.Millisecond)
		if n := passes.Load(); n != 2 {
			t.Fatalf("%d passes after one interval, want 2: each replica ran its own", n)
		}
		cancel()
		<-done
		<-done
	})
}
