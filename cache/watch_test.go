package cache

import (
	"context"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/redistest"
)

// TestWatchReportsEachChange: every kind of write reaches a watch as one
// event with the entry after it and exactly the config keys it changed,
// with their old and new values, from the feed's changed_keys.
func TestWatchReportsEachChange(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newWriter(b.Client, b.Prefix)
		r := rtReader(t, b, b.Client, ReaderOptions{})
		id := "watch-each"
		rtCreate(t, s, id, "acme-001", "Salesforce", "15m")
		rev := rtPut(t, s, id, ChangeRefreshed, func(e *Entry) {
			e.Doc.Config["sf"] = ConfigValue{Type: TypeConnection, Status: "ACTIVE"}
		})
		ch, _ := wtWatch(t, r, id)

		ev := wtNext(t, ch)
		wtKind(t, ev, WatchInitial)
		if ev.ID != id || ev.Entry.Rev != rev || rtValue(ev.Entry) != "15m" || ev.Keys != nil {
			t.Fatalf("initial event %+v: want the entry at rev %d, no keys", ev, rev)
		}

		rev = rtSetValue(t, s, id, "5m")
		ev = wtNext(t, ch)
		wtKind(t, ev, WatchRefreshed)
		wtWantKeys(t, ev, true, "syncFrequency:15m>5m")
		if ev.Entry.Rev != rev || rtValue(ev.Entry) != "5m" {
			t.Fatalf("refreshed event: entry rev %d value %q, want %d 5m", ev.Entry.Rev, rtValue(ev.Entry), rev)
		}

		rtPut(t, s, id, ChangeRefreshed, func(e *Entry) {
			e.Doc.Config["sf"] = ConfigValue{Type: TypeConnection, Status: "FAILED"}
		})
		ev = wtNext(t, ch)
		wtKind(t, ev, WatchRefreshed)
		wtWantKeys(t, ev, true, "sf:ACTIVE>FAILED")
		if ev.Keys[0].Old.Value != nil || ev.Keys[0].New.Value != nil {
			t.Fatal("a connection change carries a value")
		}

		rtPut(t, s, id, ChangeStale, func(e *Entry) {
			e.Stale, e.StaleSince, e.StaleReason = true, time.Now().UTC(), StaleUpdated
		})
		ev = wtNext(t, ch)
		wtKind(t, ev, WatchStale)
		wtWantKeys(t, ev, true)
		if !ev.Entry.Stale || ev.Entry.StaleReason != StaleUpdated {
			t.Fatalf("stale event: entry stale %v (%s)", ev.Entry.Stale, ev.Entry.StaleReason)
		}

		rtPut(t, s, id, ChangeEnabled, func(e *Entry) { e.Enabled = false })
		ev = wtNext(t, ch)
		wtKind(t, ev, WatchEnabled)
		wtWantKeys(t, ev, true)
		if ev.Entry.Enabled {
			t.Fatal("enabled event: the entry is still enabled")
		}

		rtDelete(t, s, id)
		ev = wtNext(t, ch)
		wtKind(t, ev, WatchDeleted)
		if ev.Entry.Doc != nil {
			t.Fatalf("deleted event carries a document: %+v", ev.Entry)
		}
		wtWantKeys(t, ev, false, "sf:FAILED>-", "syncFrequency:5m>-")

		// Cached again (a tombstone's TTL ran out): every key is new.
		b.Client.Del(context.Background(), s.Keys().Tombstone(id))
		rtCreate(t, s, id, "acme-001", "Salesforce", "1h")
		ev = wtNext(t, ch)
		wtKind(t, ev, WatchRefreshed)
		wtWantKeys(t, ev, true, "syncFrequency:->1h")
	})
}

// TestWatchRefreshThatChangedNothing: a refresh announced with
// "changed_keys": [] (a deploy that changed no value) is an event without
// keys: the entry did change (its deployed version, its fetch time).
func TestWatchRefreshThatChangedNothing(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newWriter(b.Client, b.Prefix)
		r := rtReader(t, b, b.Client, ReaderOptions{})
		id := "watch-nothing"
		rtCreate(t, s, id, "acme-001", "Salesforce", "15m")
		ch, _ := wtWatch(t, r, id)
		wtKind(t, wtNext(t, ch), WatchInitial)

		rev := rtPut(t, s, id, ChangeRefreshed, func(e *Entry) { e.DeployedVersion, e.Doc.DeployedVersion = 4, 4 })
		ev := wtNext(t, ch)
		wtKind(t, ev, WatchRefreshed)
		wtWantKeys(t, ev, true)
		if ev.Entry.Rev != rev || ev.Entry.DeployedVersion != 4 {
			t.Fatalf("event entry rev %d deployed version %d, want %d 4", ev.Entry.Rev, ev.Entry.DeployedVersion, rev)
		}
	})
}

// TestWatchWithAnOlderDaemon: messages without changed_keys make the watch
// compare the two entries itself: the same keys, marked as compared.
func TestWatchWithAnOlderDaemon(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newWriter(b.Client, b.Prefix)
		s.legacy = true
		r := rtReader(t, b, b.Client, ReaderOptions{})
		id := "watch-legacy"
		rtCreate(t, s, id, "acme-001", "Salesforce", "15m")
		ch, _ := wtWatch(t, r, id)
		wtKind(t, wtNext(t, ch), WatchInitial)

		wtSet(t, s, id, "region", "eu")
		ev := wtNext(t, ch)
		wtKind(t, ev, WatchRefreshed)
		wtWantKeys(t, ev, false, "region:->eu")

		rtSetValue(t, s, id, "1h")
		wtWantKeys(t, wtNext(t, ch), false, "syncFrequency:15m>1h")

		// A connection's refresh time is not a change.
		rtPut(t, s, id, ChangeRefreshed, func(e *Entry) {
			at := time.Now().UTC()
			e.Doc.Config["sf"] = ConfigValue{Type: TypeConnection, Status: "ACTIVE", RefreshAt: &at}
		})
		wtWantKeys(t, wtNext(t, ch), false, "sf:->ACTIVE")
		rtPut(t, s, id, ChangeRefreshed, func(e *Entry) {
			at := time.Now().UTC().Add(time.Hour)
			e.Doc.Config["sf"] = ConfigValue{Type: TypeConnection, Status: "ACTIVE", RefreshAt: &at}
		})
		wtWantKeys(t, wtNext(t, ch), false)
	})
}

// TestWatchTakesTheFeedsKeys: when the feed names the keys, the watch
// reports those — here one whose type changed, which comparing values
// alone would not see.
func TestWatchTakesTheFeedsKeys(t *testing.T) {
	b := redistest.Mini(t)
	s := newWriter(b.Client, b.Prefix)
	r := rtReader(t, b, b.Client, ReaderOptions{})
	id := "watch-feed"
	rtCreate(t, s, id, "acme-001", "Salesforce", "15m")
	wtSet(t, s, id, "batch", "5")
	ch, _ := wtWatch(t, r, id)
	wtKind(t, wtNext(t, ch), WatchInitial)

	ctx := context.Background()
	st, err := s.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	next := st.Entry
	d := *next.Doc
	d.Config = map[string]ConfigValue{"syncFrequency": d.Config["syncFrequency"], "batch": {Value: new("5"), Type: "NUMBER"}}
	next.Doc = &d
	if _, err := s.Apply(ctx, id, st.Entry, writeOp{Kind: ChangeRefreshed, Entry: next, ChangedKeys: []string{"batch"}}); err != nil {
		t.Fatal(err)
	}
	ev := wtNext(t, ch)
	wtWantKeys(t, ev, true, "batch:5>5")
	if ev.Keys[0].Old.Type != "STRING" || ev.Keys[0].New.Type != "NUMBER" {
		t.Fatalf("batch: %+v → %+v, want STRING → NUMBER", *ev.Keys[0].Old, *ev.Keys[0].New)
	}
}

// TestWatchResyncsAfterAGap: a dropped subscription, and an unreadable
// message, are followed by a resync carrying a fresh read and its
// comparison with the last event's entry.
func TestWatchResyncsAfterAGap(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newWriter(b.Client, b.Prefix)
		var sw rtNet
		rdb, _ := rtClient(t, b, &sw)
		r := rtReader(t, b, rdb, ReaderOptions{HealthCheckInterval: 50 * time.Millisecond})
		id := "watch-gap"
		rtCreate(t, s, id, "acme-001", "Salesforce", "15m")
		ch, _ := wtWatch(t, r, id)
		wtKind(t, wtNext(t, ch), WatchInitial)

		sw.setDown(true)
		rtWaitFor(t, "the reader to notice", func() bool { return !r.Stats().Subscribed })
		rev := rtSetValue(t, s, id, "1h") // a message nobody here hears
		sw.setDown(false)
		ev := wtNext(t, ch)
		wtKind(t, ev, WatchResync)
		wtWantKeys(t, ev, false, "syncFrequency:15m>1h")
		if ev.Entry.Rev != rev {
			t.Fatalf("resync entry rev %d, want %d", ev.Entry.Rev, rev)
		}

		if err := b.Client.Publish(context.Background(), s.Keys().Events(), "not json").Err(); err != nil {
			t.Fatal(err)
		}
		ev = wtNext(t, ch)
		wtKind(t, ev, WatchResync)
		wtWantKeys(t, ev, false)

		// And the watch goes on from the feed.
		rtSetValue(t, s, id, "2h")
		ev = wtNext(t, ch)
		wtKind(t, ev, WatchRefreshed)
		wtWantKeys(t, ev, true, "syncFrequency:1h>2h")
	})
}
