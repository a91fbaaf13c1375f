package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/webhook"
	"github.com/prismcache/prismcache/internal/webhook/examples"
)

// Signing modes of FuzzIntake's mode argument (its low three bits).
const (
	signA     = iota // signed with the first secret
	signB            // signed with the second secret
	signNone         // no signature header
	signRaw          // the fuzzed sig string as the header
	signOther        // signed with a secret the intake does not know
	signModes
)

// fuzzMethods are picked by mode's next two bits.
var fuzzMethods = []string{http.MethodPost, http.MethodPost, http.MethodGet, http.MethodPut}

// hideLength (mode's sixth bit) sends the body without a Content-Length,
// as a chunked body arrives.
const hideLength = 1 << 5

// FuzzIntake drives the whole webhook handler — signature, parsing,
// decision and the writes to Redis — with fuzzed event headers, bodies,
// Content-Types, methods and signatures, on a cached entry of the example
// instance. Whatever it is sent, it must answer one of the statuses it
// documents and never 5xx or panic; a refusal must leave Redis as it was; an
// acceptance must answer JSON with a status, leave every entry readable, and
// a second delivery of the same request must be a duplicate with no effect.
func FuzzIntake(f *testing.F) {
	payloads := examples.All()
	for _, name := range slices.Sorted(maps.Keys(payloads)) {
		body := payloads[name]
		f.Add(examples.Type(name), body, "application/json", uint8(signA), "")
		f.Add("", body, "application/json; charset=utf-8", uint8(signB), "")
	}
	deployed := payloads["instance.deployed.json"]
	updated := payloads["instance.updated.json"]
	for _, seed := range []struct {
		event, ct string
		body      string
		mode      uint8
		sig       string
	}{
		{"instance.updated", "application/json", string(updated), signNone, ""},
		{"instance.updated", "application/json", string(updated), signOther, ""},
		{"instance.updated", "application/json", string(updated), signRaw, "sha256=" + strings.Repeat("0", 64)},
		{"instance.updated", "application/json", string(updated), signRaw, "sha256=zz"},
		{"instance.updated", "text/plain", string(updated), signA, ""},
		{"instance.updated", "application/json;;", string(updated), signA, ""},
		{"instance.updated", "", string(updated), signA | 2<<3, ""},
		{"instance.deployed", "application/json", string(updated), signA, ""},
		{"", "application/json", `{"event_type":"instance.updated","instance":{"name":"x"}}`, signA, ""},
		{"", "application/json", `{"event_type":"instance.deleted","instance":{"id":"{tag}"}}`, signA, ""},
		{"", "application/json", `{"event_type":"instance.disabled","timestamp":"2030-01-01T00:00:00Z","instance":{"id":"SW5zdGFuY2U6ZWM5YzViM2EtZjNhNy00MDliLTllM2QtODA3MDAxNDVlNWU0"}}`, signA, ""},
		{"", "application/json", `{"event_type":"customer.deleted","customer":{"id":"Q3VzdG9tZXI6NWExZjBjMmUtN2Q0NC00YzFiLThmMGUtMmI5ZDZmM2ExYzc3","external_id":"acme-001"}}`, signA, ""},
		{"", "application/json", `{"event_type":"customer.updated","customer":{"externalId":"acme-001"}}`, signA, ""},
		{"", "application/json", `{"event_type":"connection.updated","connection":{"id":"SW5zdGFuY2VDb25maWdWYXJpYWJsZTox"}}`, signA, ""},
		{"webhook.test", "application/json", `{"message":"hi"}`, signA, ""},
		{"instance.updated", "application/json", `{"event_type":"instance.updated"`, signA, ""},
		{"instance.updated", "application/json", `null`, signA, ""},
		{"", "application/json", ``, signA, ""},
		{"", "application/json", string(deployed) + string(deployed), signA, ""},
		{"", "application/json", `{"event_type":"instance.updated","padding":"` + strings.Repeat("p", 5000) + `"}`, signA, ""},
		{"", "application/json", `{"event_type":"instance.updated","padding":"` + strings.Repeat("p", 5000) + `"}`, signA | hideLength, ""},
		{"", "application/json", string(updated), signA | hideLength, ""},
		// Dated ahead of the clock, and the unsigned header naming an action.
		{"", "application/json", `{"event_type":"instance.disabled","timestamp":"9999-12-31T23:59:59.999999999Z","instance":{"id":"SW5zdGFuY2U6ZWM5YzViM2EtZjNhNy00MDliLTllM2QtODA3MDAxNDVlNWU0"}}`, signA, ""},
		{"", "application/json", `{"event_type":"instance.updated","timestamp":"2026-11-20T12:35:01Z","instance":{"id":"SW5zdGFuY2U6ZWM5YzViM2EtZjNhNy00MDliLTllM2QtODA3MDAxNDVlNWU0"}}`, signA, ""},
		{"instance.deleted", "application/json", `{"instance":{"id":"SW5zdGFuY2U6ZWM5YzViM2EtZjNhNy00MDliLTllM2QtODA3MDAxNDVlNWU0"}}`, signA, ""},
		{"customer.deleted", "application/json", `{"customer":{"external_id":"acme-001"}}`, signA, ""},
	} {
		f.Add(seed.event, []byte(seed.body), seed.ct, seed.mode, seed.sig)
	}

	m := miniredis.RunT(f)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	f.Cleanup(func() { _ = rdb.Close() })
	b := redistest.Backend{Name: "miniredis", Client: rdb, URL: "redis://" + m.Addr(), Prefix: "fuzz:", Mini: m}
	r := newRig(f, b, secretA, secretB)
	r.in.MaxBody = 4096
	okStatus := map[int]bool{200: true, 400: true, 401: true, 405: true, 413: true, 415: true}

	f.Fuzz(func(t *testing.T, event string, body []byte, contentType string, mode uint8, sig string) {
		m.FlushAll()
		r.mu.Lock()
		r.seen = r.seen[:0]
		r.mu.Unlock()
		seedEntry(t, r.store)
		method := fuzzMethods[int(mode>>3)&3]
		switch mode % signModes {
		case signA:
			sig = webhook.SignatureValue(secretA, body)
		case signB:
			sig = webhook.SignatureValue(secretB, body)
		case signNone:
			sig = ""
		case signOther:
			sig = webhook.SignatureValue("fuzz-other-secret", body)
		}
		deliver := func() (int, map[string]any, string) {
			var rd io.Reader = bytes.NewReader(body)
			if mode&hideLength != 0 {
				rd = io.MultiReader(rd)
			}
			req := httptest.NewRequest(http.MethodPost, "/webhooks/prismatic", rd)
			req.Method = method
			req.Header.Set("Content-Type", contentType)
			if event != "" {
				req.Header.Set(webhook.EventHeader, event)
			}
			if sig != "" {
				req.Header.Set(webhook.SignatureHeader, sig)
			}
			rec := httptest.NewRecorder()
			r.in.ServeHTTP(rec, req)
			var out map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatalf("status %d with a body that is not a JSON object: %q", rec.Code, rec.Body.String())
			}
			if d := r.lastDelivery(t); d.Status != rec.Code {
				t.Fatalf("Observe saw status %d, the sender got %d", d.Status, rec.Code)
			}
			return rec.Code, out, rec.Body.String()
		}

		before := miniSnapshot(t, m)
		status, out, raw := deliver()
		if !okStatus[status] {
			t.Fatalf("status %d (want one of 200, 400, 401, 405, 413, 415): %s", status, raw)
		}
		d := r.lastDelivery(t)
		if status != http.StatusOK {
			if msg, _ := out["error"].(string); msg == "" {
				t.Fatalf("status %d without an error message: %s", status, raw)
			}
			if d.Outcome != "rejected" {
				t.Fatalf("status %d observed as %q", status, d.Outcome)
			}
			mustUnchanged(t, "a refused delivery", before, miniSnapshot(t, m))
			return
		}
		if s, _ := out["status"].(string); s != "accepted" {
			t.Fatalf("200 with status %q, want accepted: %s", s, raw)
		}
		if d.Outcome != "accepted" && d.Outcome != "ignored" {
			t.Fatalf("200 observed as %q", d.Outcome)
		}
		checkEntriesReadable(t, r.store, b)
		if st := r.in.Stats().Budget; st.Bytes != 0 || st.Requests != 0 || st.HeldBytes != 0 {
			t.Fatalf("the budget holds %+v after the request", st)
		}

		// The same delivery again has no further effect. A body that changed
		// something is recognised as a duplicate; one that changed nothing
		// (ignored, or older than the entry) is simply decided again.
		after := miniSnapshot(t, m)
		status, out, raw = deliver()
		s, _ := out["status"].(string)
		if status != http.StatusOK || (s != "duplicate" && s != "accepted") {
			t.Fatalf("second delivery: %d %s, want 200", status, raw)
		}
		if s != "duplicate" && !maps.Equal(before, after) {
			t.Fatalf("second delivery of a body that changed Redis: %s, want duplicate", raw)
		}
		mustUnchanged(t, "a repeated delivery", after, miniSnapshot(t, m))
	})
}

// checkEntriesReadable loads every entry under the prefix: whatever a
// webhook wrote must not make an entry unreadable to the daemon and to apps.
func checkEntriesReadable(t *testing.T, db *store.Store, b redistest.Backend) {
	t.Helper()
	ctx := context.Background()
	keys, err := b.Client.Keys(ctx, db.Keys().Instance("*")).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		id := strings.TrimSuffix(strings.TrimPrefix(k, strings.TrimSuffix(db.Keys().Instance(""), "}")), "}")
		if _, err := db.Load(ctx, id); err != nil {
			t.Fatalf("entry %s cannot be read after the delivery: %v", id, err)
		}
		if _, err := db.Get(ctx, id); err != nil {
			t.Fatalf("entry %s cannot be read after the delivery: %v", id, err)
		}
	}
}

// miniSnapshot is snapshot read in-process from miniredis, which keeps each
// fuzz iteration cheap: every key with its type and full value.
func miniSnapshot(t *testing.T, m *miniredis.Miniredis) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range m.Keys() {
		var (
			val any
			err error
		)
		switch typ := m.Type(k); typ {
		case "string":
			val, err = m.Get(k)
		case "hash":
			var fields []string
			fields, err = m.HKeys(k)
			h := map[string]string{}
			for _, f := range fields {
				h[f] = m.HGet(k, f)
			}
			val = h
		case "set":
			var members []string
			members, err = m.Members(k)
			slices.Sort(members)
			val = members
		case "zset":
			val, err = m.SortedSet(k)
		default:
			t.Fatalf("key %s of type %s", k, typ)
		}
		if err != nil {
			t.Fatalf("read %s: %v", k, err)
		}
		b, _ := json.Marshal(val)
		out[k] = m.Type(k) + ":" + string(b)
	}
	return out
}
