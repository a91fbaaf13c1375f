package webhook

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/webhook/examples"
)

// FuzzParse feeds Parse arbitrary bodies and event headers, alone and
// behind Verify, as the intake does. Whatever it is fed, Parse must not
// panic, must refuse with ErrInvalid, and an event it accepts must be one
// the rest of the daemon can store.
func FuzzParse(f *testing.F) {
	payloads := examples.All()
	for _, name := range slices.Sorted(maps.Keys(payloads)) {
		body := payloads[name]
		f.Add(examples.Type(name), body, "")
		f.Add("", body, "")
	}
	for _, seed := range []struct{ header, body string }{
		{"webhook.test", `{"message":"This is a test webhook from Prismatic."}`},
		{"instance.updated", `null`},
		{"instance.updated", `{"event_type":"instance.updated"}}`},
		{"instance.updated", `{"event_type":"instance.updated"}]`},
		{"instance.updated", `{"event_type":"instance.updated"} {}`},
		{"", `{"event_type":"instance.deleted","instance":{"id":"{tag}"}}`},
		{"", `{"event_type":"x","timestamp":"2026-11-20T10:00:00"}`},
		{"", `{"event_type":"x","timestamp":"2026-11-20T10:00:00.123456789+14:00"}`},
		{"", `{"event_type":"x","instance":{"id":"SW5zdGFuY2U6MQ==","customer":{"id":"Q3VzdG9tZXI6MQ==","externalId":"a\u0000"}}}`},
		{"", `{"event_type":"x","connection":{"id":"SW5zdGFuY2VDb25maWdWYXJpYWJsZTox","key":"k\u0000{}"}}`},
		{"", `{"EVENT_TYPE":"x","Instance":{"ID":"SW5zdGFuY2U6MQ=="}}`},
		{"", `{"event_type":"\ud800","timestamp":""}`},
		{"", "{\"event_type\":\"\xff\xfe\"}"},
		{"", `{"event_type":"x","instance":{"id":"` + strings.Repeat("A", 257) + `"}}`},
		{"a\x00b", `{}`},
		{"", ``},
		{"", `[`},
	} {
		f.Add(seed.header, []byte(seed.body), "")
	}
	f.Add("instance.updated", []byte(`{}`), "sha256="+strings.Repeat("0", 64))
	f.Add("instance.updated", []byte(`{}`), "SHA256=ZZ")

	const secret = "fuzz-secret"
	v := NewVerifier(secret)
	received := time.Date(2026, 11, 20, 14, 0, 0, 0, time.FixedZone("X", -7*3600))
	f.Fuzz(func(t *testing.T, header string, body []byte, sig string) {
		ev, err := Parse(header, body, received)
		checkParsed(t, ev, err, received)

		// Verify then Parse, the intake's order, with Prismatic's signature.
		if err := v.Verify(body, SignatureValue(secret, body)); err != nil {
			t.Fatalf("Verify refused its own signature: %v", err)
		}
		ev2, err2 := Parse(header, body, received)
		checkParsed(t, ev2, err2, received)
		if ev2 != ev || (err2 == nil) != (err == nil) {
			t.Fatalf("Parse is not deterministic: %+v, %v then %+v, %v", ev, err, ev2, err2)
		}

		// A fuzzed signature is accepted only if it is the right one.
		if v.Verify(body, sig) == nil {
			want := SignatureValue(secret, body)
			if got := strings.TrimSpace(sig); !strings.HasPrefix(got, "sha256=") || !strings.EqualFold(got, want) {
				t.Fatalf("Verify accepted %q for a body signed %q", sig, want)
			}
		}
	})
}

func checkParsed(t *testing.T, ev Event, err error, received time.Time) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("Parse error %v does not wrap ErrInvalid", err)
		}
		if ev != (Event{}) {
			t.Fatalf("Parse returned %+v with its error", ev)
		}
		return
	}
	if ev.Type == "" || len(ev.Type) > MaxTypeLength || !printable(ev.Type) {
		t.Fatalf("accepted event type %q", ev.Type)
	}
	if ev.Timestamp.Location() != time.UTC {
		t.Fatalf("accepted timestamp %v (%v) is not a UTC time", ev.Timestamp, ev.Timestamp.Location())
	}
	if ev.TimestampMissing && !ev.Timestamp.Equal(received) {
		t.Fatalf("missing timestamp replaced by %v, not the received time", ev.Timestamp)
	}
	for name, id := range map[string]string{"instance": ev.InstanceID, "connection": ev.ConnectionID, "customer": ev.CustomerID} {
		if id != "" && !ValidID(id) {
			t.Fatalf("accepted %s id %q", name, id)
		}
	}
	if ev.ConnectionKey != "" && ev.ConnectionID == "" {
		t.Fatalf("connection key %q without a connection id", ev.ConnectionKey)
	}
	if len(ev.CustomerExternalID) > 512 || !printable(ev.CustomerExternalID) {
		t.Fatalf("accepted customer external id %q", ev.CustomerExternalID)
	}
}
