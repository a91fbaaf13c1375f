package refresh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/lease"
	"github.com/prismcache/prismcache/internal/retry"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/webhook"
)

// InstanceLister pages through every instance, each with its document;
// *graphql.Client satisfies it.
type InstanceLister interface {
	ListInstances(ctx context.Context, after string) (graphql.ListPage, error)
}

// Reconciler compares every instance Prismatic has with the cache, a page
// of instances at a time, each page carrying the instances' documents. It
// writes every instance a page settles whose entry is missing or differs
// from what the page shows — through DecideWrite and the store's
// compare-and-set, exactly as a fetch would (see pages.go) — and queues for
// a fetch only the instances a page cannot settle (more config variables
// than it carries) that are missing or whose deploy markers, enabled flag
// or staleness differ. After a complete listing it removes the cached
// instances Prismatic no longer has, and it writes the sync marker at the
// end of a complete pass.
type Reconciler struct {
	API   InstanceLister
	Store *store.Store
	Work  *WorkSet
	Log   *slog.Logger
	// Force rewrites every instance a page settles and queues every other
	// one, not only those that differ.
	Force bool
	// Progress, when set, is called after every page.
	Progress func(Report)
	// Now is the clock; time.Now if nil.
	Now func() time.Time

	rep repairs
}

// ErrPassLost: Redis lost the pass's marker mid-pass (flushed or replaced,
// or another pass began), so the pass does not count as a complete sync.
var ErrPassLost = errors.New("reconcile: the sync marker changed during the pass (Redis flushed?)")

// Report is what one pass found.
type Report struct {
	Pages  int `json:"pages"`
	Listed int `json:"listed"`
	Total  int `json:"total"`
	// Written counts entries written from their page; Unchanged the listed
	// instances whose entry held what the page shows already.
	Written   int `json:"written"`
	Unchanged int `json:"unchanged"`
	// Queued counts instances queued for a fetch: those no page could
	// settle.
	Queued  int           `json:"queued"`
	Removed int           `json:"removed"`
	Took    time.Duration `json:"-"`
	// PageSize is the page size of the last page (less than 100 while the
	// API refuses larger pages).
	PageSize int `json:"pageSize"`
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

// RunOnce makes one full pass. The sync marker is written at its end only
// if nothing flushed Redis during the pass.
func (r *Reconciler) RunOnce(ctx context.Context) (Report, error) {
	start := r.now()
	var rep Report
	token := lease.Token()
	if err := r.Store.BeginSync(ctx, token); err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	w := &pageWriter{store: r.Store, now: r.now, log: r.log(), force: r.Force}
	var listed *idSet
	cursor := ""
	for {
		page, err := r.listPage(ctx, cursor)
		if err != nil {
			return rep, fmt.Errorf("reconcile: list instances page %d: %w", rep.Pages+1, err)
		}
		rep.Pages++
		rep.Total = page.TotalCount
		rep.Listed += len(page.Instances)
		rep.PageSize = page.Size
		if listed == nil {
			// The first page says how many there are: one allocation for the pass.
			listed = newIDSet(page.TotalCount)
		}
		for _, in := range page.Instances {
			listed.add(in.ID)
		}
		out, err := w.write(ctx, page)
		rep.Written += out.Written
		rep.Unchanged += out.Unchanged
		if err != nil {
			return rep, fmt.Errorf("reconcile: %w", err)
		}
		var due []string
		for _, p := range out.Partial {
			if r.Force || p.Broken || differsByMarkers(p.Inst, p.State) {
				due = append(due, p.Inst.ID)
			}
		}
		if _, err := (Executor{Store: r.Store, Work: r.Work}).Execute(ctx, webhook.FetchPlan(due...), nil, Once{}); err != nil {
			return rep, fmt.Errorf("reconcile: %w", err)
		}
		rep.Queued += len(due)
		r.log().Debug("reconcile page", "page", rep.Pages, "size", page.Size, "listed", rep.Listed, "of", rep.Total,
			"written", rep.Written, "queued", rep.Queued)
		if r.Progress != nil {
			r.Progress(rep)
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	removed, err := r.removeGone(ctx, listed, start)
	rep.Removed = removed
	if err != nil {
		return rep, err
	}
	done, err := r.Store.FinishSync(ctx, token, start, r.now())
	if err != nil {
		return rep, fmt.Errorf("reconcile: %w", err)
	}
	if !done {
		return rep, ErrPassLost
	}
	rep.Took = r.now().Sub(start)
	r.log().Info("reconcile", "pages", rep.Pages, "page_size", rep.PageSize, "listed", rep.Listed, "written", rep.Written,
		"unchanged", rep.Unchanged, "queued", rep.Queued, "removed", rep.Removed, "took", rep.Took.Round(time.Millisecond))
	return rep, nil
}

// pageAttempts is how often one page is asked for before the pass fails.
const pageAttempts = 6

// pageRetry spaces the attempts at one page.
var pageRetry = retry.Policy{Base: 500 * time.Millisecond, Cap: 30 * time.Second}

// listPage asks for one page, retrying transient failures with backoff (and
// the wait a 429 asks for), so one failed request does not void a pass. (A
// page refused as too large is asked for again at once, smaller, by the
// client itself.)
func (r *Reconciler) listPage(ctx context.Context, cursor string) (graphql.ListPage, error) {
	for attempt := 1; ; attempt++ {
		page, err := r.API.ListInstances(ctx, cursor)
		if err == nil || !graphql.Retryable(err) || attempt == pageAttempts {
			return page, err
		}
		wait := pageRetry.Delay(attempt, graphql.RetryAfter(err))
		r.log().Debug("reconcile: page failed; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return page, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// removeGone deletes cached entries of instances the complete listing did
// not contain, unless they were fetched after the listing began (they may be
// new).
func (r *Reconciler) removeGone(ctx context.Context, listed *idSet, since time.Time) (int, error) {
	var gone []string
	err := r.Store.Scan(ctx, 1000, func(ids []string) error {
		for _, id := range ids {
			if !listed.has(id) {
				gone = append(gone, id)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reconcile: scan entries: %w", err)
	}
	removed := 0
	for _, id := range gone {
		if r.exists(ctx, id) {
			continue
		}
		up, err := r.Store.Update(ctx, id, store.UpdateOptions{}, func(st store.State) *store.Mutation {
			if !st.Exists || st.Entry.FetchedAt.After(since) {
				return nil // gone already, or fetched since the listing began
			}
			return &store.Mutation{Kind: cache.ChangeDeleted, Delete: true}
		})
		if err != nil {
			return removed, fmt.Errorf("reconcile: remove %s: %w", id, err)
		}
		if up.Mutation != nil {
			removed++
			r.log().Info("reconcile removed an instance Prismatic no longer has", "id", id)
		}
	}
	return removed, nil
}

// exists reports whether an instance the listing left out may exist all the
// same, asking the API when it can fetch: the listing leaves out system
// (test) instances, which their webhooks cache, and removing one would
// tombstone an instance Prismatic still has. When the API fails, it keeps
// the entry for the next pass to decide.
func (r *Reconciler) exists(ctx context.Context, id string) bool {
	f, ok := r.API.(Fetcher)
	if !ok {
		return false
	}
	// Missing from the complete listing and said to be missing by the API
	// (null, or an error that says "not found"): two signals agree.
	inst, err := f.FetchInstance(ctx, id)
	if graphql.KindOf(err) == graphql.NotFound {
		return false
	}
	return err != nil || inst != nil
}
