package app_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/redistest"
)

// TestReadyzShowsDetailsOnlyToTheAdmin: anonymous callers of /readyz get a
// status word; the reason (which can name addresses and errors) is for the
// admin token and the log.
func TestReadyzShowsDetailsOnlyToTheAdmin(t *testing.T) {
	b := redistest.Mini(t)
	logs := &lockedBuffer{}
	h := startObserved(t, b, logs, nil)
	if code, ok := get(t, h.app.URL()+"/readyz", ""); code != 200 {
		t.Fatalf("/readyz after the first sync: %d %s", code, ok)
	}
	b.Mini.FlushAll() // the sync marker is gone: not ready, with a reason
	code, anon := get(t, h.app.URL()+"/readyz", "")
	var body map[string]string
	if err := json.Unmarshal([]byte(anon), &body); err != nil {
		t.Fatalf("/readyz: %v: %s", err, anon)
	}
	if code != 503 || body["status"] != "not_synced" || len(body) != 1 {
		t.Fatalf("anonymous /readyz: %d %s, want 503 with the status word alone", code, anon)
	}
	code, admin := get(t, h.app.URL()+"/readyz", observedAdmin)
	if code != 503 || !strings.Contains(admin, "sync marker disappeared") {
		t.Fatalf("/readyz with the admin token: %d %s, want the reason", code, admin)
	}
	if _, wrong := get(t, h.app.URL()+"/readyz", "not-the-admin-token-123"); strings.Contains(wrong, "detail") {
		t.Fatalf("/readyz with a wrong token shows the reason: %s", wrong)
	}
	if out := logs.String(); !strings.Contains(out, `"msg":"readiness"`) || !strings.Contains(out, "sync marker disappeared") {
		t.Fatalf("the reason is not in the log:\n%s", out)
	}
}

// TestInsecureModeIsVisible: with --insecure-skip-signature the daemon says
// so in /status, in a metric and in a WARN line; with a secret it says the
// opposite in the first two.
func TestInsecureModeIsVisible(t *testing.T) {
	for _, insecure := range []bool{true, false} {
		logs := &lockedBuffer{}
		reg := prometheus.NewRegistry()
		h := startE2E(t, redistest.Mini(t), e2eOptions{
			log: slog.New(slog.NewJSONHandler(logs, nil)), registry: reg,
			configure: func(c *config.Config) {
				if insecure {
					// An empty secret is no secret: the simulator sends
					// unsigned webhooks, the daemon checks none.
					c.WebhookSecrets, c.InsecureSkipSignature = []string{""}, true
				}
			},
		})
		_, status := get(t, h.app.URL()+"/status", "")
		var s struct {
			Insecure *bool `json:"insecureSkipSignature"`
		}
		if err := json.Unmarshal([]byte(status), &s); err != nil || s.Insecure == nil || *s.Insecure != insecure {
			t.Fatalf("insecure=%v: /status says %v (%v): %s", insecure, s.Insecure, err, status)
		}
		if got := gaugeValue(t, reg, "prismcache_insecure_skip_signature"); got != map[bool]float64{true: 1, false: 0}[insecure] {
			t.Fatalf("insecure=%v: prismcache_insecure_skip_signature = %v", insecure, got)
		}
		if got := gaugeValue(t, reg, "prismcache_intake_max_bytes"); got != float64(config.DefaultIntakeMaxBytes) {
			t.Fatalf("prismcache_intake_max_bytes = %v, want the default budget %d", got, config.DefaultIntakeMaxBytes)
		}
		warned := strings.Contains(logs.String(), "signatures are NOT checked")
		if warned != insecure {
			t.Fatalf("insecure=%v: WARN at start-up %v", insecure, warned)
		}
	}
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
