package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/prismaticsim"
)

// Million settings: a million instances (100,000 when quick), every
// hundredth of them deployed anew before the pass.
const (
	millionCustomers      = 333334
	millionCustomersQuick = 33334
	millionChangeEvery    = 100
)

// MillionResults is the million scenario's JSON payload.
type MillionResults struct {
	Instances int   `json:"instances"`
	Cached    int64 `json:"cached_entries"`
	// SeedSeconds is how long the simulator took to build its model;
	// HarnessRSS is this process's RSS after it (the simulator's model is
	// most of it).
	SeedSeconds float64 `json:"seed_s"`
	HarnessRSS  int64   `json:"harness_rss"`
	// FillSeconds is how long the first sync of a daemon at FillFlags took
	// to cache every instance; FillMaxRSS is that daemon's largest RSS.
	FillFlags   string  `json:"fill_daemon_flags"`
	FillSeconds float64 `json:"fill_s"`
	FillMaxRSS  int64   `json:"fill_max_rss"`
	// RedisUsed is Redis's used_memory with every instance cached.
	RedisUsed int64 `json:"redis_used_memory"`
	// DaemonFlags are those of the daemon measured: its defaults.
	DaemonFlags string `json:"daemon_flags"`
	// IdleSeconds is how long the idle daemon was sampled (every 100 ms);
	// IdleMaxRSS its largest RSS then.
	IdleSeconds float64      `json:"idle_s"`
	IdleMaxRSS  int64        `json:"idle_max_rss"`
	Changed     int          `json:"changed_instances"`
	Pass        PassProgress `json:"pass"`
	// PeakHWM is the measured daemon's VmHWM at the end.
	PeakHWM int64 `json:"peak_vmhwm"`
}

// PassProgress is how far the pass that POST /v1/resync started got while
// it was sampled.
type PassProgress struct {
	// Seconds is how long it was sampled; Done whether it ended by then.
	Seconds float64 `json:"sampled_s"`
	Done    bool    `json:"done"`
	// Pages is how many ListInstances requests the simulator answered and
	// Listed the instances they carried; Written counts the entries the
	// change feed announced (the resync rewrites every instance it
	// settles); ChangedWritten those of the changed instances that hold
	// their new version.
	Pages          int64 `json:"pages"`
	Listed         int64 `json:"listed"`
	Written        int64 `json:"written"`
	ChangedWritten int   `json:"changed_written"`
	// Fetches counts single-instance fetches (instances no page settled).
	Fetches int64 `json:"instance_fetches"`
	// MaxRSS is the daemon's largest RSS while it was sampled.
	MaxRSS int64 `json:"max_rss"`
}

// Million measures the daemon at a million cached instances: it fills
// Redis through a daemon of its own at a high rate, then starts one with
// the default settings on the full Redis and reads its RSS idle and
// during a resync (POST /v1/resync) after 1% of the instances were
// deployed anew. At the default rate a pass takes about 17 minutes, so
// only its first minutes are sampled unless Options.FullPass.
func (e *Env) Million(ctx context.Context) (Report, error) {
	rep := Report{Scenario: "million", Quick: e.Quick}
	customers := pick(e, millionCustomers, millionCustomersQuick)
	e.Logf("seeding a simulator with %d instances", customers*3)
	start := time.Now()
	// No latency while filling: the first sync lists one page at a time,
	// so the latency would add up to minutes. The measured part has it.
	sim, err := StartSim(customers, 0)
	if err != nil {
		return rep, err
	}
	defer sim.Close()
	ids := sim.CustomerInstances()
	res := MillionResults{Instances: len(ids), SeedSeconds: time.Since(start).Seconds()}
	if m, err := ReadMemory(os.Getpid()); err == nil {
		res.HarnessRSS = m.RSS
	}
	e.Logf("million: seeded %d instances in %.1fs; harness RSS %s", len(ids), res.SeedSeconds, MB(res.HarnessRSS))

	if err := e.millionFill(ctx, sim, &res); err != nil {
		return rep, err
	}
	if res.Cached < int64(len(ids)) {
		return rep, fmt.Errorf("only %d of %d instances cached after the fill", res.Cached, len(ids))
	}
	if err := sim.SetFaults(prismaticsim.Faults{Latency: simLatency}); err != nil {
		return rep, err
	}

	def := config.Default()
	res.DaemonFlags = fmt.Sprintf("defaults (--prismatic-rate %g --workers %d --resync-interval %s)", def.PrismaticRate, def.Workers, def.ResyncInterval)
	d, err := e.DaemonDefaults(ctx, sim)
	if err != nil {
		return rep, err
	}
	defer d.Close()
	if err := pause(ctx, pick(e, 10*time.Second, 2*time.Second)); err != nil {
		return rep, err
	}
	idle := pick(e, 30*time.Second, 5*time.Second)
	s := sampleRSS(d.PID())
	err = pause(ctx, idle)
	res.IdleSeconds, res.IdleMaxRSS = idle.Seconds(), s.Stop()
	if err != nil {
		return rep, err
	}
	e.Logf("million: idle for %s on a full Redis: largest RSS %s", idle, MB(res.IdleMaxRSS))

	if err := e.millionPass(ctx, sim, d, ids, &res); err != nil {
		return rep, err
	}
	if d.Exited() {
		return rep, fmt.Errorf("the daemon exited:\n%s", d.Tail(20))
	}
	m, err := ReadMemory(d.PID())
	if err != nil {
		return rep, err
	}
	res.PeakHWM = m.Peak
	rep.Results = res

	p := res.Pass
	how := fmt.Sprintf("first %.0f s of the pass: %d of %d pages", p.Seconds, p.Pages, (len(ids)+graphql.PageSize-1)/graphql.PageSize)
	if p.Done {
		how = fmt.Sprintf("the whole pass: %d pages in %.0f s", p.Pages, p.Seconds)
	}
	ref := "VmHWM " + MB(res.PeakHWM)
	if !p.Done {
		// A pass holds what it needs of the ids it listed until its
		// end: only the whole pass shows its peak.
		ref += "; the whole pass: make bench-million"
	}
	peak := max(res.IdleMaxRSS, p.MaxRSS, res.PeakHWM)
	rep.Figures = []Row{
		{Scenario: "million", Figure: fmt.Sprintf("daemon RSS (defaults), %d cached instances: idle / resync after %d deploys (%s)", res.Cached, res.Changed, how),
			Value:     MB(res.IdleMaxRSS) + " / " + MB(p.MaxRSS),
			Reference: ref,
			Target:    NewTarget(float64(peak)/(1<<20), "<=", 300, "≤ 300 MB")},
		{Scenario: "million", Figure: "the same pass: entries written; changed instances written",
			Value: fmt.Sprintf("%d; %d of %d", p.Written, p.ChangedWritten, res.Changed)},
		{Scenario: "million", Figure: fmt.Sprintf("fill (%s): time; Redis used_memory", res.FillFlags),
			Value:     fmt.Sprintf("%.0f s; %s", res.FillSeconds, MB(res.RedisUsed)),
			Reference: fmt.Sprintf("seed %.0f s, harness RSS %s", res.SeedSeconds, MB(res.HarnessRSS))},
	}
	if p.Done && p.ChangedWritten < res.Changed {
		rep.Error = fmt.Sprintf("the pass ended with %d of %d changed instances written", p.ChangedWritten, res.Changed)
	}
	return rep, nil
}

// millionFill caches every instance of sim through a daemon at the fill
// rate (its first sync writes them from the listing's pages), closes it,
// and records the time, the count and Redis's memory.
func (e *Env) millionFill(ctx context.Context, sim *Sim, res *MillionResults) error {
	if err := e.Flush(ctx); err != nil {
		return err
	}
	res.FillFlags = fmt.Sprintf("--prismatic-rate %d --workers %d", prefillRate, prefillWorkers)
	start := time.Now()
	d, err := e.Daemon(ctx, sim, prefillRate, prefillWorkers)
	if err != nil {
		return err
	}
	defer d.Close()
	s := sampleRSS(d.PID())
	err = e.WaitIdle(ctx, d, pick(e, 60*time.Minute, 10*time.Minute))
	res.FillMaxRSS = s.Stop()
	if err != nil {
		return err
	}
	res.FillSeconds = time.Since(start).Seconds()
	d.Close()
	if res.Cached, err = e.CountEntries(ctx); err != nil {
		return err
	}
	if res.RedisUsed, err = e.RedisUsedMemory(ctx); err != nil {
		return err
	}
	e.Logf("million: %d entries cached in %.0fs (largest RSS of that daemon %s); Redis used_memory %s",
		res.Cached, res.FillSeconds, MB(res.FillMaxRSS), MB(res.RedisUsed))
	return nil
}

// millionPass deploys every hundredth instance anew in the simulator (no
// webhook), starts a resync and samples the daemon's RSS during it: for a
// window, or to its end with Options.FullPass.
func (e *Env) millionPass(ctx context.Context, sim *Sim, d *Daemon, ids []prismaticsim.InstanceSummary, res *MillionResults) error {
	want := make(map[string]int, len(ids)/millionChangeEvery+1)
	for i := 0; i < len(ids); i += millionChangeEvery {
		r, err := sim.Deploy(ids[i].ID)
		if err != nil {
			return err
		}
		want[ids[i].ID] = r.Instance.DeployedVersion
	}
	res.Changed = len(want)
	var (
		mu      sync.Mutex
		done    = map[string]bool{}
		written atomic.Int64
	)
	w, err := e.Watch(ctx, func(id string, v int, _ time.Time) {
		written.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if wv, ok := want[id]; ok && v >= wv {
			done[id] = true
		}
	})
	if err != nil {
		return err
	}
	defer w.Close()
	db := e.Store()
	before, err := db.SyncState(ctx)
	if err != nil {
		return err
	}

	sim.ResetStats()
	s := sampleRSS(d.PID())
	start := time.Now()
	if err := d.Admin(ctx, "POST", "/v1/resync", benchAdmin); err != nil {
		s.Stop()
		return err
	}
	pages := (len(ids) + graphql.PageSize - 1) / graphql.PageSize
	window := pick(e, 150*time.Second, 20*time.Second)
	if e.FullPass {
		// The quota alone needs pages/rate; twice that and some.
		window = time.Duration(2*float64(pages)/config.Default().PrismaticRate)*time.Second + 5*time.Minute
	}
	until := "for " + window.String()
	if e.FullPass {
		until = "until it ends"
	}
	e.Logf("million: %d instances deployed anew; resync started (%d pages at the default rate); sampling %s", res.Changed, pages, until)
	p := &res.Pass
	deadline := time.After(window)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastLog := start
poll:
	for {
		select {
		case <-ctx.Done():
			s.Stop()
			return ctx.Err()
		case <-deadline:
			break poll
		case <-tick.C:
		}
		st, err := db.SyncState(ctx)
		if err != nil {
			s.Stop()
			return err
		}
		if !st.At.Equal(before.At) && !st.Began.Before(start.Add(-time.Second)) {
			p.Done = true
			break
		}
		if d.Exited() {
			s.Stop()
			return fmt.Errorf("the daemon exited during the pass:\n%s", d.Tail(20))
		}
		if time.Since(lastLog) >= time.Minute {
			lastLog = time.Now()
			mu.Lock()
			n := len(done)
			mu.Unlock()
			e.Logf("million: %s into the pass: %d pages, %d entries written, %d of %d changed; RSS so far at most %s",
				time.Since(start).Round(time.Second), sim.Stats().GraphQLRequestsByOperation["ListInstances"], written.Load(), n, res.Changed, MB(s.max.Load()))
		}
	}
	// The change feed lags the writes a little: give it a second, then
	// read the pages and the writes together.
	time.Sleep(time.Second)
	p.Seconds = time.Since(start).Seconds()
	p.MaxRSS = s.Stop()
	p.Written = written.Load()
	st := sim.Stats()
	p.Pages = st.GraphQLRequestsByOperation["ListInstances"]
	p.Listed = min(p.Pages*graphql.PageSize, int64(len(ids)))
	p.Fetches = st.InstanceFetches
	mu.Lock()
	p.ChangedWritten = len(done)
	mu.Unlock()
	e.Logf("million: after %.0fs (pass ended: %v): %d pages (%d instances listed), %d entries written, %d of %d changed instances written, %d fetches; largest RSS %s",
		p.Seconds, p.Done, p.Pages, p.Listed, p.Written, p.ChangedWritten, res.Changed, p.Fetches, MB(p.MaxRSS))
	return nil
}

// pause waits for d, or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// RedisUsedMemory is the harness's Redis's used_memory, in bytes.
func (e *Env) RedisUsedMemory(ctx context.Context) (int64, error) {
	info := e.Redis.Client.InfoMap(ctx, "memory")
	if err := info.Err(); err != nil {
		return 0, err
	}
	v := info.Item("Memory", "used_memory")
	if v == "" {
		return 0, fmt.Errorf("INFO memory has no used_memory")
	}
	return strconv.ParseInt(v, 10, 64)
}
