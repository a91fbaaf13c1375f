// Package testutil holds the few helpers every test package needs: waiting
// for a condition and a clock the test moves by hand. It is imported by
// tests only.
package testutil

import (
	"sync"
	"testing"
	"time"
)

// EventuallyWithin is how long Eventually waits: generous, since the tests
// assert what happens, not how fast, and CI runs them on two busy cores.
const EventuallyWithin = 30 * time.Second

// Eventually polls cond every 10 ms until it holds, failing the test with
// what it waited for after EventuallyWithin.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(EventuallyWithin)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Clock is a clock that moves only when told. Its zero value is not
// usable: make one with NewClock. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock at 2026-11-20 10:00 UTC.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
