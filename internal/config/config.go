package config

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/server"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/webhook"
)

// Config is the daemon's configuration. Build it with Default, then Load.
type Config struct {
	Listen      string
	AdminListen string
	RedisURL    string
	RedisPrefix string

	WebhookSecrets        []string
	InsecureSkipSignature bool
	MaxBody               int
	DedupWindow           time.Duration
	TimestampWindow       time.Duration
	MaxClockSkew          time.Duration
	EventActions          string

	IntakeMaxBytes    int
	IntakeMaxRequests int
	BodyStallTimeout  time.Duration

	PrismaticURL          string
	PrismaticToken        string
	PrismaticRefreshToken string
	PrismaticTenantID     string
	PrismaticTimeout      time.Duration
	PrismaticRate         float64

	RedisBatching bool

	Workers        int
	MaxAttempts    int
	RetryMax       time.Duration
	TombstoneTTL   time.Duration
	HistoryDepth   int
	ResyncInterval time.Duration
	WorkLease      time.Duration
	WorkShards     int

	AdminToken string

	WebhookSecretFile         string
	AdminTokenFile            string
	PrismaticTokenFile        string
	PrismaticRefreshTokenFile string

	LogLevel  string
	LogFormat string

	DebugListen string

	origins map[string]origin
	tool    bool // LoadTool: no webhooks are taken
}

// Default returns the configuration with every default filled in.
func Default() Config {
	return Config{
		Listen:            "127.0.0.1:8080",
		RedisURL:          "redis://127.0.0.1:6379/0",
		RedisPrefix:       cache.DefaultPrefix,
		RedisBatching:     true,
		MaxBody:           DefaultMaxBody,
		DedupWindow:       server.DefaultDedupWindow,
		MaxClockSkew:      server.DefaultMaxClockSkew,
		IntakeMaxBytes:    DefaultIntakeMaxBytes,
		IntakeMaxRequests: DefaultIntakeMaxRequests,
		BodyStallTimeout:  server.DefaultBodyStall,
		PrismaticURL:      graphql.DefaultURL,
		PrismaticTimeout:  graphql.DefaultTimeout,
		PrismaticRate:     10,
		Workers:           refresh.DefaultWorkers,
		MaxAttempts:       refresh.DefaultFailedAfter,
		RetryMax:          refresh.DefaultRetryMax,
		TombstoneTTL:      store.DefaultTombstoneTTL,
		HistoryDepth:      store.DefaultHistoryDepth,
		ResyncInterval:    refresh.DefaultResyncInterval,
		WorkLease:         refresh.DefaultLease,
		WorkShards:        refresh.DefaultShards,
		LogLevel:          "info",
		LogFormat:         "auto",
		origins:           map[string]origin{},
	}
}

// LogLevels are the values of --log-level; LogFormats those of
// --log-format.
func LogLevels() []string  { return []string{"debug", "info", "warn", "error"} }
func LogFormats() []string { return []string{"auto", "text", "json"} }

func (c *Config) settings() []setting {
	return []setting{
		{"listen", "PRISMCACHE_LISTEN", "address the HTTP server listens on: the webhook route, /healthz and /readyz, and the rest unless --admin-listen is set", stringValue{&c.Listen, "host:port"}, false, false},
		{"admin-listen", "PRISMCACHE_ADMIN_LISTEN", "address of a second HTTP server for /metrics, /status and the admin API /v1, which --listen then no longer serves (empty: --listen serves them)", stringValue{&c.AdminListen, "host:port"}, false, false},
		{"redis-url", "PRISMCACHE_REDIS_URL", "Redis to keep the cache in: redis://, rediss://, redis-cluster://h:p,h:p or redis-sentinel://h:p,h:p/master", stringValue{&c.RedisURL, "url"}, true, true},
		{"redis-prefix", "PRISMCACHE_REDIS_PREFIX", "prefix of every Redis key", stringValue{&c.RedisPrefix, "prefix"}, false, true},
		{"redis-batching", "PRISMCACHE_REDIS_BATCHING", "send the Redis commands of concurrent webhooks and fetches together, as shared pipelines", boolValue{&c.RedisBatching}, false, false},
		{"webhook-secret", "PRISMCACHE_WEBHOOK_SECRET", "webhook signing secret; several, comma-separated, during a rotation", listValue{&c.WebhookSecrets, "secret[,secret]"}, true, false},
		{"insecure-skip-signature", "PRISMCACHE_INSECURE_SKIP_SIGNATURE", "accept unsigned webhooks (never in production)", boolValue{&c.InsecureSkipSignature}, false, false},
		{"max-body", "PRISMCACHE_MAX_BODY", "largest webhook body accepted", intValue{&c.MaxBody, "bytes"}, false, false},
		{"dedup-window", "PRISMCACHE_DEDUP_WINDOW", "how long a delivered body is remembered so a repeat has no effect", durationValue{&c.DedupWindow}, false, false},
		{"timestamp-window", "PRISMCACHE_TIMESTAMP_WINDOW", "refuse webhooks whose timestamp is further than this from now (0: off)", durationValue{&c.TimestampWindow}, false, false},
		{"max-clock-skew", "PRISMCACHE_MAX_CLOCK_SKEW", "refuse signed webhooks dated further than this ahead of this server's clock", durationValue{&c.MaxClockSkew}, false, false},
		{"intake-max-bytes", "PRISMCACHE_INTAKE_MAX_BYTES", "webhook body bytes held in memory at once, across all requests; past it the oldest unfinished body is cut, else 503", intValue{&c.IntakeMaxBytes, "bytes"}, false, false},
		{"intake-max-requests", "PRISMCACHE_INTAKE_MAX_REQUESTS", "webhook requests handled at once; past it the oldest unfinished body is cut, else 503", intValue{&c.IntakeMaxRequests, "count"}, false, false},
		{"body-stall-timeout", "PRISMCACHE_BODY_STALL_TIMEOUT", "drop a webhook whose body sends nothing for this long", durationValue{&c.BodyStallTimeout}, false, false},
		{"event-action", "PRISMCACHE_EVENT_ACTION", "override event actions: type=ignore|stale|refetch|delete, comma-separated", stringValue{&c.EventActions, "type=action[,…]"}, false, false},
		{"prismatic-url", "PRISMATIC_URL", "Prismatic stack URL (the API is at <url>/api)", stringValue{&c.PrismaticURL, "url"}, false, true},
		{"prismatic-token", "PRISMATIC_TOKEN", "Prismatic access token", stringValue{&c.PrismaticToken, "token"}, true, true},
		{"prismatic-refresh-token", "PRISMATIC_REFRESH_TOKEN", "Prismatic refresh token, exchanged for access tokens", stringValue{&c.PrismaticRefreshToken, "token"}, true, true},
		{"prismatic-tenant-id", "PRISMATIC_TENANT_ID", "tenant to select on the token exchange", stringValue{&c.PrismaticTenantID, "id"}, false, true},
		{"prismatic-timeout", "PRISMCACHE_PRISMATIC_TIMEOUT", "timeout of one GraphQL request", durationValue{&c.PrismaticTimeout}, false, true},
		{"prismatic-rate", "PRISMCACHE_PRISMATIC_RATE", "most GraphQL requests per second for the organisation: all replicas together share it through Redis", floatValue{&c.PrismaticRate, "per-second"}, false, true},
		{"workers", "PRISMCACHE_WORKERS", "fetches run at once by this process", intValue{&c.Workers, "count"}, false, true},
		{"max-attempts", "PRISMCACHE_MAX_ATTEMPTS", "failed fetches of one instance before its entry says fetch_failed with last_error (it is retried all the same, for as long as it fails)", intValue{&c.MaxAttempts, "count"}, false, true},
		{"retry-max", "PRISMCACHE_RETRY_MAX", "longest wait between two retries of a failed fetch (exponential backoff with jitter up to it; a longer Retry-After from the API wins)", durationValue{&c.RetryMax}, false, true},
		{"tombstone-ttl", "PRISMCACHE_TOMBSTONE_TTL", "how long a deleted instance's tombstone is kept", durationValue{&c.TombstoneTTL}, false, true},
		{"history-depth", "PRISMCACHE_HISTORY_DEPTH", "how many revisions of each instance (what each deploy changed) are kept in Redis; 0 keeps none", intValue{&c.HistoryDepth, "count"}, false, true},
		{"admin-token", "PRISMCACHE_ADMIN_TOKEN", "bearer token of the admin API under /v1 (empty: the API is off)", stringValue{&c.AdminToken, "token"}, true, false},
		{"work-lease", "PRISMCACHE_WORK_LEASE", "how long a claimed instance stays with a worker that stopped answering before another takes it (renewed every third of it while the worker lives)", durationValue{&c.WorkLease}, false, true},
		{"work-shards", "PRISMCACHE_WORK_SHARDS", "shards of the work set, each in a Redis Cluster slot of its own; the first replica records it in Redis and later ones follow the record", intValue{&c.WorkShards, "count"}, false, true},
		{"resync-interval", "PRISMCACHE_RESYNC_INTERVAL", "how often every instance is compared with Prismatic, one request per 100 instances (±10% jitter; at least 10 × the last pass's length)", durationValue{&c.ResyncInterval}, false, false},
		{"webhook-secret-file", "PRISMCACHE_WEBHOOK_SECRET_FILE", "read the webhook secret(s) from this file", stringValue{&c.WebhookSecretFile, "path"}, false, false},
		{"admin-token-file", "PRISMCACHE_ADMIN_TOKEN_FILE", "read the admin token from this file", stringValue{&c.AdminTokenFile, "path"}, false, false},
		{"prismatic-token-file", "PRISMATIC_TOKEN_FILE", "read the Prismatic access token from this file", stringValue{&c.PrismaticTokenFile, "path"}, false, true},
		{"prismatic-refresh-token-file", "PRISMATIC_REFRESH_TOKEN_FILE", "read the Prismatic refresh token from this file", stringValue{&c.PrismaticRefreshTokenFile, "path"}, false, true},
		{"log-level", "PRISMCACHE_LOG_LEVEL", "least important level logged", enumValue{&c.LogLevel, LogLevels()}, false, false},
		{"log-format", "PRISMCACHE_LOG_FORMAT", "text, json, or auto (text on a terminal, JSON otherwise)", enumValue{&c.LogFormat, LogFormats()}, false, false},
		{"debug-listen", "PRISMCACHE_DEBUG_LISTEN", "address of a separate HTTP server with Go's profiles at /debug/pprof/ (empty: off; keep it on localhost)", stringValue{&c.DebugListen, "host:port"}, false, false},
	}
}

// RegisterFlags defines a flag for every setting on fs — for a
// configuration of LoadTool, only those of the settings such a command
// uses. Parse fs after LoadEnv so that flags win over the environment.
// Every flag's value is a Typed.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	for _, s := range c.settings() {
		if c.tool && !s.tool {
			continue
		}
		usage := s.usage + " (env " + s.env + ")"
		fs.Var(s.value, s.flag, usage)
	}
}

// LoadEnv sets every setting whose environment variable is set. getenv is
// os.Getenv outside tests.
func (c *Config) LoadEnv(getenv func(string) string) error {
	if c.origins == nil {
		c.origins = map[string]origin{}
	}
	for _, s := range c.settings() {
		v := getenv(s.env)
		if v == "" {
			continue
		}
		if err := s.value.Set(v); err != nil {
			return fmt.Errorf("%s=%q: %w", s.env, maskIf(s, v), err)
		}
		c.origins[s.flag] = origin("env " + s.env)
	}
	return nil
}

func maskIf(s setting, v string) string {
	if s.secret {
		return "(hidden)"
	}
	return v
}

// Validate checks every setting and returns all problems at once, each
// naming the setting, its value and what is allowed.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, value, want string) {
		errs = append(errs, fmt.Errorf("%s=%q: %s", name, value, want))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", c.Listen, "want host:port, e.g. 127.0.0.1:8080")
	}
	if c.AdminListen != "" {
		if _, _, err := net.SplitHostPort(c.AdminListen); err != nil {
			bad("admin-listen", c.AdminListen, "want host:port, e.g. 127.0.0.1:9090, or empty to serve the admin routes on --listen")
		} else if c.AdminListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			bad("admin-listen", c.AdminListen, "want an address other than --listen's, or empty to serve the admin routes on --listen")
		}
	}
	if u, err := url.Parse(c.RedisURL); err != nil || u.Host == "" || !validRedisScheme(u.Scheme) {
		bad("redis-url", redactURL(c.RedisURL), "want redis://[user:password@]host:port[/db], rediss://…, redis-cluster://host:port,host:port or redis-sentinel://host:port,host:port/master")
	}
	if msg := prefixProblem(c.RedisPrefix); msg != "" {
		bad("redis-prefix", c.RedisPrefix, msg)
	}
	if len(c.WebhookSecrets) == 0 && !c.InsecureSkipSignature && !c.tool {
		errs = append(errs, errors.New("webhook-secret is empty: set PRISMCACHE_WEBHOOK_SECRET to the endpoint's secret, or pass --insecure-skip-signature to accept unsigned webhooks (never in production)"))
	}
	if c.MaxBody < 1024 || c.MaxBody > 64<<20 {
		bad("max-body", fmt.Sprint(c.MaxBody), "want 1024 to 67108864 bytes")
	}
	if c.IntakeMaxBytes < 2*c.MaxBody || c.IntakeMaxBytes > 4<<30 {
		bad("intake-max-bytes", fmt.Sprint(c.IntakeMaxBytes), fmt.Sprintf("want at least twice max-body (%d), so that a body of the maximum size fits beside others, and at most 4294967296 bytes", 2*c.MaxBody))
	}
	if c.IntakeMaxRequests < 1 || c.IntakeMaxRequests > 1<<20 {
		bad("intake-max-requests", fmt.Sprint(c.IntakeMaxRequests), "want 1 to 1048576")
	}
	if c.BodyStallTimeout < 100*time.Millisecond || c.BodyStallTimeout > time.Minute {
		bad("body-stall-timeout", c.BodyStallTimeout.String(), "want 100ms to 1m")
	}
	if c.MaxClockSkew < time.Second || c.MaxClockSkew > 24*time.Hour {
		bad("max-clock-skew", c.MaxClockSkew.String(), "want 1s to 24h: a webhook dated further ahead than this is refused, because a future time would win every later comparison")
	}
	if c.DedupWindow < time.Second {
		bad("dedup-window", c.DedupWindow.String(), "want at least 1s")
	}
	if c.TimestampWindow < 0 || c.TimestampWindow > 100*365*24*time.Hour {
		bad("timestamp-window", c.TimestampWindow.String(), "want 0 (off) or a positive duration of at most 100 years")
	}
	if ov, err := webhook.ParseOverrides(c.EventActions); err != nil {
		errs = append(errs, fmt.Errorf("event-action=%q: %w", c.EventActions, err))
	} else if _, err := webhook.NewActions(ov); err != nil {
		errs = append(errs, fmt.Errorf("event-action=%q: %w", c.EventActions, err))
	}
	if u, err := url.Parse(c.PrismaticURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("prismatic-url", c.PrismaticURL, "want https://host, e.g. https://app.prismatic.io")
	}
	if c.PrismaticToken == "" && c.PrismaticRefreshToken == "" {
		errs = append(errs, errors.New("prismatic token: set PRISMATIC_TOKEN or PRISMATIC_REFRESH_TOKEN"))
	}
	if c.PrismaticTimeout < 100*time.Millisecond || c.PrismaticTimeout > 10*time.Minute {
		bad("prismatic-timeout", c.PrismaticTimeout.String(), "want 100ms to 10m")
	}
	if c.PrismaticRate <= 0 || c.PrismaticRate > 10000 {
		bad("prismatic-rate", fmt.Sprint(c.PrismaticRate), "want more than 0 and at most 10000 requests per second")
	}
	if c.Workers < 1 || c.Workers > 1024 {
		bad("workers", fmt.Sprint(c.Workers), "want 1 to 1024")
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > 100 {
		bad("max-attempts", fmt.Sprint(c.MaxAttempts), "want 1 to 100")
	}
	if c.WorkLease < 2*time.Second || c.WorkLease > time.Hour {
		bad("work-lease", c.WorkLease.String(), "want 2s to 1h")
	}
	if c.RetryMax < time.Second || c.RetryMax > time.Hour {
		bad("retry-max", c.RetryMax.String(), "want 1s to 1h")
	}
	if c.WorkShards < 1 || c.WorkShards > refresh.MaxShards {
		bad("work-shards", fmt.Sprint(c.WorkShards), fmt.Sprintf("want 1 to %d", refresh.MaxShards))
	}
	if c.ResyncInterval < 10*time.Second {
		bad("resync-interval", c.ResyncInterval.String(), "want at least 10s")
	}
	if c.HistoryDepth < 0 || c.HistoryDepth > 1000 {
		bad("history-depth", fmt.Sprint(c.HistoryDepth), "want 0 (no history) to 1000")
	}
	if c.TombstoneTTL < time.Minute {
		bad("tombstone-ttl", c.TombstoneTTL.String(), "want at least 1m")
	}
	if c.AdminToken != "" {
		if msg := weakToken(c.AdminToken); msg != "" {
			bad("admin-token", "(hidden)", msg)
		}
	}
	if !slices.Contains(LogLevels(), c.LogLevel) {
		bad("log-level", c.LogLevel, "want "+oneOf(LogLevels()))
	}
	if !slices.Contains(LogFormats(), c.LogFormat) {
		bad("log-format", c.LogFormat, "want "+oneOf(LogFormats()))
	}
	return errors.Join(errs...)
}

// Warning is something in a valid configuration that the operator should
// hear about at start-up: a message and slog attributes.
type Warning struct {
	Msg   string
	Attrs []any
}

// Warnings lists what is allowed but probably not meant: an --event-action
// override of an event type prismcache does not know (a misspelling would
// otherwise leave the intended type on its default silently).
func (c *Config) Warnings() []Warning {
	var out []Warning
	ov, err := webhook.ParseOverrides(c.EventActions)
	if err != nil {
		return nil
	}
	known := webhook.KnownTypes()
	for _, typ := range slices.Sorted(maps.Keys(ov)) {
		if !slices.Contains(known, typ) {
			out = append(out, Warning{
				Msg:   "--event-action names an event type prismcache does not know: is it misspelt? The override applies only if Prismatic sends exactly that type",
				Attrs: []any{"type", typ, "known", strings.Join(known, ", ")},
			})
		}
	}
	return out
}

// Actions returns the event table with the configured overrides.
func (c *Config) Actions() (webhook.Actions, error) {
	ov, err := webhook.ParseOverrides(c.EventActions)
	if err != nil {
		return webhook.Actions{}, err
	}
	return webhook.NewActions(ov)
}

func validRedisScheme(s string) bool {
	switch s {
	case "redis", "rediss", "redis-cluster", "rediss-cluster", "redis-sentinel", "rediss-sentinel":
		return true
	}
	return false
}

// redactURL hides a password in a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// EnvVars lists the environment variable of every setting, and
// PRISMCACHE_CONFIG: what a deployment may set.
func (c *Config) EnvVars() []string {
	out := []string{"PRISMCACHE_CONFIG"}
	for _, s := range c.settings() {
		out = append(out, s.env)
	}
	return out
}
