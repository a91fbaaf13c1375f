package redistest

import (
	"context"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/testutil"
)

// TestSentinelFailsOver checks the Sentinel helpers: a planned failover
// promotes the replica, every sentinel announces and names it, and the
// group's failover client writes to it.
func TestSentinelFailsOver(t *testing.T) {
	g := StartSentinel(t, SentinelOptions{})
	ctx := context.Background()
	if err := g.Client.Set(ctx, g.Prefix+"before", 1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	switched := g.WatchSwitch(t)
	g.StartFailover(t)
	select {
	case <-switched:
	case <-time.After(30 * time.Second):
		t.Fatal("no +switch-master within 30s of SENTINEL FAILOVER")
	}
	g.WaitSwitch(t, g.Replica)
	testutil.Eventually(t, "the failover client to write to the new master", func() bool {
		return g.Client.Set(ctx, g.Prefix+"after", 1, 0).Err() == nil &&
			g.Replica.Client().Exists(ctx, g.Prefix+"after").Val() == 1
	})
	if g.Replica.Client().Exists(ctx, g.Prefix+"before").Val() != 1 {
		t.Fatal("the write made before the failover is not on the new master")
	}
}
