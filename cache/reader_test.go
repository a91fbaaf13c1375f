package cache

import (
	"bufio"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/redistest"
)

func TestReaderServesHitsAndInvalidatesOnEveryChange(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newWriter(b.Client, b.Prefix)
		r := rtReader(t, b, b.Client, ReaderOptions{MaxAge: time.Hour})
		ctx := context.Background()

		for _, tc := range []struct {
			kind   Change
			change func(t *testing.T, id string)
			check  func(t *testing.T, e Entry, err error)
		}{
			{ChangeRefreshed,
				func(t *testing.T, id string) { rtSetValue(t, s, id, "5m") },
				func(t *testing.T, e Entry, err error) {
					if err != nil || rtValue(e) != "5m" {
						t.Fatalf("after refresh: value %q, err %v; want 5m", rtValue(e), err)
					}
				}},
			{ChangeStale,
				func(t *testing.T, id string) {
					rtPut(t, s, id, ChangeStale, func(e *Entry) {
						e.Stale, e.StaleSince, e.StaleReason = true, time.Now().UTC(), StaleUpdated
					})
				},
				func(t *testing.T, e Entry, err error) {
					if err != nil || !e.Stale || e.StaleReason != StaleUpdated || e.StaleSince.IsZero() {
						t.Fatalf("after stale: %+v, %v", e, err)
					}
				}},
			{ChangeEnabled,
				func(t *testing.T, id string) {
					rtPut(t, s, id, ChangeEnabled, func(e *Entry) { e.Enabled = false })
				},
				func(t *testing.T, e Entry, err error) {
					if err != nil || e.Enabled {
						t.Fatalf("after disable: enabled %v, err %v", e.Enabled, err)
					}
				}},
			{ChangeDeleted,
				func(t *testing.T, id string) { rtDelete(t, s, id) },
				func(t *testing.T, e Entry, err error) {
					if !errors.Is(err, ErrNotFound) {
						t.Fatalf("after delete: %+v, %v; want ErrNotFound", e, err)
					}
				}},
		} {
			t.Run(string(tc.kind), func(t *testing.T) {
				id := "inst-" + string(tc.kind)
				created := r.Stats().Invalidations
				rev := rtCreate(t, s, id, "acme-001", "Salesforce", "15m")
				rtWaitFor(t, "the create's invalidation", func() bool { return r.Stats().Invalidations > created })
				if e := rtMustGet(t, r, id); e.Rev != rev || rtValue(e) != "15m" {
					t.Fatalf("first get: rev %d value %q, want %d 15m", e.Rev, rtValue(e), rev)
				}
				hits := r.Stats().Hits
				if e := rtMustGet(t, r, id); e.Rev != rev {
					t.Fatalf("second get: rev %d, want %d", e.Rev, rev)
				}
				if got := r.Stats().Hits; got != hits+1 {
					t.Fatalf("second get was not a hit (hits %d → %d)", hits, got)
				}

				before := r.stats.invalidations[changeIndex(tc.kind)].Load()
				tc.change(t, id)
				rtWaitFor(t, "the "+string(tc.kind)+" invalidation", func() bool {
					return r.stats.invalidations[changeIndex(tc.kind)].Load() > before
				})
				// The event was processed: the very next Get must see the change.
				e, err := r.Get(ctx, id)
				tc.check(t, e, err)
			})
		}
	})
}

// rtKillPubSub kills the reader's pub/sub connection on a real Redis: only the
// connection of this test's client (found by its CLIENT SETNAME name), since
// other test packages share the server.
func rtKillPubSub(t *testing.T, b redistest.Backend, name string) {
	t.Helper()
	ctx := context.Background()
	list, err := b.Client.ClientList(ctx).Result()
	if err != nil {
		t.Fatalf("client list: %v", err)
	}
	killed := 0
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		f := map[string]string{}
		for _, kv := range strings.Fields(sc.Text()) {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = v
		}
		if f["name"] != name || f["sub"] == "0" || f["sub"] == "" {
			continue
		}
		if err := b.Client.Do(ctx, "CLIENT", "KILL", "ID", f["id"]).Err(); err != nil {
			t.Fatalf("client kill id %s: %v", f["id"], err)
		}
		killed++
	}
	if killed != 1 {
		t.Fatalf("killed %d pub/sub connections named %s, want 1", killed, name)
	}
}

func TestReaderFlushesWhenSubscriptionDrops(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newWriter(b.Client, b.Prefix)
		rdb, name := rtClient(t, b, nil)
		var flushed atomic.Int32
		r := rtReader(t, b, rdb, ReaderOptions{MaxAge: time.Hour, OnInvalidate: func(id string) {
			if id == "" {
				flushed.Add(1)
			}
		}})
		id := "inst1"
		rtCreate(t, s, id, "acme-001", "Salesforce", "15m")
		rtWaitFor(t, "the create's invalidation", func() bool { return r.Stats().Invalidations > 0 })
		rtMustGet(t, r, id)
		if e := rtMustGet(t, r, id); rtValue(e) != "15m" || r.Stats().Hits != 1 {
			t.Fatalf("before the loss: value %q, hits %d; want 15m from the tier", rtValue(e), r.Stats().Hits)
		}
		before := r.Stats().Flushes

		// Change the entry while the reader cannot hear it: a write that
		// publishes nothing stands for a message lost with the connection.
		if b.Real() {
			rtKillPubSub(t, b, name)
			if err := b.Client.HSet(ctx, s.Keys().Instance(id), FieldDoc, rtDocJSON(t, id, "1h")).Err(); err != nil {
				t.Fatal(err)
			}
		} else {
			b.Mini.Close()
			b.Mini.HSet(s.Keys().Instance(id), FieldDoc, rtDocJSON(t, id, "1h"))
			if err := b.Mini.Restart(); err != nil {
				t.Fatalf("restart miniredis: %v", err)
			}
		}

		rtWaitFor(t, "a flush on the loss and one on the restore", func() bool {
			st := r.Stats()
			return st.Subscribed && st.Flushes >= before+2
		})
		if n := flushed.Load(); n < 2 {
			t.Errorf("OnInvalidate saw %d flushes, want ≥ 2", n)
		}
		if e := rtMustGet(t, r, id); rtValue(e) != "1h" {
			t.Fatalf("after the subscription came back: value %q, want 1h (the tier kept a value changed while disconnected)", rtValue(e))
		}
	})
}

func TestReaderNeverCachesAFillOvertakenByAnInvalidation(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		for _, overtake := range []string{"event", "flush"} {
			t.Run(overtake, func(t *testing.T) {
				ctx := context.Background()
				s := newWriter(b.Client, b.Prefix)
				id := "race-" + overtake
				read := make(chan struct{})
				release := make(chan struct{})
				var releaseOnce sync.Once
				t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
				var paused atomic.Bool
				r := rtReader(t, b, b.Client, ReaderOptions{MaxAge: time.Hour, afterRead: func(ids []string) {
					// Pause the first fill of id between its Redis read and its insert.
					if ids[0] == id && paused.CompareAndSwap(false, true) {
						close(read)
						<-release
					}
				}})
				rtCreate(t, s, id, "acme-001", "Salesforce", "old")
				rtWaitFor(t, "the create's invalidation", func() bool { return r.Stats().Invalidations > 0 })

				type result struct {
					e   Entry
					err error
				}
				first := make(chan result, 1)
				go func() {
					e, err := r.Get(ctx, id)
					first <- result{e, err}
				}()
				<-read // the fill has read "old" and waits to insert it

				inv, fl := r.Stats().Invalidations, r.Stats().Flushes
				switch overtake {
				case "event":
					rtSetValue(t, s, id, "new")
					rtWaitFor(t, "the invalidation", func() bool { return r.Stats().Invalidations > inv })
					// A Get that starts now must not join the paused read (if it
					// did, it would wait for it: the timeout turns that into a
					// failure instead of a hang).
					gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					e, err := r.Get(gctx, id)
					cancel()
					if err != nil || rtValue(e) != "new" {
						t.Fatalf("a Get after the invalidation got %q, %v; want new from a read of its own", rtValue(e), err)
					}
				case "flush":
					// A change the reader cannot name: it flushes everything.
					if err := b.Client.HSet(ctx, s.Keys().Instance(id), FieldDoc, rtDocJSON(t, id, "new")).Err(); err != nil {
						t.Fatal(err)
					}
					if err := b.Client.Publish(ctx, s.Keys().Events(), "not json").Err(); err != nil {
						t.Fatal(err)
					}
					rtWaitFor(t, "the flush", func() bool { return r.Stats().Flushes > fl })
				}
				releaseOnce.Do(func() { close(release) })
				res := <-first
				if res.err != nil || rtValue(res.e) != "old" {
					t.Fatalf("the paused Get returned %q, %v; want the old value it read", rtValue(res.e), res.err)
				}
				// The paused fill must not have put "old" in the tier.
				for range 3 {
					if e := rtMustGet(t, r, id); rtValue(e) != "new" {
						t.Fatalf("after the overtaken fill: %q, want new", rtValue(e))
					}
				}
			})
		}
	})
}

func TestReaderRemembersNotFoundBriefly(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		s := newWriter(b.Client, b.Prefix)
		var now atomic.Int64
		r := rtReader(t, b, b.Client, ReaderOptions{NegativeTTL: time.Second, MaxAge: time.Hour,
			clock: func() time.Duration { return time.Duration(now.Load()) }})

		// A miss is remembered: a write that publishes nothing is not seen...
		if _, err := r.Get(ctx, "ghost"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get ghost: %v, want ErrNotFound", err)
		}
		if err := b.Client.HSet(ctx, s.Keys().Instance("ghost"), FieldDoc, rtDocJSON(t, "ghost", "15m"), FieldRev, 1).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Get(ctx, "ghost"); !errors.Is(err, ErrNotFound) || r.Stats().NegativeHits != 1 {
			t.Fatalf("second get: %v, negative hits %d; want a remembered ErrNotFound", err, r.Stats().NegativeHits)
		}
		// ...until NegativeTTL has passed.
		now.Add(int64(time.Second))
		if e := rtMustGet(t, r, "ghost"); rtValue(e) != "15m" {
			t.Fatalf("after the negative TTL: %q", rtValue(e))
		}

		// An event for the id ends it at once.
		if _, err := r.Get(ctx, "later"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get later: %v, want ErrNotFound", err)
		}
		inv := r.Stats().Invalidations
		rtCreate(t, s, "later", "acme-001", "Salesforce", "30m")
		rtWaitFor(t, "the create's invalidation", func() bool { return r.Stats().Invalidations > inv })
		if e := rtMustGet(t, r, "later"); rtValue(e) != "30m" {
			t.Fatalf("after the create: %q, want 30m", rtValue(e))
		}

		// Entries expire at MaxAge even without an event.
		hits := r.Stats().Hits
		rtMustGet(t, r, "later")
		if r.Stats().Hits != hits+1 {
			t.Fatal("entry not served from the tier")
		}
		now.Add(int64(time.Hour))
		misses := r.Stats().Misses
		rtMustGet(t, r, "later")
		if r.Stats().Misses != misses+1 {
			t.Fatal("an entry older than MaxAge was served from the tier")
		}
	})
}

func TestReaderWhenRedisIsDown(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		for _, policy := range []RedisDownPolicy{FailWhenDown, ServeLastKnown} {
			t.Run(policy.String(), func(t *testing.T) {
				ctx := context.Background()
				s := newWriter(b.Client, b.Prefix)
				id := "down-" + policy.String()
				rtCreate(t, s, id, "acme-001", "Salesforce", "15m")
				var sw rtNet
				rdb, _ := rtClient(t, b, &sw)
				r := rtReader(t, b, rdb, ReaderOptions{OnRedisDown: policy, HealthCheckInterval: 50 * time.Millisecond})
				rtMustGet(t, r, id)

				sw.setDown(true)
				rtWaitFor(t, "the reader to notice", func() bool { return !r.Stats().Subscribed })
				// The daemon keeps writing; this reader cannot hear it.
				rtSetValue(t, s, id, "1h")

				e, err := r.Get(ctx, id)
				switch policy {
				case FailWhenDown:
					if !errors.Is(err, ErrUnavailable) || e.Doc != nil {
						t.Fatalf("get while down: %+v, %v; want ErrUnavailable and no entry", e, err)
					}
				case ServeLastKnown:
					if !errors.Is(err, ErrDegraded) || rtValue(e) != "15m" {
						t.Fatalf("get while down: %q, %v; want the last known 15m with ErrDegraded", rtValue(e), err)
					}
					if r.Stats().Degraded != 1 {
						t.Errorf("degraded = %d, want 1", r.Stats().Degraded)
					}
					if _, err := r.Get(ctx, "never-seen"); !errors.Is(err, ErrUnavailable) {
						t.Fatalf("get of an id never read while down: %v, want ErrUnavailable", err)
					}
				}
				if _, err := r.ByCustomer(ctx, "acme-001"); !errors.Is(err, ErrUnavailable) {
					t.Fatalf("lookup while down: %v, want ErrUnavailable", err)
				}
				if r.Stats().RedisErrors == 0 {
					t.Error("no Redis errors counted")
				}

				sw.setDown(false)
				rtWaitFor(t, "the subscription to come back", func() bool { return r.Stats().Subscribed })
				if e, err := r.Get(ctx, id); err != nil || rtValue(e) != "1h" {
					t.Fatalf("get after Redis came back: %q, %v; want 1h", rtValue(e), err)
				}
			})
		}
	})
}

func TestReaderSharesOneReadAmongConcurrentMisses(t *testing.T) {
	b := redistest.Mini(t)
	s := newWriter(b.Client, b.Prefix)
	rtCreate(t, s, "inst1", "acme-001", "Salesforce", "15m")
	var reads atomic.Int32
	release := make(chan struct{})
	r := rtReader(t, b, b.Client, ReaderOptions{afterRead: func([]string) {
		reads.Add(1)
		<-release
	}})
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := r.Get(context.Background(), "inst1")
			errs <- err
		}()
	}
	rtWaitFor(t, "every Get to wait on the read", func() bool { return r.Stats().Misses == n })
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := reads.Load(); got != 1 {
		t.Fatalf("%d Redis reads for %d concurrent misses, want 1", got, n)
	}
}

func TestReaderStatsAndClose(t *testing.T) {
	b := redistest.Mini(t)
	s := newWriter(b.Client, b.Prefix)
	rtCreate(t, s, "inst1", "acme-001", "Salesforce", "15m")
	r := rtReader(t, b, b.Client, ReaderOptions{})
	rtMustGet(t, r, "inst1")
	rtMustGet(t, r, "inst1")
	st := r.Stats()
	if st.Hits != 1 || st.NegativeHits != 0 || st.Misses != 1 || !st.Subscribed || st.Degraded != 0 {
		t.Fatalf("stats %+v: want one hit, one miss, subscribed", st)
	}
	for name, m := range map[string]map[string]uint64{
		"invalidations": st.InvalidationsByChange, "flushes": st.FlushesByReason, "redis errors": st.RedisErrorsByOp,
	} {
		if len(m) == 0 {
			t.Errorf("%s: no breakdown", name)
		}
	}
	if _, ok := st.FlushesByReason["disconnected"]; !ok {
		t.Errorf("flushes by reason %v: no disconnected", st.FlushesByReason)
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(context.Background(), "inst1"); !errors.Is(err, ErrReaderClosed) {
		t.Fatalf("get after close: %v, want ErrReaderClosed", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestReaderEvictsLeastRecentlyUsed(t *testing.T) {
	b := redistest.Mini(t)
	s := newWriter(b.Client, b.Prefix)
	for _, id := range []string{"a", "b", "c"} {
		rtCreate(t, s, id, "acme-001", "Salesforce", "15m")
	}
	var now atomic.Int64
	r := rtReader(t, b, b.Client, ReaderOptions{Size: 2, clock: func() time.Duration { return time.Duration(now.Load()) }})
	rtMustGet(t, r, "a")
	rtMustGet(t, r, "b")
	now.Add(int64(time.Millisecond)) // a hit moves an item to the front once per tick
	rtMustGet(t, r, "a")
	rtMustGet(t, r, "c") // evicts b, the least recently used
	misses := r.Stats().Misses
	rtMustGet(t, r, "a")
	rtMustGet(t, r, "c")
	if got := r.Stats().Misses; got != misses {
		t.Fatalf("a or c was evicted (%d misses)", got-misses)
	}
	rtMustGet(t, r, "b")
	if got := r.Stats().Misses; got != misses+1 {
		t.Fatal("b was not evicted")
	}
	if n := r.tier.Len(); n != 2 {
		t.Fatalf("tier holds %d items, want 2", n)
	}
	count := 0
	r.index.Range(func(any, any) bool { count++; return true })
	if count != 2 {
		t.Fatalf("lock-free index holds %d items, want 2 (out of step with the LRU)", count)
	}
}
