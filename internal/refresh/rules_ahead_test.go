package refresh_test

import (
	"testing"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/refresh"
)

// TestDecideWriteIgnoresEventTimesAheadOfTheClock: an entry whose update or
// toggle time is ahead of the clock (a year-9999 event an older daemon
// accepted) takes what the fetch found — fresh, and the fetched enabled
// flag — and loses the future time, so later events apply again.
func TestDecideWriteIgnoresEventTimesAheadOfTheClock(t *testing.T) {
	year9999 := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	fetched := doc(4, deployAt.Add(30*time.Minute), false, "5m", "ACTIVE") // enabled, deployed
	for _, future := range []time.Time{year9999, now.AddDate(1, 0, 0), now.Add(time.Millisecond)} {
		st := entryWith(doc(3, deployAt, false, "15m", "ACTIVE"), func(e *cache.Entry) {
			e.Stale, e.StaleReason, e.StaleSince, e.UpdatedEventAt = true, cache.StaleUpdated, deployAt, future
			e.Enabled, e.EnabledEventAt = false, future
			e.Doc.Enabled = false
		})
		m, skip := refresh.DecideWrite(st, fetched, started, now)
		if m == nil {
			t.Fatalf("%s: wrote nothing: %s", future, skip)
		}
		e := m.Entry
		if e.Stale || !e.Enabled || !e.Doc.Enabled {
			t.Errorf("%s: stale %v (%s), enabled %v: an event time ahead of the clock decided", future, e.Stale, e.StaleReason, e.Enabled)
		}
		if e.UpdatedEventAt.After(now) || e.EnabledEventAt.After(now) {
			t.Errorf("%s: kept event times %s / %s ahead of the clock", future, e.UpdatedEventAt, e.EnabledEventAt)
		}
	}
	// An update and a disable that arrived during the fetch, dated before
	// now, still decide as before.
	during := started.Add(time.Millisecond)
	st := entryWith(doc(4, deployAt.Add(30*time.Minute), false, "5m", "ACTIVE"), func(e *cache.Entry) {
		e.Stale, e.StaleReason, e.StaleSince, e.UpdatedEventAt = true, cache.StaleUpdated, during, during
		e.Enabled, e.EnabledEventAt = false, during
	})
	m, _ := refresh.DecideWrite(st, fetched, started, now)
	if m == nil || !m.Entry.Stale || m.Entry.Enabled {
		t.Fatalf("events during the fetch: %+v, want stale and disabled kept", m)
	}
}
