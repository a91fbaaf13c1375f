package refresh_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/testutil"
)

func newWorkSet(t *testing.T, b redistest.Backend, c *testutil.Clock, lease time.Duration) *refresh.WorkSet {
	t.Helper()
	return refresh.NewWorkSet(b.Client, store.NewKeys(b.Prefix), refresh.WorkSetOptions{Lease: lease, Now: c.Now})
}

func mustClaim(t *testing.T, ws *refresh.WorkSet, max int, token string) []refresh.Claim {
	t.Helper()
	cl, err := ws.Claim(context.Background(), max, token)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return cl
}

func ids(cl []refresh.Claim) []string {
	out := make([]string, len(cl))
	for i, c := range cl {
		out[i] = c.ID
	}
	return out
}

func TestWorkSetCoalescesABurst(t *testing.T) { redistest.Each(t, testWorkSetCoalescesABurst) }

func testWorkSetCoalescesABurst(t *testing.T, b redistest.Backend) {
	ctx := context.Background()
	c := testutil.NewClock()
	ws := newWorkSet(t, b, c, time.Minute)
	for range 50 {
		if err := ws.Add(ctx, time.Time{}, "a", "b"); err != nil {
			t.Fatal(err)
		}
	}
	cl := mustClaim(t, ws, 100, "w1")
	if len(cl) != 2 {
		t.Fatalf("a burst of 50 adds of 2 ids gave %d claims (%v), want 2", len(cl), ids(cl))
	}
	if more := mustClaim(t, ws, 100, "w2"); len(more) != 0 {
		t.Fatalf("second claimer got %v while the ids are claimed", ids(more))
	}
}

func TestWorkSetRerunsOnceWhenAddedWhileClaimed(t *testing.T) {
	redistest.Each(t, testWorkSetRerunsOnceWhenAddedWhileClaimed)
}

func testWorkSetRerunsOnceWhenAddedWhileClaimed(t *testing.T, b redistest.Backend) {
	ctx := context.Background()
	c := testutil.NewClock()
	ws := newWorkSet(t, b, c, time.Minute)
	if err := ws.Add(ctx, time.Time{}, "a"); err != nil {
		t.Fatal(err)
	}
	cl := mustClaim(t, ws, 1, "w1")
	for range 5 { // a burst while the fetch is in flight
		if err := ws.Add(ctx, time.Time{}, "a"); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustClaim(t, ws, 10, "w2"); len(got) != 0 {
		t.Fatalf("an id claimed by w1 was handed to w2: %v", ids(got))
	}
	rerun, err := ws.Done(ctx, cl[0])
	if err != nil || !rerun {
		t.Fatalf("Done after adds during the run: rerun=%v err=%v, want a rerun", rerun, err)
	}
	again := mustClaim(t, ws, 10, "w2")
	if len(again) != 1 || again[0].ID != "a" {
		t.Fatalf("rerun claim = %v, want [a]", ids(again))
	}
	rerun, err = ws.Done(ctx, again[0])
	if err != nil || rerun {
		t.Fatalf("second Done: rerun=%v err=%v, want no further run", rerun, err)
	}
	if got := mustClaim(t, ws, 10, "w3"); len(got) != 0 {
		t.Fatalf("a third run appeared: %v", ids(got))
	}
}

func TestWorkSetAddIfRunningQueuesOnlyClaimedIDs(t *testing.T) {
	redistest.Each(t, testWorkSetAddIfRunningQueuesOnlyClaimedIDs)
}

func testWorkSetAddIfRunningQueuesOnlyClaimedIDs(t *testing.T, b redistest.Backend) {
	ctx := context.Background()
	ws := newWorkSet(t, b, testutil.NewClock(), time.Minute)
	if err := ws.AddIfRunning(ctx, "idle"); err != nil {
		t.Fatal(err)
	}
	if got := mustClaim(t, ws, 10, "w"); len(got) != 0 {
		t.Fatalf("AddIfRunning queued an idle id: %v", ids(got))
	}
	_ = ws.Add(ctx, time.Time{}, "busy")
	cl := mustClaim(t, ws, 10, "w")
	if err := ws.AddIfRunning(ctx, "busy"); err != nil {
		t.Fatal(err)
	}
	if rerun, _ := ws.Done(ctx, cl[0]); !rerun {
		t.Fatal("AddIfRunning on a claimed id did not schedule a rerun")
	}
}

func TestWorkSetExpiredLeaseIsClaimedAgain(t *testing.T) {
	redistest.Each(t, testWorkSetExpiredLeaseIsClaimedAgain)
}

func testWorkSetExpiredLeaseIsClaimedAgain(t *testing.T, b redistest.Backend) {
	ctx := context.Background()
	c := testutil.NewClock()
	ws := newWorkSet(t, b, c, 10*time.Second)
	_ = ws.Add(ctx, time.Time{}, "a")
	dead := mustClaim(t, ws, 1, "crashed-worker")
	c.Advance(9 * time.Second)
	if got := mustClaim(t, ws, 1, "w2"); len(got) != 0 {
		t.Fatalf("claimed before the lease expired: %v", ids(got))
	}
	c.Advance(2 * time.Second)
	got := mustClaim(t, ws, 1, "w2")
	if len(got) != 1 || got[0].ID != "a" {
		t.Fatalf("after the lease expired: %v, want [a]", ids(got))
	}
	if _, err := ws.Done(ctx, dead[0]); !errors.Is(err, refresh.ErrLeaseLost) {
		t.Fatalf("the dead worker's Done: err = %v, want ErrLeaseLost", err)
	}
	if err := ws.Extend(ctx, dead[0]); !errors.Is(err, refresh.ErrLeaseLost) {
		t.Fatalf("the dead worker's Extend: err = %v, want ErrLeaseLost", err)
	}
	if _, err := ws.Done(ctx, got[0]); err != nil {
		t.Fatalf("the live worker's Done: %v", err)
	}
}

func TestWorkSetExtendKeepsTheLease(t *testing.T) { redistest.Each(t, testWorkSetExtendKeepsTheLease) }

func testWorkSetExtendKeepsTheLease(t *testing.T, b redistest.Backend) {
	ctx := context.Background()
	c := testutil.NewClock()
	ws := newWorkSet(t, b, c, 10*time.Second)
	_ = ws.Add(ctx, time.Time{}, "a")
	cl := mustClaim(t, ws, 1, "w1")
	for range 3 {
		c.Advance(8 * time.Second)
		if err := ws.Extend(ctx, cl[0]); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustClaim(t, ws, 1, "w2"); len(got) != 0 {
		t.Fatalf("an extended lease was taken over: %v", ids(got))
	}
}

func TestWorkSetRetryBacksOffAndCountsAttempts(t *testing.T) {
	redistest.Each(t, testWorkSetRetryBacksOffAndCountsAttempts)
}

func testWorkSetRetryBacksOffAndCountsAttempts(t *testing.T, b redistest.Backend) {
	ctx := context.Background()
	c := testutil.NewClock()
	ws := newWorkSet(t, b, c, time.Minute)
	_ = ws.Add(ctx, time.Time{}, "a")
	for attempt := 0; attempt < 3; attempt++ {
		cl := mustClaim(t, ws, 1, "w")
		if len(cl) != 1 || cl[0].Attempts != attempt {
			t.Fatalf("attempt %d: claims %+v", attempt, cl)
		}
		if err := ws.Retry(ctx, cl[0], c.Now().Add(30*time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := mustClaim(t, ws, 1, "w"); len(got) != 0 {
			t.Fatalf("claimed before its retry was due: %v", ids(got))
		}
		// An event now does not cut the backoff short.
		_ = ws.Add(ctx, c.Now().Add(30*time.Second), "a")
		c.Advance(31 * time.Second)
	}
	if s, _ := ws.Stats(ctx); s.Failing != 1 {
		t.Fatalf("stats %+v: want the id counted as failing", s)
	}
	cl := mustClaim(t, ws, 1, "w")
	if err := ws.Drop(ctx, cl[0]); err != nil {
		t.Fatal(err)
	}
	_ = ws.Add(ctx, time.Time{}, "a")
	if cl := mustClaim(t, ws, 1, "w"); len(cl) != 1 || cl[0].Attempts != 0 {
		t.Fatalf("after a drop, attempts were not reset: %+v", cl)
	}
}

func TestWorkSetReleaseMakesItDueAgain(t *testing.T) {
	redistest.Each(t, testWorkSetReleaseMakesItDueAgain)
}

func testWorkSetReleaseMakesItDueAgain(t *testing.T, b redistest.Backend) {
	ctx := context.Background()
	ws := newWorkSet(t, b, testutil.NewClock(), time.Minute)
	_ = ws.Add(ctx, time.Time{}, "a")
	cl := mustClaim(t, ws, 1, "shutting-down")
	if err := ws.Release(ctx, cl[0]); err != nil {
		t.Fatal(err)
	}
	if got := mustClaim(t, ws, 1, "other"); len(got) != 1 {
		t.Fatalf("a released id is not claimable: %v", ids(got))
	}
}

// TestWorkSetNeverHandsOneIDToTwoWorkers runs many claimers at once over
// ids that are added again and again, and checks that no id is ever held by
// two of them.
func TestWorkSetNeverHandsOneIDToTwoWorkers(t *testing.T) {
	redistest.Each(t, testWorkSetNeverHandsOneIDToTwoWorkers)
}

func testWorkSetNeverHandsOneIDToTwoWorkers(t *testing.T, b redistest.Backend) {
	ctx := context.Background()
	ws := refresh.NewWorkSet(b.Client, store.NewKeys(b.Prefix), refresh.WorkSetOptions{Lease: time.Minute})
	var holders sync.Map // id → token
	var overlaps, runs atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cl, err := ws.Claim(ctx, 3, fmt.Sprintf("w%d", w))
				if err != nil {
					t.Error(err)
					return
				}
				for _, c := range cl {
					if _, loaded := holders.LoadOrStore(c.ID, c.Token); loaded {
						overlaps.Add(1)
					}
					runs.Add(1)
					// Hold it across a round trip, as a fetch would.
					if err := ws.Extend(ctx, c); err != nil {
						t.Error(err)
					}
					holders.Delete(c.ID)
					if _, err := ws.Done(ctx, c); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	for i := range 300 {
		if err := ws.Add(ctx, time.Time{}, fmt.Sprintf("id%d", i%7)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s, err := ws.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Queued == 0 && s.Leased == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if overlaps.Load() != 0 {
		t.Fatalf("%d times an id was held by two workers at once", overlaps.Load())
	}
	if runs.Load() < 7 || runs.Load() > 300 {
		t.Fatalf("%d runs for 300 adds over 7 ids: want between 7 and 300", runs.Load())
	}
	if s, _ := ws.Stats(ctx); s.Queued != 0 || s.Leased != 0 {
		t.Fatalf("work left after quiescence: %+v", s)
	}
}

// TestWorkSetOnRedisCluster runs the work-set suite against a Redis Cluster
// of three masters that the test starts itself (skipped, saying how to run
// it, when redis-server is not installed).
func TestWorkSetOnRedisCluster(t *testing.T) {
	c := redistest.Cluster(t)
	for name, fn := range map[string]func(*testing.T, redistest.Backend){
		"WorkSetCoalescesABurst":                  testWorkSetCoalescesABurst,
		"WorkSetRerunsOnceWhenAddedWhileClaimed":  testWorkSetRerunsOnceWhenAddedWhileClaimed,
		"WorkSetAddIfRunningQueuesOnlyClaimedIDs": testWorkSetAddIfRunningQueuesOnlyClaimedIDs,
		"WorkSetExpiredLeaseIsClaimedAgain":       testWorkSetExpiredLeaseIsClaimedAgain,
		"WorkSetExtendKeepsTheLease":              testWorkSetExtendKeepsTheLease,
		"WorkSetRetryBacksOffAndCountsAttempts":   testWorkSetRetryBacksOffAndCountsAttempts,
		"WorkSetReleaseMakesItDueAgain":           testWorkSetReleaseMakesItDueAgain,
		"WorkSetNeverHandsOneIDToTwoWorkers":      testWorkSetNeverHandsOneIDToTwoWorkers,
	} {
		t.Run(name, func(t *testing.T) { fn(t, c.Fresh(t)) })
	}
}

// TestWorkSetDrainsTheEarlierLayout: work queued in the single-slot layout
// of earlier versions — due ids, and ids whose old replica's claim expired —
// moves into the shards, where it is claimed; a claim an old replica still
// holds stays with it.
func TestWorkSetDrainsTheEarlierLayout(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		c := testutil.NewClock()
		ws := newWorkSet(t, b, c, time.Minute)
		old := b.Prefix + "{work}:"
		now := float64(c.Now().UnixMilli())
		rdb := b.Client
		rdb.ZAdd(ctx, old+"due", redis.Z{Score: now - 1000, Member: "queued-1"}, redis.Z{Score: now + 60_000, Member: "queued-later"})
		rdb.ZAdd(ctx, old+"leases", redis.Z{Score: now - 1, Member: "claim-expired"}, redis.Z{Score: now + 60_000, Member: "claim-live"})
		rdb.HSet(ctx, old+"owners", "claim-expired", "old-token", "claim-live", "old-token")
		rdb.HSet(ctx, old+"attempts", "queued-1", "2")

		moved, err := ws.Maintain(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if moved != 3 {
			t.Fatalf("moved %d, want 3 (two queued, one expired claim)", moved)
		}
		claims := mustClaim(t, ws, 10, "new")
		got := ids(claims)
		slices.Sort(got)
		if !slices.Equal(got, []string{"claim-expired", "queued-1"}) {
			t.Fatalf("claimed %v after the move, want the due and the expired ones", got)
		}
		for _, cl := range claims {
			if _, err := ws.Done(ctx, cl); err != nil {
				t.Fatal(err)
			}
		}
		c.Advance(2 * time.Minute)
		if got := ids(mustClaim(t, ws, 10, "new")); !slices.Equal(got, []string{"queued-later"}) {
			t.Fatalf("claimed %v once it was due, want [queued-later]", got)
		}
		if n := rdb.ZCard(ctx, old+"due").Val(); n != 0 {
			t.Fatalf("%d ids left in the old due set", n)
		}
		if rdb.ZScore(ctx, old+"leases", "claim-live").Err() != nil || rdb.HGet(ctx, old+"owners", "claim-live").Val() != "old-token" {
			t.Fatal("a claim an old replica still holds was taken from it")
		}
		if n := rdb.HLen(ctx, old+"attempts").Val(); n != 0 {
			t.Fatalf("%d attempt counts left behind", n)
		}
	})
}
