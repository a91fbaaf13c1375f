package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/store"
)

// TestRefreshesTellWhatChanged: a refresh's message names the keys it
// changed (an empty list when none), and every refresh that changed the
// deployed document leaves a revision — newest first, as deep as
// configured, connections by status only — that a delete removes.
func TestRefreshesTellWhatChanged(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, store.Options{Prefix: b.Prefix, HistoryDepth: 3})
		sub := b.Client.Subscribe(ctx, s.Keys().Events())
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		msgs := sub.Channel()
		next := func() cache.Message {
			t.Helper()
			select {
			case m := <-msgs:
				var got cache.Message
				if err := json.Unmarshal([]byte(m.Payload), &got); err != nil {
					t.Fatal(err)
				}
				if strings.Contains(m.Payload, "secret") {
					t.Fatalf("a message carries a secret: %s", m.Payload)
				}
				return got
			case <-time.After(5 * time.Second):
				t.Fatal("no message")
			}
			return cache.Message{}
		}
		doc := func(version int, freq, status string) *cache.Doc {
			d := testDoc("inst1", "acme-001", "Salesforce", "cv1")
			d.DeployedVersion = version
			d.Config["a"] = cache.ConfigValue{ID: "cv1", Value: &freq, Type: "STRING"}
			d.Config["conn"] = cache.ConfigValue{ID: "cv2", Type: cache.TypeConnection, Status: status}
			return d
		}
		write := func(d *cache.Doc) {
			t.Helper()
			st := mustLoad(t, s, "inst1")
			mustApply(t, s, "inst1", st.Entry, store.Mutation{Kind: cache.ChangeRefreshed,
				Entry: cache.Entry{Doc: d, Enabled: true, DeployedVersion: d.DeployedVersion}})
		}

		write(doc(1, "15m", "ACTIVE"))
		if m := next(); !reflect.DeepEqual(m.ChangedKeys, []string{"a", "conn"}) {
			t.Fatalf("first write: changed_keys %v, want every key", m.ChangedKeys)
		}
		write(doc(2, "5m", "ACTIVE"))
		if m := next(); !reflect.DeepEqual(m.ChangedKeys, []string{"a"}) {
			t.Fatalf("deploy of one key: changed_keys %v, want [a]", m.ChangedKeys)
		}
		write(doc(2, "5m", "ERROR"))
		if m := next(); !reflect.DeepEqual(m.ChangedKeys, []string{"conn"}) {
			t.Fatalf("connection status: changed_keys %v, want [conn]", m.ChangedKeys)
		}
		write(doc(2, "5m", "ERROR"))
		if m := next(); m.ChangedKeys == nil || len(m.ChangedKeys) != 0 {
			t.Fatalf("a refresh that changed nothing: changed_keys %#v, want an empty list", m.ChangedKeys)
		}
		hist, err := s.History(ctx, "inst1")
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 3 {
			t.Fatalf("%d revisions kept, want 3 (the depth; the refresh that changed nothing adds none)", len(hist))
		}
		got := fmt.Sprint(revs(hist))
		want := "[v2 conn:ACTIVE->ERROR v2 a:15m->5m v1 a:->15m,conn:->ACTIVE]"
		if got != want {
			t.Fatalf("history %s, want %s (newest first)", got, want)
		}
		write(doc(3, "1m", "ERROR"))
		next()
		if hist, _ := s.History(ctx, "inst1"); len(hist) != 3 || hist[0].DeployedVersion != 3 {
			t.Fatalf("after a fourth revision: %s", fmt.Sprint(revs(hist)))
		}

		st := mustLoad(t, s, "inst1")
		mustApply(t, s, "inst1", st.Entry, store.Mutation{Kind: cache.ChangeDeleted, Delete: true})
		if m := next(); m.ChangedKeys != nil {
			t.Fatalf("a delete's message says changed_keys %v", m.ChangedKeys)
		}
		if n := b.Client.Exists(ctx, s.Keys().History("inst1")).Val(); n != 0 {
			t.Fatal("the history outlived the deleted entry")
		}
	})
}

func TestNoHistoryAtDepthZero(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := store.New(b.Client, store.Options{Prefix: b.Prefix})
		e := cache.Entry{Doc: testDoc("inst1", "acme-001", "Salesforce", "cv1"), DeployedVersion: 3}
		mustApply(t, s, "inst1", cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e})
		if n := b.Client.Exists(context.Background(), s.Keys().History("inst1")).Val(); n != 0 {
			t.Fatal("a history was kept with depth 0")
		}
	})
}

// revs sums revisions up as "vN key:old->new,…".
func revs(rs []cache.Revision) []string {
	var out []string
	for _, r := range rs {
		var cs []string
		for _, c := range r.Changes {
			cs = append(cs, fmt.Sprintf("%s:%s->%s", c.Key, deref(c.Old), deref(c.New)))
		}
		out = append(out, fmt.Sprintf("v%d", r.DeployedVersion), strings.Join(cs, ","))
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
