package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/internal/prismaticsim"
	"github.com/prismcache/prismcache/internal/webhook"
)

// Intake settings. The daemon of the intake scenario runs with its
// defaults; the hostile scenario's runs with the API quota the resync
// scenario uses, so fetches behind the deploy events stay a realistic
// background.
const (
	intakeRate    = 100
	intakeWorkers = 8
	intakeFixed   = 2000 // webhooks/s of the open-loop run
	// intakeFloorTarget is the least ratio of the daemon's throughput to
	// the durable floor's, at intakeFloorLevel connections and more.
	intakeFloorTarget = 0.8
	// intakeFloorLevel is the least concurrency the target is checked at;
	// the effect floor runs from it on.
	intakeFloorLevel = 32
	// effectDocSize is the size of the effect floor's entries' documents,
	// about that of the simulator's.
	effectDocSize = 1500
	simLatency    = 20 * time.Millisecond
	// openConns bounds the connections of an open-loop run: enough that
	// the sender never waits for one at the rates used (rate × latency).
	openConns = 256
)

// IntakeLevel is one concurrency level against the daemon, the baseline
// and the durable floor (FloorHandler).
type IntakeLevel struct {
	Concurrency int     `json:"concurrency"`
	Daemon      Load    `json:"daemon"`
	Baseline    Load    `json:"baseline"`
	Floor       Load    `json:"floor"`
	Ratio       float64 `json:"ratio"`
	FloorRatio  float64 `json:"floor_ratio"`
	// OfFloor is the daemon's throughput over the floor's.
	OfFloor float64 `json:"daemon_over_floor"`
	// Effect is the effect floor (EffectFloorHandler), run at the levels
	// the target is checked at; EffectOfFloor its throughput over the
	// floor's, OfEffect the daemon's over its.
	Effect        *Load              `json:"effect,omitempty"`
	EffectCPU     map[string]float64 `json:"effect_cpu_us_per_webhook,omitempty"`
	EffectOfFloor float64            `json:"effect_over_floor,omitempty"`
	OfEffect      float64            `json:"daemon_over_effect,omitempty"`
	// CPU is the CPU time per answered webhook, in µs, of each process
	// during the daemon's run, the baseline's and the floor's.
	DaemonCPU   map[string]float64 `json:"daemon_cpu_us_per_webhook"`
	BaselineCPU map[string]float64 `json:"baseline_cpu_us_per_webhook"`
	FloorCPU    map[string]float64 `json:"floor_cpu_us_per_webhook"`
}

// IntakeResults is the intake scenario's JSON payload.
type IntakeResults struct {
	Instances int           `json:"instances"`
	Events    string        `json:"events"`
	Levels    []IntakeLevel `json:"levels"`
	// PeakDaemon and Ceiling are the best throughput over the levels; Ratio
	// is their quotient (the target's figure).
	PeakDaemon float64 `json:"peak_daemon_per_s"`
	PeakAt     int     `json:"peak_daemon_concurrency"`
	Ceiling    float64 `json:"ceiling_per_s"`
	CeilingAt  int     `json:"ceiling_concurrency"`
	Ratio      float64 `json:"ratio"`
	// PeakFloor is the durable floor's best throughput; FloorRatio its
	// quotient with Ceiling: the ratio no intake that records a webhook in
	// Redis before acknowledging it can pass on this machine.
	PeakFloor   float64 `json:"peak_floor_per_s"`
	FloorRatio  float64 `json:"floor_ratio"`
	Fixed       Load    `json:"fixed_rate_daemon"`
	FixedBase   Load    `json:"fixed_rate_baseline"`
	DaemonFlags string  `json:"daemon_flags"`
}

// intakeJob sends instance.updated and instance.deployed in turn, over ids
// in a scattered order, each body unique.
func intakeJob(sg *Signer, host string, ids []prismaticsim.InstanceSummary) Job {
	var seq atomic.Int64
	return func(buf []byte) ([]byte, func(int, []byte, time.Time), error) {
		n := seq.Add(1)
		in := ids[(n*7919)%int64(len(ids))]
		// The type follows the round over ids, not n's parity, so that
		// every instance gets both types whatever len(ids) is.
		typ := webhook.InstanceUpdated
		if (n/int64(len(ids)))%2 == 1 {
			typ = webhook.InstanceDeployed
		}
		return sg.Request(buf, host, typ, sg.InstanceEvent(typ, in.ID, in.Name)), nil, nil
	}
}

// Intake measures webhook throughput and ack latency at rising concurrency,
// against the daemon and against the baseline endpoint (the ceiling), and
// the ack latency of an open-loop run at 2,000 webhooks/s.
func (e *Env) Intake(ctx context.Context) (Report, error) {
	rep := Report{Scenario: "intake", Quick: e.Quick}
	customers := pick(e, 334, 100)
	sim, err := StartSim(customers, simLatency)
	if err != nil {
		return rep, err
	}
	defer sim.Close()
	if err := e.Prefill(ctx, sim); err != nil {
		return rep, err
	}
	d, err := e.DaemonDefaults(ctx, sim)
	if err != nil {
		return rep, err
	}
	defer d.Close()
	base, baseURL, err := StartBaseline(ctx, e.Exe, e.Dir, benchSecret, "", "", false)
	if err != nil {
		return rep, err
	}
	defer base.Stop(5 * time.Second)
	e.Logf("baseline pid %d on %s", base.PID(), baseURL)
	// The floor records bodies in a database of its own, emptied after each
	// of its runs, so that its keys do not weigh on the daemon's Redis.
	floor, floorURL, err := StartBaseline(ctx, e.Exe, e.Dir, benchSecret, "redis://"+e.Redis.Addr+"/1", benchPrefix, false)
	if err != nil {
		return rep, err
	}
	defer floor.Stop(5 * time.Second)
	effect, effectURL, err := StartBaseline(ctx, e.Exe, e.Dir, benchSecret, "redis://"+e.Redis.Addr+"/1", benchPrefix, true)
	if err != nil {
		return rep, err
	}
	defer effect.Stop(5 * time.Second)
	floorDB := redis.NewClient(&redis.Options{Addr: e.Redis.Addr, DB: 1})
	defer floorDB.Close()
	e.Logf("durable floor pid %d on %s", floor.PID(), floorURL)

	daemonHost, _ := HostOf(d.URL)
	baseHost, _ := HostOf(baseURL)
	floorHost, _ := HostOf(floorURL)
	effectHost, _ := HostOf(effectURL)
	ids := sim.CustomerInstances()
	idStrings := make([]string, len(ids))
	for i, in := range ids {
		idStrings[i] = in.ID
	}
	sg := &Signer{Secret: []byte(benchSecret)}
	res := IntakeResults{Instances: len(ids), Events: "instance.updated (stale mark) and instance.deployed (work-set add), alternating, unique timestamps",
		DaemonFlags: "defaults (only the connection and secret settings)"}
	warm, dur := pick(e, 500*time.Millisecond, 200*time.Millisecond), pick(e, 5*time.Second, time.Second)
	for _, c := range []int{1, 4, 16, 32, 64} {
		lv := IntakeLevel{Concurrency: c}
		cpu, noise := StartCPU(map[string]int{"baseline": base.PID(), "harness": os.Getpid()}), StartNoise()
		lv.Baseline = ClosedLoop(ctx, baseHost, c, warm, dur, intakeJob(sg, baseHost, ids))
		lv.Baseline.Target, lv.Baseline.Others = "baseline", noise.report()
		lv.BaselineCPU = cpu.PerOp(lv.Baseline.OK)
		cpu, noise = StartCPU(map[string]int{"floor": floor.PID(), "redis": e.Redis.PID(), "harness": os.Getpid()}), StartNoise()
		lv.Floor = ClosedLoop(ctx, floorHost, c, warm, dur, intakeJob(sg, floorHost, ids))
		lv.Floor.Target, lv.Floor.Others = "floor", noise.report()
		lv.FloorCPU = cpu.PerOp(lv.Floor.OK)
		if err := floorDB.FlushDB(ctx).Err(); err != nil {
			return rep, fmt.Errorf("empty the floor's database: %w", err)
		}
		if c >= intakeFloorLevel {
			if err := SeedEffect(ctx, floorDB, benchPrefix, idStrings, effectDocSize); err != nil {
				return rep, fmt.Errorf("seed the effect floor: %w", err)
			}
			cpu, noise = StartCPU(map[string]int{"effect": effect.PID(), "redis": e.Redis.PID(), "harness": os.Getpid()}), StartNoise()
			ef := ClosedLoop(ctx, effectHost, c, warm, dur, intakeJob(sg, effectHost, ids))
			ef.Target, ef.Others = "effect", noise.report()
			lv.Effect, lv.EffectCPU = &ef, cpu.PerOp(ef.OK)
			lv.EffectOfFloor = Ratio(ef.Throughput, lv.Floor.Throughput)
			if err := floorDB.FlushDB(ctx).Err(); err != nil {
				return rep, fmt.Errorf("empty the effect floor's database: %w", err)
			}
		}
		cpu, noise = StartCPU(map[string]int{"daemon": d.PID(), "redis": e.Redis.PID(), "harness": os.Getpid()}), StartNoise()
		lv.Daemon = ClosedLoop(ctx, daemonHost, c, warm, dur, intakeJob(sg, daemonHost, ids))
		lv.Daemon.Target, lv.Daemon.Others = "daemon", noise.report()
		lv.DaemonCPU = cpu.PerOp(lv.Daemon.OK)
		lv.Ratio = Ratio(lv.Daemon.Throughput, lv.Baseline.Throughput)
		lv.FloorRatio = Ratio(lv.Floor.Throughput, lv.Baseline.Throughput)
		lv.OfFloor = Ratio(lv.Daemon.Throughput, lv.Floor.Throughput)
		if lv.Effect != nil {
			lv.OfEffect = Ratio(lv.Daemon.Throughput, lv.Effect.Throughput)
			e.Logf("intake c=%d effect floor %.0f/s (failed %d; CPU µs/webhook %v): %.2f × floor; daemon %.2f × effect floor",
				c, lv.Effect.Throughput, lv.Effect.Failed, roundMap(lv.EffectCPU), lv.EffectOfFloor, lv.OfEffect)
		}
		e.Logf("intake c=%d (other processes %.2f cores): daemon %.0f/s (p50 %s, p99 %s, failed %d, dup %d; CPU µs/webhook %v), baseline %.0f/s (p99 %s; CPU %v), floor %.0f/s (failed %d; CPU %v): ratio %.2f, floor's %.2f, daemon/floor %.2f",
			c, lv.Daemon.Others.Cores, lv.Daemon.Throughput, FmtDur(lv.Daemon.lat.P50), FmtDur(lv.Daemon.lat.P99), lv.Daemon.Failed, lv.Daemon.Duplicates, roundMap(lv.DaemonCPU),
			lv.Baseline.Throughput, FmtDur(lv.Baseline.lat.P99), roundMap(lv.BaselineCPU), lv.Floor.Throughput, lv.Floor.Failed, roundMap(lv.FloorCPU), lv.Ratio, lv.FloorRatio, lv.OfFloor)
		if lv.Daemon.Failed > 0 {
			e.Logf("  daemon errors, last: %s", lv.Daemon.LastError)
		}
		res.Levels = append(res.Levels, lv)
		if lv.Daemon.Throughput > res.PeakDaemon {
			res.PeakDaemon, res.PeakAt = lv.Daemon.Throughput, c
		}
		if lv.Baseline.Throughput > res.Ceiling {
			res.Ceiling, res.CeilingAt = lv.Baseline.Throughput, c
		}
		res.PeakFloor = math.Max(res.PeakFloor, lv.Floor.Throughput)
	}
	res.Ratio = Ratio(res.PeakDaemon, res.Ceiling)
	res.FloorRatio = Ratio(res.PeakFloor, res.Ceiling)

	fixedDur := pick(e, 10*time.Second, 2*time.Second)
	noise := StartNoise()
	res.FixedBase = OpenLoop(ctx, baseHost, intakeFixed, fixedDur, openConns, intakeJob(sg, baseHost, ids))
	res.FixedBase.Target, res.FixedBase.Others = "baseline", noise.report()
	noise = StartNoise()
	res.Fixed = OpenLoop(ctx, daemonHost, intakeFixed, fixedDur, openConns, intakeJob(sg, daemonHost, ids))
	res.Fixed.Target, res.Fixed.Others = "daemon", noise.report()
	e.Logf("intake at %d/s: daemon p50 %s p99 %s (from schedule p99 %.3f ms), failed %d; baseline p99 %s; other processes %.2f cores",
		intakeFixed, FmtDur(res.Fixed.lat.P50), FmtDur(res.Fixed.lat.P99), res.Fixed.FromSchedule.P99MS, res.Fixed.Failed, FmtDur(res.FixedBase.lat.P99), res.Fixed.Others.Cores)

	rep.Results = res
	lv := res.Levels[len(res.Levels)-1]
	rep.Figures = []Row{
		{Scenario: "intake", Figure: fmt.Sprintf("throughput, peak (c=%d)", res.PeakAt), Value: FmtRate(res.PeakDaemon),
			Reference: fmt.Sprintf("ceiling %s (c=%d), %.2f × ceiling", FmtRate(res.Ceiling), res.CeilingAt, res.Ratio)},
		{Scenario: "intake", Figure: "durable floor (HMAC + one batched SET NX per body), peak", Value: FmtRate(res.PeakFloor),
			Reference: fmt.Sprintf("%.2f × ceiling", res.FloorRatio)},
	}
	for _, l := range res.Levels {
		if l.Concurrency < intakeFloorLevel {
			continue
		}
		rep.Figures = append(rep.Figures, Row{Scenario: "intake", Figure: fmt.Sprintf("throughput at c=%d, daemon / floor", l.Concurrency),
			Value:     FmtRate(l.Daemon.Throughput) + " / " + FmtRate(l.Floor.Throughput),
			Reference: fmt.Sprintf("%.2f × ceiling", l.Ratio),
			Target:    NewTarget(l.OfFloor, ">=", intakeFloorTarget, fmt.Sprintf("≥ %.1f × floor (is %.2f)", intakeFloorTarget, l.OfFloor))})
		if l.Effect != nil {
			rep.Figures = append(rep.Figures, Row{Scenario: "intake", Figure: fmt.Sprintf("effect floor at c=%d (parse + one script per event)", l.Concurrency),
				Value:     FmtRate(l.Effect.Throughput),
				Reference: fmt.Sprintf("%.2f × floor; daemon %.2f × it", l.EffectOfFloor, l.OfEffect)})
		}
	}
	rep.Figures = append(rep.Figures, []Row{
		{Scenario: "intake", Figure: fmt.Sprintf("ack p50 / p99 at c=%d", lv.Concurrency),
			Value:     FmtDur(lv.Daemon.lat.P50) + " / " + FmtDur(lv.Daemon.lat.P99),
			Reference: "baseline " + FmtDur(lv.Baseline.lat.P50) + " / " + FmtDur(lv.Baseline.lat.P99)},
		{Scenario: "intake", Figure: fmt.Sprintf("ack p99 at %d/s (p50)", intakeFixed),
			Value:     FmtDur(res.Fixed.lat.P99) + " (" + FmtDur(res.Fixed.lat.P50) + ")",
			Reference: "baseline " + FmtDur(res.FixedBase.lat.P99) + " (" + FmtDur(res.FixedBase.lat.P50) + ")",
			Target:    NewTarget(float64(res.Fixed.lat.P99)/1e6, "<=", 5, "≤ 5 ms")},
	}...)
	var floorFailed int64
	for _, l := range res.Levels {
		floorFailed += l.Floor.Failed
		if l.Effect != nil {
			floorFailed += l.Effect.Failed
		}
	}
	var errs []string
	if floorFailed > 0 {
		errs = append(errs, fmt.Sprintf("the floors failed %d webhooks: their figures are not bounds", floorFailed))
	}
	if res.Fixed.Failed > 0 || lv.Daemon.Failed > 0 {
		errs = append(errs, fmt.Sprintf("failed webhooks: %d at the fixed rate, %d at c=%d (last: %s)", res.Fixed.Failed, lv.Daemon.Failed, lv.Concurrency, res.Fixed.LastError+lv.Daemon.LastError))
	}
	rep.Error = strings.Join(errs, "; ")
	return rep, nil
}

// roundMap rounds every value to a whole number, for a log line.
func roundMap(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = math.Round(v)
	}
	return out
}
