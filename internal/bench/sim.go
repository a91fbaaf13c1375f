package bench

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/prismcache/prismcache/internal/prismaticsim"
)

// simToken is the bearer token the daemon shows the simulator.
const simToken = prismaticsim.DefaultAccessToken

// Sim is the Prismatic simulator served by the harness process on a port of
// its own. It sends no webhooks: scenarios take the exact body of each event
// from the operation's result, sign it and send it themselves, so they know
// when each was acknowledged.
type Sim struct {
	*prismaticsim.Sim
	URL string
	srv *http.Server
}

// StartSim seeds a simulator with customers × 3 instances and serves it.
func StartSim(customers int, latency time.Duration) (*Sim, error) {
	ps, err := prismaticsim.New(prismaticsim.Options{Seed: 7, Customers: customers, Faults: prismaticsim.Faults{Latency: latency}})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Sim{Sim: ps, URL: "http://" + ln.Addr().String(),
		srv: &http.Server{Handler: ps.Handler(), ReadHeaderTimeout: 5 * time.Second}}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops serving.
func (s *Sim) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	_ = s.Sim.Close()
}

// CustomerInstances lists the deployed instances of customers (system
// instances left out): those the daemon caches.
func (s *Sim) CustomerInstances() []prismaticsim.InstanceSummary {
	var out []prismaticsim.InstanceSummary
	for _, in := range s.Instances() {
		if !in.IsSystem && in.DeployedVersion > 0 {
			out = append(out, in)
		}
	}
	return out
}
