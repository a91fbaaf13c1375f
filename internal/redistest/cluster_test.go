package redistest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestClusterHasThreeMastersSharingTheKeys(t *testing.T) {
	b := Cluster(t)
	ctx := context.Background()
	for i := range 300 {
		if err := b.Client.Set(ctx, fmt.Sprintf("%skey%d", b.Prefix, i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var masters, holding atomic.Int64
	err := b.Client.(*redis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
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
}
