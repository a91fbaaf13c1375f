package webhook_test

import (
	"testing"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/webhook"
)

var (
	t0       = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	deployed = t0.Add(time.Hour) // the entry's lastDeployedAt
	fetched  = deployed.Add(time.Minute)
)

func cached() cache.State {
	at := deployed
	return cache.State{Exists: true, Entry: cache.Entry{
		Doc:     &cache.Doc{ID: "i", Enabled: true, DeployedVersion: 3, LastDeployedAt: &at},
		Enabled: true, DeployedVersion: 3, FetchedAt: fetched, Rev: 7,
	}}
}

func with(f func(*cache.State)) cache.State {
	st := cached()
	f(&st)
	return st
}

func TestDecideTable(t *testing.T) {
	later := fetched.Add(time.Minute)
	for _, tc := range []struct {
		name      string
		action    webhook.Action
		ts        time.Time
		st        cache.State
		wantKind  cache.Change // "" = no write
		wantFetch webhook.Fetch
		wantSkip  string
		check     func(t *testing.T, e cache.Entry)
	}{
		{name: "deployed: fetch", action: webhook.ActionRefetch, ts: later, st: cached(), wantFetch: webhook.FetchNow},
		{name: "deployed: fetch even when not cached", action: webhook.ActionRefetch, ts: later, st: cache.State{}, wantFetch: webhook.FetchNow},
		{name: "deployed after delete: nothing", action: webhook.ActionRefetch, ts: later, st: cache.State{Tombstoned: true}, wantSkip: webhook.SkipDeleted},

		{name: "updated: stale, rerun a fetch in flight", action: webhook.ActionStale, ts: later, st: cached(),
			wantKind: cache.ChangeStale, wantFetch: webhook.FetchIfRunning,
			check: func(t *testing.T, e cache.Entry) {
				if !e.Stale || e.StaleReason != cache.StaleUpdated || !e.StaleSince.Equal(later) || !e.UpdatedEventAt.Equal(later) {
					t.Errorf("entry = %+v, want stale since %v for %q", e, later, cache.StaleUpdated)
				}
				if e.Doc.DeployedVersion != 3 {
					t.Error("a stale mark changed the document")
				}
			}},
		{name: "updated while fetches fail: fetch_failed stays, the update is kept as the prior reason", action: webhook.ActionStale, ts: later,
			st: with(func(s *cache.State) {
				s.Entry.Stale, s.Entry.StaleReason, s.Entry.StaleSince, s.Entry.LastError = true, cache.StaleFetchFailed, fetched, "HTTP 502"
			}),
			wantKind: cache.ChangeStale, wantFetch: webhook.FetchIfRunning,
			check: func(t *testing.T, e cache.Entry) {
				if e.StaleReason != cache.StaleFetchFailed || e.PriorStaleReason != cache.StaleUpdated || !e.StaleSince.Equal(fetched) || !e.UpdatedEventAt.Equal(later) {
					t.Errorf("entry = %+v", e)
				}
			}},
		{name: "updated before the deploy the entry holds: dropped", action: webhook.ActionStale, ts: deployed.Add(-time.Second), st: cached(), wantSkip: webhook.SkipOlderThanDeploy},
		{name: "updated again, later: stale_since kept", action: webhook.ActionStale, ts: later.Add(time.Hour),
			st: with(func(s *cache.State) {
				s.Entry.Stale, s.Entry.StaleReason, s.Entry.StaleSince, s.Entry.UpdatedEventAt = true, cache.StaleUpdated, later, later
			}),
			wantKind: cache.ChangeStale, wantFetch: webhook.FetchIfRunning,
			check: func(t *testing.T, e cache.Entry) {
				if !e.StaleSince.Equal(later) || !e.UpdatedEventAt.Equal(later.Add(time.Hour)) {
					t.Errorf("stale_since %v / updated at %v", e.StaleSince, e.UpdatedEventAt)
				}
			}},
		{name: "updated on an undeployed_config entry keeps that label", action: webhook.ActionStale, ts: later,
			st: with(func(s *cache.State) {
				s.Entry.Stale, s.Entry.StaleReason, s.Entry.StaleSince = true, cache.StaleUndeployed, fetched
			}),
			wantKind: cache.ChangeStale, wantFetch: webhook.FetchIfRunning,
			check: func(t *testing.T, e cache.Entry) {
				if e.StaleReason != cache.StaleUndeployed || !e.UpdatedEventAt.Equal(later) {
					t.Errorf("reason %q updated at %v", e.StaleReason, e.UpdatedEventAt)
				}
			}},
		{name: "updated repeated: dropped", action: webhook.ActionStale, ts: later,
			st: with(func(s *cache.State) {
				s.Entry.Stale, s.Entry.StaleReason, s.Entry.StaleSince, s.Entry.UpdatedEventAt = true, cache.StaleUpdated, later, later
			}),
			wantSkip: webhook.SkipOlderThanUpdate},
		{name: "updated, not cached: only rerun a fetch in flight", action: webhook.ActionStale, ts: later, st: cache.State{},
			wantFetch: webhook.FetchIfRunning, wantSkip: webhook.SkipNotCached},
		{name: "updated after delete: nothing", action: webhook.ActionStale, ts: later, st: cache.State{Tombstoned: true}, wantSkip: webhook.SkipDeleted},

		{name: "disabled: flag in place", action: webhook.ActionDisable, ts: later, st: cached(),
			wantKind: cache.ChangeEnabled, wantFetch: webhook.FetchIfRunning,
			check: func(t *testing.T, e cache.Entry) {
				if e.Enabled || e.Doc.Enabled || !e.EnabledEventAt.Equal(later) {
					t.Errorf("entry = %+v doc.enabled=%v", e, e.Doc.Enabled)
				}
			}},
		{name: "enabled: flag in place", action: webhook.ActionEnable, ts: later,
			st:       with(func(s *cache.State) { s.Entry.Enabled, s.Entry.Doc.Enabled = false, false }),
			wantKind: cache.ChangeEnabled, wantFetch: webhook.FetchIfRunning,
			check: func(t *testing.T, e cache.Entry) {
				if !e.Enabled || !e.Doc.Enabled {
					t.Errorf("entry not enabled: %+v", e)
				}
			}},
		{name: "toggle older than the last toggle: dropped", action: webhook.ActionEnable, ts: later,
			st:       with(func(s *cache.State) { s.Entry.EnabledEventAt = later.Add(time.Second) }),
			wantSkip: webhook.SkipOlderThanToggle},
		{name: "toggle older than the fetch: dropped", action: webhook.ActionDisable, ts: fetched.Add(-time.Second), st: cached(),
			wantSkip: webhook.SkipOlderThanFetch},
		{name: "toggle, not cached", action: webhook.ActionDisable, ts: later, st: cache.State{}, wantFetch: webhook.FetchIfRunning, wantSkip: webhook.SkipNotCached},

		{name: "deleted: delete", action: webhook.ActionDelete, ts: later, st: cached(), wantKind: cache.ChangeDeleted},
		{name: "deleted, not cached: still tombstoned", action: webhook.ActionDelete, ts: later, st: cache.State{}, wantKind: cache.ChangeDeleted},
		{name: "deleted twice: nothing", action: webhook.ActionDelete, ts: later, st: cache.State{Tombstoned: true}, wantSkip: webhook.SkipDeleted},

		{name: "ignored", action: webhook.ActionIgnore, ts: later, st: cached()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.st
			eff := webhook.Decide(tc.action, tc.ts, tc.st)
			var kind cache.Change
			if eff.Mutation != nil {
				kind = eff.Mutation.Kind
			}
			if kind != tc.wantKind || eff.Fetch != tc.wantFetch || eff.Skip != tc.wantSkip {
				t.Fatalf("Decide = {kind %q fetch %v skip %q}, want {kind %q fetch %v skip %q}",
					kind, eff.Fetch, eff.Skip, tc.wantKind, tc.wantFetch, tc.wantSkip)
			}
			if eff.Mutation != nil && eff.Mutation.Delete != (tc.wantKind == cache.ChangeDeleted) {
				t.Fatalf("Delete = %v for kind %q", eff.Mutation.Delete, kind)
			}
			if tc.check != nil {
				tc.check(t, eff.Mutation.Entry)
			}
			if before.Entry.Doc != nil && before.Entry.Doc.Enabled != tc.st.Entry.Doc.Enabled {
				t.Fatal("Decide modified the entry it was given")
			}
		})
	}
}

func TestPlanEvent(t *testing.T) {
	actions, err := webhook.NewActions(map[string]webhook.Action{"integration.published": webhook.ActionRefetch})
	if err != nil {
		t.Fatal(err)
	}
	const icv = "SW5zdGFuY2VDb25maWdWYXJpYWJsZTozZjJhMWIwYy05ZDhlLTRmN2EtOGI2Yy01ZDRlM2YyYTFiMGM="
	const ccv = "Q3VzdG9tZXJDb25maWdWYXJpYWJsZTo3YzZiNWE0OS0zODI3LTQxNjAtOWY4ZS03ZDZjNWI0YTM5Mjg="
	for _, tc := range []struct {
		name    string
		ev      webhook.Event
		want    webhook.Plan
		wantErr bool
	}{
		{"instance event", webhook.Event{Type: webhook.InstanceDeployed, InstanceID: "i1"},
			webhook.Plan{Action: webhook.ActionRefetch, Target: webhook.TargetInstance, InstanceID: "i1"}, false},
		{"instance event without id", webhook.Event{Type: webhook.InstanceUpdated}, webhook.Plan{}, true},
		{"oauth with instance", webhook.Event{Type: webhook.OAuth2TokenRefreshed, InstanceID: "i1", ConnectionID: icv},
			webhook.Plan{Action: webhook.ActionRefetch, Target: webhook.TargetInstance, InstanceID: "i1"}, false},
		{"oauth with instance connection only", webhook.Event{Type: webhook.OAuth2TokenRefreshFailed, ConnectionID: icv},
			webhook.Plan{Action: webhook.ActionRefetch, Target: webhook.TargetConnection, ConnectionID: icv, ConnectionType: webhook.TypeInstanceConfigVariable}, false},
		{"customer connection", webhook.Event{Type: webhook.ConnectionUpdated, ConnectionID: ccv},
			webhook.Plan{Action: webhook.ActionRefetch, Target: webhook.TargetConnection, ConnectionID: ccv, ConnectionType: webhook.TypeCustomerConfigVariable}, false},
		{"connection id that is not a global id", webhook.Event{Type: webhook.ConnectionUpdated, ConnectionID: "abc"},
			webhook.Plan{Action: webhook.ActionRefetch, Note: "connection id is not a Prismatic global id"}, false},
		{"connection event with nothing", webhook.Event{Type: webhook.ConnectionUpdated},
			webhook.Plan{Action: webhook.ActionRefetch, Note: "no instance or connection in the payload"}, false},
		{"test event", webhook.Event{Type: webhook.WebhookTest}, webhook.Plan{Action: webhook.ActionIgnore}, false},
		{"unknown event", webhook.Event{Type: "alert_monitor.triggered", InstanceID: "i1"}, webhook.Plan{Action: webhook.ActionIgnore}, false},
		{"override", webhook.Event{Type: "integration.published"},
			webhook.Plan{Action: webhook.ActionRefetch, Note: "no instance or connection in the payload"}, false},
		{"customer deleted", webhook.Event{Type: webhook.CustomerDeleted, CustomerExternalID: "acme-001"},
			webhook.Plan{Action: webhook.ActionCustomerDelete, Target: webhook.TargetCustomer, CustomerExternalID: "acme-001"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := webhook.PlanEvent(tc.ev, actions)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Fatalf("plan = %+v\nwant  %+v", got, tc.want)
			}
		})
	}
}
