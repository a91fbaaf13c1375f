package app_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/app"
	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/prismaticsim"
	"github.com/prismcache/prismcache/internal/redistest"
)

// aclLines reads the two ACL SETUSER lines docs/security.md gives, so that
// the test runs exactly what the documentation tells operators to run.
func aclLines(t *testing.T) (daemon, reader string) {
	t.Helper()
	f, err := os.Open("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "ACL SETUSER prismcache-daemon "):
			daemon = line
		case strings.HasPrefix(line, "ACL SETUSER prismcache-reader "):
			reader = line
		}
	}
	if daemon == "" || reader == "" {
		t.Fatal("docs/security.md lacks the ACL SETUSER lines of prismcache-daemon and prismcache-reader")
	}
	return daemon, reader
}

// aclUser creates a user from a documented line, renamed and with its own
// password and prefix, and deletes it when the test ends.
func aclUser(t *testing.T, admin *redis.Client, line, docName, name, password, prefix string) {
	t.Helper()
	args := []any{}
	for i, f := range strings.Fields(line) {
		switch {
		case i < 2: // ACL SETUSER
			continue
		case f == docName:
			f = name
		case strings.HasPrefix(f, ">"):
			f = ">" + password
		default:
			f = strings.ReplaceAll(f, cache.DefaultPrefix, prefix)
		}
		args = append(args, f)
	}
	ctx := context.Background()
	if err := admin.Do(ctx, append([]any{"ACL", "SETUSER"}, args...)...).Err(); err != nil {
		t.Fatalf("ACL SETUSER %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := admin.Do(context.Background(), "ACL", "DELUSER", name).Err(); err != nil {
			t.Errorf("ACL DELUSER %s: %v", name, err)
		}
	})
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// deniedFor returns the ACL LOG entries of user: what Redis refused it.
func deniedFor(t *testing.T, admin *redis.Client, user string) []string {
	t.Helper()
	entries, err := admin.Do(context.Background(), "ACL", "LOG", "1000").Slice()
	if err != nil {
		t.Fatalf("ACL LOG: %v", err)
	}
	var out []string
	for _, e := range entries {
		fields := map[string]any{}
		switch v := e.(type) {
		case map[any]any: // RESP3
			for k, val := range v {
				fields[fmt.Sprint(k)] = val
			}
		case []any: // RESP2: key, value, ...
			for i := 0; i+1 < len(v); i += 2 {
				fields[fmt.Sprint(v[i])] = v[i+1]
			}
		}
		if fmt.Sprint(fields["username"]) == user {
			out = append(out, fmt.Sprintf("%v %v (%v)", fields["reason"], fields["object"], fields["context"]))
		}
	}
	return out
}

// TestLeastPrivilegeACL runs the daemon and the Go Reader under the ACL
// users docs/security.md defines, against the real Redis of REDIS_URL: the
// daemon syncs, takes webhooks, fetches, deploys reach the Reader; Redis
// refuses the daemon nothing; the reader user is refused every write.
func TestLeastPrivilegeACL(t *testing.T) {
	if os.Getenv("REDIS_URL") == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("REDIS_URL is not set: the ACL test needs a real Redis, and CI must provide one")
		}
		t.Skip("REDIS_URL is not set: the ACL test needs a real Redis")
	}
	b := redistest.Real(t)
	ctx := context.Background()
	opts, err := redis.ParseURL(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(opts)
	t.Cleanup(func() { _ = admin.Close() })
	daemonLine, readerLine := aclLines(t)
	suffix := randomHex(t, 6)
	daemonUser, readerUser := "prismcache-test-daemon-"+suffix, "prismcache-test-reader-"+suffix
	daemonPass, readerPass := randomHex(t, 16), randomHex(t, 16)
	aclUser(t, admin, daemonLine, "prismcache-daemon", daemonUser, daemonPass, b.Prefix)
	aclUser(t, admin, readerLine, "prismcache-reader", readerUser, readerPass, b.Prefix)

	asUser := func(user, pass string) string {
		u, err := url.Parse(b.URL)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(user, pass)
		return u.String()
	}

	// The daemon opens its own client from the URL, as in production.
	sim, err := prismaticsim.New(prismaticsim.Options{Seed: 7, Customers: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Listen = ln.Addr().String()
	cfg.RedisURL = asUser(daemonUser, daemonPass)
	cfg.RedisPrefix = b.Prefix
	cfg.WebhookSecrets = []string{secret}
	cfg.PrismaticURL = simSrv.URL
	cfg.PrismaticToken = prismaticsim.DefaultAccessToken
	cfg.PrismaticRate = 1000
	cfg.AdminToken = adminToken
	reg := prometheus.NewRegistry()
	a := &app.App{Config: cfg, Listener: ln, Registry: reg}
	if err := a.Start(ctx); err != nil {
		ln.Close()
		t.Fatalf("the daemon does not start under its ACL user: %v", err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Close(cctx)
	})
	sim.SetWebhookTarget(a.URL()+"/webhooks/prismatic", secret)
	h := &harness{sim: sim, app: a, store: a.Store(), b: b}
	h.waitFor(t, "the first sync under the daemon's ACL user", func() bool {
		ok, _ := h.store.Synced(ctx)
		s, err := a.WorkStats(ctx)
		return ok && err == nil && s.Queued == 0 && s.Leased == 0
	})

	// The Go Reader under the reader user.
	ropts, err := redis.ParseURL(asUser(readerUser, readerPass))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropts)
	t.Cleanup(func() { _ = rdb.Close() })
	reader, err := cache.NewReader(rdb, cache.ReaderOptions{Prefix: b.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reader.Close() })
	h.waitFor(t, "the reader's subscription", func() bool { return reader.Stats().Subscribed })

	id := h.sim.DemoInstanceID()
	key, old, next := plainVar(t, h.sim, id)
	if e, err := reader.Get(ctx, id); err != nil || value(e, key) != old {
		t.Fatalf("reader: %s=%q, %v; want %q", key, value(e, key), err, old)
	}
	// A change, a deploy: the Reader sees the new value (the invalidation
	// comes through the channel it may subscribe to).
	if _, err := h.sim.SetConfig(id, key, next); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "the update to mark the entry stale", func() bool { return h.entry(t, id).Stale })
	if _, err := h.sim.Deploy(id); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "the Reader to see the deploy", func() bool {
		e, err := reader.Get(ctx, id)
		return err == nil && value(e, key) == next && !e.Stale
	})
	// More of the daemon's paths: toggles, a credential event, an admin
	// refresh, a resync, a delete.
	other := ""
	for _, in := range sim.Instances() {
		if in.ID != id && h.entry(t, in.ID).Doc != nil && h.entry(t, in.ID).Enabled {
			other = in.ID
			break
		}
	}
	if other == "" {
		t.Fatal("the simulator has no second cached, enabled instance")
	}
	if _, err := sim.Disable(other); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "the disable", func() bool { return !h.entry(t, other).Enabled })
	if _, err := sim.Enable(other); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "the enable", func() bool { return h.entry(t, other).Enabled })
	inst, err := sim.Instance(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, cv := range inst.Config {
		if cv.DataType == "CONNECTION" {
			if _, err := sim.RefreshConnection(id, cv.Key); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	for _, call := range []struct{ method, path string }{
		{http.MethodPost, "/v1/instances/" + id + "/refresh"},
		{http.MethodGet, "/v1/instances/" + id},
		{http.MethodPost, "/v1/resync"},
	} {
		req, _ := http.NewRequest(call.method, a.URL()+call.path, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s under the daemon's ACL user: %d", call.method, call.path, resp.StatusCode)
		}
	}
	if _, err := sim.Delete(other); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "the delete", func() bool {
		st, err := h.store.Load(ctx, other)
		return err == nil && st.Tombstoned
	})
	h.waitFor(t, "the work set to drain", func() bool {
		s, err := a.WorkStats(ctx)
		return err == nil && s.Queued == 0 && s.Leased == 0
	})
	if _, err := reader.Get(ctx, other); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("reader after the delete: %v, want ErrNotFound", err)
	}

	// Redis refused the daemon nothing, and the daemon counted no error.
	if denied := deniedFor(t, admin, daemonUser); len(denied) > 0 {
		t.Fatalf("Redis denied the daemon's user: %v\n(the daemon's ACL line in docs/security.md lacks a command or key it uses)", denied)
	}
	if n := counterTotal(t, reg, "prismcache_redis_errors_total"); n != 0 {
		t.Fatalf("prismcache_redis_errors_total = %v under the daemon's ACL user", n)
	}

	// The reader user may not write, delete or publish.
	for name, cmd := range map[string]func() error{
		"SET":     func() error { return rdb.Set(ctx, b.Prefix+"forged", "x", 0).Err() },
		"HSET":    func() error { return rdb.HSet(ctx, h.store.Keys().Instance(id), "stale", "0").Err() },
		"DEL":     func() error { return rdb.Del(ctx, h.store.Keys().Instance(id)).Err() },
		"PUBLISH": func() error { return rdb.Publish(ctx, h.store.Keys().Events(), id).Err() },
		"EVAL":    func() error { return rdb.Eval(ctx, "return 1", nil).Err() },
		"FLUSHDB": func() error { return rdb.FlushDB(ctx).Err() },
		"GET outside the prefix": func() error {
			return rdb.Get(ctx, "not-"+strings.TrimSuffix(b.Prefix, ":")).Err()
		},
	} {
		err := cmd()
		if err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Errorf("reader user %s: %v, want NOPERM", name, err)
		}
	}
	if e, err := reader.Get(ctx, id); err != nil || value(e, key) != next {
		t.Fatalf("after the refused writes the entry reads %q, %v", value(e, key), err)
	}
}

// counterTotal sums every series of a metric family.
func counterTotal(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			total += m.GetCounter().GetValue()
		}
	}
	return total
}
