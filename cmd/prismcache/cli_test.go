package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// TestEachCommandShowsItsOwnFlags: "<command> -h" exits 0 and lists that
// command's flags, each with the kind of value it takes; resync does not
// list serve's webhook and HTTP settings.
func TestEachCommandShowsItsOwnFlags(t *testing.T) {
	want := map[string][]string{
		"serve":        {"-listen host:port", "-admin-listen host:port", "-log-level debug|info|warn|error", "-work-lease duration", "-workers count", "-config path"},
		"resync":       {"-all", "-redis-url url", "-workers count", "-prismatic-token token"},
		"get":          {"-redis-url url", "-redis-prefix prefix", "Exit codes"},
		"history":      {"-redis-url url", "-redis-prefix prefix", "-json", "newest first"},
		"refresh":      {"-url string", "-admin-token string", "-timeout duration"},
		"dev":          {"-customers int", "-log-level debug|info|warn|error", "-admin-token string"},
		"sim":          {"-webhook-url string", "-schema-change Type.field=NewType"},
		"check-config": {"-online", "-listen host:port"},
		"schema":       {"pull"},
		"version":      {"prismcache version"},
	}
	for _, c := range commands() {
		w, ok := want[c.name]
		if !ok {
			t.Errorf("no expectations for %q", c.name)
			continue
		}
		var out, errOut bytes.Buffer
		if rc := run(context.Background(), []string{c.name, "-h"}, &out, &errOut); rc != 0 {
			t.Errorf("%s -h: exit %d: %s", c.name, rc, errOut.String())
		}
		help := errOut.String()
		for _, s := range w {
			if !strings.Contains(help, s) {
				t.Errorf("%s -h does not show %q:\n%s", c.name, s, help)
			}
		}
		if m := regexp.MustCompile(`(?m)^  -\S+ value$`).FindString(help); m != "" {
			t.Errorf("%s -h: %q does not say what kind of value it takes", c.name, m)
		}
	}
	var errOut bytes.Buffer
	run(context.Background(), []string{"resync", "-h"}, &bytes.Buffer{}, &errOut)
	for _, serveOnly := range []string{"-listen ", "-webhook-secret ", "-admin-token ", "-max-body ", "-event-action "} {
		if strings.Contains(errOut.String(), "\n  "+serveOnly) {
			t.Errorf("resync -h lists serve's %s:\n%s", serveOnly, errOut.String())
		}
	}
}

// TestUnknownEnumValuesAreRefused: a level or format outside the list stops
// the command before it starts, naming the allowed values.
func TestUnknownEnumValuesAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--log-level", "verbose"},
		{"check-config", "--log-level", "verbose"},
		{"dev", "--log-level", "verbose"},
		{"sim", "--log-level", "verbose"},
	} {
		var out, errOut bytes.Buffer
		rc := run(context.Background(), args, &out, &errOut)
		if rc != exitUsage || !strings.Contains(errOut.String(), `"verbose" is not one of debug, info, warn or error`) {
			t.Errorf("%v: exit %d, %s", args, rc, errOut.String())
		}
	}
	t.Setenv("PRISMCACHE_LOG_FORMAT", "xml")
	var errOut bytes.Buffer
	rc := run(context.Background(), []string{"check-config", "--webhook-secret", "s", "--prismatic-token", "t"}, &bytes.Buffer{}, &errOut)
	if rc != exitError || !strings.Contains(errOut.String(), `PRISMCACHE_LOG_FORMAT="xml": "xml" is not one of auto, text or json`) {
		t.Errorf("check-config with PRISMCACHE_LOG_FORMAT=xml: exit %d, %s", rc, errOut.String())
	}
	// serve refuses it too; its stderr is not a terminal here, so it says
	// so as a JSON log line.
	errOut.Reset()
	rc = run(context.Background(), []string{"serve", "--webhook-secret", "s", "--prismatic-token", "t"}, &bytes.Buffer{}, &errOut)
	var line struct{ Level, Msg, Err string }
	if err := json.Unmarshal(errOut.Bytes(), &line); rc != exitError || err != nil || line.Level != "ERROR" ||
		!strings.Contains(line.Err, `"xml" is not one of auto, text or json`) {
		t.Errorf("serve with PRISMCACHE_LOG_FORMAT=xml: exit %d, %s", rc, errOut.String())
	}
}

func TestVersion(t *testing.T) {
	var a, b bytes.Buffer
	if rc := run(context.Background(), []string{"--version"}, &a, os.Stderr); rc != 0 {
		t.Fatalf("--version: exit %d", rc)
	}
	if rc := run(context.Background(), []string{"version"}, &b, os.Stderr); rc != 0 {
		t.Fatalf("version: exit %d", rc)
	}
	if a.String() != b.String() || !strings.HasPrefix(a.String(), "prismcache ") || !strings.Contains(a.String(), runtime.Version()) {
		t.Fatalf("--version %q, version %q", a.String(), b.String())
	}
}

// TestBuiltBinaryReportsItsVersion builds the binary as make build and make
// release do and runs it.
func TestBuiltBinaryReportsItsVersion(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v: %s", err, out)
	}
	if !strings.HasPrefix(string(out), "prismcache "+testVersion+" (") {
		t.Fatalf("--version printed %q, want the version given at build time, %s", out, testVersion)
	}
}

// testVersion is the version buildBinary stamps.
const testVersion = "v0.0.0-test.1"

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// buildBinary builds cmd/prismcache once per test run, with the flags of
// make release, and returns its path.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "prismcache-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "prismcache")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+testVersion, "-o", builtBin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildFailure{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return builtBin
}

type buildFailure struct {
	err error
	out string
}

func (b *buildFailure) Error() string { return b.err.Error() + ": " + b.out }

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		_ = os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}
