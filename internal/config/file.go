package config

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// The configuration file is one setting per line, named exactly like its
// flag:
//
//	# prismcache.conf
//	listen = 0.0.0.0:8080
//	redis-url = redis://10.0.0.5:6379/0
//	webhook-secret-file = /run/secrets/prismatic-webhook
//	workers = 16
//
// Blank lines and lines starting with # are ignored; a value may be wrapped
// in double quotes (Go syntax) to keep spaces or a #. An unknown name, a
// repeated name or a bad value is an error naming the file and line.

// origin says where a setting's value came from, for check-config.
type origin string

// loadFile applies the settings in the file at path.
func (c *Config) loadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	byName := map[string]setting{}
	for _, s := range c.settings() {
		byName[s.flag] = s
	}
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: want name = value, got %q", path, n, line)
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		s, known := byName[name]
		if !known {
			return fmt.Errorf("%s:%d: unknown setting %q (settings are named like the flags of prismcache serve)", path, n, name)
		}
		if prev, dup := seen[name]; dup {
			return fmt.Errorf("%s:%d: %s is already set on line %d", path, n, name, prev)
		}
		seen[name] = n
		if strings.HasPrefix(value, `"`) {
			uq, err := strconv.Unquote(value)
			if err != nil {
				return fmt.Errorf("%s:%d: %s: bad quoted value: %v", path, n, name, err)
			}
			value = uq
		} else if i := strings.Index(value, " #"); i >= 0 {
			value = strings.TrimSpace(value[:i])
		}
		if err := s.value.Set(value); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", path, n, name, err)
		}
		c.origins[name] = origin(fmt.Sprintf("%s:%d", path, n))
	}
	return sc.Err()
}

// ErrFlags wraps a command-line error; the FlagSet has printed its usage.
var ErrFlags = errors.New("bad command line")

// Load builds the configuration of prismcache serve: the defaults, then the
// file named by --config or PRISMCACHE_CONFIG, then the environment, then
// the flags in args (registered on fs), then secrets read from their
// *-file settings; it validates the result. getenv is os.Getenv outside
// tests.
func Load(fs *flag.FlagSet, args []string, getenv func(string) string) (Config, error) {
	return load(fs, args, getenv, Default())
}

// LoadTool is Load for commands that talk to Redis and Prismatic but take
// no webhooks (prismcache resync): the webhook secret is not required.
func LoadTool(fs *flag.FlagSet, args []string, getenv func(string) string) (Config, error) {
	c := Default()
	c.tool = true
	return load(fs, args, getenv, c)
}

func load(fs *flag.FlagSet, args []string, getenv func(string) string, c Config) (Config, error) {
	var path string
	fs.StringVar(&path, "config", "", "`path` of a configuration file: one name = value per line, names as the flags (env PRISMCACHE_CONFIG)")
	c.RegisterFlags(fs)
	path = configPath(args, getenv("PRISMCACHE_CONFIG"))
	if path != "" {
		if err := c.loadFile(path); err != nil {
			return c, err
		}
	}
	if err := c.LoadEnv(getenv); err != nil {
		return c, err
	}
	before := c.snapshot()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, fmt.Errorf("%w: %v", ErrFlags, err)
	}
	for name, v := range c.snapshot() {
		if before[name] != v {
			c.origins[name] = "flag"
		}
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected argument %q", ErrFlags, fs.Arg(0))
	}
	if err := c.readSecretFiles(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// configPath finds --config in args (it must be known before the flags are
// parsed, since flags override the file), else the environment's.
func configPath(args []string, env string) string {
	path := env
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		for _, p := range []string{"-config", "--config"} {
			if a == p && i+1 < len(args) {
				path = args[i+1]
			} else if v, ok := strings.CutPrefix(a, p+"="); ok {
				path = v
			}
		}
	}
	return path
}

func (c *Config) snapshot() map[string]string {
	out := map[string]string{}
	for _, s := range c.settings() {
		out[s.flag] = s.value.String()
	}
	return out
}

// readSecretFiles reads every secret given as a file; setting a secret both
// directly and as a file is an error.
func (c *Config) readSecretFiles() error {
	var errs []error
	for _, sf := range []struct {
		name     string
		path     string
		set      func(string)
		hasValue bool
	}{
		{"webhook-secret", c.WebhookSecretFile, func(v string) { _ = listValue{p: &c.WebhookSecrets}.Set(v) }, len(c.WebhookSecrets) > 0},
		{"admin-token", c.AdminTokenFile, func(v string) { c.AdminToken = v }, c.AdminToken != ""},
		{"prismatic-token", c.PrismaticTokenFile, func(v string) { c.PrismaticToken = v }, c.PrismaticToken != ""},
		{"prismatic-refresh-token", c.PrismaticRefreshTokenFile, func(v string) { c.PrismaticRefreshToken = v }, c.PrismaticRefreshToken != ""},
	} {
		if sf.path == "" {
			continue
		}
		if sf.hasValue {
			errs = append(errs, fmt.Errorf("%s and %s-file are both set: keep one", sf.name, sf.name))
			continue
		}
		b, err := os.ReadFile(sf.path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s-file=%q: %w", sf.name, sf.path, err))
			continue
		}
		v := strings.TrimRight(string(b), "\r\n")
		if strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("%s-file=%q: the file is empty", sf.name, sf.path))
			continue
		}
		sf.set(v)
		c.origins[sf.name] = origin("file " + sf.path)
	}
	return errors.Join(errs...)
}

// Effective prints the configuration as a configuration file would hold it,
// secrets masked, each line annotated with where its value came from.
func (c *Config) Effective() string {
	var b strings.Builder
	for _, s := range c.settings() {
		v := s.value.String()
		if s.secret && v != "" {
			v = mask(s.flag, v)
		}
		from := c.origins[s.flag]
		if from == "" {
			from = "default"
		}
		if strings.ContainsAny(v, "# \t\"") {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(&b, "%-28s = %-40s # %s\n", s.flag, v, from)
	}
	return b.String()
}

// mask hides a secret, keeping how many there are (a rotation has two).
func mask(name, v string) string {
	if name == "redis-url" {
		return redactURL(v)
	}
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = "<hidden>"
	}
	return strings.Join(parts, ",")
}
