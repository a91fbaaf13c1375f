package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/ratelimit"
	"github.com/prismcache/prismcache/internal/refresh"
)

// Rebuild settings: the daemon's defaults, as a user runs it.
const (
	rebuildRate    = 10
	rebuildWorkers = 8
	// rebuildUndeployed is the share of instances with undeployed changes
	// (one in five).
	rebuildUndeployed = 5
)

// RebuildRun is one cold start: a daemon on an empty Redis caching every
// instance of the simulator.
type RebuildRun struct {
	Instances int `json:"instances"`
	// Undeployed counts the instances with undeployed changes (needsDeploy).
	Undeployed int `json:"undeployed"`
	// Took is from starting the daemon's process to the sync marker with an
	// empty work set, every entry checked right afterwards.
	Took float64 `json:"took_s"`
	// Requests are the GraphQL requests the simulator counted, in all and
	// by operation.
	Requests   int64            `json:"api_requests"`
	ByOp       map[string]int64 `json:"api_requests_by_operation"`
	PerRequest float64          `json:"instances_per_request"`
	// Before is what the same rebuild cost when the listing carried no
	// documents: a page of 100 plus one fetch per instance, at the rate.
	BeforeRequests int     `json:"before_requests"`
	BeforeSeconds  float64 `json:"before_s"`
	// Wrong counts entries that did not hold what Prismatic shows.
	Wrong      int    `json:"wrong"`
	FirstWrong string `json:"first_wrong,omitempty"`
}

// PassRun is one periodic pass over a cached fleet.
type PassRun struct {
	Instances int     `json:"instances"`
	Changed   int     `json:"changed"`
	Took      float64 `json:"took_s"`
	Requests  int64   `json:"api_requests"`
	Written   int     `json:"written"`
	Queued    int     `json:"queued"`
	Unchanged int     `json:"unchanged"`
	Wrong     int     `json:"wrong"`
}

// RebuildResults is the rebuild scenario's JSON payload.
type RebuildResults struct {
	DaemonFlags string     `json:"daemon_flags"`
	Small       RebuildRun `json:"small"`
	Large       RebuildRun `json:"large"`
	// Unchanged and Changed are periodic passes (not forced) over the
	// large fleet once cached: as it is, and with 1 % of it deployed
	// without a webhook.
	Unchanged PassRun `json:"pass_unchanged"`
	Changed   PassRun `json:"pass_one_percent_changed"`
}

// Rebuild starts the daemon at its defaults on an empty Redis, with 500
// instances of which a fifth have undeployed changes, and with 10,000, and
// measures the requests and the time until every entry is right; then the
// cost of a periodic pass over the 10,000.
func (e *Env) Rebuild(ctx context.Context) (Report, error) {
	rep := Report{Scenario: "rebuild", Quick: e.Quick}
	res := RebuildResults{DaemonFlags: fmt.Sprintf("--prismatic-rate %d --workers %d (the defaults)", rebuildRate, rebuildWorkers)}
	var err error
	if res.Small, _, err = e.rebuildOnce(ctx, pick(e, 167, 167), false); err != nil {
		return rep, err
	}
	var sim *Sim
	if res.Large, sim, err = e.rebuildOnce(ctx, pick(e, 3334, 667), true); err != nil {
		return rep, err
	}
	defer sim.Close()
	if res.Unchanged, err = e.pass(ctx, sim, 0); err != nil {
		return rep, err
	}
	if res.Changed, err = e.pass(ctx, sim, res.Large.Instances/100); err != nil {
		return rep, err
	}
	rep.Results = res
	s, l := res.Small, res.Large
	rep.Figures = []Row{
		{Scenario: "rebuild", Figure: fmt.Sprintf("cold start, %d instances (%d with undeployed changes), default rate: GraphQL requests", s.Instances, s.Undeployed),
			Value: fmt.Sprintf("%d", s.Requests), Reference: fmt.Sprintf("before: %d", s.BeforeRequests),
			Target: NewTarget(float64(s.Requests), "<=", 15, "≤ 15")},
		{Scenario: "rebuild", Figure: "the same: time to every entry right",
			Value: fmt.Sprintf("%.2f s", s.Took), Reference: fmt.Sprintf("before: %.1f s", s.BeforeSeconds),
			Target: NewTarget(s.Took, "<=", 5, "≤ 5 s")},
		{Scenario: "rebuild", Figure: fmt.Sprintf("cold start, %d instances (%d with undeployed changes): GraphQL requests", l.Instances, l.Undeployed),
			Value: fmt.Sprintf("%d", l.Requests), Reference: fmt.Sprintf("before: %d", l.BeforeRequests),
			Target: NewTarget(float64(l.Requests), "<=", 120, "≤ 120")},
		{Scenario: "rebuild", Figure: "the same: time to every entry right",
			Value: fmt.Sprintf("%.2f s", l.Took), Reference: fmt.Sprintf("before: %.0f s", l.BeforeSeconds),
			Target: NewTarget(l.Took, "<=", 30, "≤ 30 s")},
		{Scenario: "rebuild", Figure: fmt.Sprintf("periodic pass, %d unchanged instances: requests / time / entries written", res.Unchanged.Instances),
			Value: fmt.Sprintf("%d / %.2f s / %d", res.Unchanged.Requests, res.Unchanged.Took, res.Unchanged.Written)},
		{Scenario: "rebuild", Figure: fmt.Sprintf("periodic pass, %d of them deployed without a webhook", res.Changed.Changed),
			Value: fmt.Sprintf("%d / %.2f s / %d", res.Changed.Requests, res.Changed.Took, res.Changed.Written)},
	}
	var errs []string
	for _, r := range []RebuildRun{s, l} {
		if r.Wrong > 0 {
			errs = append(errs, fmt.Sprintf("%d of %d entries wrong after the rebuild (first: %s)", r.Wrong, r.Instances, r.FirstWrong))
		}
	}
	for _, p := range []PassRun{res.Unchanged, res.Changed} {
		if p.Wrong > 0 {
			errs = append(errs, fmt.Sprintf("%d of %d entries wrong after a pass", p.Wrong, p.Instances))
		}
	}
	if len(errs) > 0 {
		rep.Error = fmt.Sprint(errs)
	}
	return rep, nil
}

// rebuildOnce seeds customers × 3 instances, gives a fifth of them
// undeployed changes, and times a daemon's cold start on an empty Redis.
// With keep, the simulator is returned open (the caller closes it), and the
// cache stays as the rebuild left it.
func (e *Env) rebuildOnce(ctx context.Context, customers int, keep bool) (RebuildRun, *Sim, error) {
	sim, err := StartSim(customers, simLatency)
	if err != nil {
		return RebuildRun{}, nil, err
	}
	if !keep {
		defer sim.Close()
	}
	ids := sim.CustomerInstances()
	run := RebuildRun{Instances: len(ids)}
	keys := map[string]string{"Salesforce Sync": "batchSize", "Slack Alerts": "channel", "HubSpot Contacts": "listId"}
	values := map[string]string{"Salesforce Sync": "250", "Slack Alerts": "#rebuild", "HubSpot Contacts": "rebuild"}
	for i, in := range ids {
		if i%rebuildUndeployed != 0 {
			continue
		}
		if _, err := sim.SetConfig(in.ID, keys[in.IntegrationName], values[in.IntegrationName]); err != nil {
			return run, sim, err
		}
		run.Undeployed++
	}
	if err := e.Flush(ctx); err != nil {
		return run, sim, err
	}
	sim.ResetStats()
	start := time.Now()
	d, err := e.Daemon(ctx, sim, rebuildRate, rebuildWorkers)
	if err != nil {
		return run, sim, err
	}
	defer d.Close()
	if err := e.WaitIdle(ctx, d, 10*time.Minute); err != nil {
		return run, sim, err
	}
	run.Took = time.Since(start).Seconds()
	st := sim.Stats()
	run.Requests, run.ByOp = st.GraphQLRequests, st.GraphQLRequestsByOperation
	run.PerRequest = float64(run.Instances) / float64(max(run.Requests, 1))
	pages := (run.Instances + graphql.PageSize - 1) / graphql.PageSize
	run.BeforeRequests = pages + run.Instances
	run.BeforeSeconds = float64(run.BeforeRequests) / rebuildRate
	run.Wrong, run.FirstWrong, err = e.checkEntries(ctx, sim)
	if err != nil {
		return run, sim, err
	}
	e.Logf("rebuild of %d instances (%d undeployed): %.2fs, %d requests %v (%.0f instances a request); before: %d requests, %.1fs; wrong %d",
		run.Instances, run.Undeployed, run.Took, run.Requests, run.ByOp, run.PerRequest, run.BeforeRequests, run.BeforeSeconds, run.Wrong)
	return run, sim, nil
}

// pass deploys changed instances in the simulator without a webhook, then
// times one periodic (not forced) reconcile pass over the cache the
// rebuild left, in this process, with the daemon's code and its default
// rate.
func (e *Env) pass(ctx context.Context, sim *Sim, changed int) (PassRun, error) {
	ids := sim.CustomerInstances()
	run := PassRun{Instances: len(ids), Changed: changed}
	for i := 0; i < changed; i++ {
		if _, err := sim.Deploy(ids[i*len(ids)/changed].ID); err != nil {
			return run, err
		}
	}
	lim, err := ratelimit.New(e.Redis.Client, ratelimit.Options{Rate: rebuildRate, Prefix: benchPrefix})
	if err != nil {
		return run, err
	}
	if err := lim.Start(ctx); err != nil {
		return run, err
	}
	defer lim.Close(context.WithoutCancel(ctx))
	api, err := graphql.New(graphql.Options{URL: sim.URL, Token: simToken, Limiter: lim})
	if err != nil {
		return run, err
	}
	db := e.Store()
	shards, _, err := refresh.RecordedShards(ctx, e.Redis.Client, db.Keys(), 0)
	if err != nil {
		return run, err
	}
	work := refresh.NewWorkSet(e.Redis.Client, db.Keys(), refresh.WorkSetOptions{Shards: shards})
	sim.ResetStats()
	start := time.Now()
	rep, err := (&refresh.Reconciler{API: api, Store: db, Work: work}).RunOnce(ctx)
	if err != nil {
		return run, err
	}
	run.Took = time.Since(start).Seconds()
	run.Requests = sim.Stats().GraphQLRequests
	run.Written, run.Queued, run.Unchanged = rep.Written, rep.Queued, rep.Unchanged
	if run.Wrong, _, err = e.checkEntries(ctx, sim); err != nil {
		return run, err
	}
	e.Logf("periodic pass over %d instances, %d deployed without a webhook: %.2fs, %d requests, written %d, queued %d, unchanged %d, wrong %d",
		run.Instances, changed, run.Took, run.Requests, run.Written, run.Queued, run.Unchanged, run.Wrong)
	return run, nil
}

// checkEntries compares every customer instance's entry with Prismatic:
// an instance without undeployed changes holds its deployed config and is
// fresh; one with undeployed changes (never cached before) holds the stored
// config, stale with reason undeployed_config. It returns how many differ.
func (e *Env) checkEntries(ctx context.Context, sim *Sim) (int, string, error) {
	ids := sim.CustomerInstances()
	k := e.Keys()
	pipe := e.Redis.Client.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, in := range ids {
		cmds[i] = pipe.HGetAll(ctx, k.Instance(in.ID))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, "", err
	}
	wrong, first := 0, ""
	for i, in := range ids {
		why := entryWrong(sim, in.ID, in.NeedsDeploy, cmds[i].Val())
		if why != "" {
			wrong++
			if first == "" {
				first = in.ID + ": " + why
			}
		}
	}
	return wrong, first, nil
}

func entryWrong(sim *Sim, id string, needsDeploy bool, h map[string]string) string {
	e, err := cache.ParseEntry(h)
	if err != nil {
		return err.Error()
	}
	if e.Doc == nil {
		return "not cached"
	}
	var want, err2 = sim.Deployed(id)
	if needsDeploy {
		want, err2 = sim.Instance(id)
	}
	if err2 != nil {
		return err2.Error()
	}
	switch {
	case e.DeployedVersion != want.DeployedVersion:
		return fmt.Sprintf("version %d, want %d", e.DeployedVersion, want.DeployedVersion)
	case needsDeploy && (!e.Stale || e.StaleReason != cache.StaleUndeployed):
		return fmt.Sprintf("stale %v (%s), want stale: %s", e.Stale, e.StaleReason, cache.StaleUndeployed)
	case !needsDeploy && e.Stale:
		return fmt.Sprintf("stale (%s), want fresh", e.StaleReason)
	case len(e.Doc.Config) != len(want.Config):
		return fmt.Sprintf("%d config variables, want %d", len(e.Doc.Config), len(want.Config))
	}
	for _, cv := range want.Config {
		got, ok := e.Doc.Config[cv.Key]
		switch {
		case !ok:
			return "no " + cv.Key
		case cv.DataType == cache.TypeConnection && got.Status != cv.Status:
			return fmt.Sprintf("%s status %s, want %s", cv.Key, got.Status, cv.Status)
		case cv.DataType != cache.TypeConnection && cv.DataType != cache.TypeCredential && deref(got.Value) != deref(cv.Value):
			return fmt.Sprintf("%s = %q, want %q", cv.Key, deref(got.Value), deref(cv.Value))
		}
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
