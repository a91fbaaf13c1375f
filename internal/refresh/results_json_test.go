package refresh

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestResultDurationInSeconds: a result's duration is a number of seconds
// in JSON (the admin API shows it), and it reads back.
func TestResultDurationInSeconds(t *testing.T) {
	r := Result{ID: "x", OK: true, Rev: 3, Took: 1250 * time.Millisecond, Started: time.Unix(100, 0).UTC()}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"tookSeconds":1.25`) || strings.Contains(string(b), `"took"`) || !strings.Contains(string(b), `"rev":3`) {
		t.Fatalf("JSON %s", b)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || back != r {
		t.Fatalf("read back %+v (%v), want %+v", back, err, r)
	}
}
