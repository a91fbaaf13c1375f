package cache

import (
	"context"
	"errors"
	"slices"
	"time"
)

// run is a watch's goroutine: it wakes when messages or a gap arrive (or
// its timer fires), turns them into at most one event, and sends it.
func (w *watch) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
		ev, again := w.step(ctx)
		timer.Stop()
		if again > 0 {
			timer.Reset(again)
		}
		if ev == nil {
			continue
		}
		select {
		case w.out <- *ev:
		case <-ctx.Done():
			return
		}
	}
}

// step handles what arrived since the last step. It returns the event to
// send, if any, and how long to wait before stepping again without a wake
// (0: not until one).
func (w *watch) step(ctx context.Context) (*WatchEvent, time.Duration) {
	w.intake()
	if w.r.epoch.Load()&1 == 0 {
		// Unsubscribed: nothing read now could be kept current. The
		// confirmation of the next subscription is a gap and wakes us.
		return nil, 0
	}
	if !w.started || w.resync {
		e, ok, retry := w.read(ctx)
		if !ok {
			return w.failed(retry)
		}
		kind := WatchResync
		if !w.started {
			kind = WatchInitial
		}
		return w.report(kind, e), 0
	}
	if w.held != nil {
		top, deletes := batchTop(w.batch)
		switch {
		case !deletes && top == w.held.Rev:
			return w.report(w.kindOf(*w.held), *w.held), 0 // its messages arrived
		case !deletes && top < w.held.Rev && time.Now().Before(w.holdUntil):
			return nil, time.Until(w.holdUntil)
		case !deletes && top < w.held.Rev:
			// A write whose message never came: treat it as a gap.
			return w.report(WatchResync, *w.held), 0
		}
		w.held = nil // newer messages: the held read is out of date
	}
	if len(w.batch) == 0 {
		return nil, 0 // nothing the last event did not already show
	}
	e, ok, retry := w.read(ctx)
	if !ok {
		return w.failed(retry)
	}
	if top, deletes := batchTop(w.batch); e.Doc != nil && !deletes {
		switch {
		case e.Rev > top:
			// Ahead of the messages received: their messages are on the
			// way. Wait for them rather than report these writes twice or
			// without their changes.
			w.held, w.holdUntil = &e, time.Now().Add(w.r.opts.HealthCheckInterval)
			return nil, w.r.opts.HealthCheckInterval
		case e.Rev < top:
			// Older than a message received: not the primary's copy.
			// Read again for a while, then take it as a gap.
			if w.behindUntil.IsZero() {
				w.behindUntil = time.Now().Add(w.r.opts.HealthCheckInterval)
			}
			if time.Now().Before(w.behindUntil) {
				return nil, w.retry()
			}
			return w.report(WatchResync, e), 0
		}
	}
	return w.report(w.kindOf(e), e), 0
}

// intake moves the inbox into the batch, leaving out messages the last
// event already reflects (a read can be ahead of the messages received).
func (w *watch) intake() {
	w.mu.Lock()
	in, dropped, gap := w.inbox, w.dropped, w.gap
	w.inbox, w.dropped, w.gap = nil, false, false
	w.mu.Unlock()
	if gap {
		w.resync, w.held = true, nil
	}
	if dropped {
		w.batchDropped = true
	}
	for _, m := range in {
		if w.last.Doc != nil && m.Change != ChangeDeleted && m.Rev <= w.last.Rev {
			continue
		}
		if w.last.Doc == nil && m.Change == ChangeDeleted {
			continue
		}
		if len(w.batch) == watchMaxPending {
			w.batch, w.batchDropped = w.batch[:0], true
		}
		w.batch = append(w.batch, m)
	}
}

// read reads the entry through the Reader (its tier, or one Redis read
// shared with concurrent Gets). On failure the watch's state stays as it
// was: retry tells whether to read again after a backoff (Redis could not
// answer) or only at the next message (the entry could not be decoded).
func (w *watch) read(ctx context.Context) (e Entry, ok, retry bool) {
	e, err := w.r.Get(ctx, w.id)
	switch {
	case err == nil:
		w.backoff = 0
		return e, true, false
	case errors.Is(err, ErrNotFound):
		w.backoff = 0
		return Entry{}, true, false
	case ctx.Err() != nil:
		return Entry{}, false, false
	}
	w.r.log.Warn("prismcache reader: a watch could not read its entry", "id", w.id, "err", err)
	return Entry{}, false, errors.Is(err, ErrUnavailable) || errors.Is(err, ErrDegraded)
}

// failed is what step returns after a failed read.
func (w *watch) failed(retry bool) (*WatchEvent, time.Duration) {
	if !retry {
		return nil, 0
	}
	return nil, w.retry()
}

func (w *watch) retry() time.Duration {
	w.backoff = min(max(2*w.backoff, readerMinReconnectBackoff), readerMaxReconnectBackoff)
	return w.backoff
}

// batchTop returns the highest rev of batch, and whether it holds a delete
// (revs start again after one).
func batchTop(batch []Message) (top int64, deletes bool) {
	for _, m := range batch {
		top = max(top, m.Rev)
		deletes = deletes || m.Change == ChangeDeleted
	}
	return top, deletes
}

// kindOf is the kind of a feed event whose entry is e: deleted when it is
// gone, else the change of the newest message.
func (w *watch) kindOf(e Entry) WatchKind {
	switch {
	case e.Doc == nil:
		return WatchDeleted
	case len(w.batch) == 0:
		return WatchRefreshed
	}
	c := w.batch[len(w.batch)-1].Change
	if c == ChangeDeleted {
		return WatchRefreshed // deleted, then cached again
	}
	return WatchKind(c)
}

// report makes the event that moves the watch from its last entry to e,
// or none when e shows nothing new, and starts afresh from e.
func (w *watch) report(kind WatchKind, e Entry) *WatchEvent {
	prev, batch, dropped := w.last, w.batch, w.batchDropped
	w.started, w.resync, w.last = true, false, e
	w.batch, w.batchDropped, w.held, w.backoff, w.behindUntil = nil, false, nil, 0, time.Time{}
	ev := &WatchEvent{Kind: kind, ID: w.id, Entry: e}
	switch kind {
	case WatchInitial:
		return ev
	case WatchResync:
	default:
		if prev.Doc == nil && e.Doc == nil {
			return nil
		}
		_, deletes := batchTop(batch)
		if prev.Doc != nil && e.Doc != nil && prev.Rev == e.Rev && !deletes {
			return nil
		}
		if keys, ok := feedKeys(prev, e, batch, dropped); ok {
			ev.Keys, ev.KeysFromFeed = keyChanges(prev.Doc, e.Doc, keys, true), true
			return ev
		}
	}
	ev.Keys = keyChanges(prev.Doc, e.Doc, ChangedKeys(prev.Doc, e.Doc), false)
	return ev
}

// feedKeys returns the keys that the messages of batch name, when they
// account for every write from prev to next: one message per rev, in
// order, and changed_keys on each that may have changed config.
func feedKeys(prev, next Entry, batch []Message, dropped bool) ([]string, bool) {
	if dropped || next.Doc == nil || len(batch) == 0 || batch[len(batch)-1].Rev != next.Rev {
		return nil, false
	}
	want := int64(1)
	if prev.Doc != nil {
		want = prev.Rev + 1
	}
	var keys []string
	for i, m := range batch {
		if m.Rev != want+int64(i) || m.Change == ChangeDeleted {
			return nil, false
		}
		if m.ChangedKeys == nil && m.Change != ChangeStale && m.Change != ChangeEnabled {
			return nil, false // a refresh that did not say (an older daemon)
		}
		keys = append(keys, m.ChangedKeys...)
	}
	slices.Sort(keys)
	return slices.Compact(keys), true
}

// keyChanges pairs each key with its variable in prev and next. Keys named
// by the feed whose variable is the same in both (changed, then changed
// back, by writes coalesced into one event) are left out.
func keyChanges(prev, next *Doc, keys []string, fromFeed bool) []KeyChange {
	out := make([]KeyChange, 0, len(keys))
	for _, k := range keys {
		kc := KeyChange{Key: k, Old: configOf(prev, k), New: configOf(next, k)}
		if fromFeed && sameConfig(kc.Old, kc.New) {
			continue
		}
		out = append(out, kc)
	}
	return out
}

// configOf returns a copy of d's variable k, or nil.
func configOf(d *Doc, k string) *ConfigValue {
	if d == nil {
		return nil
	}
	c, ok := d.Config[k]
	if !ok {
		return nil
	}
	return &c
}

func sameConfig(a, b *ConfigValue) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ID == b.ID && a.Type == b.Type && a.Status == b.Status &&
		a.CustomerConfigVariableID == b.CustomerConfigVariableID &&
		samePtr(a.Value, b.Value, func(x, y string) bool { return x == y }) &&
		samePtr(a.RefreshAt, b.RefreshAt, time.Time.Equal) &&
		samePtr(a.LastSuccessfulRefreshAt, b.LastSuccessfulRefreshAt, time.Time.Equal)
}

func samePtr[T any](a, b *T, eq func(T, T) bool) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return eq(*a, *b)
}
