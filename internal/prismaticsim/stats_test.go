package prismaticsim

import (
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/testutil"
)

func TestStatsByOperationAndSecond(t *testing.T) {
	clock := testutil.NewClock()
	t0 := clock.Now()
	sim, srv := newTestSim(t, Options{Now: clock.Now})
	named := `query Page($first: Int!) { instances(first: $first) { totalCount } }`
	for range 3 {
		mustQuery(t, srv.URL, named, map[string]any{"first": 2})
	}
	clock.Advance(1500 * time.Millisecond)
	mustQuery(t, srv.URL, `{ instances(first: 1) { totalCount } }`, nil)
	mustQuery(t, srv.URL, `{ __typename }`, nil)
	// A document that does not parse is counted by the operationName sent.
	if _, resp := doGraphQL(t, srv.URL, DefaultAccessToken, map[string]any{"query": "query Broken {", "operationName": "Broken"}); len(resp.Errors) == 0 {
		t.Fatalf("a broken document answered %s", resp.raw)
	}
	clock.Advance(2 * time.Second)
	if status, _ := postGraphQL(t, srv.URL, "wrong-token", named, nil); status != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", status)
	}

	st := sim.Stats()
	if want := map[string]int64{"Page": 3, "(anonymous)": 2, "Broken": 1}; !maps.Equal(st.GraphQLRequestsByOperation, want) {
		t.Errorf("by operation = %v, want %v", st.GraphQLRequestsByOperation, want)
	}
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	want := []SecondCount{{sec(0), 3}, {sec(1), 3}, {sec(2), 0}, {sec(3), 1}}
	if !slices.Equal(st.APIRequestsPerSecond, want) {
		t.Errorf("per second = %v, want %v", st.APIRequestsPerSecond, want)
	}
	if r := st.APIRequestRate(sec(0), sec(4)); r != 7.0/4 {
		t.Errorf("rate over 4 s = %v, want 1.75", r)
	}
	if r := st.APIRequestRate(sec(1), sec(2).Add(500*time.Millisecond)); r != 3 {
		t.Errorf("rate over the second second = %v, want 3", r)
	}
	if r := st.APIRequestRate(sec(2), sec(2)); r != 0 {
		t.Errorf("rate over nothing = %v", r)
	}

	// Seconds older than StatsWindow fall out of the series.
	clock.Advance(StatsWindow)
	mustQuery(t, srv.URL, named, map[string]any{"first": 1})
	st = sim.Stats()
	if len(st.APIRequestsPerSecond) != 1 || st.APIRequestsPerSecond[0].Requests != 1 || st.APIRequests != 8 {
		t.Errorf("after the window: %d requests, series %v", st.APIRequests, st.APIRequestsPerSecond)
	}

	_, body := adminDo(t, srv.URL, "GET", "/admin/stats", nil)
	if ops, _ := body["graphqlRequestsByOperation"].(map[string]any); ops["Page"] != float64(4) {
		t.Errorf("admin stats by operation = %v", body["graphqlRequestsByOperation"])
	}
	if series, _ := body["apiRequestsPerSecond"].([]any); len(series) != 1 || path(t, series, 0, "requests") != float64(1) {
		t.Errorf("admin stats per second = %v", body["apiRequestsPerSecond"])
	}

	sim.ResetStats()
	st = sim.Stats()
	if st.APIRequests != 0 || len(st.APIRequestsPerSecond) != 0 || len(st.GraphQLRequestsByOperation) != 0 {
		t.Errorf("after reset: %+v", st)
	}
}
