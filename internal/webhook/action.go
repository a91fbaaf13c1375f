package webhook

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Action is what an event type does to the cache.
type Action string

// The actions. Operators may override the action of any event type with
// ignore, stale, refetch or delete; enable and disable are the defaults of
// instance.enabled and instance.disabled and may not be given to others.
const (
	// ActionIgnore: accept the event, count it, change nothing.
	ActionIgnore Action = "ignore"
	// ActionStale: mark the instance's entry stale; no fetch.
	ActionStale Action = "stale"
	// ActionRefetch: fetch the affected instances and rewrite their entries.
	ActionRefetch Action = "refetch"
	// ActionDelete: remove the instance's entry and leave a tombstone.
	ActionDelete Action = "delete"
	// ActionEnable and ActionDisable set the entry's enabled flag in place.
	ActionEnable  Action = "enable"
	ActionDisable Action = "disable"
	// ActionCustomerRefresh refetches every cached instance of the customer.
	ActionCustomerRefresh Action = "customer_refresh"
	// ActionCustomerDelete removes every cached instance of the customer.
	ActionCustomerDelete Action = "customer_delete"
)

// DefaultActions is the event table of design §3.
func DefaultActions() map[string]Action {
	return map[string]Action{
		InstanceCreated:              ActionIgnore,
		InstanceUpdated:              ActionStale,
		InstanceDeployed:             ActionRefetch,
		InstanceEnabled:              ActionEnable,
		InstanceDisabled:             ActionDisable,
		InstanceDeleted:              ActionDelete,
		ConnectionUpdated:            ActionRefetch,
		OAuth2AuthorizationCompleted: ActionRefetch,
		OAuth2AuthorizationFailed:    ActionRefetch,
		OAuth2TokenRefreshed:         ActionRefetch,
		OAuth2TokenRefreshFailed:     ActionRefetch,
		CustomerUpdated:              ActionCustomerRefresh,
		CustomerDeleted:              ActionCustomerDelete,
		WebhookTest:                  ActionIgnore,
	}
}

// Actions maps event types to actions: the defaults with operator
// overrides. The zero value is not usable; build one with NewActions. It is
// read-only after construction and safe for concurrent use.
type Actions struct {
	m map[string]Action
}

// NewActions returns the default table with overrides applied. overrides
// maps an event type to one of ignore, stale, refetch or delete.
func NewActions(overrides map[string]Action) (Actions, error) {
	m := DefaultActions()
	for typ, a := range overrides {
		switch a {
		case ActionIgnore, ActionStale, ActionRefetch, ActionDelete:
		default:
			return Actions{}, fmt.Errorf("event action %s=%q: want one of ignore, stale, refetch, delete", typ, a)
		}
		if typ == "" || len(typ) > MaxTypeLength || !printable(typ) {
			return Actions{}, fmt.Errorf("event action for %q: not an event type", typ)
		}
		m[typ] = a
	}
	return Actions{m: m}, nil
}

// ParseOverrides reads "type=action,type=action" (the --event-action flag).
func ParseOverrides(s string) (map[string]Action, error) {
	out := map[string]Action{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		typ, a, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("event action %q: want type=action", part)
		}
		out[strings.TrimSpace(typ)] = Action(strings.TrimSpace(a))
	}
	return out, nil
}

// For returns the action of an event type; ActionIgnore for unknown types.
func (a Actions) For(typ string) Action {
	if act, ok := a.m[typ]; ok {
		return act
	}
	return ActionIgnore
}

// String lists the table, sorted, as type=action pairs.
func (a Actions) String() string {
	keys := make([]string, 0, len(a.m))
	for k := range a.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + string(a.m[k]))
	}
	return b.String()
}

// KnownTypes lists, sorted, the event types of the default table: those
// prismcache knows what to do with.
func KnownTypes() []string {
	return slices.Sorted(maps.Keys(DefaultActions()))
}
