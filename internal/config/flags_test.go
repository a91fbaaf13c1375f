package config

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

// TestEveryFlagNamesItsType: help texts show "-workers count", never
// "-workers value"; bool flags take no value.
func TestEveryFlagNamesItsType(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c := Default()
	c.RegisterFlags(fs)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		typed, ok := f.Value.(Typed)
		if !ok {
			t.Errorf("-%s: its value does not name its type", f.Name)
			return
		}
		_, isBool := f.Value.(interface{ IsBoolFlag() bool })
		if name := typed.TypeName(); (name == "") != isBool || name == "value" {
			t.Errorf("-%s: type name %q (bool flag: %v)", f.Name, name, isBool)
		}
	})
	if n < 30 {
		t.Fatalf("only %d flags registered", n)
	}
}

// TestEnumsRefuseUnknownValuesEverywhere: flag, environment and file
// refuse a value outside the list, naming the allowed ones.
func TestEnumsRefuseUnknownValuesEverywhere(t *testing.T) {
	file := writeFile(t, "p.conf", "log-format = yaml\n")
	for name, try := range map[string]func() error{
		"flag": func() error { _, err := loadT(t, []string{"--log-format", "yaml"}, valid); return err },
		"env":  func() error { _, err := loadT(t, nil, with(valid, "PRISMCACHE_LOG_FORMAT", "yaml")); return err },
		"file": func() error { _, err := loadT(t, []string{"--config", file}, valid); return err },
	} {
		err := try()
		if err == nil || !strings.Contains(err.Error(), `"yaml" is not one of auto, text or json`) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	var level string
	v := Enum(&level, LogLevels()...)
	if err := v.Set("warn"); err != nil || level != "warn" || v.TypeName() != "debug|info|warn|error" {
		t.Errorf("Enum: Set(warn) = %v, level %q, type %q", err, level, v.TypeName())
	}
}

// TestToolFlagsAreItsOwn: prismcache resync lists the settings it uses,
// not serve's webhook and HTTP settings; a shared config file with those
// is still accepted.
func TestToolFlagsAreItsOwn(t *testing.T) {
	file := writeFile(t, "shared.conf", "listen = 0.0.0.0:8080\nwebhook-secret = s\nworkers = 4\n")
	fs := flag.NewFlagSet("resync", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c, err := LoadTool(fs, []string{"--config", file, "--workers", "2"}, env{"PRISMATIC_TOKEN": "tok-123456"}.get)
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers != 2 || c.Listen != "0.0.0.0:8080" {
		t.Fatalf("workers %d (flag 2), listen %q (file)", c.Workers, c.Listen)
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	for _, want := range []string{"config", "redis-url", "redis-prefix", "prismatic-url", "prismatic-token", "workers", "work-shards"} {
		if !slices.Contains(names, want) {
			t.Errorf("resync has no -%s", want)
		}
	}
	for _, serveOnly := range []string{"listen", "admin-listen", "webhook-secret", "max-body", "event-action", "admin-token", "debug-listen"} {
		if slices.Contains(names, serveOnly) {
			t.Errorf("resync lists serve's -%s", serveOnly)
		}
	}
	fs = flag.NewFlagSet("resync", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := LoadTool(fs, []string{"--listen", "0.0.0.0:1"}, env{"PRISMATIC_TOKEN": "tok-123456"}.get); err == nil {
		t.Error("resync accepted serve's --listen")
	}
}

func TestWarningsNameUnknownEventTypes(t *testing.T) {
	c, err := loadT(t, []string{"--event-action", "instance.updatd=refetch,instance.deleted=ignore,integration.published=ignore"}, valid)
	if err != nil {
		t.Fatal(err)
	}
	ws := c.Warnings()
	if len(ws) != 2 {
		t.Fatalf("warnings %+v, want two (instance.updatd, integration.published)", ws)
	}
	first := ws[0]
	if first.Attrs[1] != "instance.updatd" || !strings.Contains(first.Attrs[3].(string), "instance.updated") || !strings.Contains(first.Msg, "misspelt") {
		t.Errorf("warning %+v does not name the type and the known ones", first)
	}
	c, _ = loadT(t, []string{"--event-action", "instance.updated=refetch"}, valid)
	if ws := c.Warnings(); len(ws) != 0 {
		t.Errorf("a known type warns: %+v", ws)
	}
}
