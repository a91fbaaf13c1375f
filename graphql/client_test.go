package graphql

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/testutil"
)

func TestNewEndpoint(t *testing.T) {
	tests := []struct {
		url  string
		want string
	}{
		{"", "https://app.prismatic.io/api"},
		{"https://app.eu-west-1.prismatic.io", "https://app.eu-west-1.prismatic.io/api"},
		{"https://app.prismatic.io/", "https://app.prismatic.io/api"},
		{"https://app.prismatic.io/api", "https://app.prismatic.io/api"},
		{"https://app.prismatic.io/api/", "https://app.prismatic.io/api"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/api"},
		{"https://stack.example.com/prefix/", "https://stack.example.com/prefix/api"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			c := mustNew(t, Options{URL: tt.url, Token: "tok"})
			if got := c.Endpoint(); got != tt.want {
				t.Errorf("Endpoint() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string // in the error
	}{
		{"no scheme", Options{URL: "app.prismatic.io", Token: "tok"}, "app.prismatic.io"},
		{"ftp", Options{URL: "ftp://app.prismatic.io", Token: "tok"}, "ftp://app.prismatic.io"},
		{"no host", Options{URL: "http://", Token: "tok"}, "http://"},
		{"empty host with path", Options{URL: "https:///api", Token: "tok"}, "https:///api"},
		{"unparsable", Options{URL: "://x", Token: "tok"}, "://x"},
		{"bad escape", Options{URL: "https://x.example/%zz", Token: "tok"}, "%zz"},
		{"opaque", Options{URL: "mailto:ops@example.com", Token: "tok"}, "mailto"},
		{"no token", Options{URL: "https://app.prismatic.io"}, "token"},
		{"tenant but no token", Options{TenantID: "t-1"}, "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.opts)
			if err == nil {
				t.Fatalf("New(%+v) = %v, nil; want an error", tt.opts, c.Endpoint())
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestStaticBearer(t *testing.T) {
	api := newFakeAPI(t, func(req gqlRequest) reply {
		return dataReply(t, map[string]any{"instance": nil})
	})
	// Token wins over RefreshToken: no exchange may happen.
	c := mustNew(t, Options{URL: api.srv.URL + "/api", Token: "static-token", RefreshToken: "unused"})
	for range 2 {
		if _, err := GetInstance(context.Background(), c, "SW5zdGFuY2U6MQ==", PageSize); err != nil {
			t.Fatalf("GetInstance: %v", err)
		}
	}
	calls := api.calls()
	if len(calls) != 2 {
		t.Fatalf("%d requests, want 2", len(calls))
	}
	for _, req := range calls {
		if req.Auth != "Bearer static-token" {
			t.Errorf("Authorization = %q, want Bearer static-token", req.Auth)
		}
		if req.OperationName != "GetInstance" || req.str("id") != "SW5zdGFuY2U6MQ==" || req.Variables["first"] != float64(PageSize) {
			t.Errorf("request = %s %v, want GetInstance with id and first=%d", req.OperationName, req.Variables, PageSize)
		}
	}
	if n := len(api.refreshes()); n != 0 {
		t.Errorf("%d token exchanges with a static token, want 0", n)
	}
}

func TestHTTPErrors(t *testing.T) {
	clock := testutil.NewClock()
	tests := []struct {
		name       string
		reply      reply
		kind       Kind
		status     int
		retryAfter time.Duration
		retryable  bool
		msg        string // in the error, besides the operation
	}{
		{"429 with Retry-After", reply{status: 429, header: map[string]string{"Retry-After": "7"}, body: "slow down"},
			RateLimited, 429, 7 * time.Second, true, "slow down"},
		{"429 without Retry-After", reply{status: 429},
			RateLimited, 429, 0, true, "Too Many Requests"},
		{"503 with Retry-After", reply{status: 503, header: map[string]string{"Retry-After": "3"}},
			RateLimited, 503, 3 * time.Second, true, "Service Unavailable"},
		{"503 with an HTTP date", reply{status: 503, header: map[string]string{"Retry-After": clock.Now().Add(90 * time.Second).Format(http.TimeFormat)}},
			RateLimited, 503, 90 * time.Second, true, "Service Unavailable"},
		{"503 without Retry-After", reply{status: 503},
			Transient, 503, 0, true, "Service Unavailable"},
		{"500", reply{status: 500, body: `{"errors":[{"message":"boom"},{"message":"bang"}]}`},
			Transient, 500, 0, true, "boom; bang"},
		{"502 html", reply{status: 502, header: map[string]string{"Content-Type": "text/html"}, body: "<html>bad gateway</html>"},
			Transient, 502, 0, true, "<html>bad gateway</html>"},
		{"408", reply{status: 408}, Transient, 408, 0, true, "Request Timeout"},
		{"401 static token", reply{status: 401, body: `{"errors":[{"message":"Not authenticated"}]}`},
			Unauthorized, 401, 0, false, "Not authenticated"},
		{"403", reply{status: 403}, Forbidden, 403, 0, false, "Forbidden"},
		{"404 from the endpoint is no proof of deletion", reply{status: 404}, Transient, 404, 0, true, "Not Found"},
		{"400", reply{status: 400, body: "bad query"}, Invalid, 400, 0, false, "bad query"},
		{"long body is cut", reply{status: 500, body: strings.Repeat("e", 500)},
			Transient, 500, 0, true, strings.Repeat("e", 200) + "…"},
		{"GraphQL error with 200", errorsReply(t, "Something went wrong"),
			Transient, 200, 0, true, "Something went wrong"},
		{"schema mismatch", errorsReply(t, `Cannot query field "fooBar" on type "Instance".`),
			Invalid, 200, 0, false, `Cannot query field "fooBar"`},
		{"not found", errorsReply(t, "Instance matching query does not exist."),
			NotFound, 200, 0, false, "does not exist"},
		{"permission", errorsReply(t, "You do not have permission to perform this action"),
			Forbidden, 200, 0, false, "permission"},
		{"body not JSON", reply{status: 200, body: "<html>login</html>"},
			Invalid, 200, 0, false, "not a GraphQL response"},
		{"data null", reply{status: 200, body: `{"data":null}`},
			Invalid, 200, 0, false, "no data"},
		{"no data member", reply{status: 200, body: `{}`},
			Invalid, 200, 0, false, "no data"},
		{"only extensions", reply{status: 200, body: `{"extensions":{"cost":1}}`},
			Invalid, 200, 0, false, "no data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, func(gqlRequest) reply { return tt.reply })
			c := mustNew(t, Options{URL: api.srv.URL, Token: "tok", Now: clock.Now})
			err := ping(c, "Ping")
			e := mustError(t, err)
			if e.Kind != tt.kind || KindOf(err) != tt.kind {
				t.Errorf("Kind = %v, want %v (%v)", e.Kind, tt.kind, err)
			}
			if e.Status != tt.status {
				t.Errorf("Status = %d, want %d", e.Status, tt.status)
			}
			if got := RetryAfter(err); got != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", got, tt.retryAfter)
			}
			if got := Retryable(err); got != tt.retryable {
				t.Errorf("Retryable = %v, want %v", got, tt.retryable)
			}
			if e.Op != "Ping" || !strings.HasPrefix(err.Error(), "graphql Ping: ") {
				t.Errorf("error %q does not name the operation Ping", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			if n := len(api.calls()); n != 1 {
				t.Errorf("%d requests, want 1 (the client itself never retries)", n)
			}
		})
	}
}

func TestSuccessDecodesData(t *testing.T) {
	api := newFakeAPI(t, func(gqlRequest) reply {
		return reply{body: `{"data":{"__typename":"Query"},"extensions":{"cost":3}}`}
	})
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok"})
	var data struct {
		Typename string `json:"__typename"`
	}
	resp := pingResponse(&data)
	if err := c.MakeRequest(context.Background(), pingRequest("Ping"), resp); err != nil {
		t.Fatalf("MakeRequest: %v", err)
	}
	if data.Typename != "Query" || resp.Extensions["cost"] != float64(3) {
		t.Errorf("decoded data %+v, extensions %v", data, resp.Extensions)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice the client hanging up.
		io.Copy(io.Discard, r.Body)
		select { // never answers; the client must give up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: Close waits for the handler
	c := mustNew(t, Options{URL: srv.URL, Token: "tok", Timeout: 50 * time.Millisecond})
	err := ping(c, "Slow")
	e := mustError(t, err)
	if e.Kind != Transient || !Retryable(err) {
		t.Errorf("Kind = %v, want transient and retryable", e.Kind)
	}
	if !strings.Contains(err.Error(), "50ms") || e.Op != "Slow" {
		t.Errorf("error %q does not name the operation and the 50ms timeout", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
}

func TestCallerCancel(t *testing.T) {
	api := newFakeAPI(t, func(gqlRequest) reply { return reply{body: okBody} })
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var data map[string]any
	err := c.MakeRequest(ctx, pingRequest("Ping"), pingResponse(&data))
	if e := mustError(t, err); e.Kind != Transient || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v (kind %v), want a transient error wrapping context.Canceled", err, e.Kind)
	}
}

func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := mustNew(t, Options{URL: url, Token: "tok"})
	err := ping(c, "Ping")
	if e := mustError(t, err); e.Kind != Transient || e.Status != 0 {
		t.Errorf("err = %v (kind %v, status %d), want transient with no status", err, e.Kind, e.Status)
	}
}

// TestTokenNeverInErrors makes the API echo the Authorization header in
// every way an error can carry it, for both kinds of token source.
func TestTokenNeverInErrors(t *testing.T) {
	const tok = "at-0123456789abcdefghij-SECRET"
	echoes := []struct {
		name string
		echo func(auth string) reply
	}{
		{"GraphQL error", func(auth string) reply {
			return errorsReply(t, "header "+auth+" is not allowed here")
		}},
		{"401 JSON", func(auth string) reply {
			return reply{status: 401, body: `{"errors":[{"message":"token ` + auth + ` expired"}]}`}
		}},
		{"500 text", func(auth string) reply {
			return reply{status: 500, body: "upstream said: " + auth}
		}},
		{"500 text across the cut", func(auth string) reply {
			return reply{status: 500, body: strings.Repeat("x", 175) + " " + auth + " and more"}
		}},
		{"429 text", func(auth string) reply {
			return reply{status: 429, body: auth + auth}
		}},
	}
	sources := []struct {
		name string
		opts func(url string) Options
	}{
		{"static", func(url string) Options { return Options{URL: url, Token: tok} }},
		{"refresh", func(url string) Options { return Options{URL: url, RefreshToken: "rt-secret"} }},
	}
	for _, src := range sources {
		for _, ec := range echoes {
			t.Run(src.name+"/"+ec.name, func(t *testing.T) {
				api := newFakeAPI(t, func(req gqlRequest) reply { return ec.echo(req.Auth) })
				api.setAuth(func(map[string]string) reply { return tokenReply(t, tok, 3600) })
				c := mustNew(t, src.opts(api.srv.URL))
				err := ping(c, "Echo")
				e := mustError(t, err)
				for _, s := range []string{err.Error(), e.Message} {
					if strings.Contains(s, tok[:12]) || strings.Contains(s, "rt-secret") {
						t.Errorf("error leaks the token: %q", s)
					}
				}
				if !strings.Contains(err.Error(), "[redacted]") && ec.name != "500 text across the cut" {
					t.Errorf("error %q does not show where the token was", err)
				}
			})
		}
	}
}

func TestObserve(t *testing.T) {
	clock := testutil.NewClock()
	api := newFakeAPI(t, func(req gqlRequest) reply {
		clock.Advance(1500 * time.Millisecond)
		if req.OperationName == "Fails" {
			return reply{status: 500}
		}
		return reply{body: okBody}
	})
	type call struct {
		op   string
		took time.Duration
		err  error
	}
	var calls []call
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok", Now: clock.Now,
		Observe: func(op string, took time.Duration, err error) { calls = append(calls, call{op, took, err}) }})
	if err := ping(c, "Works"); err != nil {
		t.Fatalf("Works: %v", err)
	}
	if err := ping(c, "Fails"); err == nil {
		t.Fatal("Fails: no error")
	}
	if len(calls) != 2 {
		t.Fatalf("Observe called %d times, want 2", len(calls))
	}
	if calls[0].op != "Works" || calls[0].took != 1500*time.Millisecond || calls[0].err != nil {
		t.Errorf("first call observed as %+v, want Works, 1.5s, nil", calls[0])
	}
	if calls[1].op != "Fails" || calls[1].took != 1500*time.Millisecond || KindOf(calls[1].err) != Transient || calls[1].err == nil {
		t.Errorf("second call observed as %+v, want Fails, 1.5s, a transient error", calls[1])
	}
}

type countingLimiter struct {
	n   int
	err error
}

func (l *countingLimiter) Wait(ctx context.Context) error {
	l.n++
	return l.err
}

func TestLimiter(t *testing.T) {
	api := newFakeAPI(t, func(gqlRequest) reply { return reply{body: okBody} })

	lim := &countingLimiter{}
	c := mustNew(t, Options{URL: api.srv.URL, Token: "tok", Limiter: lim})
	for range 3 {
		if err := ping(c, "Ping"); err != nil {
			t.Fatalf("ping: %v", err)
		}
	}
	if lim.n != 3 {
		t.Errorf("limiter waited %d times for 3 requests", lim.n)
	}

	refusing := &countingLimiter{err: context.DeadlineExceeded}
	c = mustNew(t, Options{URL: api.srv.URL, Token: "tok", Limiter: refusing})
	err := ping(c, "Ping")
	if e := mustError(t, err); e.Kind != Transient || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a transient error wrapping the limiter's", err)
	}
	if n := len(api.calls()); n != 3 {
		t.Errorf("%d requests reached the API, want 3 (none past a refusing limiter)", n)
	}
}
