package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Footprint settings: a fill as fast as this machine allows.
const (
	footRate    = 10000
	footWorkers = 64
)

// FootprintResults is the footprint scenario's JSON payload.
type FootprintResults struct {
	Instances   int    `json:"instances"`
	Cached      int64  `json:"cached_entries"`
	DaemonFlags string `json:"daemon_flags"`
	// FillSeconds is how long the first sync (list every instance, fetch
	// each, write it) took.
	FillSeconds float64 `json:"fill_s"`
	// RSS figures, in bytes: the largest RSS sampled (every 100 ms) during
	// the fill, after it (idle), and under the intake load; PeakHWM is the
	// kernel's VmHWM at the end (the largest RSS the daemon ever had).
	FillMaxRSS int64 `json:"fill_max_rss"`
	IdleRSS    int64 `json:"idle_rss"`
	LoadMaxRSS int64 `json:"load_max_rss"`
	PeakHWM    int64 `json:"peak_vmhwm"`
	// Load is the intake load on the 100,000 cached instances.
	Load Load `json:"load"`
}

// rssSampler records the largest RSS of a process.
type rssSampler struct {
	max  atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if m, err := ReadMemory(pid); err == nil && m.RSS > s.max.Load() {
				s.max.Store(m.RSS)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) Stop() int64 { close(s.stop); s.wg.Wait(); return s.max.Load() }

// Footprint fills Redis with 100,000 instances through the daemon (its
// first sync against a simulator that has them) and reads the daemon's RSS
// during the fill, after it, and under intake load.
func (e *Env) Footprint(ctx context.Context) (Report, error) {
	rep := Report{Scenario: "footprint", Quick: e.Quick}
	customers := pick(e, 33334, 3334)
	e.Logf("seeding a simulator with %d instances", customers*3)
	sim, err := StartSim(customers, simLatency)
	if err != nil {
		return rep, err
	}
	defer sim.Close()
	ids := sim.CustomerInstances()
	if err := e.Flush(ctx); err != nil {
		return rep, err
	}
	res := FootprintResults{Instances: len(ids), DaemonFlags: fmt.Sprintf("--prismatic-rate %d --workers %d", footRate, footWorkers)}
	start := time.Now()
	d, err := e.Daemon(ctx, sim, footRate, footWorkers)
	if err != nil {
		return rep, err
	}
	defer d.Close()
	fill := sampleRSS(d.PID())
	err = e.WaitIdle(ctx, d, 8*time.Minute)
	res.FillMaxRSS = fill.Stop()
	if err != nil {
		return rep, err
	}
	res.FillSeconds = time.Since(start).Seconds()
	n, err := e.CountEntries(ctx)
	if err != nil {
		return rep, err
	}
	res.Cached = n
	e.Logf("footprint: %d entries cached in %.1fs; largest RSS during the fill %s", n, res.FillSeconds, MB(res.FillMaxRSS))
	time.Sleep(time.Second)
	if m, err := ReadMemory(d.PID()); err == nil {
		res.IdleRSS = m.RSS
	}

	host, _ := HostOf(d.URL)
	sg := &Signer{Secret: []byte(benchSecret)}
	load := sampleRSS(d.PID())
	res.Load = ClosedLoop(ctx, host, 64, 0, pick(e, 10*time.Second, 3*time.Second), intakeJob(sg, host, ids))
	res.Load.Target = "daemon"
	res.LoadMaxRSS = load.Stop()
	m, err := ReadMemory(d.PID())
	if err != nil {
		return rep, err
	}
	res.PeakHWM = m.Peak
	e.Logf("footprint: idle %s; under %0.f webhooks/s (c=64): largest RSS %s; VmHWM %s",
		MB(res.IdleRSS), res.Load.Throughput, MB(res.LoadMaxRSS), MB(res.PeakHWM))
	rep.Results = res
	peak := max(res.PeakHWM, res.FillMaxRSS, res.LoadMaxRSS)
	rep.Figures = []Row{
		{Scenario: "footprint", Figure: fmt.Sprintf("daemon RSS, %d cached instances: idle / fill / intake load", res.Cached),
			Value:     MB(res.IdleRSS) + " / " + MB(res.FillMaxRSS) + " / " + MB(res.LoadMaxRSS),
			Reference: fmt.Sprintf("VmHWM %s", MB(res.PeakHWM)),
			Target:    NewTarget(float64(peak)/(1<<20), "<=", 100, "≤ 100 MB")},
	}
	if res.Cached < int64(len(ids)) {
		rep.Error = fmt.Sprintf("only %d of %d instances cached after the fill", res.Cached, len(ids))
	}
	return rep, nil
}
