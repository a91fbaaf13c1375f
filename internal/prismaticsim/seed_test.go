package prismaticsim

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/testutil"
)

func TestSeedIsDeterministic(t *testing.T) {
	ids := func(seed uint64) []string {
		sim, err := New(Options{Seed: seed, Customers: 5})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, in := range sim.Instances() {
			snap, err := sim.Instance(in.ID)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, in.ID, in.CustomerID, in.IntegrationID)
			for _, c := range snap.Config {
				out = append(out, c.ID)
			}
		}
		for _, c := range sim.CustomerConnections() {
			out = append(out, c.ID)
		}
		out = append(out, sim.DemoInstanceID())
		return out
	}
	a, b, c := ids(42), ids(42), ids(43)
	if !slices.Equal(a, b) {
		t.Error("two sims with seed 42 have different ids")
	}
	if slices.Equal(a, c) {
		t.Error("seeds 42 and 43 gave the same ids")
	}
	if len(slices.Compact(slices.Sorted(slices.Values(a[:len(a)-1])))) < len(a)/2 {
		t.Error("ids repeat too much")
	}
}

func TestSeedLayout(t *testing.T) {
	sim, err := New(Options{Customers: 12})
	if err != nil {
		t.Fatal(err)
	}
	all := sim.Instances()
	var system, customer int
	names := map[string]bool{}
	for _, in := range all {
		if in.IsSystem {
			system++
		} else {
			customer++
		}
		names[in.Name] = true
		if in.DeployedVersion != 1 || in.NeedsDeploy || !in.Enabled {
			t.Errorf("%s not deployed once: %+v", in.Name, in)
		}
	}
	if system != 3 || customer != 36 {
		t.Errorf("%d system and %d customer instances, want 3 and 36", system, customer)
	}
	for _, n := range []string{"Acme Corp - Salesforce Sync", "Cyberdyne Systems - HubSpot Contacts", "Customer 012 - Slack Alerts"} {
		if !names[n] {
			t.Errorf("no instance %q", n)
		}
	}
	demo, err := sim.Instance(sim.DemoInstanceID())
	if err != nil || demo.Name != "Acme Corp - Salesforce Sync" || demo.CustomerExternalID != "acme-001" {
		t.Fatalf("demo = %+v, %v", demo, err)
	}
	var connections int
	for _, c := range demo.Config {
		if c.DataType == "CONNECTION" {
			connections++
		}
	}
	if len(demo.Config) < 3 || len(demo.Config) > 6 || connections == 0 {
		t.Errorf("demo has %d variables, %d connections", len(demo.Config), connections)
	}
	ccvs := sim.CustomerConnections()
	if len(ccvs) != 6 {
		t.Errorf("%d customer connections, want one per odd-numbered customer (6)", len(ccvs))
	}
	for _, c := range ccvs {
		if len(c.InstanceIDs) != 2 {
			t.Errorf("connection %s used by %d instances, want 2", c.ID, len(c.InstanceIDs))
		}
	}
}

func TestDeployedTruth(t *testing.T) {
	clock := testutil.NewClock()
	sim, err := New(Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	demo := sim.DemoInstanceID()
	before, _ := sim.Deployed(demo)
	clock.Advance(time.Minute)
	mustOp(t)(sim.SetConfig(demo, "syncFrequency", "*/5 * * * *"))
	mustOp(t)(sim.RefreshConnection(demo, "salesforceConnection"))
	mustOp(t)(sim.Disable(demo))

	stored, _ := sim.Instance(demo)
	dep, _ := sim.Deployed(demo)
	if v, _ := stored.Value("syncFrequency"); *v.Value != "*/5 * * * *" {
		t.Errorf("stored syncFrequency = %s", *v.Value)
	}
	if v, _ := dep.Value("syncFrequency"); *v.Value != "0 * * * *" {
		t.Errorf("deployed syncFrequency = %s, want the value before the change", *v.Value)
	}
	// The connection refresh and the disable apply without a deploy.
	sf, _ := dep.Value("salesforceConnection")
	oldSf, _ := before.Value("salesforceConnection")
	if !sf.LastSuccessfulRefreshAt.After(oldSf.LastSuccessfulRefreshAt) || !sf.RefreshAt.After(sf.LastSuccessfulRefreshAt) {
		t.Errorf("refresh times %v / %v", sf.LastSuccessfulRefreshAt, sf.RefreshAt)
	}
	if dep.Enabled || dep.DeployedVersion != 1 || !stored.NeedsDeploy || !stored.UpdatedAt.After(before.UpdatedAt) {
		t.Errorf("deployed %+v / stored %+v", dep.InstanceSummary, stored.InstanceSummary)
	}
	res := mustOp(t)(sim.Deploy(demo))
	dep, _ = sim.Deployed(demo)
	if v, _ := dep.Value("syncFrequency"); *v.Value != "*/5 * * * *" || dep.DeployedVersion != 2 || res.Instance.NeedsDeploy ||
		!dep.LastDeployedAt.Equal(res.Webhooks[0].Timestamp) {
		t.Errorf("after deploy: %+v", dep)
	}
}

// TestConcurrentUse runs GraphQL requests, admin operations and reads at
// once, for the race detector.
func TestConcurrentUse(t *testing.T) {
	rc := newReceiver(t, testSecret)
	sim, srv := newTestSim(t, Options{WebhookURL: rc.srv.URL, WebhookSecret: testSecret,
		Faults: Faults{WebhookDuplicateRate: 0.3, WebhookReorderRate: 0.3, ReorderDelay: time.Millisecond}})
	ids := sim.Instances()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 20 {
				id := ids[(w*20+i)%len(ids)].ID
				switch i % 4 {
				case 0:
					if err := tryQuery(srv.URL, `query($id: ID!) { instance(id: $id) { id configVariables { nodes { value status } } } }`, map[string]any{"id": id}); err != nil {
						t.Error(err) // not Fatal: this is not the test's goroutine
					}
				case 1:
					if _, err := sim.Enable(id); err != nil {
						t.Error(err)
					}
				case 2:
					if _, err := sim.Deploy(id); err != nil {
						t.Error(err)
					}
				case 3:
					_ = sim.Stats()
					_ = sim.Events()
					_, _ = sim.Deployed(id)
				}
			}
		})
	}
	wg.Wait()
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	st := sim.Stats()
	if st.WebhookEvents != 40 || st.WebhooksSent != st.WebhookEvents+st.WebhooksDuplicated || len(rc.received()) != int(st.WebhooksSent) {
		t.Errorf("stats = %+v, received %d", st, len(rc.received()))
	}
}
