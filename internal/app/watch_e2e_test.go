package app_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/redistest"
)

func TestWatchSeesADeployedKey(t *testing.T) { redistest.Each(t, testWatchSeesADeployedKey) }

// testWatchSeesADeployedKey: an app watching an instance through
// cache.Reader, while the daemon follows the simulator, is told of a
// deploy that changed one config variable as exactly that key, with its
// old and new values.
func testWatchSeesADeployedKey(t *testing.T, b redistest.Backend) {
	h := start(t, b)
	id := h.sim.DemoInstanceID()
	key, old, next := plainVar(t, h.sim, id)
	r, err := cache.NewReader(b.Client, cache.ReaderOptions{Prefix: b.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := r.Watch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	nextEvent := func() cache.WatchEvent {
		t.Helper()
		select {
		case ev := <-events:
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no watch event within 10s")
		}
		return cache.WatchEvent{}
	}
	if ev := nextEvent(); ev.Kind != cache.WatchInitial || value(ev.Entry, key) != old {
		t.Fatalf("first event %s with %s=%q, want initial with %q", ev.Kind, key, value(ev.Entry, key), old)
	}

	feed := b.Client.Subscribe(ctx, r.Keys().Events())
	defer feed.Close()
	if _, err := feed.Receive(ctx); err != nil {
		t.Fatal(err)
	}

	if _, err := h.sim.SetConfig(id, key, next); err != nil {
		t.Fatal(err)
	}
	if _, err := h.sim.Deploy(id); err != nil {
		t.Fatal(err)
	}
	// The change turns the entry stale, then the deploy brings the value:
	// one event each, or one for both when they land together.
	var changes []cache.KeyChange
	var last cache.WatchEvent
	for {
		ev := nextEvent()
		if ev.Kind == cache.WatchResync {
			t.Fatalf("a resync (%+v) with no gap in the subscription", ev)
		}
		changes = append(changes, ev.Keys...)
		t.Logf("%s event at rev %d: %d keys (from the feed: %v)", ev.Kind, ev.Entry.Rev, len(ev.Keys), ev.KeysFromFeed)
		if value(ev.Entry, key) == next && !ev.Entry.Stale {
			last = ev
			break
		}
	}
	if len(changes) != 1 {
		t.Fatalf("%d key changes reported (%+v), want exactly %s", len(changes), changes, key)
	}
	c := changes[0]
	if c.Key != key || c.Old == nil || c.New == nil || *c.Old.Value != old || *c.New.Value != next {
		t.Fatalf("change %+v, want %s from %q to %q", c, key, old, next)
	}

	// What the daemon published for the deploy: when it names the changed
	// keys, they are that one key, and the watch took them from the feed.
	for {
		m, err := feed.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var msg cache.Message
		if err := json.Unmarshal([]byte(m.Payload), &msg); err != nil {
			t.Fatalf("feed message %s: %v", m.Payload, err)
		}
		if msg.ID != id || msg.Rev != last.Entry.Rev {
			continue
		}
		if msg.ChangedKeys == nil {
			t.Logf("the daemon's message names no changed keys; the watch compared the entries")
			break
		}
		if !slices.Equal(msg.ChangedKeys, []string{key}) || !last.KeysFromFeed {
			t.Fatalf("feed message %s, watch keys from the feed: %v; want changed_keys [%q], taken by the watch", m.Payload, last.KeysFromFeed, key)
		}
		break
	}
}
