package app_test

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/prismaticsim"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/webhook"
)

// TestAdminListenSplitsTheRoutes: with --admin-listen, the public port
// serves only the webhook route and the health checks, and /metrics,
// /status and /v1 answer only on the admin listener.
func TestAdminListenSplitsTheRoutes(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		h := startE2E(t, b, e2eOptions{configure: func(c *config.Config) {
			c.AdminToken = adminToken
			c.AdminListen = "127.0.0.1:0"
		}})
		public, private := h.app.URL(), h.app.AdminURL()
		if public == private {
			t.Fatalf("one listener for both: %s", public)
		}
		id := h.sim.DemoInstanceID()
		for _, c := range []struct {
			path            string
			public, private int
		}{
			{"/healthz", 200, 200},
			{"/readyz", 200, 200},
			{"/metrics", 404, 200},
			{"/status", 404, 200},
			{"/v1/instances/" + id, 404, 200},
			{"/v1/customers/x/instances", 404, 200},
		} {
			if got, body := get(t, public+c.path, adminToken); got != c.public {
				t.Errorf("public %s: %d, want %d: %s", c.path, got, c.public, body)
			}
			if got, body := get(t, private+c.path, adminToken); got != c.private {
				t.Errorf("admin %s: %d, want %d: %s", c.path, got, c.private, body)
			}
		}
		// The webhook route is on the public port only: a signed test
		// webhook is taken there and is no route on the admin port.
		body := examplePayload(t, "webhook.test.json", func(m map[string]any) {
			m["timestamp"] = time.Now().UTC().Format(e2eTimeFormat)
		})
		if status, answer := sendWebhookTo(t, public, "webhook.test", body); status != http.StatusOK {
			t.Errorf("public webhook: %d %s", status, answer)
		}
		if status, answer := sendWebhookTo(t, private, "webhook.test", body); status != http.StatusNotFound {
			t.Errorf("admin webhook: %d, want 404: %s", status, answer)
		}
	})
}

// TestSharedListenerWarnsOffLoopback: with one listener, the admin routes
// are on it; start-up warns when it is not a loopback address, and only
// then.
func TestSharedListenerWarnsOffLoopback(t *testing.T) {
	b := redistest.Mini(t)
	sim, err := prismaticsim.New(prismaticsim.Options{Seed: 3, Customers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)
	for _, tc := range []struct {
		addr string
		warn bool
	}{
		{"0.0.0.0", true},
		{"127.0.0.1", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			var logs lockedBuffer
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := ln.Addr().(*net.TCPAddr).Port
			shown := &shownAddr{Listener: ln, addr: &net.TCPAddr{IP: net.ParseIP(tc.addr), Port: port}}
			startReplica(t, b, simSrv.URL, e2eOptions{
				listener: shown,
				log:      slog.New(slog.NewJSONHandler(&logs, nil)),
			})
			warned := strings.Contains(logs.String(), "--admin-listen")
			if warned != tc.warn {
				t.Errorf("listening on %s: warned %v, want %v:\n%s", tc.addr, warned, tc.warn, logs.String())
			}
			if got, _ := get(t, "http://"+ln.Addr().String()+"/metrics", ""); got != http.StatusOK {
				t.Errorf("/metrics on the shared listener: %d", got)
			}
		})
	}
}

// shownAddr is a listener on loopback that reports another address, to see
// what the daemon does on a public one without opening one.
type shownAddr struct {
	net.Listener
	addr net.Addr
}

func (s *shownAddr) Addr() net.Addr { return s.addr }

func sendWebhookTo(t *testing.T, base, typ string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/prismatic", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.EventHeader, typ)
	req.Header.Set(webhook.SignatureHeader, webhook.SignatureValue(secret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	return resp.StatusCode, out.String()
}
