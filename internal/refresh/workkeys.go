package refresh

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/internal/store"
)

// DefaultShards is how many shards the work set is split into when nothing
// else is configured or recorded: enough that on a Redis Cluster of a few
// masters each holds several, so losing one master stops only its share of
// the work, and few enough that an idle replica's look at every shard stays
// one small pipeline.
const DefaultShards = 16

// MaxShards bounds the shard count.
const MaxShards = 1024

// shardKeys are the keys of one shard of the work set. They share one hash
// tag, {work:N}, so every script on a shard runs in one slot.
type shardKeys struct {
	due, leases, owners, dirty, failures, asked string
	dedupPrefix                                 string
}

func newShardKeys(prefix string, n int) shardKeys {
	base := prefix + "{work:" + strconv.Itoa(n) + "}:"
	return shardKeys{
		due: base + "due", leases: base + "leases", owners: base + "owners", dirty: base + "dirty",
		failures: base + "failures", asked: base + "asked", dedupPrefix: base + "dedup:",
	}
}

// dedup is the mark of a webhook body whose effect was to queue work in
// this shard.
func (k shardKeys) dedup(sum string) string { return k.dedupPrefix + sum }

// legacyKeys are the work set's keys in the single-slot layout of versions
// before the work set was sharded; the work set drains them.
type legacyKeys struct {
	due, leases, owners, dirty, attempts, asked string
}

func newLegacyKeys(prefix string) legacyKeys {
	base := prefix + "{work}:"
	return legacyKeys{
		due: base + "due", leases: base + "leases", owners: base + "owners", dirty: base + "dirty",
		attempts: base + "attempts", asked: base + "asked",
	}
}

// shardOf returns the shard of a work-set member: FNV-1a of its bytes,
// modulo the shard count. Every replica must use the same count (see
// RecordedShards).
func shardOf(member string, shards int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(member))
	return int(h.Sum32() % uint32(shards))
}

// RecordedShards returns the shard count every replica on this Redis must
// use. The first replica records want; later ones get what was recorded,
// so that replicas configured differently still agree on where each id
// lives (two layouts would let two workers run one instance at once).
// changed reports that the recorded count differs from want.
func RecordedShards(ctx context.Context, rdb redis.UniversalClient, keys store.Keys, want int) (n int, changed bool, err error) {
	if want <= 0 {
		want = DefaultShards
	}
	if err := rdb.SetNX(ctx, keys.WorkShards(), want, 0).Err(); err != nil {
		return 0, false, fmt.Errorf("record the work set's shard count: %w", err)
	}
	s, err := rdb.Get(ctx, keys.WorkShards()).Result()
	if errors.Is(err, redis.Nil) {
		return want, false, nil // removed in between: a flush; use ours
	}
	if err != nil {
		return 0, false, fmt.Errorf("read the work set's shard count: %w", err)
	}
	n, err = strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxShards {
		return 0, false, fmt.Errorf("the work set's shard count in %s is %q: want 1 to %d", keys.WorkShards(), s, MaxShards)
	}
	return n, n != want, nil
}
