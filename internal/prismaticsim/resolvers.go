package prismaticsim

import (
	"context"
	"strings"
	"time"

	"github.com/prismcache/prismcache/internal/prismaticsim/gqlserver"
)

// The GraphQL layer: package gqlserver is the server gqlgen generates from
// schema.graphql; it parses, validates and executes every query and answers
// introspection. What is ours is below: the model objects turned into
// gqlserver's structs (the gql* functions), and resolvers for the fields
// that take arguments or cost a walk over the model. All of it runs under
// Sim.mu's read lock, which the /api handler holds for the whole request.

// resolver is gqlserver.ResolverRoot.
type resolver struct{ s *Sim }

type (
	queryResolver                  resolver
	instanceResolver               resolver
	instanceConfigVariableResolver resolver
	customerConfigVariableResolver resolver
	scopedConfigVariableResolver   resolver
)

func (r resolver) Query() gqlserver.QueryResolver       { return queryResolver(r) }
func (r resolver) Instance() gqlserver.InstanceResolver { return instanceResolver(r) }
func (r resolver) InstanceConfigVariable() gqlserver.InstanceConfigVariableResolver {
	return instanceConfigVariableResolver(r)
}
func (r resolver) CustomerConfigVariable() gqlserver.CustomerConfigVariableResolver {
	return customerConfigVariableResolver(r)
}
func (r resolver) ScopedConfigVariable() gqlserver.ScopedConfigVariableResolver {
	return scopedConfigVariableResolver(r)
}

// oauthMeta is the meta of every connection: the simulator models OAuth 2.0
// connections only.
const oauthMeta = `{"authType":"oauth2"}`

// optTime is null for the zero time.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// orNull is null for an empty string; E is string or an enum type.
func orNull[E ~string](s string) *E {
	if s == "" {
		return nil
	}
	e := E(s)
	return &e
}

// ptrs turns a list of strings into a list of nullable strings.
func ptrs(ss []string) []*string {
	if ss == nil {
		return nil
	}
	out := make([]*string, len(ss))
	for i := range ss {
		out[i] = &ss[i]
	}
	return out
}

// convert applies f to each item.
func convert[T, U any](items []T, f func(T) U) []U {
	out := make([]U, len(items))
	for i, v := range items {
		out[i] = f(v)
	}
	return out
}

func gqlInstance(in *instance) *gqlserver.Instance {
	return &gqlserver.Instance{
		ID:              in.id,
		Name:            in.name,
		Description:     in.description,
		Enabled:         in.enabled,
		DeployedVersion: in.deployedVersion,
		NeedsDeploy:     in.needsDeploy,
		LastDeployedAt:  optTime(in.lastDeployedAt),
		LastExecutedAt:  optTime(in.lastExecutedAt),
		CreatedAt:       in.createdAt,
		UpdatedAt:       in.updatedAt,
		Labels:          in.labels,
		ConfigState:     orNull[gqlserver.InstanceConfigState](in.configState),
		InFailedState:   in.inFailedState,
		InstanceType:    orNull[gqlserver.InstanceType](in.instanceType),
		DesignedBy:      gqlserver.InstanceDesignedBy(in.designedBy),
		Customer:        gqlCustomer(in.customer),
		Integration:     gqlIntegration(in.integration),
		Src:             in,
	}
}

func gqlCustomer(c *customer) *gqlserver.Customer {
	if c == nil {
		return nil
	}
	return &gqlserver.Customer{ID: c.id, Name: c.name, ExternalID: c.externalID, Description: ptr(c.description), Labels: ptrs(c.labels)}
}

func gqlIntegration(i *integration) *gqlserver.Integration {
	return &gqlserver.Integration{ID: i.id, Name: i.name, VersionNumber: ptr(i.versionNumber), Category: ptr(i.category), CreatedAt: i.createdAt}
}

// gqlConfigVar converts an instance's variable; parent is that instance.
func gqlConfigVar(v *configVar, parent *gqlserver.Instance) *gqlserver.InstanceConfigVariable {
	out := &gqlserver.InstanceConfigVariable{
		ID:                     v.id,
		Value:                  v.value,
		RequiredConfigVariable: gqlRequiredVar(v.req),
		CustomerConfigVariable: gqlCustomerConn(v.shared),
		Instance:               parent,
		ScheduleType:           orNull[gqlserver.InstanceConfigVariableScheduleType](v.req.scheduleType),
		TimeZone:               orNull[string](v.req.timeZone),
		UpdatedAt:              optTime(v.updatedAt),
		Src:                    v,
	}
	if c := v.cred(); c != nil {
		out.Status = orNull[gqlserver.InstanceConfigVariableStatus](c.status)
		out.RefreshAt = optTime(c.refreshAt)
		out.LastSuccessfulRefreshAt = optTime(c.lastRefresh)
	}
	if v.req.isConnection() {
		out.Meta = ptr(oauthMeta)
		out.AuthorizeURL = ptr("https://prismaticsim.invalid/oauth2/authorize?configVariable=" + v.id)
	}
	return out
}

func gqlRequiredVar(r *requiredVar) *gqlserver.RequiredConfigVariable {
	return &gqlserver.RequiredConfigVariable{
		ID:             r.id,
		Key:            r.key,
		DataType:       gqlserver.RequiredConfigVariableDataType(r.dataType),
		CollectionType: orNull[gqlserver.RequiredConfigVariableCollectionType](r.collectionType),
		DefaultValue:   r.defaultValue,
		Description:    ptr(r.description),
		Connection:     gqlConnectionDef(r.connection),
	}
}

func gqlConnectionDef(c *connectionDef) *gqlserver.Connection {
	if c == nil {
		return nil
	}
	comp := &gqlserver.Component{ID: c.component.id, Key: c.component.key, Label: c.component.label}
	return &gqlserver.Connection{ID: c.id, Key: c.key, Label: c.label, Component: comp}
}

func gqlExpression(e *expression) *gqlserver.Expression {
	return &gqlserver.Expression{ID: e.id, Name: e.name, Type: gqlserver.ExpressionTypeValue, Value: e.value, Meta: e.meta, HasValue: e.value != ""}
}

func gqlFlowConfig(f *flowConfig) *gqlserver.InstanceFlowConfig {
	return &gqlserver.InstanceFlowConfig{
		ID:             f.id,
		Flow:           &gqlserver.IntegrationFlow{ID: f.flow.id, Name: f.flow.name, StableKey: ptr(f.flow.stableKey)},
		APIKeys:        ptrs(f.apiKeys),
		WebhookURL:     ptr(f.webhookURL),
		InFailedState:  f.inFailedState,
		LastExecutedAt: optTime(f.lastExecutedAt),
	}
}

func gqlCustomerConn(c *customerConn) *gqlserver.CustomerConfigVariable {
	if c == nil {
		return nil
	}
	return &gqlserver.CustomerConfigVariable{
		ID:                      c.id,
		Key:                     ptr(c.key),
		Status:                  orNull[gqlserver.CustomerConfigVariableStatus](c.cred.status),
		IsTest:                  c.isTest,
		Customer:                gqlCustomer(c.customer),
		Meta:                    ptr(oauthMeta),
		AuthorizeURL:            ptr("https://prismaticsim.invalid/oauth2/authorize?customerConfigVariable=" + c.id),
		RefreshAt:               optTime(c.cred.refreshAt),
		LastSuccessfulRefreshAt: optTime(c.cred.lastRefresh),
		LastConfiguredAt:        optTime(c.lastConfigured),
		HasDeployedInstances:    anyDeployed(c.instances()),
		IsInUse:                 len(c.vars) > 0,
		Src:                     c,
	}
}

func gqlScopedVar(sv *scopedVar) *gqlserver.ScopedConfigVariable {
	return &gqlserver.ScopedConfigVariable{
		ID:          sv.id,
		Key:         ptr(sv.key),
		StableKey:   ptr(sv.stableKey),
		Description: ptr(sv.description),
		Status:      orNull[gqlserver.ScopedConfigVariableStatus](sv.status),
		Connection:  gqlConnectionDef(sv.connection),
		Customer:    nil, // org-scoped: no one customer
		Src:         sv,
	}
}

func (instanceResolver) ConfigVariables(_ context.Context, obj *gqlserver.Instance, status, after *string, first *int) (*gqlserver.InstanceConfigVariableConnection, error) {
	vars := obj.Src.(*instance).vars
	// The status argument is a lower-case string ("error"), while statuses
	// are returned upper-case ("ERROR").
	if status != nil {
		var matching []*configVar
		for _, v := range vars {
			if c := v.cred(); c != nil && strings.EqualFold(c.status, *status) {
				matching = append(matching, v)
			}
		}
		vars = matching
	}
	p, err := paginate(vars, pageArgs{after: after, first: first}, "configVariables")
	if err != nil {
		return nil, err
	}
	nodes := convert(p.nodes, func(v *configVar) *gqlserver.InstanceConfigVariable { return gqlConfigVar(v, obj) })
	return &gqlserver.InstanceConfigVariableConnection{Nodes: nodes, PageInfo: p.info, TotalCount: p.total}, nil
}

func (instanceResolver) FlowConfigs(_ context.Context, obj *gqlserver.Instance, after *string, first *int) (*gqlserver.InstanceFlowConfigConnection, error) {
	p, err := paginate(obj.Src.(*instance).flows, pageArgs{after: after, first: first}, "flowConfigs")
	if err != nil {
		return nil, err
	}
	return &gqlserver.InstanceFlowConfigConnection{Nodes: convert(p.nodes, gqlFlowConfig), PageInfo: p.info, TotalCount: p.total}, nil
}

// Inputs of a plain variable are empty; a connection backed by a customer
// connection shows that connection's.
func (instanceConfigVariableResolver) Inputs(_ context.Context, obj *gqlserver.InstanceConfigVariable, after *string, first *int) (*gqlserver.ExpressionConnection, error) {
	var inputs []*expression
	if c := obj.Src.(*configVar).cred(); c != nil {
		inputs = c.inputs
	}
	return expressionPage(inputs, after, first)
}

func (customerConfigVariableResolver) Inputs(_ context.Context, obj *gqlserver.CustomerConfigVariable, after *string, first *int) (*gqlserver.ExpressionConnection, error) {
	return expressionPage(obj.Src.(*customerConn).cred.inputs, after, first)
}

func expressionPage(inputs []*expression, after *string, first *int) (*gqlserver.ExpressionConnection, error) {
	p, err := paginate(inputs, pageArgs{after: after, first: first}, "inputs")
	if err != nil {
		return nil, err
	}
	return &gqlserver.ExpressionConnection{Nodes: convert(p.nodes, gqlExpression), PageInfo: p.info, TotalCount: p.total}, nil
}

func (customerConfigVariableResolver) Instances(_ context.Context, obj *gqlserver.CustomerConfigVariable, after *string, first *int) (*gqlserver.InstanceConnection, error) {
	return instancePage(sortInstances(obj.Src.(*customerConn).instances(), nil), pageArgs{after: after, first: first})
}

func (customerConfigVariableResolver) ScopedConfigVariable(_ context.Context, obj *gqlserver.CustomerConfigVariable) (*gqlserver.ScopedConfigVariable, error) {
	if sv := obj.Src.(*customerConn).scoped; sv != nil {
		return gqlScopedVar(sv), nil
	}
	return nil, nil
}

// instancesOf lists the instances using any customer connection made from
// sv.
func instancesOf(sv *scopedVar) []*instance {
	var out []*instance
	for _, c := range sv.ccvs {
		out = append(out, c.instances()...)
	}
	return sortInstances(out, nil)
}

func (scopedConfigVariableResolver) HasDeployedInstances(_ context.Context, obj *gqlserver.ScopedConfigVariable) (bool, error) {
	return anyDeployed(instancesOf(obj.Src.(*scopedVar))), nil
}

func (scopedConfigVariableResolver) Instances(_ context.Context, obj *gqlserver.ScopedConfigVariable, after *string, first *int) (*gqlserver.InstanceConnection, error) {
	return instancePage(instancesOf(obj.Src.(*scopedVar)), pageArgs{after: after, first: first})
}

func (scopedConfigVariableResolver) CustomerConfigVariables(_ context.Context, obj *gqlserver.ScopedConfigVariable, after *string, first *int) (*gqlserver.CustomerConfigVariableConnection, error) {
	return customerConnPage(obj.Src.(*scopedVar).ccvs, pageArgs{after: after, first: first})
}

func instancePage(ins []*instance, a pageArgs) (*gqlserver.InstanceConnection, error) {
	p, err := paginate(ins, a, "instances")
	if err != nil {
		return nil, err
	}
	return &gqlserver.InstanceConnection{Nodes: convert(p.nodes, gqlInstance), PageInfo: p.info, TotalCount: p.total}, nil
}

func customerConnPage(ccvs []*customerConn, a pageArgs) (*gqlserver.CustomerConfigVariableConnection, error) {
	p, err := paginate(ccvs, a, "customerConfigVariables")
	if err != nil {
		return nil, err
	}
	return &gqlserver.CustomerConfigVariableConnection{Nodes: convert(p.nodes, gqlCustomerConn), PageInfo: p.info, TotalCount: p.total}, nil
}

func anyDeployed(ins []*instance) bool {
	for _, in := range ins {
		if in.deployedVersion > 0 {
			return true
		}
	}
	return false
}
