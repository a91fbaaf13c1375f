package server_test

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prismcache/prismcache/internal/server"
)

// cutter is a body read the budget can interrupt: Release it when cut, as
// the handler does once its read returns.
type cutter struct {
	res  *server.Reservation
	cuts atomic.Int32
}

func reserve(t *testing.T, b *server.Budget, n int64) *cutter {
	t.Helper()
	c := &cutter{}
	res, err := b.Reserve(n, func() {
		c.cuts.Add(1)
		// The handler's read returns and it releases, from its goroutine.
		go c.res.Release()
	})
	if err != nil {
		t.Fatalf("reserve %d: %v", n, err)
	}
	c.res = res
	return c
}

func TestBudgetAdmitsWithinAndCutsTheOldestBodyStillArriving(t *testing.T) {
	b := server.NewBudget(100, 10)
	first := reserve(t, b, 40)  // oldest, still arriving
	second := reserve(t, b, 40) // still arriving
	if st := b.Stats(); st.Bytes != 80 || st.Requests != 2 {
		t.Fatalf("after two: %+v", st)
	}
	// 30 more do not fit: the oldest body still arriving is cut for them.
	third := reserve(t, b, 30)
	if first.cuts.Load() != 1 || !first.res.Cut() || second.res.Cut() || third.res.Cut() {
		t.Fatalf("cuts: first %v, second %v, third %v; want only the first", first.res.Cut(), second.res.Cut(), third.res.Cut())
	}
	if !first.res.Finished() {
		t.Fatal("Finished of a cut body says it was not cut")
	}
	st := b.Stats()
	if st.Bytes != 70 || st.Requests != 2 || st.Shed != 1 || st.PeakBytes > 100 {
		t.Fatalf("after the cut: %+v; want 70 bytes in 2 requests, 1 shed, never over 100", st)
	}

	// A body read in full is never cut: with the second finished and the
	// third the only one arriving, 80 bytes cannot be made room for.
	if second.res.Finished() {
		t.Fatal("second was cut")
	}
	if _, err := b.Reserve(80, func() { t.Error("cut a body for a request that cannot fit anyway") }); !errors.Is(err, server.ErrOverloaded) {
		t.Fatalf("reserve 80: %v, want ErrOverloaded", err)
	}
	if third.res.Cut() || b.Stats().Refused != 1 {
		t.Fatalf("a refusal cut something or was not counted: %+v", b.Stats())
	}
	second.res.Release()
	second.res.Release() // idempotent
	third.res.Release()
	if st := b.Stats(); st.Bytes != 0 || st.Requests != 0 || st.HeldBytes != 0 {
		t.Fatalf("after every release: %+v", st)
	}
}

func TestBudgetCountsRequests(t *testing.T) {
	b := server.NewBudget(1<<20, 2)
	a := reserve(t, b, 1)
	done := reserve(t, b, 1)
	done.res.Finished()
	// The third request cuts the oldest arriving one, not the finished one.
	c := reserve(t, b, 1)
	if a.cuts.Load() != 1 || done.res.Cut() {
		t.Fatalf("cuts: a %d, finished %v", a.cuts.Load(), done.res.Cut())
	}
	c.res.Finished()
	if _, err := b.Reserve(1, nil); !errors.Is(err, server.ErrOverloaded) {
		t.Fatalf("third request with two finished: %v", err)
	}
}

// TestBudgetUnderContention: many goroutines reserving, holding, cutting
// and releasing at once never take the budget over its bounds, and leave
// it empty.
func TestBudgetUnderContention(t *testing.T) {
	b := server.NewBudget(300, 4)
	var wg sync.WaitGroup
	var admitted, refused atomic.Int64
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				cut := make(chan struct{}, 1)
				res, err := b.Reserve(int64(50+i%100), func() { cut <- struct{}{} })
				if err != nil {
					refused.Add(1)
					continue
				}
				admitted.Add(1)
				res.Hold(10)
				// Read a while, unless cut.
				for j := 0; j < 20; j++ {
					select {
					case <-cut:
						j = 20
					default:
						runtime.Gosched()
					}
				}
				if i%3 == 0 {
					res.Finished()
				}
				res.Release()
			}
		}()
	}
	wg.Wait()
	st := b.Stats()
	if st.PeakBytes > 300 || st.PeakRequests > 4 || st.Bytes != 0 || st.Requests != 0 || st.HeldBytes != 0 {
		t.Fatalf("%+v: over the bounds or not empty", st)
	}
	if admitted.Load() == 0 || st.Shed == 0 {
		t.Fatalf("admitted %d, shed %d: the test did not contend", admitted.Load(), st.Shed)
	}
	t.Logf("admitted %d, refused %d, shed %d", admitted.Load(), refused.Load(), st.Shed)
}

// TestBudgetLargeNeverDisplacesSmall: a request loses its room only to one
// no larger than itself, so bodies near the maximum cannot push out a
// small webhook, while a small one can push them out.
func TestBudgetLargeNeverDisplacesSmall(t *testing.T) {
	b := server.NewBudget(100, 10)
	small := reserve(t, b, 10)
	large := reserve(t, b, 80)
	// 20 bytes need room: the 80-byte body still arriving gives it; the
	// 10-byte one is too small to be displaced by a 20-byte request.
	if _, err := b.Reserve(20, func() {}); err != nil {
		t.Fatalf("a 20-byte request found no room: %v", err)
	}
	if small.res.Cut() {
		t.Fatal("a 20-byte request cut a 10-byte body")
	}
	if !large.res.Cut() {
		t.Fatal("a 20-byte request did not cut the 80-byte body still arriving")
	}
	// Another large request cannot make room by cutting the small one.
	b2 := server.NewBudget(100, 10)
	tiny := reserve(t, b2, 30)
	if _, err := b2.Reserve(80, func() {}); !errors.Is(err, server.ErrOverloaded) {
		t.Fatalf("an 80-byte request got room cutting a 30-byte body: %v", err)
	}
	if tiny.res.Cut() {
		t.Fatal("the 30-byte body was cut for a larger request")
	}
}
