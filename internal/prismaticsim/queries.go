package prismaticsim

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prismcache/prismcache/internal/prismaticsim/gqlserver"
)

// Instance is Query.instance(id:): null (no error) for an unknown, deleted
// or malformed id, which is the safest reading of the undocumented real
// behaviour (api-facts §5 q8).
func (r queryResolver) Instance(_ context.Context, id string) (*gqlserver.Instance, error) {
	r.s.stats.add(func(st *Stats) {
		st.InstanceFetches++
		st.InstanceFetchesByID[id]++
	})
	if in := r.s.m.byID[canonicalID("Instance", id)]; in != nil {
		return gqlInstance(in), nil
	}
	return nil, nil
}

// Instances is Query.instances(...) with every filter of the schema;
// compatibility is accepted and ignored.
func (r queryResolver) Instances(_ context.Context, isSystem *bool, _ *int, before, after *string, first, last, offset *int,
	name, nameIcontains, customer, customerExternalID, integration *string, enabled, needsDeploy *bool,
	sortBy []*gqlserver.InstanceOrder,
) (*gqlserver.InstanceConnection, error) {
	match := func(in *instance) bool {
		switch {
		case isSystem != nil && in.isSystem != *isSystem,
			enabled != nil && in.enabled != *enabled,
			needsDeploy != nil && in.needsDeploy != *needsDeploy,
			customer != nil && canonicalID("Customer", *customer) != in.customer.id,
			integration != nil && canonicalID("Integration", *integration) != in.integration.id,
			customerExternalID != nil && (in.customer.externalID == nil || *in.customer.externalID != *customerExternalID),
			name != nil && in.name != *name,
			nameIcontains != nil && !strings.Contains(strings.ToLower(in.name), strings.ToLower(*nameIcontains)):
			return false
		}
		return true
	}
	var order []orderKey
	for _, o := range sortBy {
		if o != nil { // a null item
			order = append(order, orderKey{field: string(o.Field), desc: o.Direction == gqlserver.OrderDirectionDesc})
		}
	}
	key := listingKey([]string{optKey(isSystem), optKey(enabled), optKey(needsDeploy), optKey(customer), optKey(integration),
		optKey(customerExternalID), optKey(name), optKey(nameIcontains)}, order)
	out := r.s.lists.get(r.s.m.gen, key, func() []*instance {
		var out []*instance
		for _, in := range r.s.m.instances {
			if match(in) {
				out = append(out, in)
			}
		}
		return sortInstances(out, order)
	})
	return instancePage(out, pageArgs{first: first, last: last, offset: offset, after: after, before: before})
}

// listings remembers the instances that a filter and an order select,
// sorted, until the model changes (model.gen): a reconcile pass pages
// through one listing 100 instances a request, and filtering and sorting a
// million instances again for every page would make a pass quadratic. The
// slices it hands out are shared: read them, never change them. Its zero
// value is ready; it is safe for concurrent use (requests hold only the
// model's read lock).
type listings struct {
	mu    sync.Mutex
	gen   uint64
	byKey map[string][]*instance
}

// maxListings bounds how many listings are remembered at once.
const maxListings = 16

// get returns the listing of key as of the model's generation gen, made by
// build when it is not remembered.
func (l *listings) get(gen uint64, key string, build func() []*instance) []*instance {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byKey == nil || l.gen != gen {
		l.byKey, l.gen = map[string][]*instance{}, gen
	}
	if out, ok := l.byKey[key]; ok {
		return out
	}
	out := build()
	if len(l.byKey) >= maxListings {
		clear(l.byKey)
	}
	l.byKey[key] = out
	return out
}

// listingKey names a listing by its filters (optKey each) and its order.
func listingKey(filters []string, order []orderKey) string {
	var b strings.Builder
	for _, f := range filters {
		b.WriteString(f)
		b.WriteByte(',')
	}
	for _, o := range order {
		fmt.Fprintf(&b, "%s %v,", o.field, o.desc)
	}
	return b.String()
}

// optKey is an optional argument in a listing's key: "-" when absent.
func optKey[T any](p *T) string {
	if p == nil {
		return "-"
	}
	return strconv.Quote(fmt.Sprint(*p))
}

type orderKey struct {
	field string
	desc  bool
}

// instanceSortFields compares instances by each InstanceOrderField; the
// enum's values are all here, and gqlgen refuses any other.
var instanceSortFields = map[string]func(a, b *instance) int{
	"CATEGORY":         func(a, b *instance) int { return cmp.Compare(a.integration.category, b.integration.category) },
	"CREATED_AT":       func(a, b *instance) int { return a.createdAt.Compare(b.createdAt) },
	"CUSTOMER":         func(a, b *instance) int { return cmp.Compare(a.customer.name, b.customer.name) },
	"DESCRIPTION":      func(a, b *instance) int { return cmp.Compare(a.description, b.description) },
	"ENABLED":          func(a, b *instance) int { return cmpBool(a.enabled, b.enabled) },
	"INSTANCE_TYPE":    func(a, b *instance) int { return cmp.Compare(a.instanceType, b.instanceType) },
	"INTEGRATION":      func(a, b *instance) int { return cmp.Compare(a.integration.name, b.integration.name) },
	"LAST_EXECUTED_AT": func(a, b *instance) int { return a.lastExecutedAt.Compare(b.lastExecutedAt) },
	"NAME":             func(a, b *instance) int { return cmp.Compare(a.name, b.name) },
	"UPDATED_AT":       func(a, b *instance) int { return a.updatedAt.Compare(b.updatedAt) },
	"VERSION":          func(a, b *instance) int { return cmp.Compare(a.deployedVersion, b.deployedVersion) },
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case b:
		return -1
	}
	return 1
}

// sortInstances returns a sorted copy: by the given keys, then CREATED_AT
// ascending, then id, so every order is total and stable across pages.
func sortInstances(ins []*instance, keys []orderKey) []*instance {
	out := slices.Clone(ins)
	slices.SortStableFunc(out, func(a, b *instance) int {
		for _, k := range keys {
			c := instanceSortFields[k.field](a, b)
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		if c := a.createdAt.Compare(b.createdAt); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	return out
}

// CustomerConfigVariable is Query.customerConfigVariable(id:): null for an
// unknown or malformed id.
func (r queryResolver) CustomerConfigVariable(_ context.Context, id string) (*gqlserver.CustomerConfigVariable, error) {
	return gqlCustomerConn(r.s.m.ccvByID(canonicalID("CustomerConfigVariable", id))), nil
}

// CustomerConfigVariables is Query.customerConfigVariables(...) with its
// filters id_In, key, customer, isTest and scopedConfigVariable.
func (r queryResolver) CustomerConfigVariables(_ context.Context, before, after *string, first, last, offset *int,
	idIn []*string, key, customer *string, isTest *bool, scopedConfigVariable *string,
) (*gqlserver.CustomerConfigVariableConnection, error) {
	var ids []string
	for _, id := range idIn {
		if id != nil {
			ids = append(ids, canonicalID("CustomerConfigVariable", *id))
		}
	}
	var out []*customerConn
	for _, c := range r.s.m.ccvs {
		switch {
		case idIn != nil && !slices.Contains(ids, c.id),
			key != nil && c.key != *key,
			customer != nil && canonicalID("Customer", *customer) != c.customer.id,
			isTest != nil && c.isTest != *isTest,
			scopedConfigVariable != nil && (c.scoped == nil || canonicalID("ScopedConfigVariable", *scopedConfigVariable) != c.scoped.id):
			continue
		}
		out = append(out, c)
	}
	return customerConnPage(out, pageArgs{first: first, last: last, offset: offset, after: after, before: before})
}
