package prismaticsim

import (
	"slices"
	"time"
)

// The model. Every field is guarded by Sim.mu; resolvers read it under the
// read lock, operations change it under the write lock. Times are UTC,
// truncated to microseconds as Prismatic renders them; a zero time is null.

type customer struct {
	id          string
	name        string
	externalID  *string
	description string
	labels      []string
}

type component struct {
	id, key, label string
}

// connectionDef is a component's connection definition (the schema's
// Connection type), not a credential.
type connectionDef struct {
	id, key, label string
	component      *component
}

type integration struct {
	id            string
	name          string
	description   string
	versionNumber int
	category      string
	createdAt     time.Time
	vars          []*requiredVar
	flows         []*flowDef
}

type requiredVar struct {
	id             string
	key            string
	dataType       string
	collectionType string // "" is null
	defaultValue   *string
	description    string
	connection     *connectionDef
	scheduleType   string // SCHEDULE variables only
	timeZone       string
}

func (r *requiredVar) isConnection() bool { return r.dataType == "CONNECTION" }

type flowDef struct {
	id, name, stableKey string
}

type flowConfig struct {
	id             string
	flow           *flowDef
	webhookURL     string
	apiKeys        []string
	inFailedState  bool
	lastExecutedAt time.Time
}

type expression struct {
	id    string
	name  string
	value string
	meta  *string
}

// credential is the live state of a connection: on an instance's own
// connection variable, or on a reusable customer connection that several
// instance variables point at.
type credential struct {
	status      string
	refreshAt   time.Time
	lastRefresh time.Time
	inputs      []*expression
}

func (c *credential) input(name string) *expression {
	for _, e := range c.inputs {
		if e.name == name {
			return e
		}
	}
	return nil
}

type instance struct {
	id              string
	name            string
	description     string
	enabled         bool
	isSystem        bool
	deployedVersion int
	needsDeploy     bool
	lastDeployedAt  time.Time
	lastExecutedAt  time.Time
	createdAt       time.Time
	updatedAt       time.Time
	labels          []string
	configState     string
	inFailedState   bool
	instanceType    string
	designedBy      string
	customer        *customer
	integration     *integration
	vars            []*configVar
	flows           []*flowConfig
	// deployed holds each variable's value as of the last deploy, by key;
	// nil until the first deploy. The API has no such field: it is the
	// truth the daemon's cache must converge to.
	deployed map[string]*string
}

func (in *instance) variable(key string) *configVar {
	for _, v := range in.vars {
		if v.req.key == key {
			return v
		}
	}
	return nil
}

type configVar struct {
	id        string
	inst      *instance
	req       *requiredVar
	value     *string
	updatedAt time.Time
	// own is the credential of an instance-specific connection; nil for
	// plain variables and for variables backed by a customer connection.
	own *credential
	// shared is the reusable customer connection backing this variable.
	shared *customerConn
}

// cred is the credential this connection variable reads, or nil for a plain
// variable.
func (v *configVar) cred() *credential {
	if v.shared != nil {
		return &v.shared.cred
	}
	return v.own
}

type scopedVar struct {
	id, key, stableKey, description, status string
	connection                              *connectionDef
	ccvs                                    []*customerConn
}

// customerConn is a reusable customer connection (CustomerConfigVariable).
type customerConn struct {
	id             string
	key            string
	customer       *customer
	scoped         *scopedVar
	isTest         bool
	lastConfigured time.Time
	cred           credential
	// vars are the instance variables that use it, in creation order.
	vars []*configVar
}

func (c *customerConn) instances() []*instance {
	var out []*instance
	for _, v := range c.vars {
		if !slices.Contains(out, v.inst) {
			out = append(out, v.inst)
		}
	}
	return out
}

// model is the whole simulated organisation.
type model struct {
	ids       *idGen
	orgID     string
	userID    string
	webhookID string
	customers []*customer
	integs    []*integration
	scoped    []*scopedVar
	ccvs      []*customerConn
	instances []*instance // creation order; deleted instances are removed
	byID      map[string]*instance
	demoID    string
	// testCustomer owns the system (test) instances; it is not one of the
	// demo customers.
	testCustomer *customer
	components   map[string]*connectionDef // by component key
	// gen counts the changes to the model (Sim.lockModel): a listing
	// remembered at one generation is the model's while it holds.
	gen uint64
}

// customerByRef finds a demo customer by global id, bare uuid or external id.
func (m *model) customerByRef(ref string) *customer {
	id := canonicalID("Customer", ref)
	for _, c := range m.customers {
		if c.id == id || c.externalID != nil && *c.externalID == ref {
			return c
		}
	}
	return nil
}

// integrationByRef finds an integration by global id, bare uuid or name.
func (m *model) integrationByRef(ref string) *integration {
	id := canonicalID("Integration", ref)
	for _, in := range m.integs {
		if in.id == id || in.name == ref {
			return in
		}
	}
	return nil
}

func (m *model) ccvByID(id string) *customerConn {
	for _, c := range m.ccvs {
		if c.id == id {
			return c
		}
	}
	return nil
}

func (m *model) removeInstance(in *instance) {
	delete(m.byID, in.id)
	m.instances = slices.DeleteFunc(m.instances, func(x *instance) bool { return x == in })
	for _, v := range in.vars {
		if v.shared != nil {
			v.shared.vars = slices.DeleteFunc(v.shared.vars, func(x *configVar) bool { return x == v })
		}
	}
}
