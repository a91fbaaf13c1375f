package redistest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestClusterSharesKeysAndFailsOver checks the helpers the failover suites
// rely on: three masters share the keys, a crashed master's replica takes
// over, and what the master had acknowledged is still there.
func TestClusterSharesKeysAndFailsOver(t *testing.T) {
	c := StartCluster(t)
	ctx := context.Background()
	for i := range 300 {
		if err := c.Client.Set(ctx, fmt.Sprintf("%skey%d", c.Prefix, i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var masters, holding atomic.Int64
	err := c.Client.(*redis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		masters.Add(1)
		if n.DBSize(ctx).Val() > 0 {
			holding.Add(1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if masters.Load() != 3 || holding.Load() != 3 {
		t.Fatalf("%d masters, %d of them holding keys; want 3 and 3", masters.Load(), holding.Load())
	}

	key := c.Prefix + "key0"
	master := c.MasterOf(t, key)
	replicas := c.Crash(t, master)
	promoted, _ := c.WaitFailover(t, replicas)
	if got := c.MasterOf(t, key); got != promoted {
		t.Fatalf("after the failover %s serves %q, want the promoted %s", got.Addr, key, promoted.Addr)
	}
	if v, err := promoted.Client().Get(ctx, key).Result(); err != nil || v != "0" {
		t.Fatalf("the promoted replica has %q, %v; want the write the master acknowledged", v, err)
	}
}
