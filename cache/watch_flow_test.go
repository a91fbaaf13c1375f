package cache

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/redistest"
)

// wtGate holds the Reader's subscription goroutine at the message of one
// id, before the message is handed to watches, until released.
type wtGate struct {
	id      string
	armed   atomic.Bool
	held    chan struct{}
	release chan struct{}
}

// arm makes the next message of the id wait; held is closed when it does.
func (g *wtGate) arm() {
	g.held, g.release = make(chan struct{}), make(chan struct{})
	g.armed.Store(true)
}

func (g *wtGate) onInvalidate(id string) {
	if id == g.id && g.armed.CompareAndSwap(true, false) {
		held, release := g.held, g.release
		close(held)
		<-release
	}
}

// TestWatchReadAheadOfItsMessages: a read that already shows writes whose
// messages have not arrived reports nothing twice and costs no more
// reads. A write that the initial read shows makes no event when its
// message comes, and no read; a feed read that shows a second write waits
// for its message and reports both writes as one event, from the feed.
func TestWatchReadAheadOfItsMessages(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newWriter(b.Client, b.Prefix)
		id := "watch-ahead"
		gate := &wtGate{id: id}
		var reads atomic.Int32
		var readSeen atomic.Pointer[chan struct{}]
		r := rtReader(t, b, b.Client, ReaderOptions{
			afterRead: func([]string) {
				reads.Add(1)
				if c := readSeen.Swap(nil); c != nil {
					close(*c)
				}
			},
			OnInvalidate: gate.onInvalidate,
		})
		rtCreate(t, s, id, "acme-001", "Salesforce", "15m")

		// The initial read is ahead of a message.
		gate.arm()
		rev := rtSetValue(t, s, id, "30m")
		<-gate.held
		ch, _ := wtWatch(t, r, id)
		ev := wtNext(t, ch)
		wtKind(t, ev, WatchInitial)
		if ev.Entry.Rev != rev {
			t.Fatalf("initial event at rev %d, want %d", ev.Entry.Rev, rev)
		}
		before := reads.Load()
		close(gate.release)
		rtSetValue(t, s, id, "1h")
		ev = wtNext(t, ch)
		wtWantKeys(t, ev, true, "syncFrequency:30m>1h")
		if n := reads.Load() - before; n != 1 {
			t.Fatalf("%d reads for a message the initial read showed and the next one; want 1", n)
		}

		// A read for one message shows the next write too.
		gate.arm()
		wtSet(t, s, id, "region", "eu")
		<-gate.held // the subscription waits before it hands the message on
		rev = rtSetValue(t, s, id, "2h")
		readDone := make(chan struct{})
		readSeen.Store(&readDone)
		first := gate.release
		gate.arm()
		before = reads.Load()
		close(first)
		<-gate.held // the second message waits…
		<-readDone  // …until the watch has read, for the first one
		close(gate.release)
		ev = wtNext(t, ch)
		wtKind(t, ev, WatchRefreshed)
		wtWantKeys(t, ev, true, "region:->eu", "syncFrequency:1h>2h")
		if ev.Entry.Rev != rev {
			t.Fatalf("event at rev %d, want %d", ev.Entry.Rev, rev)
		}
		if n := reads.Load() - before; n != 1 {
			t.Fatalf("%d reads for two messages, one read ahead of the other; want 1", n)
		}
		rtSetValue(t, s, id, "3h")
		wtWantKeys(t, wtNext(t, ch), true, "syncFrequency:2h>3h")
	})
}

// TestWatchCoalescesWhileTheAppIsBusy: writes that arrive while the app
// does not read come as at most one more event than the one it was being
// handed, every key reported once, and the Reader's subscription is never
// held up.
func TestWatchCoalescesWhileTheAppIsBusy(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newWriter(b.Client, b.Prefix)
		var reads atomic.Int32
		r := rtReader(t, b, b.Client, ReaderOptions{afterRead: func([]string) { reads.Add(1) }})
		id := "watch-busy"
		rtCreate(t, s, id, "acme-001", "Salesforce", "15m")
		ch, _ := wtWatch(t, r, id)
		wtKind(t, wtNext(t, ch), WatchInitial)
		pushed := wtPushed(t, r, id)
		before := reads.Load()

		keys := []string{"a", "b", "c", "d", "e"}
		var rev int64
		for _, k := range keys {
			rev = wtSet(t, s, id, k, "v-"+k)
		}
		wtWaitPushed(t, r, id, pushed+len(keys))
		var events []WatchEvent
		var got []string
		for len(events) == 0 || events[len(events)-1].Entry.Rev != rev {
			ev := wtNext(t, ch)
			wtKind(t, ev, WatchRefreshed)
			if !ev.KeysFromFeed {
				t.Fatalf("event %d: keys not from the feed", len(events))
			}
			events = append(events, ev)
			got = append(got, wtKeys(ev)...)
		}
		if len(events) > 2 {
			t.Fatalf("%d events for %d writes the app did not read: want them coalesced into at most 2", len(events), len(keys))
		}
		slices.Sort(got)
		if want := []string{"a:->v-a", "b:->v-b", "c:->v-c", "d:->v-d", "e:->v-e"}; !slices.Equal(got, want) {
			t.Fatalf("keys reported %q, want each of %q once", got, want)
		}
		if n := reads.Load() - before; n > int32(len(keys)) {
			t.Fatalf("%d reads for %d messages: more than one each", n, len(keys))
		}
		rtSetValue(t, s, id, "1h")
		wtWantKeys(t, wtNext(t, ch), true, "syncFrequency:15m>1h")
	})
}

// TestWatchNeverHoldsUpTheReader: a watch whose app never reads keeps a
// bounded inbox, the Reader keeps invalidating, and the watch, read at
// last, ends at the newest entry.
func TestWatchNeverHoldsUpTheReader(t *testing.T) {
	b := redistest.Mini(t)
	s := newWriter(b.Client, b.Prefix)
	r := rtReader(t, b, b.Client, ReaderOptions{})
	id := "watch-stuck"
	rtCreate(t, s, id, "acme-001", "Salesforce", "15m")
	ch, _ := wtWatch(t, r, id)
	wtKind(t, wtNext(t, ch), WatchInitial)

	const n = 3 * watchMaxPending
	inv := r.Stats().Invalidations
	var rev int64
	for i := range n {
		rev = rtSetValue(t, s, id, "v"+strings.Repeat("x", i))
	}
	rtWaitFor(t, "the reader to take every message", func() bool { return r.Stats().Invalidations >= inv+n })
	w := wtTheWatch(t, r, id)
	w.mu.Lock()
	pending := len(w.inbox)
	w.mu.Unlock()
	if pending > watchMaxPending {
		t.Fatalf("the watch holds %d messages, more than %d", pending, watchMaxPending)
	}
	e := rtMustGet(t, r, id)
	if e.Rev != rev {
		t.Fatalf("get: rev %d, want %d", e.Rev, rev)
	}
	prev := "15m"
	for {
		ev := wtNext(t, ch)
		if len(ev.Keys) != 1 || ev.Keys[0].Old == nil || *ev.Keys[0].Old.Value != prev {
			t.Fatalf("event keys %q, want one change of syncFrequency from %s", wtKeys(ev), prev)
		}
		prev = *ev.Keys[0].New.Value
		if ev.Entry.Rev == rev {
			break
		}
	}
}

// TestWatchEnds: cancelling its context, or closing the Reader, closes a
// watch's channel — also when the app stopped reading — and leaves no
// goroutine behind.
func TestWatchEnds(t *testing.T) {
	b := redistest.Mini(t)
	s := newWriter(b.Client, b.Prefix)
	r := rtReader(t, b, b.Client, ReaderOptions{})
	rtCreate(t, s, "w1", "acme-001", "Salesforce", "15m")
	base := runtime.NumGoroutine()

	var chans []<-chan WatchEvent
	var cancels []context.CancelFunc
	for range 20 {
		ch, cancel := wtWatch(t, r, "w1")
		chans, cancels = append(chans, ch), append(cancels, cancel)
	}
	for _, ch := range chans[:10] {
		wtKind(t, wtNext(t, ch), WatchInitial) // the others never read
	}
	rtSetValue(t, s, "w1", "5m")
	for i, cancel := range cancels {
		cancel()
		wtClosed(t, chans[i])
	}
	rtWaitFor(t, "the watches' goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
	r.watches.mu.Lock()
	left := len(r.watches.byID)
	r.watches.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d ids still watched after every watch ended", left)
	}

	ch, _ := wtWatch(t, r, "w1")
	idle, _ := wtWatch(t, r, "w1")
	wtKind(t, wtNext(t, ch), WatchInitial)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	wtClosed(t, ch)
	wtClosed(t, idle)
	if _, err := r.Watch(context.Background(), "w1"); !errors.Is(err, ErrReaderClosed) {
		t.Fatalf("watch after close: %v, want ErrReaderClosed", err)
	}
}

func TestWatchRefusesBadCalls(t *testing.T) {
	b := redistest.Mini(t)
	r := rtReader(t, b, b.Client, ReaderOptions{})
	if _, err := r.Watch(context.Background(), ""); err == nil {
		t.Fatal("watch of an empty id: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Watch(ctx, "w1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("watch with a done context: %v, want context.Canceled", err)
	}
}

// TestWatchBeforeTheSubscription: a watch started before the Reader's
// subscription is confirmed reports its initial state once it is, and
// an instance not cached yet as a zero entry, then its creation.
func TestWatchBeforeTheSubscription(t *testing.T) {
	b := redistest.Mini(t)
	s := newWriter(b.Client, b.Prefix)
	r, err := NewReader(b.Client, ReaderOptions{Prefix: b.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	ch, _ := wtWatch(t, r, "later")
	ev := wtNext(t, ch)
	wtKind(t, ev, WatchInitial)
	if ev.Entry.Doc != nil || !r.Stats().Subscribed {
		t.Fatalf("initial event %+v (subscribed %v): want no entry, sent once subscribed", ev, r.Stats().Subscribed)
	}
	rtCreate(t, s, "later", "acme-001", "Salesforce", "15m")
	ev = wtNext(t, ch)
	wtKind(t, ev, WatchRefreshed)
	wtWantKeys(t, ev, true, "syncFrequency:->15m")
}

// TestWatchWhenTheFeedAndRedisDisagree: a write whose message never comes,
// and a message ahead of what Redis answers, end — after a
// HealthCheckInterval of waiting or reading again — in a resync with what
// Redis holds, rather than in a watch stuck or reading forever.
func TestWatchWhenTheFeedAndRedisDisagree(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newWriter(b.Client, b.Prefix)
		id := "watch-disagree"
		gate := &wtGate{id: id}
		r := rtReader(t, b, b.Client, ReaderOptions{HealthCheckInterval: 50 * time.Millisecond, OnInvalidate: gate.onInvalidate})
		rtCreate(t, s, id, "acme-001", "Salesforce", "15m")
		ch, _ := wtWatch(t, r, id)
		wtKind(t, wtNext(t, ch), WatchInitial)
		ctx := context.Background()

		// A write by something other than the daemon: no message.
		gate.arm()
		rev := wtSet(t, s, id, "region", "eu")
		<-gate.held
		if err := b.Client.HSet(ctx, s.Keys().Instance(id), FieldDoc, rtDocJSON(t, id, "1h"), FieldRev, rev+1).Err(); err != nil {
			t.Fatal(err)
		}
		close(gate.release)
		ev := wtNext(t, ch)
		wtKind(t, ev, WatchResync)
		wtWantKeys(t, ev, false, "syncFrequency:15m>1h")
		if ev.Entry.Rev != rev+1 {
			t.Fatalf("resync at rev %d, want %d", ev.Entry.Rev, rev+1)
		}

		// A message ahead of every copy Redis gives.
		r.watches.deliver(Message{ID: id, Change: ChangeRefreshed, Rev: rev + 5, ChangedKeys: []string{"syncFrequency"}})
		ev = wtNext(t, ch)
		wtKind(t, ev, WatchResync)
		if ev.Entry.Rev != rev+1 {
			t.Fatalf("resync at rev %d, want %d", ev.Entry.Rev, rev+1)
		}
		wtWantKeys(t, ev, false)
	})
}
