package bench

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/server"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/webhook"
)

// TestFloorRecordsBeforeAnswering: the durable floor answers 200 only once
// the body is recorded in Redis, 503 when it cannot be, and records nothing
// for a body whose signature is wrong.
func TestFloorRecordsBeforeAnswering(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		sg := &Signer{Secret: []byte("s3cret")}
		send := func(h http.Handler, body []byte) int {
			t.Helper()
			raw := sg.Request(nil, "example:80", webhook.InstanceUpdated, body)
			req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec.Code
		}
		records := func() int {
			t.Helper()
			keys, err := b.Client.Keys(ctx, b.Prefix+"floor:*").Result()
			if err != nil {
				t.Fatal(err)
			}
			return len(keys)
		}
		body := sg.InstanceEvent(webhook.InstanceUpdated, "SW5zdGFuY2U6MQ==", "Acme")

		if code := send(FloorHandler("other", b.Client, b.Prefix), body); code != http.StatusUnauthorized || records() != 0 {
			t.Fatalf("wrong secret: status %d, %d records; want 401 and none", code, records())
		}
		floor := FloorHandler("s3cret", b.Client, b.Prefix)
		if code := send(floor, body); code != http.StatusOK || records() != 1 {
			t.Fatalf("signed body: status %d, %d records; want 200 and one", code, records())
		}
		if code := send(floor, sg.InstanceEvent(webhook.InstanceUpdated, "SW5zdGFuY2U6MQ==", "Acme")); code != http.StatusOK || records() != 2 {
			t.Fatalf("second body: status %d, %d records; want 200 and two", code, records())
		}
		if b.Mini == nil {
			return
		}
		b.Mini.SetError("LOADING Redis is loading the dataset in memory")
		defer b.Mini.SetError("")
		if code := send(floor, sg.InstanceEvent(webhook.InstanceUpdated, "SW5zdGFuY2U6MQ==", "Acme")); code != http.StatusServiceUnavailable {
			t.Fatalf("Redis failing: status %d; want 503", code)
		}
	})
}

// TestEffectFloorAppliesEachEventOnce: the effect floor marks the entry
// stale and bumps its rev for instance.updated, queues the instance for
// instance.deployed, does nothing for a second delivery of a body, and
// refuses what it cannot apply.
func TestEffectFloorAppliesEachEventOnce(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		sg := &Signer{Secret: []byte("s3cret")}
		h := EffectFloorHandler("s3cret", b.Client, b.Prefix)
		send := func(typ string, body []byte) int {
			t.Helper()
			req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(sg.Request(nil, "example:80", typ, body))))
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec.Code
		}
		id := "SW5zdGFuY2U6MQ=="
		if err := SeedEffect(ctx, b.Client, b.Prefix, []string{id}, 100); err != nil {
			t.Fatal(err)
		}
		entry := func() (stale, rev string) {
			t.Helper()
			v, err := b.Client.HMGet(ctx, EffectEntryKey(b.Prefix, id), "stale", "rev").Result()
			if err != nil {
				t.Fatal(err)
			}
			return v[0].(string), v[1].(string)
		}
		updated := sg.InstanceEvent(webhook.InstanceUpdated, id, "Acme")
		for i := range 2 {
			if code := send(webhook.InstanceUpdated, updated); code != http.StatusOK {
				t.Fatalf("instance.updated, delivery %d: status %d, want 200", i+1, code)
			}
			if stale, rev := entry(); stale != "1" || rev != "2" {
				t.Fatalf("after delivery %d: stale %s rev %s, want 1 and 2 (one write however often it arrives)", i+1, stale, rev)
			}
		}
		due := b.Prefix + "effect:{work}:due"
		if code := send(webhook.InstanceDeployed, sg.InstanceEvent(webhook.InstanceDeployed, id, "Acme")); code != http.StatusOK {
			t.Fatalf("instance.deployed: status %d, want 200", code)
		}
		if n, err := b.Client.ZCard(ctx, due).Result(); err != nil || n != 1 {
			t.Fatalf("due set after a deploy: %d members (%v), want 1", n, err)
		}
		if code := send(webhook.InstanceUpdated, []byte(`{"event_type":"instance.updated"}`)); code != http.StatusBadRequest {
			t.Fatalf("body without an instance: status %d, want 400", code)
		}
	})
}

// TestHarnessCountsTheDaemonsDuplicates: the harness tells a duplicate from
// the daemon's own answer, so that a load run's duplicates count can show
// dedup short-circuiting a benchmark.
func TestHarnessCountsTheDaemonsDuplicates(t *testing.T) {
	b := redistest.Mini(t)
	db := store.New(b.Client, store.Options{Prefix: b.Prefix})
	actions, err := webhook.NewActions(nil)
	if err != nil {
		t.Fatal(err)
	}
	in := &server.Intake{Verifier: webhook.NewVerifier("s3cret"), Actions: actions, Store: db,
		Work: refresh.NewWorkSet(b.Client, db.Keys(), refresh.WorkSetOptions{})}
	sg := &Signer{Secret: []byte("s3cret")}
	body := sg.InstanceEvent(webhook.InstanceDeployed, "SW5zdGFuY2U6MQ==", "Acme")
	for i, want := range []bool{false, true} {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(sg.Request(nil, "example:80", webhook.InstanceDeployed, body))))
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		in.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || IsDuplicate(rec.Body.Bytes()) != want {
			t.Fatalf("delivery %d: status %d, body %s: IsDuplicate = %v, want %v", i+1, rec.Code, rec.Body, !want, want)
		}
	}
	if !IsDuplicate([]byte("{\n  \"status\": \"duplicate\"\n}")) {
		t.Error("an indented duplicate answer is not recognised")
	}
}
