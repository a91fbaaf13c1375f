package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prismcache/prismcache/internal/prismaticsim"
)

// Economy settings. The target's run uses the daemon's default API quota
// (--prismatic-rate 10): the storm is far more than it can fetch, which is
// when coalescing must work. A second run with the quota the resync scenario
// uses (100/s) shows what the daemon does with spare quota: it fetches again
// whenever a new deploy arrives after the last fetch.
const (
	economyRate      = 10
	economyRateAmple = 100
	economyWorkers   = 8
)

// EconomyResults is the economy scenario's JSON payload.
type EconomyResults struct {
	Instances   int            `json:"instances"`
	Events      int64          `json:"events"`
	ByType      map[string]int `json:"events_by_type"`
	Seconds     float64        `json:"storm_seconds"`
	DaemonFlags string         `json:"daemon_flags"`
	Storm       Load           `json:"storm"`
	// Drain is how long after the storm's last ack the work set took to
	// empty.
	Drain float64 `json:"drain_s"`
	// DrainCPU is the CPU the daemon and Redis used while the work set
	// drained, in ms per second: what waiting on the quota costs.
	DrainCPU map[string]float64 `json:"drain_cpu_ms_per_s"`
	// Fetches are the simulator's instance(id:) resolutions during the storm
	// and its drain: total, and per instance (max, mean).
	Fetches     int64   `json:"fetches"`
	FetchesMax  int64   `json:"fetches_per_instance_max"`
	FetchesMean float64 `json:"fetches_per_instance_mean"`
	// Naive is what a handler that fetches once per refetch-type event
	// (instance.deployed, and each instance an oauth2 event affects) would
	// have fetched.
	Naive     int64   `json:"naive_fetches"`
	NaiveMax  int64   `json:"naive_per_instance_max"`
	NaiveMean float64 `json:"naive_per_instance_mean"`
	// APIRequests counts every GraphQL request (lookups of the instances
	// behind a shared connection included).
	APIRequests int64 `json:"api_requests"`
}

// stormPlan is, per instance, a plain variable to change and a connection
// to refresh.
type stormPlan struct {
	id, plainKey, plainType, connKey string
}

func planStorm(sim *Sim, n int) ([]stormPlan, error) {
	var out []stormPlan
	for _, in := range sim.CustomerInstances() {
		if len(out) == n {
			break
		}
		snap, err := sim.Instance(in.ID)
		if err != nil {
			return nil, err
		}
		p := stormPlan{id: in.ID}
		for _, cv := range snap.Config {
			switch {
			case cv.DataType == "CONNECTION" && p.connKey == "":
				p.connKey = cv.Key
			case (cv.DataType == "NUMBER" || cv.DataType == "STRING") && p.plainKey == "":
				p.plainKey, p.plainType = cv.Key, cv.DataType
			}
		}
		if p.plainKey == "" || p.connKey == "" {
			continue
		}
		out = append(out, p)
	}
	if len(out) < n {
		return nil, fmt.Errorf("only %d instances with a plain variable and a connection", len(out))
	}
	return out, nil
}

// Economy sends a storm of events (instance.updated, instance.deployed and
// oauth2.token_refreshed, each a real change in the simulator) over 500
// instances and counts the GraphQL fetches the daemon makes for them.
func (e *Env) Economy(ctx context.Context) (Report, error) {
	rep := Report{Scenario: "economy", Quick: e.Quick}
	n := pick(e, 500, 100)
	sim, err := StartSim((n+2)/3+1, simLatency)
	if err != nil {
		return rep, err
	}
	defer sim.Close()
	plans, err := planStorm(sim, n)
	if err != nil {
		return rep, err
	}
	if err := e.Prefill(ctx, sim); err != nil {
		return rep, err
	}
	res, err := e.storm(ctx, sim, plans, economyRate)
	if err != nil {
		return rep, err
	}
	ample, err := e.storm(ctx, sim, plans, economyRateAmple)
	if err != nil {
		return rep, err
	}
	rep.Results = map[string]EconomyResults{"default_quota": res, "ample_quota": ample}
	// The quota counts requests. Since fetches that wait for the limit
	// together share one request, a fetch is no longer a request: the
	// target is on requests per instance, and the fetches are shown beside.
	perInstance := float64(res.APIRequests) / float64(len(plans))
	rep.Figures = []Row{
		{Scenario: "economy", Figure: fmt.Sprintf("GraphQL requests per instance: %d events / %d instances / %.0fs, --prismatic-rate %d (default)", res.Events, len(plans), res.Seconds, economyRate),
			Value:     fmt.Sprintf("%.2f (%d requests)", perInstance, res.APIRequests),
			Reference: fmt.Sprintf("naive %.1f", res.NaiveMean),
			Target:    NewTarget(perInstance, "<=", 2, "≤ 2 per instance")},
		{Scenario: "economy", Figure: "the same: instance fetches per instance, max (mean), drain after the storm",
			Value:     fmt.Sprintf("%d (%.2f), %.1f s", res.FetchesMax, res.FetchesMean, res.Drain),
			Reference: fmt.Sprintf("naive %d (%.1f)", res.NaiveMax, res.NaiveMean)},
		{Scenario: "economy", Figure: fmt.Sprintf("the same storm, --prismatic-rate %d: requests per instance; fetches per instance, max (mean)", economyRateAmple),
			Value:     fmt.Sprintf("%.2f; %d (%.2f)", float64(ample.APIRequests)/float64(len(plans)), ample.FetchesMax, ample.FetchesMean),
			Reference: fmt.Sprintf("naive %d (%.1f)", ample.NaiveMax, ample.NaiveMean)},
	}
	if f := res.Storm.Failed + ample.Storm.Failed; f > 0 {
		rep.Error = fmt.Sprintf("%d webhooks failed (last: %s)", f, res.Storm.LastError+ample.Storm.LastError)
	}
	return rep, nil
}

// storm runs one storm against a daemon started with the given rate and
// waits until its work set is empty.
func (e *Env) storm(ctx context.Context, sim *Sim, plans []stormPlan, rate float64) (EconomyResults, error) {
	d, err := e.Daemon(ctx, sim, rate, economyWorkers)
	if err != nil {
		return EconomyResults{}, err
	}
	defer d.Close()
	host, _ := HostOf(d.URL)

	events, dur := int64(pick(e, 20000, 4000)), pick(e, 10*time.Second, 2*time.Second)
	var (
		seq   atomic.Int64
		mu    sync.Mutex
		naive = map[string]int64{}
		types = map[string]int{}
	)
	sg := &Signer{Secret: []byte(benchSecret)}
	job := func(buf []byte) ([]byte, func(int, []byte, time.Time), error) {
		i := seq.Add(1) - 1
		p := plans[(i*7919)%int64(len(plans))]
		var (
			res prismaticsim.Result
			err error
		)
		// The type follows the round over the instances, so that each gets
		// every type in turn: 2/5 updated, 2/5 deployed, 1/5 oauth2.
		switch (i / int64(len(plans))) % 5 {
		case 0, 1:
			v := strconv.FormatInt(i, 10)
			if p.plainType == "STRING" {
				v = "storm-" + v
			}
			res, err = sim.SetConfig(p.id, p.plainKey, v)
		case 2, 3:
			res, err = sim.Deploy(p.id)
		default:
			res, err = sim.RefreshConnection(p.id, p.connKey)
		}
		if err != nil {
			return nil, nil, err
		}
		if len(res.Webhooks) == 0 {
			return nil, nil, errors.New("the change sent no webhook")
		}
		ev := res.Webhooks[0]
		mu.Lock()
		types[ev.Type]++
		if (i/int64(len(plans)))%5 >= 2 {
			for _, id := range res.Affected {
				naive[id]++
			}
		}
		mu.Unlock()
		return sg.Request(buf, host, ev.Type, ev.Body), nil, nil
	}
	sim.ResetStats()
	res := EconomyResults{Instances: len(plans), DaemonFlags: fmt.Sprintf("--prismatic-rate %g --workers %d", rate, economyWorkers)}
	res.Storm = OpenLoop(ctx, host, float64(events)/dur.Seconds(), dur, openConns, job)
	res.Storm.Target = "daemon"
	stormEnd := time.Now()
	cpu := StartCPU(map[string]int{"daemon": d.PID(), "redis": e.Redis.PID()})
	if err := e.WaitIdle(ctx, d, 5*time.Minute); err != nil {
		return res, err
	}
	res.Drain = time.Since(stormEnd).Seconds()
	res.DrainCPU = cpu.PerOp(int64(res.Drain * 1000))
	st := sim.Stats()
	ids := make([]string, len(plans))
	for i, p := range plans {
		ids[i] = p.id
	}
	res.Events, res.ByType, res.Seconds = res.Storm.OK, types, res.Storm.Seconds
	res.FetchesMax, res.FetchesMean, res.Fetches = Counts(ids, st.InstanceFetchesByID)
	res.NaiveMax, res.NaiveMean, res.Naive = Counts(ids, naive)
	res.APIRequests = st.GraphQLRequests
	e.Logf("economy at %g req/s: %d events in %.1fs (failed %d) over %d instances, drained in %.1fs (CPU ms/s %v): %d fetches (max %d, mean %.2f per instance); naive %d (max %d, mean %.1f); API requests %d",
		rate, res.Events, res.Seconds, res.Storm.Failed, len(plans), res.Drain, roundMap(res.DrainCPU), res.Fetches, res.FetchesMax, res.FetchesMean, res.Naive, res.NaiveMax, res.NaiveMean, res.APIRequests)
	return res, nil
}
