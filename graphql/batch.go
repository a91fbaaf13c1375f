package graphql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Fetches in batches. Under a storm — many different instances due at once,
// a new version deployed to every customer, say — the workers' fetches
// queue at the rate limiter, one request each. Instead, the first fetch to
// wait for the limiter opens a batch, and every fetch that starts while it
// waits joins it; when the limiter lets the batch go, one GetInstances
// request carries all of them (up to BatchSize), each instance selected
// with the same fragment as GetInstance. Nothing waits for a batch to fill:
// a fetch that finds the limiter free goes at once, alone, as before, so
// batches form only when requests are the bottleneck. docs/benchmarks.md
// has the figures that decided it.
//
// Each fetch still gets the instance as the API showed it in a request
// sent after the fetch began. An instance with more config variables than
// the page carries goes on with its own config pages; and whenever a batch
// cannot be used as a whole (the API refused it, or answered it with an
// error for any instance in it), every fetch in it is made again alone, so
// one instance's fault is reported for that instance only.

// BatchSize is the most instances one GetInstances request carries.
const BatchSize = 10

// batcher holds the batch that is open for fetches to join. The zero value
// is ready; it is safe for concurrent use.
type batcher struct {
	mu   sync.Mutex
	open *batch
}

// batch is a set of fetches sent in one request.
type batch struct {
	ids  []string
	done chan struct{}
	// alone, set before done closes, tells the fetches that joined to go
	// on their own: the batch was not sent.
	alone   bool
	results map[string]batchResult
}

type batchResult struct {
	inst *Instance
	err  error
}

// join adds id to the open batch, or opens one with it; leader reports
// which.
func (b *batcher) join(id string) (bt *batch, leader bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if o := b.open; o != nil && len(o.ids) < BatchSize {
		if !slices.Contains(o.ids, id) {
			o.ids = append(o.ids, id)
		}
		return o, false
	}
	bt = &batch{ids: []string{id}, done: make(chan struct{})}
	b.open = bt
	return bt, true
}

// seal closes bt to newcomers and returns its ids.
func (b *batcher) seal(bt *batch) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open == bt {
		b.open = nil
	}
	return slices.Clone(bt.ids)
}

// fetchBatched is FetchInstance through a batch: the leader waits for the
// limiter while others join, then fetches them all.
func (c *Client) fetchBatched(ctx context.Context, id string) (*Instance, error) {
	bt, leader := c.batches.join(id)
	if !leader {
		select {
		case <-bt.done:
		case <-ctx.Done():
			return nil, &Error{Op: "GetInstances", Kind: Transient, Message: "waiting for the batch: " + ctx.Err().Error(), Err: ctx.Err()}
		}
		if bt.alone {
			return c.fetchAlone(ctx, id)
		}
		r := bt.results[id]
		return r.inst, r.err
	}
	err := c.waitTurn(ctx, "GetInstances")
	ids := c.batches.seal(bt)
	if err != nil {
		bt.alone = true // the others need not share this one's failure
		close(bt.done)
		return nil, err
	}
	ctx = withTurn(ctx)
	if len(ids) == 1 {
		close(bt.done)
		return c.fetchAlone(ctx, id)
	}
	results, err := c.fetchMany(ctx, ids)
	if err != nil {
		// Made again alone when the batch's answer cannot be used, or when
		// this fetch was cancelled (its worker stops): the others need not
		// share that.
		bt.alone = errors.Is(err, errUseAlone) || ctx.Err() != nil
		if !bt.alone {
			bt.results = make(map[string]batchResult, len(ids))
			for _, i := range ids {
				bt.results[i] = batchResult{err: err}
			}
		}
		close(bt.done)
		if errors.Is(err, errUseAlone) {
			return c.fetchAlone(ctx, id)
		}
		return nil, err
	}
	bt.results = results
	close(bt.done)
	r := results[id]
	return r.inst, r.err
}

// errUseAlone: the batch's answer cannot be used as a whole; each fetch in
// it is made again on its own.
var errUseAlone = errors.New("fetch the instances one by one")

// fetchMany fetches ids (2 to BatchSize of them) in one GetInstances
// request, then the further config pages of any instance that has them. A
// transport failure, a 5xx or a 429 is every fetch's failure (made again
// alone, each would only fail the same way, N times over); anything else
// wrong with the answer is errUseAlone.
func (c *Client) fetchMany(ctx context.Context, ids []string) (map[string]batchResult, error) {
	var v [BatchSize]string
	var use [BatchSize]bool
	for i, id := range ids {
		v[i], use[i] = id, true
	}
	resp, err := GetInstances(ctx, c, c.pages.get(), v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9],
		use[1], use[2], use[3], use[4], use[5], use[6], use[7], use[8], use[9])
	switch k := KindOf(err); {
	case err == nil:
	case k == Transient || k == RateLimited || k == Unauthorized:
		return nil, err
	default:
		if k == TooLarge {
			c.pages.refused(c.pages.get())
		}
		return nil, errUseAlone
	}
	got := []*InstanceFields{resp.I0, resp.I1, resp.I2, resp.I3, resp.I4, resp.I5, resp.I6, resp.I7, resp.I8, resp.I9}
	out := make(map[string]batchResult, len(ids))
	for i, id := range ids {
		f := got[i]
		if f == nil {
			out[id] = batchResult{} // it does not exist
			continue
		}
		if f.Id != id {
			return nil, errUseAlone
		}
		inst, err := newInstance("GetInstances", f)
		if err != nil {
			out[id] = batchResult{err: err}
			continue
		}
		if !inst.Partial {
			out[id] = batchResult{inst: inst}
			continue
		}
		inst.Partial = false
		more, changed, err := c.fetchRest(ctx, inst, f.ConfigVariables.PageInfo)
		if changed {
			more, err = c.fetchAlone(ctx, id)
		}
		if err != nil {
			err = fmt.Errorf("instance %s: %w", id, err)
		}
		out[id] = batchResult{inst: more, err: err}
	}
	return out, nil
}
