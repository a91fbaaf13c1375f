package prismaticsim

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/prismcache/prismcache/internal/prismaticsim/gqlexec"
)

// resolveInstance is Query.instance(id:): null (no error) for an unknown,
// deleted or malformed id, which is the safest reading of the undocumented
// real behaviour (api-facts §5 q8).
func (s *Sim) resolveInstance(_ context.Context, p gqlexec.Params) (any, error) {
	id, _ := p.Args.String("id")
	s.stats.add(func(st *Stats) {
		st.InstanceFetches++
		st.InstanceFetchesByID[id]++
	})
	in := s.m.byID[canonicalID("Instance", id)]
	if in == nil {
		return nil, nil
	}
	return in, nil
}

// resolveInstances is Query.instances(...) with every filter of the schema.
func (s *Sim) resolveInstances(_ context.Context, p gqlexec.Params) (any, error) {
	a := p.Args
	var out []*instance
	for _, in := range s.m.instances {
		if matchInstance(in, a) {
			out = append(out, in)
		}
	}
	order, err := instanceOrder(a)
	if err != nil {
		return nil, err
	}
	return paginate(sortInstances(out, order), a, "instances")
}

func matchInstance(in *instance, a gqlexec.Args) bool {
	if v, ok := a.Bool("isSystem"); ok && in.isSystem != v {
		return false
	}
	if v, ok := a.Bool("enabled"); ok && in.enabled != v {
		return false
	}
	if v, ok := a.Bool("needsDeploy"); ok && in.needsDeploy != v {
		return false
	}
	if v, ok := a.String("customer"); ok && canonicalID("Customer", v) != in.customer.id {
		return false
	}
	if v, ok := a.String("integration"); ok && canonicalID("Integration", v) != in.integration.id {
		return false
	}
	if v, ok := a.String("customer_ExternalId"); ok && (in.customer.externalID == nil || *in.customer.externalID != v) {
		return false
	}
	if v, ok := a.String("name"); ok && in.name != v {
		return false
	}
	if v, ok := a.String("name_Icontains"); ok && !strings.Contains(strings.ToLower(in.name), strings.ToLower(v)) {
		return false
	}
	return true
}

type orderKey struct {
	field string
	desc  bool
}

// instanceOrder reads sortBy: a list of {field, direction} (a single object
// has already been wrapped into a list).
func instanceOrder(a gqlexec.Args) ([]orderKey, error) {
	list, _ := a.List("sortBy")
	var out []orderKey
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			continue // a null item
		}
		field, _ := m["field"].(string)
		dir, _ := m["direction"].(string)
		if _, ok := instanceSortFields[field]; !ok {
			return nil, fmt.Errorf("cannot sort instances by %q", field)
		}
		out = append(out, orderKey{field: field, desc: dir == "DESC"})
	}
	return out, nil
}

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

// resolveCustomerConfigVariable is Query.customerConfigVariable(id:): null
// for an unknown or malformed id.
func (s *Sim) resolveCustomerConfigVariable(_ context.Context, p gqlexec.Params) (any, error) {
	id, _ := p.Args.String("id")
	if c := s.m.ccvByID(canonicalID("CustomerConfigVariable", id)); c != nil {
		return c, nil
	}
	return nil, nil
}

// resolveCustomerConfigVariables is Query.customerConfigVariables(...) with
// its filters id_In, key, customer, isTest and scopedConfigVariable.
func (s *Sim) resolveCustomerConfigVariables(_ context.Context, p gqlexec.Params) (any, error) {
	a := p.Args
	var ids []string
	idIn, filterIDs := a.List("id_In")
	for _, v := range idIn {
		if id, ok := v.(string); ok {
			ids = append(ids, canonicalID("CustomerConfigVariable", id))
		}
	}
	var out []*customerConn
	for _, c := range s.m.ccvs {
		if filterIDs && !slices.Contains(ids, c.id) {
			continue
		}
		if v, ok := a.String("key"); ok && c.key != v {
			continue
		}
		if v, ok := a.String("customer"); ok && canonicalID("Customer", v) != c.customer.id {
			continue
		}
		if v, ok := a.Bool("isTest"); ok && c.isTest != v {
			continue
		}
		if v, ok := a.String("scopedConfigVariable"); ok && (c.scoped == nil || canonicalID("ScopedConfigVariable", v) != c.scoped.id) {
			continue
		}
		out = append(out, c)
	}
	return paginate(out, a, "customerConfigVariables")
}
