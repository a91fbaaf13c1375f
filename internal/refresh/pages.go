package refresh

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/store"
)

// Writing instances from pages. A listing (the reconciler's, or the
// instances behind a shared connection or a customer) carries each
// instance's document — the same fields a fetch selects — so an instance it
// shows in full is settled from the page: its document goes through
// DecideWrite and Store.Update exactly as a fetch that started when the
// page's request was sent, with the same ordering rules (versions never go
// down, tombstones hold, a newer fetch or event wins) and the same change
// messages. DecideWrite also settles instances with undeployed changes, as
// it does for a fetch: with a deployed document cached, only the live parts
// (connection status and refresh times, customer fields) are merged into
// it; with none, the stored config is written as undeployed_config. An
// instance whose config variables go on past the page (Partial) cannot be
// settled from it: it is fetched, as before.

// pageWriters is how many entries of one page are written at once.
const pageWriters = 8

// pageWriter writes the instances of listing pages. Safe for concurrent
// use.
type pageWriter struct {
	store *store.Store
	now   func() time.Time
	log   *slog.Logger
	// force writes every instance a page settles, even one whose entry
	// holds what the write would (an operator's full resync).
	force bool
}

// pageOutcome is what writing one page did.
type pageOutcome struct {
	// Written counts entries written; Unchanged those that held what the
	// page shows already; Skipped those the rules left alone (a tombstone,
	// a newer fetch, never deployed).
	Written, Unchanged, Skipped int
	// Partial lists the instances the page could not settle (more config
	// variables than it carries, or an entry that does not parse), with
	// what the cache holds of them.
	Partial []partial
	// After holds the entry of every listed instance that has one, as it
	// is after the page's writes.
	After map[string]cache.Entry
}

// partial is an instance a page showed without all its config variables,
// or whose entry does not parse: a fetch must settle it.
type partial struct {
	Inst  *graphql.Instance
	State store.State
	// Broken: the cached entry does not parse.
	Broken bool
}

// write settles every complete instance of page from it.
func (w *pageWriter) write(ctx context.Context, page graphql.ListPage) (pageOutcome, error) {
	out := pageOutcome{After: make(map[string]cache.Entry, len(page.Instances))}
	if len(page.Instances) == 0 {
		return out, nil
	}
	states, broken, err := w.load(ctx, page.Instances)
	if err != nil {
		return out, err
	}
	started := page.Sent
	if started.IsZero() {
		started = w.now()
	}
	type job struct {
		inst *graphql.Instance
		st   store.State
		doc  *cache.Doc
	}
	var jobs []job
	for i, inst := range page.Instances {
		st := states[i]
		if st.Entry.Doc != nil {
			out.After[inst.ID] = st.Entry
		}
		if inst.Partial || broken[i] {
			out.Partial = append(out.Partial, partial{Inst: inst, State: st, Broken: broken[i]})
			continue
		}
		doc, err := ToDoc(inst)
		if err != nil {
			// A fetch would find the same fault; the worker's failure
			// handling (fetch_failed, retries) is where it belongs.
			out.Partial = append(out.Partial, partial{Inst: inst, State: st})
			continue
		}
		switch m, _ := DecideWrite(st, doc, started, w.now()); {
		case m == nil:
			out.Skipped++
		case !w.force && sameEntry(st, m):
			out.Unchanged++
		default:
			jobs = append(jobs, job{inst: inst, st: st, doc: doc})
		}
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, pageWriters)
	)
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			st := j.st
			up, err := w.store.Update(ctx, j.inst.ID, store.UpdateOptions{Prior: &st}, func(st store.State) *store.Mutation {
				return w.decide(st, j.doc, started)
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("write %s from its page: %w", j.inst.ID, err))
			case up.Mutation != nil:
				out.Written++
				if up.Mutation.Delete {
					delete(out.After, j.inst.ID)
				} else {
					e := up.Mutation.Entry
					e.Rev = up.Rev
					out.After[j.inst.ID] = e
				}
				if up.IndexErr != nil {
					w.log.Warn("entry written; its lookup rows were not", "id", j.inst.ID, "err", up.IndexErr)
				}
			default:
				out.Skipped++ // changed meanwhile, and the rules now leave it
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// decide is DecideWrite for a page's document, except that it writes
// nothing when the entry holds what the write would already (unless
// forced): a pass over an unchanged fleet writes nothing and publishes
// nothing.
func (w *pageWriter) decide(st store.State, doc *cache.Doc, started time.Time) *store.Mutation {
	m, _ := DecideWrite(st, doc, started, w.now())
	if m == nil || w.force || !sameEntry(st, m) {
		return m
	}
	return nil
}

// sameEntry reports whether m leaves the entry in st as it is, but for
// fetched_at (and rev, which every write bumps).
func sameEntry(st store.State, m *store.Mutation) bool {
	if m.Delete || !st.Exists {
		return false
	}
	a, b := st.Entry, m.Entry
	if a.Stale != b.Stale || !a.StaleSince.Equal(b.StaleSince) || a.StaleReason != b.StaleReason ||
		a.Enabled != b.Enabled || a.DeployedVersion != b.DeployedVersion || a.LastError != b.LastError ||
		a.PriorStaleReason != b.PriorStaleReason || !a.UpdatedEventAt.Equal(b.UpdatedEventAt) ||
		!a.EnabledEventAt.Equal(b.EnabledEventAt) {
		return false
	}
	if a.Doc == nil || b.Doc == nil {
		return a.Doc == b.Doc
	}
	ja, err1 := json.Marshal(a.Doc)
	jb, err2 := json.Marshal(b.Doc)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// load reads the entries and tombstones of the instances of a page in one
// pipeline: the state each write decides on first. broken marks entries
// that do not parse.
func (w *pageWriter) load(ctx context.Context, insts []*graphql.Instance) (states []store.State, broken []bool, err error) {
	ids := make([]string, len(insts))
	for i, in := range insts {
		ids[i] = in.ID
	}
	states, errs, err := w.store.LoadMany(ctx, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("read the entries of a page: %w", err)
	}
	broken = make([]bool, len(insts))
	for i, e := range errs {
		if e != nil {
			// A fetch reports an entry it cannot read: leave it to one.
			w.log.Warn("cached entry does not parse; it will be fetched", "id", ids[i], "err", e)
			broken[i] = true
		}
	}
	return states, broken, nil
}

// differsByMarkers reports whether a partial instance needs a fetch: its
// entry is missing, holds a failure, or disagrees with the listing on the
// deploy markers, the enabled flag or staleness. (Its config cannot be
// compared: the page holds only part of it.)
func differsByMarkers(in *graphql.Instance, st store.State) bool {
	if in.DeployedVersion == 0 && st.Entry.Doc == nil {
		return false // never deployed: nothing to cache
	}
	e := st.Entry
	if e.Doc == nil || e.LastError != "" || e.Enabled != in.Enabled || e.Stale != in.NeedsDeploy {
		return true
	}
	if in.NeedsDeploy {
		return false // stale, as it should be: a fetch would learn nothing deployed
	}
	if e.DeployedVersion != in.DeployedVersion {
		return true
	}
	if in.LastDeployedAt != nil && (e.Doc.LastDeployedAt == nil || !e.Doc.LastDeployedAt.Equal(*in.LastDeployedAt)) {
		return true
	}
	return false
}
