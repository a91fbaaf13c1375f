package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/prismcache/prismcache/internal/prismaticsim"
	"github.com/prismcache/prismcache/internal/testutil"
)

// TestJSONLogsStayJSONWithRedisStopped runs the daemon with --log-format
// json, stops its Redis, and checks that every line it wrote parses as
// JSON — go-redis's own complaints about failed dials included — and that
// durations are seconds.
func TestJSONLogsStayJSONWithRedisStopped(t *testing.T) {
	sim, err := prismaticsim.New(prismaticsim.Options{Seed: 5, Customers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)
	mr := miniredis.RunT(t)

	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--log-format", "json", "--log-level", "debug",
			"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
			"--redis-url", "redis://" + mr.Addr() + "/0", "--prismatic-url", simSrv.URL,
			"--prismatic-token", prismaticsim.DefaultAccessToken, "--webhook-secret", "json-logs-secret",
			"--event-action", "instance.updatd=refetch",
		}, io.Discard, logs)
	}()
	testutil.Eventually(t, "the daemon to start", func() bool {
		select {
		case rc := <-done:
			t.Fatalf("serve exited %d:\n%s", rc, logs.String())
		default:
		}
		return strings.Contains(logs.String(), "prismcache started")
	})
	var started struct{ Listen string }
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "prismcache started") {
			_ = json.Unmarshal([]byte(l), &started)
		}
	}

	mr.Close()
	// A webhook while Redis is down is refused with 503 and logged.
	resp, err := http.Post("http://"+started.Listen+"/webhooks/prismatic", "application/json", strings.NewReader(`{}`))
	if err == nil {
		resp.Body.Close()
	}
	testutil.Eventually(t, "go-redis to report the failed dials", func() bool { return strings.Contains(logs.String(), `"component":"go-redis"`) })
	cancel()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the daemon did not stop")
	}

	lines := strings.Split(strings.TrimRight(logs.String(), "\n"), "\n")
	if len(lines) < 5 {
		t.Fatalf("only %d lines:\n%s", len(lines), logs.String())
	}
	var goRedis, deadline, unknownEvent int
	for i, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %q", i+1, l)
		}
		// The misspelt event type is named at start-up, with the known ones.
		if rec["type"] == "instance.updatd" && rec["level"] == "WARN" && strings.Contains(fmt.Sprint(rec["known"]), "instance.updated") {
			unknownEvent++
		}
		if rec["component"] == "go-redis" {
			goRedis++
			if rec["level"] != slog.LevelWarn.String() || !strings.Contains(rec["msg"].(string), "dial") {
				t.Errorf("go-redis line: %s", l)
			}
		}
		for _, key := range []string{"took", "deadline"} {
			v, ok := rec[key]
			if !ok {
				continue
			}
			secs, isNumber := v.(float64)
			if !isNumber || secs < 0 || secs > 600 {
				t.Errorf("line %d: %s is %v, want seconds: %s", i+1, key, v, l)
			}
			if key == "deadline" {
				deadline++
			}
		}
	}
	if unknownEvent != 1 {
		t.Errorf("%d warnings naming the unknown event type instance.updatd", unknownEvent)
	}
	if goRedis == 0 || deadline == 0 {
		t.Errorf("%d go-redis lines, %d with the shutdown deadline:\n%s", goRedis, deadline, logs.String())
	}
	// go-redis reports each failed dial; the log holds back repeats.
	if goRedis > 20 {
		t.Errorf("%d go-redis lines in a few seconds: repeats are not held back", goRedis)
	}
}

// TestJSONDurationsAreSeconds: a duration attribute is a number of seconds
// in JSON and Go's notation in text.
func TestJSONDurationsAreSeconds(t *testing.T) {
	var j, txt bytes.Buffer
	newLogger(&j, "info", "json").Info("x", "took", 1500*time.Millisecond)
	newLogger(&txt, "info", "text").Info("x", "took", 1500*time.Millisecond)
	if !strings.Contains(j.String(), `"took":1.5`) || !strings.Contains(txt.String(), "took=1.5s") {
		t.Fatalf("json %s text %s", j.String(), txt.String())
	}
}
