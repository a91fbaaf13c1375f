package webhook

import (
	"strings"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/webhook/examples"
)

// benchBody is an instance.updated delivery shaped like Prismatic's
// example payloads (the shape `make bench` sends).
var benchBody = []byte(`{"integration":null,"customer":null,"parent_integration":null,"instance":{"id":"SW5zdGFuY2U6MQ==","name":"Acme"},"user":{"id":"VXNlcjpiZW5jaA==","email":"bench@example.com","name":"prismbench"},"event_type":"instance.updated","timestamp":"2026-11-27T15:05:06.306975+00:00","organization_id":"T3JnYW5pemF0aW9uOmJlbmNo","webhook_id":"V2ViaG9va0NvbmZpZzpiZW5jaA=="}`)

func BenchmarkParse(b *testing.B) {
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(InstanceUpdated, benchBody, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseExamples parses example payloads as Prismatic sends them
// (indented): one with an instance, one with a customer and a connection;
// "scan" is Parse, "json" Parse with encoding/json alone, as it was.
func BenchmarkParseExamples(b *testing.B) {
	for _, name := range []string{"instance.updated.json", "connection.updated.customer-connection.json"} {
		body := examples.Must(b, name)
		typ := examples.Type(name)
		now := time.Now()
		for _, parse := range []struct {
			name string
			fn   func(string, []byte, time.Time) (Event, error)
		}{{"scan", Parse}, {"json", parseJSON}} {
			b.Run(strings.TrimSuffix(name, ".json")+"/"+parse.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					if _, err := parse.fn(typ, body, now); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	v := NewVerifier("s3cret")
	sig := SignatureValue("s3cret", benchBody)
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(benchBody, sig); err != nil {
			b.Fatal(err)
		}
	}
}
