package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// WatchKind says what a WatchEvent reports.
type WatchKind string

// The kinds of WatchEvent.
const (
	// WatchInitial is the first event of every watch: the entry as read
	// once the Reader's subscription was live (the zero Entry when the
	// instance is not cached). It has no Keys.
	WatchInitial WatchKind = "initial"
	// WatchRefreshed, WatchStale and WatchEnabled: the daemon wrote the
	// entry; the kind is the change of the newest message the event
	// covers (several writes that land together make one event). A kind
	// this version does not know is passed on as the message named it.
	WatchRefreshed WatchKind = "refreshed"
	WatchStale     WatchKind = "stale"
	WatchEnabled   WatchKind = "enabled"
	// WatchDeleted: the instance is no longer cached; Entry is zero.
	WatchDeleted WatchKind = "deleted"
	// WatchResync: the watch may have missed changes — the subscription
	// dropped and came back, carried a message that could not be read, or
	// the sentinels switched masters. Entry is a fresh read and Keys its
	// comparison with the previous event's entry; anything the app derived
	// from earlier events or reads should be read again.
	WatchResync WatchKind = "resync"
)

// KeyChange is one config key that differs between the entry of the
// previous event and the entry of this one.
type KeyChange struct {
	Key string
	// Old and New are the variable before and after: nil when it was
	// added (Old) or removed (New). For connections only the status and
	// refresh times are there; values are secrets and never cached.
	Old, New *ConfigValue
}

// WatchEvent is one event of a watch: the entry now, and how it differs
// from the entry of the watch's previous event.
type WatchEvent struct {
	Kind WatchKind
	ID   string
	// Entry is the entry as read after the change; the zero Entry (Doc nil)
	// when the instance is not cached. Its Doc is shared: read-only.
	Entry Entry
	// Keys are the config keys whose value (for connections, status)
	// differs from the previous event's entry, sorted by key. Empty when a
	// write changed no config value (a stale mark, an enabled flip, a
	// refresh that changed nothing); nil for WatchInitial.
	Keys []KeyChange
	// KeysFromFeed tells where Keys came from: true when every write the
	// event covers was announced with its changed_keys; false when the
	// Reader compared the two entries itself (older daemons, resyncs,
	// messages it could not account for).
	KeysFromFeed bool
}

// watchMaxPending bounds the messages a watch keeps while its consumer is
// busy; beyond it the oldest are dropped and the watch compares entries
// instead of using their changed_keys.
const watchMaxPending = 64

// Watch reports the changes of instance id on the returned channel: first
// a WatchInitial event with the entry, then one event per change announced
// on the events channel, and a WatchResync after every gap in the Reader's
// subscription. Each message costs at most one read of the entry (shared
// with concurrent Gets), and none when a read already reflects it.
//
// The channel is unbuffered and the Reader never waits for it: while the
// app is busy, the changes that arrive are coalesced into the next event,
// which covers all of them. The watch ends, and the channel is closed,
// when ctx is done or the Reader is closed; drain it or cancel ctx. It
// fails only when the Reader is closed, ctx is done, or id is empty.
func (r *Reader) Watch(ctx context.Context, id string) (<-chan WatchEvent, error) {
	if id == "" {
		return nil, errors.New("watch: empty instance id")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("watch %s: %w", id, err)
	}
	w := &watch{r: r, id: id, out: make(chan WatchEvent), wake: make(chan struct{}, 1), gap: true}
	if !r.watches.add(r, w) {
		return nil, fmt.Errorf("watch %s: %w", id, ErrReaderClosed)
	}
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(r.ctx, cancel)
	go func() {
		defer r.wg.Done()
		defer close(w.out)
		defer r.watches.remove(w)
		defer cancel()
		defer stop()
		w.run(wctx)
	}()
	w.signal()
	return w.out, nil
}

// watchRegistry is the Reader's live watches by instance id. The
// subscription's goroutine hands them messages and gaps without waiting.
type watchRegistry struct {
	mu     sync.Mutex
	byID   map[string]map[*watch]struct{}
	closed bool
}

// add registers w and counts its goroutine in r.wg, unless the Reader is
// closing: Close marks the registry closed before it waits on r.wg.
func (g *watchRegistry) add(r *Reader, w *watch) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || r.ctx.Err() != nil {
		return false
	}
	if g.byID == nil {
		g.byID = map[string]map[*watch]struct{}{}
	}
	if g.byID[w.id] == nil {
		g.byID[w.id] = map[*watch]struct{}{}
	}
	g.byID[w.id][w] = struct{}{}
	r.wg.Add(1)
	return true
}

func (g *watchRegistry) remove(w *watch) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.byID[w.id], w)
	if len(g.byID[w.id]) == 0 {
		delete(g.byID, w.id)
	}
}

// close refuses new watches from now on.
func (g *watchRegistry) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// deliver hands m to the watches of its id. It must run after the tier
// dropped the id, so that a watch's read cannot be answered by a copy from
// before m's write.
func (g *watchRegistry) deliver(m Message) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for w := range g.byID[m.ID] {
		w.push(m)
	}
}

// gap tells every watch that messages may have been lost.
func (g *watchRegistry) gap() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, ws := range g.byID {
		for w := range ws {
			w.markGap()
		}
	}
}

// watch is one Watch call. Its inbox is filled by the subscription's
// goroutine under mu; everything else belongs to its own goroutine
// (watch_run.go).
type watch struct {
	r    *Reader
	id   string
	out  chan WatchEvent
	wake chan struct{} // capacity 1: "the inbox changed"

	mu      sync.Mutex
	inbox   []Message // received, not yet taken; oldest first
	dropped bool      // messages were dropped from inbox
	gap     bool      // the subscription had a gap (set at start: read first)
	pushed  int       // messages handed to the watch, ever (tests wait on it)

	started      bool          // the initial event was made
	resync       bool          // a gap was taken and not yet reported
	last         Entry         // the entry of the last event
	batch        []Message     // messages not yet reported on, oldest first
	batchDropped bool          // some messages of the batch were dropped
	held         *Entry        // a read ahead of batch, waiting for its messages
	holdUntil    time.Time     // when to stop waiting for them
	behindUntil  time.Time     // when to stop reading again a copy older than a message
	backoff      time.Duration // before retrying a failed read
}

func (w *watch) push(m Message) {
	w.mu.Lock()
	if len(w.inbox) == watchMaxPending {
		w.inbox = w.inbox[:0]
		w.dropped = true
	}
	w.inbox = append(w.inbox, m)
	w.pushed++
	w.mu.Unlock()
	w.signal()
}

func (w *watch) markGap() {
	w.mu.Lock()
	w.gap = true
	w.mu.Unlock()
	w.signal()
}

func (w *watch) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}
