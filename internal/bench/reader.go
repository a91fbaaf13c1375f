package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
)

// ReaderResults is the reader scenario's JSON payload: the cache package's
// Go benchmarks, run against the harness's redis-server.
type ReaderResults struct {
	Command string `json:"command"`
	// Benchmarks maps each benchmark to its metrics (ns/op, B/op,
	// allocs/op, p50-µs, p99-µs).
	Benchmarks map[string]map[string]float64 `json:"benchmarks"`
}

// Reader runs `go test -run ^$ -bench . -benchmem ./cache/` with REDIS_URL
// set to the harness's redis-server, echoes its output to the log, and puts
// the hit, miss and invalidation figures in the table.
func (e *Env) Reader(ctx context.Context) (Report, error) {
	rep := Report{Scenario: "reader", Quick: e.Quick}
	args := []string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "1"}
	if e.Quick {
		args = append(args, "-benchtime", "200ms")
	}
	args = append(args, "./cache/")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = e.Root
	cmd.Env = append(os.Environ(), "REDIS_URL="+e.Redis.URL)
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, e.Log)
	cmd.Stderr = e.Log
	e.Logf("REDIS_URL=%s go %v", e.Redis.URL, args)
	if err := cmd.Run(); err != nil {
		return rep, fmt.Errorf("reader benchmarks: %w", err)
	}
	lines := ParseBench(out.String())
	res := ReaderResults{Command: "REDIS_URL=<harness redis> go test -run '^$' -bench . -benchmem ./cache/", Benchmarks: map[string]map[string]float64{}}
	for _, l := range lines {
		res.Benchmarks[l.Name] = l.Metrics
	}
	rep.Results = res
	rep.Figures = ReaderRows(lines)
	if len(rep.Figures) == 0 {
		return rep, fmt.Errorf("no reader benchmark results in the output of go %v", args)
	}
	return rep, nil
}

// ReaderRows turns the cache benchmarks' lines into table rows, with the
// reader's targets: a hit ≤ 100 ns with 0 allocs, invalidation p99 ≤ 5 ms.
func ReaderRows(lines []BenchLine) []Row {
	var rows []Row
	ns := func(l BenchLine) time.Duration { return time.Duration(l.Metrics["ns/op"]) }
	hgetall, hasBase := FindBench(lines, "BenchmarkHGetAll/redis")
	if hit, ok := FindBench(lines, "BenchmarkReaderHit"); ok {
		allocs := hit.Metrics["allocs/op"]
		worst := hit.Metrics["ns/op"]
		if allocs > 0 {
			worst = 1e9 // any allocation misses the target
		}
		ref := ""
		if hasBase {
			ref = "HGETALL " + FmtDur(ns(hgetall))
		}
		rows = append(rows, Row{Scenario: "reader", Figure: "hit (in-process tier)",
			Value: fmt.Sprintf("%.1f ns, %.0f allocs", hit.Metrics["ns/op"], allocs), Reference: ref,
			Target: NewTarget(worst, "<=", 100, "≤ 100 ns, 0 allocs")})
	}
	if par, ok := FindBench(lines, "BenchmarkReaderHitParallel"); ok {
		rows = append(rows, Row{Scenario: "reader", Figure: "hit, parallel (ns per op, wall clock)",
			Value: fmt.Sprintf("%.1f ns, %.0f allocs", par.Metrics["ns/op"], par.Metrics["allocs/op"])})
	}
	if miss, ok := FindBench(lines, "BenchmarkReaderMiss/redis"); ok {
		ref := ""
		if hp, ok := FindBench(lines, "BenchmarkHGetAll/redis+parse"); ok {
			ref = "HGETALL+parse " + FmtDur(ns(hp))
		}
		rows = append(rows, Row{Scenario: "reader", Figure: "miss (served from Redis)",
			Value: fmt.Sprintf("%s, %.0f allocs", FmtDur(ns(miss)), miss.Metrics["allocs/op"]), Reference: ref})
	}
	if inv, ok := FindBench(lines, "BenchmarkInvalidation/redis"); ok {
		p50, p99 := time.Duration(inv.Metrics["p50-µs"]*1e3), time.Duration(inv.Metrics["p99-µs"]*1e3)
		rows = append(rows, Row{Scenario: "reader", Figure: "invalidation, write → reader sees it, p99 (p50)",
			Value:  FmtDur(p99) + " (" + FmtDur(p50) + ")",
			Target: NewTarget(float64(p99)/1e6, "<=", 5, "≤ 5 ms")})
	}
	return rows
}
