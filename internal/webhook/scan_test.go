package webhook

import (
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/webhook/examples"
)

// parseJSON is Parse with encoding/json alone, as it was before
// scanPayload: the reference the scanner must match.
func parseJSON(headerType string, body []byte, received time.Time) (Event, error) {
	p, err := decodePayload(body)
	if err != nil {
		return Event{}, err
	}
	return p.event(headerType, received)
}

const (
	envelope = `{"event_type":"instance.updated","timestamp":"2026-11-20T10:00:00Z",`
	iid      = `"SW5zdGFuY2U6MQ=="`
	cid      = `"Q3VzdG9tZXI6MQ=="`
	ccvid    = `"Q3VzdG9tZXJDb25maWdWYXJpYWJsZTox"`
)

// scanCases are bodies scanPayload takes (fast) or leaves to encoding/json.
var scanCases = []struct {
	name string
	fast bool
	body string
}{
	{"empty object", true, `{}`},
	{"whitespace around", true, " \t\r\n{ \"event_type\" : \"x\" } \n\t\r "},
	{"nulls", true, `{"event_type":null,"timestamp":null,"instance":null,"connection":null,"customer":null}`},
	{"empty resources", true, `{"event_type":"x","instance":{},"connection":{},"customer":{}}`},
	{"resource nulls", true, `{"event_type":"x","instance":{"id":null,"name":null,"key":null,"external_id":null,"externalId":null,"customer":null}}`},
	{"all fields", true, envelope + `"instance":{"id":` + iid + `,"name":"n","key":"k","external_id":"e","externalId":"E","customer":{"id":` + cid + `,"name":"c","external_id":"x","customer":null}},` +
		`"connection":{"id":` + ccvid + `,"key":"k","name":"n","customer":{"id":` + cid + `}},"customer":{"id":` + cid + `,"externalId":"ext","customer":{}}}`},
	{"instance customer", true, envelope + `"instance":{"id":` + iid + `,"customer":{"id":` + cid + `,"externalId":"a"}}}`},
	{"skipped values of every kind", true, envelope + `"a":[],"b":{},"c":[1,-0,0.5,1e9,-1.5E-3,2e+2,true,false,null,"s",[{}],{"k":[]}],"d":{"x":{"y":{"z":"\u00e9\n\"\\\/"}},"ä\u0041":"` + "\xff\xfe\x7f" + `"}}`},
	{"unwanted keys that look wanted", true, `{"event_types":"x","eventtype":1,"instance_id":[],"user":{"id":5,"ID":"x","Name":{}},"integration":{"customer":{"customer":{}}}}`},
	{"DEL in a kept value", true, "{\"event_type\":\"x\x7f\",\"instance\":{\"name\":\"\x7f\"}}"},
	{"skipped nesting at the bound", true, `{"a":` + strings.Repeat("[", maxSkipDepth) + strings.Repeat("]", maxSkipDepth) + `}`},
	{"duplicate unwanted keys", true, `{"a":1,"a":2,"instance":{"x":1,"x":2}}`},

	{"not an object", false, `[]`},
	{"null", false, `null`},
	{"empty", false, ``},
	{"only space", false, " \n"},
	{"BOM", false, "\xef\xbb\xbf{}"},
	{"form feed", false, "\f{}"},
	{"trailing object", false, `{} {}`},
	{"trailing brace", false, `{}}`},
	{"trailing bracket", false, `{}]`},
	{"trailing NUL", false, "{}\x00"},
	{"unterminated", false, `{"event_type":"x"`},
	{"unterminated string", false, `{"event_type":"x`},
	{"missing colon", false, `{"event_type" "x"}`},
	{"missing comma", false, `{"a":1 "b":2}`},
	{"trailing comma", false, `{"a":1,}`},
	{"trailing comma in array", false, `{"a":[1,]}`},
	{"single quotes", false, `{'a':1}`},
	{"bare key", false, `{a:1}`},
	{"leading zero", false, `{"a":01}`},
	{"plus", false, `{"a":+1}`},
	{"dot", false, `{"a":.5}`},
	{"bare minus", false, `{"a":-}`},
	{"no fraction", false, `{"a":1.}`},
	{"no exponent", false, `{"a":1e}`},
	{"nul literal", false, `{"a":nul}`},
	{"literal with tail", false, `{"a":nullx}`},
	{"TRUE", false, `{"a":TRUE}`},
	{"NaN", false, `{"a":NaN}`},
	{"mismatched close", false, `{"a":[}`},
	{"mismatched close object", false, `{"a":{]}`},
	{"control in skipped string", false, "{\"a\":\"\t\"}"},
	{"bad escape", false, `{"a":"\x"}`},
	{"short unicode escape", false, `{"a":"\u12"}`},
	{"skipped nesting past the bound", false, `{"a":` + strings.Repeat("[", maxSkipDepth+1) + strings.Repeat("]", maxSkipDepth+1) + `}`},
	{"deep nesting", false, `{"a":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`},

	{"escape in a kept value", false, `{"event_type":"instance.update\u0064"}`},
	{"escaped slash in a kept value", false, `{"event_type":"x","instance":{"name":"a\/b"}}`},
	{"non-ASCII in a kept value", false, `{"event_type":"x","customer":{"name":"Müller"}}`},
	{"invalid UTF-8 in a kept value", false, "{\"event_type\":\"x\",\"customer\":{\"external_id\":\"\xff\"}}"},
	{"control in a kept value", false, "{\"event_type\":\"a\tb\"}"},
	{"escape in a key", false, `{"event\u005ftype":"x"}`},
	{"escape in a resource key", false, `{"instance":{"\u0069d":` + iid + `}}`},
	{"non-ASCII key", false, `{"ä":1}`},
	{"Kelvin sign key", false, `{"connection":{"\u212aey":"k","` + "\u212a" + `ey":"k"}}`},
	{"long s key", false, `{"` + "time\u017ftamp" + `":"2026-11-20T10:00:00Z"}`},
	{"upper-case key", false, `{"EVENT_TYPE":"x"}`},
	{"mixed-case key", false, `{"event_type":"x","Instance":{"id":` + iid + `}}`},
	{"mixed-case resource key", false, `{"instance":{"Id":` + iid + `}}`},
	{"externalID", false, `{"customer":{"externalID":"x"}}`},
	{"duplicate event_type", false, `{"event_type":"a","event_type":"b"}`},
	{"duplicate null", false, `{"event_type":"a","event_type":null}`},
	{"duplicate resource", false, `{"instance":{"id":` + iid + `},"instance":{"name":"n"}}`},
	{"duplicate resource key", false, `{"instance":{"id":` + iid + `,"id":` + iid + `}}`},
	{"number for a string", false, `{"event_type":1}`},
	{"bool for a string", false, `{"event_type":true}`},
	{"array for a string", false, `{"event_type":["x"]}`},
	{"object for a string", false, `{"timestamp":{}}`},
	{"string for a resource", false, `{"instance":"x"}`},
	{"array for a resource", false, `{"instance":[]}`},
	{"number for a resource", false, `{"customer":0}`},
	{"number in a nested resource", false, `{"connection":{"customer":{"name":1}}}`},
	{"resource three deep", false, `{"instance":{"customer":{"customer":{}}}}`},
}

// TestScanPayload: the scanner takes the example payloads and the plain
// cases, leaves the rest to encoding/json, and what it takes decodes as
// encoding/json decodes it.
func TestScanPayload(t *testing.T) {
	for name, body := range examples.All() {
		for _, b := range [][]byte{body, examples.Edit(t, body, nil)} {
			if _, ok := scanPayload(b); !ok {
				t.Errorf("%s: scanPayload left %s to encoding/json", name, b)
			}
			checkScan(t, b)
		}
	}
	for _, tc := range scanCases {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := scanPayload([]byte(tc.body)); ok != tc.fast {
				t.Errorf("scanPayload(%s) ok = %v, want %v", tc.body, ok, tc.fast)
			}
			checkScan(t, []byte(tc.body))
		})
	}
}

// TestScanAllocs: the scanner allocates its result and the kept strings,
// nothing for what it skips.
func TestScanAllocs(t *testing.T) {
	body := examples.Must(t, "connection.updated.customer-connection.json")
	if n := testing.AllocsPerRun(100, func() { scanPayload(body) }); n > 2 {
		t.Errorf("scanPayload allocates %v times, want at most 2", n)
	}
}

// FuzzScanMatchesJSON feeds arbitrary bodies to Parse, which scans them,
// and to Parse by encoding/json alone: both must give the same event, or
// the same error. A body the scanner takes must be one encoding/json takes,
// decoded to the same payload.
func FuzzScanMatchesJSON(f *testing.F) {
	payloads := examples.All()
	for _, name := range slices.Sorted(maps.Keys(payloads)) {
		f.Add(payloads[name])
		f.Add(examples.Edit(f, payloads[name], nil))
	}
	for _, tc := range scanCases {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkScan(t, body)
	})
}

var scanReceived = time.Date(2026, 11, 20, 14, 0, 0, 0, time.FixedZone("X", -7*3600))

func checkScan(t *testing.T, body []byte) {
	t.Helper()
	want, wantErr := decodePayload(body)
	if got, ok := scanPayload(body); ok {
		if wantErr != nil {
			t.Fatalf("scanPayload took %q, which encoding/json refuses: %v", body, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("scanPayload(%q) = %s, encoding/json gives %s", body, dump(got), dump(want))
		}
	}
	for _, header := range []string{"", InstanceUpdated} {
		ev, err := Parse(header, body, scanReceived)
		wantEv, wantErr := parseJSON(header, body, scanReceived)
		if ev != wantEv || errText(err) != errText(wantErr) || errors.Is(err, ErrInvalid) != errors.Is(wantErr, ErrInvalid) {
			t.Fatalf("Parse(%q, %q) = %+v, %v; by encoding/json alone %+v, %v", header, body, ev, err, wantEv, wantErr)
		}
	}
}

func dump(p *payload) string {
	b, err := json.Marshal(p)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
