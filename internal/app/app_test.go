package app_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/app"
	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/prismaticsim"
	"github.com/prismcache/prismcache/internal/redisbatch"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/testutil"
	"github.com/prismcache/prismcache/internal/webhook"
)

const secret = "e2e-secret"

// harness is a simulator and a daemon wired together over real HTTP.
type harness struct {
	sim   *prismaticsim.Sim
	app   *app.App
	store *store.Store
	b     redistest.Backend
}

// e2eOptions tweak the harness; the zero value is the plain one.
type e2eOptions struct {
	// sim replaces the simulator's options (seed 7, 3 customers).
	sim *prismaticsim.Options
	// configure changes the daemon's config before it starts.
	configure func(*config.Config)
	// transport, when set, carries the daemon's GraphQL requests.
	transport http.RoundTripper
	// log and registry, when set, are the daemon's.
	log      *slog.Logger
	registry *prometheus.Registry
	// redis, when set, is the daemon's own client instead of the backend's.
	redis redis.UniversalClient
	// onResult, when set, is told of every worker run.
	onResult func(refresh.Result)
	// listener, when set, is the daemon's main listener.
	listener net.Listener
	// crashable: the daemon may be left unable to reach Redis (a replica
	// "killed" by closing its client), so errors of its Close are ignored.
	crashable bool
	// ownClient makes the daemon open its own Redis client from the
	// backend's URL, as prismcache serve does, instead of sharing the test's.
	ownClient bool
}

func start(t *testing.T, b redistest.Backend) *harness { return startE2E(t, b, e2eOptions{}) }

// startE2E starts a simulator and a daemon wired together over real HTTP
// and returns once the first sync is done.
func startE2E(t *testing.T, b redistest.Backend, opts e2eOptions) *harness {
	t.Helper()
	simOpts := prismaticsim.Options{Seed: 7, Customers: 3}
	if opts.sim != nil {
		simOpts = *opts.sim
	}
	sim, err := prismaticsim.New(simOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)

	a := startReplica(t, b, simSrv.URL, opts)
	sim.SetWebhookTarget(a.URL()+"/webhooks/prismatic", a.Config.WebhookSecrets[0])
	h := &harness{sim: sim, app: a, store: a.Store(), b: b}
	h.waitFor(t, "the first sync to finish", func() bool {
		ok, _ := h.store.Synced(context.Background())
		s, err := a.WorkStats(context.Background())
		return ok && err == nil && s.Queued == 0 && s.Leased == 0
	})
	return h
}

// batchers holds the one batcher installed on each client the tests hand to
// daemons: a client gets one batcher however many daemons share it, as
// prismcache serve's own client does.
var (
	batchersMu sync.Mutex
	batchers   = map[redis.UniversalClient]*redisbatch.Batcher{}
)

func batcherOf(rdb redis.UniversalClient) *redisbatch.Batcher {
	batchersMu.Lock()
	defer batchersMu.Unlock()
	b, ok := batchers[rdb]
	if !ok {
		b = redisbatch.Install(rdb)
		batchers[rdb] = b
	}
	return b
}

// startReplica starts one daemon against the simulator at simURL and the
// backend's Redis, closed when the test ends.
func startReplica(t *testing.T, b redistest.Backend, simURL string, opts e2eOptions) *app.App {
	t.Helper()
	ln := opts.listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.Default()
	cfg.Listen = ln.Addr().String()
	cfg.RedisPrefix = b.Prefix
	cfg.WebhookSecrets = []string{secret}
	cfg.PrismaticURL = simURL
	cfg.PrismaticToken = prismaticsim.DefaultAccessToken
	cfg.PrismaticRate = 1000
	if opts.configure != nil {
		opts.configure(&cfg)
	}
	rdb := opts.redis
	if rdb == nil {
		rdb = b.Client
	}
	a := &app.App{Config: cfg, Redis: rdb, Batcher: batcherOf(rdb), Listener: ln, Log: opts.log, Registry: opts.registry, OnResult: opts.onResult}
	if opts.ownClient {
		a.Redis, a.Config.RedisURL = nil, b.URL
	}
	if opts.transport != nil {
		a.HTTPClient = &http.Client{Transport: opts.transport}
	}
	if err := a.Start(context.Background()); err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Close(ctx); err != nil && !opts.crashable {
			t.Errorf("close: %v", err)
		}
	})
	return a
}

// waitFor polls cond until it holds (testutil.Eventually).
func (h *harness) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, what, cond)
}

func (h *harness) entry(t *testing.T, id string) cache.Entry {
	t.Helper()
	st, err := h.store.Load(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st.Entry
}

func value(e cache.Entry, key string) string {
	if e.Doc == nil || e.Doc.Config[key].Value == nil {
		return "<none>"
	}
	return *e.Doc.Config[key].Value
}

// plainVar returns a non-connection variable of the instance with a value,
// and another valid value for it.
func plainVar(t *testing.T, sim *prismaticsim.Sim, id string) (key, old, next string) {
	t.Helper()
	in, err := sim.Instance(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, cv := range in.Config {
		if cv.Value == nil {
			continue
		}
		switch cv.DataType {
		case "NUMBER":
			return cv.Key, *cv.Value, "4242"
		case "STRING":
			return cv.Key, *cv.Value, "changed by the e2e test"
		}
	}
	t.Fatalf("instance %s has no NUMBER or STRING variable", id)
	return "", "", ""
}

func TestDeployReachesRedis(t *testing.T) { redistest.Each(t, testDeployReachesRedis) }

// testDeployReachesRedis: a stored change turns the entry stale and keeps
// the old value; a deploy brings the new value, fresh, with a higher rev.
func testDeployReachesRedis(t *testing.T, b redistest.Backend) {
	h := start(t, b)
	id := h.sim.DemoInstanceID()
	before := h.entry(t, id)
	key, old, next := plainVar(t, h.sim, id)
	if before.Doc == nil || value(before, key) != old || before.Stale {
		t.Fatalf("after the first sync the demo entry is %+v, want %s=%q, fresh", before, key, old)
	}

	// A stored change is not live: the entry turns stale and keeps the old value.
	if _, err := h.sim.SetConfig(id, key, next); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "the entry to turn stale", func() bool { return h.entry(t, id).Stale })
	stale := h.entry(t, id)
	if value(stale, key) != old || stale.StaleReason != cache.StaleUpdated || stale.Rev <= before.Rev {
		t.Fatalf("stale entry: %s=%q reason %q rev %d; want the old value %q, reason updated, rev > %d",
			key, value(stale, key), stale.StaleReason, stale.Rev, old, before.Rev)
	}

	// A deploy makes it live: the entry holds the new value, fresh, rev grown.
	if _, err := h.sim.Deploy(id); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "the deployed value to reach Redis", func() bool {
		e := h.entry(t, id)
		return value(e, key) == next && !e.Stale
	})
	after := h.entry(t, id)
	truth, err := h.sim.Deployed(id)
	if err != nil {
		t.Fatal(err)
	}
	if after.Rev <= stale.Rev || after.DeployedVersion != truth.DeployedVersion || after.Stale {
		t.Fatalf("after deploy: rev %d (was %d), deployed_version %d (truth %d), stale %v",
			after.Rev, stale.Rev, after.DeployedVersion, truth.DeployedVersion, after.Stale)
	}
	raw := h.b.Client.HGetAll(context.Background(), h.store.Keys().Instance(id)).Val()
	if raw["stale"] != "0" || raw["deployed_version"] == "" || !strings.Contains(raw["doc"], next) {
		t.Fatalf("raw hash after deploy: %v", raw)
	}
	for _, secretish := range []string{prismaticsim.SecretMarker} {
		if strings.Contains(raw["doc"], secretish) {
			t.Fatal("a connection credential was copied into the cache")
		}
	}
}

// snapshot returns every key under the prefix with its value, read by
// type (miniredis DUMPs only strings).
func snapshot(t *testing.T, b redistest.Backend) string {
	t.Helper()
	ctx := context.Background()
	keys := b.Client.Keys(ctx, b.Prefix+"*").Val()
	sort.Strings(keys)
	var out strings.Builder
	for _, k := range keys {
		if background(b.Prefix, k) {
			continue
		}
		var v any
		switch typ := b.Client.Type(ctx, k).Val(); typ {
		case "hash":
			v = b.Client.HGetAll(ctx, k).Val()
		case "set":
			m := b.Client.SMembers(ctx, k).Val()
			sort.Strings(m)
			v = m
		case "zset":
			v = b.Client.ZRangeWithScores(ctx, k, 0, -1).Val()
		case "list":
			v = b.Client.LRange(ctx, k, 0, -1).Val()
		default:
			v = b.Client.Get(ctx, k).Val()
		}
		fmt.Fprintf(&out, "%s=%v\n", k, v)
	}
	return out.String()
}

// background reports whether key is bookkeeping the daemon rewrites on its
// own, whatever the webhooks: the census of the entries and the leases.
func background(prefix, key string) bool {
	switch strings.TrimPrefix(key, prefix) {
	case "census", "census:lease", "reconcile:lease":
		return true
	}
	return false
}

func TestWrongSignatureIsRefusedAndWritesNothing(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		h := start(t, b)
		id := h.sim.DemoInstanceID()
		body := []byte(`{"event_type":"instance.updated","timestamp":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","instance":{"id":"` + id + `","name":"x"}}`)
		before := snapshot(t, b)
		for name, sig := range map[string]string{
			"wrong secret": webhook.SignatureValue("not-the-secret", body),
			"missing":      "",
			"garbage":      "sha256=zz",
		} {
			req, _ := http.NewRequest(http.MethodPost, h.app.URL()+"/webhooks/prismatic", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Webhook-Event", "instance.updated")
			if sig != "" {
				req.Header.Set("X-Webhook-Signature", sig)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s signature: status %d, want 401", name, resp.StatusCode)
			}
		}
		if after := snapshot(t, b); after != before {
			t.Fatalf("a refused webhook changed Redis:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if h.entry(t, id).Stale {
			t.Fatal("a refused webhook marked the entry stale")
		}
		// The same body, signed right, is accepted and takes effect.
		req, _ := http.NewRequest(http.MethodPost, h.app.URL()+"/webhooks/prismatic", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Webhook-Event", "instance.updated")
		req.Header.Set("X-Webhook-Signature", webhook.SignatureValue(secret, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !h.entry(t, id).Stale {
			t.Fatalf("correctly signed webhook: status %d, stale %v", resp.StatusCode, h.entry(t, id).Stale)
		}
	})
}
