package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/internal/testutil"
)

// ClusterNodeTimeout is the cluster-node-timeout of the clusters the tests
// start: how long a master may be unreachable before its replica takes over.
const ClusterNodeTimeout = 2 * time.Second

// RedisCluster is a Redis Cluster of three masters, each with one replica,
// made of redis-server processes of the test's own.
type RedisCluster struct {
	// Backend is the cluster as a suite sees it: Client is a cluster client
	// of the test's own and URL a redis-cluster:// URL naming every node.
	Backend
	// Nodes are the six servers, masters and replicas.
	Nodes []*Server
}

// Cluster starts a Redis Cluster of three masters and three replicas and
// returns it as a Backend. Without redis-server the test is skipped (or
// fails when CI=true).
func Cluster(t testing.TB) Backend {
	t.Helper()
	return StartCluster(t).Backend
}

// StartCluster starts a Redis Cluster of three masters and three replicas,
// built by redis-cli --cluster create, and waits until every node agrees it
// is whole. Without redis-server and redis-cli the test is skipped (or fails
// when CI=true).
func StartCluster(t testing.TB) *RedisCluster {
	t.Helper()
	bin := needBinary(t, "redis-server")
	cli := needBinary(t, "redis-cli")
	root := t.TempDir()
	c := &RedisCluster{}
	addrs := make([]string, 6)
	for i := range addrs {
		n := startServer(t, bin, root, fmt.Sprintf("node%d", i), clusterNode,
			"--cluster-node-timeout", fmt.Sprint(ClusterNodeTimeout.Milliseconds()))
		c.Nodes = append(c.Nodes, n)
		addrs[i] = n.Addr
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	out, err := exec.Command(cli, append(args, "--cluster-replicas", "1", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx := context.Background()
	testutil.Eventually(t, "the cluster to form", func() bool {
		masters, replicas := 0, 0
		for _, n := range c.Nodes {
			if n.clusterInfo(ctx, "cluster_state") != "ok" || n.clusterInfo(ctx, "cluster_known_nodes") != "6" {
				return false
			}
			switch n.Role(ctx) {
			case "master":
				masters++
			case "slave":
				if n.info(ctx, "replication", "master_link_status") != "up" {
					return false
				}
				replicas++
			}
		}
		return masters == 3 && replicas == 3
	})
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = client.Close() })
	testutil.Eventually(t, "the cluster client to see every slot", func() bool {
		return client.Set(ctx, "{a}probe", 1, time.Second).Err() == nil && client.Set(ctx, "{b}probe", 1, time.Second).Err() == nil &&
			client.Set(ctx, "{c}probe", 1, time.Second).Err() == nil
	})
	c.Backend = Backend{Name: "cluster", Client: client, URL: "redis-cluster://" + strings.Join(addrs, ","), Prefix: newPrefix(t)}
	return c
}

// clusterInfo returns one field of CLUSTER INFO ("" when unanswered).
func (s *Server) clusterInfo(ctx context.Context, field string) string {
	out, err := s.client.ClusterInfo(ctx).Result()
	if err != nil {
		return ""
	}
	return infoField(out, field)
}

// node returns the server listening on addr.
func (c *RedisCluster) node(addr string) *Server {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// MasterOf returns the master that serves key's slot now, as a live node
// sees it.
func (c *RedisCluster) MasterOf(t testing.TB, key string) *Server {
	t.Helper()
	ctx := context.Background()
	for _, n := range c.Nodes {
		if !n.Alive() {
			continue
		}
		slot, err := n.client.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			continue
		}
		slots, err := n.client.ClusterSlots(ctx).Result()
		if err != nil {
			continue
		}
		for _, s := range slots {
			if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
				if m := c.node(s.Nodes[0].Addr); m != nil {
					return m
				}
			}
		}
	}
	t.Fatalf("no live node knows the master of %q", key)
	return nil
}

// ReplicasOf returns the nodes that replicate master now.
func (c *RedisCluster) ReplicasOf(t testing.TB, master *Server) []*Server {
	t.Helper()
	ctx := context.Background()
	var out []*Server
	for _, n := range c.Nodes {
		if n == master || !n.Alive() || n.Role(ctx) != "slave" {
			continue
		}
		host, port := n.info(ctx, "replication", "master_host"), n.info(ctx, "replication", "master_port")
		if host+":"+port == master.Addr {
			out = append(out, n)
		}
	}
	return out
}

// Crash kills master once its replicas hold all it acknowledged (see
// Server.crash), and returns those replicas: one of them will take over.
func (c *RedisCluster) Crash(t testing.TB, master *Server) []*Server {
	t.Helper()
	replicas := c.ReplicasOf(t, master)
	if len(replicas) == 0 {
		t.Fatalf("%s has no replica to take over", master.Addr)
	}
	master.crash(t)
	return replicas
}

// WaitFailover waits until the cluster has recovered from the loss of a
// master: one of replicas reports ROLE master and every live master reports
// cluster_state:ok. It returns the promoted node and when the recovery was
// first seen.
func (c *RedisCluster) WaitFailover(t testing.TB, replicas []*Server) (*Server, time.Time) {
	t.Helper()
	ctx := context.Background()
	var promoted *Server
	testutil.Eventually(t, "a replica to take over", func() bool {
		promoted = nil
		for _, r := range replicas {
			if r.Alive() && r.Role(ctx) == "master" {
				promoted = r
			}
		}
		if promoted == nil {
			return false
		}
		for _, n := range c.Nodes {
			if n.Alive() && n.Role(ctx) == "master" && n.clusterInfo(ctx, "cluster_state") != "ok" {
				return false
			}
		}
		return true
	})
	return promoted, time.Now()
}
