package prismaticsim

import (
	"errors"
	"time"
)

// Errors the operations return; the admin API maps them to HTTP statuses.
var (
	// ErrNotFound: no such instance (or customer, integration, connection).
	ErrNotFound = errors.New("not found")
	// ErrUnknownVariable: the instance has no config variable with that key.
	ErrUnknownVariable = errors.New("unknown config variable")
	// ErrNotConnection: a connection operation on a plain variable.
	ErrNotConnection = errors.New("config variable is not a connection")
	// ErrIsConnection: SetConfig on a connection variable, whose state
	// changes only through the connection operations.
	ErrIsConnection = errors.New("config variable is a connection")
	// ErrInvalidValue: a value that does not fit the variable's data type.
	ErrInvalidValue = errors.New("invalid value")
	// ErrNotDeployed: Deployed on an instance that was never deployed.
	ErrNotDeployed = errors.New("instance was never deployed")
)

// InstanceSummary is one row of Instances. It is a plain copy, detached from
// the model.
type InstanceSummary struct {
	ID                 string `json:"id"`
	Name               string `json:"name"`
	CustomerID         string `json:"customerId"`
	CustomerExternalID string `json:"customerExternalId,omitempty"`
	CustomerName       string `json:"customerName"`
	IntegrationID      string `json:"integrationId"`
	IntegrationName    string `json:"integrationName"`
	IntegrationVersion int    `json:"integrationVersion"`
	IsSystem           bool   `json:"isSystem"`
	Enabled            bool   `json:"enabled"`
	DeployedVersion    int    `json:"deployedVersion"`
	NeedsDeploy        bool   `json:"needsDeploy"`
}

// InstanceSnapshot is a copy of one instance at one moment: either its
// stored state, as GraphQL shows it (Sim.Instance), or its deployed truth
// (Sim.Deployed). It is a plain copy, detached from the model, so it is safe
// to keep and share; the zero value is no instance.
type InstanceSnapshot struct {
	InstanceSummary
	Description    string    `json:"description"`
	LastDeployedAt time.Time `json:"lastDeployedAt,omitzero"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
	// Config lists the config variables in the instance's order.
	Config []ConfigValue `json:"config"`
}

// ConfigValue is one config variable in a snapshot. A nil Value is null (a
// connection, or a variable without a value).
type ConfigValue struct {
	ID       string  `json:"id"`
	Key      string  `json:"key"`
	DataType string  `json:"dataType"`
	Value    *string `json:"value"`
	// Status, RefreshAt and LastSuccessfulRefreshAt are set for connections
	// only; they always show the connection's live state.
	Status                  string    `json:"status,omitempty"`
	RefreshAt               time.Time `json:"refreshAt,omitzero"`
	LastSuccessfulRefreshAt time.Time `json:"lastSuccessfulRefreshAt,omitzero"`
	// CustomerConfigVariableID is the reusable connection backing it.
	CustomerConfigVariableID string `json:"customerConfigVariableId,omitempty"`
}

// Value returns the config variable with key, and false when there is none.
func (s InstanceSnapshot) Value(key string) (ConfigValue, bool) {
	for _, c := range s.Config {
		if c.Key == key {
			return c, true
		}
	}
	return ConfigValue{}, false
}

func summarize(in *instance) InstanceSummary {
	s := InstanceSummary{
		ID: in.id, Name: in.name,
		CustomerID: in.customer.id, CustomerName: in.customer.name,
		IntegrationID: in.integration.id, IntegrationName: in.integration.name,
		IntegrationVersion: in.integration.versionNumber,
		IsSystem:           in.isSystem, Enabled: in.enabled,
		DeployedVersion: in.deployedVersion, NeedsDeploy: in.needsDeploy,
	}
	if in.customer.externalID != nil {
		s.CustomerExternalID = *in.customer.externalID
	}
	return s
}

// snapshot copies an instance. With deployed set, values come from the last
// deploy instead of the stored configuration.
func snapshot(in *instance, deployed bool) InstanceSnapshot {
	s := InstanceSnapshot{
		InstanceSummary: summarize(in),
		Description:     in.description,
		LastDeployedAt:  in.lastDeployedAt,
		CreatedAt:       in.createdAt,
		UpdatedAt:       in.updatedAt,
		Config:          make([]ConfigValue, 0, len(in.vars)),
	}
	for _, v := range in.vars {
		c := ConfigValue{ID: v.id, Key: v.req.key, DataType: v.req.dataType}
		val := v.value
		if deployed {
			val = in.deployed[v.req.key]
		}
		if val != nil {
			c.Value = ptr(*val)
		}
		if cr := v.cred(); cr != nil {
			c.Status, c.RefreshAt, c.LastSuccessfulRefreshAt = cr.status, cr.refreshAt, cr.lastRefresh
		}
		if v.shared != nil {
			c.CustomerConfigVariableID = v.shared.id
		}
		s.Config = append(s.Config, c)
	}
	return s
}

// Instances lists every instance (system ones included) in creation order.
func (s *Sim) Instances() []InstanceSummary {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]InstanceSummary, 0, len(s.m.instances))
	for _, in := range s.m.instances {
		out = append(out, summarize(in))
	}
	return out
}

// Instance returns the instance's stored state: what GraphQL shows, config
// values as last saved, whether deployed or not. id is a global id (or a
// bare uuid).
func (s *Sim) Instance(id string) (InstanceSnapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in := s.m.byID[canonicalID("Instance", id)]
	if in == nil {
		return InstanceSnapshot{}, ErrNotFound
	}
	return snapshot(in, false), nil
}

// Deployed returns the instance's deployed truth, which the real API cannot
// show: config values as of its last deploy, with the instance's live
// enabled flag, deploy markers and connection states (credential changes and
// enabling or disabling take effect without a deploy). It returns
// ErrNotDeployed for an instance that was never deployed.
func (s *Sim) Deployed(id string) (InstanceSnapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in := s.m.byID[canonicalID("Instance", id)]
	if in == nil {
		return InstanceSnapshot{}, ErrNotFound
	}
	if in.deployed == nil {
		return InstanceSnapshot{}, ErrNotDeployed
	}
	return snapshot(in, true), nil
}

// DemoInstanceID returns the id of the demo instance: the first customer's
// (Acme Corp, externalId acme-001) "Salesforce Sync" instance, whose
// slackConnection is a reusable customer connection. It is "" only when the
// demo instance has been deleted.
func (s *Sim) DemoInstanceID() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.m.byID[s.m.demoID] == nil {
		return ""
	}
	return s.m.demoID
}

// CustomerConnection describes one reusable customer connection
// (CustomerConfigVariable); a plain copy.
type CustomerConnection struct {
	ID                 string    `json:"id"`
	Key                string    `json:"key"`
	CustomerID         string    `json:"customerId"`
	CustomerExternalID string    `json:"customerExternalId,omitempty"`
	ScopedID           string    `json:"scopedConfigVariableId,omitempty"`
	Status             string    `json:"status"`
	RefreshAt          time.Time `json:"refreshAt,omitzero"`
	LastRefreshAt      time.Time `json:"lastSuccessfulRefreshAt,omitzero"`
	InstanceIDs        []string  `json:"instanceIds"`
}

// CustomerConnections lists the reusable customer connections and the
// instances that use each.
func (s *Sim) CustomerConnections() []CustomerConnection {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]CustomerConnection, 0, len(s.m.ccvs))
	for _, c := range s.m.ccvs {
		cc := CustomerConnection{
			ID: c.id, Key: c.key, CustomerID: c.customer.id, Status: c.cred.status,
			RefreshAt: c.cred.refreshAt, LastRefreshAt: c.cred.lastRefresh, InstanceIDs: []string{},
		}
		if c.customer.externalID != nil {
			cc.CustomerExternalID = *c.customer.externalID
		}
		if c.scoped != nil {
			cc.ScopedID = c.scoped.id
		}
		for _, in := range c.instances() {
			cc.InstanceIDs = append(cc.InstanceIDs, in.id)
		}
		out = append(out, cc)
	}
	return out
}
