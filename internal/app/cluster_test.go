package app_test

import (
	"testing"

	"github.com/prismcache/prismcache/internal/redistest"
)

// TestOnRedisCluster runs the daemon end to end on a Redis Cluster of three
// masters the test starts itself: its scripts, pipelines across slots, the
// change feed and the reconciler's scan of every master must all work there.
// It is skipped, saying how to run it, when redis-server is not installed.
func TestOnRedisCluster(t *testing.T) {
	c := redistest.Cluster(t)
	t.Run("DeployReachesRedis", func(t *testing.T) { testDeployReachesRedis(t, c.Fresh(t)) })
}
