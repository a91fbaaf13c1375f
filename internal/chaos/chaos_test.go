//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/prismaticsim"
	"github.com/prismcache/prismcache/internal/store"
)

// Scale of the run; CHAOS_OPS overrides the number of changes, which are
// spread over workloadTime.
const (
	customers    = 100 // × 3 integrations = 300 instances
	opsTotal     = 3000
	workloadTime = 40 * time.Second
	secret       = "chaos-secret"
	prefix       = "chaos:"
)

func TestChaos(t *testing.T) {
	ops := opsTotal
	if s := os.Getenv("CHAOS_OPS"); s != "" {
		ops, _ = strconv.Atoi(s)
	}
	dir := t.TempDir()
	bin := buildDaemon(t, dir)
	redisURL, rdb := startRedis(t, dir)

	sim, err := prismaticsim.New(prismaticsim.Options{
		Seed: 42, Customers: customers, WebhookSecret: secret, WebhookRetries: 6, WebhookBackoff: 200 * time.Millisecond,
		Faults: prismaticsim.Faults{
			Latency: 50 * time.Millisecond, LatencyJitter: 20 * time.Millisecond,
			ErrorRate: 0.2, RateLimitRate: 0.03, RetryAfter: time.Second,
			WebhookDropRate: 0.03, WebhookDuplicateRate: 0.1, WebhookReorderRate: 0.1,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(sim.Handler())
	defer simSrv.Close()
	defer sim.Close()

	replicas := []*replica{newReplica(t, bin, dir, "a", redisURL, simSrv.URL), newReplica(t, bin, dir, "b", redisURL, simSrv.URL)}
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range replicas {
				r.dumpLog(t)
			}
		}
	})
	for _, r := range replicas {
		r.start(t)
	}
	defer func() {
		for _, r := range replicas {
			r.stop()
		}
	}()
	lb := newBalancer(replicas)
	lbSrv := httptest.NewServer(lb)
	defer lbSrv.Close()
	sim.SetWebhookTarget(lbSrv.URL+"/webhooks/prismatic", secret)

	obs := observe(t, rdb)
	defer obs.close()

	// The first sync populates Redis (through 20% errors and 429s).
	waitConverged(t, sim, rdb, 3*time.Minute)
	sim.ResetStats()
	t.Logf("first sync done; starting %d changes and deploys over %d instances", ops, len(instanceIDs(sim)))

	// Workload, with one replica killed and restarted again and again and
	// Redis flushed once half-way.
	ctx, stop := context.WithCancel(context.Background())
	var kills atomic.Int64
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		rng := rand.New(rand.NewPCG(7, 7))
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(1500+rng.IntN(2000)) * time.Millisecond):
			}
			replicas[1].kill()
			kills.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(300+rng.IntN(700)) * time.Millisecond):
			}
			replicas[1].start(t)
		}
	}()
	ids := instanceIDs(sim)
	start := time.Now()
	var sent atomic.Int64
	var wg sync.WaitGroup
	per := ops / 8
	pace := workloadTime * 8 / time.Duration(max(ops, 1))
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for i := range per {
				id := ids[rng.IntN(len(ids))]
				if rng.IntN(100) < 60 {
					if key, val := changeFor(t, sim, id, rng); key != "" {
						_, _ = sim.SetConfig(id, key, val)
					}
				} else {
					_, _ = sim.Deploy(id)
				}
				sent.Add(1)
				time.Sleep(pace)
				if w == 0 && i == per/2 {
					if err := rdb.FlushAll(context.Background()).Err(); err != nil {
						t.Errorf("flush: %v", err)
					}
					t.Logf("Redis flushed after %s", time.Since(start).Round(time.Millisecond))
				}
			}
		}()
	}
	wg.Wait()
	// Operators deploy what they changed. An instance left with undeployed
	// changes cannot be compared with its deployed truth by anyone: the API
	// shows only its stored config (its entry stays stale, needs_deploy).
	pending := 0
	for _, in := range sim.Instances() {
		if !in.IsSystem && in.NeedsDeploy {
			_, _ = sim.Deploy(in.ID)
			pending++
			sent.Add(1)
		}
	}
	t.Logf("deployed the %d instances left with pending changes", pending)
	stop()
	<-chaosDone
	replicas[1].start(t) // make sure both run for the end
	workload := time.Since(start)
	quiet := time.Now()
	waitConverged(t, sim, rdb, 4*time.Minute)
	converge := time.Since(quiet)

	st := sim.Stats()
	most, mostID := int64(0), ""
	for id, n := range st.InstanceFetchesByID {
		if n > most {
			most, mostID = n, id
		}
	}
	violations := obs.violations()
	t.Logf("changes and deploys: %d in %s; replica kills: %d; events: %d; webhooks delivered: %d; API requests: %d (500s %d, 429s %d); instance fetches: %d; most fetches for one instance: %d (%s); change-feed messages checked: %d; time to converge after the last change: %s",
		sent.Load(), workload.Round(time.Millisecond), kills.Load(), st.WebhookEvents, st.WebhooksSent, st.APIRequests, st.ServerErrors, st.RateLimited,
		st.InstanceFetches, most, mostID, obs.seen.Load(), converge.Round(time.Millisecond))
	fmt.Printf("CHAOS changes=%d kills=%d events=%d webhooks_delivered=%d api_requests=%d fetches=%d max_fetches_one_instance=%d feed_checked=%d converge=%s\n",
		sent.Load(), kills.Load(), st.WebhookEvents, st.WebhooksSent, st.APIRequests, st.InstanceFetches, most, obs.seen.Load(), converge.Round(time.Millisecond))
	if len(violations) > 0 {
		t.Fatalf("%d published changes lowered a deployed version, e.g. %v", len(violations), violations[:min(5, len(violations))])
	}
}

// changeFor picks a plain variable of the instance and a new valid value.
func changeFor(t *testing.T, sim *prismaticsim.Sim, id string, rng *rand.Rand) (string, string) {
	in, err := sim.Instance(id)
	if err != nil {
		return "", ""
	}
	for _, cv := range in.Config {
		switch cv.DataType {
		case "NUMBER":
			return cv.Key, strconv.Itoa(rng.IntN(100000))
		case "STRING":
			return cv.Key, fmt.Sprintf("v%d", rng.IntN(100000))
		}
	}
	return "", ""
}

func instanceIDs(sim *prismaticsim.Sim) []string {
	var ids []string
	for _, in := range sim.Instances() {
		if !in.IsSystem {
			ids = append(ids, in.ID)
		}
	}
	return ids
}

// waitConverged waits until every deployed instance's entry equals the
// simulator's deployed truth.
func waitConverged(t *testing.T, sim *prismaticsim.Sim, rdb *redis.Client, limit time.Duration) {
	t.Helper()
	ctx := context.Background()
	db := store.New(rdb, store.Options{Prefix: prefix})
	deadline := time.Now().Add(limit)
	var last string
	for {
		last = ""
		for _, id := range instanceIDs(sim) {
			truth, err := sim.Deployed(id)
			if err != nil {
				continue
			}
			st, err := db.Load(ctx, id)
			if err != nil || st.Entry.Doc == nil {
				last = fmt.Sprintf("%s not cached (%v)", id, err)
				break
			}
			stored, err := sim.Instance(id)
			if err != nil {
				continue
			}
			if msg := differs(st.Entry, truth, stored.NeedsDeploy); msg != "" {
				last = id + ": " + msg
				break
			}
		}
		if last == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no convergence within %s: %s", limit, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// differs compares an entry with the deployed truth: same deployed version
// and enabled flag, stale exactly when changes are pending, and the deployed
// values — except for an entry labelled undeployed_config, whose doc holds
// stored values by design (docs/redis.md).
func differs(e cache.Entry, truth prismaticsim.InstanceSnapshot, pending bool) string {
	if e.DeployedVersion != truth.DeployedVersion {
		return fmt.Sprintf("deployed_version %d, truth %d", e.DeployedVersion, truth.DeployedVersion)
	}
	if e.Enabled != truth.Enabled {
		return fmt.Sprintf("enabled %v, truth %v", e.Enabled, truth.Enabled)
	}
	if e.Stale != pending {
		return fmt.Sprintf("stale %v (%s), but changes pending in Prismatic: %v", e.Stale, e.StaleReason, pending)
	}
	if e.StaleReason == cache.StaleUndeployed {
		return ""
	}
	for _, cv := range truth.Config {
		if cv.DataType == "CONNECTION" || cv.Value == nil {
			continue
		}
		got := e.Doc.Config[cv.Key].Value
		if got == nil || *got != *cv.Value {
			return fmt.Sprintf("%s = %v, truth %q", cv.Key, got, *cv.Value)
		}
	}
	return ""
}

// observer checks every message on the change feed: no change may lower an
// instance's deployed version.
type observer struct {
	sub  *redis.PubSub
	mu   sync.Mutex
	max  map[string]int
	bad  []string
	seen atomic.Int64
	done chan struct{}
}

func observe(t *testing.T, rdb *redis.Client) *observer {
	ctx := context.Background()
	o := &observer{sub: rdb.Subscribe(ctx, prefix+"events"), max: map[string]int{}, done: make(chan struct{})}
	if _, err := o.sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(o.done)
		for m := range o.sub.Channel() {
			var msg cache.Message
			if json.Unmarshal([]byte(m.Payload), &msg) != nil || msg.Change == cache.ChangeDeleted {
				continue
			}
			o.seen.Add(1)
			v, err := rdb.HGet(ctx, prefix+"instance:{"+msg.ID+"}", "deployed_version").Int()
			if err != nil {
				continue // flushed or gone meanwhile
			}
			o.mu.Lock()
			if v < o.max[msg.ID] {
				o.bad = append(o.bad, fmt.Sprintf("%s: %d after %d", msg.ID, v, o.max[msg.ID]))
			} else {
				o.max[msg.ID] = v
			}
			o.mu.Unlock()
		}
	}()
	return o
}

func (o *observer) violations() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.bad...)
}

func (o *observer) close() { _ = o.sub.Close(); <-o.done }

// replica is one daemon process.
type replica struct {
	name, bin, dir, addr string
	env                  []string
	mu                   sync.Mutex
	cmd                  *exec.Cmd
}

func newReplica(t *testing.T, bin, dir, name, redisURL, simURL string) *replica {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	return &replica{name: name, bin: bin, dir: dir, addr: addr, env: []string{
		"PRISMCACHE_LISTEN=" + addr, "PRISMCACHE_REDIS_URL=" + redisURL, "PRISMCACHE_REDIS_PREFIX=" + prefix,
		"PRISMCACHE_WEBHOOK_SECRET=" + secret, "PRISMATIC_URL=" + simURL, "PRISMATIC_TOKEN=" + prismaticsim.DefaultAccessToken,
		"PRISMCACHE_PRISMATIC_RATE=400", "PRISMCACHE_WORKERS=16", "PRISMCACHE_MAX_ATTEMPTS=20",
		"PRISMCACHE_RESYNC_INTERVAL=10s", "PRISMCACHE_WORK_LEASE=5s", "PRISMCACHE_LOG_LEVEL=warn",
	}}
}

func (r *replica) start(t *testing.T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return
	}
	log, err := os.OpenFile(filepath.Join(r.dir, "replica-"+r.name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(r.bin, "serve")
	cmd.Env = append(os.Environ(), r.env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.cmd = cmd
	go func() { _ = cmd.Wait(); log.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + r.addr + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("replica %s did not start; see %s", r.name, log.Name())
}

// dumpLog prints the end of the replica's log.
func (r *replica) dumpLog(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(r.dir, "replica-"+r.name+".log"))
	if err != nil {
		return
	}
	lines := bytes.Split(b, []byte("\n"))
	t.Logf("last lines of replica %s's log:\n%s", r.name, bytes.Join(lines[max(0, len(lines)-40):], []byte("\n")))
}

func (r *replica) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		r.cmd = nil
	}
}

func (r *replica) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		r.cmd = nil
	}
}

func (r *replica) alive() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd != nil
}

// balancer spreads webhooks over the live replicas, as a load balancer in
// front of them would, trying the next one when a connection fails.
type balancer struct {
	replicas []*replica
	next     atomic.Int64
	client   *http.Client
}

func newBalancer(rs []*replica) *balancer {
	return &balancer{replicas: rs, client: &http.Client{Timeout: 10 * time.Second}}
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	n := int(b.next.Add(1))
	for i := range len(b.replicas) {
		rep := b.replicas[(n+i)%len(b.replicas)]
		if !rep.alive() {
			continue
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+rep.addr+r.URL.Path, bytesReader(body))
		req.Header = r.Header.Clone()
		resp, err := b.client.Do(req)
		if err != nil {
			continue
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
	http.Error(w, "no replica answered", http.StatusBadGateway)
}

func buildDaemon(t *testing.T, dir string) string {
	bin := filepath.Join(dir, "prismcache")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/prismcache")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the daemon: %v\n%s", err, out)
	}
	return bin
}

// startRedis starts a redis-server of the test's own: the test flushes it.
func startRedis(t *testing.T, dir string) (string, *redis.Client) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed, and CI must run the chaos test")
		}
		t.Skip("redis-server is not installed; install it (Debian: apt-get install redis-server) to run the chaos test")
	}
	port := freePort(t)
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	t.Cleanup(func() { _ = rdb.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Sprintf("redis://127.0.0.1:%d/0", port), rdb
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
