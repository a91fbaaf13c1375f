package webhook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// payloadDir holds the example payloads shared with the rest of the project
// (copies in testdata/payloads, see its README).
const payloadDir = "testdata/payloads"

// examplePayloads reads every JSON file of payloadDir, keyed by file name.
func examplePayloads(t testing.TB) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(payloadDir, "*.json"))
	if err != nil {
		t.Fatalf("list payloads: %v", err)
	}
	if len(names) == 0 {
		t.Fatalf("no payloads in %s", payloadDir)
	}
	out := make(map[string][]byte, len(names))
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("read payload: %v", err)
		}
		out[filepath.Base(name)] = b
	}
	return out
}

// payloadType is the event type a payload file is named after:
// "oauth2.token_refreshed.with-instance.json" → "oauth2.token_refreshed".
func payloadType(file string) string {
	parts := strings.Split(strings.TrimSuffix(file, ".json"), ".")
	return parts[0] + "." + parts[1]
}
