package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prismcache/prismcache/internal/prismaticsim"
)

// StormRun is one storm of deploys.
type StormRun struct {
	Instances int `json:"instances"`
	Daemons   int `json:"daemons"`
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
	// PeakPerSecond is the most requests the simulator counted in one
	// second of its clock, MeanPerSecond the mean over the seconds from the
	// first request to the last.
	PeakPerSecond int64   `json:"peak_requests_per_s"`
	MeanPerSecond float64 `json:"mean_requests_per_s"`
	// Missing counts instances whose new version never showed.
	Missing int `json:"missing"`
}

// StormResults is the storm scenario's JSON payload.
type StormResults struct {
	DaemonFlags string `json:"daemon_flags"`
	// One is the storm against one daemon, Two against two replicas
	// sharing the rate.
	One StormRun `json:"one_replica"`
	Two StormRun `json:"two_replicas"`
}

// Storm deploys every cached instance at once — a new version rolled out
// to every customer — sends each deploy's webhook, and measures the
// requests and the time until every entry shows its new version, at the
// daemon's defaults: a storm of fetches of different instances, all due at
// once, which is what fetching several instances per request helps. Then
// the same against two replicas, to show they share --prismatic-rate: the
// simulator counts the requests in each second.
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
	res := StormResults{DaemonFlags: fmt.Sprintf("--prismatic-rate %d --workers %d (the defaults)", rebuildRate, rebuildWorkers)}
	var daemons []*Daemon
	defer func() {
		for _, d := range daemons {
			d.Close()
		}
	}()
	for n := 1; n <= 2; n++ {
		d, err := e.Daemon(ctx, sim, rebuildRate, rebuildWorkers)
		if err != nil {
			return rep, err
		}
		daemons = append(daemons, d)
		run, err := e.stormOnce(ctx, sim, daemons)
		if err != nil {
			return rep, err
		}
		if n == 1 {
			res.One = run
		} else {
			res.Two = run
		}
	}
	rep.Results = res
	one, two := res.One, res.Two
	rep.Figures = []Row{
		{Scenario: "storm", Figure: fmt.Sprintf("%d different instances deployed at once, default rate: requests / time to every entry new", one.Instances),
			Value: fmt.Sprintf("%d / %.1f s", one.Requests, one.Took), Reference: fmt.Sprintf("one fetch each: %d / %.1f s", one.Instances, float64(one.Instances)/rebuildRate)},
		{Scenario: "storm", Figure: fmt.Sprintf("the same storm on two replicas with --prismatic-rate %d: requests a second, most in one second (mean)", rebuildRate),
			Value:     fmt.Sprintf("%d (%.1f)", two.PeakPerSecond, two.MeanPerSecond),
			Reference: fmt.Sprintf("%d requests in %.1f s", two.Requests, two.Took),
			Target:    NewTarget(float64(two.PeakPerSecond), "<=", rebuildRate, fmt.Sprintf("≤ %d/s together", rebuildRate))},
	}
	if one.Missing+two.Missing > 0 {
		rep.Error = fmt.Sprintf("%d entries never showed their new version", one.Missing+two.Missing)
	}
	return rep, nil
}

// stormOnce deploys every customer instance of sim and sends each webhook
// to the daemons in turn, then waits until every entry shows its new
// version.
func (e *Env) stormOnce(ctx context.Context, sim *Sim, daemons []*Daemon) (StormRun, error) {
	ids := sim.CustomerInstances()
	run := StormRun{Instances: len(ids), Daemons: len(daemons)}
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
		return run, err
	}
	defer w.Close()
	sg := &Signer{Secret: []byte(benchSecret)}
	conns := make([]*Conn, len(daemons))
	hosts := make([]string, len(daemons))
	for i, d := range daemons {
		if hosts[i], err = HostOf(d.URL); err != nil {
			return run, err
		}
		conns[i] = NewConn(hosts[i])
		defer conns[i].Close()
	}
	sim.ResetStats()
	start := time.Now()
	var buf []byte
	for i, in := range ids {
		r, err := sim.Deploy(in.ID)
		if err != nil {
			return run, err
		}
		mu.Lock()
		want[in.ID] = r.Instance.DeployedVersion
		mu.Unlock()
		ev := r.Webhooks[0]
		k := i % len(daemons)
		buf = sg.Request(buf[:0], hosts[k], ev.Type, ev.Body)
		if status, body, err := conns[k].Do(buf); err != nil || status/100 != 2 {
			return run, fmt.Errorf("webhook: %d %s %v", status, body, err)
		}
	}
	run.Sent = time.Since(start).Seconds()
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
	case <-ctx.Done():
		return run, ctx.Err()
	}
	mu.Lock()
	run.Took, run.Missing = last.Sub(start).Seconds(), len(ids)-len(seen)
	mu.Unlock()
	st := sim.Stats()
	run.Requests, run.ByOp, run.Fetches = st.GraphQLRequests, st.GraphQLRequestsByOperation, st.InstanceFetches
	for _, s := range st.APIRequestsPerSecond {
		run.PeakPerSecond = max(run.PeakPerSecond, s.Requests)
	}
	if n := len(st.APIRequestsPerSecond); n > 0 {
		run.MeanPerSecond = float64(st.APIRequests) / float64(n)
	}
	e.Logf("storm on %d daemon(s): %d deploys sent in %.2fs; every entry new after %.2fs; %d requests %v, %d instance fetches; per second: peak %d, mean %.1f over %d s %v; missing %d",
		len(daemons), run.Instances, run.Sent, run.Took, run.Requests, run.ByOp, run.Fetches, run.PeakPerSecond, run.MeanPerSecond,
		len(st.APIRequestsPerSecond), perSecond(st.APIRequestsPerSecond), run.Missing)
	return run, nil
}

// perSecond lists the request counts of a series, for the log.
func perSecond(s []prismaticsim.SecondCount) []int64 {
	out := make([]int64, len(s))
	for i, c := range s {
		out[i] = c.Requests
	}
	return out
}
