package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prismcache/prismcache"
	"github.com/prismcache/prismcache/internal/prismaticsim"
)

// simURL starts a simulator serving schema.graphql with change applied
// (e.g. "Instance.needsDeploy=Boolean"; "" for none) and returns its URL.
func simURL(t *testing.T, change string) string {
	t.Helper()
	var c prismaticsim.SchemaChange
	if change != "" {
		var err error
		if c, err = prismaticsim.ParseSchemaChange(change); err != nil {
			t.Fatal(err)
		}
	}
	sim, err := prismaticsim.New(prismaticsim.Options{Seed: 2, Customers: 2, SchemaChange: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestCheckConfigOnline: against an API serving our schema the online check
// passes; against one whose schema differs in one field it exits 1 and
// names that field; with a refused token it says what to do.
func TestCheckConfigOnline(t *testing.T) {
	t.Setenv("PRISMCACHE_WEBHOOK_SECRET", "online-secret")
	t.Setenv("PRISMATIC_TOKEN", prismaticsim.DefaultAccessToken)
	for _, tc := range []struct {
		name, change, token string
		code                int
		say                 []string
	}{
		{"same schema", "", "", 0, []string{"ok    the token is accepted", "ok    introspection:", "ok    8 operations checked"}},
		{"one field differs", "Instance.needsDeploy=Boolean", "", 1, []string{
			"FAIL  Instance.needsDeploy: schema.graphql has Boolean!, the API has Boolean (used by CustomerConfigVariableInstances, GetInstance, GetInstanceConfigPage, GetInstances, ListCustomerInstances, ListInstances)",
			"differs from the schema.graphql this prismcache was built with in 1 field"}},
		{"one field gone", "Instance.lastDeployedAt=", "", 1, []string{
			"FAIL  Instance.lastDeployedAt: schema.graphql has DateTime, the API has no such field",
			`Cannot query field "lastDeployedAt" on type "Instance"`}},
		{"token refused", "", "not-the-token", 1, []string{"FAIL  graphql Probe: HTTP 401", "access tokens expire"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"check-config", "--online", "--prismatic-url", simURL(t, tc.change)}
			if tc.token != "" {
				args = append(args, "--prismatic-token", tc.token)
			}
			var out, errOut bytes.Buffer
			rc := run(context.Background(), args, &out, &errOut)
			if rc != tc.code {
				t.Fatalf("exit %d, want %d:\n%s%s", rc, tc.code, out.String(), errOut.String())
			}
			all := out.String() + errOut.String()
			for _, s := range tc.say {
				if !strings.Contains(all, s) {
					t.Errorf("output does not say %q:\n%s", s, all)
				}
			}
			if strings.Contains(all, "not-the-token") || strings.Contains(all, prismaticsim.DefaultAccessToken) {
				t.Errorf("a token is shown:\n%s", all)
			}
		})
	}
}

// TestSchemaPull rewrites a copy of schema.graphql from an API whose schema
// differs in one field: exactly that line changes (its comment kept) and
// the header records the pull; --check then finds nothing to change.
func TestSchemaPull(t *testing.T) {
	t.Setenv("PRISMATIC_TOKEN", prismaticsim.DefaultAccessToken)
	path := filepath.Join(t.TempDir(), "schema.graphql")
	if err := os.WriteFile(path, []byte(prismcache.Schema()), 0o644); err != nil {
		t.Fatal(err)
	}
	same := simURL(t, "")
	var out, errOut bytes.Buffer
	if rc := run(context.Background(), []string{"schema", "pull", "--out", path, "--prismatic-url", same}, &out, &errOut); rc != 0 || !strings.Contains(out.String(), "nothing to change") {
		t.Fatalf("unchanged API: exit %d: %s%s", rc, out.String(), errOut.String())
	}
	changed := simURL(t, "Instance.needsDeploy=Boolean")
	out.Reset()
	if rc := run(context.Background(), []string{"schema", "pull", "--check", "--out", path, "--prismatic-url", changed}, &out, &errOut); rc != 1 || !strings.Contains(out.String(), "Instance.needsDeploy: Boolean! in schema.graphql, Boolean in the API") {
		t.Fatalf("--check: exit %d: %s%s", rc, out.String(), errOut.String())
	}
	if b, _ := os.ReadFile(path); string(b) != prismcache.Schema() {
		t.Fatal("--check wrote the file")
	}
	out.Reset()
	if rc := run(context.Background(), []string{"schema", "pull", "--out", path, "--prismatic-url", changed}, &out, &errOut); rc != 0 || !strings.Contains(out.String(), "go generate ./...") {
		t.Fatalf("pull: exit %d: %s%s", rc, out.String(), errOut.String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if !strings.Contains(got, "  needsDeploy: Boolean                           # [use] S-API, E-AGENT; Boolean! [inf]; [live] was Boolean!\n") ||
		!strings.Contains(got, "# Pulled from "+changed+"/api on ") || strings.Count(got, "\n") != strings.Count(prismcache.Schema(), "\n")+2 {
		t.Fatalf("pulled file:\n%s", got)
	}
	out.Reset()
	if rc := run(context.Background(), []string{"schema", "pull", "--check", "--out", path, "--prismatic-url", changed}, &out, &errOut); rc != 0 || !strings.Contains(out.String(), "nothing to change") {
		t.Fatalf("a second pull: exit %d: %s%s", rc, out.String(), errOut.String())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("files left beside the schema: %v", entries)
	}
}
