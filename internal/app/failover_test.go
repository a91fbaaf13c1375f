package app_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/prismaticsim"
	"github.com/prismcache/prismcache/internal/redistest"
)

// simNoRetries is the simulator of these suites: each webhook is sent once,
// so a test sees every answer the daemon gives.
func simNoRetries() *prismaticsim.Options {
	return &prismaticsim.Options{Seed: 7, Customers: 3, WebhookRetries: -1}
}

// TestRefusalWhenRedisStops stops the daemon's only Redis: each webhook is
// answered 503, so that its sender retries later. It logs how long each
// answer took (run with -v; the figure is measured here, not asserted).
func TestRefusalWhenRedisStops(t *testing.T) {
	srv := redistest.StartServer(t)
	b := redistest.Backend{Name: "redis", Client: srv.Client(), URL: srv.URL(), Prefix: "prismcache:"}
	h := startE2E(t, b, e2eOptions{sim: simNoRetries(), ownClient: true})
	ids := h.sim.Instances()
	srv.Kill()
	var took []time.Duration
	for i := range 5 {
		start := time.Now()
		res, err := h.sim.Deploy(ids[i%len(ids)].ID)
		if err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
		if rec := res.Webhooks[0]; rec.Status != http.StatusServiceUnavailable {
			t.Fatalf("with Redis stopped a webhook was answered %d %s, want 503", rec.Status, rec.Error)
		}
	}
	t.Logf("with Redis stopped, each 503 took %v", took)
}
