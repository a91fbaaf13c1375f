// Package redistest runs one test suite against every Redis backend at hand:
// an in-process miniredis always, and the real Redis server named by the
// REDIS_URL environment variable when it is set. Each run gets its own key
// prefix, and its keys are removed afterwards, so suites can share one real
// server and run in parallel.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Backend is one Redis a suite runs against.
type Backend struct {
	// Name is "miniredis", "redis", "cluster" or "sentinel".
	Name string
	// Client talks to the backend.
	Client redis.UniversalClient
	// URL is a URL for a separate process or client to use, in a form
	// prismcache's --redis-url takes (redis://, redis-cluster://,
	// redis-sentinel://).
	URL string
	// Prefix is the key prefix reserved for this run; keys under it are
	// deleted when the test ends.
	Prefix string
	// Mini is the miniredis server, nil for a real Redis. Tests use it to move
	// time (FastForward) or to break connections.
	Mini *miniredis.Miniredis
}

// Real reports whether the backend is a real Redis server.
func (b Backend) Real() bool { return b.Mini == nil }

// Each runs fn as a subtest once per backend: "miniredis", then "redis" when
// REDIS_URL is set.
func Each(t *testing.T, fn func(t *testing.T, b Backend)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) { fn(t, Mini(t)) })
	if os.Getenv("REDIS_URL") != "" {
		t.Run("redis", func(t *testing.T) { fn(t, Real(t)) })
	}
}

// Mini starts a miniredis server for the test.
func Mini(t testing.TB) Backend {
	t.Helper()
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return Backend{Name: "miniredis", Client: c, URL: "redis://" + m.Addr(), Prefix: newPrefix(t), Mini: m}
}

// Real connects to the Redis server in REDIS_URL, skipping the test when it
// is not set, and removes the run's keys when the test ends.
func Real(t testing.TB) Backend {
	t.Helper()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		t.Skip("REDIS_URL is not set: no real Redis to test against")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	c := redis.NewClient(opts)
	prefix := newPrefix(t)
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("REDIS_URL %s does not answer: %v", url, err)
	}
	t.Cleanup(func() {
		deletePrefix(c, prefix)
		_ = c.Close()
	})
	return Backend{Name: "redis", Client: c, URL: url, Prefix: prefix}
}

// deletePrefix deletes every key under prefix.
func deletePrefix(c redis.UniversalClient, prefix string) {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
}

func newPrefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "prismcache-test:" + hex.EncodeToString(b) + ":"
}

// Fresh returns the backend under a new key prefix of its own, for a subtest
// that shares the server (a cluster started once, say). On the shared real
// Redis its keys are deleted when the test ends, as Real's are.
func (b Backend) Fresh(t testing.TB) Backend {
	t.Helper()
	b.Prefix = newPrefix(t)
	if b.Name == "redis" {
		c, prefix := b.Client, b.Prefix
		t.Cleanup(func() { deletePrefix(c, prefix) })
	}
	return b
}
