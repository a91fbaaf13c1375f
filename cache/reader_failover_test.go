package cache

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/internal/redistest"
)

// waitFailover polls cond until it holds, failing the test after 30s: a
// failover takes seconds, and CI machines are slow.
func waitFailover(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 30s waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// mustServeFromTier waits until two Gets of id in a row succeed and the
// second is answered by the tier.
func mustServeFromTier(t *testing.T, r *Reader, id, want string) {
	t.Helper()
	ctx := context.Background()
	waitFailover(t, "the reader to serve "+id+" from its tier", func() bool {
		e1, err1 := r.Get(ctx, id)
		hits := r.Stats().Hits
		e2, err2 := r.Get(ctx, id)
		return err1 == nil && err2 == nil && rtValue(e1) == want && rtValue(e2) == want && r.Stats().Hits > hits
	})
}

func TestReaderSentinelOptionsNeedTheMaster(t *testing.T) {
	b := redistest.Mini(t)
	_, err := NewReader(b.Client, ReaderOptions{Sentinel: &redis.FailoverOptions{SentinelAddrs: []string{"127.0.0.1:26379"}}})
	if err == nil || !strings.Contains(err.Error(), "MasterName") {
		t.Fatalf("NewReader with Sentinel options lacking the master name: %v; want an error naming MasterName", err)
	}
}

// TestReaderFollowsClusterFailover kills the Redis Cluster master that
// serves the events channel's slot, and so holds the Reader's subscription:
// once a replica has taken over, the Reader subscribes again (its client
// reloads the slot map instead of dialling the dead master until its
// periodic reload a minute later), and a change written then reaches Get.
func TestReaderFollowsClusterFailover(t *testing.T) {
	c := redistest.StartCluster(t)
	ctx := context.Background()
	r, err := NewReader(c.Client, ReaderOptions{Prefix: c.Prefix, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	waitFailover(t, "the reader to subscribe", func() bool { return r.Stats().Subscribed })
	s := newWriter(c.Client, c.Prefix)
	id := "SW5zdGFuY2U6ZmFpbG92ZXI="
	rtCreate(t, s, id, "acme", "Sync", "15")
	mustServeFromTier(t, r, id, "15")

	master := c.MasterOf(t, c.Prefix+"events")
	replicas := c.Crash(t, master)
	waitFailover(t, "the reader to see its subscription drop", func() bool { return !r.Stats().Subscribed })
	_, done := c.WaitFailover(t, replicas)
	waitFailover(t, "the reader to subscribe again after the failover", func() bool { return r.Stats().Subscribed })
	t.Logf("the reader subscribed again %v after the failover was done", time.Since(done).Round(time.Millisecond))

	// A writer that knows the new topology, as the daemon does.
	var addrs []string
	for _, n := range c.Nodes {
		if n.Alive() {
			addrs = append(addrs, n.Addr)
		}
	}
	w := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer w.Close()
	ws := newWriter(w, c.Prefix)
	mustServeFromTier(t, r, id, "15")
	rtSetValue(t, ws, id, "30")
	waitFailover(t, "the reader to see the change written after the failover", func() bool {
		e, err := r.Get(ctx, id)
		return err == nil && rtValue(e) == "30"
	})
}

// TestReaderFollowsSentinelSwitch runs a planned Sentinel failover while the
// old master stays reachable by the app but not by the sentinels, so it is
// never demoted and never disconnects the Reader. The Reader, told of the
// sentinels, flushes and subscribes on the new master when they switch: a
// change written after the switch reaches Get. It logs how long that took
// (run with -v).
func TestReaderFollowsSentinelSwitch(t *testing.T) {
	g := redistest.StartSentinel(t, redistest.SentinelOptions{PartitionOldMaster: true})
	ctx := context.Background()
	fo := *g.Failover
	app := redis.NewFailoverClient(&fo)
	defer app.Close()
	r, err := NewReader(app, ReaderOptions{Prefix: g.Prefix, MaxAge: time.Hour, Sentinel: g.Failover})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	waitFailover(t, "the reader to subscribe", func() bool { return r.Stats().Subscribed })
	s := newWriter(g.Client, g.Prefix)
	id := "SW5zdGFuY2U6ZmFpbG92ZXI="
	rtCreate(t, s, id, "acme", "Sync", "15")
	mustServeFromTier(t, r, id, "15")

	switched := g.WatchSwitch(t)
	g.StartFailover(t)
	var at time.Time
	select {
	case at = <-switched:
	case <-time.After(30 * time.Second):
		t.Fatal("no +switch-master within 30s of SENTINEL FAILOVER")
	}
	// Write to the new master only: a write that reached the old one would
	// publish there and tell the Reader on its own.
	onNew := newWriter(g.Replica.Client(), g.Prefix)
	rtSetValue(t, onNew, id, "30")
	written := time.Now()
	if g.Master.Role(ctx) != "master" {
		t.Fatalf("the old master reports %q: it was demoted, and the test no longer shows what it should", g.Master.Role(ctx))
	}
	waitFailover(t, "the reader to see the change written after the switch", func() bool {
		e, err := r.Get(ctx, id)
		return err == nil && rtValue(e) == "30"
	})
	t.Logf("the change was written %v after +switch-master and reached Reader.Get %v after it was written",
		written.Sub(at).Round(time.Millisecond), time.Since(written).Round(time.Millisecond))
}
