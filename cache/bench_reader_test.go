package cache

import (
	"context"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/redistest"
)

// readerBenchBackend is the real Redis in REDIS_URL when it is set, else an
// in-process miniredis; the names of benchmarks that talk to Redis end with
// the backend's name.
func readerBenchBackend(b *testing.B) redistest.Backend {
	b.Helper()
	if os.Getenv("REDIS_URL") != "" {
		return redistest.Real(b)
	}
	return redistest.Mini(b)
}

// readerBenchSetup writes one entry and starts a Reader over a client of its own
// (an app and the daemon do not share clients).
func readerBenchSetup(b *testing.B) (redistest.Backend, *writer, *Reader) {
	b.Helper()
	be := readerBenchBackend(b)
	s := newWriter(be.Client, be.Prefix)
	rtCreate(b, s, "bench", "acme-001", "Salesforce", "15m")
	rdb, _ := rtClient(b, be, nil)
	r := rtReader(b, be, rdb, ReaderOptions{MaxAge: time.Hour})
	b.Logf("backend: %s (%s)", be.Name, be.URL)
	return be, s, r
}

// BenchmarkReaderHit is Get answered by the in-process tier.
func BenchmarkReaderHit(b *testing.B) {
	_, _, r := readerBenchSetup(b)
	ctx := context.Background()
	rtMustGet(b, r, "bench")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Get(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	if st := r.Stats(); st.Misses != 1 {
		b.Fatalf("%d misses, want only the first read", st.Misses)
	}
}

// BenchmarkReaderHitParallel is BenchmarkReaderHit from GOMAXPROCS goroutines.
func BenchmarkReaderHitParallel(b *testing.B) {
	_, _, r := readerBenchSetup(b)
	ctx := context.Background()
	rtMustGet(b, r, "bench")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Get(ctx, "bench"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReaderMiss is Get served from Redis: each round first drops the
// id from the tier (as an event would), so it measures HGETALL, decoding the
// entry and inserting it.
func BenchmarkReaderMiss(b *testing.B) {
	be, _, r := readerBenchSetup(b)
	b.Run(be.Name, func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			r.invalidate("bench", ChangeRefreshed)
			if _, err := r.Get(ctx, "bench"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHGetAll is plain go-redis HGETALL of the same key, for comparison,
// without and with decoding the entry.
func BenchmarkHGetAll(b *testing.B) {
	be, s, _ := readerBenchSetup(b)
	rdb, _ := rtClient(b, be, nil)
	key := s.Keys().Instance("bench")
	ctx := context.Background()
	b.Run(be.Name, func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rdb.HGetAll(ctx, key).Result(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(be.Name+"+parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h, err := rdb.HGetAll(ctx, key).Result()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ParseEntry(h); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkInvalidation is the time from the daemon's write (Store.Apply,
// which publishes the change) to a Reader's Get returning the new value,
// over b.N rounds, reported as p50 and p99 in µs. Each round starts with the
// old value in the Reader's tier; ns/op also counts the untimed set-up.
func BenchmarkInvalidation(b *testing.B) {
	be, s, r := readerBenchSetup(b)
	b.Run(be.Name, func(b *testing.B) {
		ctx := context.Background()
		var lat []time.Duration
		values := [2]string{"a", "b"}
		for i := 0; b.Loop(); i++ {
			st, err := s.Load(ctx, "bench")
			if err != nil {
				b.Fatal(err)
			}
			rtMustGet(b, r, "bench") // the old value is in the tier
			next := st.Entry
			next.Doc = rtDoc("bench", "acme-001", "Salesforce", values[i%2])

			start := time.Now()
			rev, err := s.Apply(ctx, "bench", st.Entry, writeOp{Kind: ChangeRefreshed, Entry: next})
			if err != nil {
				b.Fatal(err)
			}
			for {
				e, err := r.Get(ctx, "bench")
				if err != nil {
					b.Fatal(err)
				}
				if e.Rev == rev {
					break
				}
				if time.Since(start) > 10*time.Second {
					b.Fatal("the reader never saw the write")
				}
				runtime.Gosched()
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		pct := func(p float64) float64 {
			return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3
		}
		b.ReportMetric(pct(0.50), "p50-µs")
		b.ReportMetric(pct(0.99), "p99-µs")
	})
}
