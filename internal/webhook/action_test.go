package webhook

import (
	"maps"
	"strings"
	"testing"
)

// designTable is the event table of design §3, written out independently of
// DefaultActions.
var designTable = map[string]Action{
	"instance.deployed":              ActionRefetch,
	"instance.updated":               ActionStale,
	"instance.enabled":               ActionEnable,
	"instance.disabled":              ActionDisable,
	"instance.deleted":               ActionDelete,
	"instance.created":               ActionIgnore,
	"connection.updated":             ActionRefetch,
	"oauth2.authorization_completed": ActionRefetch,
	"oauth2.authorization_failed":    ActionRefetch,
	"oauth2.token_refreshed":         ActionRefetch,
	"oauth2.token_refresh_failed":    ActionRefetch,
	"customer.updated":               ActionCustomerRefresh,
	"customer.deleted":               ActionCustomerDelete,
	"webhook.test":                   ActionIgnore,
}

func mustActions(t *testing.T, overrides map[string]Action) Actions {
	t.Helper()
	a, err := NewActions(overrides)
	if err != nil {
		t.Fatalf("NewActions(%v): %v", overrides, err)
	}
	return a
}

func TestDefaultActions(t *testing.T) {
	if got := DefaultActions(); !maps.Equal(got, designTable) {
		t.Errorf("DefaultActions() = %v, want design §3: %v", got, designTable)
	}
	a := mustActions(t, nil)
	for typ, want := range designTable {
		if got := a.For(typ); got != want {
			t.Errorf("For(%s) = %s, want %s", typ, got, want)
		}
	}
	for _, typ := range []string{"integration.published", "alert_monitor.triggered", "", "instance.Updated"} {
		if got := a.For(typ); got != ActionIgnore {
			t.Errorf("For(%q) = %s, want ignore for anything else", typ, got)
		}
	}
	// Each call returns a fresh map.
	DefaultActions()[InstanceUpdated] = ActionDelete
	if got := DefaultActions()[InstanceUpdated]; got != ActionStale {
		t.Errorf("DefaultActions shares its map: instance.updated = %s", got)
	}
}

func TestActionsOverrides(t *testing.T) {
	overrides := map[string]Action{
		InstanceUpdated:         ActionRefetch,
		InstanceCreated:         ActionStale,
		InstanceEnabled:         ActionIgnore,
		CustomerDeleted:         ActionDelete,
		"integration.published": ActionRefetch,
	}
	a := mustActions(t, overrides)
	want := maps.Clone(designTable)
	maps.Copy(want, overrides)
	for typ, w := range want {
		if got := a.For(typ); got != w {
			t.Errorf("For(%s) = %s, want %s", typ, got, w)
		}
	}
	if got := mustActions(t, nil).For(InstanceUpdated); got != ActionStale {
		t.Errorf("overrides leaked into a later table: instance.updated = %s", got)
	}
}

func TestActionsRefused(t *testing.T) {
	tests := []struct {
		name      string
		overrides map[string]Action
		mention   string
	}{
		{"enable", map[string]Action{InstanceUpdated: ActionEnable}, "enable"},
		{"disable", map[string]Action{InstanceEnabled: ActionDisable}, "disable"},
		{"enable on its own type", map[string]Action{InstanceEnabled: ActionEnable}, "enable"},
		{"customer_refresh", map[string]Action{CustomerUpdated: ActionCustomerRefresh}, "customer_refresh"},
		{"customer_delete", map[string]Action{InstanceDeleted: ActionCustomerDelete}, "customer_delete"},
		{"unknown action", map[string]Action{InstanceUpdated: "purge"}, "purge"},
		{"upper case", map[string]Action{InstanceUpdated: "REFETCH"}, "REFETCH"},
		{"empty action", map[string]Action{InstanceUpdated: ""}, InstanceUpdated},
		{"empty type", map[string]Action{"": ActionRefetch}, "not an event type"},
		{"type too long", map[string]Action{strings.Repeat("t", MaxTypeLength+1): ActionRefetch}, "not an event type"},
		{"type with a control char", map[string]Action{"instance.updated\n": ActionRefetch}, "not an event type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewActions(tt.overrides)
			if err == nil {
				t.Fatalf("NewActions(%v) = %v, want an error", tt.overrides, a)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}

func TestParseOverrides(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]Action
		wantErr bool
	}{
		{"", map[string]Action{}, false},
		{" , ,", map[string]Action{}, false},
		{"instance.updated=refetch", map[string]Action{InstanceUpdated: ActionRefetch}, false},
		{" instance.updated = refetch , instance.created=stale,", map[string]Action{InstanceUpdated: ActionRefetch, InstanceCreated: ActionStale}, false},
		{"instance.updated=stale,instance.updated=delete", map[string]Action{InstanceUpdated: ActionDelete}, false},
		// Not checked here; NewActions refuses them.
		{"instance.updated=bogus", map[string]Action{InstanceUpdated: "bogus"}, false},
		{"a=b=c", map[string]Action{"a": "b=c"}, false},
		{"=refetch", map[string]Action{"": ActionRefetch}, false},
		{"instance.updated", nil, true},
		{"instance.updated=refetch,instance.created", nil, true},
		{"instance.updated:refetch", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseOverrides(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Errorf("ParseOverrides(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Errorf("ParseOverrides(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
	for _, in := range []string{"instance.updated=bogus", "a=b=c", "=refetch", "instance.enabled=disable"} {
		o, err := ParseOverrides(in)
		if err != nil {
			t.Fatalf("ParseOverrides(%q): %v", in, err)
		}
		if _, err := NewActions(o); err == nil {
			t.Errorf("NewActions(ParseOverrides(%q)) accepted it", in)
		}
	}
}

func TestActionsString(t *testing.T) {
	want := "connection.updated=refetch,customer.deleted=customer_delete,customer.updated=customer_refresh," +
		"instance.created=ignore,instance.deleted=delete,instance.deployed=refetch,instance.disabled=disable," +
		"instance.enabled=enable,instance.updated=stale,oauth2.authorization_completed=refetch," +
		"oauth2.authorization_failed=refetch,oauth2.token_refresh_failed=refetch,oauth2.token_refreshed=refetch," +
		"webhook.test=ignore"
	if got := mustActions(t, nil).String(); got != want {
		t.Errorf("String() =\n %s\nwant\n %s", got, want)
	}
	got := mustActions(t, map[string]Action{"a.first": ActionStale, "z.last": ActionDelete}).String()
	if !strings.HasPrefix(got, "a.first=stale,connection.updated=") || !strings.HasSuffix(got, ",webhook.test=ignore,z.last=delete") {
		t.Errorf("String() with overrides = %s", got)
	}
}

func TestActionsZeroValue(t *testing.T) {
	var a Actions
	if got := a.For(InstanceDeployed); got != ActionIgnore {
		t.Errorf("zero Actions.For = %s, want ignore", got)
	}
	if got := a.String(); got != "" {
		t.Errorf("zero Actions.String = %q", got)
	}
}
