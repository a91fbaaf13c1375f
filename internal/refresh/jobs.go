package refresh

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/webhook"
)

// Besides instance ids, the work set holds jobs that expand into instance
// ids when run: finding the instances behind a connection needs the index or
// the API, and doing it in a worker keeps the webhook's answer fast and the
// event durable. A job's member starts with "@", which no instance id does.
const (
	jobPrefix               = "@"
	connectionJobPrefix     = "@conn:"
	customerJobPrefix       = "@customer:"
	customerDeleteJobPrefix = "@customer-delete:"
)

// ConnectionJob is the work-set member that finds and queues the instances
// using connection id (a global id of an InstanceConfigVariable,
// CustomerConfigVariable or ScopedConfigVariable).
func ConnectionJob(id string) string { return connectionJobPrefix + id }

// CustomerJob is the work-set member that queues every instance of the
// customer with global id id.
func CustomerJob(id string) string { return customerJobPrefix + id }

// CustomerDeleteJob is the work-set member that removes the cached
// instances of the customer with external id externalID (and, when set,
// global id customerID, which every entry removed must carry).
func CustomerDeleteJob(customerID, externalID string) string {
	return customerDeleteJobPrefix + customerID + ":" + externalID
}

// IsJob reports whether a work-set member is a job rather than an instance.
func IsJob(member string) bool { return strings.HasPrefix(member, jobPrefix) }

// Resolver finds the instances a job stands for. Listings of instances
// come in pages that carry each instance's document (page is called with
// each); ids found otherwise (the index) are returned, to be fetched.
type Resolver interface {
	// ConnectionInstances finds the instances that use the connection id:
	// page is called with every page of them a listing carries; the ids it
	// returns are those found without their documents. None (and no
	// error) when it resolves to nothing.
	ConnectionInstances(ctx context.Context, id string, page func(graphql.ListPage) error) ([]string, error)
	// CustomerInstances calls page with every page of the customer's
	// instances.
	CustomerInstances(ctx context.Context, customerID string, page func(graphql.ListPage) error) error
}

// Lister is the part of the GraphQL client the resolver needs.
type Lister interface {
	ConnectionInstances(ctx context.Context, id string, fn func(graphql.ListPage) error) (bool, error)
	ScopedConnectionInstances(ctx context.Context, id string, fn func(graphql.ListPage) error) error
	CustomerInstances(ctx context.Context, customerID string, fn func(graphql.ListPage) error) error
}

// IndexResolver resolves connection ids: an InstanceConfigVariable through
// the index the store keeps of the instances it holds, a customer or scoped
// connection by listing, with their documents, the instances that use it.
type IndexResolver struct {
	Store *store.Store
	API   Lister
}

// ConnectionInstances implements Resolver.
func (r IndexResolver) ConnectionInstances(ctx context.Context, id string, page func(graphql.ListPage) error) ([]string, error) {
	typ, _, ok := webhook.DecodeGlobalID(id)
	if !ok {
		return nil, nil
	}
	switch typ {
	case webhook.TypeInstanceConfigVariable:
		inst, err := r.Store.InstanceForConfigVariable(ctx, id)
		if err != nil || inst == "" {
			return nil, err
		}
		return []string{inst}, nil
	case webhook.TypeCustomerConfigVariable:
		_, err := r.API.ConnectionInstances(ctx, id, page)
		return nil, err
	case webhook.TypeScopedConfigVariable:
		return nil, r.API.ScopedConnectionInstances(ctx, id, page)
	}
	return nil, nil
}

// CustomerInstances implements Resolver.
func (r IndexResolver) CustomerInstances(ctx context.Context, customerID string, page func(graphql.ListPage) error) error {
	return r.API.CustomerInstances(ctx, customerID, page)
}

// runJob expands a job into instances: those a listing shows in full are
// written from their page, the others are queued for a fetch.
func (p *Pool) runJob(ctx context.Context, c Claim) {
	started := p.opts.Now()
	if rest, ok := strings.CutPrefix(c.ID, customerDeleteJobPrefix); ok {
		p.runCustomerDelete(ctx, c, rest, started)
		return
	}
	connID, isConn := strings.CutPrefix(c.ID, connectionJobPrefix)
	custID, isCust := strings.CutPrefix(c.ID, customerJobPrefix)
	if p.resolver == nil || (!isConn && !isCust) {
		p.log.Warn("unknown job in the work set; dropped", "job", c.ID)
		_ = p.ws.Drop(context.WithoutCancel(ctx), c)
		return
	}
	w := &pageWriter{store: p.store, now: p.opts.Now, log: p.log}
	var (
		fetch   []string
		listed  int
		written int
		what    string
		err     error
	)
	onPage := func(page graphql.ListPage) error {
		out, err := w.write(ctx, page)
		listed += len(page.Instances)
		written += out.Written
		if err != nil {
			p.redisErr(err)
			return err
		}
		for _, pt := range out.Partial {
			fetch = append(fetch, pt.Inst.ID)
		}
		return nil
	}
	if isConn {
		what = "connection " + connID
		var ids []string
		ids, err = p.resolver.ConnectionInstances(ctx, connID, onPage)
		fetch = append(fetch, ids...)
	} else {
		what = "customer " + custID
		err = p.resolver.CustomerInstances(ctx, custID, onPage)
	}
	skipped := 0
	if err == nil && len(fetch) > 0 {
		var due []string
		due, err = p.fetchedSince(ctx, fetch, c.Since)
		if err == nil {
			skipped = len(fetch) - len(due)
			if len(due) > 0 {
				_, err = (Executor{Store: p.store, Work: p.ws}).Execute(ctx, webhook.FetchPlan(due...), nil, Once{})
			}
		}
	}
	if err != nil {
		p.failed(ctx, c, fmt.Errorf("resolve %s: %w", what, err), started)
		return
	}
	fin := context.WithoutCancel(ctx)
	if _, derr := p.ws.Done(fin, c); derr != nil && !errors.Is(derr, ErrLeaseLost) {
		p.log.Warn("finish work", "job", c.ID, "err", derr)
	}
	res := Result{ID: c.ID, OK: true, Started: started}
	if listed+len(fetch) == 0 {
		res.Skip = what + " resolves to no instance"
	}
	p.log.Info("resolve", "job", what, "listed", listed, "written", written, "to_fetch", len(fetch)-skipped,
		"already_fresh", skipped, "took", p.opts.Now().Sub(started).Round(time.Millisecond))
	p.publish(fin, res)
}

var _ Lister = (*graphql.Client)(nil)

// sinceMargin absorbs clock differences between replicas when comparing a
// fetch's start with a request's time (both the daemon's clocks).
const sinceMargin = time.Second

// fetchedSince returns the ids among ids that still need a fetch for a
// request made at since: those whose entry was not fetched after it. A
// fetch that began after the request saw its change already; queuing the
// instance again would only spend API quota (a burst of connection events
// would otherwise refetch every instance behind the connection once more).
func (p *Pool) fetchedSince(ctx context.Context, ids []string, since time.Time) ([]string, error) {
	if since.IsZero() {
		return ids, nil
	}
	states, err := p.store.Peek(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read fetch times: %w", err)
	}
	var need []string
	for i, id := range ids {
		if !states[i].Entry.FetchedAt.After(since.Add(sinceMargin)) {
			need = append(need, id)
		}
	}
	return need, nil
}

// runCustomerDelete removes the cached instances of a deleted customer: the
// ones the index lists for its external id whose entry names that customer.
func (p *Pool) runCustomerDelete(ctx context.Context, c Claim, arg string, started time.Time) {
	customerID, externalID, _ := strings.Cut(arg, ":")
	entries, err := p.store.ByCustomer(ctx, externalID)
	removed := 0
	for _, e := range entries {
		if err != nil {
			break
		}
		if customerID != "" && e.Doc.Customer.ID != customerID {
			continue
		}
		var up store.Updated
		up, err = p.store.Update(ctx, e.Doc.ID, store.UpdateOptions{}, func(st store.State) *store.Mutation {
			m, _ := webhook.DecideEntry(webhook.ActionDelete, started, st)
			return m
		})
		if up.Mutation != nil {
			removed++
		}
	}
	if err != nil {
		p.redisErr(err)
		p.failed(ctx, c, fmt.Errorf("remove the instances of customer %s: %w", externalID, err), started)
		return
	}
	fin := context.WithoutCancel(ctx)
	if _, derr := p.ws.Done(fin, c); derr != nil && !errors.Is(derr, ErrLeaseLost) {
		p.log.Warn("finish work", "job", c.ID, "err", derr)
	}
	p.log.Info("customer deleted", "customer", externalID, "removed", removed, "took", p.opts.Now().Sub(started).Round(time.Millisecond))
	p.publish(fin, Result{ID: c.ID, OK: true, Started: started, Skip: fmt.Sprintf("removed %d instances", removed)})
}
