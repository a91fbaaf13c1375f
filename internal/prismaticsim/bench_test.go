package prismaticsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The benchmarks measure the simulator's own cost for the daemon's queries,
// without a network, so benchmarks of the daemon know how much of their
// time is the simulator's.

// BenchmarkGetInstance is the daemon's main query on the demo instance (six
// config variables).
func BenchmarkGetInstance(b *testing.B) {
	sim := mustBenchSim(b, Options{})
	benchOp(b, sim, "GetInstance", map[string]any{"id": sim.DemoInstanceID(), "first": 100})
}

// BenchmarkGetInstance100Vars is the same query on an instance with a full
// first page of 100 config variables.
func BenchmarkGetInstance100Vars(b *testing.B) {
	sim := mustBenchSim(b, Options{})
	res, err := sim.CreateInstance(NewInstance{Customer: "acme-001", Integration: "Salesforce Sync", ExtraVariables: 94, Deploy: true})
	if err != nil {
		b.Fatal(err)
	}
	benchOp(b, sim, "GetInstance", map[string]any{"id": res.Instance.ID, "first": 100})
}

// BenchmarkListInstances is the reconciler's page of 100 instances, out of
// 300.
func BenchmarkListInstances(b *testing.B) {
	sim := mustBenchSim(b, Options{Customers: 100})
	benchOp(b, sim, "ListInstances", map[string]any{"first": 100})
}

func mustBenchSim(b *testing.B, opts Options) *Sim {
	b.Helper()
	sim, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sim.Close() })
	return sim
}

func benchOp(b *testing.B, sim *Sim, op string, vars map[string]any) {
	b.Helper()
	body, err := json.Marshal(map[string]any{"query": daemonOps(b), "operationName": op, "variables": vars})
	if err != nil {
		b.Fatal(err)
	}
	h := sim.Handler()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/api", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+DefaultAccessToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || bytes.Contains(rec.Body.Bytes(), []byte(`"errors"`)) {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
