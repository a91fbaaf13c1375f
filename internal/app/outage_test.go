package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/prismaticsim"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/refresh"
)

// The tests of this file break what breaks in production — Prismatic's API,
// Redis, a replica — for longer than any retry limit, and check that every
// acknowledged change still reaches the cache once the fault ends, with the
// periodic resync pushed out of reach so it cannot be what repairs it.

// noResync makes the periodic resync too rare to help a test.
func noResync(c *config.Config) { c.ResyncInterval = 24 * time.Hour }

// untilConverged waits, with a generous deadline, until every instance's
// entry is what a fresh fetch from the simulator gives: the same document
// and deployed version, and stale exactly when Prismatic says needsDeploy.
func untilConverged(t *testing.T, h *harness, ids []string) {
	t.Helper()
	api, err := graphql.New(graphql.Options{URL: h.app.Config.PrismaticURL, Token: prismaticsim.DefaultAccessToken})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	why := ""
	for time.Now().Before(deadline) {
		if why = diffFromPrismatic(h, api, ids); why == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the cache did not converge: %s", why)
}

// diffFromPrismatic says how the first entry that differs from Prismatic
// differs, "" when none does.
func diffFromPrismatic(h *harness, api *graphql.Client, ids []string) string {
	ctx := context.Background()
	for _, id := range ids {
		inst, err := api.FetchInstance(ctx, id)
		if err != nil || inst == nil {
			return fmt.Sprintf("%s: fetch from the simulator: %v", id, err)
		}
		want, err := refresh.ToDoc(inst)
		if err != nil {
			return err.Error()
		}
		st, err := h.store.Load(ctx, id)
		if err != nil {
			return fmt.Sprintf("%s: %v", id, err)
		}
		e := st.Entry
		if e.Doc == nil {
			return id + ": not cached"
		}
		if e.Stale != inst.NeedsDeploy {
			return fmt.Sprintf("%s: stale %v (%s, %q), Prismatic says needsDeploy %v", id, e.Stale, e.StaleReason, e.LastError, inst.NeedsDeploy)
		}
		if e.DeployedVersion != inst.DeployedVersion {
			return fmt.Sprintf("%s: deployed_version %d, Prismatic %d", id, e.DeployedVersion, inst.DeployedVersion)
		}
		if !inst.NeedsDeploy {
			got, _ := json.Marshal(e.Doc)
			exp, _ := json.Marshal(want)
			if string(got) != string(exp) {
				return fmt.Sprintf("%s: doc\n %s\nwant\n %s", id, got, exp)
			}
		}
	}
	return ""
}

// changeAndDeploy changes a plain variable of each instance and deploys it.
func changeAndDeploy(t *testing.T, h *harness, ids []string) []prismaticsim.Result {
	t.Helper()
	var out []prismaticsim.Result
	for _, id := range ids {
		key, _, next := plainVar(t, h.sim, id)
		if _, err := h.sim.SetConfig(id, key, next); err != nil {
			t.Fatal(err)
		}
		res, err := h.sim.Deploy(id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res)
	}
	return out
}

// someInstances returns n instances the first sync cached (system
// instances, which the listing leaves out, are cached only by their own
// webhooks).
func someInstances(t *testing.T, h *harness, n int) []string {
	t.Helper()
	var ids []string
	for _, in := range h.sim.Instances() {
		if len(ids) < n && h.entry(t, in.ID).Doc != nil {
			ids = append(ids, in.ID)
		}
	}
	if len(ids) < n {
		t.Fatalf("only %d cached instances, want %d", len(ids), n)
	}
	return ids
}

func readyState(t *testing.T, h *harness) string {
	t.Helper()
	resp, err := http.Get(h.app.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return body.Status
}

// TestAPIOutageLongerThanAnyRetryLimitConverges: deploys acknowledged while
// Prismatic's API fails reach the cache once it answers again — the entries
// say fetch_failed meanwhile, keep being retried, and health recovers with
// the API.
func TestAPIOutageLongerThanAnyRetryLimitConverges(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		var mu sync.Mutex
		attempts := map[string]int{} // failed runs by id, as the workers report them
		h := startE2E(t, b, e2eOptions{
			configure: func(c *config.Config) { noResync(c); c.MaxAttempts = 2 },
			onResult: func(r refresh.Result) {
				mu.Lock()
				attempts[r.ID] = max(attempts[r.ID], r.Attempts)
				mu.Unlock()
			},
		})
		ids := someInstances(t, h, 4)
		if err := h.sim.SetFaults(prismaticsim.Faults{ErrorRate: 1}); err != nil {
			t.Fatal(err)
		}
		for i, res := range changeAndDeploy(t, h, ids) {
			checkDelivered(t, "deploy of "+ids[i], res, nil)
		}
		// Past the retry limit: every entry says so, and is still retried.
		deadline := time.Now().Add(60 * time.Second)
		for _, id := range ids {
			for h.entry(t, id).StaleReason != "fetch_failed" {
				if time.Now().After(deadline) {
					t.Fatalf("%s never said fetch_failed: %+v", id, h.entry(t, id))
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		// And retried past that, on and on.
		for _, id := range ids {
			for {
				mu.Lock()
				n := attempts[id]
				mu.Unlock()
				if n > 3 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s failed %d times and was not retried further", id, n)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		for readyState(t, h) != "degraded" {
			if time.Now().After(deadline) {
				t.Fatalf("/readyz says %q during the outage, want degraded", readyState(t, h))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if s, _ := h.app.WorkStats(context.Background()); s.Queued+s.Leased != int64(len(ids)) {
			t.Fatalf("work set %+v during the outage: every acknowledged deploy must stay queued", s)
		}
		if err := h.sim.SetFaults(prismaticsim.Faults{}); err != nil {
			t.Fatal(err)
		}
		untilConverged(t, h, ids)
		for readyState(t, h) != "ok" {
			if time.Now().After(deadline.Add(60 * time.Second)) {
				t.Fatalf("/readyz says %q after the API recovered, want ok", readyState(t, h))
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// redisProc is a redis-server of the test's own that keeps its data on
// disk (append-only file), so it can be stopped and started again with it.
type redisProc struct {
	bin, dir string
	port     int
	cmd      *exec.Cmd
	exited   chan struct{}
}

// persistentRedis starts one. Without redis-server the test is skipped, or
// fails under CI (CI=true), where it must run.
func persistentRedis(t *testing.T) *redisProc {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is not installed, and CI must run this test")
		}
		t.Skip("redis-server is not installed; install it (Debian: apt-get install redis-server) to run this test")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &redisProc{bin: bin, dir: t.TempDir(), port: port}
	r.start(t)
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *redisProc) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

func (r *redisProc) start(t *testing.T) {
	t.Helper()
	r.cmd = exec.Command(r.bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(r.port), "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(r.cmd, r.exited)
	c := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			t.Fatalf("redis-server on %s did not answer:\n%s", r.addr(), log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop shuts the server down as an operator or a crash-free restart would:
// SIGTERM, which flushes the append-only file.
func (r *redisProc) stop(t *testing.T) {
	t.Helper()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(20 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
	r.cmd = nil
}

// TestRedisBackWithItsDataRepairs: Redis stops; meanwhile every delivery of
// a deploy is refused and never redelivered (the sender gave up). When
// Redis comes back with its data — sync marker and all — the daemon repairs
// at once instead of trusting the periodic resync.
func TestRedisBackWithItsDataRepairs(t *testing.T) {
	rp := persistentRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rp.addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	b := redistest.Backend{Name: "redis", Client: rdb, URL: "redis://" + rp.addr(), Prefix: "outage:"}
	h := startE2E(t, b, e2eOptions{
		configure: noResync,
		sim:       &prismaticsim.Options{Seed: 7, Customers: 3, WebhookRetries: 1, WebhookBackoff: 50 * time.Millisecond},
	})
	ids := someInstances(t, h, 4)
	rp.stop(t)
	for i, res := range changeAndDeploy(t, h, ids) {
		for _, w := range res.Webhooks {
			if w.Status == http.StatusOK {
				t.Fatalf("deploy of %s was acknowledged with Redis down", ids[i])
			}
		}
	}
	rp.start(t)
	untilConverged(t, h, ids)
	if n, _ := rdb.Exists(context.Background(), h.store.Keys().SyncMarker()).Result(); n != 1 {
		t.Fatal("the sync marker is gone: Redis did not come back with its data, so this did not test a repair")
	}
}

// gatedTransport holds every GetInstance request once armed, until the
// request's context ends: the replica's fetches hang, its claims stay held.
type gatedTransport struct {
	armed sync.Once
	on    chan struct{}
	held  chan string
}

func newGatedTransport() *gatedTransport {
	return &gatedTransport{on: make(chan struct{}), held: make(chan string, 64)}
}

func (g *gatedTransport) arm() { g.armed.Do(func() { close(g.on) }) }

func (g *gatedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	select {
	case <-g.on:
		body, _ := io.ReadAll(req.Body)
		req.Body.Close()
		if strings.Contains(string(body), "GetInstance") {
			g.held <- req.URL.Path
			<-req.Context().Done()
			return nil, req.Context().Err()
		}
		req.Body = io.NopCloser(strings.NewReader(string(body)))
	default:
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestDeadReplicasClaimsReturnWithinTheLease: a replica that dies holding
// claims (it can no longer reach Redis: no renewal, no release) loses them
// when their lease ends, and another replica does the work.
func TestDeadReplicasClaimsReturnWithinTheLease(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		lease := func(c *config.Config) { noResync(c); c.WorkLease = 2 * time.Second }
		gate := newGatedTransport()
		own := redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(b.URL, "redis://")})
		if !b.Real() {
			own = redis.NewClient(&redis.Options{Addr: b.Mini.Addr()})
		} else if opts, err := redis.ParseURL(b.URL); err == nil {
			own = redis.NewClient(opts)
		}
		h := startE2E(t, b, e2eOptions{configure: lease, transport: gate, redis: own, crashable: true})
		ids := someInstances(t, h, 2)
		gate.arm()
		for i, res := range changeAndDeploy(t, h, ids) {
			checkDelivered(t, "deploy of "+ids[i], res, nil)
		}
		for range ids {
			select {
			case <-gate.held:
			case <-time.After(30 * time.Second):
				t.Fatal("the first replica never claimed the deploys")
			}
		}
		// The replica dies with both claims in hand.
		_ = own.Close()
		survivor := startReplica(t, b, h.app.Config.PrismaticURL, e2eOptions{configure: lease})
		h2 := &harness{sim: h.sim, app: survivor, store: survivor.Store(), b: b}
		untilConverged(t, h2, ids)
	})
}
