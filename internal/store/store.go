package store

import (
	_ "embed"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/lease"
)

// Options configure a Store. The zero value means the defaults.
type Options struct {
	// Prefix of every key; cache.DefaultPrefix when empty.
	Prefix string
	// TombstoneTTL is how long a delete's tombstone lives;
	// DefaultTombstoneTTL when zero.
	TombstoneTTL time.Duration
	// HistoryDepth is how many revisions of each instance are kept
	// (cache.Revision); 0 keeps none.
	HistoryDepth int
	// Remember is how many entries the store remembers, without their
	// documents, to decide changes of flags without reading them first
	// (see memory); DefaultRemember when zero, none when negative.
	Remember int
}

// DefaultHistoryDepth is how many revisions of each instance the daemon
// keeps when not told otherwise.
const DefaultHistoryDepth = 10

// Store writes the Redis contract and reads what the daemon decides on. It
// is safe for concurrent use.
type Store struct {
	rdb          redis.UniversalClient
	keys         Keys
	tombstone    time.Duration
	historyDepth int
	direct       cache.Direct
	memory       *memory
}

// New returns a Store writing through rdb.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = cache.DefaultPrefix
	}
	if opts.TombstoneTTL <= 0 {
		opts.TombstoneTTL = DefaultTombstoneTTL
	}
	keys := NewKeys(opts.Prefix)
	return &Store{rdb: rdb, keys: keys, tombstone: opts.TombstoneTTL, historyDepth: max(opts.HistoryDepth, 0),
		direct: cache.Direct{Client: rdb, Keys: keys.Keys}, memory: newMemory(opts.Remember)}
}

// Keys returns the key names the store writes.
func (s *Store) Keys() Keys { return s.keys }

// The store's scripts, one .lua file per operation, each behind a typed
// wrapper in this package.
var (
	//go:embed lua/load.lua
	loadSrc    string
	loadScript = redis.NewScript(loadSrc)
	//go:embed lua/apply.lua
	applySrc    string
	applyScript = redis.NewScript(applySrc)
	//go:embed lua/finish_sync.lua
	finishSyncSrc    string
	finishSyncScript = redis.NewScript(finishSyncSrc)
)

// Lock returns a named lease in the store's Redis (see lease.Lock): the
// reconcile and census leases.
func (s *Store) Lock(key string, ttl time.Duration) lease.Lock {
	return lease.NewLock(s.rdb, key, ttl)
}
