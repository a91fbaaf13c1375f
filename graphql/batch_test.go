package graphql

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// gateLimiter holds every Wait until the test opens it, and counts the
// waits that began.
type gateLimiter struct {
	mu      sync.Mutex
	waiting int
	open    chan struct{}
}

func newGate() *gateLimiter { return &gateLimiter{open: make(chan struct{})} }

func (g *gateLimiter) Wait(ctx context.Context) error {
	g.mu.Lock()
	g.waiting++
	g.mu.Unlock()
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// batchFake serves GetInstances, GetInstance and GetInstanceConfigPage for
// instances named in vars (how many config variables each has); others do
// not exist. fail, when set, answers the GetInstances request with it.
type batchFake struct {
	t    *testing.T
	vars map[string]int
	fail *reply
}

func (f *batchFake) inst(id string, first, offset int) any {
	n, ok := f.vars[id]
	if !ok {
		return nil
	}
	end := min(offset+first, n)
	var nodes []any
	for i := offset; i < end; i++ {
		nodes = append(nodes, configVarJSON(i))
	}
	return instanceJSON(id, "name of "+id, 4, nodes, cursor(end), end < n)
}

func (f *batchFake) serve(req gqlRequest) reply {
	first := int(req.Variables["first"].(float64))
	switch req.OperationName {
	case "GetInstances":
		if f.fail != nil {
			return *f.fail
		}
		data := map[string]any{}
		for i := range BatchSize {
			if i > 0 && req.Variables[fmt.Sprintf("use%d", i)] != true {
				continue
			}
			data[fmt.Sprintf("i%d", i)] = f.inst(req.str(fmt.Sprintf("id%d", i)), first, 0)
		}
		return dataReply(f.t, data)
	case "GetInstance":
		return dataReply(f.t, map[string]any{"instance": f.inst(req.str("id"), first, 0)})
	case "GetInstanceConfigPage":
		return dataReply(f.t, map[string]any{"instance": f.inst(req.str("id"), first, atoi(f.t, req.str("after")[len("cursor:"):]))})
	}
	f.t.Errorf("unexpected operation %s", req.OperationName)
	return reply{status: 400}
}

type fetched struct {
	inst *Instance
	err  error
}

// fetchTogether starts a fetch of each id at once on c, waits until all of
// them are queued behind the gate (one waiting at the limiter, the others
// in its batch), opens it, and returns each fetch's outcome.
func fetchTogether(t *testing.T, c *Client, gate *gateLimiter, ids []string) map[string]fetched {
	t.Helper()
	var mu sync.Mutex
	out := map[string]fetched{}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inst, err := c.FetchInstance(context.Background(), id)
			mu.Lock()
			out[id] = fetched{inst, err}
			mu.Unlock()
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.batches.mu.Lock()
		joined := 0
		if c.batches.open != nil {
			joined = len(c.batches.open.ids)
		}
		c.batches.mu.Unlock()
		if joined == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d fetches joined the batch", joined, len(ids))
		}
		time.Sleep(time.Millisecond)
	}
	close(gate.open)
	wg.Wait()
	return out
}

// TestFetchesWaitingTogetherShareOneRequest: five fetches that wait for the
// rate limit at the same time go in one request; each gets its own
// instance, one that does not exist gets nil, and one with more config
// variables than a page goes on with its own pages.
func TestFetchesWaitingTogetherShareOneRequest(t *testing.T) {
	f := &batchFake{t: t, vars: map[string]int{"A": 3, "B": 0, "C": 250, "D": 1}}
	api := newFakeAPI(t, f.serve)
	gate := newGate()
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok", Limiter: gate})
	got := fetchTogether(t, c, gate, []string{"A", "B", "C", "D", "gone"})
	if want := []string{"GetInstances", "GetInstanceConfigPage", "GetInstanceConfigPage"}; !slices.Equal(api.ops(), want) {
		t.Fatalf("requests %v, want %v", api.ops(), want)
	}
	for id, n := range f.vars {
		r := got[id]
		if r.err != nil || r.inst == nil || r.inst.ID != id || len(r.inst.ConfigVariables) != n || r.inst.Partial {
			t.Errorf("%s: %+v, %v; want the instance with its %d config variables", id, r.inst, r.err, n)
		}
	}
	if r := got["gone"]; r.inst != nil || r.err != nil {
		t.Errorf("gone: %+v, %v; want nil, nil", r.inst, r.err)
	}
}

// TestAFetchAloneGoesAlone: with the limiter free, a fetch is one
// GetInstance, as ever.
func TestAFetchAloneGoesAlone(t *testing.T) {
	f := &batchFake{t: t, vars: map[string]int{"A": 3}}
	api := newFakeAPI(t, f.serve)
	gate := newGate()
	close(gate.open)
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok", Limiter: gate})
	inst, err := c.FetchInstance(context.Background(), "A")
	if err != nil || inst == nil || len(inst.ConfigVariables) != 3 {
		t.Fatalf("FetchInstance = %+v, %v", inst, err)
	}
	if want := []string{"GetInstance"}; !slices.Equal(api.ops(), want) {
		t.Errorf("requests %v, want %v", api.ops(), want)
	}
}

// TestABatchTheAPIRejectsIsFetchedOneByOne: a GraphQL error in the batch's
// answer (about any one instance, or the query) makes each fetch again on
// its own, so each gets its own answer.
func TestABatchTheAPIRejectsIsFetchedOneByOne(t *testing.T) {
	rejected := errorsReply(t, `Cannot query field "i1" on type "Query".`)
	f := &batchFake{t: t, vars: map[string]int{"A": 1, "B": 2, "C": 3}, fail: &rejected}
	api := newFakeAPI(t, f.serve)
	gate := newGate()
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok", Limiter: gate})
	got := fetchTogether(t, c, gate, []string{"A", "B", "C"})
	for id, n := range f.vars {
		if r := got[id]; r.err != nil || r.inst == nil || len(r.inst.ConfigVariables) != n {
			t.Errorf("%s: %+v, %v", id, r.inst, r.err)
		}
	}
	ops := api.ops()
	if len(ops) != 4 || ops[0] != "GetInstances" || slices.Index(ops[1:], "GetInstances") >= 0 {
		t.Errorf("requests %v, want the batch, then three GetInstance", ops)
	}
}

// TestAFailedBatchFailsEveryFetchInIt: a 503 for the batch is each fetch's
// failure (their workers retry), not a reason for three more requests — and
// never mistaken for instances that do not exist.
func TestAFailedBatchFailsEveryFetchInIt(t *testing.T) {
	down := reply{status: http.StatusServiceUnavailable, body: "down"}
	f := &batchFake{t: t, vars: map[string]int{"A": 1, "B": 2, "C": 3}, fail: &down}
	api := newFakeAPI(t, f.serve)
	gate := newGate()
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok", Limiter: gate})
	got := fetchTogether(t, c, gate, []string{"A", "B", "C"})
	for id := range f.vars {
		if r := got[id]; r.inst != nil || KindOf(r.err) != Transient || r.err == nil {
			t.Errorf("%s: %+v, %v; want the transient failure", id, r.inst, r.err)
		}
	}
	if n := len(api.calls()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestALeaderCancelledLeavesTheOthersToFetchAlone: the fetch whose batch
// waits for the limiter is cancelled (its worker shuts down); the fetches
// that joined it go on their own.
func TestALeaderCancelledLeavesTheOthersToFetchAlone(t *testing.T) {
	f := &batchFake{t: t, vars: map[string]int{"A": 1, "B": 2}}
	api := newFakeAPI(t, f.serve)
	gate := newGate()
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok", Limiter: gate})
	ctx, cancel := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() { _, err := c.FetchInstance(ctx, "A"); leader <- err }()
	for {
		gate.mu.Lock()
		n := gate.waiting
		gate.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	other := make(chan fetched, 1)
	go func() { inst, err := c.FetchInstance(context.Background(), "B"); other <- fetched{inst, err} }()
	for {
		c.batches.mu.Lock()
		n := len(c.batches.open.ids)
		c.batches.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-leader; err == nil {
		t.Fatal("the cancelled fetch succeeded")
	}
	close(gate.open)
	r := <-other
	if r.err != nil || r.inst == nil || len(r.inst.ConfigVariables) != 2 {
		t.Fatalf("the fetch that joined: %+v, %v; want B fetched alone", r.inst, r.err)
	}
	if want := []string{"GetInstance"}; !slices.Equal(api.ops(), want) {
		t.Errorf("requests %v, want %v", api.ops(), want)
	}
}
