package prismaticsim

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Defaults used when the matching Options field is zero.
const (
	// DefaultCustomers is how many demo customers are seeded.
	DefaultCustomers = 3
	// DefaultAccessToken is the static bearer token accepted when
	// Options.AccessTokens is nil.
	DefaultAccessToken = "prismaticsim-access-token"
	// DefaultRefreshToken is the refresh token /auth/refresh accepts when
	// Options.RefreshToken is empty.
	DefaultRefreshToken = "prismaticsim-refresh-token"
	// DefaultAccessTokenTTL is the lifetime of an issued access token;
	// Prismatic documents seven days.
	DefaultAccessTokenTTL = 7 * 24 * time.Hour
	// DefaultWebhookTimeout bounds one webhook delivery attempt.
	DefaultWebhookTimeout = 5 * time.Second
	// DefaultWebhookRetries is how many times a failed delivery is retried.
	DefaultWebhookRetries = 3
	// DefaultWebhookBackoff is the wait before the first retry; it doubles
	// before each further one.
	DefaultWebhookBackoff = 100 * time.Millisecond
	// DefaultEventLogSize is how many events the event log keeps.
	DefaultEventLogSize = 1000
	// DefaultRetryAfter is the Retry-After of an injected 429.
	DefaultRetryAfter = time.Second
	// DefaultReorderDelay is how long a reordered webhook is held back when
	// no later event releases it first.
	DefaultReorderDelay = 200 * time.Millisecond
	// MaxPageSize is the largest page a connection field returns, as on
	// Prismatic; asking for more is a field error.
	MaxPageSize = 100
	// SecretMarker is part of every credential value the simulator invents
	// (connection inputs such as clientSecret and accessToken), so a test can
	// search a cache for it and prove no credential was copied.
	SecretMarker = "prismaticsim-secret"
)

// PayloadShape selects how connection events (oauth2.*, connection.updated)
// name the connection, since Prismatic does not document it. The zero value
// is ShapeAuto.
type PayloadShape string

// The payload shapes of the example files in shared/prismatic/payloads.
const (
	// ShapeAuto sends ShapeCustomerConnection for a reusable customer
	// connection and ShapeWithInstance for an instance's own connection.
	ShapeAuto PayloadShape = ""
	// ShapeWithInstance fills "instance" and sets "connection" to the
	// InstanceConfigVariable; a shared connection sends one event per
	// instance using it.
	ShapeWithInstance PayloadShape = "with-instance"
	// ShapeConnectionOnly leaves "instance" null and sets "connection" to the
	// InstanceConfigVariable; a shared connection sends one event per
	// instance using it.
	ShapeConnectionOnly PayloadShape = "connection-only"
	// ShapeCustomerConnection leaves "instance" null, fills "customer" and
	// sets "connection" to the CustomerConfigVariable (for an instance's own
	// connection, to its InstanceConfigVariable).
	ShapeCustomerConnection PayloadShape = "customer-connection"
)

func (p PayloadShape) valid() bool {
	switch p {
	case ShapeAuto, ShapeWithInstance, ShapeConnectionOnly, ShapeCustomerConnection:
		return true
	}
	return false
}

// Faults configures injected failures. The zero value injects none. Rates are
// fractions in [0, 1], drawn from a math/rand/v2 source seeded from
// Options.Seed, so a run with the same seed and the same calls makes the same
// choices.
type Faults struct {
	// Latency is added to every /api request; LatencyJitter spreads it
	// uniformly by up to ± that much.
	Latency       time.Duration
	LatencyJitter time.Duration
	// ErrorRate is the fraction of /api requests answered 500.
	ErrorRate float64
	// RateLimitRate is the fraction of /api requests answered 429 with a
	// Retry-After of RetryAfter (zero means DefaultRetryAfter), in whole
	// seconds rounded up.
	RateLimitRate float64
	RetryAfter    time.Duration
	// PageSizeLimit, when positive, refuses every request in which a field
	// asks for more than that many records (first or last) as too complex:
	// HTTP 200 with one GraphQL error (extensions.code TooComplexCode) and
	// no data, as APIs that limit a query's size or cost answer. Zero
	// refuses none (MaxPageSize still applies).
	PageSizeLimit int
	// WebhookDropRate is the fraction of webhooks never sent.
	WebhookDropRate float64
	// WebhookDuplicateRate is the fraction of webhooks sent twice.
	WebhookDuplicateRate float64
	// WebhookReorderRate is the fraction of webhooks held back and sent after
	// the next webhook, or after ReorderDelay (zero means
	// DefaultReorderDelay) when no other comes first.
	WebhookReorderRate float64
	ReorderDelay       time.Duration
}

func (f Faults) validate() error {
	rates := []struct {
		name string
		v    float64
	}{
		{"ErrorRate", f.ErrorRate}, {"RateLimitRate", f.RateLimitRate},
		{"WebhookDropRate", f.WebhookDropRate}, {"WebhookDuplicateRate", f.WebhookDuplicateRate},
		{"WebhookReorderRate", f.WebhookReorderRate},
	}
	for _, r := range rates {
		if r.v < 0 || r.v > 1 || r.v != r.v {
			return fmt.Errorf("faults: %s %v is not in [0, 1]", r.name, r.v)
		}
	}
	durations := []struct {
		name string
		v    time.Duration
	}{
		{"Latency", f.Latency}, {"LatencyJitter", f.LatencyJitter},
		{"RetryAfter", f.RetryAfter}, {"ReorderDelay", f.ReorderDelay},
	}
	for _, d := range durations {
		if d.v < 0 {
			return fmt.Errorf("faults: %s %v is negative", d.name, d.v)
		}
	}
	if f.PageSizeLimit < 0 {
		return fmt.Errorf("faults: PageSizeLimit %d is negative", f.PageSizeLimit)
	}
	return nil
}

// Options configures a Sim. The zero value is valid: three demo customers,
// seed 0, the default tokens, no webhook URL (events are only recorded) and
// no faults.
type Options struct {
	// Seed makes the model's ids and the fault choices reproducible: two
	// sims with the same Seed and Customers have the same ids.
	Seed uint64
	// Customers is how many demo customers to seed; zero means
	// DefaultCustomers.
	Customers int
	// Now is the clock; nil means time.Now. Event timestamps come from it,
	// bumped by 1µs when it has not moved since the previous event.
	Now func() time.Time
	// Logger receives one line per event and delivery; nil discards. Tokens
	// and secrets are never logged.
	Logger *slog.Logger

	// AccessTokens are static bearer tokens accepted on /api; nil means
	// []string{DefaultAccessToken}, an empty non-nil slice accepts none.
	AccessTokens []string
	// RefreshToken is the refresh token /auth/refresh accepts; empty means
	// DefaultRefreshToken.
	RefreshToken string
	// TenantID, when set, is the only tenant_id /auth/refresh accepts (a
	// request without tenant_id is still accepted).
	TenantID string
	// AccessTokenTTL is the lifetime of issued access tokens; zero means
	// DefaultAccessTokenTTL.
	AccessTokenTTL time.Duration

	// WebhookURL receives event webhooks; empty means events are only
	// recorded in the event log.
	WebhookURL string
	// WebhookSecret, when set, signs each webhook (X-Webhook-Signature).
	WebhookSecret string
	// WebhookTimeout bounds one delivery attempt; zero means
	// DefaultWebhookTimeout.
	WebhookTimeout time.Duration
	// WebhookRetries is how many times a failed delivery is retried in the
	// background; zero means DefaultWebhookRetries, negative means none.
	WebhookRetries int
	// WebhookBackoff is the wait before the first retry, doubling after;
	// zero means DefaultWebhookBackoff.
	WebhookBackoff time.Duration
	// HTTPClient sends webhooks; nil means a client with WebhookTimeout.
	HTTPClient *http.Client
	// ConnectionPayload is the payload shape of connection events.
	ConnectionPayload PayloadShape
	// EventLogSize bounds the event log; zero means DefaultEventLogSize.
	EventLogSize int

	// SchemaChange, when set, serves a schema that differs from
	// schema.graphql in one field.
	SchemaChange SchemaChange

	// Faults are the initial fault settings, changeable at run time with
	// SetFaults or PUT /admin/faults. Embedded so that, for example,
	// opts.Latency = 20 * time.Millisecond sets a fixed API latency.
	Faults
}

func (o Options) withDefaults() (Options, error) {
	if o.Customers < 0 {
		return o, fmt.Errorf("options: Customers %d is negative", o.Customers)
	}
	if o.Customers == 0 {
		o.Customers = DefaultCustomers
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.AccessTokens == nil {
		o.AccessTokens = []string{DefaultAccessToken}
	}
	if o.RefreshToken == "" {
		o.RefreshToken = DefaultRefreshToken
	}
	if o.AccessTokenTTL < 0 {
		return o, fmt.Errorf("options: AccessTokenTTL %v is negative", o.AccessTokenTTL)
	}
	if o.AccessTokenTTL == 0 {
		o.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if o.WebhookTimeout == 0 {
		o.WebhookTimeout = DefaultWebhookTimeout
	}
	if o.WebhookRetries == 0 {
		o.WebhookRetries = DefaultWebhookRetries
	}
	if o.WebhookRetries < 0 {
		o.WebhookRetries = 0
	}
	if o.WebhookBackoff == 0 {
		o.WebhookBackoff = DefaultWebhookBackoff
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: o.WebhookTimeout}
	}
	if !o.ConnectionPayload.valid() {
		return o, fmt.Errorf("options: unknown ConnectionPayload %q", o.ConnectionPayload)
	}
	if o.EventLogSize < 0 {
		return o, errors.New("options: EventLogSize is negative")
	}
	if o.EventLogSize == 0 {
		o.EventLogSize = DefaultEventLogSize
	}
	if err := o.Faults.validate(); err != nil {
		return o, fmt.Errorf("options: %w", err)
	}
	return o, nil
}
