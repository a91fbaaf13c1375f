package prismaticsim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Result is what a mutating operation did: the changed instance as stored
// afterwards (as it was, for Delete), every instance whose state changed, and
// each webhook it sent, as the event log saw it after the first delivery
// attempt. It is a plain copy.
type Result struct {
	Instance InstanceSnapshot `json:"instance"`
	Affected []string         `json:"affectedInstances"`
	Webhooks []EventRecord    `json:"webhooks"`
}

// change runs fn on instance id under the write lock with a fresh event
// timestamp, then sends the events fn built, outside the lock.
func (s *Sim) change(id string, fn func(in *instance, at time.Time) ([]*event, []string, error)) (Result, error) {
	s.lockModel()
	in := s.m.byID[canonicalID("Instance", id)]
	if in == nil {
		s.mu.Unlock()
		return Result{}, fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	events, affected, err := fn(in, s.tick())
	if err != nil {
		s.mu.Unlock()
		return Result{}, err
	}
	// A deleted instance is only unlinked from the model, so this is still
	// the instance as it was.
	res := Result{Instance: snapshot(in, false), Affected: affected}
	s.mu.Unlock()
	res.Webhooks = s.hooks.dispatch(events)
	return res, nil
}

// SetConfig saves a new value for a plain config variable, as editing it in
// Prismatic's UI does: the stored value changes, needsDeploy becomes true and
// updatedAt moves, but the running (deployed) value stays until Deploy. Sends
// instance.updated.
func (s *Sim) SetConfig(id, key, value string) (Result, error) {
	return s.change(id, func(in *instance, at time.Time) ([]*event, []string, error) {
		v := in.variable(key)
		if v == nil {
			return nil, nil, fmt.Errorf("instance %s variable %q: %w", in.id, key, ErrUnknownVariable)
		}
		if v.req.isConnection() {
			return nil, nil, fmt.Errorf("variable %q: %w", key, ErrIsConnection)
		}
		if err := checkValue(v.req, value); err != nil {
			return nil, nil, fmt.Errorf("variable %q: %w", key, err)
		}
		v.value = ptr(value)
		v.updatedAt = at
		in.updatedAt = at
		in.needsDeploy = true
		return []*event{s.instanceEvent("instance.updated", in, at)}, []string{in.id}, nil
	})
}

func checkValue(r *requiredVar, value string) error {
	if r.collectionType != "" {
		var list []any
		if err := json.Unmarshal([]byte(value), &list); err != nil {
			return fmt.Errorf("%w: %s wants a JSON array", ErrInvalidValue, r.collectionType)
		}
		return nil
	}
	switch r.dataType {
	case "BOOLEAN":
		if value != "true" && value != "false" {
			return fmt.Errorf("%w: BOOLEAN wants true or false", ErrInvalidValue)
		}
	case "NUMBER":
		if _, err := strconv.ParseFloat(value, 64); err != nil {
			return fmt.Errorf("%w: NUMBER wants a number", ErrInvalidValue)
		}
	case "JSONFORM", "OBJECTFIELDMAP", "OBJECTSELECTION":
		if !json.Valid([]byte(value)) {
			return fmt.Errorf("%w: %s wants JSON", ErrInvalidValue, r.dataType)
		}
	}
	return nil
}

// Deploy deploys the stored configuration: deployedVersion+1,
// lastDeployedAt and updatedAt now, needsDeploy false, and the deployed truth
// becomes the stored values. Sends instance.deployed.
func (s *Sim) Deploy(id string) (Result, error) {
	return s.change(id, func(in *instance, at time.Time) ([]*event, []string, error) {
		s.m.deploy(in, at)
		return []*event{s.instanceEvent("instance.deployed", in, at)}, []string{in.id}, nil
	})
}

// Enable turns the instance on in place (no deploy needed). Sends
// instance.enabled.
func (s *Sim) Enable(id string) (Result, error) { return s.setEnabled(id, true) }

// Disable turns the instance off in place. Sends instance.disabled.
func (s *Sim) Disable(id string) (Result, error) { return s.setEnabled(id, false) }

func (s *Sim) setEnabled(id string, on bool) (Result, error) {
	return s.change(id, func(in *instance, at time.Time) ([]*event, []string, error) {
		in.enabled = on
		in.updatedAt = at
		typ := "instance.disabled"
		if on {
			typ = "instance.enabled"
		}
		return []*event{s.instanceEvent(typ, in, at)}, []string{in.id}, nil
	})
}

// Delete removes the instance; GraphQL then answers null for it. Sends
// instance.deleted. The Result's Instance is the instance as it was.
func (s *Sim) Delete(id string) (Result, error) {
	return s.change(id, func(in *instance, at time.Time) ([]*event, []string, error) {
		s.m.removeInstance(in)
		return []*event{s.instanceEvent("instance.deleted", in, at)}, []string{in.id}, nil
	})
}

// NewInstance describes an instance to create. Customer and Integration are
// required; the other fields' zero values are the defaults below.
type NewInstance struct {
	// Customer is the customer's global id or external id.
	Customer string `json:"customer"`
	// Integration is the integration's global id or name.
	Integration string `json:"integration"`
	// Name defaults to "<customer name> - <integration name>".
	Name string `json:"name,omitempty"`
	// ExtraVariables adds that many STRING variables (extra001, …) after the
	// integration's own, so a test can page past 100 config variables.
	ExtraVariables int `json:"extraVariables,omitempty"`
	// Deploy deploys the new instance at once (sending instance.deployed
	// after instance.created) with its connections ACTIVE; otherwise it is
	// left undeployed (deployedVersion 0, needsDeploy true) with its own
	// connections PENDING.
	Deploy bool `json:"deploy,omitempty"`
}

// CreateInstance creates an instance for a customer and integration. It uses
// the customer's reusable connection, if it has one, for the matching
// connection variables. Sends instance.created (and instance.deployed with
// Deploy).
func (s *Sim) CreateInstance(req NewInstance) (Result, error) {
	if req.ExtraVariables < 0 || req.ExtraVariables > 10000 {
		return Result{}, fmt.Errorf("extraVariables %d: %w", req.ExtraVariables, ErrInvalidValue)
	}
	s.lockModel()
	c := s.m.customerByRef(req.Customer)
	if c == nil {
		s.mu.Unlock()
		return Result{}, fmt.Errorf("customer %q: %w", req.Customer, ErrNotFound)
	}
	integ := s.m.integrationByRef(req.Integration)
	if integ == nil {
		s.mu.Unlock()
		return Result{}, fmt.Errorf("integration %q: %w", req.Integration, ErrNotFound)
	}
	name := req.Name
	if name == "" {
		name = c.name + " - " + integ.name
	}
	var shared *customerConn
	for _, cc := range s.m.ccvs {
		if cc.customer == c {
			shared = cc
			break
		}
	}
	at := s.tick()
	in := s.m.newInstance(c, integ, name, at, shared, req.ExtraVariables)
	events := []*event{s.instanceEvent("instance.created", in, at)}
	if req.Deploy {
		for _, v := range in.vars {
			if v.own != nil {
				v.own.status, v.own.lastRefresh, v.own.refreshAt = "ACTIVE", at, at.Add(time.Hour)
				s.m.rotateToken(v.own)
			}
		}
		at = s.tick()
		s.m.deploy(in, at)
		events = append(events, s.instanceEvent("instance.deployed", in, at))
	}
	res := Result{Instance: snapshot(in, false), Affected: []string{in.id}}
	s.mu.Unlock()
	res.Webhooks = s.hooks.dispatch(events)
	return res, nil
}

// RefreshConnection records a successful token refresh of the connection
// variable key: status ACTIVE, lastSuccessfulRefreshAt now, refreshAt in an
// hour, a new access token. When the variable is backed by a reusable
// customer connection, the change is made there and so shows on every
// instance using it. Takes effect at once (no deploy, needsDeploy
// unchanged). Sends oauth2.token_refreshed in the configured payload shape.
func (s *Sim) RefreshConnection(id, key string) (Result, error) {
	return s.changeConnection(id, key, "oauth2.token_refreshed", func(c *credential, at time.Time) {
		c.status, c.lastRefresh, c.refreshAt = "ACTIVE", at, at.Add(time.Hour)
		s.m.rotateToken(c)
	})
}

// BreakConnection records a failed token refresh: status ERROR, refresh
// times unchanged. Sends oauth2.token_refresh_failed.
func (s *Sim) BreakConnection(id, key string) (Result, error) {
	return s.changeConnection(id, key, "oauth2.token_refresh_failed", func(c *credential, _ time.Time) {
		c.status = "ERROR"
	})
}

// ReconnectConnection records new credentials entered for the connection
// (a new client secret and access token), status ACTIVE. Sends
// connection.updated.
func (s *Sim) ReconnectConnection(id, key string) (Result, error) {
	return s.changeConnection(id, key, "connection.updated", func(c *credential, at time.Time) {
		c.status, c.lastRefresh, c.refreshAt = "ACTIVE", at, at.Add(time.Hour)
		if e := c.input("clientSecret"); e != nil {
			e.value = SecretMarker + "-cs-" + s.m.ids.hex(12)
		}
		s.m.rotateToken(c)
	})
}

func (s *Sim) changeConnection(id, key, typ string, apply func(c *credential, at time.Time)) (Result, error) {
	return s.change(id, func(in *instance, at time.Time) ([]*event, []string, error) {
		v := in.variable(key)
		if v == nil {
			return nil, nil, fmt.Errorf("instance %s variable %q: %w", in.id, key, ErrUnknownVariable)
		}
		cred := v.cred()
		if cred == nil {
			return nil, nil, fmt.Errorf("variable %q: %w", key, ErrNotConnection)
		}
		apply(cred, at)
		users := []*configVar{v}
		if v.shared != nil {
			if typ == "connection.updated" {
				v.shared.lastConfigured = at
			}
			users = v.shared.vars
		}
		var affected []string
		for _, u := range users {
			u.updatedAt = at
			if !slices.Contains(affected, u.inst.id) {
				affected = append(affected, u.inst.id)
			}
		}
		return s.connectionEvents(typ, v, users, at), affected, nil
	})
}
