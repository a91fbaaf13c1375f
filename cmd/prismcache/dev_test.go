package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to write from one goroutine and read
// from another.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDevGuideCommandsWork runs `prismcache dev` as a new user would, then
// does exactly what the guide it prints says — change, get, deploy, get —
// and checks each step shows what the guide promises.
func TestDevGuideCommandsWork(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--listen", "127.0.0.1:0", "--redis-listen", "127.0.0.1:0", "--sim-listen", "127.0.0.1:0"}, out, io.Discard)
	}()
	defer func() {
		cancel()
		if rc := <-done; rc != 0 {
			t.Errorf("prismcache dev exited %d", rc)
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "Live events:") {
		if time.Now().After(deadline) {
			t.Fatalf("no guide within 30s; output so far:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	guide := out.String()

	change := regexp.MustCompile(`curl -s -X PUT (\S+) -d '(\{[^']*\})'`).FindStringSubmatch(guide)
	deploy := regexp.MustCompile(`curl -s -X POST (\S+/deploy)`).FindStringSubmatch(guide)
	get := regexp.MustCompile(`get --redis-url (\S+) (\S+)`).FindStringSubmatch(guide)
	if change == nil || deploy == nil || get == nil {
		t.Fatalf("the guide lacks the change, deploy or get command:\n%s", guide)
	}
	var newValue struct{ Value string }
	if err := json.Unmarshal([]byte(change[2]), &newValue); err != nil {
		t.Fatal(err)
	}
	key := change[1][strings.LastIndex(change[1], "/")+1:]

	getEntry := func() map[string]any {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if rc := run(context.Background(), []string{"get", "--redis-url", get[1], get[2]}, &stdout, &stderr); rc != 0 {
			t.Fatalf("prismcache get exited %d: %s", rc, stderr.String())
		}
		var e map[string]any
		if err := json.Unmarshal(stdout.Bytes(), &e); err != nil {
			t.Fatalf("get printed no JSON: %v\n%s", err, stdout.String())
		}
		return e
	}
	valueOf := func(e map[string]any) any {
		return e["doc"].(map[string]any)["config"].(map[string]any)[key].(map[string]any)["value"]
	}
	before := getEntry()

	do(t, http.MethodPut, change[1], change[2])
	waitFor(t, "the entry to turn stale", func() bool { return getEntry()["stale"] == true })
	if e := getEntry(); valueOf(e) != valueOf(before) {
		t.Fatalf("after the change the entry holds %v, want the old %v until a deploy", valueOf(e), valueOf(before))
	}

	do(t, http.MethodPost, deploy[1], "")
	waitFor(t, "the deployed value", func() bool { e := getEntry(); return valueOf(e) == newValue.Value && e["stale"] == false })
	if e := getEntry(); e["rev"].(float64) <= before["rev"].(float64) {
		t.Fatalf("rev %v did not grow past %v", e["rev"], before["rev"])
	}
	// The worker prints its line after its write is in Redis (and
	// announced): wait for it rather than race it.
	waitFor(t, "the live lines for the deploy", func() bool {
		return strings.Contains(out.String(), "instance.deployed") && strings.Contains(out.String(), "refreshed")
	})
}

func do(t *testing.T, method, url, body string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFlagsAfterPositionalArguments(t *testing.T) {
	var out, errOut bytes.Buffer
	rc := run(context.Background(), []string{"sim", "trigger", "instance.deployed", "--print", "--secret", "s", "--instance", "SW5zdGFuY2U6MQ=="}, &out, &errOut)
	if rc != 0 {
		t.Fatalf("exit %d: %s", rc, errOut.String())
	}
	if !strings.Contains(out.String(), `"id": "SW5zdGFuY2U6MQ=="`) || !strings.Contains(out.String(), "X-Webhook-Signature: sha256=") {
		t.Fatalf("trigger --print output:\n%s", out.String())
	}
}

func TestUnknownCommandAndHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if rc := run(context.Background(), []string{"frobnicate"}, &out, &errOut); rc != 2 || !strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: exit %d, %q", rc, errOut.String())
	}
	errOut.Reset()
	if rc := run(context.Background(), []string{"help"}, &out, &errOut); rc != 0 || !strings.Contains(errOut.String(), "check-config") {
		t.Fatalf("help: exit %d, %q", rc, errOut.String())
	}
}
