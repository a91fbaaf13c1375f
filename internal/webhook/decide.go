package webhook

import (
	"fmt"
	"time"

	"github.com/prismcache/prismcache/cache"
)

// Target is what an event's action applies to.
type Target int

const (
	// TargetNone: nothing to do beyond counting the event.
	TargetNone Target = iota
	// TargetInstance: one instance, named in the payload.
	TargetInstance
	// TargetConnection: the instances behind a connection id, to be resolved.
	TargetConnection
	// TargetCustomer: every cached instance of a customer.
	TargetCustomer
)

// Plan is the first half of deciding an event: which action, on what. It
// depends on the event alone.
type Plan struct {
	Action Action
	Target Target
	// InstanceID is set for TargetInstance.
	InstanceID string
	// ConnectionID and ConnectionType (the decoded global id's type) are set
	// for TargetConnection.
	ConnectionID   string
	ConnectionType string
	// CustomerID and CustomerExternalID are set for TargetCustomer.
	CustomerID         string
	CustomerExternalID string
	// Note says why a plan has no target, for the log line.
	Note string
}

// PlanEvent decides what ev's action applies to. An error means the payload
// cannot be acted on as its type requires (an instance event without an
// instance id); the sender gets a 4xx for it.
//
// An event whose type only the unsigned X-Webhook-Event header names may
// only be counted: anyone who captured a signed body could otherwise
// replay it under a header of their choice (instance.deleted, say). Such
// an event is refused unless its type's action is to ignore it, as
// webhook.test's is.
func PlanEvent(ev Event, actions Actions) (Plan, error) {
	p := Plan{Action: actions.For(ev.Type)}
	if ev.TypeFromHeader && p.Action != ActionIgnore {
		return Plan{}, fmt.Errorf("%w: the body has no event_type, and the %s header is not signed: "+
			"it may name only a type that changes nothing, like %s, not %s", ErrInvalid, EventHeader, WebhookTest, ev.Type)
	}
	switch p.Action {
	case ActionIgnore:
		return p, nil
	case ActionCustomerRefresh, ActionCustomerDelete:
		if ev.CustomerExternalID == "" && ev.CustomerID == "" {
			p.Note = "no customer in the payload"
			return p, nil
		}
		p.Target, p.CustomerID, p.CustomerExternalID = TargetCustomer, ev.CustomerID, ev.CustomerExternalID
		return p, nil
	}
	if ev.InstanceID != "" {
		p.Target, p.InstanceID = TargetInstance, ev.InstanceID
		return p, nil
	}
	if ev.ConnectionID != "" && p.Action == ActionRefetch {
		typ, _, ok := DecodeGlobalID(ev.ConnectionID)
		if !ok {
			p.Note = "connection id is not a Prismatic global id"
			return p, nil
		}
		p.Target, p.ConnectionID, p.ConnectionType = TargetConnection, ev.ConnectionID, typ
		return p, nil
	}
	if isInstanceEvent(ev.Type) {
		return Plan{}, fmt.Errorf("%w: %s without instance.id", ErrInvalid, ev.Type)
	}
	p.Note = "no instance or connection in the payload"
	return p, nil
}

func isInstanceEvent(typ string) bool {
	switch typ {
	case InstanceUpdated, InstanceDeployed, InstanceEnabled, InstanceDisabled, InstanceDeleted:
		return true
	}
	return false
}

// Fetch says whether an effect needs the instance fetched.
type Fetch int

const (
	// NoFetch: the effect is complete without a fetch.
	NoFetch Fetch = iota
	// FetchNow: queue the instance for a fetch.
	FetchNow
	// FetchIfRunning: queue a fetch only if one is in flight, so that it runs
	// once more after it; the one in flight may have read Prismatic before
	// this event's change.
	FetchIfRunning
)

// Effect is what one event does to one instance's entry.
type Effect struct {
	// Mutation is the write, nil for none.
	Mutation *cache.Mutation
	// Fetch says whether to queue a fetch.
	Fetch Fetch
	// Skip says why nothing is written, "" when something is or nothing
	// needs to be.
	Skip string
}

// Skip reasons.
const (
	SkipDeleted         = "instance is deleted"
	SkipNotCached       = "instance is not cached"
	SkipOlderThanDeploy = "event is older than the deploy the entry holds"
	SkipOlderThanUpdate = "event is not newer than the last update applied"
	SkipOlderThanToggle = "event is older than the last enable/disable applied"
	SkipOlderThanFetch  = "event is older than the fetch the entry holds"
)

// Decide decides what an event with action and timestamp ts does to the
// entry in st. It is pure: the caller applies the mutation as a
// compare-and-set on st's rev and decides again when it lost a race.
//
// Ordering (docs/ordering.md): a stale mark is dropped when ts is before the
// lastDeployedAt of the document the entry holds; an enable or disable is
// dropped when ts is before the last one applied or before the start of the
// fetch the document came from (the latest as-of time wins); nothing is
// written over a tombstone.
func Decide(action Action, ts time.Time, st cache.State) Effect {
	if st.Tombstoned && action != ActionIgnore {
		return Effect{Skip: SkipDeleted}
	}
	e := st.Entry
	switch action {
	case ActionRefetch:
		return Effect{Fetch: FetchNow}

	case ActionStale:
		if e.Doc == nil {
			return Effect{Fetch: FetchIfRunning, Skip: SkipNotCached}
		}
		if e.Doc.LastDeployedAt != nil && ts.Before(*e.Doc.LastDeployedAt) {
			return Effect{Skip: SkipOlderThanDeploy}
		}
		// While fetches fail, stale_reason says so and the reason the entry
		// would otherwise have is kept in prior_stale_reason.
		failing := e.StaleReason == cache.StaleFetchFailed
		reason := e.StaleReason
		if failing {
			reason = e.PriorStaleReason
		}
		if e.Stale && reason == cache.StaleUpdated && !ts.After(e.UpdatedEventAt) {
			return Effect{Skip: SkipOlderThanUpdate}
		}
		next := e
		if !e.Stale {
			next.StaleSince = ts
		}
		next.Stale = true
		if reason != cache.StaleUndeployed { // that label says more; keep it
			reason = cache.StaleUpdated
		}
		if failing {
			next.PriorStaleReason = reason
		} else {
			next.StaleReason = reason
		}
		if ts.After(e.UpdatedEventAt) {
			next.UpdatedEventAt = ts
		}
		return Effect{Mutation: &cache.Mutation{Kind: cache.ChangeStale, Entry: next, KeepDoc: true}, Fetch: FetchIfRunning}

	case ActionEnable, ActionDisable:
		if e.Doc == nil {
			return Effect{Fetch: FetchIfRunning, Skip: SkipNotCached}
		}
		if ts.Before(e.EnabledEventAt) {
			return Effect{Skip: SkipOlderThanToggle}
		}
		if ts.Before(e.FetchedAt) {
			return Effect{Skip: SkipOlderThanFetch}
		}
		on := action == ActionEnable
		next := e
		doc := *e.Doc
		doc.Enabled = on
		next.Doc, next.Enabled = &doc, on
		next.EnabledEventAt = ts
		return Effect{Mutation: &cache.Mutation{Kind: cache.ChangeEnabled, Entry: next}, Fetch: FetchIfRunning}

	case ActionDelete:
		return Effect{Mutation: &cache.Mutation{Kind: cache.ChangeDeleted, Delete: true}}
	}
	return Effect{}
}
