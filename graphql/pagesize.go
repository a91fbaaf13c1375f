package graphql

import (
	"sync"
	"time"
)

// Page-size adaptation. Prismatic documents 100 items as the most one page
// returns, but not what else it refuses: APIs that bound a query's size or
// cost answer a page that is too large with an error (or time out on it).
// The client starts every paged query at PageSize; when the API refuses a
// request as too large it halves the size at once and asks again, and it
// grows back slowly — a quarter more after every growEvery requests
// answered — never past a size refused within badMemory, nor past
// PageSize. One size serves every paged query of a client, the instances
// of a page and the config variables of each: a limit on one request's
// size or cost is the API's, not one query's.
const (
	// MinPageSize is the smallest page the client asks for.
	MinPageSize = 1
	// growEvery is how many requests must be answered at a size before the
	// client tries a larger one.
	growEvery = 16
	// badMemory is how long a refused size stays refused: after that the
	// client may try it again, should the API have changed its limit.
	badMemory = 30 * time.Minute
)

// pageSizer holds a client's page size. Safe for concurrent use.
type pageSizer struct {
	now func() time.Time

	mu    sync.Mutex
	size  int       // what requests ask for now
	good  int       // the largest size answered since the last refusal, 0 if none
	bad   int       // the smallest size refused, 0 if none remembered
	badAt time.Time // when bad was last refused
	wins  int       // requests answered at size since it last changed
}

func newPageSizer(now func() time.Time) *pageSizer {
	return &pageSizer{now: now, size: PageSize}
}

// get returns the page size to ask for.
func (p *pageSizer) get() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size
}

// answered notes a request answered at size, and grows the size after
// growEvery of them.
func (p *pageSizer) answered(size int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if size > p.good && (p.bad == 0 || size < p.bad) {
		p.good = size
	}
	if size != p.size || p.size >= PageSize {
		return
	}
	p.wins++
	if p.wins < growEvery {
		return
	}
	p.wins = 0
	next := min(PageSize, p.size+max(1, p.size/4))
	if p.bad > 0 && p.now().Sub(p.badAt) >= badMemory {
		p.bad = 0 // forget it: the API may accept it now
	}
	if p.bad > 0 {
		next = min(next, (p.size+p.bad)/2) // halfway to the size refused
	}
	if next > p.size {
		p.size = next
	}
}

// refused notes that the API refused a request at size as too large (or
// did not answer it in time) and shrinks the page size: to the largest size
// known to be answered if that is smaller, else to half. It returns false
// when size was the smallest already, so nothing smaller can be tried.
func (p *pageSizer) refused(size int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if size > p.size {
		return true // shrunk already, by another request refused at this size
	}
	if size <= MinPageSize {
		return false
	}
	if p.bad == 0 || size < p.bad {
		p.bad = size
	}
	p.badAt = p.now()
	if p.good >= size {
		p.good = 0 // the limit tightened: what worked before no longer does
	}
	next := size / 2
	if p.good > next {
		next = p.good
	}
	p.size, p.wins = max(MinPageSize, next), 0
	return true
}
