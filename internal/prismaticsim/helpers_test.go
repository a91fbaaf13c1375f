package prismaticsim

import (
	"bytes"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/testutil"
)

// newTestSim starts a Sim and an httptest server for it, both closed when the
// test ends.
func newTestSim(t *testing.T, opts Options) (*Sim, *httptest.Server) {
	t.Helper()
	if opts.Now == nil {
		opts.Now = testutil.NewClock().Now
	}
	sim, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := sim.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return sim, srv
}

type gqlResponse struct {
	Data   map[string]any   `json:"data"`
	Errors []map[string]any `json:"errors"`
	raw    []byte
}

// postGraphQL sends one GraphQL request with a bearer token and returns the
// status and the decoded body.
func postGraphQL(t *testing.T, url, token, query string, vars map[string]any) (int, gqlResponse) {
	t.Helper()
	return doGraphQL(t, url, token, map[string]any{"query": query, "variables": vars})
}

// postGraphQLOp sends a document with an operationName, as genqlient does.
func postGraphQLOp(t *testing.T, url, doc, op string, vars map[string]any) (int, gqlResponse) {
	t.Helper()
	return doGraphQL(t, url, DefaultAccessToken, map[string]any{"query": doc, "operationName": op, "variables": vars})
}

func doGraphQL(t *testing.T, url, token string, request map[string]any) (int, gqlResponse) {
	t.Helper()
	body, err := json.Marshal(request)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url+"/api", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /api: %v", err)
	}
	defer resp.Body.Close()
	var out gqlResponse
	if out.raw, err = io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out.raw, &out); err != nil {
		t.Fatalf("decode %s: %v", out.raw, err)
	}
	return resp.StatusCode, out
}

// mustQuery runs a query that must succeed without errors and returns data.
func mustQuery(t *testing.T, url, query string, vars map[string]any) map[string]any {
	t.Helper()
	status, resp := postGraphQL(t, url, DefaultAccessToken, query, vars)
	if status != http.StatusOK || len(resp.Errors) > 0 || resp.Data == nil {
		t.Fatalf("query failed: status %d, body %s", status, resp.raw)
	}
	return resp.Data
}

// path walks decoded JSON by keys and list indexes.
func path(t *testing.T, v any, keys ...any) any {
	t.Helper()
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("path %v: %v is not an object", keys, v)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("path %v: %v is not a list with index %d", keys, v, k)
			}
			v = l[k]
		}
	}
	return v
}

// daemonOps returns the daemon's GraphQL operations as one document: every
// file of graphql/operations, so that the fragments they share are defined
// (the daemon's generated client sends each operation with its fragments).
func daemonOps(tb testing.TB) string {
	tb.Helper()
	files, err := filepath.Glob("../../graphql/operations/*.graphql")
	if err != nil || len(files) == 0 {
		tb.Fatalf("the daemon's operations: %v (%d files)", err, len(files))
	}
	var b strings.Builder
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		b.Write(src)
		b.WriteByte('\n')
	}
	return b.String()
}

func mustRead(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// webhook is one webhook the receiver got.
type webhook struct {
	event     string
	signature string
	raw       []byte
	body      map[string]any
}

// receiver is an httptest webhook endpoint that checks signatures and
// answers with status (200 unless changed).
type receiver struct {
	t      *testing.T
	secret string
	srv    *httptest.Server

	mu     sync.Mutex
	got    []webhook
	status int
	cond   chan struct{} // closed and replaced on every delivery
}

func newReceiver(t *testing.T, secret string) *receiver {
	t.Helper()
	rc := &receiver{t: t, secret: secret, status: http.StatusOK, cond: make(chan struct{})}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	wh := webhook{event: r.Header.Get("X-Webhook-Event"), signature: r.Header.Get("X-Webhook-Signature"), raw: raw}
	if r.Header.Get("Content-Type") != "application/json" {
		rc.t.Errorf("webhook Content-Type = %q", r.Header.Get("Content-Type"))
	}
	if rc.secret != "" && !hmac.Equal([]byte(wh.signature), []byte(Sign(rc.secret, raw))) {
		rc.t.Errorf("webhook %s: bad signature %q", wh.event, wh.signature)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if err := json.Unmarshal(raw, &wh.body); err != nil {
		rc.t.Errorf("webhook body: %v", err)
	}
	rc.mu.Lock()
	status := rc.status
	if status < 300 {
		rc.got = append(rc.got, wh)
	}
	close(rc.cond)
	rc.cond = make(chan struct{})
	rc.mu.Unlock()
	w.WriteHeader(status)
}

func (rc *receiver) setStatus(code int) {
	rc.mu.Lock()
	rc.status = code
	rc.mu.Unlock()
}

func (rc *receiver) received() []webhook {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]webhook(nil), rc.got...)
}

// waitFor waits until cond holds, re-checking after each delivery, or fails
// after a generous deadline.
func (rc *receiver) waitFor(t *testing.T, what string, cond func(got []webhook) bool) []webhook {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		rc.mu.Lock()
		got := append([]webhook(nil), rc.got...)
		ch := rc.cond
		rc.mu.Unlock()
		if cond(got) {
			return got
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; got %d webhooks", what, len(got))
		}
	}
}

// adminDo calls the admin API and decodes its JSON answer.
func adminDo(t *testing.T, url, method, route string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url+route, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: decode %q: %v", method, route, raw, err)
	}
	return resp.StatusCode, out
}

// topKeys lists a JSON object's keys in document order.
func topKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// tryQuery runs a query and reports any failure as an error, for goroutines
// that must not call t.Fatal.
func tryQuery(url, query string, vars map[string]any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, url+"/api", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+DefaultAccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out gqlResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || len(out.Errors) > 0 {
		return fmt.Errorf("status %d, errors %v", resp.StatusCode, out.Errors)
	}
	return nil
}
