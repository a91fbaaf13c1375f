package prismaticsim

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Sample describes a sample event for SamplePayload. Ids left empty get
// placeholder ids of the right type.
type Sample struct {
	// Type is the event type, e.g. instance.deployed.
	Type string
	// InstanceID and InstanceName fill "instance" for instance events and,
	// when set, for connection events.
	InstanceID, InstanceName string
	// ConnectionID and ConnectionKey fill "connection" for connection events.
	ConnectionID, ConnectionKey string
	// CustomerID, CustomerName and CustomerExternalID fill "customer" for
	// customer events.
	CustomerID, CustomerName, CustomerExternalID string
	// At is the event's timestamp; now when zero.
	At time.Time
}

// SamplePayload builds a webhook body shaped exactly like the simulator's
// (and the example payloads'), for `prismcache sim trigger` and tests that
// send events by hand. It is a pure function.
func SamplePayload(s Sample) ([]byte, error) {
	if s.Type == "" {
		return nil, fmt.Errorf("sample: no event type")
	}
	at := s.At
	if at.IsZero() {
		at = time.Now()
	}
	ts := at.UTC().Format(webhookTimeFormat)
	user := payloadUser{ID: globalID("User", "00000000-0000-4000-8000-000000000001"), Email: "trigger@example.com", Name: "prismcache sim trigger"}
	if s.Type == "webhook.test" {
		return json.MarshalIndent(testPayload{
			Message:         "This is a test webhook from Prismatic.",
			WebhookEndpoint: ref{ID: "00000000-0000-4000-8000-000000000002", Name: "prismcache"},
			User:            user, EventType: s.Type, Timestamp: ts,
		}, "", "  ")
	}
	p := payload{
		User: user, EventType: s.Type, Timestamp: ts,
		OrganizationID: globalID("Organization", "00000000-0000-4000-8000-000000000003"),
		WebhookID:      "00000000-0000-4000-8000-000000000002",
	}
	family, _, _ := strings.Cut(s.Type, ".")
	switch family {
	case "instance":
		p.Instance = &ref{ID: or(s.InstanceID, globalID("Instance", "00000000-0000-4000-8000-00000000000a")), Name: or(s.InstanceName, "Sample instance")}
	case "connection", "oauth2":
		if s.InstanceID != "" {
			p.Instance = &ref{ID: s.InstanceID, Name: or(s.InstanceName, "Sample instance")}
		}
		p.Connection = &connectionRef{ID: or(s.ConnectionID, globalID("InstanceConfigVariable", "00000000-0000-4000-8000-00000000000b")), Key: or(s.ConnectionKey, "connection")}
	case "customer":
		ext := or(s.CustomerExternalID, "sample-customer")
		p.Customer = &payloadCust{ID: or(s.CustomerID, globalID("Customer", "00000000-0000-4000-8000-00000000000c")), Name: or(s.CustomerName, "Sample Customer"), ExternalID: &ext}
	}
	return json.MarshalIndent(p, "", "  ")
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
