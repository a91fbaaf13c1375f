package server

import (
	"container/list"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrOverloaded is returned by Budget.Reserve when no room can be made:
// the sender gets 503 with Retry-After.
var ErrOverloaded = errors.New("too many webhook bodies in flight")

// shedWait bounds how long a request waits for the bodies it cut to let go
// of their room. A cut read returns at once (its deadline is in the past),
// so this is only reached when something is badly wrong.
const shedWait = 2 * time.Second

// Budget bounds the webhook bodies held in memory at once, in bytes and in
// requests. A request reserves its room before it reads a byte of its body
// (its Content-Length, or the maximum body when it has none) and keeps it
// until its answer is written.
//
// When a reservation does not fit, the budget makes room by cutting the
// oldest bodies that are still arriving (their reads are interrupted and
// they are answered 503), and refuses the request only when that is not
// enough. A real webhook is a few KB that arrives in milliseconds; a body
// that is still arriving when newer requests need its room is the one most
// likely to be an attacker's, and the newest request is the one most likely
// to finish. Bodies already read, whose events are being applied, are
// never cut.
//
// Build it with NewBudget; it is safe for concurrent use.
type Budget struct {
	maxBytes int64
	maxReqs  int

	mu    sync.Mutex
	bytes int64 // reserved, by live reservations and by credits of waiters
	reqs  int
	order list.List // *Reservation, oldest first
	waits list.List // *claim, oldest first
	peakB int64
	peakR int

	held, peakHeld atomic.Int64
	shed, refused  atomic.Uint64
}

// NewBudget returns a budget of maxBytes bytes and maxRequests requests.
func NewBudget(maxBytes int64, maxRequests int) *Budget {
	return &Budget{maxBytes: maxBytes, maxReqs: maxRequests}
}

// BudgetStats is a budget's state and what it did.
type BudgetStats struct {
	MaxBytes    int64
	MaxRequests int
	// Bytes and Requests are reserved now; Peak* are the most ever.
	Bytes, PeakBytes       int64
	Requests, PeakRequests int
	// HeldBytes are bytes of body buffers allocated now; PeakHeldBytes the
	// most ever. They never exceed what is reserved.
	HeldBytes, PeakHeldBytes int64
	// Shed counts bodies cut to make room; Refused requests answered 503
	// because no room could be made.
	Shed, Refused uint64
}

// Stats returns the budget's state.
func (b *Budget) Stats() BudgetStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BudgetStats{
		MaxBytes: b.maxBytes, MaxRequests: b.maxReqs,
		Bytes: b.bytes, PeakBytes: b.peakB, Requests: b.reqs, PeakRequests: b.peakR,
		HeldBytes: b.held.Load(), PeakHeldBytes: b.peakHeld.Load(),
		Shed: b.shed.Load(), Refused: b.refused.Load(),
	}
}

// Reservation is one request's room in a Budget. Its methods are safe for
// concurrent use.
type Reservation struct {
	b    *Budget
	n    int64
	elem *list.Element
	// cut interrupts the request's blocked body read; called with b.mu
	// held, once.
	cut func()

	// Under b.mu:
	reading  bool        // the body is still arriving: it may be cut
	claimant *claim      // who gets this room when it is released
	released bool        // Release ran
	cutFlag  atomic.Bool // set before cut is called
	held     int64       // bytes of buffer allocated (owner only)
}

// claim is a request waiting for the bodies it cut to let go of their room.
// Its fields are under Budget.mu.
type claim struct {
	credB   int64 // room handed over so far
	credR   int
	pending int           // victims not released yet
	ready   chan struct{} // closed when pending reaches 0, or when robbed
	victims []*Reservation
	// robbed: a newer request took this claim over; its owner is refused.
	robbed bool
	elem   *list.Element
	n      int64 // the owner's reservation
}

// Reserve reserves n bytes and one request. cut must interrupt the
// request's body read, making it return at once; it is called (at most
// once, from another goroutine) when the budget needs the room back.
func (b *Budget) Reserve(n int64, cut func()) (*Reservation, error) {
	r := &Reservation{b: b, n: n, cut: cut, reading: true}
	for round := 0; round < 3; round++ {
		b.mu.Lock()
		if b.fits(n, 1) {
			b.admit(r)
			b.mu.Unlock()
			return r, nil
		}
		c := b.shedFor(n)
		b.mu.Unlock()
		if c == nil {
			break
		}
		timer := time.NewTimer(shedWait)
		select {
		case <-c.ready:
		case <-timer.C:
		}
		timer.Stop()
		b.mu.Lock()
		robbed := c.robbed
		b.dropClaim(c)
		if !robbed && b.fits(n, 1) {
			b.admit(r)
			b.mu.Unlock()
			return r, nil
		}
		b.mu.Unlock()
		if robbed {
			break
		}
	}
	b.refused.Add(1)
	return nil, ErrOverloaded
}

func (b *Budget) fits(n int64, reqs int) bool {
	return b.bytes+n <= b.maxBytes && b.reqs+reqs <= b.maxReqs
}

func (b *Budget) admit(r *Reservation) {
	b.bytes += r.n
	b.reqs++
	b.peakB = max(b.peakB, b.bytes)
	b.peakR = max(b.peakR, b.reqs)
	r.elem = b.order.PushBack(r)
}

// shedFor makes room for n bytes and a request by cutting the oldest
// bodies still arriving and, when that is not enough, by taking over the
// room older requests are waiting for (they are refused): the newest
// request wins. Only requests at least as large as this one lose their
// room to it, so a flood of large bodies cannot displace a small one, and
// a real webhook (a few KB) wins against bodies near the maximum. It
// returns the claim on that room, or nil, having changed nothing, when even
// all of it would not do. b.mu is held.
func (b *Budget) shedFor(n int64) *claim {
	needB := b.bytes + n - b.maxBytes
	needR := b.reqs + 1 - b.maxReqs
	var victims []*Reservation
	for e := b.order.Front(); e != nil && (needB > 0 || needR > 0); e = e.Next() {
		v := e.Value.(*Reservation)
		if !v.reading || v.claimant != nil || v.n < n {
			continue
		}
		victims = append(victims, v)
		needB -= v.n
		needR--
	}
	var robbed []*claim
	for e := b.waits.Front(); e != nil && (needB > 0 || needR > 0); e = e.Next() {
		old := e.Value.(*claim)
		if old.n < n {
			continue
		}
		robbed = append(robbed, old)
		needB -= old.credB
		needR -= old.credR
		for _, v := range old.victims {
			if v.claimant == old {
				needB -= v.n
				needR--
			}
		}
	}
	if needB > 0 || needR > 0 {
		return nil
	}
	c := &claim{ready: make(chan struct{}), n: n}
	for _, v := range victims {
		v.claimant = c
		c.victims = append(c.victims, v)
		c.pending++
		v.cutFlag.Store(true)
		b.shed.Add(1)
		if v.cut != nil {
			v.cut()
		}
	}
	for _, old := range robbed {
		c.credB += old.credB
		c.credR += old.credR
		old.credB, old.credR = 0, 0
		for _, v := range old.victims {
			if v.claimant == old {
				v.claimant = c
				c.victims = append(c.victims, v)
				c.pending++
			}
		}
		old.robbed = true
		if old.pending > 0 {
			close(old.ready)
		}
		old.pending = 0
		b.waits.Remove(old.elem)
	}
	if c.pending == 0 {
		close(c.ready)
	}
	c.elem = b.waits.PushBack(c)
	return c
}

// dropClaim ends c: the room handed to it goes back to the pool, and so
// will the room still owed to it when it is released. b.mu is held.
func (b *Budget) dropClaim(c *claim) {
	b.bytes -= c.credB
	b.reqs -= c.credR
	c.credB, c.credR = 0, 0
	for _, v := range c.victims {
		if v.claimant == c {
			v.claimant = nil
		}
	}
	if !c.robbed {
		b.waits.Remove(c.elem)
	}
}

// Finished says the body is read: it can no longer be cut. It reports
// whether it was cut before that, in which case the request must be
// answered as cut (503), whatever it read.
func (r *Reservation) Finished() (wasCut bool) {
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	r.reading = false
	return r.cutFlag.Load()
}

// Cut reports whether the budget cut this request's body.
func (r *Reservation) Cut() bool { return r.cutFlag.Load() }

// Hold records that the request's body buffer grew or shrank by delta
// bytes. It must stay within the reservation.
func (r *Reservation) Hold(delta int64) {
	r.held += delta
	h := r.b.held.Add(delta)
	for {
		p := r.b.peakHeld.Load()
		if h <= p || r.b.peakHeld.CompareAndSwap(p, h) {
			return
		}
	}
}

// Release gives the room back (to the request that cut this one, if any).
// It is idempotent.
func (r *Reservation) Release() {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.released {
		return
	}
	r.released = true
	r.reading = false
	b.order.Remove(r.elem)
	if r.held != 0 {
		b.held.Add(-r.held)
		r.held = 0
	}
	if c := r.claimant; c != nil {
		// The room stays reserved, as the claimant's credit.
		r.claimant = nil
		c.credB += r.n
		c.credR++
		if c.pending--; c.pending == 0 && !c.robbed {
			close(c.ready)
		}
		return
	}
	b.bytes -= r.n
	b.reqs--
}
