package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/store"
)

// Env is what every scenario shares: the work directory, the daemon's
// binary, the harness's own redis-server and the settings the daemon is
// started with. Scenarios run one at a time; each flushes Redis first.
type Env struct {
	// Dir holds the logs of the child processes.
	Dir string
	// DaemonBin is the prismcache binary, run as `prismcache serve`.
	DaemonBin string
	// Exe is this executable, run as `prismbench baseline` for the ceiling.
	Exe string
	// Root is the module's root, where `go test` runs the reader benchmarks.
	Root string
	// Quick shortens every phase (BENCH_QUICK=1): a smoke test, not figures.
	Quick bool
	// FullPass: the million scenario samples its resync to the end.
	FullPass bool
	Redis    *Redis
	// Log receives progress lines.
	Log io.Writer

	runs int
}

// Settings shared by every daemon the harness starts.
const (
	benchSecret = "prismbench-webhook-secret"
	benchAdmin  = "prismbench-admin-token-0123456789"
	benchPrefix = "bench:"
)

// Logf prints a progress line.
func (e *Env) Logf(format string, args ...any) {
	fmt.Fprintf(e.Log, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// pick returns quick when the run is quick, else full.
func pick[T any](e *Env, full, quick T) T {
	if e.Quick {
		return quick
	}
	return full
}

// Keys are the daemon's key names.
func (e *Env) Keys() store.Keys { return store.NewKeys(benchPrefix) }

// Flush empties the harness's Redis.
func (e *Env) Flush(ctx context.Context) error { return e.Redis.Client.FlushAll(ctx).Err() }

// Store is the daemon's store over the harness's Redis, for reading what
// the daemon wrote.
func (e *Env) Store() *store.Store {
	return store.New(e.Redis.Client, store.Options{Prefix: benchPrefix})
}

// CountEntries counts the cached entries with the daemon's own scan of
// Redis (SCAN, a batch at a time): KEYS would block Redis for as long as it
// takes on a large cache. Exact only while nothing writes.
func (e *Env) CountEntries(ctx context.Context) (int64, error) {
	var n int64
	err := e.Store().Scan(ctx, 1000, func(ids []string) error {
		n += int64(len(ids))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count the cached entries: %w", err)
	}
	return n, nil
}

// Daemon starts `prismcache serve` against the harness's Redis and sim,
// with --prismatic-rate rate and --workers workers.
func (e *Env) Daemon(ctx context.Context, sim *Sim, rate float64, workers int) (*Daemon, error) {
	e.runs++
	d, err := StartDaemon(ctx, DaemonConfig{
		Bin: e.DaemonBin, Dir: e.Dir, Name: fmt.Sprintf("daemon-%d", e.runs), RedisURL: e.Redis.URL, Prefix: benchPrefix,
		Secret: benchSecret, AdminToken: benchAdmin, PrismaticURL: sim.URL, Rate: rate, Workers: workers,
	})
	if err != nil {
		return nil, err
	}
	e.Logf("daemon pid %d on %s (rate %g/s, %d workers; log %s)", d.PID(), d.URL, rate, workers, d.Log)
	return d, nil
}

// DaemonDefaults starts a daemon with only the connection and secret
// settings, every other one at its default: the daemon as a user runs it.
func (e *Env) DaemonDefaults(ctx context.Context, sim *Sim) (*Daemon, error) {
	e.runs++
	d, err := StartDaemon(ctx, DaemonConfig{
		Bin: e.DaemonBin, Dir: e.Dir, Name: fmt.Sprintf("daemon-%d", e.runs), RedisURL: e.Redis.URL, Prefix: benchPrefix,
		Secret: benchSecret, AdminToken: benchAdmin, PrismaticURL: sim.URL, Defaults: true,
	})
	if err != nil {
		return nil, err
	}
	e.Logf("daemon pid %d on %s (default settings; log %s)", d.PID(), d.URL, d.Log)
	return d, nil
}

// Fill starts a daemon on a flushed Redis at a high rate, so its first sync
// caches every instance of sim quickly, and waits until the work set is
// empty. The caller closes the daemon (or keeps it).
func (e *Env) Fill(ctx context.Context, sim *Sim, rate float64, workers int) (*Daemon, time.Duration, error) {
	if err := e.Flush(ctx); err != nil {
		return nil, 0, err
	}
	start := time.Now()
	d, err := e.Daemon(ctx, sim, rate, workers)
	if err != nil {
		return nil, 0, err
	}
	if err := e.WaitIdle(ctx, d, 10*time.Minute); err != nil {
		d.Close()
		return nil, 0, err
	}
	took := time.Since(start)
	e.Logf("filled in %s", took.Round(time.Millisecond))
	return d, took, nil
}

// Prefill settings: a fill as fast as this machine allows.
const (
	prefillRate    = 10000
	prefillWorkers = 64
)

// Prefill caches every instance of sim with a daemon of its own, run at
// the prefill rate and closed once the work set is empty, so that a
// scenario starts its own daemon on a full Redis.
func (e *Env) Prefill(ctx context.Context, sim *Sim) error {
	d, _, err := e.Fill(ctx, sim, prefillRate, prefillWorkers)
	if err != nil {
		return err
	}
	d.Close()
	return nil
}

// WaitIdle waits until a complete sync is recorded and the work set has
// nothing queued or in flight.
func (e *Env) WaitIdle(ctx context.Context, d *Daemon, limit time.Duration) error {
	k := e.Keys()
	rdb := e.Redis.Client
	shards, _, err := refresh.RecordedShards(ctx, rdb, k, 0)
	if err != nil {
		return err
	}
	ws := refresh.NewWorkSet(rdb, k, refresh.WorkSetOptions{Shards: shards})
	deadline := time.Now().Add(limit)
	for {
		synced, err := rdb.HExists(ctx, k.SyncMarker(), "at").Result()
		if err != nil {
			return err
		}
		s, err := ws.Stats(ctx)
		if err != nil {
			return err
		}
		if synced && s.Queued == 0 && s.Leased == 0 {
			return nil
		}
		if d != nil && d.Exited() {
			return fmt.Errorf("the daemon exited:\n%s", d.Tail(20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("work set not empty after %s (synced %v, queued %d, leased %d)", limit, synced, s.Queued, s.Leased)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Watcher follows the daemon's change feed (<prefix>events) and tells the
// deployed version of every refreshed entry: the one the message carries,
// or, from a daemon whose messages lack it, the one read from the entry.
type Watcher struct {
	ps   *redis.PubSub
	wg   sync.WaitGroup
	work chan seen
}

type seen struct {
	id string
	at time.Time
}

// Watch subscribes to the change feed; fn is called (from several
// goroutines) with each refreshed entry's deployed version and the time its
// message arrived.
func (e *Env) Watch(ctx context.Context, fn func(id string, version int, at time.Time)) (*Watcher, error) {
	rdb := e.Redis.Client
	key := e.Keys()
	w := &Watcher{ps: rdb.Subscribe(ctx, key.Events()), work: make(chan seen, 1<<16)}
	if _, err := w.ps.Receive(ctx); err != nil {
		_ = w.ps.Close()
		return nil, err
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(w.work)
		for m := range w.ps.Channel(redis.WithChannelSize(1 << 16)) {
			at := time.Now()
			var msg cache.Message
			if json.Unmarshal([]byte(m.Payload), &msg) != nil || msg.Change != cache.ChangeRefreshed {
				continue
			}
			if msg.DeployedVersion > 0 {
				fn(msg.ID, msg.DeployedVersion, at)
				continue
			}
			w.work <- seen{msg.ID, at}
		}
	}()
	for range 8 {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for s := range w.work {
				v, err := rdb.HGet(context.Background(), key.Instance(s.id), cache.FieldDeployedVersion).Result()
				if err != nil {
					continue
				}
				n, err := strconv.Atoi(v)
				if err != nil {
					continue
				}
				fn(s.id, n, s.at)
			}
		}()
	}
	return w, nil
}

// Close ends the subscription.
func (w *Watcher) Close() {
	_ = w.ps.Close()
	w.wg.Wait()
}
