package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gql "github.com/Khan/genqlient/graphql"
)

// DefaultURL is Prismatic's US commercial stack.
const DefaultURL = "https://app.prismatic.io"

// DefaultTimeout bounds one request when Options.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// maxResponseBytes caps what one answer may be; a page of 100 instances or
// config variables is far below it.
const maxResponseBytes = 32 << 20

// Limiter paces requests: Wait blocks until one more request may be sent,
// or fails when ctx ends first. golang.org/x/time/rate.Limiter satisfies it,
// and so does the organisation-wide limiter shared through Redis
// (internal/ratelimit).
type Limiter interface {
	Wait(ctx context.Context) error
}

// Options configure a Client.
type Options struct {
	// URL is the Prismatic stack, e.g. https://app.prismatic.io; the API is at
	// URL/api and the token exchange at URL/auth/refresh. DefaultURL if empty.
	URL string
	// Token is an access token sent as is. Either Token or RefreshToken must
	// be set; Token wins when both are.
	Token string
	// RefreshToken is exchanged for access tokens, renewed before they expire.
	RefreshToken string
	// TenantID selects the tenant on the token exchange, when set.
	TenantID string
	// Timeout bounds each HTTP request; DefaultTimeout if zero.
	Timeout time.Duration
	// HTTPClient sends the requests; a client with default transport if nil.
	HTTPClient *http.Client
	// Limiter, when set, is waited on before every API request.
	Limiter Limiter
	// Observe, when set, is called after every API request with the
	// operation, how long it took, and its error (nil on success).
	Observe func(op string, took time.Duration, err error)
	// ObserveWait, when set, is told how long each request waited for the
	// Limiter.
	ObserveWait func(time.Duration)
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Client calls Prismatic's GraphQL API. It implements genqlient's
// graphql.Client, so the generated functions take it directly. It is safe
// for concurrent use.
type Client struct {
	endpoint string
	http     *http.Client
	tokens   tokenSource
	timeout  time.Duration
	limiter  Limiter
	observe  func(string, time.Duration, error)
	wait     func(time.Duration)
	now      func() time.Time
	pages    *pageSizer
	batches  batcher
}

var _ gql.Client = (*Client)(nil)

// New returns a Client for the stack in opts.
func New(opts Options) (*Client, error) {
	if opts.URL == "" {
		opts.URL = DefaultURL
	}
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("prismatic url %q: want http(s)://host", opts.URL)
	}
	base := strings.TrimRight(u.String(), "/")
	base = strings.TrimSuffix(base, "/api")
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.HTTPClient == nil {
		// Workers fetch in parallel: net/http's default keeps only 2 idle
		// connections per host and closes (then dials again) every other one
		// after each request, which under load costs a TCP (and TLS)
		// handshake per fetch. Idle connections still close after 90s.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 1024
		opts.HTTPClient = &http.Client{Transport: t}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Client{
		endpoint: base + "/api",
		http:     opts.HTTPClient,
		timeout:  opts.Timeout,
		limiter:  opts.Limiter,
		observe:  opts.Observe,
		wait:     opts.ObserveWait,
		now:      opts.Now,
		pages:    newPageSizer(opts.Now),
	}
	switch {
	case opts.Token != "":
		c.tokens = staticToken(opts.Token)
	case opts.RefreshToken != "":
		c.tokens = &refreshingToken{
			url: base + "/auth/refresh", refreshToken: opts.RefreshToken, tenantID: opts.TenantID,
			http: opts.HTTPClient, timeout: opts.Timeout, now: opts.Now,
		}
	default:
		return nil, errors.New("prismatic token: set PRISMATIC_TOKEN or PRISMATIC_REFRESH_TOKEN")
	}
	return c, nil
}

// Endpoint returns the GraphQL endpoint, URL/api.
func (c *Client) Endpoint() string { return c.endpoint }

// PageSize returns the page size paged queries ask for now: PageSize until
// the API refuses a request as too large, less after that (see
// pagesize.go).
func (c *Client) PageSize() int { return c.pages.get() }

// withPageSize runs call, one request, with the current page size. When
// the API refuses it as too large, the size shrinks and call runs again at
// once (a refusal costs the API nothing to answer); when it times out, the
// size shrinks and the error is returned, for the caller's own retry. It
// returns the size of the last attempt.
func (c *Client) withPageSize(call func(size int) error) (int, error) {
	for {
		size := c.pages.get()
		err := call(size)
		switch {
		case err == nil:
			c.pages.answered(size)
			return size, nil
		case KindOf(err) == TooLarge:
			if c.pages.refused(size) {
				continue
			}
		case timedOut(err):
			c.pages.refused(size)
		}
		return size, err
	}
}

// sentKey is the context key under which a caller asks for the time its
// request was sent (see withSentAt).
type sentKey struct{}

// sentAt receives when a request was sent: after the limiter let it go,
// right before it went on the wire. What its answer shows is at least that
// recent.
type sentAt struct {
	mu sync.Mutex
	at time.Time
}

func (s *sentAt) set(t time.Time) { s.mu.Lock(); s.at = t; s.mu.Unlock() }
func (s *sentAt) get() time.Time  { s.mu.Lock(); defer s.mu.Unlock(); return s.at }

// withSentAt returns a context whose requests record in s when they are
// sent (the last one wins).
func withSentAt(ctx context.Context, s *sentAt) context.Context {
	return context.WithValue(ctx, sentKey{}, s)
}

// MakeRequest sends one GraphQL operation and decodes its data into resp.
// A refused token from a refresh-token source is renewed and the request
// sent once more. Every failure is an *Error.
func (c *Client) MakeRequest(ctx context.Context, req *gql.Request, resp *gql.Response) error {
	start := c.now()
	err := c.makeRequest(ctx, req, resp)
	if c.observe != nil {
		c.observe(req.OpName, c.now().Sub(start), err)
	}
	return err
}

func (c *Client) makeRequest(ctx context.Context, req *gql.Request, resp *gql.Response) error {
	return c.makeRequestWith(ctx, req, resp, nil)
}

// makeRequestWith is makeRequest with extra request headers.
func (c *Client) makeRequestWith(ctx context.Context, req *gql.Request, resp *gql.Response, header http.Header) error {
	body, err := json.Marshal(req)
	if err != nil {
		return &Error{Op: req.OpName, Kind: Invalid, Message: "encode request: " + err.Error()}
	}
	data := resp.Data
	for attempt := 0; ; attempt++ {
		// A refused first attempt may have left errors in resp and, with
		// "data": null, replaced the caller's data pointer.
		resp.Data, resp.Errors, resp.Extensions = data, nil, nil
		tok, err := c.tokens.Token(ctx)
		if err != nil {
			return err
		}
		err = c.post(ctx, req.OpName, tok, body, resp, header)
		if KindOf(err) == Unauthorized && c.tokens.Renewable() && attempt == 0 {
			c.tokens.Refused(tok)
			continue
		}
		return scrub(err, tok)
	}
}

// waitTurn waits for the limiter to let one request go, unless ctx holds
// a turn taken already (withTurn), which it uses up.
func (c *Client) waitTurn(ctx context.Context, op string) error {
	if c.limiter == nil {
		return nil
	}
	if t, ok := ctx.Value(turnKey{}).(*atomic.Bool); ok && t.CompareAndSwap(true, false) {
		return nil
	}
	start := c.now()
	err := c.limiter.Wait(ctx)
	if c.wait != nil {
		c.wait(c.now().Sub(start))
	}
	if err != nil {
		return &Error{Op: op, Kind: Transient, Message: "waiting for the rate limiter: " + err.Error(), Err: err}
	}
	return nil
}

// turnKey is the context key of a turn of the limiter taken already.
type turnKey struct{}

// withTurn returns a context whose next request goes without waiting for
// the limiter: its turn was taken (by a batch's leader).
func withTurn(ctx context.Context) context.Context {
	t := &atomic.Bool{}
	t.Store(true)
	return context.WithValue(ctx, turnKey{}, t)
}

func (c *Client) post(ctx context.Context, op, tok string, body []byte, resp *gql.Response, header http.Header) error {
	if err := c.waitTurn(ctx, op); err != nil {
		return err
	}
	if s, ok := ctx.Value(sentKey{}).(*sentAt); ok {
		s.set(c.now())
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return &Error{Op: op, Kind: Invalid, Message: err.Error()}
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("Accept", "application/json")
	httpReq.Header.Set("Authorization", "Bearer "+tok)
	for k, vs := range header {
		httpReq.Header[k] = vs
	}
	httpResp, err := c.http.Do(httpReq)
	if err != nil {
		msg := "request failed"
		if errors.Is(err, context.DeadlineExceeded) {
			msg = fmt.Sprintf("no answer within %s", c.timeout)
		}
		return &Error{Op: op, Kind: Transient, Message: msg, Err: err}
	}
	defer httpResp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(httpResp.Body, maxResponseBytes+1))
	if err != nil {
		return &Error{Op: op, Kind: Transient, Status: httpResp.StatusCode, Message: "read answer", Err: err}
	}
	if len(raw) > maxResponseBytes {
		return &Error{Op: op, Kind: Invalid, Status: httpResp.StatusCode, Message: fmt.Sprintf("answer larger than %d bytes", maxResponseBytes)}
	}
	if httpResp.StatusCode < 200 || httpResp.StatusCode > 299 {
		e := &Error{Op: op, Kind: kindOfStatus(httpResp.StatusCode), Status: httpResp.StatusCode,
			RetryAfter: parseRetryAfter(httpResp.Header.Get("Retry-After"), c.now())}
		switch {
		case httpResp.StatusCode == http.StatusServiceUnavailable && e.RetryAfter > 0:
			e.Kind = RateLimited
		case httpResp.StatusCode == http.StatusRequestEntityTooLarge:
			e.Kind = TooLarge
		}
		if tok != "" {
			// Redact before errorsMessage cuts the body: a cut token would
			// escape scrub.
			raw = bytes.ReplaceAll(raw, []byte(tok), []byte("[redacted]"))
		}
		e.Message = errorsMessage(raw)
		if e.Message == "" {
			e.Message = http.StatusText(httpResp.StatusCode)
		}
		return e
	}
	if err := json.Unmarshal(raw, resp); err != nil {
		return &Error{Op: op, Kind: Invalid, Status: httpResp.StatusCode, Message: "answer is not a GraphQL response: " + err.Error()}
	}
	if len(resp.Errors) > 0 {
		msg := resp.Errors.Error()
		kind := classifyMessage(msg)
		for _, e := range resp.Errors {
			if code, ok := e.Extensions["code"].(string); ok {
				if k, ok := classifyCode(code); ok {
					kind = k
				}
			}
		}
		return &Error{Op: op, Kind: kind, Status: httpResp.StatusCode, Message: msg}
	}
	if resp.Data == nil || !hasData(raw) {
		return &Error{Op: op, Kind: Invalid, Status: httpResp.StatusCode, Message: "answer has no data"}
	}
	return nil
}

// hasData reports whether raw has a non-null "data" member. Decoding into
// resp leaves a caller's resp.Data untouched when the member is missing, so
// resp.Data alone cannot tell.
func hasData(raw []byte) bool {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	return json.Unmarshal(raw, &env) == nil && len(env.Data) > 0 && string(env.Data) != "null"
}

// errorsMessage extracts the messages of a GraphQL error body, or a short
// prefix of a body that is not one.
func errorsMessage(raw []byte) string {
	var body struct {
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(raw, &body) == nil && len(body.Errors) > 0 {
		msgs := make([]string, 0, len(body.Errors))
		for _, e := range body.Errors {
			msgs = append(msgs, e.Message)
		}
		return strings.Join(msgs, "; ")
	}
	s := strings.TrimSpace(string(raw))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// scrub removes the token from an error's message, should an API or proxy
// ever echo it back.
func scrub(err error, tok string) error {
	var e *Error
	if tok == "" || !errors.As(err, &e) {
		return err
	}
	e.Message = strings.ReplaceAll(e.Message, tok, "[redacted]")
	return err
}
