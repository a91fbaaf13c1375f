package prismaticsim

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prismcache/prismcache/internal/prismaticsim/gqlexec"
)

// Resolvers for every object type and field of schema.graphql. They run under
// Sim.mu's read lock (the /api handler holds it for the whole request) and
// read the model directly.

// dateTimeFormat renders DateTime as Prismatic does:
// 2022-02-28T21:04:42.282103+00:00.
const dateTimeFormat = "2006-01-02T15:04:05.000000-07:00"

var scalars = map[string]gqlexec.Serializer{
	"DateTime": func(v any) (any, error) {
		t, ok := v.(time.Time)
		if !ok {
			return nil, fmt.Errorf("DateTime: got %T", v)
		}
		return t.UTC().Format(dateTimeFormat), nil
	},
	// JSONString values are strings holding JSON text.
	"JSONString": func(v any) (any, error) {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("JSONString: got %T", v)
		}
		return s, nil
	},
}

// get adapts a plain accessor of a source of type T.
func get[T any](f func(T) any) gqlexec.Resolver {
	return func(_ context.Context, p gqlexec.Params) (any, error) {
		return f(p.Source.(T)), nil
	}
}

// withArgs adapts an accessor that reads arguments and may fail.
func withArgs[T any](f func(T, gqlexec.Args) (any, error)) gqlexec.Resolver {
	return func(_ context.Context, p gqlexec.Params) (any, error) {
		return f(p.Source.(T), p.Args)
	}
}

// optTime is null for the zero time.
func optTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// optStr is null for a nil pointer.
func optStr(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// orNull is null for an empty string.
func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Sim) resolvers() gqlexec.Resolvers {
	conn := map[string]gqlexec.Resolver{
		"nodes":      get(func(p *page) any { return p.nodes }),
		"pageInfo":   get(func(p *page) any { return p.info }),
		"totalCount": get(func(p *page) any { return p.total }),
	}
	return gqlexec.Resolvers{
		"Query": {
			"instance":                s.resolveInstance,
			"instances":               s.resolveInstances,
			"customerConfigVariable":  s.resolveCustomerConfigVariable,
			"customerConfigVariables": s.resolveCustomerConfigVariables,
		},
		"PageInfo": {
			"startCursor":     get(func(i pageInfo) any { return optStr(i.startCursor) }),
			"endCursor":       get(func(i pageInfo) any { return optStr(i.endCursor) }),
			"hasNextPage":     get(func(i pageInfo) any { return i.hasNext }),
			"hasPreviousPage": get(func(i pageInfo) any { return i.hasPrev }),
		},
		"InstanceConnection":               conn,
		"InstanceConfigVariableConnection": conn,
		"InstanceFlowConfigConnection":     conn,
		"ExpressionConnection":             conn,
		"CustomerConfigVariableConnection": conn,
		"Instance":                         instanceResolvers(),
		"InstanceConfigVariable":           configVarResolvers(),
		"RequiredConfigVariable": {
			"id":             get(func(r *requiredVar) any { return r.id }),
			"key":            get(func(r *requiredVar) any { return r.key }),
			"dataType":       get(func(r *requiredVar) any { return r.dataType }),
			"collectionType": get(func(r *requiredVar) any { return orNull(r.collectionType) }),
			"defaultValue":   get(func(r *requiredVar) any { return optStr(r.defaultValue) }),
			"description":    get(func(r *requiredVar) any { return r.description }),
			"connection":     get(func(r *requiredVar) any { return r.connection }),
		},
		"Connection": {
			"id":        get(func(c *connectionDef) any { return c.id }),
			"key":       get(func(c *connectionDef) any { return c.key }),
			"label":     get(func(c *connectionDef) any { return c.label }),
			"component": get(func(c *connectionDef) any { return c.component }),
		},
		"Component": {
			"id":    get(func(c *component) any { return c.id }),
			"key":   get(func(c *component) any { return c.key }),
			"label": get(func(c *component) any { return c.label }),
		},
		"Expression": {
			"id":       get(func(e *expression) any { return e.id }),
			"name":     get(func(e *expression) any { return e.name }),
			"type":     get(func(*expression) any { return "VALUE" }),
			"value":    get(func(e *expression) any { return e.value }),
			"meta":     get(func(e *expression) any { return optStr(e.meta) }),
			"hasValue": get(func(e *expression) any { return e.value != "" }),
		},
		"InstanceFlowConfig": {
			"id":             get(func(f *flowConfig) any { return f.id }),
			"flow":           get(func(f *flowConfig) any { return f.flow }),
			"apiKeys":        get(func(f *flowConfig) any { return f.apiKeys }),
			"webhookUrl":     get(func(f *flowConfig) any { return f.webhookURL }),
			"inFailedState":  get(func(f *flowConfig) any { return f.inFailedState }),
			"lastExecutedAt": get(func(f *flowConfig) any { return optTime(f.lastExecutedAt) }),
		},
		"IntegrationFlow": {
			"id":        get(func(f *flowDef) any { return f.id }),
			"name":      get(func(f *flowDef) any { return f.name }),
			"stableKey": get(func(f *flowDef) any { return f.stableKey }),
		},
		"Customer": {
			"id":          get(func(c *customer) any { return c.id }),
			"name":        get(func(c *customer) any { return c.name }),
			"externalId":  get(func(c *customer) any { return optStr(c.externalID) }),
			"description": get(func(c *customer) any { return c.description }),
			"labels":      get(func(c *customer) any { return c.labels }),
		},
		"Integration": {
			"id":            get(func(i *integration) any { return i.id }),
			"name":          get(func(i *integration) any { return i.name }),
			"versionNumber": get(func(i *integration) any { return i.versionNumber }),
			"category":      get(func(i *integration) any { return i.category }),
			"createdAt":     get(func(i *integration) any { return i.createdAt }),
		},
		"CustomerConfigVariable": customerConnResolvers(),
		"ScopedConfigVariable":   scopedResolvers(),
	}
}

func instanceResolvers() map[string]gqlexec.Resolver {
	return map[string]gqlexec.Resolver{
		"id":              get(func(in *instance) any { return in.id }),
		"name":            get(func(in *instance) any { return in.name }),
		"description":     get(func(in *instance) any { return in.description }),
		"enabled":         get(func(in *instance) any { return in.enabled }),
		"deployedVersion": get(func(in *instance) any { return in.deployedVersion }),
		"needsDeploy":     get(func(in *instance) any { return in.needsDeploy }),
		"lastDeployedAt":  get(func(in *instance) any { return optTime(in.lastDeployedAt) }),
		"lastExecutedAt":  get(func(in *instance) any { return optTime(in.lastExecutedAt) }),
		"createdAt":       get(func(in *instance) any { return in.createdAt }),
		"updatedAt":       get(func(in *instance) any { return in.updatedAt }),
		"labels":          get(func(in *instance) any { return in.labels }),
		"configState":     get(func(in *instance) any { return in.configState }),
		"inFailedState":   get(func(in *instance) any { return in.inFailedState }),
		"instanceType":    get(func(in *instance) any { return in.instanceType }),
		"designedBy":      get(func(in *instance) any { return in.designedBy }),
		"customer":        get(func(in *instance) any { return in.customer }),
		"integration":     get(func(in *instance) any { return in.integration }),
		"configVariables": withArgs(func(in *instance, a gqlexec.Args) (any, error) {
			vars := in.vars
			// The status argument is a lower-case string ("error"), while
			// statuses are returned upper-case ("ERROR").
			if st, ok := a.String("status"); ok {
				vars = nil
				for _, v := range in.vars {
					if c := v.cred(); c != nil && strings.EqualFold(c.status, st) {
						vars = append(vars, v)
					}
				}
			}
			return paginate(vars, a, "configVariables")
		}),
		"flowConfigs": withArgs(func(in *instance, a gqlexec.Args) (any, error) {
			return paginate(in.flows, a, "flowConfigs")
		}),
	}
}

func configVarResolvers() map[string]gqlexec.Resolver {
	credField := func(f func(c *credential) any) gqlexec.Resolver {
		return get(func(v *configVar) any {
			if c := v.cred(); c != nil {
				return f(c)
			}
			return nil
		})
	}
	return map[string]gqlexec.Resolver{
		"id":                      get(func(v *configVar) any { return v.id }),
		"value":                   get(func(v *configVar) any { return optStr(v.value) }),
		"status":                  credField(func(c *credential) any { return c.status }),
		"refreshAt":               credField(func(c *credential) any { return optTime(c.refreshAt) }),
		"lastSuccessfulRefreshAt": credField(func(c *credential) any { return optTime(c.lastRefresh) }),
		"requiredConfigVariable":  get(func(v *configVar) any { return v.req }),
		"meta": get(func(v *configVar) any {
			if v.req.isConnection() {
				return `{"authType":"oauth2"}`
			}
			return nil
		}),
		"authorizeUrl": get(func(v *configVar) any {
			if v.req.isConnection() {
				return "https://prismaticsim.invalid/oauth2/authorize?configVariable=" + v.id
			}
			return nil
		}),
		"customerConfigVariable": get(func(v *configVar) any { return v.shared }),
		"instance":               get(func(v *configVar) any { return v.inst }),
		"scheduleType":           get(func(v *configVar) any { return orNull(v.req.scheduleType) }),
		"timeZone":               get(func(v *configVar) any { return orNull(v.req.timeZone) }),
		"updatedAt":              get(func(v *configVar) any { return optTime(v.updatedAt) }),
		// A plain variable has no inputs; a connection backed by a customer
		// connection shows that connection's.
		"inputs": withArgs(func(v *configVar, a gqlexec.Args) (any, error) {
			var inputs []*expression
			if c := v.cred(); c != nil {
				inputs = c.inputs
			}
			return paginate(inputs, a, "inputs")
		}),
	}
}

func customerConnResolvers() map[string]gqlexec.Resolver {
	return map[string]gqlexec.Resolver{
		"id":       get(func(c *customerConn) any { return c.id }),
		"key":      get(func(c *customerConn) any { return c.key }),
		"status":   get(func(c *customerConn) any { return c.cred.status }),
		"isTest":   get(func(c *customerConn) any { return c.isTest }),
		"customer": get(func(c *customerConn) any { return c.customer }),
		"meta":     get(func(*customerConn) any { return `{"authType":"oauth2"}` }),
		"authorizeUrl": get(func(c *customerConn) any {
			return "https://prismaticsim.invalid/oauth2/authorize?customerConfigVariable=" + c.id
		}),
		"refreshAt":               get(func(c *customerConn) any { return optTime(c.cred.refreshAt) }),
		"lastSuccessfulRefreshAt": get(func(c *customerConn) any { return optTime(c.cred.lastRefresh) }),
		"lastConfiguredAt":        get(func(c *customerConn) any { return optTime(c.lastConfigured) }),
		"hasDeployedInstances":    get(func(c *customerConn) any { return anyDeployed(c.instances()) }),
		"isInUse":                 get(func(c *customerConn) any { return len(c.vars) > 0 }),
		"scopedConfigVariable":    get(func(c *customerConn) any { return c.scoped }),
		"inputs": withArgs(func(c *customerConn, a gqlexec.Args) (any, error) {
			return paginate(c.cred.inputs, a, "inputs")
		}),
		"instances": withArgs(func(c *customerConn, a gqlexec.Args) (any, error) {
			return paginate(sortInstances(c.instances(), nil), a, "instances")
		}),
	}
}

func scopedResolvers() map[string]gqlexec.Resolver {
	instancesOf := func(sv *scopedVar) []*instance {
		var out []*instance
		for _, c := range sv.ccvs {
			out = append(out, c.instances()...)
		}
		return sortInstances(out, nil)
	}
	return map[string]gqlexec.Resolver{
		"id":                   get(func(sv *scopedVar) any { return sv.id }),
		"key":                  get(func(sv *scopedVar) any { return sv.key }),
		"stableKey":            get(func(sv *scopedVar) any { return sv.stableKey }),
		"description":          get(func(sv *scopedVar) any { return sv.description }),
		"status":               get(func(sv *scopedVar) any { return sv.status }),
		"connection":           get(func(sv *scopedVar) any { return sv.connection }),
		"customer":             get(func(*scopedVar) any { return nil }), // org-scoped: no one customer
		"hasDeployedInstances": get(func(sv *scopedVar) any { return anyDeployed(instancesOf(sv)) }),
		"instances": withArgs(func(sv *scopedVar, a gqlexec.Args) (any, error) {
			return paginate(instancesOf(sv), a, "instances")
		}),
		"customerConfigVariables": withArgs(func(sv *scopedVar, a gqlexec.Args) (any, error) {
			return paginate(sv.ccvs, a, "customerConfigVariables")
		}),
	}
}

func anyDeployed(ins []*instance) bool {
	for _, in := range ins {
		if in.deployedVersion > 0 {
			return true
		}
	}
	return false
}
