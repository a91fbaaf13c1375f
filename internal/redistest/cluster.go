package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster starts a Redis Cluster of three masters on loopback, each a
// redis-server process of the test's own, and returns a cluster client. The
// test is skipped, saying how to run it, when redis-server is not
// installed.
func Cluster(t testing.TB) Backend {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed; install it (Debian: apt-get install redis-server) to run the Redis Cluster tests")
	}
	dir := t.TempDir()
	var addrs []string
	for i := range 3 {
		port := freePort(t)
		nodeDir := filepath.Join(dir, fmt.Sprint(i))
		if err := os.Mkdir(nodeDir, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(port),
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(nodeDir, "nodes.conf"),
			"--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no", "--dir", nodeDir)
		cmd.Stdout, cmd.Stderr = nil, nil
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	ctx := context.Background()
	nodes := make([]*redis.Client, len(addrs))
	for i, a := range addrs {
		nodes[i] = redis.NewClient(&redis.Options{Addr: a})
		defer nodes[i].Close()
		waitUntil(t, "redis-server on "+a+" to answer", func() bool { return nodes[i].Ping(ctx).Err() == nil })
	}
	// Split the 16384 slots over the three nodes and introduce them.
	bounds := []int{0, 5461, 10923, 16384}
	for i, n := range nodes {
		if err := n.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", bounds[i], bounds[i+1]-1).Err(); err != nil {
			t.Fatalf("assign slots to %s: %v", addrs[i], err)
		}
	}
	for _, n := range nodes[1:] {
		host, port, _ := net.SplitHostPort(addrs[0])
		if err := n.ClusterMeet(ctx, host, port).Err(); err != nil {
			t.Fatalf("cluster meet: %v", err)
		}
	}
	waitUntil(t, "the cluster to form", func() bool {
		for _, n := range nodes {
			info, err := n.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
				return false
			}
		}
		return true
	})
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = c.Close() })
	waitUntil(t, "the cluster client to see every slot", func() bool {
		return c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return n.Ping(ctx).Err() }) == nil &&
			c.Set(ctx, "{a}probe", 1, time.Second).Err() == nil && c.Set(ctx, "{b}probe", 1, time.Second).Err() == nil &&
			c.Set(ctx, "{c}probe", 1, time.Second).Err() == nil
	})
	return Backend{Name: "cluster", Client: c, URL: "redis-cluster://" + strings.Join(addrs, ","), Prefix: newPrefix(t)}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
