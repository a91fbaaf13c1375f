package prismaticsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

// BenchmarkGetInstance measures the simulator's own cost for the daemon's
// main query, without a network, so benchmarks of the daemon know how much
// of their time is the simulator's.
func BenchmarkGetInstance(b *testing.B) {
	sim, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	doc, err := os.ReadFile("../../graphql/operations/instance.graphql")
	if err != nil {
		b.Fatal(err)
	}
	body, err := json.Marshal(map[string]any{
		"query": string(doc), "operationName": "GetInstance",
		"variables": map[string]any{"id": sim.DemoInstanceID(), "first": 100},
	})
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
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
