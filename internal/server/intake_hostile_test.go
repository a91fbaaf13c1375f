package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/server"
	"github.com/prismcache/prismcache/internal/webhook"
	"github.com/prismcache/prismcache/internal/webhook/examples"
)

// TestIntakeBodyWithoutLength: a body of unknown length (chunked) is read
// up to the maximum and refused past it, without changing Redis.
func TestIntakeBodyWithoutLength(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		r := newRig(t, b)
		r.in.MaxBody = 2048
		seedEntry(t, r.store)
		deliver := func(body []byte) *httptest.ResponseRecorder {
			// io.MultiReader hides the length: ContentLength is -1.
			req := httptest.NewRequest(http.MethodPost, "/webhooks/prismatic", io.MultiReader(bytes.NewReader(body)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(webhook.SignatureHeader, webhook.SignatureValue(secretA, body))
			if req.ContentLength != -1 {
				t.Fatalf("ContentLength %d, want unknown", req.ContentLength)
			}
			rec := httptest.NewRecorder()
			r.in.ServeHTTP(rec, req)
			return rec
		}
		before := r.snapshot(t)
		if rec := deliver(bigBody(t, 4096)); rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("chunked body over the cap: %d %s", rec.Code, rec.Body)
		}
		mustUnchanged(t, "a chunked body over the cap", before, r.snapshot(t))
		body := withTimestamp(t, examples.Must(t, "instance.updated.json"), intakeNow.Add(-time.Minute))
		if rec := deliver(body); rec.Code != http.StatusOK {
			t.Fatalf("chunked body under the cap: %d %s", rec.Code, rec.Body)
		}
		if st := r.in.Stats().Budget; st.Bytes != 0 || st.Requests != 0 || st.HeldBytes != 0 {
			t.Fatalf("budget after the requests: %+v, want empty", st)
		}
	})
}

// TestIntakeStalledBody: a body that stops arriving is answered 408 once
// it has sent nothing for the stall timeout, the connection is closed, and
// Redis is unchanged.
func TestIntakeStalledBody(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		r := newRig(t, b)
		r.in.BodyStall = 300 * time.Millisecond
		seedEntry(t, r.store)
		srv := server.New(server.Options{Intake: r.in})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv.Serve(ln)
		t.Cleanup(func() { _ = srv.Close(context.Background()) })
		before := r.snapshot(t)

		body := withTimestamp(t, examples.Must(t, "instance.deleted.json"), intakeNow.Add(-time.Minute))
		conn, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// All but the last byte, correctly signed: held back, it deletes
		// nothing.
		fmt.Fprintf(conn, "POST /webhooks/prismatic HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s: %s\r\n\r\n%s",
			len(body), webhook.SignatureHeader, webhook.SignatureValue(secretA, body), body[:len(body)-1])
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer to a stalled body: %v", err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
			t.Fatalf("stalled body: %d (close %v) %s, want 408 and the connection closed", resp.StatusCode, resp.Close, msg)
		}
		if d := r.lastDelivery(t); d.Outcome != "rejected" || d.Status != http.StatusRequestTimeout {
			t.Fatalf("Observe saw %+v", d)
		}
		mustUnchanged(t, "a stalled body", before, r.snapshot(t))
	})
}

// TestIntakeFutureThenCurrent: signed events dated ahead of the clock are
// refused and write nothing, so the events that follow, dated now, apply:
// a disable, an enable, an update and a deploy.
func TestIntakeFutureThenCurrent(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		r := newRig(t, b)
		seedEntry(t, r.store)
		ahead := []time.Time{
			intakeNow.Add(server.DefaultMaxClockSkew + time.Second),
			intakeNow.AddDate(1, 0, 0),
			time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		}
		before := r.snapshot(t)
		for _, name := range []string{"instance.disabled.json", "instance.updated.json", "instance.deleted.json", "instance.deployed.json"} {
			for _, ts := range ahead {
				a := serve(t, r.in, request{body: withTimestamp(t, examples.Must(t, name), ts)})
				if a.status != http.StatusBadRequest || !strings.Contains(a.str("error"), "ahead") {
					t.Fatalf("%s dated %s: %d %s, want 400", name, ts, a.status, a.raw)
				}
			}
		}
		mustUnchanged(t, "events dated ahead", before, r.snapshot(t))

		step := func(name string, at time.Duration) {
			t.Helper()
			a := serve(t, r.in, request{body: withTimestamp(t, examples.Must(t, name), intakeNow.Add(at))})
			if a.status != http.StatusOK || a.str("status") != "accepted" {
				t.Fatalf("%s: %d %s", name, a.status, a.raw)
			}
		}
		step("instance.disabled.json", -3*time.Second)
		if st, _ := r.store.Load(ctx, exampleInstanceID); st.Entry.Enabled {
			t.Fatal("a current disable did not apply")
		}
		step("instance.enabled.json", -2*time.Second)
		if st, _ := r.store.Load(ctx, exampleInstanceID); !st.Entry.Enabled {
			t.Fatal("a current enable did not apply")
		}
		step("instance.updated.json", -time.Second)
		if st, _ := r.store.Load(ctx, exampleInstanceID); !st.Entry.Stale {
			t.Fatal("a current update did not mark the entry stale")
		}
		step("instance.deployed.json", 0)
		if ids := claimAll(t, r.work); len(ids) != 1 || ids[0] != exampleInstanceID {
			t.Fatalf("a current deploy queued %v, want the instance", ids)
		}
	})
}

// TestIntakeRejectionLogsAreRateLimited: refused requests, which anyone can
// send, make one log line per interval; the next line says how many were
// left out, and the metric counts them.
func TestIntakeRejectionLogsAreRateLimited(t *testing.T) {
	b := redistest.Mini(t)
	r := newRig(t, b)
	var logs bytes.Buffer
	r.in.Log = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clock := intakeNow
	r.in.Now = func() time.Time { return clock }
	r.in.RejectLogEvery = 10 * time.Second
	body := withTimestamp(t, examples.Must(t, "instance.updated.json"), intakeNow)
	for i := 0; i < 50; i++ {
		if a := serve(t, r.in, request{sig: "-", body: body}); a.status != http.StatusUnauthorized {
			t.Fatalf("unsigned: %d", a.status)
		}
	}
	if n := strings.Count(logs.String(), `"msg":"webhook"`); n != 1 {
		t.Fatalf("50 refusals within the interval logged %d lines, want 1:\n%s", n, logs.String())
	}
	clock = clock.Add(10 * time.Second)
	serve(t, r.in, request{sig: "-", body: body})
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], `"suppressed":49`) {
		t.Fatalf("after the interval: %d lines, the last %s; want 2, the last saying 49 were suppressed", len(lines), lines[len(lines)-1])
	}
	if n := r.in.Stats().LogsSuppressed; n != 49 {
		t.Fatalf("LogsSuppressed = %d, want 49", n)
	}
	// Accepted deliveries are not held back (they are logged at debug).
	for i := 0; i < 3; i++ {
		b := withTimestamp(t, examples.Must(t, "webhook.test.json"), intakeNow.Add(time.Duration(i)*time.Second))
		if a := serve(t, r.in, request{event: "webhook.test", body: b}); a.status != http.StatusOK {
			t.Fatalf("webhook.test: %d %s", a.status, a.raw)
		}
	}
	if n := strings.Count(logs.String(), `"msg":"webhook"`); n != 5 {
		t.Fatalf("%d lines after three accepted deliveries, want 5", n)
	}
}

// TestIntakeDeliveriesLogAtDebug: at the default level (info) a delivered
// webhook writes no line, a refused one does, and both are counted.
func TestIntakeDeliveriesLogAtDebug(t *testing.T) {
	b := redistest.Mini(t)
	r := newRig(t, b)
	var logs bytes.Buffer
	r.in.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	var outcomes []string
	r.in.Observe = func(d server.Delivery) { outcomes = append(outcomes, d.Outcome) }
	body := withTimestamp(t, examples.Must(t, "webhook.test.json"), intakeNow)
	if a := serve(t, r.in, request{event: "webhook.test", body: body}); a.status != http.StatusOK {
		t.Fatalf("webhook.test: %d %s", a.status, a.raw)
	}
	if logs.Len() != 0 {
		t.Fatalf("a delivered webhook logged at info:\n%s", logs.String())
	}
	if a := serve(t, r.in, request{sig: "-", body: body}); a.status != http.StatusUnauthorized {
		t.Fatalf("unsigned: %d", a.status)
	}
	if n := strings.Count(logs.String(), `"level":"WARN","msg":"webhook"`); n != 1 {
		t.Fatalf("a refused webhook logged %d WARN lines, want 1:\n%s", n, logs.String())
	}
	if len(outcomes) != 2 || outcomes[0] != "ignored" || outcomes[1] != "rejected" {
		t.Fatalf("observed %v, want [ignored rejected]", outcomes)
	}
}
