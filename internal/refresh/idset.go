package refresh

import (
	"hash/maphash"
	"slices"
)

// idSet is the set of instance ids a reconcile pass listed, kept as 64-bit
// hashes in one slice: 8 bytes an id, where a map of the ids themselves
// costs about ten times that and keeps every id string of the listing
// alive until the pass ends (about 80 MB at a million instances). A hash
// collision can only make an id look listed, so its entry is kept, never
// removed: the worst it does is leave an instance Prismatic no longer has
// in the cache until a later pass, for one pair in about 2^64 / n.
type idSet struct {
	seed   maphash.Seed
	hashes []uint64
	sorted bool
}

// maxIDSetHint bounds the room reserved up front: the hint is the API's
// total count, which a wrong answer must not turn into a huge allocation.
const maxIDSetHint = 4 << 20

// newIDSet returns an empty set with room for sizeHint ids.
func newIDSet(sizeHint int) *idSet {
	return &idSet{seed: maphash.MakeSeed(), hashes: make([]uint64, 0, min(max(sizeHint, 0), maxIDSetHint))}
}

// add adds id. Adding after has is allowed; the next has sorts again.
func (s *idSet) add(id string) {
	s.hashes = append(s.hashes, maphash.String(s.seed, id))
	s.sorted = false
}

// has reports whether id was added (or an id with its hash was).
func (s *idSet) has(id string) bool {
	if !s.sorted {
		slices.Sort(s.hashes)
		s.hashes = slices.Compact(s.hashes)
		s.sorted = true
	}
	_, ok := slices.BinarySearch(s.hashes, maphash.String(s.seed, id))
	return ok
}
