package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prismcache/prismcache/internal/webhook"
)

// Freshness settings: 1,000 deploys/s need 1,000 fetches/s, so the rate
// limit sits well above that, and with 20 ms per fetch about 20 fetches are
// in flight at once, so 64 workers leave room for bursts.
const (
	freshRate       = 1000
	freshDaemonRate = 4000
	freshWorkers    = 256
)

// FreshnessResults is the freshness scenario's JSON payload.
type FreshnessResults struct {
	Instances   int     `json:"instances"`
	Rate        float64 `json:"rate_per_s"`
	SimLatency  float64 `json:"sim_latency_ms"`
	DaemonFlags string  `json:"daemon_flags"`
	Deploys     Load    `json:"deploys"`
	// Visible is the time from each webhook's ack to the entry holding the
	// deployed version it announced, as seen on the change feed.
	Visible LatencyJSON `json:"ack_to_visible"`
	// BeforeAck counts deploys whose entry was already fresh when the ack
	// arrived (a fetch queued by an earlier deploy saw it first); they
	// count as 0.
	BeforeAck int64 `json:"visible_before_ack"`
	// Missing counts deploys never seen within the wait.
	Missing int `json:"missing"`
	// CPU is each process's CPU time per deploy, in µs (the harness
	// process serves the simulator).
	CPU map[string]float64 `json:"cpu_us_per_deploy"`
}

type pendingDeploy struct {
	version   int
	ack, seen time.Time
}

// deployTracker pairs acks with the change feed.
type deployTracker struct {
	mu   sync.Mutex
	byID map[string][]*pendingDeploy
	all  []*pendingDeploy
}

func (t *deployTracker) add(id string, version int) *pendingDeploy {
	p := &pendingDeploy{version: version}
	t.mu.Lock()
	t.byID[id] = append(t.byID[id], p)
	t.all = append(t.all, p)
	t.mu.Unlock()
	return p
}

func (t *deployTracker) acked(p *pendingDeploy, at time.Time) {
	t.mu.Lock()
	p.ack = at
	t.mu.Unlock()
}

func (t *deployTracker) seen(id string, version int, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rest := t.byID[id][:0]
	for _, p := range t.byID[id] {
		if p.version <= version {
			p.seen = at
			continue
		}
		rest = append(rest, p)
	}
	t.byID[id] = rest
}

func (t *deployTracker) outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, ps := range t.byID {
		n += len(ps)
	}
	return n
}

// Freshness deploys instances in the simulator at 1,000/s, sends each
// deploy's webhook itself, and measures from the ack to the moment the
// entry holds the new deployedVersion.
func (e *Env) Freshness(ctx context.Context) (Report, error) {
	rep := Report{Scenario: "freshness", Quick: e.Quick}
	sim, err := StartSim(pick(e, 1000, 200), simLatency)
	if err != nil {
		return rep, err
	}
	defer sim.Close()
	d, _, err := e.Fill(ctx, sim, freshDaemonRate, freshWorkers)
	if err != nil {
		return rep, err
	}
	defer d.Close()
	host, _ := HostOf(d.URL)
	ids := sim.CustomerInstances()
	tr := &deployTracker{byID: map[string][]*pendingDeploy{}}
	w, err := e.Watch(ctx, tr.seen)
	if err != nil {
		return rep, err
	}
	defer w.Close()

	sg := &Signer{Secret: []byte(benchSecret)}
	var seq atomic.Int64
	job := func(buf []byte) ([]byte, func(int, []byte, time.Time), error) {
		in := ids[int(seq.Add(1)-1)%len(ids)]
		res, err := sim.Deploy(in.ID)
		if err != nil {
			return nil, nil, err
		}
		if len(res.Webhooks) != 1 {
			return nil, nil, errors.New("deploy sent no webhook")
		}
		p := tr.add(in.ID, res.Instance.DeployedVersion)
		done := func(status int, _ []byte, at time.Time) {
			if status/100 == 2 {
				tr.acked(p, at)
			}
		}
		return sg.Request(buf, host, webhook.InstanceDeployed, res.Webhooks[0].Body), done, nil
	}
	res := FreshnessResults{Instances: len(ids), Rate: freshRate, SimLatency: float64(simLatency) / 1e6,
		DaemonFlags: fmt.Sprintf("--prismatic-rate %d --workers %d --log-level warn", freshDaemonRate, freshWorkers)}
	cpu := StartCPU(map[string]int{"daemon": d.PID(), "redis": e.Redis.PID(), "harness+sim": os.Getpid()})
	res.Deploys = OpenLoop(ctx, host, freshRate, pick(e, 10*time.Second, 2*time.Second), openConns, job)
	res.Deploys.Target = "daemon"
	deadline := time.Now().Add(10 * time.Second)
	for tr.outstanding() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	res.CPU = cpu.PerOp(res.Deploys.OK)
	var lat []time.Duration
	tr.mu.Lock()
	for _, p := range tr.all {
		switch {
		case p.ack.IsZero():
		case p.seen.IsZero():
			res.Missing++
		case p.seen.Before(p.ack):
			res.BeforeAck++
			lat = append(lat, 0)
		default:
			lat = append(lat, p.seen.Sub(p.ack))
		}
	}
	tr.mu.Unlock()
	vis := Summarize(lat)
	res.Visible = vis.JSON()
	e.Logf("freshness: %d deploys at %d/s (ack p99 %s, failed %d): ack→visible p50 %s p99 %s max %s; before ack %d, missing %d; CPU µs/deploy %v",
		res.Deploys.OK, freshRate, FmtDur(res.Deploys.lat.P99), res.Deploys.Failed, FmtDur(vis.P50), FmtDur(vis.P99), FmtDur(vis.Max), res.BeforeAck, res.Missing, roundMap(res.CPU))
	rep.Results = res
	limit := simLatency + 10*time.Millisecond
	rep.Figures = []Row{{Scenario: "freshness", Figure: fmt.Sprintf("ack → entry fresh, p99 (p50) at %d deploys/s", freshRate),
		Value:     FmtDur(vis.P99) + " (" + FmtDur(vis.P50) + ")",
		Reference: "simulator latency " + FmtDur(simLatency),
		Target:    NewTarget(float64(vis.P99)/1e6, "<=", float64(limit)/1e6, "≤ "+FmtDur(limit)+" (latency + 10 ms)")}}
	if res.Missing > 0 || res.Deploys.Failed > 0 {
		rep.Error = fmt.Sprintf("%d deploys never became visible, %d webhooks failed (last: %s)", res.Missing, res.Deploys.Failed, res.Deploys.LastError)
	}
	return rep, nil
}
