package refresh_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/retry"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/testutil"
)

// fakeAPI answers FetchInstance from a function, counting calls.
type fakeAPI struct {
	calls atomic.Int64
	fetch func(ctx context.Context, id string, call int64) (*graphql.Instance, error)
}

func (f *fakeAPI) FetchInstance(ctx context.Context, id string) (*graphql.Instance, error) {
	return f.fetch(ctx, id, f.calls.Add(1))
}

func instance(id string, version int) *graphql.Instance {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC).Add(time.Duration(version) * time.Hour)
	ext := "acme"
	return &graphql.Instance{ID: id, Name: "i", Enabled: true, DeployedVersion: version, LastDeployedAt: &at, UpdatedAt: at,
		Customer: graphql.InstanceCustomer{Id: "c", ExternalId: &ext, Name: "Acme"}}
}

type poolRig struct {
	ws    *refresh.WorkSet
	store *store.Store
	pool  *refresh.Pool
	mu    sync.Mutex
	res   []refresh.Result
}

func startPool(t *testing.T, b redistest.Backend, api refresh.Fetcher, opts refresh.PoolOptions) *poolRig {
	t.Helper()
	r := &poolRig{store: store.New(b.Client, store.Options{Prefix: b.Prefix})}
	r.ws = refresh.NewWorkSet(b.Client, r.store.Keys(), refresh.WorkSetOptions{Lease: 5 * time.Second})
	opts.OnResult = func(res refresh.Result) { r.mu.Lock(); r.res = append(r.res, res); r.mu.Unlock() }
	r.pool = refresh.NewPool(r.ws, r.store, api, opts)
	if err := r.pool.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *poolRig) results() []refresh.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]refresh.Result(nil), r.res...)
}

func TestPoolShutdownHandsBackWhatItHolds(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		started := make(chan struct{}, 1)
		api := &fakeAPI{fetch: func(ctx context.Context, id string, _ int64) (*graphql.Instance, error) {
			started <- struct{}{}
			<-ctx.Done() // a fetch that does not finish before the deadline
			return nil, &graphql.Error{Op: "GetInstance", Kind: graphql.Transient, Message: "cancelled", Err: ctx.Err()}
		}}
		r := startPool(t, b, api, refresh.PoolOptions{Workers: 2})
		if err := r.ws.Add(context.Background(), time.Time{}, "inst-1"); err != nil {
			t.Fatal(err)
		}
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := r.pool.Close(ctx); err != nil {
			t.Fatal(err)
		}
		s, err := r.ws.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if s.Leased != 0 || s.Queued != 1 || s.Due != 1 {
			t.Fatalf("after shutdown the work set holds %+v; want the claimed id handed back, due now", s)
		}
	})
}

// fastRetry retries at once, so tests see many attempts quickly.
var fastRetry = retry.Policy{Base: time.Millisecond, Cap: 5 * time.Millisecond}

// TestPoolNeverGivesUpOnAcknowledgedWork: a fetch that keeps failing is
// retried for as long as it fails; past FailedAfter the entry says
// fetch_failed, keeps its data and the reason it was stale for before; the
// first success makes it right again, with no reconciler involved.
func TestPoolNeverGivesUpOnAcknowledgedWork(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		var fail atomic.Bool
		api := &fakeAPI{fetch: func(_ context.Context, id string, _ int64) (*graphql.Instance, error) {
			if fail.Load() {
				return nil, &graphql.Error{Op: "GetInstance", Kind: graphql.Transient, Status: 502, Message: "bad gateway"}
			}
			return instance(id, 3), nil
		}}
		r := startPool(t, b, api, refresh.PoolOptions{Workers: 1, FailedAfter: 3, Retry: fastRetry, PollInterval: 10 * time.Millisecond})
		defer r.pool.Close(ctx)
		_ = r.ws.Add(ctx, time.Time{}, "inst-1")
		testutil.Eventually(t, "the first fetch to write", func() bool {
			st, _ := r.store.Load(ctx, "inst-1")
			return st.Entry.Doc != nil
		})
		// An instance.updated marked it stale; then the API goes down and a
		// deploy's fetch is queued.
		markStale(t, r.store, "inst-1")
		fail.Store(true)
		before := api.calls.Load()
		_ = r.ws.Add(ctx, time.Time{}, "inst-1")
		testutil.Eventually(t, "the entry to say fetch_failed", func() bool {
			st, _ := r.store.Load(ctx, "inst-1")
			return st.Entry.StaleReason == cache.StaleFetchFailed
		})
		st, _ := r.store.Load(ctx, "inst-1")
		if st.Entry.Doc == nil || st.Entry.Doc.DeployedVersion != 3 || st.Entry.LastError == "" || !st.Entry.Stale {
			t.Fatalf("a failing entry lost its data or its error: %+v", st.Entry)
		}
		if st.Entry.PriorStaleReason != cache.StaleUpdated {
			t.Fatalf("prior_stale_reason = %q, want %q: the reason it was stale for before must stay visible", st.Entry.PriorStaleReason, cache.StaleUpdated)
		}
		testutil.Eventually(t, "retries well past FailedAfter", func() bool { return api.calls.Load()-before >= 10 })
		if s, _ := r.ws.Stats(ctx); s.Queued+s.Leased != 1 || s.Failed != 1 {
			t.Fatalf("work set %+v: the failing id must stay queued and count as failed", s)
		}
		for _, res := range r.results()[1:] {
			if !res.Retrying || res.Dropped {
				t.Fatalf("result %+v: every failure must be retried", res)
			}
		}
		fail.Store(false)
		testutil.Eventually(t, "the entry to be fresh again", func() bool {
			st, _ := r.store.Load(ctx, "inst-1")
			return !st.Entry.Stale && st.Entry.LastError == "" && st.Entry.PriorStaleReason == ""
		})
		testutil.Eventually(t, "the work set to empty", func() bool {
			s, _ := r.ws.Stats(ctx)
			return s.Queued == 0 && s.Leased == 0 && s.Failing == 0
		})
	})
}

// markStale marks an entry stale for an instance.updated, as the intake does.
func markStale(t *testing.T, db *store.Store, id string) {
	t.Helper()
	_, err := db.Update(context.Background(), id, store.UpdateOptions{}, func(st store.State) *store.Mutation {
		e := st.Entry
		e.Stale, e.StaleReason, e.StaleSince = true, cache.StaleUpdated, time.Now()
		return &store.Mutation{Kind: cache.ChangeStale, Entry: e, KeepDoc: true}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPoolBringsFailedWorkForwardWhenTheAPIAnswers: work that failed during
// an outage waits out a long backoff; the first success afterwards (or a
// probe's) brings all of it forward instead.
func TestPoolBringsFailedWorkForwardWhenTheAPIAnswers(t *testing.T) {
	for _, how := range []string{"a fetch succeeds", "a probe succeeds"} {
		t.Run(how, func(t *testing.T) {
			redistest.Each(t, func(t *testing.T, b redistest.Backend) {
				ctx := context.Background()
				var down atomic.Bool
				down.Store(true)
				api := &fakeAPI{fetch: func(_ context.Context, id string, _ int64) (*graphql.Instance, error) {
					if down.Load() {
						return nil, &graphql.Error{Op: "GetInstance", Kind: graphql.Transient, Message: "connection refused"}
					}
					return instance(id, 4), nil
				}}
				// A backoff of an hour: only bringing the work forward can
				// make these converge within the test's deadline.
				r := startPool(t, b, api, refresh.PoolOptions{Workers: 2, Retry: retry.Policy{Base: time.Hour, Cap: time.Hour}, PollInterval: 10 * time.Millisecond})
				defer r.pool.Close(ctx)
				waiting := []string{"w-1", "w-2", "w-3", "w-4", "w-5"}
				_ = r.ws.Add(ctx, time.Time{}, waiting...)
				testutil.Eventually(t, "every id to fail once", func() bool {
					s, _ := r.ws.Stats(ctx)
					return s.Failing == int64(len(waiting)) && s.Leased == 0 && s.Due == 0
				})
				down.Store(false)
				if how == "a fetch succeeds" {
					_ = r.ws.Add(ctx, time.Time{}, "newcomer")
				} else {
					r.pool.APIRecovered()
				}
				for _, id := range waiting {
					testutil.Eventually(t, id+" to be fetched", func() bool {
						st, _ := r.store.Load(ctx, id)
						return st.Entry.Doc != nil && st.Entry.DeployedVersion == 4
					})
				}
			})
		})
	}
}

// TestPoolRetriesRefusedCredentials: a refused token is loud but retried on
// the capped backoff — tokens get fixed — and never dropped.
func TestPoolRetriesRefusedCredentials(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		var refuse atomic.Bool
		refuse.Store(true)
		api := &fakeAPI{fetch: func(_ context.Context, id string, _ int64) (*graphql.Instance, error) {
			if refuse.Load() {
				return nil, &graphql.Error{Op: "GetInstance", Kind: graphql.Forbidden, Status: 403, Message: "permission denied"}
			}
			return instance(id, 1), nil
		}}
		r := startPool(t, b, api, refresh.PoolOptions{Workers: 1, FailedAfter: 2, Retry: fastRetry, PollInterval: 10 * time.Millisecond})
		defer r.pool.Close(ctx)
		_ = r.ws.Add(ctx, time.Time{}, "inst-1")
		testutil.Eventually(t, "several attempts", func() bool { return api.calls.Load() >= 4 })
		for _, res := range r.results() {
			if !res.Retrying || res.Error == "" {
				t.Fatalf("result %+v: a refused token must be retried", res)
			}
		}
		refuse.Store(false)
		testutil.Eventually(t, "the instance to be cached once the token works", func() bool {
			st, _ := r.store.Load(ctx, "inst-1")
			return st.Entry.Doc != nil
		})
	})
}

// TestPoolDropsOnlyMootWork: failing work is dropped only when it became
// moot — the instance was deleted meanwhile, or the API says it does not
// exist and nothing of it is cached — never because an error looked
// permanent.
func TestPoolDropsOnlyMootWork(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		api := &fakeAPI{fetch: func(_ context.Context, id string, _ int64) (*graphql.Instance, error) {
			kind := graphql.NotFound
			if id == "deleted" {
				kind = graphql.Transient
			}
			return nil, &graphql.Error{Op: "GetInstance", Kind: kind, Message: "nope"}
		}}
		db := store.New(b.Client, store.Options{Prefix: b.Prefix})
		e := cache.Entry{Doc: &cache.Doc{ID: "deleted", DeployedVersion: 1}, DeployedVersion: 1}
		if _, err := db.Apply(ctx, "deleted", cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Apply(ctx, "deleted", cache.Entry{Rev: 1, Doc: e.Doc}, store.Mutation{Kind: cache.ChangeDeleted, Delete: true}); err != nil {
			t.Fatal(err)
		}
		r := startPool(t, b, api, refresh.PoolOptions{Workers: 1, FailedAfter: 3, Retry: fastRetry, PollInterval: 10 * time.Millisecond})
		defer r.pool.Close(ctx)
		_ = r.ws.Add(ctx, time.Time{}, "never-cached", "deleted")
		dropped := map[string]int{}
		// The result is published after the work set lets go of the id:
		// wait for both.
		testutil.Eventually(t, "both to be dropped", func() bool {
			s, _ := r.ws.Stats(ctx)
			clear(dropped)
			for _, res := range r.results() {
				if res.Dropped {
					dropped[res.ID]++
				}
			}
			return s.Queued == 0 && s.Leased == 0 && len(dropped) == 2
		})
		if dropped["never-cached"] != 1 || dropped["deleted"] != 1 {
			t.Fatalf("dropped %v, want each once", dropped)
		}
		if n := api.calls.Load(); n != 6 {
			t.Fatalf("%d fetches, want 3 each (FailedAfter) before the work is found moot", n)
		}
	})
}

// TestPoolDeletesOnlyWhenTheInstanceIsNull: an error that says "not found"
// (a misrouted request, a proxy's page) keeps the entry, marked failed; only
// a null instance in the answer removes it.
func TestPoolDeletesOnlyWhenTheInstanceIsNull(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		var mode atomic.Int64 // 0 found, 1 error "not found", 2 null
		api := &fakeAPI{fetch: func(_ context.Context, id string, _ int64) (*graphql.Instance, error) {
			switch mode.Load() {
			case 1:
				return nil, &graphql.Error{Op: "GetInstance", Kind: graphql.NotFound, Message: "instance not found"}
			case 2:
				return nil, nil
			}
			return instance(id, 2), nil
		}}
		r := startPool(t, b, api, refresh.PoolOptions{Workers: 1, FailedAfter: 1, Retry: fastRetry})
		defer r.pool.Close(ctx)
		_ = r.ws.Add(ctx, time.Time{}, "inst-1")
		testutil.Eventually(t, "the entry", func() bool { st, _ := r.store.Load(ctx, "inst-1"); return st.Exists })
		mode.Store(1)
		_ = r.ws.Add(ctx, time.Time{}, "inst-1")
		testutil.Eventually(t, "the failure to be recorded", func() bool {
			st, _ := r.store.Load(ctx, "inst-1")
			return st.Entry.StaleReason == cache.StaleFetchFailed
		})
		if st, _ := r.store.Load(ctx, "inst-1"); st.Tombstoned || st.Entry.Doc == nil {
			t.Fatalf("a \"not found\" error deleted the entry: %+v", st)
		}
		mode.Store(2)
		_ = r.ws.Add(ctx, time.Time{}, "inst-1")
		testutil.Eventually(t, "the delete", func() bool { st, _ := r.store.Load(ctx, "inst-1"); return st.Tombstoned && !st.Exists })
	})
}

func TestPoolCoalescesABurstIntoAtMostTwoFetches(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		release := make(chan struct{})
		api := &fakeAPI{fetch: func(_ context.Context, id string, call int64) (*graphql.Instance, error) {
			if call == 1 {
				<-release // the first fetch is slow; the burst lands during it
			}
			return instance(id, 2), nil
		}}
		r := startPool(t, b, api, refresh.PoolOptions{Workers: 4})
		defer r.pool.Close(ctx)
		_ = r.ws.Add(ctx, time.Time{}, "inst-1")
		testutil.Eventually(t, "the first fetch", func() bool { return api.calls.Load() == 1 })
		for range 100 {
			_ = r.ws.Add(ctx, time.Time{}, "inst-1")
		}
		close(release)
		testutil.Eventually(t, "quiet", func() bool {
			s, _ := r.ws.Stats(ctx)
			return s.Queued == 0 && s.Leased == 0 && len(r.results()) >= 2
		})
		if n := api.calls.Load(); n != 2 {
			t.Fatalf("101 adds around one slow fetch caused %d fetches, want 2", n)
		}
	})
}

// fakeResolver maps every connection to a fixed set of instances found
// without their documents (as through the index).
type fakeResolver struct{ ids []string }

func (f fakeResolver) ConnectionInstances(context.Context, string, func(graphql.ListPage) error) ([]string, error) {
	return f.ids, nil
}
func (f fakeResolver) CustomerInstances(context.Context, string, func(graphql.ListPage) error) error {
	return nil
}

// TestConnectionJobSkipsInstancesFetchedSinceTheEvent: a connection event
// whose job runs late must not refetch the instances that were already
// fetched after the event arrived; the others it queues.
func TestConnectionJobSkipsInstancesFetchedSinceTheEvent(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		db := store.New(b.Client, store.Options{Prefix: b.Prefix})
		event := time.Now()
		for id, fetched := range map[string]time.Time{
			"fresh":   event.Add(9 * time.Second),  // fetched after both events: saw them
			"between": event.Add(3 * time.Second),  // after the first event, before the second
			"old":     event.Add(-5 * time.Second), // fetched before both
		} {
			e := cache.Entry{Doc: &cache.Doc{ID: id, DeployedVersion: 1}, DeployedVersion: 1, FetchedAt: fetched}
			if _, err := db.Apply(ctx, id, cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e}); err != nil {
				t.Fatal(err)
			}
		}
		var fetched sync.Map
		api := &fakeAPI{fetch: func(_ context.Context, id string, _ int64) (*graphql.Instance, error) {
			fetched.Store(id, true)
			return instance(id, 2), nil
		}}
		// Two events for the connection, queued before any worker runs the
		// job: it serves both, so it must refetch whatever was fetched
		// before the second.
		job := refresh.ConnectionJob("Q3VzdG9tZXJDb25maWdWYXJpYWJsZTox")
		if err := r0ws(t, b).Add(ctx, event, job); err != nil {
			t.Fatal(err)
		}
		if err := r0ws(t, b).Add(ctx, event.Add(5*time.Second), job); err != nil {
			t.Fatal(err)
		}
		r := startPool(t, b, api, refresh.PoolOptions{Workers: 2, Resolver: fakeResolver{ids: []string{"fresh", "between", "old", "uncached"}}})
		defer r.pool.Close(ctx)
		testutil.Eventually(t, "the job and its fetches", func() bool {
			s, _ := r.ws.Stats(ctx)
			return len(r.results()) >= 4 && s.Queued == 0 && s.Leased == 0
		})
		for id, want := range map[string]bool{"fresh": false, "between": true, "old": true, "uncached": true} {
			if _, got := fetched.Load(id); got != want {
				t.Errorf("instance %s fetched = %v, want %v", id, got, want)
			}
		}
	})
}

// r0ws is the rig's work set, for queuing before the pool starts.
func r0ws(t *testing.T, b redistest.Backend) *refresh.WorkSet {
	t.Helper()
	return refresh.NewWorkSet(b.Client, store.NewKeys(b.Prefix), refresh.WorkSetOptions{Lease: 5 * time.Second})
}

// failingResolver fails a number of times, then maps to ids.
type failingResolver struct {
	fails *atomic.Int64
	ids   []string
}

func (f failingResolver) ConnectionInstances(context.Context, string, func(graphql.ListPage) error) ([]string, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, &graphql.Error{Op: "CustomerConfigVariableInstances", Kind: graphql.Transient, Message: "HTTP 500"}
	}
	return f.ids, nil
}

func (f failingResolver) CustomerInstances(context.Context, string, func(graphql.ListPage) error) error {
	return nil
}

// TestConnectionJobIsNeverDropped: the instances behind a connection event
// have no entry to mark failed, and the periodic pass may be minutes away,
// so a job keeps being retried past MaxAttempts.
func TestConnectionJobIsNeverDropped(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		fails := &atomic.Int64{}
		fails.Store(5)
		var fetched atomic.Int64
		api := &fakeAPI{fetch: func(_ context.Context, id string, _ int64) (*graphql.Instance, error) {
			fetched.Add(1)
			return instance(id, 2), nil
		}}
		r := startPool(t, b, api, refresh.PoolOptions{Workers: 1, FailedAfter: 2, Retry: fastRetry,
			PollInterval: 5 * time.Millisecond, Resolver: failingResolver{fails: fails, ids: []string{"inst-1"}}})
		defer r.pool.Close(ctx)
		if err := r.ws.Add(ctx, time.Time{}, refresh.ConnectionJob("Q3VzdG9tZXJDb25maWdWYXJpYWJsZTox")); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, "the instance behind the connection to be fetched", func() bool { return fetched.Load() == 1 })
	})
}

// TestCustomerDeleteJobRemovesOnlyThatCustomer: two customers share an
// external id (ids disagree); the job removes only the entries of the one
// deleted.
func TestCustomerDeleteJobRemovesOnlyThatCustomer(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		db := store.New(b.Client, store.Options{Prefix: b.Prefix})
		for id, cust := range map[string]string{"gone-1": "Q3VzdG9tZXI6Z29uZQ==", "gone-2": "Q3VzdG9tZXI6Z29uZQ==", "kept": "Q3VzdG9tZXI6a2VwdA=="} {
			e := cache.Entry{Doc: &cache.Doc{ID: id, DeployedVersion: 1, Customer: cache.Customer{ID: cust, ExternalID: "shared-ext"}}, DeployedVersion: 1}
			if _, err := db.Apply(ctx, id, cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e}); err != nil {
				t.Fatal(err)
			}
		}
		r := startPool(t, b, &fakeAPI{fetch: func(context.Context, string, int64) (*graphql.Instance, error) { return nil, nil }}, refresh.PoolOptions{Workers: 1})
		defer r.pool.Close(ctx)
		if err := r.ws.Add(ctx, time.Time{}, refresh.CustomerDeleteJob("Q3VzdG9tZXI6Z29uZQ==", "shared-ext")); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, "the job", func() bool { return len(r.results()) == 1 })
		for id, wantGone := range map[string]bool{"gone-1": true, "gone-2": true, "kept": false} {
			st, _ := db.Load(ctx, id)
			if st.Tombstoned != wantGone || st.Exists == wantGone {
				t.Errorf("%s: exists %v tombstoned %v, want removed %v", id, st.Exists, st.Tombstoned, wantGone)
			}
		}
	})
}
