package store

import (
	"errors"
	"time"

	"github.com/prismcache/prismcache/cache"
)

// Errors of the store's writes; callers branch on them with errors.Is.
var (
	// ErrConflict: the entry's rev changed between the read the mutation was
	// decided on and the write; read again and decide again.
	ErrConflict = errors.New("entry changed since it was read")
	// ErrTombstoned: the instance was deleted; nothing may bring it back.
	ErrTombstoned = errors.New("instance is deleted")
	// ErrDuplicate: the webhook body behind a write was applied already.
	ErrDuplicate = errors.New("webhook body applied already")
	// ErrIndex: the entry was written but its lookup rows were not. The write
	// stands — lookups check every row against its entry and the next fetch
	// rewrites the rows — so callers report it and go on.
	ErrIndex = errors.New("entry written, lookup index not updated")
)

// DefaultTombstoneTTL is how long a deleted instance's tombstone is kept when
// Options leaves it zero.
const DefaultTombstoneTTL = 24 * time.Hour

// State is what the daemon knows of one instance before it decides a change:
// its entry, whether the hash exists, and whether it was deleted.
type State struct {
	Entry      cache.Entry
	Exists     bool
	Tombstoned bool
	// DocOmitted: the entry was read without its document (see
	// UpdateOptions.WithoutDoc); Entry.Doc, when the entry has a document,
	// holds only its ID and LastDeployedAt.
	DocOmitted bool
	// WriteID is the entry's write id as read: every write gives the entry
	// a new random one, and a write decided on this state is a
	// compare-and-set on the rev and the write id, which tells the entry
	// apart from one deleted and written again up to the same rev.
	WriteID string
}

// Mutation is a decided change to one entry. With Delete set, the entry and
// its index rows go and a tombstone stays; otherwise Entry replaces the
// stored fields. Kind is what the events channel announces.
type Mutation struct {
	Kind   cache.Change
	Entry  cache.Entry
	Delete bool
	// KeepDoc says the mutation leaves the stored document as it is (only
	// the flags change), so the write need not carry it.
	KeepDoc bool
}
