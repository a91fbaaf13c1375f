package app_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/prismaticsim"
	"github.com/prismcache/prismcache/internal/redistest"
)

// countingTransport counts the GraphQL requests one replica sends.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == "/api" {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestTwoReplicasShareTheOrganisationsRate: two replicas with
// --prismatic-rate 10 work off a storm of deploys together, and the
// simulator — the API — sees no more than 10 requests a second from the
// two of them, where each on its own limit would have sent up to 20.
func TestTwoReplicasShareTheOrganisationsRate(t *testing.T) {
	if testing.Short() {
		t.Skip("a storm at 10 requests a second takes seconds")
	}
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		const rate = 10
		at10 := func(c *config.Config) { c.PrismaticRate = rate }
		first, second := &countingTransport{}, &countingTransport{}
		// Enough instances that the storm, fetched up to ten a request,
		// still lasts seconds at 10 requests a second.
		h := startE2E(t, b, e2eOptions{sim: &prismaticsim.Options{Seed: 7, Customers: 100}, configure: at10, transport: first})
		startReplica(t, b, h.app.Config.PrismaticURL, e2eOptions{configure: at10, transport: second})
		var ids []string
		for _, in := range h.sim.Instances() {
			if !in.IsSystem {
				ids = append(ids, in.ID)
			}
		}
		first.n.Store(0)
		second.n.Store(0)
		h.sim.ResetStats()
		want := map[string]int{}
		for _, id := range ids {
			res := delivered(t, "Deploy")(h.sim.Deploy(id))
			want[id] = res.Instance.DeployedVersion
		}
		deadline := time.Now().Add(time.Minute)
		for id, v := range want {
			for {
				if e, err := h.store.Load(context.Background(), id); err == nil && e.Entry.DeployedVersion == v {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("instance %s never showed version %d", id, v)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		st := h.sim.Stats()
		secs := st.APIRequestsPerSecond
		var total, peak int64
		for _, s := range secs {
			total += s.Requests
			peak = max(peak, s.Requests)
		}
		t.Logf("%d requests over %d seconds (peak %d in one second); replicas sent %d and %d",
			total, len(secs), peak, first.n.Load(), second.n.Load())
		// Requests spaced 1/rate apart fit rate × (seconds spanned) + 1.
		if limit := int64(rate*len(secs) + 1); total > limit {
			t.Errorf("%d requests in %d seconds: more than the organisation's %d/s", total, len(secs), rate)
		}
		if total < 3*rate {
			t.Errorf("%d requests for %d deploys: too few to tell the rate", total, len(ids))
		}
		if first.n.Load() == 0 || second.n.Load() == 0 {
			t.Errorf("requests per replica %d and %d: both must have worked the storm", first.n.Load(), second.n.Load())
		}
	})
}
