package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Options configure Run.
type Options struct {
	// DaemonBin is the prismcache binary; built into the work directory when
	// empty.
	DaemonBin string
	// Root is the module's root (where go.mod is).
	Root string
	// Quick shortens every phase.
	Quick bool
	// Only, when not empty, names the scenarios to run.
	Only []string
	// Keep keeps the work directory (the child processes' logs).
	Keep bool
	// FullPass follows the million scenario's resync to its end (about 17
	// minutes at the default rate) rather than sampling its first minutes.
	FullPass bool
	// Out receives the JSON lines and the table; Log the progress lines.
	Out, Log io.Writer
}

// Scenarios in the order they run.
var Scenarios = []string{"reader", "intake", "freshness", "economy", "resync", "rebuild", "storm", "footprint", "hostile", "million"}

// Run starts the harness's redis-server, runs the scenarios one after the
// other, prints one JSON line per scenario and then the table. It returns an
// error when a scenario could not run; a missed target is reported, not an
// error.
func Run(ctx context.Context, o Options) error {
	for _, s := range o.Only {
		if !slices.Contains(Scenarios, s) {
			return fmt.Errorf("unknown scenario %q; want some of %s", s, strings.Join(Scenarios, ","))
		}
	}
	dir, err := os.MkdirTemp("", "prismbench-")
	if err != nil {
		return err
	}
	if o.Keep {
		fmt.Fprintf(o.Log, "logs of the child processes in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	e := &Env{Dir: dir, DaemonBin: o.DaemonBin, Exe: exe, Root: o.Root, Quick: o.Quick, FullPass: o.FullPass, Log: o.Log}
	if e.DaemonBin == "" {
		e.DaemonBin = filepath.Join(dir, "prismcache")
		e.Logf("building the daemon")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", e.DaemonBin, "./cmd/prismcache")
		cmd.Dir = o.Root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build the daemon: %w\n%s", err, out)
		}
	}
	e.Redis, err = StartRedis(ctx, dir)
	if err != nil {
		return err
	}
	defer e.Redis.Close()
	e.Logf("redis-server pid %d at %s", e.Redis.PID(), e.Redis.URL)

	run := map[string]func(context.Context) (Report, error){
		"reader": e.Reader, "intake": e.Intake, "freshness": e.Freshness,
		"economy": e.Economy, "resync": e.Resync, "rebuild": e.Rebuild, "storm": e.Storm, "footprint": e.Footprint, "hostile": e.Hostile,
		"million": e.Million,
	}
	var rows []Row
	var failed, noisy []string
	for _, name := range Scenarios {
		if len(o.Only) > 0 && !slices.Contains(o.Only, name) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		e.Logf("== %s", name)
		// Builds and the previous scenario leave dirty pages that the kernel
		// writes back in the background, on these same two cores: write them
		// now, before anything is measured.
		syscall.Sync()
		start := time.Now()
		noise := StartNoise()
		rep, err := run[name](ctx)
		rep.Others = noise.Stop()
		if rep.Others.Cores >= 0.2 {
			e.Logf("warning: other processes used %.2f cores during %s (%s): its figures are disturbed", rep.Others.Cores, name, strings.Join(rep.Others.Busiest, ", "))
			noisy = append(noisy, fmt.Sprintf("%s %.2f", name, rep.Others.Cores))
		}
		rep.Scenario, rep.Quick = name, o.Quick
		rep.Took = time.Since(start).Round(time.Millisecond).Seconds()
		if err != nil {
			rep.Error = err.Error()
		}
		if rep.Error != "" {
			failed = append(failed, name)
			e.Logf("%s: %s", name, rep.Error)
		}
		fmt.Fprintln(o.Out, rep.JSONLine())
		rows = append(rows, rep.Figures...)
	}
	fmt.Fprintln(o.Out)
	fmt.Fprint(o.Out, Table(rows))
	if m := Missed(rows); len(m) > 0 {
		var names []string
		for _, r := range m {
			names = append(names, r.Scenario+": "+r.Figure)
		}
		fmt.Fprintf(o.Out, "\ntargets missed: %s\n", strings.Join(names, "; "))
	}
	if len(noisy) > 0 {
		fmt.Fprintf(o.Out, "\nother processes were busy (cores used by them, per scenario): %s\n", strings.Join(noisy, "; "))
	}
	if o.Quick {
		fmt.Fprintln(o.Out, "\n(BENCH_QUICK=1: short phases and small sizes; a smoke test, not figures to quote)")
	}
	if len(failed) > 0 {
		return fmt.Errorf("scenarios that did not run to the end: %s", strings.Join(failed, ", "))
	}
	return ctx.Err()
}
