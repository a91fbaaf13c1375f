package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/store"
)

func ptr[T any](v T) *T { return &v }

func testDoc(id, ext, integration string, cvIDs ...string) *cache.Doc {
	d := &cache.Doc{
		ID: id, Name: "Acme - " + integration, Enabled: true, DeployedVersion: 3,
		LastDeployedAt: ptr(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)),
		Customer:       cache.Customer{ID: "Q3VzdG9tZXI6MQ==", ExternalID: ext, Name: "Acme"},
		Integration:    cache.Integration{ID: "SW50ZWdyYXRpb246MQ==", Name: integration, VersionNumber: 4},
		Config:         map[string]cache.ConfigValue{},
	}
	for i, cv := range cvIDs {
		key := string(rune('a' + i))
		d.Config[key] = cache.ConfigValue{ID: cv, Value: ptr("v" + key), Type: "STRING"}
	}
	return d
}

func mustLoad(t *testing.T, s *store.Store, id string) store.State {
	t.Helper()
	st, err := s.Load(context.Background(), id)
	if err != nil {
		t.Fatalf("load %s: %v", id, err)
	}
	return st
}

// staleMark decides a stale mark (reason updated) that keeps the document.
func staleMark(st store.State) *store.Mutation {
	next := st.Entry
	next.Stale, next.StaleReason = true, cache.StaleUpdated
	return &store.Mutation{Kind: cache.ChangeStale, Entry: next, KeepDoc: true}
}

func mustApply(t *testing.T, s *store.Store, id string, prev cache.Entry, m store.Mutation) int64 {
	t.Helper()
	rev, err := s.Apply(context.Background(), id, prev, m)
	if err != nil {
		t.Fatalf("apply %s: %v", id, err)
	}
	return rev
}

func TestStoreWriteReadAndPublish(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, store.Options{Prefix: b.Prefix})
		sub := b.Client.Subscribe(ctx, s.Keys().Events())
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		msgs := sub.Channel()

		fetched := time.Date(2026, 11, 27, 9, 0, 0, 123456000, time.UTC)
		e := cache.Entry{Doc: testDoc("inst1", "acme-001", "Salesforce", "cv1", "cv2"), Enabled: true, DeployedVersion: 3, FetchedAt: fetched}
		rev := mustApply(t, s, "inst1", cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e})
		if rev != 1 {
			t.Fatalf("first write rev = %d, want 1", rev)
		}
		select {
		case m := <-msgs:
			var got cache.Message
			if err := json.Unmarshal([]byte(m.Payload), &got); err != nil {
				t.Fatalf("message %q: %v", m.Payload, err)
			}
			if !reflect.DeepEqual(got, cache.Message{ID: "inst1", Change: cache.ChangeRefreshed, DeployedVersion: 3, Rev: 1}) {
				t.Fatalf("message = %+v", got)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no message on the events channel")
		}

		st := mustLoad(t, s, "inst1")
		if !st.Exists || st.Tombstoned || st.Entry.Rev != 1 || st.Entry.Stale || !st.Entry.Enabled {
			t.Fatalf("state after write = %+v", st)
		}
		if !st.Entry.FetchedAt.Equal(fetched) || st.Entry.Doc.Config["a"].Value == nil || *st.Entry.Doc.Config["a"].Value != "va" {
			t.Fatalf("entry read back = %+v", st.Entry)
		}
		h := b.Client.HGetAll(ctx, s.Keys().Instance("inst1")).Val()
		for field, want := range map[string]string{"stale": "0", "enabled": "1", "deployed_version": "3", "rev": "1",
			"fetched_at": "2026-11-27T09:00:00.123456Z", "last_deployed_at": "2026-11-20T10:00:00Z"} {
			if h[field] != want {
				t.Errorf("field %s = %q, want %q", field, h[field], want)
			}
		}
		if _, ok := h["stale_since"]; ok {
			t.Error("a fresh entry has a stale_since field")
		}

		// Mark it stale, then fresh again: stale_since must go away.
		stale := st.Entry
		stale.Stale, stale.StaleSince, stale.StaleReason = true, fetched, cache.StaleUpdated
		rev = mustApply(t, s, "inst1", st.Entry, store.Mutation{Kind: cache.ChangeStale, Entry: stale})
		if rev != 2 || b.Client.HGet(ctx, s.Keys().Instance("inst1"), "stale").Val() != "1" {
			t.Fatalf("stale write: rev %d, stale %q", rev, b.Client.HGet(ctx, s.Keys().Instance("inst1"), "stale").Val())
		}
		st = mustLoad(t, s, "inst1")
		fresh := st.Entry
		fresh.Stale, fresh.StaleSince, fresh.StaleReason = false, time.Time{}, ""
		mustApply(t, s, "inst1", st.Entry, store.Mutation{Kind: cache.ChangeRefreshed, Entry: fresh})
		if n := b.Client.HExists(ctx, s.Keys().Instance("inst1"), "stale_since").Val(); n {
			t.Error("stale_since left behind after the entry turned fresh")
		}
	})
}

func TestStoreConflictLeavesEntryAlone(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := store.New(b.Client, store.Options{Prefix: b.Prefix})
		e := cache.Entry{Doc: testDoc("inst1", "acme", "Slack"), DeployedVersion: 3}
		mustApply(t, s, "inst1", cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e})

		// A writer that read the entry before it existed loses.
		other := e
		other.Doc = testDoc("inst1", "acme", "Slack")
		other.Doc.Name = "lost update"
		if _, err := s.Apply(context.Background(), "inst1", cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: other}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("write with an old rev: err = %v, want ErrConflict", err)
		}
		st := mustLoad(t, s, "inst1")
		if st.Entry.Rev != 1 || st.Entry.Doc.Name == "lost update" {
			t.Fatalf("a conflicting write changed the entry: %+v", st.Entry)
		}
	})
}

func TestStoreDeleteLeavesTombstoneAndCleansIndexes(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, store.Options{Prefix: b.Prefix, TombstoneTTL: time.Hour})
		e := cache.Entry{Doc: testDoc("inst1", "acme-001", "Salesforce", "cv1"), DeployedVersion: 3}
		mustApply(t, s, "inst1", cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e})
		if got, _ := s.InstanceForConfigVariable(ctx, "cv1"); got != "inst1" {
			t.Fatalf("config variable index = %q, want inst1", got)
		}
		if !b.Client.SIsMember(ctx, s.Keys().Customer("acme-001"), "inst1").Val() ||
			!b.Client.SIsMember(ctx, s.Keys().CustomerIntegration("acme-001", "Salesforce"), "inst1").Val() {
			t.Fatal("customer index rows missing after a write")
		}

		st := mustLoad(t, s, "inst1")
		mustApply(t, s, "inst1", st.Entry, store.Mutation{Kind: cache.ChangeDeleted, Delete: true})
		st = mustLoad(t, s, "inst1")
		if st.Exists || !st.Tombstoned {
			t.Fatalf("after delete: %+v", st)
		}
		if ttl := b.Client.PTTL(ctx, s.Keys().Tombstone("inst1")).Val(); ttl <= 0 || ttl > time.Hour {
			t.Fatalf("tombstone TTL = %v, want (0, 1h]", ttl)
		}
		if got, _ := s.InstanceForConfigVariable(ctx, "cv1"); got != "" {
			t.Errorf("config variable index still points at %q", got)
		}
		if b.Client.SIsMember(ctx, s.Keys().Customer("acme-001"), "inst1").Val() {
			t.Error("customer index still lists the deleted instance")
		}
		// Nothing brings it back, not even a writer that read the empty state.
		_, err := s.Apply(ctx, "inst1", cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e})
		if !errors.Is(err, store.ErrTombstoned) {
			t.Fatalf("write over a tombstone: err = %v, want ErrTombstoned", err)
		}
		if mustLoad(t, s, "inst1").Exists {
			t.Fatal("a write over a tombstone created the entry")
		}
	})
}

func TestStoreIndexFollowsCustomerAndConfigChanges(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, store.Options{Prefix: b.Prefix})
		e := cache.Entry{Doc: testDoc("inst1", "old-ext", "Slack", "cv1", "cv2")}
		mustApply(t, s, "inst1", cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e})
		st := mustLoad(t, s, "inst1")
		next := st.Entry
		next.Doc = testDoc("inst1", "new-ext", "Slack", "cv2", "cv3")
		mustApply(t, s, "inst1", st.Entry, store.Mutation{Kind: cache.ChangeRefreshed, Entry: next})

		if b.Client.SIsMember(ctx, s.Keys().Customer("old-ext"), "inst1").Val() {
			t.Error("old customer still indexes the instance")
		}
		if !b.Client.SIsMember(ctx, s.Keys().Customer("new-ext"), "inst1").Val() {
			t.Error("new customer does not index the instance")
		}
		for cv, want := range map[string]string{"cv1": "", "cv2": "inst1", "cv3": "inst1"} {
			if got, _ := s.InstanceForConfigVariable(ctx, cv); got != want {
				t.Errorf("config variable %s → %q, want %q", cv, got, want)
			}
		}
	})
}

func TestStoreSyncMarker(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, store.Options{Prefix: b.Prefix})
		if ok, err := s.Synced(ctx); err != nil || ok {
			t.Fatalf("Synced on an empty Redis = %v, %v", ok, err)
		}
		if err := s.BeginSync(ctx, "pass-1"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.Synced(ctx); ok {
			t.Fatal("a pass that only began counts as synced")
		}
		if err := s.BeginSync(ctx, "pass-2"); err != nil { // another pass took over
			t.Fatal(err)
		}
		if done, err := s.FinishSync(ctx, "pass-1", time.Now(), time.Now()); err != nil || done {
			t.Fatalf("a superseded pass finished: %v, %v", done, err)
		}
		if done, err := s.FinishSync(ctx, "pass-2", time.Now(), time.Now()); err != nil || !done {
			t.Fatalf("FinishSync = %v, %v", done, err)
		}
		if ok, _ := s.Synced(ctx); !ok {
			t.Fatal("marker not seen after FinishSync")
		}
		// A flush in the middle of a pass: its end must not claim a sync.
		if err := s.BeginSync(ctx, "pass-3"); err != nil {
			t.Fatal(err)
		}
		b.Client.Del(ctx, s.Keys().SyncMarker())
		if done, _ := s.FinishSync(ctx, "pass-3", time.Now(), time.Now()); done {
			t.Fatal("a pass interrupted by a flush recorded a sync")
		}
		if ok, _ := s.Synced(ctx); ok {
			t.Fatal("synced after a flush")
		}
	})
}

func TestParseEntryRejectsBadFields(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    map[string]string
	}{
		{"doc", map[string]string{"doc": "{not json"}},
		{"rev", map[string]string{"rev": "x"}},
		{"deployed_version", map[string]string{"deployed_version": "1.5"}},
		{"fetched_at", map[string]string{"fetched_at": "yesterday"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := cache.ParseEntry(tc.h); err == nil {
				t.Fatalf("ParseEntry(%v) accepted a bad %s", tc.h, tc.name)
			}
		})
	}
	e, err := cache.ParseEntry(map[string]string{})
	if err != nil || e.Doc != nil || e.Rev != 0 {
		t.Fatalf("empty hash: %+v, %v", e, err)
	}
}

func TestStoreKeepDocLeavesTheDocumentAlone(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, store.Options{Prefix: b.Prefix})
		e := cache.Entry{Doc: testDoc("inst1", "acme", "Slack", "cv1"), DeployedVersion: 3}
		mustApply(t, s, "inst1", cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e})
		before := b.Client.HGet(ctx, s.Keys().Instance("inst1"), cache.FieldDoc).Val()
		st := mustLoad(t, s, "inst1")
		next := st.Entry
		next.Stale, next.StaleReason = true, cache.StaleUpdated
		next.Doc = testDoc("inst1", "acme", "Slack", "cv1")
		next.Doc.Name = "must not be written"
		mustApply(t, s, "inst1", st.Entry, store.Mutation{Kind: cache.ChangeStale, Entry: next, KeepDoc: true})
		h := b.Client.HGetAll(ctx, s.Keys().Instance("inst1")).Val()
		if h[cache.FieldDoc] != before || h[cache.FieldStale] != "1" || h[cache.FieldStaleReason] != cache.StaleUpdated {
			t.Fatalf("KeepDoc write: doc changed %v, stale %q reason %q", h[cache.FieldDoc] != before, h[cache.FieldStale], h[cache.FieldStaleReason])
		}
	})
}

// Update with WithoutDoc decides a flags-only change on the entry read
// without its document — every other field as a full read gives it — and
// writes the flags with the document untouched; a change that needs the
// document makes it read the whole entry and decide again.
func TestStoreUpdateWithoutDoc(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, store.Options{Prefix: b.Prefix})
		fetched := time.Date(2026, 11, 27, 9, 0, 0, 5000, time.UTC)
		e := cache.Entry{Doc: testDoc("inst1", "acme", "Slack", "cv1"), Enabled: true, DeployedVersion: 3, FetchedAt: fetched,
			UpdatedEventAt: fetched.Add(-time.Minute), LastError: "earlier failure"}
		mustApply(t, s, "inst1", cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e})
		full := mustLoad(t, s, "inst1")
		docBefore := b.Client.HGet(ctx, s.Keys().Instance("inst1"), cache.FieldDoc).Val()

		var seen []store.State
		up, err := s.Update(ctx, "inst1", store.UpdateOptions{WithoutDoc: true}, func(st store.State) *store.Mutation {
			seen = append(seen, st)
			next := st.Entry
			next.Stale, next.StaleReason, next.StaleSince = true, cache.StaleUpdated, fetched.Add(time.Second)
			return &store.Mutation{Kind: cache.ChangeStale, Entry: next, KeepDoc: true}
		})
		if err != nil || up.Mutation == nil {
			t.Fatalf("update: %+v, %v", up, err)
		}
		if len(seen) != 1 || !seen[0].DocOmitted || seen[0].Entry.Doc == nil {
			t.Fatalf("decide saw %d states; first %+v", len(seen), seen)
		}
		got := seen[0]
		if got.Entry.Doc.ID != "inst1" || got.Entry.Doc.LastDeployedAt == nil || !got.Entry.Doc.LastDeployedAt.Equal(*full.Entry.Doc.LastDeployedAt) {
			t.Fatalf("document stand-in %+v, want the id and last deployed time of %+v", got.Entry.Doc, full.Entry.Doc)
		}
		want := full.Entry
		want.Doc, got.Entry.Doc = nil, nil
		if got.Entry != want || !got.Exists || got.Tombstoned {
			t.Fatalf("entry without its document:\n got %+v\nwant %+v", got, want)
		}
		h := b.Client.HGetAll(ctx, s.Keys().Instance("inst1")).Val()
		if h[cache.FieldDoc] != docBefore || h[cache.FieldStale] != "1" || h[cache.FieldLastError] != "earlier failure" || h[cache.FieldDeployedVersion] != "3" {
			t.Fatalf("after the stale mark: doc kept %v, stale %q, last_error %q, deployed_version %q",
				h[cache.FieldDoc] == docBefore, h[cache.FieldStale], h[cache.FieldLastError], h[cache.FieldDeployedVersion])
		}

		// A toggle rewrites the document: decided on the stand-in, it is
		// decided again on the whole entry, and the write keeps every
		// config variable.
		seen = nil
		_, err = s.Update(ctx, "inst1", store.UpdateOptions{WithoutDoc: true}, func(st store.State) *store.Mutation {
			seen = append(seen, st)
			next := st.Entry
			doc := *st.Entry.Doc
			doc.Enabled = false
			next.Doc, next.Enabled = &doc, false
			return &store.Mutation{Kind: cache.ChangeEnabled, Entry: next}
		})
		if err != nil || len(seen) != 2 || !seen[0].DocOmitted || seen[1].DocOmitted {
			t.Fatalf("toggle: err %v, decided %d times (want 2: without, then with the document)", err, len(seen))
		}
		after := mustLoad(t, s, "inst1")
		if after.Entry.Doc == nil || after.Entry.Doc.Enabled || after.Entry.Doc.Name != full.Entry.Doc.Name || len(after.Entry.Doc.Config) != 1 {
			t.Fatalf("document after the toggle: %+v", after.Entry.Doc)
		}

		// An instance not cached reads as not existing, with no document.
		_, err = s.Update(ctx, "nope", store.UpdateOptions{WithoutDoc: true}, func(st store.State) *store.Mutation {
			if st.Exists || st.Entry.Doc != nil {
				t.Errorf("missing entry read as %+v", st)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// Update with a Prior state decides on it without reading the entry again;
// when the entry changed since that read, the write is refused and Update
// reads the entry and decides once more.
func TestStoreUpdateFromPriorState(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, store.Options{Prefix: b.Prefix})
		e := cache.Entry{Doc: testDoc("inst1", "acme", "Slack", "cv1"), DeployedVersion: 3}
		mustApply(t, s, "inst1", cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e})
		markStale := func(revs *[]int64) func(store.State) *store.Mutation {
			return func(st store.State) *store.Mutation {
				*revs = append(*revs, st.Entry.Rev)
				return staleMark(st)
			}
		}

		prior := mustLoad(t, s, "inst1")
		var revs []int64
		up, err := s.Update(ctx, "inst1", store.UpdateOptions{Prior: &prior}, markStale(&revs))
		if err != nil || up.Rev != 2 || len(revs) != 1 || revs[0] != 1 {
			t.Fatalf("current prior: rev %d, err %v, decided on revs %v (want once, on rev 1)", up.Rev, err, revs)
		}

		// prior is now out of date (rev 1; the entry is at rev 2).
		revs = nil
		up, err = s.Update(ctx, "inst1", store.UpdateOptions{Prior: &prior}, markStale(&revs))
		if err != nil || up.Rev != 3 || len(revs) != 2 || revs[0] != 1 || revs[1] != 2 {
			t.Fatalf("outdated prior: rev %d, err %v, decided on revs %v (want 1, then 2 after reading again)", up.Rev, err, revs)
		}

		// A decision to write nothing is not checked by any compare-and-set:
		// made on a prior that is out of date, it is made again on a fresh
		// read. Here the prior says the entry does not exist; it does.
		revs = nil
		up, err = s.Update(ctx, "inst1", store.UpdateOptions{Prior: &store.State{}}, func(st store.State) *store.Mutation {
			revs = append(revs, st.Entry.Rev)
			if !st.Exists {
				return nil
			}
			return staleMark(st)
		})
		if err != nil || up.Rev != 4 || len(revs) != 2 || revs[0] != 0 || revs[1] != 3 {
			t.Fatalf("prior without the entry: rev %d, err %v, decided on revs %v (want 0, then 3 after reading again)", up.Rev, err, revs)
		}
	})
}

// Alongside runs while the entry is read; when it fails, Update writes
// nothing and returns its error, and when it succeeds the write is made.
func TestStoreUpdateAlongside(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := store.New(b.Client, store.Options{Prefix: b.Prefix})
		e := cache.Entry{Doc: testDoc("inst1", "acme", "Slack", "cv1"), DeployedVersion: 3}
		mustApply(t, s, "inst1", cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e})
		mark := staleMark
		boom := errors.New("work set unavailable")
		_, err := s.Update(ctx, "inst1", store.UpdateOptions{Sum: "abc", Window: time.Minute, Alongside: func() error { return boom }}, mark)
		if !errors.Is(err, boom) {
			t.Fatalf("failing Alongside: err %v, want %v", err, boom)
		}
		if st := mustLoad(t, s, "inst1"); st.Entry.Rev != 1 || st.Entry.Stale {
			t.Fatalf("after a failing Alongside the entry was written: rev %d stale %v", st.Entry.Rev, st.Entry.Stale)
		}
		ran := false
		up, err := s.Update(ctx, "inst1", store.UpdateOptions{Sum: "abc", Window: time.Minute, Alongside: func() error { ran = true; return nil }}, mark)
		if err != nil || !ran || up.Rev != 2 || up.Duplicate {
			t.Fatalf("retry: %+v, err %v, Alongside ran %v; want written at rev 2", up, err, ran)
		}
	})
}
