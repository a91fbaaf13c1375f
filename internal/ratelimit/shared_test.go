package ratelimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/internal/ratelimit"
	"github.com/prismcache/prismcache/internal/redistest"
)

func mustStart(t *testing.T, rdb redis.UniversalClient, opts ratelimit.Options) *ratelimit.Shared {
	t.Helper()
	s, err := ratelimit.New(rdb, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// grants runs callers goroutines calling Wait on the limits in turn for
// about d, and returns when each Wait let a request go.
func grants(t *testing.T, limits []*ratelimit.Shared, callers int, d time.Duration) (times []time.Time, per []int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	per = make([]int64, len(limits))
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := i % len(limits)
			for ctx.Err() == nil {
				if err := limits[l].Wait(ctx); err != nil {
					return
				}
				mu.Lock()
				times = append(times, time.Now())
				per[l]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return times, per
}

// within reports the largest number of grants in any window of length w.
func within(times []time.Time, w time.Duration) int {
	best := 0
	for i := range times {
		n := 0
		for _, t := range times {
			if !t.Before(times[i]) && t.Sub(times[i]) < w {
				n++
			}
		}
		best = max(best, n)
	}
	return best
}

// TestReplicasShareOneLimit: two replicas, each with eight callers as eager
// as they can be, together get no more than the rate: not more than 20
// grants in any second at 20 per second — with 10 % of slack, as the test
// sees each grant when its goroutine wakes up, a little late and not
// always by as much — where each on its own limit would get 40; and both
// get their turns.
func TestReplicasShareOneLimit(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		opts := ratelimit.Options{Rate: 20, Prefix: b.Prefix}
		a, c := mustStart(t, b.Client, opts), mustStart(t, b.Client, opts)
		times, per := grants(t, []*ratelimit.Shared{a, c}, 16, 2500*time.Millisecond)
		got := within(times, time.Second)
		t.Logf("%d grants in 2.5 s, at most %d in one second; per replica %v", len(times), got, per)
		if got > 22 {
			t.Errorf("%d grants within one second at a shared rate of 20/s (%d in all)", got, len(times))
		}
		if per[0] == 0 || per[1] == 0 {
			t.Errorf("grants per replica %v: both must get turns", per)
		}
		if len(times) < 10 {
			t.Errorf("only %d grants in 2.5 s at 20/s: the limit starves its callers", len(times))
		}
	})
}

// TestAHighRateIsReservedInBlocks: at 1,000 requests a second each replica
// reserves 10 ms worth of requests at once and spaces them itself; two
// replicas together still get no more than the rate in any second (with 5 %
// of slack, for wake-ups and for the slots of two blocks touching), where
// each on its own would get 2,000.
func TestAHighRateIsReservedInBlocks(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		opts := ratelimit.Options{Rate: 1000, Prefix: b.Prefix}
		a, c := mustStart(t, b.Client, opts), mustStart(t, b.Client, opts)
		times, per := grants(t, []*ratelimit.Shared{a, c}, 32, 1500*time.Millisecond)
		got := within(times, time.Second)
		t.Logf("%d grants in 1.5 s, at most %d in one second; per replica %v", len(times), got, per)
		if got > 1050 {
			t.Errorf("%d grants within one second at a shared rate of 1,000/s", got)
		}
		if per[0] == 0 || per[1] == 0 || len(times) < 100 {
			t.Errorf("grants per replica %v: both must get turns, and many", per)
		}
	})
}

// TestReplicasCountEachOther: every replica learns how many share the
// limit, and a replica that closes leaves at once.
func TestReplicasCountEachOther(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		opts := ratelimit.Options{Rate: 10, Prefix: b.Prefix, Heartbeat: 20 * time.Millisecond}
		a := mustStart(t, b.Client, opts)
		if a.Replicas() != 1 {
			t.Fatalf("alone: %d replicas", a.Replicas())
		}
		c := mustStart(t, b.Client, opts)
		d := mustStart(t, b.Client, opts)
		eventually(t, "three replicas counted by each", func() bool {
			return a.Replicas() == 3 && c.Replicas() == 3 && d.Replicas() == 3
		})
		if err := d.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the closed one forgotten", func() bool { return a.Replicas() == 2 && c.Replicas() == 2 })
	})
}

// TestAReplicaWithoutRedisPacesItselfAtItsShare: when Redis stops
// answering, each of two replicas falls back to half the rate on its own;
// when Redis is back, they share the limit in Redis again.
func TestAReplicaWithoutRedisPacesItselfAtItsShare(t *testing.T) {
	b := redistest.Mini(t)
	opts := ratelimit.Options{Rate: 20, Prefix: b.Prefix, Heartbeat: 20 * time.Millisecond, RedisRetry: 100 * time.Millisecond}
	a, c := mustStart(t, b.Client, opts), mustStart(t, b.Client, opts)
	eventually(t, "two replicas counted", func() bool { return a.Replicas() == 2 && c.Replicas() == 2 })
	b.Mini.Close()
	ctx := context.Background()
	if err := a.Wait(ctx); err != nil {
		t.Fatalf("Wait without Redis: %v", err)
	}
	if !a.Fallback() {
		t.Fatal("Fallback() = false after Redis failed")
	}
	var n atomic.Int64
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a.Wait(wctx) == nil {
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	// Its share is 10/s: at most 10 a second, and one for the start.
	if max := int64(10*elapsed.Seconds()) + 1; n.Load() > max || n.Load() < 5 {
		t.Errorf("%d grants in %s without Redis; want about its share, at most %d", n.Load(), elapsed.Round(time.Millisecond), max)
	}
	if err := b.Mini.Restart(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the shared limit again", func() bool {
		_ = a.Wait(ctx)
		return !a.Fallback()
	})
}
