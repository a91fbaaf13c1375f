package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Event types the daemon acts on. Any other type is accepted and ignored.
const (
	InstanceCreated  = "instance.created"
	InstanceUpdated  = "instance.updated"
	InstanceDeployed = "instance.deployed"
	InstanceEnabled  = "instance.enabled"
	InstanceDisabled = "instance.disabled"
	InstanceDeleted  = "instance.deleted"

	ConnectionUpdated            = "connection.updated"
	OAuth2AuthorizationCompleted = "oauth2.authorization_completed"
	OAuth2AuthorizationFailed    = "oauth2.authorization_failed"
	OAuth2TokenRefreshed         = "oauth2.token_refreshed"
	OAuth2TokenRefreshFailed     = "oauth2.token_refresh_failed"

	CustomerUpdated = "customer.updated"
	CustomerDeleted = "customer.deleted"

	WebhookTest = "webhook.test"
)

// ErrInvalid wraps every reason a payload is refused.
var ErrInvalid = errors.New("invalid payload")

// Event is the part of a webhook payload the daemon uses. The payload may
// carry more; unknown keys are ignored.
type Event struct {
	// Type is the event type, from the signed body's event_type, else from
	// the X-Webhook-Event header.
	Type string
	// TypeFromHeader says Type came from the X-Webhook-Event header, which
	// the signature does not cover: PlanEvent lets such an event do nothing
	// but be counted.
	TypeFromHeader bool
	// Timestamp is the body's timestamp. When the body has none, it is the
	// time the webhook arrived and TimestampMissing is set.
	Timestamp        time.Time
	TimestampMissing bool

	InstanceID   string
	InstanceName string

	// ConnectionID is the connection's global id (InstanceConfigVariable or
	// CustomerConfigVariable or ScopedConfigVariable), ConnectionKey its key.
	ConnectionID  string
	ConnectionKey string

	CustomerID         string
	CustomerExternalID string
	CustomerName       string
}

// payload mirrors the documented envelope: event_type, timestamp, and one
// object per resource family.
type payload struct {
	EventType  *string   `json:"event_type"`
	Timestamp  *string   `json:"timestamp"`
	Instance   *resource `json:"instance"`
	Connection *resource `json:"connection"`
	Customer   *resource `json:"customer"`
}

type resource struct {
	ID         *string   `json:"id"`
	Name       *string   `json:"name"`
	Key        *string   `json:"key"`
	ExternalID *string   `json:"external_id"`
	ExtIDCamel *string   `json:"externalId"`
	Customer   *resource `json:"customer"`
}

// MaxTypeLength bounds an event type; longer is refused.
const MaxTypeLength = 128

// Parse decodes a webhook body. headerType is the X-Webhook-Event header;
// when the body names a type too, the two must agree (the header is not
// signed, the body is). received stands in for a missing timestamp.
func Parse(headerType string, body []byte, received time.Time) (Event, error) {
	p, ok := scanPayload(body)
	if !ok {
		var err error
		if p, err = decodePayload(body); err != nil {
			return Event{}, err
		}
	}
	return p.event(headerType, received)
}

// decodePayload decodes body with encoding/json: the reference decoding,
// and the one for every body scanPayload leaves to it.
func decodePayload(body []byte) (*payload, error) {
	// Decode takes null for an empty object; only an object will do.
	if rest := bytes.TrimLeft(body, " \t\r\n"); len(rest) == 0 || rest[0] != '{' {
		return nil, fmt.Errorf("%w: body is not a JSON object", ErrInvalid)
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, explainJSON(body)
	}
	return &p, nil
}

// event checks a decoded payload and makes it an Event; it may change p.
func (p *payload) event(headerType string, received time.Time) (Event, error) {
	var ev Event
	headerType = strings.TrimSpace(headerType)
	switch {
	case p.EventType != nil && headerType != "" && *p.EventType != headerType:
		return Event{}, fmt.Errorf("%w: header %s says %q but the body says %q", ErrInvalid, EventHeader, headerType, *p.EventType)
	case p.EventType != nil:
		ev.Type = *p.EventType
	default:
		ev.Type, ev.TypeFromHeader = headerType, true
	}
	if ev.Type == "" {
		return Event{}, fmt.Errorf("%w: no event type in the body or the %s header", ErrInvalid, EventHeader)
	}
	if len(ev.Type) > MaxTypeLength || !printable(ev.Type) {
		return Event{}, fmt.Errorf("%w: event type is not a short printable string", ErrInvalid)
	}
	if p.Timestamp != nil && *p.Timestamp != "" {
		ts, err := ParseTimestamp(*p.Timestamp)
		if err != nil {
			return Event{}, fmt.Errorf("%w: timestamp %q: %v", ErrInvalid, truncate(*p.Timestamp), err)
		}
		ev.Timestamp = ts
	} else {
		ev.Timestamp, ev.TimestampMissing = received.UTC(), true
	}
	if r := p.Instance; r != nil {
		if r.ID != nil {
			if !ValidID(*r.ID) {
				return Event{}, fmt.Errorf("%w: instance.id %q is not a Prismatic id", ErrInvalid, truncate(*r.ID))
			}
			ev.InstanceID = *r.ID
		}
		ev.InstanceName = str(r.Name)
		if r.Customer != nil && p.Customer == nil {
			p.Customer = r.Customer
		}
	}
	if r := p.Connection; r != nil && r.ID != nil {
		if !ValidID(*r.ID) {
			return Event{}, fmt.Errorf("%w: connection.id %q is not a Prismatic id", ErrInvalid, truncate(*r.ID))
		}
		ev.ConnectionID, ev.ConnectionKey = *r.ID, str(r.Key)
	}
	if r := p.Customer; r != nil {
		if r.ID != nil {
			if !ValidID(*r.ID) {
				return Event{}, fmt.Errorf("%w: customer.id %q is not a Prismatic id", ErrInvalid, truncate(*r.ID))
			}
			ev.CustomerID = *r.ID
		}
		ev.CustomerName = str(r.Name)
		ev.CustomerExternalID = str(r.ExternalID)
		if ev.CustomerExternalID == "" {
			ev.CustomerExternalID = str(r.ExtIDCamel)
		}
		if len(ev.CustomerExternalID) > 512 || !printable(ev.CustomerExternalID) {
			return Event{}, fmt.Errorf("%w: customer external id is not a printable string of at most 512 bytes", ErrInvalid)
		}
	}
	return ev, nil
}

// ParseTimestamp reads a payload timestamp: RFC 3339 with optional fraction,
// as Prismatic writes it ("2026-11-20T10:06:30.555555+00:00").
func ParseTimestamp(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("not an RFC 3339 time")
	}
	// An offset can carry a year-9999 time past 9999 (or a year-0 one
	// before 1) in UTC, which RFC 3339 cannot write back: stored in an
	// entry, it would make the entry unreadable.
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, errors.New("out of range: the year in UTC must be 1 to 9999")
	}
	return t.UTC(), nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// explainJSON says why json.Unmarshal refused body: it decodes it again as
// a stream, which tells a bad object from trailing data (a refused body is
// the only one that pays for the second pass).
func explainJSON(body []byte) error {
	var p payload
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("%w: body is not a JSON object: %v", ErrInvalid, err)
	}
	// More would report a stray '}' or ']' as the end of the input.
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data after the JSON object", ErrInvalid)
	}
	return fmt.Errorf("%w: body is not a JSON object", ErrInvalid)
}
