// Package retry is the daemon's one retry policy: exponential backoff with
// jitter, capped, never shorter than what the other side asked for. Every
// loop that retries — failed fetches, listing pages, reconcile passes, the
// Reader's re-subscription — takes its waits from a Policy, so the rules
// live in one place.
package retry

import (
	"math/rand/v2"
	"time"
)

// Policy is exponential backoff with jitter: the n-th wait (n from 1) is
// Base·2^(n-1), capped at Cap, then drawn uniformly from its upper half
// (never less than half of it, so a flood of retries spreads out but a
// single one is not cut short). A Retry-After from the other side wins when
// it is longer. The zero value waits nothing. A Policy is a value and safe
// for concurrent use.
type Policy struct {
	// Base is the first wait before jitter.
	Base time.Duration
	// Cap bounds every wait before jitter; Base when smaller than Base.
	Cap time.Duration
	// FullJitter draws the wait from [0, d] instead of [d/2, d]: for many
	// clients reconnecting to one server at once, where spreading them
	// matters more than any one waiting at least d/2.
	FullJitter bool
}

// Delay returns the wait before attempt n (n ≥ 1 counts the failures so
// far) and at least retryAfter.
func (p Policy) Delay(n int, retryAfter time.Duration) time.Duration {
	d := p.ceiling(n)
	if d > 0 {
		if p.FullJitter {
			d = time.Duration(rand.Int64N(int64(d) + 1))
		} else {
			d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
		}
	}
	return max(d, retryAfter)
}

// ceiling is the n-th wait before jitter.
func (p Policy) ceiling(n int) time.Duration {
	c := max(p.Cap, p.Base)
	d := p.Base
	for i := 1; i < n && d < c; i++ {
		d *= 2
	}
	return min(d, c)
}

// Backoff walks a Policy for one loop: Next returns the next wait, Reset
// starts over after a success. The zero value of Backoff with a Policy set
// is ready to use; it is not safe for concurrent use.
type Backoff struct {
	Policy Policy
	n      int
}

// Next counts one more failure and returns the wait before the next try,
// at least retryAfter.
func (b *Backoff) Next(retryAfter time.Duration) time.Duration {
	b.n++
	return b.Policy.Delay(b.n, retryAfter)
}

// Failures returns the failures counted since the last Reset.
func (b *Backoff) Failures() int { return b.n }

// Reset starts over.
func (b *Backoff) Reset() { b.n = 0 }
