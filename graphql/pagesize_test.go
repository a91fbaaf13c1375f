package graphql

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/testutil"
)

// tooComplex answers like an API that bounds a query's size: HTTP 200, one
// GraphQL error with extensions.code QUERY_TOO_COMPLEX, no data.
func tooComplex(t *testing.T) reply {
	t.Helper()
	b, err := json.Marshal(map[string]any{"errors": []map[string]any{{
		"message":    "query is too complex",
		"extensions": map[string]any{"code": "QUERY_TOO_COMPLEX"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: http.StatusOK, body: string(b)}
}

// limitedList serves ListInstances of n instances and refuses every request
// whose first is above limit; it records the sizes asked for.
type limitedList struct {
	t     *testing.T
	n     int
	mu    sync.Mutex
	limit int
	asked []int
}

func (f *limitedList) serve(req gqlRequest) reply {
	first := int(req.Variables["first"].(float64))
	f.mu.Lock()
	f.asked = append(f.asked, first)
	limit := f.limit
	f.mu.Unlock()
	if limit > 0 && first > limit {
		return tooComplex(f.t)
	}
	offset := 0
	if a := req.str("after"); a != "" {
		offset = atoi(f.t, a[len("cursor:"):])
	}
	end := min(offset+first, f.n)
	var nodes []any
	for i := offset; i < end; i++ {
		nodes = append(nodes, listNode("I"+itoa(i), 3, "x", 4, first))
	}
	return listReply(f.t, nodes, end < f.n, cursor(end), f.n)
}

func (f *limitedList) sizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.asked...)
}

// listAll pages through the whole listing and returns the ids.
func listAll(t *testing.T, c *Client) []string {
	t.Helper()
	var ids []string
	after := ""
	for {
		page, err := c.ListInstances(context.Background(), after)
		if err != nil {
			t.Fatalf("ListInstances after %q: %v", after, err)
		}
		for _, in := range page.Instances {
			ids = append(ids, in.ID)
		}
		if page.Next == "" {
			return ids
		}
		after = page.Next
	}
}

// TestPageSizeHalvesOnTooComplexAndGrowsBackSlowly: an API that refuses
// pages above 30 gets 100, 50 and then 25 — the refusals cost one request
// each and the listing completes; later requests grow the size back
// slowly, never to the size refused, and a listing never fails for it.
func TestPageSizeHalvesOnTooComplexAndGrowsBackSlowly(t *testing.T) {
	f := &limitedList{t: t, n: 1000, limit: 30}
	api := newFakeAPI(t, f.serve)
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok"})

	ids := listAll(t, c)
	if len(ids) != 1000 {
		t.Fatalf("listed %d instances, want 1000", len(ids))
	}
	sizes := f.sizes()
	if sizes[0] != 100 || sizes[1] != 50 || sizes[2] != 25 {
		t.Fatalf("sizes asked %v, want 100, 50, then 25", sizes[:3])
	}
	refused := 0
	for _, s := range sizes {
		if s > 30 {
			refused++
		}
		if s > 50 && refused > 1 {
			t.Fatalf("asked for %d after 50 was refused (sizes %v)", s, sizes)
		}
	}
	// 1000 instances at about 25 a page is about 40 pages; each step up
	// toward the limit may be refused once: a handful, not one per page.
	if refused > 6 {
		t.Errorf("%d refused requests in %d (sizes %v); want a few", refused, len(sizes), sizes)
	}
	if got := c.PageSize(); got < 25 || got > 30 {
		t.Errorf("PageSize() = %d, want between 25 and the limit 30", got)
	}

	// The API lifts its limit: the size does not jump back, it grows.
	f.mu.Lock()
	f.limit = 0
	f.mu.Unlock()
	before := c.PageSize()
	listAll(t, c)
	if after := c.PageSize(); after < before || after > 100 {
		t.Errorf("PageSize() went from %d to %d", before, after)
	}
}

// TestFetchInstancePagesConfigAtTheSizeTheAPIAccepts: the fetch of an
// instance with 60 config variables against an API that refuses pages
// above 20 still assembles every variable.
func TestFetchInstancePagesConfigAtTheSizeTheAPIAccepts(t *testing.T) {
	const n = 60
	var mu sync.Mutex
	var asked []int
	api := newFakeAPI(t, func(req gqlRequest) reply {
		first := int(req.Variables["first"].(float64))
		mu.Lock()
		asked = append(asked, first)
		mu.Unlock()
		if first > 20 {
			return tooComplex(t)
		}
		offset := 0
		if a := req.str("after"); a != "" {
			offset = atoi(t, a[len("cursor:"):])
		}
		end := min(offset+first, n)
		var nodes []any
		for i := offset; i < end; i++ {
			nodes = append(nodes, configVarJSON(i))
		}
		return dataReply(t, map[string]any{"instance": instanceJSON(instID, "x", 7, nodes, cursor(end), end < n)})
	})
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok"})
	inst, err := c.FetchInstance(context.Background(), instID)
	if err != nil {
		t.Fatalf("FetchInstance: %v", err)
	}
	if len(inst.ConfigVariables) != 60 || inst.Partial {
		t.Fatalf("%d config variables (partial %v), want all 60", len(inst.ConfigVariables), inst.Partial)
	}
	if c.PageSize() != 12 {
		t.Errorf("PageSize() = %d, want 12 (100 → 50 → 25 → 12)", c.PageSize())
	}
	t.Logf("sizes asked: %v", asked)
}

// TestPageSizeShrinksOnATimeoutButReturnsIt: a gateway timeout on a page
// shrinks the size for the next attempt; the error goes back to the
// caller, whose retry policy decides when to ask again.
func TestPageSizeShrinksOnATimeoutButReturnsIt(t *testing.T) {
	api := newFakeAPI(t, func(gqlRequest) reply { return reply{status: http.StatusGatewayTimeout, body: "upstream timed out"} })
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok"})
	_, err := c.ListInstances(context.Background(), "")
	if e := mustError(t, err); e.Kind != Transient || e.Status != http.StatusGatewayTimeout {
		t.Fatalf("err = %v, want the transient 504", err)
	}
	if n := len(api.calls()); n != 1 {
		t.Errorf("%d requests, want 1: a timeout is not retried by the client", n)
	}
	if c.PageSize() != 50 {
		t.Errorf("PageSize() = %d after a timeout at 100, want 50", c.PageSize())
	}
}

// TestTooLargeAtTheSmallestPageIsReturned: when even a page of one is
// refused, the caller gets a TooLarge error (and no endless loop).
func TestTooLargeAtTheSmallestPageIsReturned(t *testing.T) {
	api := newFakeAPI(t, func(gqlRequest) reply { return tooComplex(t) })
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok"})
	_, err := c.ListInstances(context.Background(), "")
	if KindOf(err) != TooLarge || Retryable(err) {
		t.Fatalf("err = %v (kind %v), want a TooLarge error that is not retryable", err, KindOf(err))
	}
	if n := len(api.calls()); n != 7 {
		t.Errorf("%d requests, want 7 (100, 50, 25, 12, 6, 3, 1, then give up)", n)
	}
}

func TestHTTP413IsTooLarge(t *testing.T) {
	api := newFakeAPI(t, func(req gqlRequest) reply {
		if req.Variables["first"].(float64) > 50 {
			return reply{status: http.StatusRequestEntityTooLarge, body: "too large"}
		}
		return listReply(t, nil, false, nil, 0)
	})
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok"})
	if _, err := c.ListInstances(context.Background(), ""); err != nil {
		t.Fatalf("ListInstances: %v", err)
	}
	if c.PageSize() != 50 {
		t.Errorf("PageSize() = %d, want 50", c.PageSize())
	}
}

// TestPageSizerForgetsARefusalInTime: a refused size is not asked for
// again until badMemory has passed; then the size may grow past it.
func TestPageSizerForgetsARefusalInTime(t *testing.T) {
	clock := testutil.NewClock()
	p := newPageSizer(clock.Now)
	p.refused(100) // → 50, 100 remembered
	grow := func() {
		for range growEvery {
			p.answered(p.get())
		}
	}
	for range 20 {
		grow()
	}
	if got := p.get(); got >= 100 {
		t.Fatalf("size %d reached the refused 100 within its memory", got)
	}
	clock.Advance(badMemory + time.Second)
	for range 20 {
		grow()
	}
	if got := p.get(); got != PageSize {
		t.Errorf("size %d after the refusal was forgotten, want back to %d", got, PageSize)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

func itoa(n int) string { return strconv.Itoa(n) }
