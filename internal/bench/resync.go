package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/graphql"
)

// Resync settings: the quota the issue names, and enough workers that the
// limiter, not the 20 ms latency, sets the pace (100/s × 20 ms = 2 in
// flight).
const (
	resyncRate    = 100
	resyncWorkers = 16
)

// ResyncResults is the resync scenario's JSON payload.
type ResyncResults struct {
	Instances   int     `json:"instances"`
	Rate        float64 `json:"rate_per_s"`
	DaemonFlags string  `json:"daemon_flags"`
	// Took is from POST /v1/resync to the last entry holding its new
	// deployedVersion.
	Took float64 `json:"took_s"`
	// Pages is how many pages of 100 the listing takes; BeforeRequests
	// and BeforeFloor are what the pass cost when pages carried no
	// documents: a page of 100 plus one fetch per instance, and the time
	// the quota alone needed for them.
	Pages          int     `json:"pages"`
	BeforeRequests int     `json:"before_requests"`
	BeforeFloor    float64 `json:"before_floor_s"`
	// APIRequests and InstanceFetches are what the simulator served during
	// the pass.
	APIRequests     int64 `json:"api_requests"`
	InstanceFetches int64 `json:"instance_fetches"`
	// Wrong counts entries that did not hold the new version at the end.
	Wrong int `json:"wrong_at_end"`
}

// Resync changes every instance in the simulator without a webhook (a
// deploy), asks the daemon for a full pass (POST /v1/resync) with the
// quota at 100 requests/s, and times it until every entry is right.
func (e *Env) Resync(ctx context.Context) (Report, error) {
	rep := Report{Scenario: "resync", Quick: e.Quick}
	sim, err := StartSim(pick(e, 667, 167), simLatency)
	if err != nil {
		return rep, err
	}
	defer sim.Close()
	if err := e.Prefill(ctx, sim); err != nil {
		return rep, err
	}
	ids := sim.CustomerInstances()
	want := make(map[string]int, len(ids))
	for _, in := range ids {
		res, err := sim.Deploy(in.ID)
		if err != nil {
			return rep, err
		}
		want[in.ID] = res.Instance.DeployedVersion
	}
	d, err := e.Daemon(ctx, sim, resyncRate, resyncWorkers)
	if err != nil {
		return rep, err
	}
	defer d.Close()
	var (
		mu   sync.Mutex
		done = map[string]bool{}
		last time.Time
		all  = make(chan struct{})
	)
	w, err := e.Watch(ctx, func(id string, v int, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if wv, ok := want[id]; ok && v >= wv && !done[id] {
			done[id] = true
			last = at
			if len(done) == len(want) {
				close(all)
			}
		}
	})
	if err != nil {
		return rep, err
	}
	defer w.Close()
	sim.ResetStats()
	start := time.Now()
	if err := d.Admin(ctx, "POST", "/v1/resync", benchAdmin); err != nil {
		return rep, err
	}
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
	case <-ctx.Done():
		return rep, ctx.Err()
	}
	mu.Lock()
	took := last.Sub(start)
	mu.Unlock()
	st := sim.Stats()
	res := ResyncResults{Instances: len(ids), Rate: resyncRate, Took: took.Seconds(),
		DaemonFlags: fmt.Sprintf("--prismatic-rate %d --workers %d", resyncRate, resyncWorkers),
		Pages:       (len(ids) + graphql.PageSize - 1) / graphql.PageSize,
		APIRequests: st.GraphQLRequests, InstanceFetches: st.InstanceFetches}
	res.BeforeRequests = res.Pages + len(ids)
	res.BeforeFloor = float64(res.BeforeRequests) / resyncRate
	res.Wrong, err = e.countWrong(ctx, want)
	if err != nil {
		return rep, err
	}
	e.Logf("resync: %d instances in %.2fs; API requests %d (pages %d), instance fetches %d; before: %d requests, floor %.2fs; wrong at end %d",
		res.Instances, res.Took, res.APIRequests, res.Pages, res.InstanceFetches, res.BeforeRequests, res.BeforeFloor, res.Wrong)
	rep.Results = res
	rep.Figures = []Row{
		{Scenario: "resync", Figure: fmt.Sprintf("full pass (POST /v1/resync), %d changed instances, %d req/s: time", res.Instances, resyncRate),
			Value:     fmt.Sprintf("%.2f s", res.Took),
			Reference: fmt.Sprintf("before: floor %.2f s (%d pages + %d fetches)", res.BeforeFloor, res.Pages, len(ids))},
		{Scenario: "resync", Figure: "the same: GraphQL requests",
			Value:     fmt.Sprintf("%d", res.APIRequests),
			Reference: fmt.Sprintf("before: %d", res.BeforeRequests),
			Target:    NewTarget(float64(res.APIRequests), "<=", float64(res.Pages), fmt.Sprintf("≤ %d pages", res.Pages))}}
	if res.Wrong > 0 || len(done) < len(want) {
		rep.Error = fmt.Sprintf("%d of %d entries never showed the new version; %d wrong at the end", len(want)-len(done), len(want), res.Wrong)
	}
	return rep, nil
}

// countWrong counts the entries whose deployed_version is not want's.
func (e *Env) countWrong(ctx context.Context, want map[string]int) (int, error) {
	k := e.Keys()
	pipe := e.Redis.Client.Pipeline()
	cmds := map[string]interface{ Val() string }{}
	for id := range want {
		cmds[id] = pipe.HGet(ctx, k.Instance(id), cache.FieldDeployedVersion)
	}
	if _, err := pipe.Exec(ctx); err != nil && err.Error() != "redis: nil" {
		return 0, err
	}
	wrong := 0
	for id, c := range cmds {
		if c.Val() != strconv.Itoa(want[id]) {
			wrong++
		}
	}
	return wrong, nil
}
