//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/internal/prismaticsim"
	"github.com/prismcache/prismcache/internal/store"
)

// TestOutages measures how long the cache takes to be right again after
// the faults of real operation, with two replicas on their default settings
// (the periodic resync every 15 minutes, a rate of 10 requests a second):
//
//   - Prismatic's API down for OUTAGE_API (90s) while 20 instances are each
//     deployed once — every deploy acknowledged;
//   - Redis down for OUTAGE_REDIS (15s) and back with its data, while 20
//     instances are each deployed once and every delivery is refused and
//     never sent again;
//   - a replica killed (SIGKILL) while it holds claims.
//
// Each prints the time from the end of the fault (or the kill) until every
// entry matches Prismatic.
func TestOutages(t *testing.T) {
	apiOutage := envDuration(t, "OUTAGE_API", 90*time.Second)
	redisOutage := envDuration(t, "OUTAGE_REDIS", 15*time.Second)
	dir := t.TempDir()
	bin := buildDaemon(t, dir)
	rs := startPersistentRedis(t, dir)
	sim, err := prismaticsim.New(prismaticsim.Options{Seed: 11, Customers: 7, WebhookSecret: secret, WebhookRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(sim.Handler())
	defer simSrv.Close()
	defer sim.Close()
	replicas := []*replica{
		newPlainReplica(t, bin, dir, "a", rs.url, simSrv.URL),
		newPlainReplica(t, bin, dir, "b", rs.url, simSrv.URL),
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range replicas {
				r.dumpLog(t)
			}
		}
		for _, r := range replicas {
			r.stop()
		}
	})
	for _, r := range replicas {
		r.start(t)
	}
	lbSrv := httptest.NewServer(newBalancer(replicas))
	defer lbSrv.Close()
	sim.SetWebhookTarget(lbSrv.URL+"/webhooks/prismatic", secret)
	ids := instanceIDs(sim)[:20]
	waitMatch(t, sim, rs.client, ids, 3*time.Minute)

	t.Run("APIOutage", func(t *testing.T) {
		if err := sim.SetFaults(prismaticsim.Faults{ErrorRate: 1}); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		acked := 0
		for _, id := range ids {
			deployChange(t, sim, id, func(status int) {
				if status == 200 {
					acked++
				}
			})
		}
		time.Sleep(time.Until(began.Add(apiOutage)))
		if err := sim.SetFaults(prismaticsim.Faults{}); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		took := waitMatch(t, sim, rs.client, ids, 5*time.Minute)
		t.Logf("API down %s, %d of %d deploys acknowledged: every entry matched %s after the API answered again", apiOutage, acked, len(ids), took.Round(100*time.Millisecond))
		fmt.Printf("OUTAGE api_down=%s acked=%d converged_after_recovery=%s\n", apiOutage, acked, took.Round(100*time.Millisecond))
		_ = back
	})

	t.Run("RedisRestartWithData", func(t *testing.T) {
		rs.stop(t)
		began := time.Now()
		refused := 0
		for _, id := range ids {
			deployChange(t, sim, id, func(status int) {
				if status != 200 {
					refused++
				}
			})
		}
		time.Sleep(time.Until(began.Add(redisOutage)))
		rs.start(t)
		took := waitMatch(t, sim, rs.client, ids, 5*time.Minute)
		t.Logf("Redis down %s, %d of %d deliveries refused and never sent again: every entry matched %s after Redis answered again", redisOutage, refused, len(ids), took.Round(100*time.Millisecond))
		fmt.Printf("OUTAGE redis_down=%s refused=%d converged_after_recovery=%s\n", redisOutage, refused, took.Round(100*time.Millisecond))
	})

	t.Run("ReplicaKilledWithClaims", func(t *testing.T) {
		// Replica a alone, slow fetches, every webhook to it: it claims all
		// the deploys and is killed while it holds them; replica b runs again
		// from the moment of the kill and must do a's work.
		replicas[1].stop()
		if err := sim.SetFaults(prismaticsim.Faults{Latency: 30 * time.Second}); err != nil {
			t.Fatal(err)
		}
		sim.SetWebhookTarget("http://"+replicas[0].addr+"/webhooks/prismatic", secret)
		deployed := ids[:8]
		for _, id := range deployed {
			deployChange(t, sim, id, nil)
		}
		deadline := time.Now().Add(time.Minute)
		for leased(t, rs.client) < int64(len(deployed)) {
			if time.Now().After(deadline) {
				t.Fatalf("replica a holds %d claims, want %d", leased(t, rs.client), len(deployed))
			}
			time.Sleep(50 * time.Millisecond)
		}
		held := leased(t, rs.client)
		replicas[0].kill()
		killed := time.Now()
		if err := sim.SetFaults(prismaticsim.Faults{}); err != nil {
			t.Fatal(err)
		}
		replicas[1].start(t)
		waitMatch(t, sim, rs.client, ids, 5*time.Minute)
		took := time.Since(killed)
		t.Logf("replica a killed holding %d claims: every entry matched %s after the kill", held, took.Round(100*time.Millisecond))
		fmt.Printf("OUTAGE replica_killed_claims=%d converged_after_kill=%s\n", held, took.Round(100*time.Millisecond))
	})
}

// deployChange changes a plain variable of the instance and deploys it,
// telling report each delivery's HTTP status.
func deployChange(t *testing.T, sim *prismaticsim.Sim, id string, report func(status int)) {
	t.Helper()
	in, err := sim.Instance(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, cv := range in.Config {
		if cv.DataType == "STRING" {
			if _, err := sim.SetConfig(id, cv.Key, fmt.Sprintf("v%d", time.Now().UnixNano())); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	res, err := sim.Deploy(id)
	if err != nil {
		t.Fatal(err)
	}
	if report != nil {
		for _, w := range res.Webhooks {
			report(w.Status)
		}
	}
}

// waitMatch waits until every instance's entry matches the simulator's
// deployed truth, and returns how long that took.
func waitMatch(t *testing.T, sim *prismaticsim.Sim, rdb *redis.Client, ids []string, limit time.Duration) time.Duration {
	t.Helper()
	ctx := context.Background()
	db := store.New(rdb, store.Options{Prefix: prefix})
	start := time.Now()
	for {
		last := ""
		for _, id := range ids {
			truth, err := sim.Deployed(id)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := sim.Instance(id)
			if err != nil {
				t.Fatal(err)
			}
			st, err := db.Load(ctx, id)
			if err != nil || st.Entry.Doc == nil {
				last = fmt.Sprintf("%s not cached (%v)", id, err)
				break
			}
			if msg := differs(st.Entry, truth, stored.NeedsDeploy); msg != "" {
				last = id + ": " + msg
				break
			}
		}
		if last == "" {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("no match within %s: %s", limit, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leased counts the claims held in the work set, every shard.
func leased(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	var n int64
	iter := rdb.Scan(context.Background(), 0, prefix+"{work:*}:leases", 100).Iterator()
	for iter.Next(context.Background()) {
		n += rdb.ZCard(context.Background(), iter.Val()).Val()
	}
	return n
}

func newPlainReplica(t *testing.T, bin, dir, name, redisURL, simURL string) *replica {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	return &replica{name: name, bin: bin, dir: dir, addr: addr, env: []string{
		"PRISMCACHE_LISTEN=" + addr, "PRISMCACHE_REDIS_URL=" + redisURL, "PRISMCACHE_REDIS_PREFIX=" + prefix,
		"PRISMCACHE_WEBHOOK_SECRET=" + secret, "PRISMATIC_URL=" + simURL, "PRISMATIC_TOKEN=" + prismaticsim.DefaultAccessToken,
		"PRISMCACHE_LOG_LEVEL=info",
	}}
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return d
}

// persistentRedis is a redis-server of the test's own that keeps its data
// in an append-only file, so that it can be stopped and started with it.
type persistentRedis struct {
	bin, dir, url string
	port          int
	cmd           *exec.Cmd
	done          chan struct{}
	client        *redis.Client
}

func startPersistentRedis(t *testing.T, dir string) *persistentRedis {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed, and CI must run the chaos tests")
		}
		t.Skip("redis-server is not installed; install it (Debian: apt-get install redis-server) to run the chaos tests")
	}
	port := freePort(t)
	r := &persistentRedis{bin: bin, dir: filepath.Join(dir, "redis"), port: port, url: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.client = redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	r.start(t)
	t.Cleanup(func() { r.stop(t); _ = r.client.Close() })
	return r
}

func (r *persistentRedis) start(t *testing.T) {
	r.cmd = exec.Command(r.bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(r.cmd, r.done)
	deadline := time.Now().Add(20 * time.Second)
	for r.client.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *persistentRedis) stop(t *testing.T) {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
}
