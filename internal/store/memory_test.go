package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/store"
)

// staleAt decides a stale mark for an update event at ts, skipped when the
// deployed document is newer than the event (the rule the intake follows).
func staleAt(ts time.Time) func(store.State) *store.Mutation {
	return func(st store.State) *store.Mutation {
		e := st.Entry
		if e.Doc == nil || e.Doc.LastDeployedAt != nil && ts.Before(*e.Doc.LastDeployedAt) {
			return nil
		}
		e.Stale, e.StaleReason, e.UpdatedEventAt = true, cache.StaleUpdated, ts
		if e.StaleSince.IsZero() {
			e.StaleSince = ts
		}
		return &store.Mutation{Kind: cache.ChangeStale, Entry: e, KeepDoc: true}
	}
}

// TestStoreRememberedEntryReplacedBehindItsBack: a replica remembers the
// entry it last wrote; Redis then comes back from an older copy and another
// replica writes the entry up to the same rev with a newer deploy. The
// first replica's next stale mark must be decided on the entry as it is
// (the update is older than that deploy: nothing to write), not on the
// entry it remembers, whose rev matches.
func TestStoreRememberedEntryReplacedBehindItsBack(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		a := store.New(b.Client, store.Options{Prefix: b.Prefix})
		other := store.New(b.Client, store.Options{Prefix: b.Prefix})
		key := a.Keys().Instance("inst1")
		deployed := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

		first := cache.Entry{Doc: testDoc("inst1", "acme-001", "Salesforce"), Enabled: true, DeployedVersion: 3, FetchedAt: deployed}
		if _, err := a.Update(ctx, "inst1", store.UpdateOptions{}, func(store.State) *store.Mutation {
			return &store.Mutation{Kind: cache.ChangeRefreshed, Entry: first}
		}); err != nil {
			t.Fatal(err)
		}
		snapshot, err := b.Client.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		up, err := a.Update(ctx, "inst1", store.UpdateOptions{WithoutDoc: true}, staleAt(deployed.Add(time.Minute)))
		if err != nil || up.Rev != 2 {
			t.Fatalf("stale mark: rev %d, %v; want rev 2", up.Rev, err)
		}

		// Redis restarts from the copy taken at rev 1.
		if err := b.Client.Del(ctx, key).Err(); err != nil {
			t.Fatal(err)
		}
		if err := b.Client.HSet(ctx, key, snapshot).Err(); err != nil {
			t.Fatal(err)
		}
		// The other replica writes a newer deploy: rev 2 again.
		redeployed := deployed.Add(time.Hour)
		second := cache.Entry{Doc: testDoc("inst1", "acme-001", "Salesforce"), Enabled: true, DeployedVersion: 4, FetchedAt: redeployed}
		second.Doc.DeployedVersion, second.Doc.LastDeployedAt = 4, &redeployed
		up, err = other.Update(ctx, "inst1", store.UpdateOptions{}, func(store.State) *store.Mutation {
			return &store.Mutation{Kind: cache.ChangeRefreshed, Entry: second}
		})
		if err != nil || up.Rev != 2 {
			t.Fatalf("the other replica's write: rev %d, %v; want rev 2", up.Rev, err)
		}

		// An update older than the new deploy reaches the first replica.
		up, err = a.Update(ctx, "inst1", store.UpdateOptions{WithoutDoc: true}, staleAt(deployed.Add(2*time.Minute)))
		if err != nil {
			t.Fatal(err)
		}
		if up.Mutation != nil {
			t.Fatalf("an update older than the stored deploy wrote %+v", up.Mutation.Entry)
		}
		got := mustLoad(t, a, "inst1").Entry
		if got.Stale || got.DeployedVersion != 4 || got.Rev != 2 || !got.UpdatedEventAt.IsZero() {
			t.Fatalf("entry after the older update: stale %v, deployed_version %d, rev %d, updated event %v; want the other replica's write untouched",
				got.Stale, got.DeployedVersion, got.Rev, got.UpdatedEventAt)
		}
	})
}

// TestStoreRememberedStaleMarkMatchesAFullWrite: a stale mark decided on a
// remembered entry, which writes only the fields that change, leaves the
// entry exactly as a store that remembers nothing leaves it.
func TestStoreRememberedStaleMarkMatchesAFullWrite(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		entries := map[string]cache.Entry{}
		for _, remember := range []int{0, -1} {
			s := store.New(b.Client, store.Options{Prefix: b.Prefix, Remember: remember})
			id := "inst-remember"
			if remember < 0 {
				id = "inst-forget"
			}
			deployed := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
			e := cache.Entry{Doc: testDoc(id, "acme-001", "Salesforce", "cv-"+id), Enabled: true, DeployedVersion: 3, FetchedAt: deployed,
				LastError: "earlier failure"}
			if _, err := s.Update(ctx, id, store.UpdateOptions{}, func(store.State) *store.Mutation {
				return &store.Mutation{Kind: cache.ChangeRefreshed, Entry: e}
			}); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				if _, err := s.Update(ctx, id, store.UpdateOptions{WithoutDoc: true}, staleAt(deployed.Add(time.Duration(i)*time.Minute))); err != nil {
					t.Fatal(err)
				}
			}
			// A toggle that clears a field: the field must go.
			if _, err := s.Update(ctx, id, store.UpdateOptions{WithoutDoc: true}, func(st store.State) *store.Mutation {
				e := st.Entry
				e.Enabled, e.LastError = false, ""
				return &store.Mutation{Kind: cache.ChangeEnabled, Entry: e, KeepDoc: true}
			}); err != nil {
				t.Fatal(err)
			}
			st := mustLoad(t, s, id)
			st.Entry.Doc.ID, st.Entry.Doc.Config = "", nil
			entries[id] = st.Entry
		}
		got, want := entries["inst-remember"], entries["inst-forget"]
		if got.Rev != 5 || got.Stale != want.Stale || got.Enabled || got.LastError != "" || !got.UpdatedEventAt.Equal(want.UpdatedEventAt) ||
			!got.StaleSince.Equal(want.StaleSince) || got.StaleReason != want.StaleReason || got.DeployedVersion != want.DeployedVersion {
			t.Fatalf("remembering store left %+v\nthe other %+v", got, want)
		}
	})
}
