package cache

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkWatchEvent is the time from the daemon's write (Apply, which
// publishes the change with its changed_keys) to a watch's event carrying
// it, over b.N rounds, reported as p50 and p99 in µs.
func BenchmarkWatchEvent(b *testing.B) {
	be, s, r := readerBenchSetup(b)
	b.Run(be.Name, func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		events, err := r.Watch(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		wtKind(b, wtNext(b, events), WatchInitial)
		var lat []time.Duration
		values := [2]string{"a", "b"}
		for i := 0; b.Loop(); i++ {
			st, err := s.Load(ctx, "bench")
			if err != nil {
				b.Fatal(err)
			}
			next := st.Entry
			next.Doc = rtDoc("bench", "acme-001", "Salesforce", values[i%2])

			start := time.Now()
			rev, err := s.Apply(ctx, "bench", st.Entry, writeOp{Kind: ChangeRefreshed, Entry: next})
			if err != nil {
				b.Fatal(err)
			}
			ev := wtNext(b, events)
			lat = append(lat, time.Since(start))
			if ev.Entry.Rev != rev || len(ev.Keys) != 1 || !ev.KeysFromFeed {
				b.Fatalf("event at rev %d with keys %q (from feed %v), want rev %d and one key from the feed", ev.Entry.Rev, wtKeys(ev), ev.KeysFromFeed, rev)
			}
		}
		slices.Sort(lat)
		pct := func(p float64) float64 {
			return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3
		}
		b.ReportMetric(pct(0.50), "p50-µs")
		b.ReportMetric(pct(0.99), "p99-µs")
	})
}
