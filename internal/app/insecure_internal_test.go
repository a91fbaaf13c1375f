package app

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer collects log output written from another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// TestInsecureWarningRepeats: the insecure-mode WARN comes back every
// interval until the daemon stops.
func TestInsecureWarningRepeats(t *testing.T) {
	var out syncBuffer
	a := &App{Log: slog.New(slog.NewTextHandler(&out, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.warnInsecure(ctx, time.Millisecond) }()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), "signatures are NOT checked") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the warning did not repeat:\n%s", out.String())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if !strings.Contains(out.String(), "level=WARN") {
		t.Fatalf("not at WARN:\n%s", out.String())
	}
}
