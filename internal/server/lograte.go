package server

import (
	"sync"
	"time"
)

// logLimiter lets one log line through per interval and counts the ones
// it holds back, so that requests anyone can send cannot flood the log.
// It is safe for concurrent use.
type logLimiter struct {
	every time.Duration

	mu      sync.Mutex
	next    time.Time
	skipped uint64 // since the last line let through
	total   uint64
}

// allow reports whether a line may be logged at now and, if so, how many
// were held back since the last one.
func (l *logLimiter) allow(now time.Time) (bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.skipped++
		l.total++
		return false, 0
	}
	l.next = now.Add(l.every)
	n := l.skipped
	l.skipped = 0
	return true, n
}

// suppressedTotal counts every line held back.
func (l *logLimiter) suppressedTotal() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}
