package redistest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/internal/testutil"
)

// MasterName is the name the sentinels of a SentinelGroup monitor.
const MasterName = "prismcache-test"

// SentinelGroup is a master, one replica and three sentinels watching them,
// all redis-server processes of the test's own.
type SentinelGroup struct {
	// Backend is the group as a suite sees it: Client is a failover client
	// of the test's own and URL a redis-sentinel:// URL naming every
	// sentinel.
	Backend
	// Master and Replica are the data servers as started: after a failover
	// Replica is the master.
	Master, Replica *Server
	// Sentinels are the three sentinels.
	Sentinels []*Server
	// Failover is the options the Client was made with.
	Failover *redis.FailoverOptions
}

// SentinelOptions change how a SentinelGroup starts; the zero value is a
// plain group.
type SentinelOptions struct {
	// PartitionOldMaster makes the first master refuse to be turned into a
	// replica (REPLICAOF and SLAVEOF are renamed away), so after a failover
	// it stays a master that clients can still reach but that receives no
	// writes: what clients see when the sentinels lose sight of a master
	// that is still running. Without it the sentinels demote the old master
	// several seconds after the switch, and clients connected to it are
	// disconnected then.
	PartitionOldMaster bool
}

// StartSentinel starts a master, its replica and three sentinels (quorum
// two) that monitor them, and waits until the sentinels know the replica
// and each other, so that a failover can run. Without redis-server the test
// is skipped (or fails when CI=true).
func StartSentinel(t testing.TB, opts SentinelOptions) *SentinelGroup {
	t.Helper()
	bin := needBinary(t, "redis-server")
	root := t.TempDir()
	g := &SentinelGroup{}
	var masterArgs []string
	if opts.PartitionOldMaster {
		masterArgs = []string{"--rename-command", "REPLICAOF", "", "--rename-command", "SLAVEOF", ""}
	}
	g.Master = startServer(t, bin, root, "master", plainServer, masterArgs...)
	host, port, _ := net.SplitHostPort(g.Master.Addr)
	g.Replica = startServer(t, bin, root, "replica", plainServer, "--replicaof", host, port)
	ctx := context.Background()
	testutil.Eventually(t, "the replica to sync", func() bool {
		return g.Replica.info(ctx, "replication", "master_link_status") == "up"
	})
	for i := range 3 {
		s := startServer(t, bin, root, fmt.Sprintf("sentinel%d", i), sentinelServer,
			"sentinel", fmt.Sprintf("monitor %s %s %s 2", MasterName, host, port),
			"sentinel", fmt.Sprintf("down-after-milliseconds %s 1000", MasterName),
			"sentinel", fmt.Sprintf("failover-timeout %s 10000", MasterName))
		g.Sentinels = append(g.Sentinels, s)
	}
	testutil.Eventually(t, "the sentinels to know the replica and each other", func() bool {
		for _, s := range g.Sentinels {
			replicas, err := s.client.Do(ctx, "SENTINEL", "REPLICAS", MasterName).Slice()
			if err != nil || len(replicas) != 1 {
				return false
			}
			if flags := field(replicas[0], "flags"); flags != "slave" {
				return false
			}
			others, err := s.client.Do(ctx, "SENTINEL", "SENTINELS", MasterName).Slice()
			if err != nil || len(others) != 2 {
				return false
			}
		}
		return true
	})
	addrs := make([]string, len(g.Sentinels))
	for i, s := range g.Sentinels {
		addrs[i] = s.Addr
	}
	g.Failover = &redis.FailoverOptions{MasterName: MasterName, SentinelAddrs: addrs}
	client := redis.NewFailoverClient(g.Failover)
	t.Cleanup(func() { _ = client.Close() })
	g.Backend = Backend{Name: "sentinel", Client: client, URL: "redis-sentinel://" + strings.Join(addrs, ",") + "/" + MasterName, Prefix: newPrefix(t)}
	return g
}

// field reads one field of a reply that is a flat list of names and values
// (RESP2) or a map (RESP3).
func field(reply any, name string) string {
	switch r := reply.(type) {
	case map[any]any:
		v, _ := r[name].(string)
		return v
	case []any:
		for i := 0; i+1 < len(r); i += 2 {
			if k, _ := r[i].(string); k == name {
				v, _ := r[i+1].(string)
				return v
			}
		}
	}
	return ""
}

// MasterAddr is the master's address as the given sentinel tells it.
func (g *SentinelGroup) MasterAddr(ctx context.Context, sentinel *Server) string {
	v, err := sentinel.client.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MasterName).StringSlice()
	if err != nil || len(v) != 2 {
		return ""
	}
	return net.JoinHostPort(v[0], v[1])
}

// StartFailover asks a sentinel for a planned failover (SENTINEL FAILOVER):
// the replica is promoted without waiting for the master to fail.
func (g *SentinelGroup) StartFailover(t testing.TB) {
	t.Helper()
	if err := g.Sentinels[0].client.Do(context.Background(), "SENTINEL", "FAILOVER", MasterName).Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
}

// WaitSwitch waits until every sentinel names to as the master and to
// reports ROLE master, and returns when that was first seen.
func (g *SentinelGroup) WaitSwitch(t testing.TB, to *Server) time.Time {
	t.Helper()
	ctx := context.Background()
	testutil.Eventually(t, "the sentinels to switch to "+to.Addr, func() bool {
		for _, s := range g.Sentinels {
			if g.MasterAddr(ctx, s) != to.Addr {
				return false
			}
		}
		return to.Role(ctx) == "master"
	})
	return time.Now()
}

// WatchSwitch subscribes to +switch-master on the first sentinel and returns
// a channel that receives the time each announcement arrived. The
// subscription is confirmed when WatchSwitch returns and ends with the test.
func (g *SentinelGroup) WatchSwitch(t testing.TB) <-chan time.Time {
	t.Helper()
	ctx := context.Background()
	ps := g.Sentinels[0].client.Subscribe(ctx, "+switch-master")
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatalf("subscribe to +switch-master: %v", err)
	}
	out := make(chan time.Time, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range ps.Channel() {
			select {
			case out <- time.Now():
			default:
			}
		}
	}()
	t.Cleanup(func() { _ = ps.Close(); <-done })
	return out
}
