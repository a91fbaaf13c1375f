package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisLogEvery is how often one kind of go-redis line is logged: while
// Redis is down, go-redis reports every failed dial of every pool
// connection, several a second.
const redisLogEvery = 10 * time.Second

// RouteRedisLogs sends go-redis's own log lines — failed dials, dropped
// pub/sub connections, Sentinel and Cluster topology changes — to log, as
// records with component=go-redis, so that in JSON mode they are JSON like
// every other line. Each kind of line (one format string) is logged at most
// once per 10 seconds, with how many were held back since.
//
// go-redis has one logger for the whole process (redis.SetLogger), not one
// per client. So the App does not set it: tests and prismcache dev run
// several daemons in one process, and each would take the others' lines.
// The command that owns the process calls this once, before it opens a
// client.
func RouteRedisLogs(log *slog.Logger) {
	redis.SetLogger(newRedisLogger(log, time.Now))
}

// redisLogger adapts slog to go-redis's logging interface. It is safe for
// concurrent use.
type redisLogger struct {
	log *slog.Logger
	now func() time.Time

	mu   sync.Mutex
	seen map[string]*redisLogKind // by format string
}

type redisLogKind struct {
	next    time.Time
	skipped int
}

func newRedisLogger(log *slog.Logger, now func() time.Time) *redisLogger {
	return &redisLogger{log: log, now: now, seen: map[string]*redisLogKind{}}
}

// Printf logs one go-redis line.
func (l *redisLogger) Printf(ctx context.Context, format string, v ...any) {
	level := redisLogLevel(format)
	if ctx == nil {
		ctx = context.Background()
	}
	if !l.log.Enabled(ctx, level) {
		return
	}
	skipped, ok := l.allow(format)
	if !ok {
		return
	}
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	msg = strings.TrimPrefix(msg, "redis: ")
	attrs := []any{"component", "go-redis"}
	if skipped > 0 {
		attrs = append(attrs, "suppressed", skipped)
	}
	l.log.Log(ctx, level, msg, attrs...)
}

// allow reports whether a line of this format may be logged now, and how
// many of its kind were held back since the last one.
func (l *redisLogger) allow(format string) (int, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.seen[format]
	if k == nil {
		if len(l.seen) > 1000 {
			clear(l.seen) // formats are constants in go-redis; this is a bound, not a cache
		}
		k = &redisLogKind{}
		l.seen[format] = k
	}
	if now.Before(k.next) {
		k.skipped++
		return 0, false
	}
	k.next = now.Add(redisLogEvery)
	n := k.skipped
	k.skipped = 0
	return n, true
}

// redisLogLevel: go-redis logs without levels; a Sentinel picking a master
// is news, the rest (failed dials, bad connections, failed commands) is
// trouble.
func redisLogLevel(format string) slog.Level {
	if strings.HasPrefix(format, "sentinel: selected") || strings.HasPrefix(format, "sentinel: new master") || strings.HasPrefix(format, "sentinel: discovered") {
		return slog.LevelInfo
	}
	return slog.LevelWarn
}
