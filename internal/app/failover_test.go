package app_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/app"
	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/prismaticsim"
	"github.com/prismcache/prismcache/internal/redistest"
)

// simNoRetries is the simulator of these suites: each webhook is sent once,
// so a test sees every answer the daemon gives.
func simNoRetries() *prismaticsim.Options {
	return &prismaticsim.Options{Seed: 7, Customers: 3, WebhookRetries: -1}
}

// TestRefusalWhenRedisStops stops the daemon's only Redis: each webhook is
// answered 503, so that its sender retries later. It logs how long each
// answer took (run with -v; the figure is measured here, not asserted).
func TestRefusalWhenRedisStops(t *testing.T) {
	srv := redistest.StartServer(t)
	b := redistest.Backend{Name: "redis", Client: srv.Client(), URL: srv.URL(), Prefix: "prismcache:"}
	h := startE2E(t, b, e2eOptions{sim: simNoRetries(), ownClient: true})
	ids := h.sim.Instances()
	srv.Kill()
	var took []time.Duration
	for i := range 10 {
		start := time.Now()
		res, err := h.sim.Deploy(ids[i%len(ids)].ID)
		if err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
		if rec := res.Webhooks[0]; rec.Status != http.StatusServiceUnavailable {
			t.Fatalf("with Redis stopped a webhook was answered %d %s, want 503", rec.Status, rec.Error)
		}
	}
	t.Logf("with Redis stopped, each 503 took %v", took)
}

// attemptLog is the simulator's HTTP transport in the failover suites: it
// records the answer to every webhook delivery attempt, retries included.
type attemptLog struct {
	mu       sync.Mutex
	attempts []attempt
}

type attempt struct {
	sent, answered time.Time
	status         int // 0: no answer
}

func (l *attemptLog) RoundTrip(req *http.Request) (*http.Response, error) {
	a := attempt{sent: time.Now()}
	resp, err := http.DefaultTransport.RoundTrip(req)
	a.answered = time.Now()
	if err == nil {
		a.status = resp.StatusCode
	}
	l.mu.Lock()
	l.attempts = append(l.attempts, a)
	l.mu.Unlock()
	return resp, err
}

func (l *attemptLog) all() []attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.attempts)
}

// refusals are the attempts not answered 2xx.
func refusals(as []attempt) []attempt {
	var out []attempt
	for _, a := range as {
		if a.status < 200 || a.status > 299 {
			out = append(out, a)
		}
	}
	return out
}

// failoverSim is the simulator of the failover suites: about three
// instances per customer, so that deploys at 20 a second touch each at most
// once in customers×3/20 seconds, and a webhook sender that retries for
// about a minute, as Prismatic retries a delivery that got no 2xx.
func failoverSim(log *attemptLog, customers int) *prismaticsim.Options {
	return &prismaticsim.Options{Seed: 7, Customers: customers, WebhookRetries: 8, WebhookBackoff: 250 * time.Millisecond,
		HTTPClient: &http.Client{Transport: log, Timeout: 5 * time.Second}}
}

// deployed returns the ids of the instances that have a deployed version
// (and so an entry), system instances aside.
func deployed(h *harness) []string {
	var ids []string
	for _, in := range h.sim.Instances() {
		if _, err := h.sim.Deployed(in.ID); err == nil && !in.IsSystem {
			ids = append(ids, in.ID)
		}
	}
	return ids
}

// deployTraffic deploys each of ids once, in order, one every interval,
// each deploy on a goroutine of its own (a refused or slow delivery does not
// hold up the next). Each instance's last deploy is then the one made during
// the test, so an acknowledged deploy that was lost leaves its entry behind
// Prismatic for good. wait waits until the pass is over and every deploy has
// had its first delivery attempt.
func deployTraffic(t *testing.T, h *harness, ids []string, every time.Duration) (wait func()) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for _, id := range ids {
			<-tick.C
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := h.sim.Deploy(id); err != nil {
					t.Errorf("deploy %s: %v", id, err)
				}
			}()
		}
	}()
	return wg.Wait
}

// acceptedAfter waits until a deploy of id sent now is answered 2xx at its
// first attempt.
func acceptedAfter(t *testing.T, h *harness, id, what string) {
	t.Helper()
	waitLong(t, what, func() bool {
		res, err := h.sim.Deploy(id)
		return err == nil && res.Webhooks[0].Status == http.StatusOK
	})
}

// refusalFigures logs how the deliveries went around a failover done at
// done: how many were refused, and when the last refusal was answered.
func refusalFigures(t *testing.T, log *attemptLog, done time.Time) {
	t.Helper()
	all := log.all()
	refused := refusals(all)
	var last, end time.Time
	for _, a := range refused {
		if a.answered.After(last) {
			last = a.answered
		}
	}
	for _, a := range all {
		if a.sent.After(end) {
			end = a.sent
		}
	}
	lastRefusal := "none was refused"
	if len(refused) > 0 {
		lastRefusal = fmt.Sprintf("the last refusal was answered %v after the failover was done", last.Sub(done).Round(time.Millisecond))
	}
	t.Logf("%d delivery attempts, %d refused; %s; deliveries went on until %v after it",
		len(all), len(refused), lastRefusal, end.Sub(done).Round(time.Millisecond))
}

// waitDelivered waits until the simulator has no delivery left to retry,
// and fails the test for each event whose delivery it gave up on.
func waitDelivered(t *testing.T, h *harness) {
	t.Helper()
	waitLong(t, "every webhook delivery to settle", func() bool {
		for _, ev := range h.sim.Events() {
			if ev.State == prismaticsim.StateRetrying {
				return false
			}
		}
		return true
	})
	for _, ev := range h.sim.Events() {
		if ev.State != prismaticsim.StateDelivered {
			t.Errorf("event %d (%s %s) ended %s after %d attempts: %d %s", ev.Seq, ev.Type, ev.InstanceID, ev.State, ev.Attempts, ev.Status, ev.Error)
		}
	}
}

// waitConverged waits until every deployed instance's entry holds the
// deployed version Prismatic has, and is fresh.
func waitConverged(t *testing.T, h *harness, ids []string) {
	t.Helper()
	var wrong []string
	converged := func() bool {
		wrong = wrong[:0]
		for _, id := range ids {
			truth, err := h.sim.Deployed(id)
			if err != nil {
				t.Fatal(err)
			}
			st, err := h.store.Load(context.Background(), id)
			if err != nil || st.Entry.DeployedVersion != truth.DeployedVersion || st.Entry.Stale != truth.NeedsDeploy {
				wrong = append(wrong, fmt.Sprintf("%s: entry v%d stale=%v, Prismatic v%d needsDeploy=%v (%v)",
					id, st.Entry.DeployedVersion, st.Entry.Stale, truth.DeployedVersion, truth.NeedsDeploy, err))
			}
		}
		return len(wrong) == 0
	}
	deadline := time.Now().Add(time.Minute)
	for !converged() {
		if time.Now().After(deadline) {
			t.Fatalf("after a minute %d entries still differ from Prismatic:\n%s", len(wrong), strings.Join(wrong, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLong polls cond until it holds, failing the test after a minute:
// failovers take seconds, and CI machines are slow.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after a minute waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newReader is an app's Reader over rdb, with a long MaxAge so that only
// invalidations and flushes can make it drop what it holds.
func newReader(t *testing.T, rdb redis.UniversalClient, prefix string, opts cache.ReaderOptions) *cache.Reader {
	t.Helper()
	opts.Prefix, opts.MaxAge = prefix, time.Hour
	r, err := cache.NewReader(rdb, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	waitLong(t, "the reader to subscribe", func() bool { return r.Stats().Subscribed })
	return r
}

// readerFollows checks that the Reader serves id from its tier (two Gets,
// the second a hit) and that a change deployed now reaches its Get.
func readerFollows(t *testing.T, h *harness, r *cache.Reader, id string) {
	t.Helper()
	ctx := context.Background()
	waitLong(t, "the reader to be subscribed", func() bool { return r.Stats().Subscribed })
	key, _, next := plainVar(t, h.sim, id)
	waitLong(t, "the reader to serve "+id+" from its tier", func() bool {
		hits := r.Stats().Hits
		_, err1 := r.Get(ctx, id)
		_, err2 := r.Get(ctx, id)
		return err1 == nil && err2 == nil && r.Stats().Hits > hits
	})
	if _, err := h.sim.SetConfig(id, key, next); err != nil {
		t.Fatal(err)
	}
	if _, err := h.sim.Deploy(id); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "the reader to see the change deployed after the failover", func() bool {
		e, err := r.Get(ctx, id)
		return err == nil && value(e, key) == next
	})
}

// TestClusterMasterKilled kills the Redis Cluster master that holds the work
// set and the events channel's slot while deploys flow at about 20 a second.
// While it is down /readyz says not ready and /status names it; once a
// replica has taken over, webhooks are accepted again, every event is
// delivered in the end and none is lost, every entry converges, and an
// app's Reader sees changes made after the failover. It logs how long the
// refusals lasted after the failover was done (run with -v).
func TestClusterMasterKilled(t *testing.T) {
	c := redistest.StartCluster(t)
	b := c.Backend
	// A prefix whose events channel lives with the work set, and whose sync
	// marker does not: losing that master then stops part of the daemon
	// while the marker still answers, and drops the Reader's subscription.
	for c.MasterOf(t, b.Prefix+"events") != c.MasterOf(t, "{work}") || c.MasterOf(t, b.Prefix+"synced") == c.MasterOf(t, "{work}") {
		b = b.Fresh(t)
	}
	log := &attemptLog{}
	// 240 instances: 12s of deploys, past the failover's end by about 5s.
	h := startE2E(t, b, e2eOptions{sim: failoverSim(log, 80), ownClient: true, configure: func(cfg *config.Config) {
		cfg.ResyncInterval, cfg.AdminToken = time.Hour, adminToken
	}})
	ids := deployed(h)
	r := newReader(t, b.Client, b.Prefix, cache.ReaderOptions{})
	if _, err := r.Get(context.Background(), ids[0]); err != nil {
		t.Fatal(err)
	}

	traffic := deployTraffic(t, h, ids[1:], 50*time.Millisecond)
	waitLong(t, "deploys to flow", func() bool { return len(log.all()) >= 20 })
	master := c.MasterOf(t, "{work}")
	killed := time.Now()
	replicas := c.Crash(t, master)
	// No replica takes over before cluster-node-timeout: the master is
	// still the one the cluster names.
	if code, body := get(t, h.app.URL()+"/readyz", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, app.StateRedisPartial) {
		t.Errorf("/readyz with a master down: %d %s; want 503 %s", code, body, app.StateRedisPartial)
	}
	if _, body := get(t, h.app.URL()+"/status", adminToken); !strings.Contains(body, master.Addr) || !strings.Contains(body, "unreachable") {
		t.Errorf("/status with %s down does not name it unreachable:\n%s", master.Addr, body)
	}
	promoted, done := c.WaitFailover(t, replicas)
	acceptedAfter(t, h, ids[0], "a webhook sent after the failover to be accepted")
	traffic()
	t.Logf("killed %s (it held {work} and the events channel); %s took over; failover done %v after the kill",
		master.Addr, promoted.Addr, done.Sub(killed).Round(time.Millisecond))
	refusalFigures(t, log, done)

	waitLong(t, "/readyz to say ready again", func() bool {
		code, _ := get(t, h.app.URL()+"/readyz", "")
		return code == http.StatusOK
	})
	waitDelivered(t, h)
	waitConverged(t, h, ids)
	readerFollows(t, h, r, ids[0])
}

// TestSentinelPlannedFailover runs a planned Sentinel failover (SENTINEL
// FAILOVER) while deploys flow at about 20 a second: webhooks are accepted
// after the switch, every event is delivered in the end and none is lost,
// every entry converges, and an app's Reader that follows the sentinels sees
// changes made after the switch.
func TestSentinelPlannedFailover(t *testing.T) {
	g := redistest.StartSentinel(t, redistest.SentinelOptions{})
	log := &attemptLog{}
	// 150 instances: 7.5s of deploys, past the switch by about 5s.
	h := startE2E(t, g.Backend, e2eOptions{sim: failoverSim(log, 50), ownClient: true,
		configure: func(cfg *config.Config) { cfg.ResyncInterval = time.Hour }})
	ids := deployed(h)
	fo := *g.Failover
	appClient := redis.NewFailoverClient(&fo)
	t.Cleanup(func() { _ = appClient.Close() })
	r := newReader(t, appClient, g.Prefix, cache.ReaderOptions{Sentinel: g.Failover})
	if _, err := r.Get(context.Background(), ids[0]); err != nil {
		t.Fatal(err)
	}

	traffic := deployTraffic(t, h, ids[1:], 50*time.Millisecond)
	waitLong(t, "deploys to flow", func() bool { return len(log.all()) >= 20 })
	switched := g.WatchSwitch(t)
	started := time.Now()
	g.StartFailover(t)
	var at time.Time
	select {
	case at = <-switched:
	case <-time.After(time.Minute):
		t.Fatal("no +switch-master within a minute of SENTINEL FAILOVER")
	}
	acceptedAfter(t, h, ids[0], "a webhook sent after the switch to be accepted")
	traffic()
	t.Logf("+switch-master %v after SENTINEL FAILOVER", at.Sub(started).Round(time.Millisecond))
	refusalFigures(t, log, at)

	waitDelivered(t, h)
	waitConverged(t, h, ids)
	readerFollows(t, h, r, ids[0])
}
