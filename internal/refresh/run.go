package refresh

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/lease"
	"github.com/prismcache/prismcache/internal/store"
)

// run fetches one claimed id and writes its entry.
func (p *Pool) run(c Claim) {
	ctx, stop := lease.Keep(p.runCtx, p.ws.Lease(), func(ctx context.Context) error {
		err := p.ws.Extend(ctx, c)
		if errors.Is(err, ErrLeaseLost) {
			return lease.ErrLost
		}
		return err
	})
	defer stop()
	if IsJob(c.ID) {
		p.runJob(ctx, c)
		return
	}

	// The API asked for a wait (429 with Retry-After): new work waits it
	// out too, whatever brought it forward.
	if wait := time.UnixMilli(p.notBefore.Load()).Sub(p.opts.Now()); wait > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	started := p.opts.Now()
	// The entry is read while the API answers, so that writing the answer
	// takes one round trip instead of two; if the entry changes meanwhile,
	// the write's compare-and-set sees it and reads again.
	prior := make(chan *store.State, 1)
	go func() {
		st, err := p.store.Load(ctx, c.ID)
		if err != nil {
			prior <- nil // the write reads it itself, and reports the error
			return
		}
		prior <- &st
	}()
	// Only a null instance in the answer means it is gone. An error that
	// merely says "not found" is a failure like any other: deleting on it
	// would let a misrouted request wipe entries and tombstone them for a
	// day. (The reconciler removes instances its complete listing lacks.)
	inst, err := p.fetcher.FetchInstance(ctx, c.ID)
	var doc *cache.Doc
	if err == nil && inst != nil {
		doc, err = ToDoc(inst)
		if err != nil {
			err = &graphql.Error{Op: "GetInstance", Kind: graphql.Invalid, Message: err.Error()}
		}
	}
	st := <-prior
	if err != nil {
		p.failed(ctx, c, err, started)
		return
	}
	p.apiAnswered()
	res, werr := p.write(ctx, c.ID, doc, started, st)
	res.Started = started
	if werr != nil {
		p.redisErr(werr)
		p.failed(ctx, c, werr, started)
		return
	}
	fin := context.WithoutCancel(ctx)
	rerun, derr := p.ws.Done(fin, c)
	if derr != nil && !errors.Is(derr, ErrLeaseLost) {
		p.log.Warn("finish work", "id", c.ID, "err", derr)
		p.redisErr(derr)
	}
	if rerun {
		p.Wake()
	}
	p.log.Info("fetch", "id", c.ID, "outcome", outcome(res), "took", p.opts.Now().Sub(started).Round(time.Millisecond),
		"deployed_version", deployedVersion(doc), "rev", res.Rev, "skip", res.Skip, "rerun", rerun)
	p.publish(fin, res)
}

// apiAnswered notes a successful API call: if calls had failed before, the
// work that failed meanwhile is brought forward.
func (p *Pool) apiAnswered() {
	if p.apiFailed.Swap(false) {
		go p.pullIn()
	}
}

// write applies the fetched document with a compare-and-set, deciding again
// whenever another write got in first; prior, when not nil, is the entry as
// read during the fetch.
func (p *Pool) write(ctx context.Context, id string, doc *cache.Doc, started time.Time, prior *store.State) (Result, error) {
	res := Result{ID: id, OK: true}
	up, err := p.store.Update(ctx, id, store.UpdateOptions{Prior: prior}, func(st store.State) *store.Mutation {
		m, skip := DecideWrite(st, doc, started, p.opts.Now())
		res.Skip = skip
		return m
	})
	switch {
	case err != nil:
		return res, err
	case up.Tombstoned:
		res.Skip = SkipDeleted
	case up.Mutation != nil:
		res.Rev, res.Change, res.Skip = up.Rev, up.Mutation.Kind, ""
		if up.IndexErr != nil {
			p.log.Warn("entry written; its lookup rows were not", "id", id, "err", up.IndexErr)
		}
	}
	return res, nil
}

// failed handles a run that did not complete. Acknowledged work is never
// given up on: the id is queued again with backoff, for as long as it
// fails, unless the work became moot — the instance was deleted meanwhile,
// or the API says it does not exist and the cache holds nothing of it.
// From the FailedAfter-th failure on, the entry says fetch_failed and why.
func (p *Pool) failed(ctx context.Context, c Claim, err error, started time.Time) {
	fin := context.WithoutCancel(ctx)
	switch {
	case p.runCtx.Err() != nil:
		if rerr := p.ws.Release(fin, c); rerr != nil && !errors.Is(rerr, ErrLeaseLost) {
			p.log.Warn("release work", "id", c.ID, "err", rerr)
		}
		return
	case lease.Lost(ctx):
		// Another worker may hold the id now: leave it to that one.
		p.log.Warn("claim lost; run abandoned", "id", c.ID, "err", context.Cause(ctx))
		return
	}
	var gerr *graphql.Error
	apiErr := errors.As(err, &gerr) // else Redis failed
	attempts := c.Attempts + 1
	kind := graphql.KindOf(err)
	notFound := apiErr && kind == graphql.NotFound
	if apiErr && !notFound {
		p.apiFailed.Store(true)
		if ra := graphql.RetryAfter(err); ra > 0 {
			until := p.opts.Now().Add(ra).UnixMilli()
			for cur := p.notBefore.Load(); until > cur && !p.notBefore.CompareAndSwap(cur, until); cur = p.notBefore.Load() {
			}
		}
	}
	res := Result{ID: c.ID, Error: err.Error(), Started: started, Attempts: attempts}
	moot := ""
	if !IsJob(c.ID) && attempts >= p.opts.FailedAfter {
		up, uerr := p.store.Update(fin, c.ID, store.UpdateOptions{}, func(st store.State) *store.Mutation {
			switch {
			case st.Tombstoned:
				moot = "the instance was deleted meanwhile"
				return nil
			case notFound && !st.Exists:
				moot = "the API says the instance does not exist, and it is not cached"
				return nil
			}
			moot = ""
			return DecideFailure(st, err.Error(), p.opts.Now())
		})
		switch {
		case uerr != nil:
			p.log.Warn("mark the entry failed", "id", c.ID, "err", uerr)
			p.redisErr(uerr)
		case up.Mutation != nil:
			res.Rev, res.Change = up.Rev, up.Mutation.Kind
			p.log.Error("fetch keeps failing; entry marked fetch_failed", "id", c.ID, "attempts", attempts, "err", err)
		}
	}
	if moot != "" {
		if derr := p.ws.Drop(fin, c); derr != nil && !errors.Is(derr, ErrLeaseLost) {
			p.log.Warn("finish work", "id", c.ID, "err", derr)
		}
		res.Dropped = true
		p.log.Warn("fetch", "id", c.ID, "outcome", "dropped", "why", moot, "attempts", attempts, "err", err)
		p.publish(fin, res)
		return
	}
	delay := p.opts.Retry.Delay(attempts, graphql.RetryAfter(err))
	res.Retrying = true
	if rerr := p.ws.Retry(fin, c, p.opts.Now().Add(delay)); rerr != nil && !errors.Is(rerr, ErrLeaseLost) {
		p.log.Warn("requeue work", "id", c.ID, "err", rerr)
		p.redisErr(rerr)
	}
	level := slog.LevelWarn
	if apiErr && (kind == graphql.Unauthorized || kind == graphql.Forbidden || kind == graphql.Invalid) {
		// Retrying cannot fix these by itself: someone must (a token, an
		// upgrade). Loud, but retried all the same: tokens get fixed.
		level = slog.LevelError
	}
	p.log.Log(fin, level, "fetch", "id", c.ID, "outcome", "retry", "attempt", attempts, "retry_in", delay.Round(time.Millisecond),
		"error_kind", errorKind(err, apiErr), "err", err)
	p.publish(fin, res)
}

// errorKind names a failure for logs and metrics: the API's error kinds, or
// "redis".
func errorKind(err error, apiErr bool) string {
	if !apiErr {
		return "redis"
	}
	return graphql.KindOf(err).String()
}

func outcome(r Result) string {
	switch {
	case r.Change != "":
		return string(r.Change)
	case r.Skip != "":
		return "skipped"
	}
	return "ok"
}

func deployedVersion(d *cache.Doc) int {
	if d == nil {
		return 0
	}
	return d.DeployedVersion
}
