package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// env is a fake environment.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// valid is the least a configuration needs.
var valid = env{"PRISMCACHE_WEBHOOK_SECRET": "s3cret-webhook", "PRISMATIC_TOKEN": "tok-123456"}

func loadT(t *testing.T, args []string, e env) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return Load(fs, args, e.get)
}

func with(base env, kv ...string) env {
	out := env{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInvalidValues has one case per bad setting: start-up fails with an
// error that names the setting, shows the value, and says what is allowed.
func TestInvalidValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  env
		want []string // all must appear in the error
	}{
		{"listen", []string{"--listen", "8080"}, valid, []string{"listen", `"8080"`, "host:port"}},
		{"redis-url scheme", []string{"--redis-url", "http://x:1"}, valid, []string{"redis-url", "http://x:1", "redis://"}},
		{"redis-url password is hidden", []string{"--redis-url", "mysql://u:hunter2@x:1"}, valid, []string{"redis-url", "xxxxx"}},
		{"redis-prefix braces", []string{"--redis-prefix", "a{b}"}, valid, []string{"redis-prefix", "a{b}", "braces"}},
		{"no webhook secret", nil, env{"PRISMATIC_TOKEN": "t"}, []string{"webhook-secret", "--insecure-skip-signature"}},
		{"max-body small", []string{"--max-body", "10"}, valid, []string{"max-body", `"10"`, "1024 to"}},
		{"dedup-window", []string{"--dedup-window", "10ms"}, valid, []string{"dedup-window", "10ms", "at least 1s"}},
		{"timestamp-window negative", []string{"--timestamp-window", "-1s"}, valid, []string{"timestamp-window", "-1s", "positive"}},
		{"event-action unknown action", []string{"--event-action", "instance.updated=explode"}, valid, []string{"event-action", "explode", "ignore, stale, refetch, delete"}},
		{"event-action shape", []string{"--event-action", "instance.updated"}, valid, []string{"event-action", "type=action"}},
		{"prismatic-url", []string{"--prismatic-url", "app.prismatic.io"}, valid, []string{"prismatic-url", "app.prismatic.io", "https://"}},
		{"no prismatic token", nil, env{"PRISMCACHE_WEBHOOK_SECRET": "s"}, []string{"PRISMATIC_TOKEN", "PRISMATIC_REFRESH_TOKEN"}},
		{"prismatic-timeout", []string{"--prismatic-timeout", "1ms"}, valid, []string{"prismatic-timeout", "1ms", "100ms to 10m"}},
		{"prismatic-rate", []string{"--prismatic-rate", "0"}, valid, []string{"prismatic-rate", `"0"`, "more than 0"}},
		{"workers", []string{"--workers", "0"}, valid, []string{"workers", `"0"`, "1 to 1024"}},
		{"max-attempts", []string{"--max-attempts", "1000"}, valid, []string{"max-attempts", "1000", "1 to 100"}},
		{"tombstone-ttl", []string{"--tombstone-ttl", "1s"}, valid, []string{"tombstone-ttl", "1s", "at least 1m"}},
		{"resync-interval", []string{"--resync-interval", "1s"}, valid, []string{"resync-interval", "1s", "at least 10s"}},
		{"work-lease", []string{"--work-lease", "1s"}, valid, []string{"work-lease", "1s", "2s to 1h"}},
		{"admin-token short", []string{"--admin-token", "short"}, valid, []string{"admin-token", "at least 16"}},
		{"admin-token spaces", []string{"--admin-token", strings.Repeat(" ", 16)}, valid, []string{"admin-token", "whitespace"}},
		{"admin-token tabs", []string{"--admin-token", "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t"}, valid, []string{"admin-token", "whitespace"}},
		{"admin-token with a space", []string{"--admin-token", "correct horse battery staple"}, valid, []string{"admin-token", "whitespace"}},
		{"admin-token one letter", []string{"--admin-token", strings.Repeat("a", 40)}, valid, []string{"admin-token", "1 different characters", "at least 8"}},
		{"admin-token repeated word", []string{"--admin-token", "abcabcabcabcabcabc"}, valid, []string{"admin-token", "3 different characters"}},
		{"redis-prefix star", []string{"--redis-prefix", "app*"}, valid, []string{"redis-prefix", "app*", "SCAN"}},
		{"redis-prefix question mark", []string{"--redis-prefix", "a?:"}, valid, []string{"redis-prefix", "wildcards"}},
		{"redis-prefix brackets", []string{"--redis-prefix", "a[bc]:"}, valid, []string{"redis-prefix", "wildcards"}},
		{"redis-prefix backslash", []string{"--redis-prefix", `a\b:`}, valid, []string{"redis-prefix", "wildcards"}},
		{"redis-prefix space", []string{"--redis-prefix", "a b:"}, valid, []string{"redis-prefix", "spaces"}},
		{"max-clock-skew zero", []string{"--max-clock-skew", "0s"}, valid, []string{"max-clock-skew", "0s", "1s to 24h"}},
		{"max-clock-skew huge", []string{"--max-clock-skew", "100h"}, valid, []string{"max-clock-skew", "100h", "1s to 24h"}},
		{"timestamp-window huge", []string{"--timestamp-window", "2000000h"}, valid, []string{"timestamp-window", "at most 100 years"}},
		{"intake-max-bytes below max-body", []string{"--intake-max-bytes", "1000"}, valid, []string{"intake-max-bytes", "1000", "at least twice max-body"}},
		{"intake-max-requests", []string{"--intake-max-requests", "0"}, valid, []string{"intake-max-requests", `"0"`, "1 to"}},
		{"body-stall-timeout", []string{"--body-stall-timeout", "1ms"}, valid, []string{"body-stall-timeout", "1ms", "100ms to 1m"}},
		{"log-level", []string{"--log-level", "loud"}, valid, []string{"log-level", "loud", "debug, info"}},
		{"log-format", []string{"--log-format", "xml"}, valid, []string{"log-format", "xml", "auto, text or json"}},
		{"log-level from env", nil, with(valid, "PRISMCACHE_LOG_LEVEL", "verbose"), []string{"PRISMCACHE_LOG_LEVEL", "verbose", "debug, info, warn or error"}},
		{"admin-listen", []string{"--admin-listen", "9090"}, valid, []string{"admin-listen", `"9090"`, "host:port"}},
		{"admin-listen same as listen", []string{"--admin-listen", "127.0.0.1:8080"}, valid, []string{"admin-listen", "other than --listen"}},
		{"env value that does not parse", nil, with(valid, "PRISMCACHE_WORKERS", "many"), []string{"PRISMCACHE_WORKERS", "many", "whole number"}},
		{"env duration", nil, with(valid, "PRISMCACHE_DEDUP_WINDOW", "1 day"), []string{"PRISMCACHE_DEDUP_WINDOW", "1 day", "duration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadT(t, tc.args, tc.env)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows a password", err)
			}
		})
	}
}

func TestSeveralProblemsAreReportedTogether(t *testing.T) {
	_, err := loadT(t, []string{"--workers", "0", "--prismatic-rate", "0"}, valid)
	if err == nil || !strings.Contains(err.Error(), "workers") || !strings.Contains(err.Error(), "prismatic-rate") {
		t.Fatalf("err = %v, want both problems", err)
	}
}

func TestLayering(t *testing.T) {
	file := writeFile(t, "prismcache.conf", `# comment
workers = 3
prismatic-rate = 7
listen = "127.0.0.1:9000"
log-level = warn # trailing comment
`)
	e := with(valid, "PRISMCACHE_CONFIG", file, "PRISMCACHE_PRISMATIC_RATE", "9", "PRISMCACHE_LOG_LEVEL", "error")
	c, err := loadT(t, []string{"--log-level", "debug"}, e)
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers != 3 || c.PrismaticRate != 9 || c.LogLevel != "debug" || c.Listen != "127.0.0.1:9000" || c.MaxAttempts != 6 {
		t.Fatalf("workers %d (file 3), rate %v (env 9), log-level %q (flag debug), listen %q (file), max-attempts %d (default 6)",
			c.Workers, c.PrismaticRate, c.LogLevel, c.Listen, c.MaxAttempts)
	}
	out := c.Effective()
	for _, want := range []string{"# " + file + ":2", "# env PRISMCACHE_PRISMATIC_RATE", "# flag", "# default"} {
		if !strings.Contains(out, want) {
			t.Errorf("Effective() does not say %q:\n%s", want, out)
		}
	}
	// --config on the command line wins over PRISMCACHE_CONFIG.
	other := writeFile(t, "other.conf", "workers = 5\n")
	c, err = loadT(t, []string{"--config=" + other}, e)
	if err != nil || c.Workers != 5 {
		t.Fatalf("--config: workers %d, err %v", c.Workers, err)
	}
}

func TestConfigFileErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"workers 3\n", ":1: want name = value"},
		{"\nwrokers = 3\n", `:2: unknown setting "wrokers"`},
		{"workers = 3\nworkers = 4\n", ":2: workers is already set on line 1"},
		{"workers = three\n", `:1: workers: "three" is not a whole number`},
		{`listen = "unterminated` + "\n", ":1: listen: bad quoted value"},
	} {
		p := writeFile(t, "bad.conf", tc.body)
		_, err := loadT(t, []string{"--config", p}, valid)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("file %q: err = %v, want %q", tc.body, err, tc.want)
		}
	}
	_, err := loadT(t, []string{"--config", "/nonexistent/prismcache.conf"}, valid)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/prismcache.conf") {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestSecretsFromFilesAndMasking(t *testing.T) {
	secret := writeFile(t, "hook", "rotating-secret-a,rotating-secret-b\n")
	admin := writeFile(t, "admin", "admin-token-0123456789\n")
	token := writeFile(t, "token", "access-token-xyz")
	c, err := loadT(t, []string{"--webhook-secret-file", secret, "--admin-token-file", admin}, env{"PRISMATIC_TOKEN_FILE": token})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.WebhookSecrets, "|") != "rotating-secret-a|rotating-secret-b" || c.AdminToken != "admin-token-0123456789" || c.PrismaticToken != "access-token-xyz" {
		t.Fatalf("secrets read: %q %q %q", c.WebhookSecrets, c.AdminToken, c.PrismaticToken)
	}
	out := c.Effective()
	for _, s := range []string{"rotating-secret-a", "rotating-secret-b", "admin-token-0123456789", "access-token-xyz"} {
		if strings.Contains(out, s) {
			t.Errorf("Effective() shows a secret:\n%s", out)
		}
	}
	if !strings.Contains(out, "<hidden>,<hidden>") {
		t.Errorf("Effective() does not show that two webhook secrets are set:\n%s", out)
	}
	_, err = loadT(t, []string{"--admin-token-file", admin, "--admin-token", "admin-token-0123456789"}, valid)
	if err == nil || !strings.Contains(err.Error(), "admin-token and admin-token-file are both set") {
		t.Errorf("both set: err = %v", err)
	}
	empty := writeFile(t, "empty", "\n")
	_, err = loadT(t, []string{"--admin-token-file", empty}, valid)
	if err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: err = %v", err)
	}
}

func TestFlagErrorsAreUsageErrors(t *testing.T) {
	_, err := loadT(t, []string{"--no-such-flag"}, valid)
	if !errors.Is(err, ErrFlags) {
		t.Fatalf("err = %v, want ErrFlags", err)
	}
	_, err = loadT(t, []string{"extra"}, valid)
	if !errors.Is(err, ErrFlags) {
		t.Fatalf("stray argument: err = %v, want ErrFlags", err)
	}
}

// TestIntakeDefaults: the defaults are sized for real payloads, and a
// strong token and a plain prefix pass.
func TestIntakeDefaults(t *testing.T) {
	c, err := loadT(t, []string{"--admin-token", "3f9a1c0e7b2d4f6a8c5e1b3d", "--redis-prefix", "app-1:cache."}, valid)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxBody != 256<<10 || c.MaxClockSkew != 5*time.Minute || c.IntakeMaxBytes < c.MaxBody || c.BodyStallTimeout <= 0 {
		t.Fatalf("defaults: max-body %d, max-clock-skew %s, intake-max-bytes %d, body-stall-timeout %s",
			c.MaxBody, c.MaxClockSkew, c.IntakeMaxBytes, c.BodyStallTimeout)
	}
}
