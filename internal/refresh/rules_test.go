package refresh_test

import (
	"testing"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/store"
)

var (
	deployAt = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	started  = deployAt.Add(time.Hour)
	now      = started.Add(time.Second)
)

func sp(s string) *string { return &s }

func doc(version int, deployed time.Time, needsDeploy bool, value, status string) *cache.Doc {
	return &cache.Doc{
		ID: "i", Enabled: true, DeployedVersion: version, LastDeployedAt: &deployed, NeedsDeploy: needsDeploy,
		Customer: cache.Customer{ID: "c", ExternalID: "acme", Name: "Acme"},
		Config: map[string]cache.ConfigValue{
			"frequency":  {ID: "cv1", Value: sp(value), Type: "STRING"},
			"salesforce": {ID: "cv2", Type: cache.TypeConnection, Status: status},
		},
	}
}

func entryWith(d *cache.Doc, f func(*cache.Entry)) store.State {
	e := cache.Entry{Doc: d, Enabled: d.Enabled, DeployedVersion: d.DeployedVersion, FetchedAt: deployAt.Add(time.Minute), Rev: 4}
	if f != nil {
		f(&e)
	}
	return store.State{Exists: true, Entry: e}
}

func TestDecideWrite(t *testing.T) {
	v3 := doc(3, deployAt, false, "15m", "ACTIVE")
	v4 := doc(4, deployAt.Add(30*time.Minute), false, "5m", "ACTIVE")
	v4ahead := doc(4, deployAt.Add(30*time.Minute), true, "1m", "ERROR")
	for _, tc := range []struct {
		name    string
		st      store.State
		fetched *cache.Doc
		skip    string
		check   func(t *testing.T, m *store.Mutation)
	}{
		{name: "first fetch writes the entry", st: store.State{}, fetched: v3,
			check: func(t *testing.T, m *store.Mutation) {
				e := m.Entry
				if m.Kind != cache.ChangeRefreshed || e.Stale || e.DeployedVersion != 3 || !e.FetchedAt.Equal(started) || *e.Doc.Config["frequency"].Value != "15m" {
					t.Errorf("mutation = %+v", m)
				}
			}},
		{name: "deploy replaces and clears stale", fetched: v4,
			st: entryWith(v3, func(e *cache.Entry) {
				e.Stale, e.StaleReason, e.StaleSince, e.UpdatedEventAt = true, cache.StaleUpdated, deployAt.Add(10*time.Minute), deployAt.Add(10*time.Minute)
			}),
			check: func(t *testing.T, m *store.Mutation) {
				e := m.Entry
				if e.Stale || e.StaleReason != "" || !e.StaleSince.IsZero() || e.DeployedVersion != 4 || *e.Doc.Config["frequency"].Value != "5m" {
					t.Errorf("entry = %+v", e)
				}
			}},
		{name: "changed again after the deploy: keeps the deployed config, merges connection status, stays stale", fetched: v4ahead,
			st: entryWith(v4, nil),
			check: func(t *testing.T, m *store.Mutation) {
				e := m.Entry
				if !e.Stale || e.StaleReason != cache.StaleNeedsDeploy {
					t.Errorf("stale=%v reason=%q, want stale for needs_deploy", e.Stale, e.StaleReason)
				}
				if *e.Doc.Config["frequency"].Value != "5m" {
					t.Errorf("undeployed value %q copied into the cache", *e.Doc.Config["frequency"].Value)
				}
				if e.Doc.Config["salesforce"].Status != "ERROR" {
					t.Errorf("connection status %q not merged", e.Doc.Config["salesforce"].Status)
				}
			}},
		{name: "needs deploy with nothing cached: the stored config, labelled undeployed", st: store.State{}, fetched: v4ahead,
			check: func(t *testing.T, m *store.Mutation) {
				if !m.Entry.Stale || m.Entry.StaleReason != cache.StaleUndeployed || *m.Entry.Doc.Config["frequency"].Value != "1m" {
					t.Errorf("entry = %+v", m.Entry)
				}
			}},
		{name: "undeployed entry takes the newer stored config", fetched: v4ahead,
			st: entryWith(doc(4, deployAt.Add(30*time.Minute), true, "2m", "ACTIVE"), func(e *cache.Entry) {
				e.Stale, e.StaleReason = true, cache.StaleUndeployed
			}),
			check: func(t *testing.T, m *store.Mutation) {
				if m.Entry.StaleReason != cache.StaleUndeployed || *m.Entry.Doc.Config["frequency"].Value != "1m" {
					t.Errorf("entry = %+v", m.Entry)
				}
			}},
		{name: "undeployed entry turns fresh at the deploy", fetched: v4,
			st: entryWith(doc(4, deployAt.Add(30*time.Minute), true, "2m", "ACTIVE"), func(e *cache.Entry) {
				e.Stale, e.StaleReason = true, cache.StaleUndeployed
			}),
			check: func(t *testing.T, m *store.Mutation) {
				if m.Entry.Stale || *m.Entry.Doc.Config["frequency"].Value != "5m" {
					t.Errorf("entry = %+v", m.Entry)
				}
			}},
		{name: "update during the fetch, newer than its deploy: stays stale", fetched: v4,
			st: entryWith(v3, func(e *cache.Entry) {
				e.Stale, e.StaleReason, e.UpdatedEventAt, e.StaleSince = true, cache.StaleUpdated, started.Add(time.Millisecond), started.Add(time.Millisecond)
			}),
			check: func(t *testing.T, m *store.Mutation) {
				if !m.Entry.Stale || m.Entry.StaleReason != cache.StaleUpdated || m.Entry.DeployedVersion != 4 {
					t.Errorf("entry = %+v", m.Entry)
				}
			}},
		{name: "update before the fetch started: the fetch saw it", fetched: v4,
			st: entryWith(v3, func(e *cache.Entry) {
				e.Stale, e.StaleReason, e.UpdatedEventAt = true, cache.StaleUpdated, started.Add(-time.Second)
			}),
			check: func(t *testing.T, m *store.Mutation) {
				if m.Entry.Stale {
					t.Errorf("entry still stale: %+v", m.Entry)
				}
			}},
		{name: "disable during the fetch wins over the fetched flag", fetched: v4,
			st: entryWith(v3, func(e *cache.Entry) {
				e.Enabled, e.EnabledEventAt = false, started.Add(time.Millisecond)
			}),
			check: func(t *testing.T, m *store.Mutation) {
				if m.Entry.Enabled || m.Entry.Doc.Enabled {
					t.Errorf("enabled = %v / doc %v, want the later disable", m.Entry.Enabled, m.Entry.Doc.Enabled)
				}
			}},
		{name: "older deployedVersion is not written", fetched: v3, st: entryWith(v4, nil), skip: refresh.SkipOlderVersion},
		{name: "a fetch older than the one cached is not written", fetched: v4,
			st: entryWith(v3, func(e *cache.Entry) { e.FetchedAt = started.Add(time.Second) }), skip: refresh.SkipOlderFetch},
		{name: "tombstone: nothing", fetched: v4, st: store.State{Tombstoned: true}, skip: refresh.SkipDeleted},
		{name: "gone from Prismatic: delete", fetched: nil, st: entryWith(v3, nil),
			check: func(t *testing.T, m *store.Mutation) {
				if !m.Delete || m.Kind != cache.ChangeDeleted {
					t.Errorf("mutation = %+v, want a delete", m)
				}
			}},
		{name: "not found and not cached: nothing", fetched: nil, st: store.State{}, skip: refresh.SkipNotFound},
		{name: "never deployed: nothing", fetched: doc(0, deployAt, true, "x", ""), st: store.State{}, skip: refresh.SkipNeverDeploy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, skip := refresh.DecideWrite(tc.st, tc.fetched, started, now)
			if skip != tc.skip {
				t.Fatalf("skip = %q, want %q", skip, tc.skip)
			}
			if (m == nil) != (tc.skip != "") {
				t.Fatalf("mutation %+v with skip %q", m, skip)
			}
			if tc.check != nil {
				tc.check(t, m)
			}
		})
	}
}

func TestDecideFailureKeepsData(t *testing.T) {
	st := entryWith(doc(3, deployAt, false, "15m", "ACTIVE"), nil)
	m := refresh.DecideFailure(st, "graphql GetInstance: HTTP 500", now)
	if m == nil || !m.Entry.Stale || m.Entry.StaleReason != cache.StaleFetchFailed || m.Entry.LastError == "" || *m.Entry.Doc.Config["frequency"].Value != "15m" {
		t.Fatalf("failure mutation = %+v", m)
	}
	if refresh.DecideFailure(store.State{}, "x", now) != nil {
		t.Fatal("a failure wrote an entry for an instance that is not cached")
	}
}

// TestFailureKeepsTheEarlierReason: a stale entry whose fetches fail says
// fetch_failed and keeps why it was stale before; the fetch that finally
// succeeds decides from what the entry said before the failures.
func TestFailureKeepsTheEarlierReason(t *testing.T) {
	v3 := doc(3, deployAt, false, "15m", "ACTIVE")
	staleSince := deployAt.Add(10 * time.Minute)
	for _, tc := range []struct {
		name      string
		before    func(*cache.Entry)
		wantPrior string
		wantSince time.Time
	}{
		{name: "fresh", wantSince: now},
		{name: "stale for an update", wantPrior: cache.StaleUpdated, wantSince: staleSince,
			before: func(e *cache.Entry) { e.Stale, e.StaleReason, e.StaleSince = true, cache.StaleUpdated, staleSince }},
		{name: "undeployed config", wantPrior: cache.StaleUndeployed, wantSince: staleSince,
			before: func(e *cache.Entry) { e.Stale, e.StaleReason, e.StaleSince = true, cache.StaleUndeployed, staleSince }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := entryWith(v3, tc.before)
			m := refresh.DecideFailure(st, "graphql GetInstance: HTTP 502", now)
			if m == nil {
				t.Fatal("no mutation")
			}
			e := m.Entry
			if !e.Stale || e.StaleReason != cache.StaleFetchFailed || e.PriorStaleReason != tc.wantPrior || !e.StaleSince.Equal(tc.wantSince) {
				t.Fatalf("entry: stale %v reason %q prior %q since %v; want fetch_failed, prior %q, since %v",
					e.Stale, e.StaleReason, e.PriorStaleReason, e.StaleSince, tc.wantPrior, tc.wantSince)
			}
			st.Entry = e
			if again := refresh.DecideFailure(st, "graphql GetInstance: HTTP 502", now.Add(time.Minute)); again != nil {
				t.Fatalf("the same failure again wrote %+v; nothing changed", again.Entry)
			}
			if other := refresh.DecideFailure(st, "graphql GetInstance: HTTP 503", now.Add(time.Minute)); other == nil ||
				other.Entry.LastError != "graphql GetInstance: HTTP 503" || other.Entry.PriorStaleReason != tc.wantPrior {
				t.Fatalf("a new error: %+v", other)
			}
			// The API answers again with the same deployed version.
			w, skip := refresh.DecideWrite(st, v3, started, now)
			if w == nil {
				t.Fatalf("no write after recovery: %s", skip)
			}
			if w.Entry.LastError != "" || w.Entry.PriorStaleReason != "" || w.Entry.StaleReason == cache.StaleFetchFailed {
				t.Fatalf("after recovery: %+v", w.Entry)
			}
		})
	}
	// Undeployed config fetched again with needsDeploy still true keeps its
	// label: the failure did not make the stored config look deployed.
	st := entryWith(doc(3, deployAt, true, "15m", "ACTIVE"), func(e *cache.Entry) {
		e.Stale, e.StaleReason, e.PriorStaleReason, e.LastError = true, cache.StaleFetchFailed, cache.StaleUndeployed, "x"
	})
	w, _ := refresh.DecideWrite(st, doc(3, deployAt, true, "1m", "ACTIVE"), started, now)
	if w == nil || w.Entry.StaleReason != cache.StaleUndeployed || *w.Entry.Doc.Config["frequency"].Value != "1m" {
		t.Fatalf("undeployed entry after recovery: %+v", w)
	}
}
