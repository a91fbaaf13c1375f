package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/server"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/webhook"
	"github.com/prismcache/prismcache/internal/webhook/examples"
)

// Ids of the example payloads.
const (
	exampleInstanceID = "SW5zdGFuY2U6ZWM5YzViM2EtZjNhNy00MDliLTllM2QtODA3MDAxNDVlNWU0"
	exampleICVID      = "SW5zdGFuY2VDb25maWdWYXJpYWJsZTozZjJhMWIwYy05ZDhlLTRmN2EtOGI2Yy01ZDRlM2YyYTFiMGM="
	exampleCCVID      = "Q3VzdG9tZXJDb25maWdWYXJpYWJsZTo3YzZiNWE0OS0zODI3LTQxNjAtOWY4ZS03ZDZjNWI0YTM5Mjg="
	exampleCustomerID = "Q3VzdG9tZXI6NWExZjBjMmUtN2Q0NC00YzFiLThmMGUtMmI5ZDZmM2ExYzc3"
	exampleExternalID = "acme-001"
)

const (
	secretA = "intake-secret-a"
	secretB = "intake-secret-b"
)

// deployedAt is the lastDeployedAt of the seeded entry: the example
// instance.deployed payload's timestamp.
var deployedAt = time.Date(2026, 11, 20, 10, 6, 30, 555555000, time.UTC)

// intakeNow is the intake's clock in these tests.
var intakeNow = time.Date(2026, 11, 20, 12, 30, 0, 0, time.UTC)

func withTimestamp(t testing.TB, body []byte, ts time.Time) []byte {
	t.Helper()
	return examples.Edit(t, body, func(m map[string]any) {
		m["timestamp"] = ts.UTC().Format("2006-01-02T15:04:05.000000+00:00")
	})
}

func ptr[T any](v T) *T { return &v }

// seedDoc is the example instance as the daemon would have cached it.
func seedDoc() *cache.Doc {
	return &cache.Doc{
		ID: exampleInstanceID, Name: "Acme Corp - Salesforce Sync", Enabled: true, DeployedVersion: 3,
		LastDeployedAt: ptr(deployedAt),
		Customer:       cache.Customer{ID: exampleCustomerID, ExternalID: exampleExternalID, Name: "Acme Corp"},
		Integration:    cache.Integration{ID: "SW50ZWdyYXRpb246MQ==", Name: "Salesforce Sync", VersionNumber: 4},
		Config: map[string]cache.ConfigValue{
			"syncFrequency":        {ID: "SW5zdGFuY2VDb25maWdWYXJpYWJsZTpzeW5j", Value: ptr("15m"), Type: "STRING"},
			"salesforceConnection": {ID: exampleICVID, Type: cache.TypeConnection, Status: "ACTIVE"},
		},
	}
}

// seedEntry writes the example instance's entry, fresh, fetched just after
// its deploy.
func seedEntry(t testing.TB, db *store.Store) {
	t.Helper()
	e := cache.Entry{Doc: seedDoc(), Enabled: true, DeployedVersion: 3, FetchedAt: deployedAt.Add(time.Second)}
	if _, err := db.Apply(context.Background(), exampleInstanceID, cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e}); err != nil {
		t.Fatalf("seed entry: %v", err)
	}
}

// snapshot returns every key under prefix with its type and value: the DUMP
// of the key where the server has one, else (miniredis dumps only strings)
// the value read by type. Any error fails the test, so an unreadable key
// cannot make two snapshots look equal.
func snapshot(t testing.TB, rdb redis.UniversalClient, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatalf("snapshot: keys: %v", err)
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatalf("snapshot: type %s: %v", k, err)
		}
		dump, err := rdb.Dump(ctx, k).Result()
		if err == nil {
			out[k] = typ + ":" + dump
			continue
		}
		var val any
		switch typ {
		case "string":
			val, err = rdb.Get(ctx, k).Result()
		case "hash":
			val, err = rdb.HGetAll(ctx, k).Result()
		case "set":
			var m []string
			m, err = rdb.SMembers(ctx, k).Result()
			sort.Strings(m)
			val = m
		case "zset":
			val, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "none": // expired between KEYS and TYPE
			continue
		default:
			t.Fatalf("snapshot: key %s has unexpected type %s", k, typ)
		}
		if err != nil {
			t.Fatalf("snapshot: read %s: %v", k, err)
		}
		b, _ := json.Marshal(val)
		out[k] = typ + ":" + string(b)
	}
	return out
}

// diffKeys says which keys were added, removed or changed between two
// snapshots, for a failure message.
func diffKeys(before, after map[string]string) (added, removed, changed []string) {
	for k, v := range after {
		old, ok := before[k]
		switch {
		case !ok:
			added = append(added, k)
		case old != v:
			changed = append(changed, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			removed = append(removed, k)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	sort.Strings(changed)
	return added, removed, changed
}

func mustUnchanged(t testing.TB, what string, before, after map[string]string) {
	t.Helper()
	if added, removed, changed := diffKeys(before, after); len(added)+len(removed)+len(changed) > 0 {
		t.Fatalf("%s changed Redis: added %v, removed %v, changed %v", what, added, removed, changed)
	}
}

// rig is an Intake on one backend, with what it observed.
type rig struct {
	b     redistest.Backend
	store *store.Store
	work  *refresh.WorkSet
	in    *server.Intake

	mu   sync.Mutex
	seen []server.Delivery
}

func newRig(t testing.TB, b redistest.Backend, secrets ...string) *rig {
	t.Helper()
	if len(secrets) == 0 {
		secrets = []string{secretA}
	}
	actions, err := webhook.NewActions(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{b: b}
	r.store = store.New(b.Client, store.Options{Prefix: b.Prefix})
	r.work = refresh.NewWorkSet(b.Client, r.store.Keys(), refresh.WorkSetOptions{})
	r.in = &server.Intake{
		Verifier: webhook.NewVerifier(secrets...),
		Actions:  actions,
		Store:    r.store,
		Work:     r.work,
		Now:      func() time.Time { return intakeNow },
		Observe: func(d server.Delivery) {
			r.mu.Lock()
			r.seen = append(r.seen, d)
			r.mu.Unlock()
		},
	}
	return r
}

// lastDelivery returns what Observe saw last.
func (r *rig) lastDelivery(t testing.TB) server.Delivery {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) == 0 {
		t.Fatal("Observe saw no delivery")
	}
	return r.seen[len(r.seen)-1]
}

func (r *rig) snapshot(t testing.TB) map[string]string {
	t.Helper()
	return snapshot(t, r.b.Client, r.b.Prefix)
}

// request describes one delivery; zero fields take the usual values.
type request struct {
	method      string // POST
	event       string // X-Webhook-Event, none if empty
	contentType string // application/json; "-" for none
	body        []byte
	sig         string // X-Webhook-Signature; "" signs with secretA, "-" sends none
}

// answer is a decoded response.
type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (a answer) str(key string) string { s, _ := a.body[key].(string); return s }

func serve(t testing.TB, h http.Handler, req request) answer {
	t.Helper()
	method := req.method
	if method == "" {
		method = http.MethodPost
	}
	hr := httptest.NewRequest(method, "/webhooks/prismatic", bytes.NewReader(req.body))
	switch req.contentType {
	case "":
		hr.Header.Set("Content-Type", "application/json")
	case "-":
	default:
		hr.Header.Set("Content-Type", req.contentType)
	}
	if req.event != "" {
		hr.Header.Set(webhook.EventHeader, req.event)
	}
	switch req.sig {
	case "":
		hr.Header.Set(webhook.SignatureHeader, webhook.SignatureValue(secretA, req.body))
	case "-":
	default:
		hr.Header.Set(webhook.SignatureHeader, req.sig)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, hr)
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("answer %d has Content-Type %q, want application/json; body %s", rec.Code, ct, a.raw)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v: %s", rec.Code, err, a.raw)
	}
	return a
}

// bigBody is a valid, correctly shaped payload of more than n bytes.
func bigBody(t testing.TB, n int) []byte {
	t.Helper()
	return examples.Edit(t, examples.Must(t, "instance.updated.json"), func(m map[string]any) {
		m["padding"] = strings.Repeat("x", n)
	})
}

func TestIntakeRejections(t *testing.T) {
	updated := withTimestamp(t, examples.Must(t, "instance.updated.json"), intakeNow.Add(-time.Minute))
	noID := examples.Edit(t, updated, func(m map[string]any) { m["instance"] = map[string]any{"name": "no id"} })
	nullInstance := examples.Edit(t, updated, func(m map[string]any) { m["instance"] = nil })
	braceID := examples.Edit(t, updated, func(m map[string]any) { m["instance"] = map[string]any{"id": "{evil}"} })
	badTS := examples.Edit(t, updated, func(m map[string]any) { m["timestamp"] = "yesterday" })
	noType := examples.Edit(t, updated, func(m map[string]any) { delete(m, "event_type") })
	// Valid RFC 3339, but year 10000 in UTC: stored, it could not be read
	// back (FuzzIntake checks that entries stay readable).
	pastYear9999 := examples.Edit(t, updated, func(m map[string]any) { m["timestamp"] = "9999-12-31T23:59:59-23:59" })
	// Signed, and dated ahead of the clock: each would win every later
	// comparison of event times.
	skewPlus1s := withTimestamp(t, updated, intakeNow.Add(server.DefaultMaxClockSkew+time.Second))
	disabledAhead := withTimestamp(t, examples.Must(t, "instance.disabled.json"), intakeNow.AddDate(1, 0, 0))
	year9999 := examples.Edit(t, examples.Must(t, "instance.disabled.json"), func(m map[string]any) { m["timestamp"] = "9999-12-31T23:59:59.999999999Z" })
	// A captured body without event_type, replayed under a header of the
	// attacker's choice.
	typeless := func(name string) []byte {
		return examples.Edit(t, examples.Must(t, name), func(m map[string]any) { delete(m, "event_type") })
	}

	tests := []struct {
		name    string
		req     request
		status  int
		mention string // the error must say this (case-insensitive)
	}{
		{"GET", request{method: http.MethodGet, body: nil}, http.StatusMethodNotAllowed, "POST"},
		{"PUT", request{method: http.MethodPut, body: updated}, http.StatusMethodNotAllowed, "not allowed"},
		{"text/plain", request{contentType: "text/plain", body: updated}, http.StatusUnsupportedMediaType, "application/json"},
		{"form", request{contentType: "application/x-www-form-urlencoded", body: updated}, http.StatusUnsupportedMediaType, "Content-Type"},
		{"malformed content type", request{contentType: "application/json;;;=", body: updated}, http.StatusUnsupportedMediaType, "Content-Type"},
		{"body over the cap", request{body: bigBody(t, 4096)}, http.StatusRequestEntityTooLarge, "larger than 2048 bytes"},
		{"no signature", request{sig: "-", body: updated}, http.StatusUnauthorized, "missing X-Webhook-Signature"},
		{"signed with another secret", request{sig: webhook.SignatureValue("not-our-secret", updated), body: updated}, http.StatusUnauthorized, "does not match"},
		{"signature of another body", request{sig: webhook.SignatureValue(secretA, noID), body: updated}, http.StatusUnauthorized, "does not match"},
		{"signature without sha256=", request{sig: strings.TrimPrefix(webhook.SignatureValue(secretA, updated), "sha256="), body: updated}, http.StatusUnauthorized, "signature"},
		{"signature not hex", request{sig: "sha256=zz", body: updated}, http.StatusUnauthorized, "signature"},
		{"bad JSON", request{body: []byte(`{"event_type":"instance.updated",`)}, http.StatusBadRequest, "JSON"},
		{"JSON array", request{body: []byte(`[{"event_type":"instance.updated"}]`)}, http.StatusBadRequest, "JSON object"},
		{"trailing data", request{body: append(append([]byte{}, updated...), []byte(`{}`)...)}, http.StatusBadRequest, "trailing"},
		{"header and body disagree", request{event: "instance.deployed", body: updated}, http.StatusBadRequest, "instance.deployed"},
		{"no event type anywhere", request{body: noType}, http.StatusBadRequest, "event type"},
		{"instance event without instance id", request{event: "instance.updated", body: noID}, http.StatusBadRequest, "without instance.id"},
		{"instance event with null instance", request{body: nullInstance}, http.StatusBadRequest, "without instance.id"},
		{"instance id that is not an id", request{body: braceID}, http.StatusBadRequest, "not a Prismatic id"},
		{"timestamp that is not a time", request{body: badTS}, http.StatusBadRequest, "timestamp"},
		{"timestamp past year 9999 in UTC", request{body: pastYear9999}, http.StatusBadRequest, "out of range"},
		{"timestamp skew + 1s ahead", request{body: skewPlus1s}, http.StatusBadRequest, "max-clock-skew"},
		{"disable dated a year ahead", request{body: disabledAhead}, http.StatusBadRequest, "ahead of this server's clock"},
		{"disable dated year 9999", request{body: year9999}, http.StatusBadRequest, "ahead of this server's clock"},
		{"no event_type, header instance.deleted", request{event: "instance.deleted", body: typeless("instance.updated.json")}, http.StatusBadRequest, "not signed"},
		{"no event_type, header instance.disabled", request{event: "instance.disabled", body: typeless("instance.updated.json")}, http.StatusBadRequest, "not signed"},
		{"no event_type, header instance.deployed", request{event: "instance.deployed", body: typeless("instance.deployed.json")}, http.StatusBadRequest, "not signed"},
		{"no event_type, header instance.updated", request{event: "instance.updated", body: typeless("instance.updated.json")}, http.StatusBadRequest, "not signed"},
		{"no event_type, header customer.deleted", request{event: "customer.deleted", body: []byte(`{"customer":{"external_id":"` + exampleExternalID + `"}}`)}, http.StatusBadRequest, "not signed"},
		{"no event_type, header connection.updated", request{event: "connection.updated", body: []byte(`{"connection":{"id":"` + exampleICVID + `"}}`)}, http.StatusBadRequest, "not signed"},
		{"no signature and a body over the cap", request{sig: "-", body: bigBody(t, 4096)}, http.StatusRequestEntityTooLarge, "larger than"},
	}
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		r := newRig(t, b)
		r.in.MaxBody = 2048
		seedEntry(t, r.store)
		before := r.snapshot(t)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				a := serve(t, r.in, tc.req)
				if a.status != tc.status {
					t.Fatalf("status %d, want %d; body %s", a.status, tc.status, a.raw)
				}
				msg := a.str("error")
				if msg == "" || !strings.Contains(strings.ToLower(msg), strings.ToLower(tc.mention)) {
					t.Errorf("error %q does not say %q", msg, tc.mention)
				}
				if tc.status == http.StatusMethodNotAllowed && a.header.Get("Allow") != http.MethodPost {
					t.Errorf("405 with Allow %q, want POST", a.header.Get("Allow"))
				}
				d := r.lastDelivery(t)
				if d.Outcome != "rejected" || d.Status != tc.status || d.Detail == "" {
					t.Errorf("Observe saw %+v, want outcome rejected, status %d, a detail", d, tc.status)
				}
				mustUnchanged(t, tc.name, before, r.snapshot(t))
			})
		}
		if st, err := r.work.Stats(context.Background()); err != nil || st.Queued != 0 {
			t.Fatalf("work set after rejections: %+v, %v; want empty", st, err)
		}
	})
}

func TestIntakeAcceptsContentTypes(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		r := newRig(t, b)
		body := examples.Must(t, "webhook.test.json")
		for i, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON", "-"} {
			// Each body differs so that none is a duplicate of another.
			body := examples.Edit(t, body, func(m map[string]any) { m["n"] = i })
			a := serve(t, r.in, request{contentType: ct, event: "webhook.test", body: body})
			if a.status != http.StatusOK || a.str("status") != "accepted" {
				t.Errorf("Content-Type %q: status %d %s, want 200 accepted", ct, a.status, a.raw)
			}
		}
		// A body of exactly MaxBody bytes is taken; one more is not.
		r.in.MaxBody = 2048
		exact := examples.Edit(t, body, func(m map[string]any) { m["padding"] = "" })
		exact = examples.Edit(t, body, func(m map[string]any) { m["padding"] = strings.Repeat("x", 2048-len(exact)) })
		if len(exact) != 2048 {
			t.Fatalf("padded body is %d bytes", len(exact))
		}
		if a := serve(t, r.in, request{event: "webhook.test", body: exact}); a.status != http.StatusOK {
			t.Errorf("body of exactly MaxBody bytes: %d %s", a.status, a.raw)
		}
		over := append([]byte(" "), exact...)
		if a := serve(t, r.in, request{event: "webhook.test", body: over}); a.status != http.StatusRequestEntityTooLarge {
			t.Errorf("body of MaxBody+1 bytes: %d %s", a.status, a.raw)
		}
	})
}

func TestIntakeTimestampWindow(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		r := newRig(t, b)
		r.in.TimestampWindow = 5 * time.Minute
		seedEntry(t, r.store)
		base := examples.Must(t, "instance.updated.json")
		before := r.snapshot(t)
		for name, ts := range map[string]time.Time{
			"too old":               intakeNow.Add(-5*time.Minute - time.Microsecond),
			"much too old":          intakeNow.Add(-72 * time.Hour),
			"too far in the future": intakeNow.Add(5*time.Minute + time.Microsecond),
			"years ahead":           intakeNow.AddDate(3, 0, 0),
		} {
			a := serve(t, r.in, request{body: withTimestamp(t, base, ts)})
			if a.status != http.StatusBadRequest || !strings.Contains(a.str("error"), "outside the accepted window") {
				t.Errorf("%s (%s): status %d %s, want 400 saying it is outside the window", name, ts, a.status, a.raw)
			}
			if d := r.lastDelivery(t); d.Outcome != "rejected" || d.Event != webhook.InstanceUpdated {
				t.Errorf("%s: Observe saw %+v", name, d)
			}
		}
		mustUnchanged(t, "timestamps outside the window", before, r.snapshot(t))

		// At the edges of the window, both ways: accepted.
		for _, ts := range []time.Time{intakeNow.Add(-5 * time.Minute), intakeNow.Add(5 * time.Minute)} {
			a := serve(t, r.in, request{body: withTimestamp(t, base, ts)})
			if a.status != http.StatusOK {
				t.Errorf("timestamp %s inside the window: status %d %s", ts, a.status, a.raw)
			}
		}
		// A body without a timestamp cannot be checked and is accepted.
		noTS := examples.Edit(t, base, func(m map[string]any) { delete(m, "timestamp") })
		if a := serve(t, r.in, request{body: noTS}); a.status != http.StatusOK {
			t.Errorf("no timestamp: status %d %s", a.status, a.raw)
		}
	})
}

func TestIntakeSecretRotation(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		r := newRig(t, b, secretA, secretB)
		seedEntry(t, r.store)
		base := examples.Must(t, "instance.updated.json")
		for i, secret := range []string{secretA, secretB} {
			body := withTimestamp(t, base, intakeNow.Add(time.Duration(i-2)*time.Minute))
			a := serve(t, r.in, request{body: body, sig: webhook.SignatureValue(secret, body)})
			if a.status != http.StatusOK || a.str("status") != "accepted" {
				t.Fatalf("signed with secret %d of 2: status %d %s", i+1, a.status, a.raw)
			}
		}
		st, err := r.store.Load(context.Background(), exampleInstanceID)
		if err != nil || !st.Entry.Stale || !st.Entry.UpdatedEventAt.Equal(intakeNow.Add(-time.Minute)) {
			t.Fatalf("after both updates: %+v, %v; want stale as of the second", st.Entry, err)
		}
		body := withTimestamp(t, base, intakeNow)
		before := r.snapshot(t)
		if a := serve(t, r.in, request{body: body, sig: webhook.SignatureValue("retired-secret", body)}); a.status != http.StatusUnauthorized {
			t.Fatalf("signed with a third secret: status %d %s, want 401", a.status, a.raw)
		}
		mustUnchanged(t, "a body signed with a retired secret", before, r.snapshot(t))
	})
}

// TestIntakeIgnoredEvents: events that change nothing are acknowledged, and
// the only key written is the dedup mark.
func TestIntakeIgnoredEvents(t *testing.T) {
	testNoType := examples.Edit(t, examples.Must(t, "webhook.test.json"), func(m map[string]any) {
		delete(m, "event_type")
		delete(m, "timestamp")
	})
	tests := []struct {
		name    string
		event   string
		body    []byte
		outcome string
	}{
		{"integration.published", "integration.published", examples.Must(t, "integration.published.json"), "ignored"},
		{"unknown type, header only", "alert_monitor.triggered", []byte(`{"alert_monitor":{"id":"QWxlcnRNb25pdG9yOjE="}}`), "ignored"},
		{"unknown type naming an instance", "", []byte(`{"event_type":"instance.renamed","instance":{"id":"` + exampleInstanceID + `"}}`), "ignored"},
		{"webhook.test", "webhook.test", examples.Must(t, "webhook.test.json"), "ignored"},
		{"webhook.test without event_type in the body", "webhook.test", testNoType, "ignored"},
		{"instance.created", "instance.created", examples.Must(t, "instance.created.json"), "ignored"},
		// Accepted with a target that resolves to nothing: no instance or
		// connection, or a connection id that is no global id.
		{"connection event naming nothing", "", []byte(`{"event_type":"connection.updated","timestamp":"2026-11-20T12:00:00Z"}`), "accepted"},
		{"connection id that decodes to nothing", "", []byte(`{"event_type":"oauth2.token_refreshed","connection":{"id":"abc"}}`), "accepted"},
		{"customer event without customer", "", []byte(`{"event_type":"customer.updated","customer":null}`), "accepted"},
	}
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		r := newRig(t, b)
		seedEntry(t, r.store)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := r.snapshot(t)
				a := serve(t, r.in, request{event: tc.event, body: tc.body})
				if a.status != http.StatusOK || a.str("status") != "accepted" {
					t.Fatalf("status %d %s, want 200 accepted", a.status, a.raw)
				}
				if d := r.lastDelivery(t); d.Outcome != tc.outcome || d.Status != http.StatusOK {
					t.Errorf("Observe saw %+v, want outcome %s", d, tc.outcome)
				}
				// Nothing to store, so nothing is written — not even a dedup
				// mark: a repeat would do nothing either.
				added, removed, changed := diffKeys(before, r.snapshot(t))
				if len(added)+len(removed)+len(changed) > 0 {
					t.Fatalf("wrote added %v, removed %v, changed %v; want nothing", added, removed, changed)
				}
			})
		}
	})
}

// claimAll plays a worker: it claims every due id and finishes it, as if
// fetched, and returns what it claimed.
func claimAll(t testing.TB, w *refresh.WorkSet) []string {
	t.Helper()
	ctx := context.Background()
	claims, err := w.Claim(ctx, 100, "test-worker")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range claims {
		if _, err := w.Done(ctx, c); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	sort.Strings(ids)
	return ids
}

func TestIntakeDuplicates(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		r := newRig(t, b)
		seedEntry(t, r.store)
		var wakes atomic.Int32
		r.in.Wake = func() { wakes.Add(1) }

		// instance.deployed queues one fetch, and wakes this process's
		// workers; once it ran, a second delivery of the same body queues
		// nothing and wakes no one.
		deployed := examples.Must(t, "instance.deployed.json")
		a := serve(t, r.in, request{event: webhook.InstanceDeployed, body: deployed})
		if a.status != http.StatusOK || a.str("status") != "accepted" || a.str("action") != string(webhook.ActionRefetch) {
			t.Fatalf("first delivery: %d %s", a.status, a.raw)
		}
		if n := wakes.Load(); n != 1 {
			t.Fatalf("the deploy woke the workers %d times, want 1", n)
		}
		if got := claimAll(t, r.work); len(got) != 1 || got[0] != exampleInstanceID {
			t.Fatalf("the deploy queued %v, want the instance once", got)
		}
		before := r.snapshot(t)
		a = serve(t, r.in, request{event: webhook.InstanceDeployed, body: deployed})
		if a.status != http.StatusOK || a.str("status") != "duplicate" {
			t.Fatalf("second delivery: %d %s, want 200 duplicate", a.status, a.raw)
		}
		if d := r.lastDelivery(t); d.Outcome != "duplicate" || d.Event != webhook.InstanceDeployed || d.Instance != exampleInstanceID {
			t.Errorf("Observe saw %+v, want a duplicate instance.deployed", d)
		}
		if st, err := r.work.Stats(ctx); err != nil || st.Queued != 0 || st.Leased != 0 {
			t.Fatalf("work set after the duplicate: %+v, %v; want nothing queued", st, err)
		}
		if n := wakes.Load(); n != 1 {
			t.Fatalf("after the duplicate the workers were woken %d times, want still 1", n)
		}
		mustUnchanged(t, "a duplicate instance.deployed", before, r.snapshot(t))

		// instance.updated: one stale mark; the duplicate writes nothing, so
		// rev stays.
		updated := withTimestamp(t, examples.Must(t, "instance.updated.json"), intakeNow.Add(-time.Minute))
		if a := serve(t, r.in, request{body: updated}); a.status != http.StatusOK || a.str("status") != "accepted" {
			t.Fatalf("instance.updated: %d %s", a.status, a.raw)
		}
		st, err := r.store.Load(ctx, exampleInstanceID)
		if err != nil || !st.Entry.Stale || st.Entry.StaleReason != cache.StaleUpdated {
			t.Fatalf("after instance.updated: %+v, %v", st.Entry, err)
		}
		before = r.snapshot(t)
		if a := serve(t, r.in, request{body: updated}); a.status != http.StatusOK || a.str("status") != "duplicate" {
			t.Fatalf("instance.updated again: %d %s, want duplicate", a.status, a.raw)
		}
		mustUnchanged(t, "a duplicate instance.updated", before, r.snapshot(t))

		// The same event re-encoded is another body (a new dedup mark) but
		// the same effect: the entry is not written again.
		reencoded := append([]byte("\n"), updated...)
		if a := serve(t, r.in, request{body: reencoded}); a.status != http.StatusOK || a.str("status") != "accepted" {
			t.Fatalf("re-encoded instance.updated: %d %s", a.status, a.raw)
		}
		again, err := r.store.Load(ctx, exampleInstanceID)
		if err != nil || again.Entry.Rev != st.Entry.Rev {
			t.Fatalf("re-encoded instance.updated wrote the entry: rev %d → %d (%v)", st.Entry.Rev, again.Entry.Rev, err)
		}

		// A rejected body is not remembered: once correctly signed it applies.
		disabled := withTimestamp(t, examples.Must(t, "instance.disabled.json"), intakeNow)
		if a := serve(t, r.in, request{body: disabled, sig: "-"}); a.status != http.StatusUnauthorized {
			t.Fatalf("unsigned: %d", a.status)
		}
		if a := serve(t, r.in, request{body: disabled}); a.status != http.StatusOK || a.str("status") != "accepted" {
			t.Fatalf("the same body signed: %d %s, want accepted", a.status, a.raw)
		}
		if st, err := r.store.Load(ctx, exampleInstanceID); err != nil || st.Entry.Enabled {
			t.Fatalf("after instance.disabled: enabled %v, %v", st.Entry.Enabled, err)
		}
	})
}

// TestIntakeObserve follows one of each outcome through the Observe hook.
func TestIntakeObserve(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		r := newRig(t, b)
		seedEntry(t, r.store)
		updated := withTimestamp(t, examples.Must(t, "instance.updated.json"), intakeNow)
		steps := []struct {
			req     request
			status  int
			outcome string
			event   string
			action  webhook.Action
		}{
			{request{body: updated, sig: "sha256=00"}, http.StatusUnauthorized, "rejected", "", ""},
			{request{body: updated}, http.StatusOK, "accepted", webhook.InstanceUpdated, webhook.ActionStale},
			{request{body: updated}, http.StatusOK, "duplicate", webhook.InstanceUpdated, webhook.ActionStale},
			{request{event: "webhook.test", body: examples.Must(t, "webhook.test.json")}, http.StatusOK, "ignored", webhook.WebhookTest, webhook.ActionIgnore},
			{request{method: http.MethodDelete}, http.StatusMethodNotAllowed, "rejected", "", ""},
		}
		for i, s := range steps {
			a := serve(t, r.in, s.req)
			if a.status != s.status {
				t.Fatalf("step %d: status %d %s, want %d", i, a.status, a.raw, s.status)
			}
			d := r.lastDelivery(t)
			if d.Status != s.status || d.Outcome != s.outcome || d.Event != s.event || d.Action != s.action || d.Took < 0 {
				t.Errorf("step %d: Observe saw %+v, want status %d outcome %s event %q action %q", i, d, s.status, s.outcome, s.event, s.action)
			}
		}
		r.mu.Lock()
		n := len(r.seen)
		r.mu.Unlock()
		if n != len(steps) {
			t.Errorf("Observe saw %d deliveries, want %d", n, len(steps))
		}
	})
}

// TestIntakeTargets checks what reaches Redis for the event families whose
// work is done later by the workers: connection jobs, customer jobs and a
// customer's delete.
func TestIntakeTargets(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		r := newRig(t, b)
		seedEntry(t, r.store)
		for _, tc := range []struct {
			file string
			want string
		}{
			{"oauth2.token_refreshed.with-instance.json", exampleInstanceID},
			{"oauth2.token_refresh_failed.instance-connection-only.json", refresh.ConnectionJob(exampleICVID)},
			{"connection.updated.customer-connection.json", refresh.ConnectionJob(exampleCCVID)},
		} {
			a := serve(t, r.in, request{event: examples.Type(tc.file), body: examples.Must(t, tc.file)})
			if a.status != http.StatusOK || a.str("action") != string(webhook.ActionRefetch) {
				t.Fatalf("%s: %d %s", tc.file, a.status, a.raw)
			}
			if got := claimAll(t, r.work); len(got) != 1 || got[0] != tc.want {
				t.Errorf("%s queued %v, want [%s]", tc.file, got, tc.want)
			}
		}

		customer := func(typ, id string) []byte {
			return []byte(`{"event_type":"` + typ + `","timestamp":"2026-11-20T12:00:00.000000+00:00","instance":null,` +
				`"customer":{"id":"` + id + `","name":"Acme Corp","external_id":"` + exampleExternalID + `"}}`)
		}
		a := serve(t, r.in, request{body: customer(webhook.CustomerUpdated, exampleCustomerID)})
		if a.status != http.StatusOK || a.str("action") != string(webhook.ActionCustomerRefresh) {
			t.Fatalf("customer.updated: %d %s", a.status, a.raw)
		}
		if got := claimAll(t, r.work); len(got) != 1 || got[0] != refresh.CustomerJob(exampleCustomerID) {
			t.Errorf("customer.updated queued %v", got)
		}

		// customer.deleted queues the job that removes the customer's
		// cached instances (it checks each entry's customer id; end to end
		// in internal/app).
		a = serve(t, r.in, request{body: customer(webhook.CustomerDeleted, exampleCustomerID)})
		if a.status != http.StatusOK || a.str("action") != string(webhook.ActionCustomerDelete) {
			t.Fatalf("customer.deleted: %d %s", a.status, a.raw)
		}
		if got := claimAll(t, r.work); len(got) != 1 || got[0] != refresh.CustomerDeleteJob(exampleCustomerID, exampleExternalID) {
			t.Errorf("customer.deleted queued %v", got)
		}
		if _, err := r.store.Update(ctx, exampleInstanceID, store.UpdateOptions{}, func(store.State) *store.Mutation {
			return &store.Mutation{Kind: cache.ChangeDeleted, Delete: true} // as the job would
		}); err != nil {
			t.Fatal(err)
		}
		// A late deploy of a deleted instance is queued like any deploy (one
		// script, no read); its fetch finds the tombstone and writes nothing
		// (refresh.DecideWrite; end to end in internal/app).
		late := withTimestamp(t, examples.Must(t, "instance.deployed.json"), intakeNow)
		if a := serve(t, r.in, request{body: late}); a.status != http.StatusOK || a.str("status") != "accepted" {
			t.Fatalf("late instance.deployed: %d %s", a.status, a.raw)
		}
		if got := claimAll(t, r.work); len(got) != 1 || got[0] != exampleInstanceID {
			t.Errorf("a late deploy queued %v, want the instance once", got)
		}
	})
}

// closedPortClient is a Redis client to an address nothing listens on.
func closedPortClient(t testing.TB) redis.UniversalClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestIntakeRedisDown(t *testing.T) {
	deployed := examples.Must(t, "instance.deployed.json")
	wantUnavailable := func(t *testing.T, r *rig) {
		t.Helper()
		a := serve(t, r.in, request{body: deployed})
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || a.str("error") == "" {
			t.Fatalf("with Redis down: status %d, Retry-After %q, body %s; want 503 with Retry-After and an error",
				a.status, a.header.Get("Retry-After"), a.raw)
		}
		if d := r.lastDelivery(t); d.Outcome != "unavailable" || d.Status != http.StatusServiceUnavailable {
			t.Errorf("Observe saw %+v, want unavailable", d)
		}
	}
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		// An intake whose Redis does not answer acknowledges nothing...
		down := newRig(t, redistest.Backend{Name: "down", Client: closedPortClient(t), Prefix: b.Prefix})
		wantUnavailable(t, down)
		// ...so the retry, once Redis answers, is applied in full, not
		// taken for a duplicate.
		r := newRig(t, b)
		seedEntry(t, r.store)
		if a := serve(t, r.in, request{body: deployed}); a.status != http.StatusOK || a.str("status") != "accepted" {
			t.Fatalf("retry with Redis up: %d %s, want accepted", a.status, a.raw)
		}
		if got := claimAll(t, r.work); len(got) != 1 {
			t.Fatalf("the retry queued %v", got)
		}

		if b.Mini == nil {
			return
		}
		// miniredis: the same Redis stops, then comes back.
		updated := withTimestamp(t, examples.Must(t, "instance.updated.json"), intakeNow)
		b.Mini.Close()
		a := serve(t, r.in, request{body: updated})
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
			t.Fatalf("after closing miniredis: %d %s", a.status, a.raw)
		}
		if err := b.Mini.Restart(); err != nil {
			t.Fatal(err)
		}
		if a := serve(t, r.in, request{body: updated}); a.status != http.StatusOK || a.str("status") != "accepted" {
			t.Fatalf("retry after the restart: %d %s, want accepted", a.status, a.raw)
		}
		st, err := r.store.Load(context.Background(), exampleInstanceID)
		if err != nil || !st.Entry.Stale {
			t.Fatalf("after the retry: stale %v, %v", st.Entry.Stale, err)
		}
	})
}

// TestIntakeRedisFailsMidway: the write script fails (Redis errors
// mid-delivery). The sender gets a 503, nothing is written — neither the
// effect nor the dedup mark, which the same script sets — and the retry is
// applied in full, not taken for a duplicate; a third delivery is one.
func TestIntakeRedisFailsMidway(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		r := newRig(t, b)
		seedEntry(t, r.store)
		failing := &failOn{match: func(cmd redis.Cmder) bool {
			name := cmd.Name()
			return (name == "evalsha" || name == "eval") && strings.Contains(fmt.Sprint(cmd.Args()), "dedup:")
		}}
		b.Client.AddHook(failing)
		before := r.snapshot(t)
		updated := withTimestamp(t, examples.Must(t, "instance.updated.json"), intakeNow)
		a := serve(t, r.in, request{body: updated})
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
			t.Fatalf("with the write failing: %d %s, want 503 with Retry-After", a.status, a.raw)
		}
		if added, removed, changed := diffKeys(before, r.snapshot(t)); len(added)+len(removed)+len(changed) > 0 {
			t.Fatalf("a 503 left writes behind: added %v, removed %v, changed %v", added, removed, changed)
		}
		failing.off()
		if a := serve(t, r.in, request{body: updated}); a.status != http.StatusOK || a.str("status") != "accepted" {
			t.Fatalf("retry: %d %s, want accepted (not a duplicate)", a.status, a.raw)
		}
		st, err := r.store.Load(ctx, exampleInstanceID)
		if err != nil || !st.Entry.Stale {
			t.Fatalf("after the retry: stale %v, %v", st.Entry.Stale, err)
		}
		if a := serve(t, r.in, request{body: updated}); a.str("status") != "duplicate" {
			t.Fatalf("third delivery: %s, want duplicate", a.raw)
		}
		again, _ := r.store.Load(ctx, exampleInstanceID)
		if again.Entry.Rev != st.Entry.Rev {
			t.Fatalf("a duplicate wrote: rev %d → %d", st.Entry.Rev, again.Entry.Rev)
		}
	})
}

// failOn is a go-redis hook that fails the commands match selects until off
// is called.
type failOn struct {
	match    func(redis.Cmder) bool
	mu       sync.Mutex
	disabled bool
}

var errInjected = errors.New("injected Redis failure")

func (f *failOn) fails(cmd redis.Cmder) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.disabled && f.match(cmd)
}

func (f *failOn) off() {
	f.mu.Lock()
	f.disabled = true
	f.mu.Unlock()
}

func (f *failOn) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *failOn) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if f.fails(cmd) {
			cmd.SetErr(errInjected)
			return errInjected
		}
		return next(ctx, cmd)
	}
}

func (f *failOn) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if f.fails(c) {
				for _, c := range cmds {
					c.SetErr(errInjected)
				}
				return errInjected
			}
		}
		return next(ctx, cmds)
	}
}
