package refresh_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/prismaticsim"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/testutil"
)

// simRig is a simulator served over HTTP, a GraphQL client for it, and a
// daemon's store, work set and workers on one key prefix.
type simRig struct {
	sim   *prismaticsim.Sim
	api   *graphql.Client
	store *store.Store
	ws    *refresh.WorkSet
	pool  *refresh.Pool
}

func newSim(t *testing.T, opts prismaticsim.Options) (*prismaticsim.Sim, string) {
	t.Helper()
	sim, err := prismaticsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

// newSimRig starts workers under prefix against the simulator at url.
func newSimRig(t *testing.T, b redistest.Backend, sim *prismaticsim.Sim, url, prefix string, fetcher refresh.Fetcher) *simRig {
	t.Helper()
	return newSimRigLimited(t, b, sim, url, prefix, fetcher, nil)
}

// newSimRigLimited is newSimRig with the client's requests paced by lim.
func newSimRigLimited(t *testing.T, b redistest.Backend, sim *prismaticsim.Sim, url, prefix string, fetcher refresh.Fetcher, lim graphql.Limiter) *simRig {
	t.Helper()
	api, err := graphql.New(graphql.Options{URL: url, Token: prismaticsim.DefaultAccessToken, Limiter: lim})
	if err != nil {
		t.Fatal(err)
	}
	r := &simRig{sim: sim, api: api, store: store.New(b.Client, store.Options{Prefix: prefix})}
	r.ws = refresh.NewWorkSet(b.Client, r.store.Keys(), refresh.WorkSetOptions{Lease: 5 * time.Second})
	if fetcher == nil {
		fetcher = api
	}
	r.pool = refresh.NewPool(r.ws, r.store, fetcher, refresh.PoolOptions{Workers: 4, PollInterval: 10 * time.Millisecond,
		Resolver: refresh.IndexResolver{Store: r.store, API: api}})
	if err := r.pool.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.pool.Close(ctx)
	})
	return r
}

func (r *simRig) reconciler() *refresh.Reconciler {
	return &refresh.Reconciler{API: r.api, Store: r.store, Work: r.ws}
}

// drain waits until the work set has nothing queued or in flight.
func (r *simRig) drain(t *testing.T) {
	t.Helper()
	testutil.Eventually(t, "the work set to drain", func() bool {
		s, err := r.ws.Stats(context.Background())
		return err == nil && s.Queued == 0 && s.Leased == 0
	})
}

func (r *simRig) entry(t *testing.T, id string) store.State {
	t.Helper()
	st, err := r.store.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// seedVariety gives the simulator's demo fleet what makes a rebuild hard:
// instances with undeployed changes, disabled ones, broken shared and own
// connections, instances with more config variables than a page carries
// (one of them with undeployed changes too) and one never deployed.
func seedVariety(t *testing.T, sim *prismaticsim.Sim) {
	t.Helper()
	must := func(_ prismaticsim.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var customer []prismaticsim.InstanceSummary
	for _, in := range sim.Instances() {
		if !in.IsSystem {
			customer = append(customer, in)
		}
	}
	keyOf := map[string]string{"Salesforce Sync": "batchSize", "Slack Alerts": "channel", "HubSpot Contacts": "listId"}
	valueOf := map[string]string{"Salesforce Sync": "500", "Slack Alerts": "#changed", "HubSpot Contacts": "changed"}
	for i, in := range customer {
		switch i % 5 {
		case 1: // undeployed changes
			must(sim.SetConfig(in.ID, keyOf[in.IntegrationName], valueOf[in.IntegrationName]))
		case 2:
			must(sim.Disable(in.ID))
		case 3: // changed, deployed, changed again
			must(sim.SetConfig(in.ID, keyOf[in.IntegrationName], valueOf[in.IntegrationName]))
			must(sim.Deploy(in.ID))
			must(sim.SetConfig(in.ID, keyOf[in.IntegrationName], "1"+valueOf[in.IntegrationName][1:]))
		}
	}
	must(sim.BreakConnection(customer[0].ID, "slackConnection"))   // acme's shared Slack connection
	must(sim.BreakConnection(customer[2].ID, "hubspotConnection")) // an instance's own
	must(sim.CreateInstance(prismaticsim.NewInstance{Customer: "acme-001", Integration: "Slack Alerts", Name: "Big", ExtraVariables: 150, Deploy: true}))
	big, err := sim.CreateInstance(prismaticsim.NewInstance{Customer: "globex-002", Integration: "Slack Alerts", Name: "Big, changed", ExtraVariables: 120, Deploy: true})
	must(big, err)
	must(sim.SetConfig(big.Instance.ID, "channel", "#big"))
	must(sim.CreateInstance(prismaticsim.NewInstance{Customer: "acme-001", Integration: "HubSpot Contacts", Name: "Never deployed"}))
}

// comparable is what an app sees of an entry, without the times that
// depend on when it was written.
func comparable(t *testing.T, st store.State) string {
	t.Helper()
	e := st.Entry
	b, err := json.Marshal(map[string]any{"exists": st.Exists, "doc": e.Doc, "stale": e.Stale, "reason": e.StaleReason,
		"enabled": e.Enabled, "version": e.DeployedVersion, "error": e.LastError, "staleSinceSet": !e.StaleSince.IsZero()})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRebuildFromPagesWritesWhatFetchesWould: on the same seeded data, a
// rebuild from an empty cache by the reconciler (pages, and fetches only
// for what a page cannot settle) leaves every entry and every lookup row
// exactly as fetching each instance on its own does.
func TestRebuildFromPagesWritesWhatFetchesWould(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		sim, url := newSim(t, prismaticsim.Options{Seed: 7, Customers: 12})
		seedVariety(t, sim)
		paged := newSimRig(t, b, sim, url, b.Prefix+"paged:", nil)
		// Paced, so that fetches waiting together go in batches too: what
		// they write must be the same.
		fetched := newSimRigLimited(t, b, sim, url, b.Prefix+"fetched:", nil, rate.NewLimiter(50, 1))

		sim.ResetStats()
		rep, err := paged.reconciler().RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		paged.drain(t)
		st := sim.Stats()
		// 36 customer instances and 3 new ones fit in one page; the two with
		// more config variables than a page carries are fetched (two
		// requests each), nothing else is.
		byOp := st.GraphQLRequestsByOperation
		if rep.Pages != 1 || rep.Written != 36 || rep.Queued != 2 || byOp["GetInstance"] != 2 || byOp["GetInstanceConfigPage"] != 2 || st.GraphQLRequests != 5 {
			t.Errorf("rebuild: %+v; requests %v; want 1 page, 36 written, 2 queued and fetched", rep, byOp)
		}

		var ids []string
		for _, in := range sim.Instances() {
			if !in.IsSystem {
				ids = append(ids, in.ID)
			}
		}
		sim.ResetStats()
		if err := fetched.ws.Add(ctx, time.Time{}, ids...); err != nil {
			t.Fatal(err)
		}
		fetched.drain(t)
		t.Logf("fetching %d instances one by one took requests %v", len(ids), sim.Stats().GraphQLRequestsByOperation)

		undeployed, cached := 0, 0
		for _, id := range ids {
			p, f := paged.entry(t, id), fetched.entry(t, id)
			if got, want := comparable(t, p), comparable(t, f); got != want {
				t.Errorf("instance %s\nfrom pages:   %s\nfrom fetches: %s", id, got, want)
			}
			if p.Exists {
				cached++
			}
			if p.Entry.StaleReason == cache.StaleUndeployed {
				undeployed++
			}
		}
		if undeployed == 0 || cached != len(ids)-1 {
			t.Errorf("%d entries cached of %d, %d undeployed_config: the seeding did not give what it should", cached, len(ids), undeployed)
		}
		for _, ext := range []string{"acme-001", "globex-002", "initech-003"} {
			p, err1 := paged.store.ByCustomer(ctx, ext)
			f, err2 := fetched.store.ByCustomer(ctx, ext)
			if err1 != nil || err2 != nil || !sameIDs(p, f) {
				t.Errorf("lookup of %s: pages %d entries (%v), fetches %d (%v)", ext, len(p), err1, len(f), err2)
			}
		}
	})
}

func sameIDs(a, b []cache.Entry) bool {
	ids := func(es []cache.Entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Doc.ID)
		}
		sort.Strings(out)
		return out
	}
	x, y := ids(a), ids(b)
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// TestAPassOverAnUnchangedFleetWritesNothing: a second pass finds every
// entry as its page shows it, and writes (and announces) nothing.
func TestAPassOverAnUnchangedFleetWritesNothing(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		sim, url := newSim(t, prismaticsim.Options{Seed: 7, Customers: 6})
		seedVariety(t, sim)
		r := newSimRig(t, b, sim, url, b.Prefix, nil)
		if _, err := r.reconciler().RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		r.drain(t)
		sub := b.Client.Subscribe(ctx, r.store.Keys().Events())
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		rep, err := r.reconciler().RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// All unchanged, but the two a page cannot settle (whose markers
		// agree: not queued) and the one never deployed.
		if rep.Written != 0 || rep.Queued != 0 || rep.Unchanged != rep.Listed-3 {
			t.Errorf("second pass: %+v; want nothing written or queued, all but 3 unchanged", rep)
		}
		select {
		case m := <-sub.Channel():
			t.Errorf("the second pass announced a change: %s", m.Payload)
		case <-time.After(100 * time.Millisecond):
		}
	})
}

// hookedLister asks the API for a page, then runs between before giving
// the page to the reconciler: whatever between does happens after the
// page's request was answered and before its writes.
type hookedLister struct {
	api     *graphql.Client
	between func()
}

func (l hookedLister) ListInstances(ctx context.Context, after string) (graphql.ListPage, error) {
	page, err := l.api.ListInstances(ctx, after)
	if err == nil && l.between != nil {
		l.between()
	}
	return page, err
}

// status is the status of a connection variable in a cached entry.
func status(t *testing.T, r *simRig, id, key string) string {
	t.Helper()
	st := r.entry(t, id)
	if st.Entry.Doc == nil {
		t.Fatalf("instance %s is not cached", id)
	}
	return st.Entry.Doc.Config[key].Status
}

// ownConnection returns an instance of the demo fleet with a connection of
// its own (not shared), and that connection's key.
func ownConnection(t *testing.T, sim *prismaticsim.Sim) (string, string) {
	t.Helper()
	for _, in := range sim.Instances() {
		if !in.IsSystem && in.IntegrationName == "HubSpot Contacts" {
			return in.ID, "hubspotConnection"
		}
	}
	t.Fatal("no HubSpot instance in the demo fleet")
	return "", ""
}

// TestAPageOlderThanAFetchDoesNotOverwriteIt: a page's request is answered;
// then a connection breaks, and a webhook-driven fetch writes the instance
// with the broken status; the page, which shows the connection as it was,
// arrives last and must not bring the old status back.
func TestAPageOlderThanAFetchDoesNotOverwriteIt(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		sim, url := newSim(t, prismaticsim.Options{Seed: 7, Customers: 2})
		r := newSimRig(t, b, sim, url, b.Prefix, nil)
		if _, err := r.reconciler().RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		id, key := ownConnection(t, sim)
		rec := r.reconciler()
		rec.API = hookedLister{api: r.api, between: func() {
			if _, err := sim.BreakConnection(id, key); err != nil {
				t.Error(err)
			}
			if err := r.ws.Add(ctx, time.Time{}, id); err != nil {
				t.Error(err)
			}
			testutil.Eventually(t, "the fetch to write the broken connection", func() bool { return status(t, r, id, key) == "ERROR" })
		}}
		if _, err := rec.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if got := status(t, r, id, key); got != "ERROR" {
			t.Errorf("after the older page: %s = %s, want ERROR (the fetch's, newer)", key, got)
		}
	})
}

// blockingFetcher fetches through the API, then holds the answer until
// released, so that a fetch that started early can write late.
type blockingFetcher struct {
	api     *graphql.Client
	fetched chan struct{}
	release chan struct{}
}

func (f blockingFetcher) FetchInstance(ctx context.Context, id string) (*graphql.Instance, error) {
	inst, err := f.api.FetchInstance(ctx, id)
	f.fetched <- struct{}{}
	<-f.release
	return inst, err
}

// TestAFetchOlderThanAPageDoesNotOverwriteIt: a fetch reads the instance,
// the connection breaks, a pass writes the broken status from its page, and
// then the fetch — started before the page's request — tries to write what
// it read: it must not.
func TestAFetchOlderThanAPageDoesNotOverwriteIt(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		sim, url := newSim(t, prismaticsim.Options{Seed: 7, Customers: 2})
		api, err := graphql.New(graphql.Options{URL: url, Token: prismaticsim.DefaultAccessToken})
		if err != nil {
			t.Fatal(err)
		}
		f := blockingFetcher{api: api, fetched: make(chan struct{}, 1), release: make(chan struct{})}
		r := newSimRig(t, b, sim, url, b.Prefix, f)
		id, key := ownConnection(t, sim)
		if err := r.ws.Add(ctx, time.Time{}, id); err != nil {
			t.Fatal(err)
		}
		<-f.fetched // the fetch has read the connection, ACTIVE
		if _, err := sim.BreakConnection(id, key); err != nil {
			t.Fatal(err)
		}
		rep, err := r.reconciler().RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := status(t, r, id, key); got != "ERROR" || rep.Written == 0 {
			t.Fatalf("after the pass: %s = %s (written %d), want ERROR from the page", key, got, rep.Written)
		}
		close(f.release)
		r.drain(t)
		if got := status(t, r, id, key); got != "ERROR" {
			t.Errorf("after the older fetch wrote: %s = %s, want ERROR (the page's, newer)", key, got)
		}
	})
}

// TestAnUpdateAfterThePageKeepsTheEntryStale: instance.updated arrives
// after a page's request was answered (showing no undeployed change): the
// page's write must not clear the stale mark.
func TestAnUpdateAfterThePageKeepsTheEntryStale(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		sim, url := newSim(t, prismaticsim.Options{Seed: 7, Customers: 2})
		r := newSimRig(t, b, sim, url, b.Prefix, nil)
		if _, err := r.reconciler().RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		id, _ := ownConnection(t, sim)
		rec := r.reconciler()
		rec.Force = true // a write however the entry compares
		rec.API = hookedLister{api: r.api, between: func() {
			if _, err := sim.SetConfig(id, "listId", "changed"); err != nil {
				t.Error(err)
			}
			// What the intake does with the instance.updated it sends.
			_, err := r.store.Update(ctx, id, store.UpdateOptions{}, func(st store.State) *store.Mutation {
				e := st.Entry
				e.Stale, e.StaleReason, e.StaleSince, e.UpdatedEventAt = true, cache.StaleUpdated, time.Now(), time.Now()
				return &store.Mutation{Kind: cache.ChangeStale, Entry: e, KeepDoc: true}
			})
			if err != nil {
				t.Error(err)
			}
		}}
		if _, err := rec.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if e := r.entry(t, id).Entry; !e.Stale || e.StaleReason != cache.StaleUpdated {
			t.Errorf("after the page: stale %v (%s), want still stale: updated", e.Stale, e.StaleReason)
		}
	})
}

// TestAPassAdaptsToAnAPIThatRefusesLargePages: the simulator refuses every
// request asking for more than 20 records; a pass still caches every
// instance right, at a page size under the limit, with a few refused
// requests rather than one per page — and the instance with more config
// variables than such a page carries is fetched in pages of that size.
func TestAPassAdaptsToAnAPIThatRefusesLargePages(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		sim, url := newSim(t, prismaticsim.Options{Seed: 7, Customers: 20, Faults: prismaticsim.Faults{PageSizeLimit: 20}})
		big, err := sim.CreateInstance(prismaticsim.NewInstance{Customer: "acme-001", Integration: "Slack Alerts", ExtraVariables: 45, Deploy: true})
		if err != nil {
			t.Fatal(err)
		}
		r := newSimRig(t, b, sim, url, b.Prefix, nil)
		sim.ResetStats()
		rep, err := r.reconciler().RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r.drain(t)
		st := sim.Stats()
		t.Logf("pass at a page limit of 20: page size %d, %d pages, %d requests refused, requests %v", rep.PageSize, rep.Pages, st.TooComplex, st.GraphQLRequestsByOperation)
		if rep.PageSize > 20 || rep.PageSize < 10 || rep.Listed != 61 || st.TooComplex == 0 || st.TooComplex > 4 {
			t.Errorf("pass: page size %d, listed %d, %d requests refused as too complex; want a size of 10–20, 61 listed, a few refused",
				rep.PageSize, rep.Listed, st.TooComplex)
		}
		for _, in := range sim.Instances() {
			if in.IsSystem {
				continue
			}
			want, err := sim.Deployed(in.ID)
			if err != nil {
				t.Fatal(err)
			}
			e := r.entry(t, in.ID).Entry
			if e.Doc == nil || e.DeployedVersion != want.DeployedVersion || len(e.Doc.Config) != len(want.Config) || e.Stale {
				t.Errorf("instance %s cached as %+v, want version %d with %d config variables", in.ID, e, want.DeployedVersion, len(want.Config))
			}
		}
		if n := len(r.entry(t, big.Instance.ID).Entry.Doc.Config); n != 45+5 {
			t.Errorf("the big instance has %d config variables cached, want 50", n)
		}
	})
}

// TestASharedConnectionIsReadInPages: a credential event on a reusable
// customer connection re-reads the instances using it through the
// connection's listing — one request for all of them, no fetch each — and
// writes the changed status.
func TestASharedConnectionIsReadInPages(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		sim, url := newSim(t, prismaticsim.Options{Seed: 7, Customers: 2})
		r := newSimRig(t, b, sim, url, b.Prefix, nil)
		if _, err := r.reconciler().RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		conns := sim.CustomerConnections()
		if len(conns) == 0 || len(conns[0].InstanceIDs) < 2 {
			t.Fatalf("the demo fleet has no shared connection: %+v", conns)
		}
		cc := conns[0]
		if _, err := sim.BreakConnection(cc.InstanceIDs[0], "slackConnection"); err != nil {
			t.Fatal(err)
		}
		sim.ResetStats()
		if err := r.ws.Add(ctx, time.Time{}, refresh.ConnectionJob(cc.ID)); err != nil {
			t.Fatal(err)
		}
		r.drain(t)
		for _, id := range cc.InstanceIDs {
			if got := status(t, r, id, "slackConnection"); got != "ERROR" {
				t.Errorf("instance %s: slackConnection = %s, want ERROR", id, got)
			}
		}
		if st := sim.Stats(); st.GraphQLRequests != 1 || st.InstanceFetches != 0 {
			t.Errorf("the connection's %d instances took %d requests (%v), %d instance fetches; want one page",
				len(cc.InstanceIDs), st.GraphQLRequests, st.GraphQLRequestsByOperation, st.InstanceFetches)
		}
	})
}
