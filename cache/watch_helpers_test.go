package cache

import (
	"context"
	"slices"
	"testing"
	"time"
)

// wtWatch starts a watch of id that ends with the test.
func wtWatch(t testing.TB, r *Reader, id string) (<-chan WatchEvent, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := r.Watch(ctx, id)
	if err != nil {
		t.Fatalf("watch %s: %v", id, err)
	}
	return ch, cancel
}

// wtNext returns the next event, failing the test when none comes within
// 10s or the channel is closed.
func wtNext(t testing.TB, ch <-chan WatchEvent) WatchEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the watch channel was closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event within 10s")
	}
	return WatchEvent{}
}

// wtClosed waits for the channel to be closed, draining it.
func wtClosed(t testing.TB, ch <-chan WatchEvent) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the watch channel was not closed within 10s")
		}
	}
}

// wtKind fails unless ev is of kind k.
func wtKind(t testing.TB, ev WatchEvent, k WatchKind) {
	t.Helper()
	if ev.Kind != k {
		t.Fatalf("event %s (rev %d, keys %s), want %s", ev.Kind, ev.Entry.Rev, wtKeys(ev), k)
	}
}

// wtKeys renders the key changes of ev, "key:old>new" each, sorted; a
// connection shows its status, an absent variable "-".
func wtKeys(ev WatchEvent) []string {
	show := func(c *ConfigValue) string {
		switch {
		case c == nil:
			return "-"
		case c.IsConnection():
			return c.Status
		case c.Value == nil:
			return "null"
		}
		return *c.Value
	}
	out := []string{}
	for _, k := range ev.Keys {
		out = append(out, k.Key+":"+show(k.Old)+">"+show(k.New))
	}
	return out
}

// wtWantKeys fails unless ev reports exactly these key changes, from the
// feed or not as said.
func wtWantKeys(t testing.TB, ev WatchEvent, fromFeed bool, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := wtKeys(ev); !slices.Equal(got, want) || ev.KeysFromFeed != fromFeed {
		t.Fatalf("%s event: keys %q (from feed %v), want %q (from feed %v)", ev.Kind, got, ev.KeysFromFeed, want, fromFeed)
	}
}

// wtTheWatch returns the one live watch of id.
func wtTheWatch(t testing.TB, r *Reader, id string) *watch {
	t.Helper()
	r.watches.mu.Lock()
	defer r.watches.mu.Unlock()
	if len(r.watches.byID[id]) != 1 {
		t.Fatalf("%d watches of %s, want 1", len(r.watches.byID[id]), id)
	}
	for w := range r.watches.byID[id] {
		return w
	}
	return nil
}

// wtPushed returns how many messages the watch of id was handed.
func wtPushed(t testing.TB, r *Reader, id string) int {
	t.Helper()
	w := wtTheWatch(t, r, id)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pushed
}

// wtWaitPushed waits until the watch of id was handed n messages in all.
func wtWaitPushed(t testing.TB, r *Reader, id string, n int) {
	t.Helper()
	w := wtTheWatch(t, r, id)
	rtWaitFor(t, "the watch to be handed its messages", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.pushed >= n
	})
}

// wtSet writes value into config key of id (a refreshed write).
func wtSet(t testing.TB, s *writer, id, key, value string) int64 {
	t.Helper()
	return rtPut(t, s, id, ChangeRefreshed, func(e *Entry) {
		e.Doc.Config[key] = ConfigValue{Value: &value, Type: "STRING"}
	})
}
