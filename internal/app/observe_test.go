package app_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/prismaticsim"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/webhook"
)

// lockedBuffer collects log output from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const (
	observedSecret  = "observed-webhook-secret-1"
	observedRefresh = "observed-refresh-token-2"
	observedAdmin   = "observed-admin-token-3456789"
)

// startObserved starts the harness with a daemon that authenticates with a
// refresh token, logs JSON at debug level into logs, and has an admin token.
func startObserved(t *testing.T, b redistest.Backend, logs io.Writer, reg *prometheus.Registry) *harness {
	t.Helper()
	return startE2E(t, b, e2eOptions{
		sim:      &prismaticsim.Options{Seed: 11, Customers: 2, RefreshToken: observedRefresh, AccessTokens: []string{"unused-static-token"}},
		log:      slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		registry: reg,
		configure: func(cfg *config.Config) {
			cfg.WebhookSecrets = []string{observedSecret}
			cfg.PrismaticToken, cfg.PrismaticRefreshToken = "", observedRefresh
			cfg.AdminToken, cfg.LogLevel = observedAdmin, "debug"
		},
	})
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestLogsNeverShowSecrets runs a full session — sync, webhooks (good and
// badly signed), fetches with a refresh-token exchange, admin calls — and
// greps every log line for every secret, token and signature used.
func TestLogsNeverShowSecrets(t *testing.T) {
	logs := &lockedBuffer{}
	h := startObserved(t, redistest.Mini(t), logs, nil)
	id := h.sim.DemoInstanceID()
	key, _, next := plainVar(t, h.sim, id)
	if _, err := h.sim.SetConfig(id, key, next); err != nil {
		t.Fatal(err)
	}
	if _, err := h.sim.Deploy(id); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "the deploy", func() bool { return value(h.entry(t, id), key) == next })
	body := []byte(`{"event_type":"instance.updated","timestamp":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","instance":{"id":"` + id + `"}}`)
	badSig := webhook.SignatureValue("attacker-guess", body)
	goodSig := webhook.SignatureValue(observedSecret, body)
	for _, sig := range []string{badSig, goodSig} {
		req, _ := http.NewRequest(http.MethodPost, h.app.URL()+"/webhooks/prismatic", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Webhook-Signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get(t, h.app.URL()+"/v1/instances/"+id, observedAdmin)
	get(t, h.app.URL()+"/v1/instances/"+id, "wrong-admin-token-000000")

	out := logs.String()
	if !strings.Contains(out, `"msg":"webhook"`) || !strings.Contains(out, `"msg":"fetch"`) || !strings.Contains(out, `"msg":"reconcile"`) {
		t.Fatalf("the run did not log webhooks, fetches and a reconcile pass:\n%s", out)
	}
	for name, secret := range map[string]string{
		"webhook secret": observedSecret, "refresh token": observedRefresh, "admin token": observedAdmin,
		"bad signature": strings.TrimPrefix(badSig, "sha256="), "good signature": strings.TrimPrefix(goodSig, "sha256="),
		"wrong admin token": "wrong-admin-token-000000", "credential": prismaticsim.SecretMarker,
	} {
		if strings.Contains(out, secret) {
			t.Errorf("the logs show the %s", name)
		}
	}
	// The access tokens the simulator issued are JWTs: no log line may carry one.
	if strings.Contains(out, "eyJ") {
		t.Error("the logs show something that looks like a JWT")
	}
}

// TestMetricsExistAndMove gathers the daemon's registry before and after a
// change and a deploy, and checks every family is there and the ones that
// count that traffic moved.
func TestMetricsExistAndMove(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := startObserved(t, redistest.Mini(t), io.Discard, reg)
	before := gather(t, reg)
	for _, name := range []string{
		"prismcache_webhooks_total", "prismcache_webhook_duration_seconds", "prismcache_fetches_total",
		"prismcache_fetch_duration_seconds", "prismcache_fetch_retries_total", "prismcache_graphql_requests_total",
		"prismcache_graphql_request_duration_seconds", "prismcache_rate_limiter_wait_seconds_total",
		"prismcache_reconcile_runs_total", "prismcache_reconcile_duration_seconds", "prismcache_reconcile_instances_total",
		"prismcache_redis_errors_total", "prismcache_build_info", "prismcache_work_failing", "prismcache_entries_fetch_failed",
		"prismcache_repair_pending", "prismcache_repairs_total", "prismcache_redis_eviction_unsafe",
		"prismcache_work_queued", "prismcache_work_due", "prismcache_work_in_flight", "prismcache_work_oldest_due_age_seconds",
		"prismcache_redis_pipelines_total", "prismcache_redis_batched_commands_total",
	} {
		if _, ok := before[name]; !ok {
			t.Errorf("metric family %s is missing", name)
		}
	}
	id := h.sim.DemoInstanceID()
	key, _, next := plainVar(t, h.sim, id)
	if _, err := h.sim.SetConfig(id, key, next); err != nil {
		t.Fatal(err)
	}
	if _, err := h.sim.Deploy(id); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ family, label, value string }{
		{"prismcache_webhooks_total", "event", "instance.updated"},
		{"prismcache_webhooks_total", "event", "instance.deployed"},
		{"prismcache_fetches_total", "outcome", "refreshed"},
		{"prismcache_graphql_requests_total", "operation", "GetInstance"},
		{"prismcache_redis_batched_commands_total", "", ""},
	} {
		// The counters move once the work is done, just after its effect
		// shows in Redis: wait for them, they must move.
		h.waitFor(t, fmt.Sprintf("%s{%s=%q} to move", c.family, c.label, c.value), func() bool {
			return sum(gather(t, reg)[c.family], c.label, c.value) > sum(before[c.family], c.label, c.value)
		})
	}
	after := gather(t, reg)
	if sum(after["prismcache_reconcile_runs_total"], "result", "ok") < 1 {
		t.Error("the first reconcile pass was not counted")
	}
	// Entries by state are counted by a census, taken again after every
	// reconcile pass: run one more.
	req, _ := http.NewRequest(http.MethodPost, h.app.URL()+"/v1/resync", nil)
	req.Header.Set("Authorization", "Bearer "+observedAdmin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h.waitFor(t, "the resync to be counted", func() bool {
		return sum(gather(t, reg)["prismcache_reconcile_runs_total"], "result", "ok") >= 2
	})
	h.waitFor(t, "a census after the pass to count 6 fresh entries", func() bool {
		fams := gather(t, reg)
		_, ok := fams["prismcache_oldest_entry_age_seconds"]
		return ok && sum(fams["prismcache_entries"], "state", "fresh") >= 6
	})
	// /metrics serves the same registry.
	if code, body := get(t, h.app.URL()+"/metrics", ""); code != 200 || !strings.Contains(body, "prismcache_webhooks_total") {
		t.Fatalf("/metrics: %d", code)
	}
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// sum adds the values of a family's series whose label has value.
func sum(f *dto.MetricFamily, label, value string) float64 {
	if f == nil {
		return 0
	}
	total := 0.0
	for _, m := range f.GetMetric() {
		match := label == "" // no label: every series
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				match = true
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

// TestHealthReadinessAndStatus checks the three health routes.
func TestHealthReadinessAndStatus(t *testing.T) {
	b := redistest.Mini(t)
	h := startObserved(t, b, io.Discard, nil)
	if code, body := get(t, h.app.URL()+"/healthz", ""); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	if code, body := get(t, h.app.URL()+"/readyz", ""); code != 200 || !strings.Contains(body, `"status": "ok"`) {
		t.Fatalf("/readyz after the first sync: %d %s", code, body)
	}
	code, body := get(t, h.app.URL()+"/status", "")
	if code != 200 || !strings.Contains(body, `"redis"`) || !strings.Contains(body, `"prismatic"`) || !strings.Contains(body, `"lastReconcile"`) || !strings.Contains(body, `"entries"`) {
		t.Fatalf("/status: %d %s", code, body)
	}
	// Flush Redis: the marker is gone, so the daemon is not ready until the
	// resync it starts completes, and says why.
	b.Mini.FlushAll()
	code, body = get(t, h.app.URL()+"/readyz", "")
	if code != 503 || !strings.Contains(body, "not_synced") {
		t.Fatalf("/readyz after a flush: %d %s", code, body)
	}
	h.waitFor(t, "the resync after the flush", func() bool {
		code, _ := get(t, h.app.URL()+"/readyz", "")
		return code == 200 && h.entry(t, h.sim.DemoInstanceID()).Doc != nil
	})
	// Prismatic failing: still ready, but degraded.
	h.sim.SetFaults(prismaticsim.Faults{ErrorRate: 1})
	req, _ := http.NewRequest(http.MethodPost, h.app.URL()+"/v1/instances/"+h.sim.DemoInstanceID()+"/refresh?timeout=5s", nil)
	req.Header.Set("Authorization", "Bearer "+observedAdmin)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	if code, body := get(t, h.app.URL()+"/readyz", ""); code != 200 || !strings.Contains(body, "degraded") {
		t.Fatalf("/readyz with Prismatic failing: %d %s", code, body)
	}
	// Instance ids in /status only for the admin.
	h.sim.SetFaults(prismaticsim.Faults{})
	_, anon := get(t, h.app.URL()+"/status", "")
	if strings.Contains(anon, "SW5zdGFuY2U6") || strings.Contains(anon, "injected") {
		t.Errorf("/status shows instance ids or error texts without the admin token:\n%s", anon)
	}
	if _, admin := get(t, h.app.URL()+"/status", observedAdmin); !strings.Contains(admin, `"prismatic"`) {
		t.Errorf("/status for the admin:\n%s", admin)
	}
}
