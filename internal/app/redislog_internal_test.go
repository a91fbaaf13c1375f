package app

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRedisLoggerHoldsBackRepeats: go-redis's lines become slog records;
// one of a kind per interval gets through, the next says how many were
// held back, and a Sentinel picking a master is news, not trouble.
func TestRedisLoggerHoldsBackRepeats(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	l := newRedisLogger(slog.New(slog.NewJSONHandler(&buf, nil)), func() time.Time { return now })
	ctx := context.Background()
	dial := "redis: connection pool: failed to dial after %d attempts: %v"
	for i := 0; i < 5; i++ {
		l.Printf(ctx, dial, 5, "connection refused")
	}
	l.Printf(ctx, "sentinel: selected addr=%s masterAddr=%s", "s1:26379", "m1:6379")
	now = now.Add(redisLogEvery)
	l.Printf(ctx, dial, 5, "connection refused")

	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		recs = append(recs, r)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3:\n%s", len(recs), buf.String())
	}
	if recs[0]["msg"] != "connection pool: failed to dial after 5 attempts: connection refused" || recs[0]["level"] != "WARN" ||
		recs[0]["component"] != "go-redis" || recs[0]["suppressed"] != nil {
		t.Errorf("first: %v", recs[0])
	}
	if recs[1]["level"] != "INFO" || !strings.HasPrefix(recs[1]["msg"].(string), "sentinel: selected") {
		t.Errorf("sentinel: %v", recs[1])
	}
	if recs[2]["suppressed"] != float64(4) {
		t.Errorf("after the interval: %v, want suppressed 4", recs[2])
	}
}
