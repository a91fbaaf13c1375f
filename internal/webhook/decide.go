package webhook

import (
	"fmt"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/store"
)

// TaskKind is what a queued task does.
type TaskKind int

const (
	// TaskFetch fetches one instance and writes its entry.
	TaskFetch TaskKind = iota + 1
	// TaskConnection finds the instances behind a connection (by the
	// connection variable's global id) and fetches each.
	TaskConnection
	// TaskCustomer fetches every instance of a customer (by its global id).
	TaskCustomer
	// TaskRemoveCustomer removes the cached instances of a deleted customer
	// (by its external id, and its global id when known).
	TaskRemoveCustomer
)

// Task is one piece of work a plan queues in the work set.
type Task struct {
	Kind TaskKind
	// ID is the instance's, the connection variable's or the customer's
	// global id.
	ID string
	// ExternalID is the customer's external id (TaskRemoveCustomer).
	ExternalID string
}

// Plan is everything one event does to the cache, as Decide decides it:
// the intake carries it out, and the operator's refresh and the reconciler
// express theirs as plans too (FetchPlan), so every change of the cache goes
// the same way.
type Plan struct {
	Action Action
	// Instance is the instance whose entry the event concerns; "" when none.
	Instance string
	// Queue is the work to queue now, marked once per webhook body.
	Queue []Task
	// NeedsEntry: the plan depends on Instance's entry, which Decide was not
	// given. Read it and decide again with it; Write is then decided.
	NeedsEntry bool
	// Write is the entry's write, nil for none: a stale mark, a toggle of
	// the enabled flag, or a delete.
	Write *store.Mutation
	// RerunIfRunning: a fetch of Instance in flight may have read Prismatic
	// before this event's change, so it must run once more afterwards.
	RerunIfRunning bool
	// Why says why nothing is written or queued; "" otherwise.
	Why string
}

// FetchPlan is the plan of a refresh of instances that no event asked for:
// an operator's refresh, or instances the reconciler found out of date.
func FetchPlan(ids ...string) Plan {
	p := Plan{Action: ActionRefetch}
	for _, id := range ids {
		p.Queue = append(p.Queue, Task{Kind: TaskFetch, ID: id})
	}
	return p
}

// Decide decides what event ev does to the cache under the action table,
// given the entry of the instance it concerns — nil when it was not read
// (the plan then says NeedsEntry for the events whose effect depends on
// it). It is pure: the intake calls it once before reading anything, and
// again with the entry for each compare-and-set attempt. An error means the
// payload cannot be acted on as its type requires (the sender gets a 4xx).
//
// An event whose type only the unsigned X-Webhook-Event header names may
// only be counted: anyone who captured a signed body could otherwise
// replay it under a header of their choice (instance.deleted, say). Such
// an event is refused unless its type's action is to ignore it, as
// webhook.test's is.
func Decide(ev Event, actions Actions, st *store.State) (Plan, error) {
	p := Plan{Action: actions.For(ev.Type)}
	if ev.TypeFromHeader && p.Action != ActionIgnore {
		return Plan{}, fmt.Errorf("%w: the body has no event_type, and the %s header is not signed: "+
			"it may name only a type that changes nothing, like %s, not %s", ErrInvalid, EventHeader, WebhookTest, ev.Type)
	}
	switch p.Action {
	case ActionIgnore:
		return p, nil
	case ActionCustomerRefresh:
		if ev.CustomerID == "" {
			p.Why = "no customer id in the payload"
			return p, nil
		}
		p.Queue = []Task{{Kind: TaskCustomer, ID: ev.CustomerID}}
		return p, nil
	case ActionCustomerDelete:
		if ev.CustomerExternalID == "" {
			p.Why = "no customer external id in the payload"
			return p, nil
		}
		p.Queue = []Task{{Kind: TaskRemoveCustomer, ID: ev.CustomerID, ExternalID: ev.CustomerExternalID}}
		return p, nil
	}
	if ev.InstanceID != "" {
		p.Instance = ev.InstanceID
		if p.Action == ActionRefetch {
			// The fetch decides for itself (a deleted instance's fetch
			// writes nothing): no need to read the entry.
			p.Queue = []Task{{Kind: TaskFetch, ID: ev.InstanceID}}
			return p, nil
		}
		p.RerunIfRunning = p.Action != ActionDelete
		if st == nil {
			p.NeedsEntry = true
			return p, nil
		}
		p.Write, p.Why = DecideEntry(p.Action, ev.Timestamp, *st)
		return p, nil
	}
	if ev.ConnectionID != "" && p.Action == ActionRefetch {
		if _, _, ok := DecodeGlobalID(ev.ConnectionID); !ok {
			p.Why = "connection id is not a Prismatic global id"
			return p, nil
		}
		p.Queue = []Task{{Kind: TaskConnection, ID: ev.ConnectionID}}
		return p, nil
	}
	if isInstanceEvent(ev.Type) {
		return Plan{}, fmt.Errorf("%w: %s without instance.id", ErrInvalid, ev.Type)
	}
	p.Why = "no instance or connection in the payload"
	return p, nil
}

func isInstanceEvent(typ string) bool {
	switch typ {
	case InstanceUpdated, InstanceDeployed, InstanceEnabled, InstanceDisabled, InstanceDeleted:
		return true
	}
	return false
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

// DecideEntry decides what an event with action and timestamp ts does to
// the entry in st: the write (nil for none) and, without one, why. It is
// pure: the caller applies the write as a compare-and-set on st's rev and
// decides again when it lost a race.
//
// Ordering (docs/ordering.md): a stale mark is dropped when ts is before the
// lastDeployedAt of the document the entry holds; an enable or disable is
// dropped when ts is before the last one applied or before the start of the
// fetch the document came from (the latest as-of time wins); nothing is
// written over a tombstone.
func DecideEntry(action Action, ts time.Time, st store.State) (*store.Mutation, string) {
	if st.Tombstoned && action != ActionIgnore {
		return nil, SkipDeleted
	}
	e := st.Entry
	switch action {
	case ActionStale:
		if e.Doc == nil {
			return nil, SkipNotCached
		}
		if e.Doc.LastDeployedAt != nil && ts.Before(*e.Doc.LastDeployedAt) {
			return nil, SkipOlderThanDeploy
		}
		// While fetches fail, stale_reason says so and the reason the entry
		// would otherwise have is kept in prior_stale_reason.
		failing := e.StaleReason == cache.StaleFetchFailed
		reason := e.StaleReason
		if failing {
			reason = e.PriorStaleReason
		}
		if e.Stale && reason == cache.StaleUpdated && !ts.After(e.UpdatedEventAt) {
			return nil, SkipOlderThanUpdate
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
		return &store.Mutation{Kind: cache.ChangeStale, Entry: next, KeepDoc: true}, ""

	case ActionEnable, ActionDisable:
		if e.Doc == nil {
			return nil, SkipNotCached
		}
		if ts.Before(e.EnabledEventAt) {
			return nil, SkipOlderThanToggle
		}
		if ts.Before(e.FetchedAt) {
			return nil, SkipOlderThanFetch
		}
		on := action == ActionEnable
		next := e
		doc := *e.Doc
		doc.Enabled = on
		next.Doc, next.Enabled = &doc, on
		next.EnabledEventAt = ts
		return &store.Mutation{Kind: cache.ChangeEnabled, Entry: next}, ""

	case ActionDelete:
		return &store.Mutation{Kind: cache.ChangeDeleted, Delete: true}, ""
	}
	return nil, ""
}
