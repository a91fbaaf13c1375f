package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/webhook"
)

// TestTriggerSendsWhatTheDaemonAccepts sends each event family through
// `sim trigger` to a receiver that checks the signature and parses the body
// with the daemon's own parser.
func TestTriggerSendsWhatTheDaemonAccepts(t *testing.T) {
	const secret = "trigger-secret"
	v := webhook.NewVerifier(secret)
	var got []webhook.Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/webhooks/prismatic" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "wrong path or type", http.StatusBadRequest)
			return
		}
		if err := v.Verify(body, r.Header.Get(webhook.SignatureHeader)); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		ev, err := webhook.Parse(r.Header.Get(webhook.EventHeader), body, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got = append(got, ev)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "accepted"})
	}))
	defer srv.Close()

	const inst = "SW5zdGFuY2U6ZWM5YzViM2EtZjNhNy00MDliLTllM2QtODA3MDAxNDVlNWU0"
	for _, args := range [][]string{
		{"instance.deployed", "--instance", inst},
		{"oauth2.token_refresh_failed", "--connection", "Q3VzdG9tZXJDb25maWdWYXJpYWJsZTo3YzZiNWE0OS0zODI3LTQxNjAtOWY4ZS03ZDZjNWI0YTM5Mjg="},
		{"customer.deleted", "--customer-external-id", "acme-001"},
		{"webhook.test"},
	} {
		var out, errOut bytes.Buffer
		full := append([]string{"sim", "trigger", "--url", srv.URL, "--secret", secret}, args...)
		if rc := run(context.Background(), full, &out, &errOut); rc != 0 {
			t.Fatalf("%v: exit %d: %s%s", args, rc, out.String(), errOut.String())
		}
		if !strings.Contains(out.String(), "HTTP 200") {
			t.Fatalf("%v: %s", args, out.String())
		}
	}
	if len(got) != 4 || got[0].InstanceID != inst || got[1].ConnectionID == "" || got[2].CustomerExternalID != "acme-001" || got[3].Type != "webhook.test" {
		t.Fatalf("received %+v", got)
	}
	// A wrong secret is refused and the command says so.
	var out, errOut bytes.Buffer
	if rc := run(context.Background(), []string{"sim", "trigger", "--url", srv.URL, "--secret", "wrong", "instance.updated"}, &out, &errOut); rc != 1 {
		t.Fatalf("wrong secret: exit %d", rc)
	}
}
