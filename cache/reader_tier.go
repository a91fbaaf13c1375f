package cache

import (
	"errors"
	"sync/atomic"
	"time"
)

// tierItem is one id in the in-process tier: an entry, or a remembered "not
// found" (err set). Items are not changed after they are inserted (but for
// the touched stamp), so a hit reads one without holding a lock.
type tierItem struct {
	entry   Entry
	err     error         // non-nil: negative item (wraps ErrNotFound)
	epoch   uint64        // subscription epoch the read that made it began in
	expires time.Duration // on the Reader's clock

	// touched is when a hit last moved the item to the front of the LRU.
	touched atomic.Int64
}

// item returns the tier's item for id, if any, without taking a lock.
func (r *Reader) item(id string) (*tierItem, bool) {
	v, ok := r.index.Load(id)
	if !ok {
		return nil, false
	}
	return v.(*tierItem), true
}

// now is the tier's clock: time since the Reader was created, as of the
// last tick of its coarse clock. Reading the system clock costs more than the
// rest of a hit on some machines, so hits read this atomic instead; ages are
// enforced to within one tick.
func (r *Reader) now() time.Duration {
	if r.opts.clock != nil {
		return r.opts.clock()
	}
	return time.Duration(r.coarse.Load())
}

// clockTick is the resolution of the coarse clock: a twentieth of the
// shortest age the tier enforces, between 1ms and 100ms.
func (r *Reader) clockTick() time.Duration {
	d := r.opts.MaxAge
	if r.opts.NegativeTTL > 0 {
		d = min(d, r.opts.NegativeTTL)
	}
	return min(max(d/20, time.Millisecond), 100*time.Millisecond)
}

// tick advances the coarse clock until Close.
func (r *Reader) tick() {
	defer r.wg.Done()
	t := time.NewTicker(r.clockTick())
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
			r.coarse.Store(int64(time.Since(r.base)))
		}
	}
}

// expiry is when an item inserted now with this lifetime stops serving. It
// reads the precise clock (inserts are not the hot path), so an item lives
// at most one tick longer than asked.
func (r *Reader) expiry(life time.Duration) time.Duration {
	if r.opts.clock != nil {
		return r.opts.clock() + life
	}
	return time.Since(r.base) + life
}

// serves reports whether an item may answer a Get: it was filled while the
// subscription that is live now was already confirmed, and it has not
// expired.
func (r *Reader) serves(it *tierItem) bool {
	ep := r.epoch.Load()
	return ep&1 == 1 && it.epoch == ep && r.now() < it.expires
}

// touch moves a hit item to the front of the LRU, at most once per tick of
// the coarse clock: a hit then takes no lock at all, and eviction order is
// least-recently-used to within a tick.
func (r *Reader) touch(id string, it *tierItem) {
	if now := int64(r.now()); it.touched.Load() != now {
		it.touched.Store(now)
		r.tier.Get(id)
	}
}

// itemFor turns the outcome of a Redis read into the item to insert: the
// entry, a negative item, or nil for outcomes that are not cached (corrupt
// entries, negative caching disabled).
func (r *Reader) itemFor(e Entry, err error) *tierItem {
	switch {
	case err == nil:
		return &tierItem{entry: e, expires: r.expiry(r.opts.MaxAge)}
	case errors.Is(err, ErrNotFound) && r.opts.NegativeTTL > 0:
		return &tierItem{err: err, expires: r.expiry(r.opts.NegativeTTL)}
	}
	return nil
}

// pendingFill tracks the Redis reads in flight for one id. gen is bumped by
// every invalidation of the id, so a read that began before one knows not to
// insert what it read.
type pendingFill struct {
	n   int
	gen uint64
}

// fillToken is what a read remembers from its start.
type fillToken struct {
	p     *pendingFill
	gen   uint64
	epoch uint64
}

// beginFill registers a read of id that is about to go to Redis. It must be
// called before the read is sent: an invalidation processed after this point
// is seen by endFill.
func (r *Reader) beginFill(id string) fillToken {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pending[id]
	if p == nil {
		p = &pendingFill{}
		r.pending[id] = p
	}
	p.n++
	return fillToken{p: p, gen: p.gen, epoch: r.epoch.Load()}
}

// endFill ends a read registered by beginFill and inserts it (when it is not
// nil) only if no invalidation of id and no flush happened since the read
// began. A read made while unsubscribed is kept only under ServeLastKnown,
// as a fallback that never serves a hit. It reports whether it inserted.
func (r *Reader) endFill(id string, t fillToken, it *tierItem) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t.p.n--
	if t.p.n == 0 {
		delete(r.pending, id)
	}
	if it == nil || t.p.gen != t.gen || r.epoch.Load() != t.epoch || r.ctx.Err() != nil {
		return false
	}
	if t.epoch&1 == 0 && r.opts.OnRedisDown != ServeLastKnown {
		return false
	}
	it.epoch = t.epoch
	it.touched.Store(int64(r.now()))
	r.tier.Add(id, it)
	r.index.Store(id, it)
	return true
}

// invalidate drops id from the tier because an event said it changed, and
// makes every read of id in flight skip its insert. Callers that arrive from
// now on start a new read instead of joining one that began before.
func (r *Reader) invalidate(id string, change Change) {
	r.mu.Lock()
	r.tier.Remove(id)
	r.index.Delete(id)
	if p := r.pending[id]; p != nil {
		p.gen++
	}
	r.flights.Forget(id)
	r.mu.Unlock()
	r.stats.invalidations[changeIndex(change)].Add(1)
	if r.opts.OnInvalidate != nil {
		r.opts.OnInvalidate(id)
	}
}

// transition moves the subscription epoch to connected (odd) or not (even)
// and flushes the tier: every item stops serving hits at once, reads in
// flight skip their insert, and under FailWhenDown the items are dropped
// (under ServeLastKnown they stay as the fallback). It reports whether the
// state changed.
func (r *Reader) transition(connected bool, reason flushReason) bool {
	r.mu.Lock()
	ep := r.epoch.Load()
	if (ep&1 == 1) == connected || r.ctx.Err() != nil {
		r.mu.Unlock()
		return false
	}
	r.epoch.Add(1)
	r.dropAllLocked()
	r.mu.Unlock()
	r.watches.gap() // watches wait for the next subscription, and resync on it
	if ep == 0 {
		return true // the first subscription: nothing was served before it
	}
	r.flushed(reason)
	return true
}

// flushAll empties the tier while staying subscribed: a message could not be
// understood, so any id may have changed.
func (r *Reader) flushAll(reason flushReason) {
	r.mu.Lock()
	// Two steps keep the epoch's parity (subscribed or not) and still
	// retire everything filled before.
	r.epoch.Add(2)
	r.dropAllLocked()
	r.mu.Unlock()
	r.watches.gap()
	r.flushed(reason)
}

// dropAllLocked is the part of a flush done under r.mu, after the epoch
// moved.
func (r *Reader) dropAllLocked() {
	if r.opts.OnRedisDown != ServeLastKnown {
		r.tier.Purge()
	}
	for id := range r.pending {
		r.flights.Forget(id)
	}
}

func (r *Reader) flushed(reason flushReason) {
	r.stats.flushes[reason].Add(1)
	if r.opts.OnInvalidate != nil {
		r.opts.OnInvalidate("")
	}
}
