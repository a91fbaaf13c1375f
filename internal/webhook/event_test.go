package webhook

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/webhook/examples"
)

const (
	exampleInstanceID = "SW5zdGFuY2U6ZWM5YzViM2EtZjNhNy00MDliLTllM2QtODA3MDAxNDVlNWU0"
	exampleICVID      = "SW5zdGFuY2VDb25maWdWYXJpYWJsZTozZjJhMWIwYy05ZDhlLTRmN2EtOGI2Yy01ZDRlM2YyYTFiMGM="
	exampleCCVID      = "Q3VzdG9tZXJDb25maWdWYXJpYWJsZTo3YzZiNWE0OS0zODI3LTQxNjAtOWY4ZS03ZDZjNWI0YTM5Mjg="
	exampleCustomerID = "Q3VzdG9tZXI6NWExZjBjMmUtN2Q0NC00YzFiLThmMGUtMmI5ZDZmM2ExYzc3"
	exampleName       = "Acme Corp - Salesforce Sync"
)

// receivedAt stands in for the arrival time; not UTC, so a test sees
// whether Parse converts it.
var receivedAt = time.Date(2026, 11, 20, 14, 0, 0, 123456789, time.FixedZone("CET", 3600))

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// mustParseEvent parses body with header type typ and fails the test on error.
func mustParseEvent(t *testing.T, typ string, body []byte) Event {
	t.Helper()
	ev, err := Parse(typ, body, receivedAt)
	if err != nil {
		t.Fatalf("Parse(%q, %s): %v", typ, body, err)
	}
	return ev
}

func TestParsePayloads(t *testing.T) {
	instance := func(typ, ts string) Event {
		return Event{Type: typ, Timestamp: utc(ts), InstanceID: exampleInstanceID, InstanceName: exampleName}
	}
	want := map[string]Event{
		"instance.created.json":  instance(InstanceCreated, "2026-11-20T10:00:00Z"),
		"instance.deleted.json":  instance(InstanceDeleted, "2026-11-21T09:00:00.000001Z"),
		"instance.deployed.json": instance(InstanceDeployed, "2026-11-20T10:06:30.555555Z"),
		"instance.disabled.json": instance(InstanceDisabled, "2026-11-20T11:00:00.000001Z"),
		"instance.enabled.json":  instance(InstanceEnabled, "2026-11-20T11:30:00.000001Z"),
		"instance.updated.json":  instance(InstanceUpdated, "2026-11-20T10:05:12.10101Z"),
		"integration.published.json": {
			Type: "integration.published", Timestamp: utc("2025-08-21T20:22:57.855591Z"),
		},
		"oauth2.token_refresh_failed.instance-connection-only.json": {
			Type: OAuth2TokenRefreshFailed, Timestamp: utc("2026-11-20T12:10:00Z"),
			ConnectionID: exampleICVID, ConnectionKey: "salesforceConnection",
		},
		"oauth2.token_refreshed.with-instance.json": {
			Type: OAuth2TokenRefreshed, Timestamp: utc("2026-11-20T12:00:00Z"),
			InstanceID: exampleInstanceID, InstanceName: exampleName,
			ConnectionID: exampleICVID, ConnectionKey: "salesforceConnection",
		},
		"connection.updated.customer-connection.json": {
			Type: ConnectionUpdated, Timestamp: utc("2026-11-20T12:20:00Z"),
			ConnectionID: exampleCCVID, ConnectionKey: "acmeSharedSlack",
			CustomerID: exampleCustomerID, CustomerExternalID: "acme-001", CustomerName: "Acme Corp",
		},
		"webhook.test.json": {Type: WebhookTest, Timestamp: utc("2026-11-20T09:00:00Z")},
	}
	payloads := examples.All()
	for name := range want {
		if _, ok := payloads[name]; !ok {
			t.Errorf("payload %s is gone", name)
		}
	}
	for name, body := range payloads {
		t.Run(name, func(t *testing.T) {
			w, ok := want[name]
			if !ok {
				t.Fatalf("no expectation for payload %s: add one", name)
			}
			if w.Type != examples.Type(name) {
				t.Fatalf("expectation for %s has type %s", name, w.Type)
			}
			for _, header := range []string{w.Type, ""} {
				got := mustParseEvent(t, header, body)
				if got != w {
					t.Errorf("Parse with header %q:\n got %+v\nwant %+v", header, got, w)
				}
				if got.Timestamp.Location() != time.UTC {
					t.Errorf("Timestamp %v is not UTC", got.Timestamp)
				}
			}
		})
	}
}

func TestParseMicroseconds(t *testing.T) {
	ev := mustParseEvent(t, "", []byte(`{"event_type":"instance.updated","timestamp":"2026-11-20T10:05:12.101010+00:00"}`))
	if ev.Timestamp.Nanosecond() != 101010000 {
		t.Errorf("Timestamp %v lost its microseconds", ev.Timestamp)
	}
}

func TestParseEventType(t *testing.T) {
	testBody := examples.Edit(t, examples.Must(t, "webhook.test.json"), func(m map[string]any) { delete(m, "event_type") })
	long := "x." + strings.Repeat("a", MaxTypeLength-2)
	tests := []struct {
		name   string
		header string
		body   string
		want   string // "" for ErrInvalid
	}{
		{"webhook.test from the header", WebhookTest, string(testBody), WebhookTest},
		{"header is trimmed", "  webhook.test\t", string(testBody), WebhookTest},
		{"body and header agree", InstanceUpdated, `{"event_type":"instance.updated"}`, InstanceUpdated},
		{"body alone", "", `{"event_type":"instance.updated"}`, InstanceUpdated},
		{"unknown type accepted", "", `{"event_type":"alert_monitor.triggered"}`, "alert_monitor.triggered"},
		{"max length", "", `{"event_type":"` + long + `"}`, long},
		{"header and body disagree", InstanceDeleted, `{"event_type":"instance.updated"}`, ""},
		{"header differs in case", "Instance.Updated", `{"event_type":"instance.updated"}`, ""},
		{"body type empty, header set", WebhookTest, `{"event_type":""}`, ""},
		{"neither", "", string(testBody), ""},
		{"blank header only", "   ", `{}`, ""},
		{"body type null", "", `{"event_type":null}`, ""},
		{"body type not a string", "", `{"event_type":7}`, ""},
		{"too long", "", `{"event_type":"` + long + `x"}`, ""},
		{"too long header", long + "x", `{}`, ""},
		{"control character", "", `{"event_type":"instance.updated\u0000"}`, ""},
		{"control character in the header", "webhook\x07test", `{}`, ""},
		{"DEL", "", `{"event_type":"instance\u007fupdated"}`, ""},
		{"newline", "", `{"event_type":"instance.updated\n"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Parse(tt.header, []byte(tt.body), receivedAt)
			if tt.want == "" {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("Parse = %+v, %v; want ErrInvalid", ev, err)
				}
				return
			}
			if err != nil || ev.Type != tt.want {
				t.Errorf("Parse = %q, %v; want %q", ev.Type, err, tt.want)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"empty", ``},
		{"whitespace", " \n "},
		{"null", `null`},
		{"null with spaces", ` null `},
		{"array", `[{"event_type":"instance.updated"}]`},
		{"string", `"instance.updated"`},
		{"number", `42`},
		{"bool", `true`},
		{"truncated", `{"event_type":"instance.updated"`},
		{"not JSON", `event_type=instance.updated`},
		{"two objects", `{"event_type":"instance.updated"} {}`},
		{"trailing garbage", `{"event_type":"instance.updated"}x`},
		{"trailing brace", `{"event_type":"instance.updated"}}`},
		{"trailing bracket", `{"event_type":"instance.updated"}]`},
		{"trailing comma", `{"event_type":"instance.updated"},`},
		{"instance not an object", `{"instance":"SW5zdGFuY2U6MQ=="}`},
		{"instance id not a string", `{"instance":{"id":12}}`},
		{"timestamp not a string", `{"timestamp":1763632800}`},
		{"timestamp words", `{"timestamp":"yesterday"}`},
		{"timestamp without zone", `{"timestamp":"2026-11-20T10:00:00"}`},
		{"timestamp with a space", `{"timestamp":"2026-11-20 10:00:00+00:00"}`},
		{"timestamp bad month", `{"timestamp":"2026-13-20T10:00:00Z"}`},
		{"timestamp date only", `{"timestamp":"2026-11-20"}`},
		{"timestamp unix", `{"timestamp":"1763632800"}`},
		{"instance id with braces", `{"instance":{"id":"{SW5zdGFuY2U6MQ==}"}}`},
		{"instance id with a space", `{"instance":{"id":"SW5z dGFuY2U6MQ=="}}`},
		{"instance id with a newline", `{"instance":{"id":"SW5zdGFuY2U6MQ==\n"}}`},
		{"instance id with NUL", `{"instance":{"id":"SW5zdGFuY2U6MQ==\u0000"}}`},
		{"instance id with a tab", `{"instance":{"id":"\tSW5zdGFuY2U6MQ=="}}`},
		{"instance id empty", `{"instance":{"id":""}}`},
		{"instance id too long", `{"instance":{"id":"` + strings.Repeat("A", 257) + `"}}`},
		{"instance id non-ASCII", `{"instance":{"id":"SW5zdGFuY2U6é"}}`},
		{"connection id with braces", `{"connection":{"id":"a{b}c","key":"k"}}`},
		{"connection id with a space", `{"connection":{"id":"a b","key":"k"}}`},
		{"customer id with braces", `{"customer":{"id":"{x}"}}`},
		{"customer id with a control char", `{"customer":{"id":"x\u001by"}}`},
		{"nested customer id invalid", `{"instance":{"id":"SW5zdGFuY2U6MQ==","customer":{"id":"a b"}}}`},
		{"external id with a control char", `{"customer":{"id":"Q3VzdG9tZXI6MQ==","external_id":"acme\u0000"}}`},
		{"camel external id with a newline", `{"customer":{"externalId":"acme\n001"}}`},
		{"external id too long", `{"customer":{"external_id":"` + strings.Repeat("e", 513) + `"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Parse(InstanceUpdated, []byte(tt.body), receivedAt)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q) = %+v, %v; want ErrInvalid", tt.body, ev, err)
			}
		})
	}
}

// TestParseErrorIsShort: an error quotes at most a prefix of a bad value,
// so a huge payload cannot flood the log.
func TestParseErrorIsShort(t *testing.T) {
	long := strings.Repeat("{", 10000)
	for _, body := range []string{
		`{"instance":{"id":"` + long + `"}}`,
		`{"timestamp":"` + long + `"}`,
	} {
		_, err := Parse(InstanceUpdated, []byte(body), receivedAt)
		if !errors.Is(err, ErrInvalid) || len(err.Error()) > 300 {
			t.Errorf("error of %d bytes: %.100v…", len(err.Error()), err)
		}
	}
}

func TestParseTimestampMissing(t *testing.T) {
	for _, body := range []string{
		`{"event_type":"instance.updated"}`,
		`{"event_type":"instance.updated","timestamp":null}`,
		`{"event_type":"instance.updated","timestamp":""}`,
	} {
		ev := mustParseEvent(t, "", []byte(body))
		if !ev.TimestampMissing || !ev.Timestamp.Equal(receivedAt) || ev.Timestamp.Location() != time.UTC {
			t.Errorf("Parse(%s): Timestamp %v, missing %v; want the received time %v in UTC", body, ev.Timestamp, ev.TimestampMissing, receivedAt)
		}
	}
	ev := mustParseEvent(t, "", []byte(`{"event_type":"instance.updated","timestamp":"2026-11-20T10:00:00Z"}`))
	if ev.TimestampMissing {
		t.Error("TimestampMissing set for a payload with a timestamp")
	}
}

func TestParseUnknownKeysIgnored(t *testing.T) {
	body := examples.Edit(t, examples.Must(t, "oauth2.token_refreshed.with-instance.json"), func(m map[string]any) {
		m["alert_monitor"] = map[string]any{"id": "has spaces {and braces}", "deep": []any{1, 2, map[string]any{"x": nil}}}
		m["workflow"] = nil
		m["schema_version"] = 3
		inst := m["instance"].(map[string]any)
		inst["integration"] = map[string]any{"id": "not checked"}
		inst["labels"] = []any{"a", "b"}
		m["connection"].(map[string]any)["inputs"] = map[string]any{"token": "x"}
	})
	got := mustParseEvent(t, OAuth2TokenRefreshed, body)
	want := Event{Type: OAuth2TokenRefreshed, Timestamp: utc("2026-11-20T12:00:00Z"),
		InstanceID: exampleInstanceID, InstanceName: exampleName,
		ConnectionID: exampleICVID, ConnectionKey: "salesforceConnection"}
	if got != want {
		t.Errorf("Parse:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseCustomer(t *testing.T) {
	tests := []struct {
		name string
		body string
		id   string
		ext  string
		cust string
	}{
		{"instance.customer fallback",
			`{"event_type":"instance.updated","instance":{"id":"SW5zdGFuY2U6MQ==","customer":{"id":"Q3VzdG9tZXI6MQ==","name":"Acme","external_id":"acme-001"}}}`,
			"Q3VzdG9tZXI6MQ==", "acme-001", "Acme"},
		{"fallback with top-level null",
			`{"event_type":"instance.updated","customer":null,"instance":{"id":"SW5zdGFuY2U6MQ==","customer":{"id":"Q3VzdG9tZXI6MQ=="}}}`,
			"Q3VzdG9tZXI6MQ==", "", ""},
		{"top-level customer wins",
			`{"event_type":"instance.updated","customer":{"id":"Q3VzdG9tZXI6Mg==","name":"Top"},"instance":{"id":"SW5zdGFuY2U6MQ==","customer":{"id":"Q3VzdG9tZXI6MQ==","name":"Nested"}}}`,
			"Q3VzdG9tZXI6Mg==", "", "Top"},
		{"camelCase externalId",
			`{"event_type":"customer.updated","customer":{"id":"Q3VzdG9tZXI6MQ==","externalId":"acme-camel"}}`,
			"Q3VzdG9tZXI6MQ==", "acme-camel", ""},
		{"external_id wins over externalId",
			`{"event_type":"customer.updated","customer":{"external_id":"snake","externalId":"camel"}}`,
			"", "snake", ""},
		{"empty external_id falls back to externalId",
			`{"event_type":"customer.updated","customer":{"external_id":"","externalId":"camel"}}`,
			"", "camel", ""},
		{"external id with braces and spaces is data",
			`{"event_type":"customer.updated","customer":{"external_id":"Acme {EU} 001"}}`,
			"", "Acme {EU} 001", ""},
		{"external id of 512 bytes",
			`{"event_type":"customer.updated","customer":{"external_id":"` + strings.Repeat("e", 512) + `"}}`,
			"", strings.Repeat("e", 512), ""},
		{"customer without id", `{"event_type":"customer.deleted","customer":{"name":"Acme"}}`, "", "", "Acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := mustParseEvent(t, "", []byte(tt.body))
			if ev.CustomerID != tt.id || ev.CustomerExternalID != tt.ext || ev.CustomerName != tt.cust {
				t.Errorf("customer = %q %q %q, want %q %q %q", ev.CustomerID, ev.CustomerExternalID, ev.CustomerName, tt.id, tt.ext, tt.cust)
			}
		})
	}
}

func TestParseConnection(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		id, key string
	}{
		{"key without id is dropped", `{"event_type":"connection.updated","connection":{"key":"slack"}}`, "", ""},
		{"null id", `{"event_type":"connection.updated","connection":{"id":null,"key":"slack"}}`, "", ""},
		{"id without key", `{"event_type":"connection.updated","connection":{"id":"` + exampleCCVID + `"}}`, exampleCCVID, ""},
		{"null connection", `{"event_type":"connection.updated","connection":null}`, "", ""},
		{"instance with null id", `{"event_type":"instance.updated","instance":{"id":null,"name":"n"}}`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := mustParseEvent(t, "", []byte(tt.body))
			if ev.ConnectionID != tt.id || ev.ConnectionKey != tt.key {
				t.Errorf("connection = %q %q, want %q %q", ev.ConnectionID, ev.ConnectionKey, tt.id, tt.key)
			}
		})
	}
}

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in   string
		want string // UTC, RFC 3339; "" for an error
	}{
		{"2026-11-20T10:06:30.555555+00:00", "2026-11-20T10:06:30.555555Z"},
		{"2026-11-20T10:06:30Z", "2026-11-20T10:06:30Z"},
		{"2026-11-20T10:06:30.123456789Z", "2026-11-20T10:06:30.123456789Z"},
		{"2026-11-20T12:06:30.5+02:00", "2026-11-20T10:06:30.5Z"},
		{"2026-11-20T05:06:30-05:00", "2026-11-20T10:06:30Z"},
		{"2026-11-20T10:06:30", ""},
		{"2026-11-20T10:06:30+0000", ""},
		{"2026-11-20 10:06:30Z", ""},
		{"20 Nov 2026 10:06:30 GMT", ""},
		{"2026-11-20T25:00:00Z", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := ParseTimestamp(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseTimestamp(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(utc(tt.want)) || got.Location() != time.UTC {
			t.Errorf("ParseTimestamp(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestPrintableAndTruncate(t *testing.T) {
	for s, want := range map[string]bool{"": true, "instance.updated": true, "Acme {EU} é": true,
		"a\x00": false, "a\nb": false, "\x7f": false, "\x1f": false} {
		if got := printable(s); got != want {
			t.Errorf("printable(%q) = %v", s, got)
		}
	}
	if got := truncate(strings.Repeat("a", 64)); got != strings.Repeat("a", 64) {
		t.Errorf("truncate cut a 64-byte string: %q", got)
	}
	if got := truncate(strings.Repeat("a", 65)); got != strings.Repeat("a", 64)+"…" {
		t.Errorf("truncate(65 bytes) = %q", got)
	}
}
