package prismaticsim

import (
	"encoding/json"
	"time"
)

// webhookTimeFormat is the payloads' timestamp format, as in the examples:
// microseconds and a numeric UTC offset.
const webhookTimeFormat = "2006-01-02T15:04:05.000000+00:00"

// event is one webhook to send, built under Sim.mu from the model and sent
// after the lock is released.
type event struct {
	typ          string
	instanceID   string
	connectionID string
	customerID   string
	at           time.Time
	body         []byte
}

// The body's fields, in the order of the example payloads.
type payload struct {
	Integration       *ref           `json:"integration"`
	Customer          *payloadCust   `json:"customer"`
	ParentIntegration *ref           `json:"parent_integration"`
	Instance          *ref           `json:"instance"`
	User              payloadUser    `json:"user"`
	EventType         string         `json:"event_type"`
	Timestamp         string         `json:"timestamp"`
	OrganizationID    string         `json:"organization_id"`
	WebhookID         string         `json:"webhook_id"`
	Connection        *connectionRef `json:"connection,omitempty"`
}

type ref struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type payloadCust struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	ExternalID *string `json:"external_id"`
}

type payloadUser struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

type connectionRef struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

type testPayload struct {
	Message         string      `json:"message"`
	WebhookEndpoint ref         `json:"webhook_endpoint"`
	User            payloadUser `json:"user"`
	EventType       string      `json:"event_type"`
	Timestamp       string      `json:"timestamp"`
}

func (s *Sim) user() payloadUser {
	return payloadUser{ID: s.m.userID, Email: "simulator@example.com", Name: "Prismatic Simulator"}
}

func (s *Sim) newEvent(p payload) *event {
	p.User = s.user()
	p.OrganizationID = s.m.orgID
	p.WebhookID = s.m.webhookID
	body, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		// Every field is a string, a struct of strings or nil.
		panic("prismaticsim: marshal payload: " + err.Error())
	}
	ev := &event{typ: p.EventType, body: body}
	if p.Instance != nil {
		ev.instanceID = p.Instance.ID
	}
	if p.Connection != nil {
		ev.connectionID = p.Connection.ID
	}
	if p.Customer != nil {
		ev.customerID = p.Customer.ID
	}
	return ev
}

// instanceEvent builds an instance.* event; s.mu must be held.
func (s *Sim) instanceEvent(typ string, in *instance, at time.Time) *event {
	ev := s.newEvent(payload{
		Instance:  &ref{ID: in.id, Name: in.name},
		EventType: typ,
		Timestamp: at.UTC().Format(webhookTimeFormat),
	})
	ev.at = at
	return ev
}

// connectionEvents builds the events for a change to the connection variable
// v (used by users, v included) in the current payload shape; s.mu must be
// held.
func (s *Sim) connectionEvents(typ string, v *configVar, users []*configVar, at time.Time) []*event {
	shape := s.shape
	if shape == ShapeAuto {
		shape = ShapeWithInstance
		if v.shared != nil {
			shape = ShapeCustomerConnection
		}
	}
	base := payload{EventType: typ, Timestamp: at.UTC().Format(webhookTimeFormat)}
	var out []*event
	switch {
	case shape == ShapeCustomerConnection && v.shared != nil:
		p := base
		p.Customer = custRef(v.shared.customer)
		p.Connection = &connectionRef{ID: v.shared.id, Key: v.shared.key}
		out = append(out, s.newEvent(p))
	case shape == ShapeCustomerConnection:
		p := base
		p.Customer = custRef(v.inst.customer)
		p.Connection = &connectionRef{ID: v.id, Key: v.req.key}
		ev := s.newEvent(p)
		ev.instanceID = v.inst.id
		out = append(out, ev)
	default:
		for _, u := range users {
			p := base
			p.Connection = &connectionRef{ID: u.id, Key: u.req.key}
			if shape == ShapeWithInstance {
				p.Instance = &ref{ID: u.inst.id, Name: u.inst.name}
			}
			ev := s.newEvent(p)
			ev.instanceID = u.inst.id
			out = append(out, ev)
		}
	}
	for _, ev := range out {
		ev.at = at
	}
	return out
}

func custRef(c *customer) *payloadCust {
	return &payloadCust{ID: c.id, Name: c.name, ExternalID: c.externalID}
}

// SendTestWebhook sends webhook.test, as the "Test Webhook" button does.
func (s *Sim) SendTestWebhook() EventRecord {
	s.mu.Lock()
	at := s.tick()
	body, err := json.MarshalIndent(testPayload{
		Message:         "This is a test webhook from Prismatic.",
		WebhookEndpoint: ref{ID: s.m.webhookID, Name: "prismaticsim"},
		User:            s.user(),
		EventType:       "webhook.test",
		Timestamp:       at.Format(webhookTimeFormat),
	}, "", "  ")
	s.mu.Unlock()
	if err != nil {
		panic("prismaticsim: marshal payload: " + err.Error())
	}
	return s.hooks.dispatch([]*event{{typ: "webhook.test", at: at, body: body}})[0]
}
