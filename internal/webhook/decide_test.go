package webhook_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/webhook"
)

var (
	t0       = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	deployed = t0.Add(time.Hour) // the entry's lastDeployedAt
	fetched  = deployed.Add(time.Minute)
)

func cached() store.State {
	at := deployed
	return store.State{Exists: true, Entry: cache.Entry{
		Doc:     &cache.Doc{ID: "i", Enabled: true, DeployedVersion: 3, LastDeployedAt: &at},
		Enabled: true, DeployedVersion: 3, FetchedAt: fetched, Rev: 7,
	}}
}

func with(f func(*store.State)) store.State {
	st := cached()
	f(&st)
	return st
}

// fetch is what a plan asks of the work set for the instance, summed up.
type fetch int

const (
	noFetch        fetch = iota
	fetchNow             // queued for a fetch
	fetchIfRunning       // a fetch in flight runs once more
)

// eventOf is the event type whose default action is action.
func eventOf(action webhook.Action) string {
	for typ, a := range webhook.DefaultActions() {
		if a == action && (typ == webhook.WebhookTest || a != webhook.ActionIgnore) {
			return typ
		}
	}
	return "something.else"
}

func TestDecideTable(t *testing.T) {
	later := fetched.Add(time.Minute)
	for _, tc := range []struct {
		name      string
		action    webhook.Action
		ts        time.Time
		st        store.State
		wantKind  cache.Change // "" = no write
		wantFetch fetch
		wantSkip  string
		check     func(t *testing.T, e cache.Entry)
	}{
		{name: "deployed: fetch", action: webhook.ActionRefetch, ts: later, st: cached(), wantFetch: fetchNow},
		{name: "deployed: fetch even when not cached", action: webhook.ActionRefetch, ts: later, st: store.State{}, wantFetch: fetchNow},
		{name: "deployed after delete: fetched all the same (the fetch writes nothing over a tombstone)", action: webhook.ActionRefetch, ts: later, st: store.State{Tombstoned: true}, wantFetch: fetchNow},

		{name: "updated: stale, rerun a fetch in flight", action: webhook.ActionStale, ts: later, st: cached(),
			wantKind: cache.ChangeStale, wantFetch: fetchIfRunning,
			check: func(t *testing.T, e cache.Entry) {
				if !e.Stale || e.StaleReason != cache.StaleUpdated || !e.StaleSince.Equal(later) || !e.UpdatedEventAt.Equal(later) {
					t.Errorf("entry = %+v, want stale since %v for %q", e, later, cache.StaleUpdated)
				}
				if e.Doc.DeployedVersion != 3 {
					t.Error("a stale mark changed the document")
				}
			}},
		{name: "updated while fetches fail: fetch_failed stays, the update is kept as the prior reason", action: webhook.ActionStale, ts: later,
			st: with(func(s *store.State) {
				s.Entry.Stale, s.Entry.StaleReason, s.Entry.StaleSince, s.Entry.LastError = true, cache.StaleFetchFailed, fetched, "HTTP 502"
			}),
			wantKind: cache.ChangeStale, wantFetch: fetchIfRunning,
			check: func(t *testing.T, e cache.Entry) {
				if e.StaleReason != cache.StaleFetchFailed || e.PriorStaleReason != cache.StaleUpdated || !e.StaleSince.Equal(fetched) || !e.UpdatedEventAt.Equal(later) {
					t.Errorf("entry = %+v", e)
				}
			}},
		{name: "updated before the deploy the entry holds: dropped", action: webhook.ActionStale, ts: deployed.Add(-time.Second), wantFetch: fetchIfRunning, st: cached(), wantSkip: webhook.SkipOlderThanDeploy},
		{name: "updated again, later: stale_since kept", action: webhook.ActionStale, ts: later.Add(time.Hour),
			st: with(func(s *store.State) {
				s.Entry.Stale, s.Entry.StaleReason, s.Entry.StaleSince, s.Entry.UpdatedEventAt = true, cache.StaleUpdated, later, later
			}),
			wantKind: cache.ChangeStale, wantFetch: fetchIfRunning,
			check: func(t *testing.T, e cache.Entry) {
				if !e.StaleSince.Equal(later) || !e.UpdatedEventAt.Equal(later.Add(time.Hour)) {
					t.Errorf("stale_since %v / updated at %v", e.StaleSince, e.UpdatedEventAt)
				}
			}},
		{name: "updated on an undeployed_config entry keeps that label", action: webhook.ActionStale, ts: later,
			st: with(func(s *store.State) {
				s.Entry.Stale, s.Entry.StaleReason, s.Entry.StaleSince = true, cache.StaleUndeployed, fetched
			}),
			wantKind: cache.ChangeStale, wantFetch: fetchIfRunning,
			check: func(t *testing.T, e cache.Entry) {
				if e.StaleReason != cache.StaleUndeployed || !e.UpdatedEventAt.Equal(later) {
					t.Errorf("reason %q updated at %v", e.StaleReason, e.UpdatedEventAt)
				}
			}},
		{name: "updated repeated: dropped", action: webhook.ActionStale, ts: later, wantFetch: fetchIfRunning,
			st: with(func(s *store.State) {
				s.Entry.Stale, s.Entry.StaleReason, s.Entry.StaleSince, s.Entry.UpdatedEventAt = true, cache.StaleUpdated, later, later
			}),
			wantSkip: webhook.SkipOlderThanUpdate},
		{name: "updated, not cached: only rerun a fetch in flight", action: webhook.ActionStale, ts: later, st: store.State{},
			wantFetch: fetchIfRunning, wantSkip: webhook.SkipNotCached},
		{name: "updated after delete: nothing", action: webhook.ActionStale, ts: later, wantFetch: fetchIfRunning, st: store.State{Tombstoned: true}, wantSkip: webhook.SkipDeleted},

		{name: "disabled: flag in place", action: webhook.ActionDisable, ts: later, st: cached(),
			wantKind: cache.ChangeEnabled, wantFetch: fetchIfRunning,
			check: func(t *testing.T, e cache.Entry) {
				if e.Enabled || e.Doc.Enabled || !e.EnabledEventAt.Equal(later) {
					t.Errorf("entry = %+v doc.enabled=%v", e, e.Doc.Enabled)
				}
			}},
		{name: "enabled: flag in place", action: webhook.ActionEnable, ts: later,
			st:       with(func(s *store.State) { s.Entry.Enabled, s.Entry.Doc.Enabled = false, false }),
			wantKind: cache.ChangeEnabled, wantFetch: fetchIfRunning,
			check: func(t *testing.T, e cache.Entry) {
				if !e.Enabled || !e.Doc.Enabled {
					t.Errorf("entry not enabled: %+v", e)
				}
			}},
		{name: "toggle older than the last toggle: dropped", action: webhook.ActionEnable, ts: later, wantFetch: fetchIfRunning,
			st:       with(func(s *store.State) { s.Entry.EnabledEventAt = later.Add(time.Second) }),
			wantSkip: webhook.SkipOlderThanToggle},
		{name: "toggle older than the fetch: dropped", action: webhook.ActionDisable, ts: fetched.Add(-time.Second), wantFetch: fetchIfRunning, st: cached(),
			wantSkip: webhook.SkipOlderThanFetch},
		{name: "toggle, not cached", action: webhook.ActionDisable, ts: later, st: store.State{}, wantFetch: fetchIfRunning, wantSkip: webhook.SkipNotCached},

		{name: "deleted: delete", action: webhook.ActionDelete, ts: later, st: cached(), wantKind: cache.ChangeDeleted},
		{name: "deleted, not cached: still tombstoned", action: webhook.ActionDelete, ts: later, st: store.State{}, wantKind: cache.ChangeDeleted},
		{name: "deleted twice: nothing", action: webhook.ActionDelete, ts: later, st: store.State{Tombstoned: true}, wantSkip: webhook.SkipDeleted},

		{name: "ignored", action: webhook.ActionIgnore, ts: later, st: cached()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.st
			actions, err := webhook.NewActions(nil)
			if err != nil {
				t.Fatal(err)
			}
			ev := webhook.Event{Type: eventOf(tc.action), Timestamp: tc.ts, InstanceID: "i"}
			first, err := webhook.Decide(ev, actions, nil)
			if err != nil {
				t.Fatal(err)
			}
			st := tc.st
			plan, err := webhook.Decide(ev, actions, &st)
			if err != nil {
				t.Fatal(err)
			}
			needs := tc.action != webhook.ActionRefetch && tc.action != webhook.ActionIgnore
			if first.NeedsEntry != needs || plan.NeedsEntry {
				t.Fatalf("NeedsEntry = %v before the entry was read (want %v), %v after", first.NeedsEntry, needs, plan.NeedsEntry)
			}
			if first.Action != plan.Action || first.RerunIfRunning != plan.RerunIfRunning || len(first.Queue) != len(plan.Queue) {
				t.Fatalf("the plans before and after reading the entry disagree: %+v and %+v", first, plan)
			}
			var kind cache.Change
			if plan.Write != nil {
				kind = plan.Write.Kind
			}
			got := noFetch
			switch {
			case len(plan.Queue) == 1 && plan.Queue[0] == (webhook.Task{Kind: webhook.TaskFetch, ID: "i"}):
				got = fetchNow
			case len(plan.Queue) > 0:
				t.Fatalf("queue %+v", plan.Queue)
			case plan.RerunIfRunning:
				got = fetchIfRunning
			}
			if kind != tc.wantKind || got != tc.wantFetch || plan.Why != tc.wantSkip {
				t.Fatalf("Decide = {kind %q fetch %v why %q}, want {kind %q fetch %v why %q}",
					kind, got, plan.Why, tc.wantKind, tc.wantFetch, tc.wantSkip)
			}
			if plan.Write != nil && plan.Write.Delete != (tc.wantKind == cache.ChangeDeleted) {
				t.Fatalf("Delete = %v for kind %q", plan.Write.Delete, kind)
			}
			if tc.check != nil {
				tc.check(t, plan.Write.Entry)
			}
			if before.Entry.Doc != nil && before.Entry.Doc.Enabled != tc.st.Entry.Doc.Enabled {
				t.Fatal("Decide modified the entry it was given")
			}
		})
	}
}

// TestDecideWithoutTheEntry: what an event plans before anything is read —
// what it queues, whether it needs the entry — from the event alone.
func TestDecideWithoutTheEntry(t *testing.T) {
	actions, err := webhook.NewActions(map[string]webhook.Action{"integration.published": webhook.ActionRefetch})
	if err != nil {
		t.Fatal(err)
	}
	const icv = "SW5zdGFuY2VDb25maWdWYXJpYWJsZTozZjJhMWIwYy05ZDhlLTRmN2EtOGI2Yy01ZDRlM2YyYTFiMGM="
	const ccv = "Q3VzdG9tZXJDb25maWdWYXJpYWJsZTo3YzZiNWE0OS0zODI3LTQxNjAtOWY4ZS03ZDZjNWI0YTM5Mjg="
	fetch := func(id string) []webhook.Task { return []webhook.Task{{Kind: webhook.TaskFetch, ID: id}} }
	for _, tc := range []struct {
		name    string
		ev      webhook.Event
		want    webhook.Plan
		wantErr bool
	}{
		{"deployed: a fetch, nothing read", webhook.Event{Type: webhook.InstanceDeployed, InstanceID: "i1"},
			webhook.Plan{Action: webhook.ActionRefetch, Instance: "i1", Queue: fetch("i1")}, false},
		{"updated: decided on the entry, a fetch in flight reruns", webhook.Event{Type: webhook.InstanceUpdated, InstanceID: "i1"},
			webhook.Plan{Action: webhook.ActionStale, Instance: "i1", NeedsEntry: true, RerunIfRunning: true}, false},
		{"deleted: decided on the entry", webhook.Event{Type: webhook.InstanceDeleted, InstanceID: "i1"},
			webhook.Plan{Action: webhook.ActionDelete, Instance: "i1", NeedsEntry: true}, false},
		{"instance event without id", webhook.Event{Type: webhook.InstanceUpdated}, webhook.Plan{}, true},
		{"oauth with instance", webhook.Event{Type: webhook.OAuth2TokenRefreshed, InstanceID: "i1", ConnectionID: icv},
			webhook.Plan{Action: webhook.ActionRefetch, Instance: "i1", Queue: fetch("i1")}, false},
		{"oauth with instance connection only", webhook.Event{Type: webhook.OAuth2TokenRefreshFailed, ConnectionID: icv},
			webhook.Plan{Action: webhook.ActionRefetch, Queue: []webhook.Task{{Kind: webhook.TaskConnection, ID: icv}}}, false},
		{"customer connection", webhook.Event{Type: webhook.ConnectionUpdated, ConnectionID: ccv},
			webhook.Plan{Action: webhook.ActionRefetch, Queue: []webhook.Task{{Kind: webhook.TaskConnection, ID: ccv}}}, false},
		{"connection id that is not a global id", webhook.Event{Type: webhook.ConnectionUpdated, ConnectionID: "abc"},
			webhook.Plan{Action: webhook.ActionRefetch, Why: "connection id is not a Prismatic global id"}, false},
		{"connection event with nothing", webhook.Event{Type: webhook.ConnectionUpdated},
			webhook.Plan{Action: webhook.ActionRefetch, Why: "no instance or connection in the payload"}, false},
		{"test event", webhook.Event{Type: webhook.WebhookTest}, webhook.Plan{Action: webhook.ActionIgnore}, false},
		{"unknown event", webhook.Event{Type: "alert_monitor.triggered", InstanceID: "i1"}, webhook.Plan{Action: webhook.ActionIgnore}, false},
		{"override", webhook.Event{Type: "integration.published"},
			webhook.Plan{Action: webhook.ActionRefetch, Why: "no instance or connection in the payload"}, false},
		{"customer updated", webhook.Event{Type: webhook.CustomerUpdated, CustomerID: "c1", CustomerExternalID: "acme-001"},
			webhook.Plan{Action: webhook.ActionCustomerRefresh, Queue: []webhook.Task{{Kind: webhook.TaskCustomer, ID: "c1"}}}, false},
		{"customer updated without its id", webhook.Event{Type: webhook.CustomerUpdated, CustomerExternalID: "acme-001"},
			webhook.Plan{Action: webhook.ActionCustomerRefresh, Why: "no customer id in the payload"}, false},
		{"customer deleted", webhook.Event{Type: webhook.CustomerDeleted, CustomerExternalID: "acme-001"},
			webhook.Plan{Action: webhook.ActionCustomerDelete, Queue: []webhook.Task{{Kind: webhook.TaskRemoveCustomer, ExternalID: "acme-001"}}}, false},
		{"customer deleted without its external id", webhook.Event{Type: webhook.CustomerDeleted, CustomerID: "c1"},
			webhook.Plan{Action: webhook.ActionCustomerDelete, Why: "no customer external id in the payload"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := webhook.Decide(tc.ev, actions, nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("plan = %+v\nwant   %+v", got, tc.want)
			}
		})
	}
}
