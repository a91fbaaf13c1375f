package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/prismaticsim"
)

// TestSimSchemaChange starts `prismcache sim` with one field of the schema
// changed and introspects it as a schema check would.
func TestSimSchemaChange(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"sim", "--listen", "127.0.0.1:0", "--schema-change", "Instance.needsDeploy=Boolean"}, out, io.Discard)
	}()
	defer func() {
		cancel()
		if rc := <-done; rc != 0 {
			t.Errorf("prismcache sim exited %d", rc)
		}
	}()
	base := regexp.MustCompile(`Prismatic simulator on (http://\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "schema:") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner within 30s; output so far:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "schema.graphql with Instance.needsDeploy of type Boolean") {
		t.Errorf("the banner does not say how the schema differs:\n%s", out.String())
	}
	m := base.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no URL in the banner:\n%s", out.String())
	}
	body, err := json.Marshal(map[string]string{"query": `{ __type(name: "Instance") { fields { name type { kind name } } } }`})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, m[1]+"/api", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+prismaticsim.DefaultAccessToken)
	req.Header.Set(prismaticsim.IntrospectionHeader, "true")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Data struct {
			Type struct {
				Fields []struct {
					Name string
					Type struct{ Kind, Name string }
				}
			} `json:"__type"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, f := range got.Data.Type.Fields {
		types[f.Name] = f.Type.Kind + " " + f.Type.Name
	}
	// needsDeploy is a nullable Boolean now; enabled stays Boolean!.
	if types["needsDeploy"] != "SCALAR Boolean" || types["enabled"] != "NON_NULL " {
		t.Errorf("introspected Instance fields: %v", types)
	}
}

func TestSimSchemaChangeRefused(t *testing.T) {
	for _, tt := range []struct {
		value  string
		rc     int
		stderr string
	}{
		{"Instance.needsDeploy", 2, "want Type.field=NewType"},
		{"Instance.nope=Boolean", 1, `type Instance has no field "nope"`},
		{"Instance.needsDeploy=Nope", 1, `no type "Nope"`},
	} {
		var stderr bytes.Buffer
		rc := run(context.Background(), []string{"sim", "--listen", "127.0.0.1:0", "--schema-change", tt.value}, io.Discard, &stderr)
		if rc != tt.rc || !strings.Contains(stderr.String(), tt.stderr) {
			t.Errorf("--schema-change %s: exit %d, stderr %q; want %d and %q", tt.value, rc, stderr.String(), tt.rc, tt.stderr)
		}
	}
}
