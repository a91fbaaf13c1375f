package store

import (
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/prismcache/prismcache/cache"
)

// DefaultRemember is how many entries a Store remembers when Options
// leaves it zero: the ones most recently read or written, without their
// documents, in a few MB.
const DefaultRemember = 16384

// memory holds the entries this process read or wrote last, without their
// documents, so that a change of an entry's flags (a stale mark) is
// decided without reading the entry first. Nothing is served from it: a
// write decided on a remembered state is a compare-and-set on the rev and
// write id it remembers, so a state that is no longer the entry's (another
// replica wrote it, Redis lost it, a restart brought back an older copy)
// fails the write, which reads the entry and decides again.
type memory struct {
	states *lru.Cache[string, State]
}

// newMemory remembers up to n entries; none when n < 0.
func newMemory(n int) *memory {
	if n < 0 {
		return &memory{}
	}
	if n == 0 {
		n = DefaultRemember
	}
	c, err := lru.New[string, State](n)
	if err != nil { // only for a size below 1, ruled out above
		panic(err)
	}
	return &memory{states: c}
}

// recall returns the remembered state of id.
func (m *memory) recall(id string) (State, bool) {
	if m.states == nil {
		return State{}, false
	}
	return m.states.Get(id)
}

// remember keeps st, the entry of id as it is in Redis, without its
// document. Only entries that exist and were not deleted are kept: the
// write that follows a recall must be able to compare-and-set.
func (m *memory) remember(id string, st State) {
	if m.states == nil {
		return
	}
	if !st.Exists || st.Tombstoned || st.WriteID == "" {
		m.states.Remove(id)
		return
	}
	st.DocOmitted = true
	st.Entry.Doc = docStub(id, st.Entry.Doc)
	m.states.Add(id, st)
}

// forget drops what is remembered of id.
func (m *memory) forget(id string) {
	if m.states != nil {
		m.states.Remove(id)
	}
}

// docStub is what a state read without its document holds of it: its ID
// and LastDeployedAt (see State.DocOmitted); nil without a document.
func docStub(id string, d *cache.Doc) *cache.Doc {
	if d == nil {
		return nil
	}
	return &cache.Doc{ID: id, LastDeployedAt: d.LastDeployedAt}
}
