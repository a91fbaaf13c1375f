// Package examples holds the example webhook payloads the project started
// from (payloads/README.md says what each is and how sure we are of its
// shape), embedded, for the tests and fuzz seeds of every package that
// parses or serves webhooks. No command imports it.
package examples

import (
	"embed"
	"encoding/json"
	"io/fs"
	"path"
	"strings"
	"testing"
)

//go:embed payloads/*.json
var files embed.FS

// All returns every example payload keyed by file name
// ("instance.deployed.json"); the slices are the caller's to change.
func All() map[string][]byte {
	names, err := fs.Glob(files, "payloads/*.json")
	if err != nil {
		panic(err) // the pattern is a constant
	}
	out := make(map[string][]byte, len(names))
	for _, name := range names {
		b, err := files.ReadFile(name)
		if err != nil {
			panic(err) // embedded: cannot fail
		}
		out[path.Base(name)] = b
	}
	return out
}

// Must returns the payload in the file name, failing the test when there
// is none; the slice is the caller's to change.
func Must(t testing.TB, name string) []byte {
	t.Helper()
	b, err := files.ReadFile("payloads/" + name)
	if err != nil {
		t.Fatalf("example payload %s: %v", name, err)
	}
	return b
}

// Edit decodes body as a JSON object, lets edit change it (when not nil),
// and encodes it again, failing the test when body is not an object.
func Edit(t testing.TB, body []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if edit != nil {
		edit(m)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return out
}

// Type is the event type a payload file is named after:
// "oauth2.token_refreshed.with-instance.json" → "oauth2.token_refreshed".
func Type(file string) string {
	parts := strings.SplitN(strings.TrimSuffix(file, ".json"), ".", 3)
	if len(parts) < 2 {
		return parts[0]
	}
	return parts[0] + "." + parts[1]
}
