package refresh

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/webhook"
)

// Executor carries out plans (webhook.Plan): the one place where a decision
// becomes Redis writes, for the webhook intake, the operator's refresh, the
// reconciler and the jobs alike. A plan's entry write is a compare-and-set,
// decided again on the entry as it is whenever another write got in first;
// its queued work goes into the work set. It is a value and safe for
// concurrent use.
type Executor struct {
	Store *store.Store
	Work  *WorkSet
}

// Once makes an execution happen once per webhook body: the body's digest
// is marked, for Window, by the same script as the effect it guards, and a
// body already marked does nothing. The zero value executes every time.
type Once struct {
	Sum    string
	Window time.Duration
}

// Executed is what executing a plan did.
type Executed struct {
	// Plan is the plan as last decided: with the entry, when it needed one.
	Plan webhook.Plan
	// Wrote: the entry was written (Plan.Write).
	Wrote bool
	// Queued: work was added to the work set.
	Queued bool
	// Duplicate: with Once, the body was applied already; nothing was done.
	Duplicate bool
	// Tombstoned: the instance was deleted; nothing was written.
	Tombstoned bool
	// IndexErr is set when the entry was written but its lookup rows were
	// not (store.ErrIndex): the write stands.
	IndexErr error
}

// errBothWays: a plan both writes an entry and queues work, which one body's
// dedup mark cannot guard in one step; Decide never makes one.
var errBothWays = errors.New("a plan that writes an entry and queues work at once")

// Execute carries out plan. A plan that needs its instance's entry is
// decided again, with the entry, by redecide (which must be pure: it may be
// called several times). An error means Redis failed: nothing of the plan,
// or all of it, was applied, so a webhook's sender may retry.
func (x Executor) Execute(ctx context.Context, plan webhook.Plan, redecide func(store.State) webhook.Plan, once Once) (Executed, error) {
	out := Executed{Plan: plan}
	switch {
	case plan.NeedsEntry && len(plan.Queue) > 0:
		return out, errBothWays
	case plan.NeedsEntry:
		return x.write(ctx, plan, redecide, once)
	case len(plan.Queue) == 0:
		return out, nil // nothing to store, and a repeat would do nothing either
	}
	members := make([]string, len(plan.Queue))
	for i, t := range plan.Queue {
		members[i] = member(t)
	}
	if once.Sum == "" {
		if err := x.Work.Add(ctx, time.Time{}, members...); err != nil {
			return out, err
		}
		out.Queued = true
		return out, nil
	}
	if len(members) != 1 {
		return out, fmt.Errorf("once per body: %d tasks, want one", len(members))
	}
	dup, err := x.Work.AddOnce(ctx, once.Sum, once.Window, members[0])
	out.Duplicate, out.Queued = dup, err == nil && !dup
	return out, err
}

// write decides the entry's write on the entry and applies it.
func (x Executor) write(ctx context.Context, plan webhook.Plan, redecide func(store.State) webhook.Plan, once Once) (Executed, error) {
	out := Executed{Plan: plan}
	opts := store.UpdateOptions{Sum: once.Sum, Window: once.Window,
		// A stale mark changes only the entry's flags: it is decided
		// without reading the document.
		WithoutDoc: plan.Action == webhook.ActionStale}
	if plan.RerunIfRunning {
		// A fetch of this instance in flight may have read Prismatic before
		// this event's change: have it run once more. It is done while the
		// entry is read, and before the effect and its dedup mark are
		// written, so that a delivery that fails after it is retried in
		// full; it is harmless to repeat.
		opts.Alongside = func() error { return x.Work.AddIfRunning(ctx, plan.Instance) }
	}
	up, err := x.Store.Update(ctx, plan.Instance, opts, func(st store.State) *store.Mutation {
		out.Plan = redecide(st)
		return out.Plan.Write
	})
	if err != nil {
		return out, err
	}
	out.Wrote, out.Duplicate, out.Tombstoned, out.IndexErr = up.Mutation != nil, up.Duplicate, up.Tombstoned, up.IndexErr
	if up.Tombstoned {
		out.Plan.Why = webhook.SkipDeleted
	}
	return out, nil
}

// member is the work-set member of a task.
func member(t webhook.Task) string {
	switch t.Kind {
	case webhook.TaskConnection:
		return ConnectionJob(t.ID)
	case webhook.TaskCustomer:
		return CustomerJob(t.ID)
	case webhook.TaskRemoveCustomer:
		return CustomerDeleteJob(t.ID, t.ExternalID)
	}
	return t.ID
}
