package cacheprom_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/cache/cacheprom"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/store"
)

func TestCollectorExportsTheReadersCounters(t *testing.T) {
	b := redistest.Mini(t)
	ctx := context.Background()
	s := store.New(b.Client, store.Options{Prefix: b.Prefix})
	e := cache.Entry{Doc: &cache.Doc{ID: "inst1", DeployedVersion: 1}, DeployedVersion: 1}
	if _, err := s.Apply(ctx, "inst1", cache.Entry{}, store.Mutation{Kind: cache.ChangeRefreshed, Entry: e}); err != nil {
		t.Fatal(err)
	}
	r, err := cache.NewReader(b.Client, cache.ReaderOptions{Prefix: b.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !r.Stats().Subscribed {
		if time.Now().After(deadline) {
			t.Fatal("the reader never subscribed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for range 2 {
		if _, err := r.Get(ctx, "inst1"); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(cacheprom.New(r))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetName() + "=" + l.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				got[name] = c.GetValue()
			} else {
				got[name] = m.GetGauge().GetValue()
			}
		}
	}
	for name, want := range map[string]float64{
		"prismcache_reader_hits_total,result=entry":              1,
		"prismcache_reader_hits_total,result=not_found":          0,
		"prismcache_reader_misses_total":                         1,
		"prismcache_reader_invalidations_total,change=refreshed": 0,
		"prismcache_reader_flushes_total,reason=disconnected":    0,
		"prismcache_reader_redis_errors_total,op=get":            0,
		"prismcache_reader_degraded_total":                       0,
		"prismcache_reader_subscribed":                           1,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
}
