package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/store"
)

const adminToken = "e2e-admin-token-0123456789"

// unknownInstanceID is a well-formed instance id Prismatic does not have.
var unknownInstanceID = "SW5zdGFuY2U6MDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAw"

func withAdmin(c *config.Config) { c.AdminToken = adminToken }

// adminCall makes one admin request and decodes its JSON answer.
func adminCall(t *testing.T, h *harness, method, path, token string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, h.app.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: %d with Content-Type %q: %s", method, path, resp.StatusCode, ct, raw)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %d with a body that is not a JSON object: %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, resp.Header, out
}

// admin calls the admin API with the right token.
func admin(t *testing.T, h *harness, method, path string) (int, map[string]any) {
	t.Helper()
	status, _, out := adminCall(t, h, method, path, "Bearer "+adminToken)
	return status, out
}

// decodeAs re-decodes part of an answer into v.
func decodeAs(t *testing.T, part any, v any) {
	t.Helper()
	b, err := json.Marshal(part)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func errorSays(t *testing.T, what string, out map[string]any, words ...string) {
	t.Helper()
	msg, _ := out["error"].(string)
	if msg == "" {
		t.Errorf("%s: no error message in %v", what, out)
		return
	}
	for _, w := range words {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: error %q does not say %q", what, msg, w)
		}
	}
}

func TestAdminOffWithoutToken(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		h := startE2E(t, b, e2eOptions{})
		id := h.sim.DemoInstanceID()
		for _, c := range []struct{ method, path string }{
			{http.MethodGet, "/v1/instances/" + id},
			{http.MethodPost, "/v1/instances/" + id + "/refresh"},
			{http.MethodPost, "/v1/resync"},
			{http.MethodGet, "/v1/customers/acme-001/instances"},
		} {
			// With or without a token: there is no admin API to call.
			for _, tok := range []string{"", "Bearer " + adminToken} {
				status, _, out := adminCall(t, h, c.method, c.path, tok)
				if status != http.StatusNotFound {
					t.Errorf("%s %s: %d, want 404", c.method, c.path, status)
				}
				errorSays(t, c.path, out, "admin API is off", "--admin-token")
			}
		}
	})
}

func TestAdminAuth(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		h := startE2E(t, b, e2eOptions{configure: withAdmin})
		id := h.sim.DemoInstanceID()
		for _, tok := range []string{
			"",
			"Bearer ",
			"Bearer wrong-token-but-long-enough",
			"Bearer " + adminToken + "x",
			"Bearer " + adminToken[:len(adminToken)-1],
			"Basic " + adminToken,
			adminToken,
		} {
			for _, c := range []struct{ method, path string }{
				{http.MethodGet, "/v1/instances/" + id},
				{http.MethodGet, "/v1/customers/acme-001/instances"},
				{http.MethodPost, "/v1/instances/" + id + "/refresh?wait=false"},
				{http.MethodPost, "/v1/resync"},
				{http.MethodGet, "/v1/no-such-route"},
			} {
				status, hdr, out := adminCall(t, h, c.method, c.path, tok)
				if status != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s %s with Authorization %q: %d, WWW-Authenticate %q; want 401 asking for a bearer token",
						c.method, c.path, tok, status, hdr.Get("WWW-Authenticate"))
				}
				errorSays(t, c.path, out, "admin token")
			}
		}
		if !idle(t, h) {
			t.Error("a refused refresh queued work")
		}
		// The right token opens every route; an unknown one is a JSON 404.
		if status, _ := admin(t, h, http.MethodGet, "/v1/instances/"+id); status != http.StatusOK {
			t.Errorf("with the token: %d", status)
		}
		status, out := admin(t, h, http.MethodGet, "/v1/no-such-route")
		if status != http.StatusNotFound {
			t.Errorf("unknown admin route: %d", status)
		}
		errorSays(t, "unknown admin route", out, "/v1/no-such-route")
	})
}

func TestAdminGetInstance(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		h := startE2E(t, b, e2eOptions{configure: withAdmin})
		id := h.sim.DemoInstanceID()
		key, old, _ := plainVar(t, h.sim, id)

		status, out := admin(t, h, http.MethodGet, "/v1/instances/"+id)
		if status != http.StatusOK {
			t.Fatalf("GET instance: %d %v", status, out)
		}
		var v store.EntryView
		decodeAs(t, out, &v)
		want := mustCached(t, h, id)
		if v.ID != id || v.Doc == nil || v.Doc.ID != id || v.Rev != want.Rev || v.Stale || !v.Enabled ||
			v.DeployedVersion != want.DeployedVersion || v.FetchedAt == nil {
			t.Fatalf("GET instance = %+v, want the cached entry (rev %d)", v, want.Rev)
		}
		if got := v.Doc.Config[key].Value; got == nil || *got != old {
			t.Errorf("GET instance: %s = %v, want %q", key, got, old)
		}
		if strings.Contains(jsonString(t, out), "prismaticsim-secret") {
			t.Error("the admin API shows a connection credential")
		}

		// Stale shows as such.
		_, _, next := plainVar(t, h.sim, id)
		delivered(t, "SetConfig")(h.sim.SetConfig(id, key, next))
		_, out = admin(t, h, http.MethodGet, "/v1/instances/"+id)
		decodeAs(t, out, &v)
		if !v.Stale || v.StaleReason != cache.StaleUpdated || v.StaleSince == nil {
			t.Errorf("GET a stale instance = stale %v %q since %v", v.Stale, v.StaleReason, v.StaleSince)
		}

		status, out = admin(t, h, http.MethodGet, "/v1/instances/"+unknownInstanceID)
		if status != http.StatusNotFound {
			t.Errorf("GET an instance that is not cached: %d", status)
		}
		errorSays(t, "not cached", out, unknownInstanceID, "not cached")

		for _, bad := range []string{"%7Bnot-an-id%7D", "has%20space", url.PathEscape(strings.Repeat("A", 300)), "x%0Ay"} {
			status, out := admin(t, h, http.MethodGet, "/v1/instances/"+bad)
			if status != http.StatusBadRequest {
				t.Errorf("GET /v1/instances/%s: %d, want 400", bad, status)
			}
			errorSays(t, bad, out, "not a Prismatic instance id")
		}
	})
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAdminCustomerInstances(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		h := startE2E(t, b, e2eOptions{configure: withAdmin})
		type answer struct {
			CustomerExternalID string            `json:"customerExternalId"`
			Instances          []store.EntryView `json:"instances"`
		}
		ids := func(a answer) []string {
			var out []string
			for _, v := range a.Instances {
				out = append(out, v.ID)
			}
			return out
		}

		status, out := admin(t, h, http.MethodGet, "/v1/customers/acme-001/instances")
		var a answer
		decodeAs(t, out, &a)
		var want []string
		for _, in := range customerInstances(h, "acme-001") {
			want = append(want, in.ID)
		}
		if status != http.StatusOK || a.CustomerExternalID != "acme-001" || !sameSet(ids(a), want) {
			t.Fatalf("acme's instances: %d %v, want %v", status, ids(a), want)
		}
		for _, v := range a.Instances {
			if v.Doc == nil || v.Doc.Customer.ExternalID != "acme-001" {
				t.Errorf("instance %s of another customer in acme's list", v.ID)
			}
		}

		status, out = admin(t, h, http.MethodGet, "/v1/customers/acme-001/instances?integration="+url.QueryEscape("Slack Alerts"))
		decodeAs(t, out, &a)
		if status != http.StatusOK || len(a.Instances) != 1 || a.Instances[0].Doc.Integration.Name != "Slack Alerts" ||
			a.Instances[0].Doc.Customer.ExternalID != "acme-001" {
			t.Fatalf("acme's Slack Alerts: %d %v", status, out)
		}

		for _, path := range []string{
			"/v1/customers/nobody-999/instances",
			"/v1/customers/acme-001/instances?integration=" + url.QueryEscape("No Such Integration"),
		} {
			status, out = admin(t, h, http.MethodGet, path)
			if inst, ok := out["instances"].([]any); status != http.StatusOK || !ok || len(inst) != 0 {
				t.Errorf("%s: %d %v, want 200 with an empty list", path, status, out)
			}
		}

		// The index follows deletes.
		gone := customerInstances(h, "acme-001")[0].ID
		delivered(t, "Delete")(h.sim.Delete(gone))
		_, out = admin(t, h, http.MethodGet, "/v1/customers/acme-001/instances")
		decodeAs(t, out, &a)
		if len(a.Instances) != 2 || strings.Contains(jsonString(t, ids(a)), gone) {
			t.Errorf("after a delete, acme lists %v", ids(a))
		}
	})
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestAdminRefresh(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		h := startE2E(t, b, e2eOptions{configure: withAdmin})
		id := h.sim.DemoInstanceID()
		key, old, v1, v2 := twoValues(t, h, id)
		webhooks := func(on bool) {
			if on {
				h.sim.SetWebhookTarget(h.app.URL()+"/webhooks/prismatic", secret)
			} else {
				h.sim.SetWebhookTarget("", "")
			}
		}

		// A change and a deploy the daemon hears nothing about.
		webhooks(false)
		if _, err := h.sim.SetConfig(id, key, v1); err != nil {
			t.Fatal(err)
		}
		if _, err := h.sim.Deploy(id); err != nil {
			t.Fatal(err)
		}
		if got := value(h.entry(t, id), key); got != old {
			t.Fatalf("the entry changed without a webhook: %s=%q", key, got)
		}
		n := fetches(h, id)
		status, out := admin(t, h, http.MethodPost, "/v1/instances/"+id+"/refresh")
		if status != http.StatusOK {
			t.Fatalf("refresh: %d %v", status, out)
		}
		var ans struct {
			Result struct {
				ID     string       `json:"id"`
				OK     bool         `json:"ok"`
				Change cache.Change `json:"change"`
				Rev    int64        `json:"rev"`
			} `json:"result"`
			Entry *store.EntryView `json:"entry"`
		}
		decodeAs(t, out, &ans)
		truth, err := h.sim.Deployed(id)
		if err != nil {
			t.Fatal(err)
		}
		if !ans.Result.OK || ans.Result.Change != cache.ChangeRefreshed || ans.Entry == nil || ans.Entry.Stale ||
			ans.Entry.DeployedVersion != truth.DeployedVersion || ans.Entry.Rev != ans.Result.Rev {
			t.Fatalf("refresh answered %v; want the refreshed entry at v%d", out, truth.DeployedVersion)
		}
		if got := ans.Entry.Doc.Config[key].Value; got == nil || *got != v1 {
			t.Fatalf("refresh returned %s=%v, want %q", key, got, v1)
		}
		if got := value(h.entry(t, id), key); got != v1 || fetches(h, id) != n+1 {
			t.Fatalf("after refresh Redis has %s=%q after %d fetches", key, got, fetches(h, id)-n)
		}

		// ?wait=false queues it and answers at once.
		if _, err := h.sim.SetConfig(id, key, v2); err != nil {
			t.Fatal(err)
		}
		if _, err := h.sim.Deploy(id); err != nil {
			t.Fatal(err)
		}
		status, out = admin(t, h, http.MethodPost, "/v1/instances/"+id+"/refresh?wait=false")
		if status != http.StatusAccepted || out["status"] != "queued" || out["id"] != id {
			t.Fatalf("refresh?wait=false: %d %v, want 202 queued", status, out)
		}
		h.waitFor(t, "the queued refresh", func() bool { return idle(t, h) && value(h.entry(t, id), key) == v2 })

		// An instance Prismatic does not have: 404, nothing cached.
		status, out = admin(t, h, http.MethodPost, "/v1/instances/"+unknownInstanceID+"/refresh")
		if status != http.StatusNotFound {
			t.Fatalf("refresh of an unknown instance: %d %v", status, out)
		}
		errorSays(t, "unknown instance", out, "does not exist in Prismatic")
		if !notCached(t, h, unknownInstanceID) {
			t.Fatal("the unknown instance got cached")
		}

		// An instance deleted in Prismatic without the webhook: the refresh
		// finds it gone, answers 404, and removes it from the cache.
		gone := customerInstances(h, "globex-002")[0].ID
		mustCached(t, h, gone)
		if _, err := h.sim.Delete(gone); err != nil {
			t.Fatal(err)
		}
		if status, out = admin(t, h, http.MethodPost, "/v1/instances/"+gone+"/refresh"); status != http.StatusNotFound {
			t.Fatalf("refresh of a deleted instance: %d %v", status, out)
		}
		if !notCached(t, h, gone) {
			t.Fatal("the refresh left the deleted instance cached")
		}
		webhooks(true)

		for path, want := range map[string]int{
			"/v1/instances/%7Bbad%7D/refresh":             http.StatusBadRequest,
			"/v1/instances/" + id + "/refresh?timeout=x":  http.StatusBadRequest,
			"/v1/instances/" + id + "/refresh?timeout=1h": http.StatusBadRequest,
			"/v1/instances/" + id + "/refresh?timeout=5s": http.StatusOK,
		} {
			status, out := admin(t, h, http.MethodPost, path)
			if status != want {
				t.Errorf("POST %s: %d %v, want %d", path, status, out, want)
			}
		}
	})
}

// listGate holds the daemon's ListInstances requests while it is closed, so
// a test can keep a resync pass running for as long as it needs.
type listGate struct {
	mu      sync.Mutex
	closed  bool
	open    chan struct{}
	waiting chan struct{}
}

func newListGate() *listGate {
	return &listGate{open: make(chan struct{}), waiting: make(chan struct{}, 1)}
}

func (g *listGate) close() {
	g.mu.Lock()
	g.closed = true
	g.open = make(chan struct{})
	g.mu.Unlock()
}

// release lets held and later requests through.
func (g *listGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		g.closed = false
		close(g.open)
	}
}

func (g *listGate) RoundTrip(req *http.Request) (*http.Response, error) {
	g.mu.Lock()
	closed, open := g.closed, g.open
	g.mu.Unlock()
	if closed && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte(`"ListInstances"`)) {
			select {
			case g.waiting <- struct{}{}:
			default:
			}
			select {
			case <-open:
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

func TestAdminResync(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		gate := newListGate()
		t.Cleanup(gate.release)
		h := startE2E(t, b, e2eOptions{configure: withAdmin, transport: gate})
		revs := map[string]int64{}
		for _, in := range h.sim.Instances() {
			if !in.IsSystem && in.DeployedVersion > 0 {
				revs[in.ID] = mustCached(t, h, in.ID).Rev
			}
		}
		h.sim.ResetStats()
		gate.close()

		status, out := admin(t, h, http.MethodPost, "/v1/resync")
		if status != http.StatusAccepted || out["status"] != "started" {
			t.Fatalf("resync: %d %v, want 202 started", status, out)
		}
		// The pass is now listing instances, held at the gate: a second
		// resync is refused.
		select {
		case <-gate.waiting:
		case <-time.After(10 * time.Second):
			t.Fatal("the resync never listed instances")
		}
		status, out = admin(t, h, http.MethodPost, "/v1/resync")
		if status != http.StatusConflict {
			t.Fatalf("second resync while one runs: %d %v, want 409", status, out)
		}
		errorSays(t, "second resync", out, "already running")
		gate.release()

		// Every deployed customer instance is written again, whether or not
		// it changed (the daemon lists no system test instances), from the
		// pages of the listing: no instance is fetched on its own.
		h.waitFor(t, "every instance to be rewritten", func() bool {
			for id, rev := range revs {
				if mustCached(t, h, id).Rev <= rev {
					return false
				}
			}
			return idle(t, h)
		})
		if st := h.sim.Stats(); st.InstanceFetches != 0 || st.GraphQLRequestsByOperation["ListInstances"] != 1 {
			t.Errorf("the resync of %d instances made %d instance fetches and %d listing requests; want none and one page",
				len(revs), st.InstanceFetches, st.GraphQLRequestsByOperation["ListInstances"])
		}
		// Once the pass is over, another may start.
		h.waitFor(t, "a second resync to be accepted", func() bool {
			status, _ := admin(t, h, http.MethodPost, "/v1/resync")
			return status == http.StatusAccepted
		})
	})
}
