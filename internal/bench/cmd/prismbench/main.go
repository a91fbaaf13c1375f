// Command prismbench is the load harness of `make bench`: it runs the
// daemon (prismcache serve), a redis-server and the Prismatic simulator,
// measures each scenario and prints one JSON line per scenario
// and a table (docs/benchmarks.md).
//
//	prismbench [-daemon bin/prismcache] [-quick] [-only intake,resync] [-keep] [-full-pass]
//	prismbench baseline -listen 127.0.0.1:0   (the ceiling's endpoint; started by the harness)
//	prismbench baseline -redis redis://…      (the durable floor: the same plus one SET NX per body)
//	prismbench baseline -redis redis://… -effect   (the effect floor: each event's own Redis work in one script)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/internal/bench"
	"github.com/prismcache/prismcache/internal/redisbatch"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "prismbench:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "baseline" {
		return runBaseline(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("prismbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := bench.Options{Root: ".", Out: stdout, Log: stderr, Quick: os.Getenv("BENCH_QUICK") == "1"}
	var only string
	fs.StringVar(&o.DaemonBin, "daemon", "", "prismcache binary to run as the daemon (built from -root when empty)")
	fs.StringVar(&o.Root, "root", o.Root, "the module's root directory")
	fs.BoolVar(&o.Quick, "quick", o.Quick, "short phases and small sizes, a smoke test (env BENCH_QUICK=1)")
	fs.StringVar(&only, "only", "", "comma-separated scenarios to run: "+strings.Join(bench.Scenarios, ","))
	fs.BoolVar(&o.FullPass, "full-pass", false, "million: sample the resync to its end (about 17 minutes at the default rate) rather than its first 150 s")
	fs.BoolVar(&o.Keep, "keep", false, "keep the work directory with the child processes' logs")
	cpuProfile := fs.String("cpuprofile", "", "write the harness's own CPU profile (load generator, simulator) to this file")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: prismbench [flags]\n\nRuns the load harness of make bench; JSON lines and a table on stdout, progress on stderr.\n\nExample:\n  BENCH_QUICK=1 prismbench -daemon bin/prismcache -only intake\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if only != "" {
		o.Only = strings.Split(only, ",")
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return bench.Run(ctx, o)
}

// runBaseline serves the baseline endpoint and prints its URL on the first
// line of stdout, for the harness that started it.
func runBaseline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("prismbench baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	redisURL := fs.String("redis", "", "serve the durable floor: record each body in this Redis before answering")
	prefix := fs.String("prefix", "bench:", "key prefix of the floor's records")
	effect := fs.Bool("effect", false, "with -redis, serve the effect floor: each event's own Redis work, in one script call, in place of the SET NX")
	if err := fs.Parse(args); err != nil {
		return err
	}
	secret := os.Getenv("PRISMBENCH_SECRET")
	if secret == "" {
		return errors.New("PRISMBENCH_SECRET is not set")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	h := bench.BaselineHandler(secret)
	if *redisURL != "" {
		opt, err := redis.ParseURL(*redisURL)
		if err != nil {
			return fmt.Errorf("-redis: %w", err)
		}
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		redisbatch.Install(rdb)
		h = bench.FloorHandler(secret, rdb, *prefix)
		if *effect {
			h = bench.EffectFloorHandler(secret, rdb, *prefix)
		}
	}
	srv := bench.BaselineServer(h)
	fmt.Fprintf(stdout, "http://%s\n", ln.Addr())
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}
