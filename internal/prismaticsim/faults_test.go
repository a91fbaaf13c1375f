package prismaticsim

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAPIFaults(t *testing.T) {
	tests := []struct {
		name       string
		faults     Faults
		wantStatus int
		retryAfter string
	}{
		{"every request rate limited", Faults{RateLimitRate: 1, RetryAfter: 1500 * time.Millisecond}, http.StatusTooManyRequests, "2"},
		{"default Retry-After", Faults{RateLimitRate: 1}, http.StatusTooManyRequests, "1"},
		{"every request fails", Faults{ErrorRate: 1}, http.StatusInternalServerError, ""},
		{"no faults", Faults{}, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, srv := newTestSim(t, Options{Faults: tt.faults})
			for range 3 {
				status, resp := postGraphQL(t, srv.URL, DefaultAccessToken, `{ instances(first: 1) { totalCount } }`, nil)
				if status != tt.wantStatus {
					t.Fatalf("status %d, want %d: %s", status, tt.wantStatus, resp.raw)
				}
			}
			resp, err := http.DefaultClient.Do(withAuth(t, srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
			st := sim.Stats()
			if st.APIRequests != 4 || (tt.wantStatus == 429) != (st.RateLimited == 4) || (tt.wantStatus == 500) != (st.ServerErrors == 4) {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

func withAuth(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/api", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+DefaultAccessToken)
	return req
}

func TestLatencyAndRuntimeFaultChanges(t *testing.T) {
	_, srv := newTestSim(t, Options{Faults: Faults{Latency: 30 * time.Millisecond}})
	start := time.Now()
	mustQuery(t, srv.URL, `{ instances(first: 1) { totalCount } }`, nil)
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("request took %v, want at least the 30ms latency", d)
	}
	status, body := adminDo(t, srv.URL, "PUT", "/admin/faults", map[string]any{"rateLimitRate": 1, "retryAfter": "3s", "latency": "0s"})
	if status != http.StatusOK || body["rateLimitRate"] != float64(1) || body["retryAfter"] != "3s" || body["latency"] != "0s" {
		t.Fatalf("PUT faults = %d %v", status, body)
	}
	if status, _ := postGraphQL(t, srv.URL, DefaultAccessToken, `{ instances { totalCount } }`, nil); status != http.StatusTooManyRequests {
		t.Errorf("after PUT: status %d, want 429", status)
	}
	// A partial PUT keeps the other fields.
	_, body = adminDo(t, srv.URL, "PUT", "/admin/faults", map[string]any{"errorRate": 0.5})
	if body["rateLimitRate"] != float64(1) || body["errorRate"] != 0.5 {
		t.Errorf("partial PUT = %v", body)
	}
	_, body = adminDo(t, srv.URL, "GET", "/admin/faults", nil)
	if body["retryAfter"] != "3s" {
		t.Errorf("GET faults = %v", body)
	}
}

func TestWebhookFaults(t *testing.T) {
	t.Run("duplicate", func(t *testing.T) {
		rc := newReceiver(t, testSecret)
		sim, _ := newTestSim(t, Options{WebhookURL: rc.srv.URL, WebhookSecret: testSecret, Faults: Faults{WebhookDuplicateRate: 1}})
		demo := sim.DemoInstanceID()
		mustOp(t)(sim.Deploy(demo))
		mustOp(t)(sim.Disable(demo))
		got := rc.waitFor(t, "four deliveries", func(got []webhook) bool { return len(got) == 4 })
		want := []string{"instance.deployed", "instance.deployed", "instance.disabled", "instance.disabled"}
		for i, wh := range got {
			if wh.event != want[i] {
				t.Errorf("delivery %d = %s, want %s", i, wh.event, want[i])
			}
		}
		if string(got[0].raw) != string(got[1].raw) {
			t.Error("a duplicate must be byte-identical")
		}
		if ev := sim.Events(); !ev[0].Duplicated || ev[0].Attempts != 2 || sim.Stats().WebhooksSent != 4 {
			t.Errorf("event %+v, stats %+v", ev[0], sim.Stats())
		}
	})
	t.Run("drop", func(t *testing.T) {
		rc := newReceiver(t, testSecret)
		sim, _ := newTestSim(t, Options{WebhookURL: rc.srv.URL, WebhookSecret: testSecret, Faults: Faults{WebhookDropRate: 1}})
		res := mustOp(t)(sim.Deploy(sim.DemoInstanceID()))
		mustOp(t)(sim.Enable(sim.DemoInstanceID()))
		// The first attempt is made before the call returns, so had it not
		// been dropped it would already be here.
		if got := rc.received(); len(got) != 0 {
			t.Errorf("received %d webhooks, want none", len(got))
		}
		if res.Webhooks[0].State != StateDropped || sim.Stats().WebhooksDropped != 2 || sim.Stats().WebhookAttempts != 0 {
			t.Errorf("record %+v, stats %+v", res.Webhooks[0], sim.Stats())
		}
	})
	t.Run("reorder", func(t *testing.T) {
		rc := newReceiver(t, "")
		sim, _ := newTestSim(t, Options{WebhookURL: rc.srv.URL, Faults: Faults{WebhookReorderRate: 1, ReorderDelay: time.Hour}})
		demo := sim.DemoInstanceID()
		first := mustOp(t)(sim.SetConfig(demo, "batchSize", "1"))
		if first.Webhooks[0].State != StateHeld {
			t.Fatalf("first = %+v, want held", first.Webhooks[0])
		}
		mustOp(t)(sim.Deploy(demo))
		got := rc.waitFor(t, "two deliveries", func(got []webhook) bool { return len(got) == 2 })
		if got[0].event != "instance.deployed" || got[1].event != "instance.updated" {
			t.Errorf("order %s, %s; want deployed before updated", got[0].event, got[1].event)
		}
		// A third is held again and sent by Close.
		mustOp(t)(sim.Disable(demo))
		if err := sim.Close(); err != nil {
			t.Fatal(err)
		}
		if got := rc.received(); len(got) != 3 || got[2].event != "instance.disabled" {
			t.Errorf("after Close: %d deliveries", len(got))
		}
	})
	t.Run("retry until the receiver recovers", func(t *testing.T) {
		rc := newReceiver(t, "")
		rc.setStatus(http.StatusServiceUnavailable)
		sim, _ := newTestSim(t, Options{WebhookURL: rc.srv.URL, WebhookRetries: 50, WebhookBackoff: time.Millisecond})
		res := mustOp(t)(sim.Deploy(sim.DemoInstanceID()))
		if w := res.Webhooks[0]; w.State != StateRetrying || w.Status != http.StatusServiceUnavailable {
			t.Fatalf("first attempt = %+v", w)
		}
		rc.setStatus(http.StatusOK)
		rc.waitFor(t, "a retried delivery", func(got []webhook) bool { return len(got) == 1 })
		if err := sim.Close(); err != nil {
			t.Fatal(err)
		}
		if ev := sim.Events()[0]; ev.State != StateDelivered || ev.Attempts < 2 {
			t.Errorf("event = %+v", ev)
		}
	})
	t.Run("give up after the retries", func(t *testing.T) {
		rc := newReceiver(t, "")
		rc.setStatus(http.StatusInternalServerError)
		sim, _ := newTestSim(t, Options{WebhookURL: rc.srv.URL, WebhookRetries: 2, WebhookBackoff: time.Millisecond})
		mustOp(t)(sim.Deploy(sim.DemoInstanceID()))
		if err := sim.Close(); err != nil {
			t.Fatal(err)
		}
		if ev := sim.Events()[0]; ev.State != StateFailed || ev.Attempts != 3 || sim.Stats().WebhooksFailed != 1 {
			t.Errorf("event = %+v, stats %+v", ev, sim.Stats())
		}
	})
}

// mustOp unwraps an operation's result.
func mustOp(t *testing.T) func(Result, error) Result {
	return func(r Result, err error) Result {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

func TestFaultsAreReproducible(t *testing.T) {
	draw := func() []int {
		sim, err := New(Options{Seed: 7, Faults: Faults{ErrorRate: 0.5}})
		if err != nil {
			t.Fatal(err)
		}
		var out []int
		for range 20 {
			out = append(out, sim.faults.forAPI().status)
		}
		return out
	}
	a, b := draw(), draw()
	var fails int
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("run 1 %v\nrun 2 %v", a, b)
		}
		if a[i] == 500 {
			fails++
		}
	}
	if fails == 0 || fails == 20 {
		t.Errorf("%d of 20 failed at rate 0.5", fails)
	}
}

func TestPageSizeLimitFault(t *testing.T) {
	sim, srv := newTestSim(t, Options{Faults: Faults{PageSizeLimit: 50}})
	listOps := daemonOps(t)
	demo := sim.DemoInstanceID()
	refused := []struct {
		name, query, op, field string
		vars                   map[string]any
	}{
		{"the reconciler's page of 100", listOps, "ListInstances", "instances", map[string]any{"first": 100}},
		{"a literal first", `{ instances(first: 51) { totalCount } }`, "", "instances", nil},
		{"last", `{ instances(last: 80) { totalCount } }`, "", "instances", nil},
		{"a connection's default page of 100", `{ customerConfigVariables { totalCount } }`, "", "customerConfigVariables", nil},
		{"inside a fragment", `query($id: ID!) { instance(id: $id) { ...F } } fragment F on Instance { configVariables(first: 60) { totalCount } }`, "", "configVariables", map[string]any{"id": demo}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			before := sim.Stats()
			status, resp := doGraphQL(t, srv.URL, DefaultAccessToken, map[string]any{"query": tt.query, "operationName": tt.op, "variables": tt.vars})
			if status != http.StatusOK || len(resp.Errors) != 1 || strings.Contains(string(resp.raw), `"data"`) {
				t.Fatalf("status %d, %s; want 200 with one error and no data", status, resp.raw)
			}
			msg := fmt.Sprint(resp.Errors[0]["message"])
			if !strings.Contains(msg, "too complex") || !strings.Contains(msg, "`"+tt.field+"`") || !strings.Contains(msg, "limit of 50") ||
				path(t, resp.Errors[0], "extensions", "code") != TooComplexCode {
				t.Errorf("error = %v", resp.Errors[0])
			}
			after := sim.Stats()
			if after.TooComplex != before.TooComplex+1 || after.InstanceFetches != before.InstanceFetches {
				t.Errorf("stats: tooComplex %d → %d, instance fetches %d → %d (nothing may run)", before.TooComplex, after.TooComplex, before.InstanceFetches, after.InstanceFetches)
			}
		})
	}
	// Pages within the limit answer, whichever way they are asked for.
	status, resp := postGraphQLOp(t, srv.URL, listOps, "ListInstances", map[string]any{"first": 50})
	if status != http.StatusOK || len(resp.Errors) > 0 || len(path(t, resp.Data, "instances", "nodes").([]any)) != 9 {
		t.Errorf("first: 50 gave %d %s", status, resp.raw)
	}
	mustQuery(t, srv.URL, `query($id: ID!) { instance(id: $id) { configVariables(first: 50) { totalCount } } }`, map[string]any{"id": demo})

	// The limit changes at run time; zero lifts it.
	status, body := adminDo(t, srv.URL, "PUT", "/admin/faults", map[string]any{"pageSizeLimit": 0})
	if status != http.StatusOK || body["pageSizeLimit"] != float64(0) {
		t.Fatalf("PUT pageSizeLimit = %d %v", status, body)
	}
	mustQuery(t, srv.URL, `{ instances(first: 100) { totalCount } }`, nil)
	if status, body := adminDo(t, srv.URL, "PUT", "/admin/faults", map[string]any{"pageSizeLimit": -1}); status != http.StatusBadRequest {
		t.Errorf("a negative limit: %d %v", status, body)
	}
	if err := sim.SetFaults(Faults{PageSizeLimit: 10}); err != nil {
		t.Fatal(err)
	}
	if _, resp := postGraphQL(t, srv.URL, DefaultAccessToken, `{ instances(first: 11) { totalCount } }`, nil); len(resp.Errors) != 1 {
		t.Errorf("after SetFaults: %s", resp.raw)
	}
}
