package bench

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// StormResults is the storm scenario's JSON payload.
type StormResults struct {
	Instances   int    `json:"instances"`
	DaemonFlags string `json:"daemon_flags"`
	// Sent is how long sending the deploys' webhooks took.
	Sent float64 `json:"send_s"`
	// Took is from the first webhook to the last entry showing its new
	// deployedVersion (the change feed).
	Took float64 `json:"took_s"`
	// Requests are the GraphQL requests the simulator counted, in all and
	// by operation; Fetches its instance(id:) resolutions.
	Requests int64            `json:"api_requests"`
	ByOp     map[string]int64 `json:"api_requests_by_operation"`
	Fetches  int64            `json:"instance_fetches"`
	// Missing counts instances whose new version never showed.
	Missing int `json:"missing"`
}

// Storm deploys every cached instance at once — a new version rolled out
// to every customer — sends each deploy's webhook, and measures the
// requests and the time until every entry shows its new version, at the
// daemon's defaults: a storm of fetches of different instances, all due at
// once, which is what fetching several instances per request would help.
func (e *Env) Storm(ctx context.Context) (Report, error) {
	rep := Report{Scenario: "storm", Quick: e.Quick}
	sim, err := StartSim(pick(e, 167, 67), simLatency)
	if err != nil {
		return rep, err
	}
	defer sim.Close()
	if err := e.Prefill(ctx, sim); err != nil {
		return rep, err
	}
	d, err := e.Daemon(ctx, sim, rebuildRate, rebuildWorkers)
	if err != nil {
		return rep, err
	}
	defer d.Close()
	host, err := HostOf(d.URL)
	if err != nil {
		return rep, err
	}
	ids := sim.CustomerInstances()
	res := StormResults{Instances: len(ids), DaemonFlags: fmt.Sprintf("--prismatic-rate %d --workers %d (the defaults)", rebuildRate, rebuildWorkers)}
	var (
		mu   sync.Mutex
		want = map[string]int{}
		seen = map[string]bool{}
		last time.Time
		all  = make(chan struct{})
	)
	w, err := e.Watch(ctx, func(id string, v int, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if wv, ok := want[id]; ok && v >= wv && !seen[id] {
			seen[id], last = true, at
			if len(seen) == len(ids) {
				close(all)
			}
		}
	})
	if err != nil {
		return rep, err
	}
	defer w.Close()
	sim.ResetStats()
	sg := &Signer{Secret: []byte(benchSecret)}
	conn := NewConn(host)
	defer conn.Close()
	start := time.Now()
	var buf []byte
	for _, in := range ids {
		r, err := sim.Deploy(in.ID)
		if err != nil {
			return rep, err
		}
		mu.Lock()
		want[in.ID] = r.Instance.DeployedVersion
		mu.Unlock()
		ev := r.Webhooks[0]
		buf = sg.Request(buf[:0], host, ev.Type, ev.Body)
		if status, body, err := conn.Do(buf); err != nil || status/100 != 2 {
			return rep, fmt.Errorf("webhook: %d %s %v", status, body, err)
		}
	}
	res.Sent = time.Since(start).Seconds()
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
	case <-ctx.Done():
		return rep, ctx.Err()
	}
	mu.Lock()
	res.Took, res.Missing = last.Sub(start).Seconds(), len(ids)-len(seen)
	mu.Unlock()
	st := sim.Stats()
	res.Requests, res.ByOp, res.Fetches = st.GraphQLRequests, st.GraphQLRequestsByOperation, st.InstanceFetches
	e.Logf("storm: %d deploys sent in %.2fs; every entry new after %.2fs; %d requests %v, %d instance fetches; missing %d",
		res.Instances, res.Sent, res.Took, res.Requests, res.ByOp, res.Fetches, res.Missing)
	rep.Results = res
	rep.Figures = []Row{{Scenario: "storm", Figure: fmt.Sprintf("%d different instances deployed at once, default rate: requests / time to every entry new", res.Instances),
		Value: fmt.Sprintf("%d / %.1f s", res.Requests, res.Took), Reference: fmt.Sprintf("one fetch each: %d / %.1f s", res.Instances, float64(res.Instances)/rebuildRate)}}
	if res.Missing > 0 {
		rep.Error = fmt.Sprintf("%d entries never showed their new version", res.Missing)
	}
	return rep, nil
}
