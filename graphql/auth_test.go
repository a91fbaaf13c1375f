package graphql

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/testutil"
)

func TestRefreshRequest(t *testing.T) {
	tests := []struct {
		name   string
		url    string // suffix after the fake's URL
		tenant string
		want   map[string]string
	}{
		{"no tenant", "", "", map[string]string{"refresh_token": "rt-1"}},
		{"tenant", "", "7d0c4a4e-tenant", map[string]string{"refresh_token": "rt-1", "tenant_id": "7d0c4a4e-tenant"}},
		{"url with /api", "/api", "", map[string]string{"refresh_token": "rt-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, bearerOnly("access-1"))
			api.setAuth(func(map[string]string) reply { return tokenReply(t, "access-1", 3600) })
			c := mustNew(t, Options{URL: api.srv.URL + tt.url, RefreshToken: "rt-1", TenantID: tt.tenant})
			for range 3 {
				if err := ping(c, "Ping"); err != nil {
					t.Fatalf("ping: %v", err)
				}
			}
			ex := api.refreshes()
			if len(ex) != 1 {
				t.Fatalf("%d token exchanges for 3 requests within the token's life, want 1", len(ex))
			}
			if !maps.Equal(ex[0], tt.want) {
				t.Errorf("exchange body = %v, want %v", ex[0], tt.want)
			}
		})
	}
}

// TestRefreshRenewal drives the clock to just before and just after the
// moment the access token must be renewed: a fifth of its life before it
// expires, at most ten minutes.
func TestRefreshRenewal(t *testing.T) {
	start := testutil.NewClock().Now()
	tests := []struct {
		name    string
		token   func(n int) reply // the n-th exchange's answer, n from 1
		renewAt time.Duration     // after start
	}{
		{"JWT exp wins over expires_in", func(n int) reply {
			return tokenReply(t, jwt(t, map[string]any{"exp": start.Add(2*time.Hour).Unix() + int64(n-1)*3600*24, "n": n}), 60)
		}, 110 * time.Minute},
		{"short JWT", func(n int) reply {
			return tokenReply(t, jwt(t, map[string]any{"exp": start.Add(20*time.Minute).Unix() + int64(n-1)*3600*24, "n": n}), 0)
		}, 16 * time.Minute},
		{"fractional JWT exp", func(n int) reply {
			return tokenReply(t, jwt(t, map[string]any{"exp": float64(start.Add(20*time.Minute).Unix()) + 0.5 + float64(n-1)*3600*24, "n": n}), 0)
		}, 16 * time.Minute},
		{"expires_in", func(n int) reply { return tokenReply(t, fmt.Sprintf("opaque-%d", n), 600) }, 8 * time.Minute},
		{"neither: one hour", func(n int) reply { return tokenReply(t, fmt.Sprintf("opaque-%d", n), 0) }, 50 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testutil.NewClock()
			clock.Advance(start.Sub(clock.Now()))
			var n atomic.Int32
			api := newFakeAPI(t, func(gqlRequest) reply { return reply{body: okBody} })
			api.setAuth(func(map[string]string) reply { return tt.token(int(n.Add(1))) })
			c := mustNew(t, Options{URL: api.srv.URL, RefreshToken: "rt", Now: clock.Now})
			mustPing := func(wantExchanges int) {
				t.Helper()
				if err := ping(c, "Ping"); err != nil {
					t.Fatalf("ping at +%v: %v", clock.Now().Sub(start), err)
				}
				if got := len(api.refreshes()); got != wantExchanges {
					t.Fatalf("at +%v: %d token exchanges, want %d", clock.Now().Sub(start), got, wantExchanges)
				}
			}
			mustPing(1)
			first := api.calls()[0].Auth
			clock.Advance(tt.renewAt - time.Second)
			mustPing(1)
			clock.Advance(time.Second)
			mustPing(2)
			calls := api.calls()
			if last := calls[len(calls)-1].Auth; last == first || !strings.HasPrefix(last, "Bearer ") {
				t.Errorf("after renewal the API still got %q", last)
			}
			mustPing(2)
		})
	}
}

func TestRefreshOn401(t *testing.T) {
	var n atomic.Int32
	api := newFakeAPI(t, bearerOnly("access-2"))
	api.setAuth(func(map[string]string) reply {
		return tokenReply(t, fmt.Sprintf("access-%d", n.Add(1)), 3600)
	})
	c := mustNew(t, Options{URL: api.srv.URL, RefreshToken: "rt"})
	if err := ping(c, "Ping"); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if got, want := authsOf(api.calls()), []string{"Bearer access-1", "Bearer access-2"}; !slices.Equal(got, want) {
		t.Errorf("requests bore %v, want %v (one renewal, one retry)", got, want)
	}
	if got := len(api.refreshes()); got != 2 {
		t.Errorf("%d exchanges, want 2", got)
	}
	// The renewed token is kept.
	if err := ping(c, "Ping"); err != nil {
		t.Fatalf("second ping: %v", err)
	}
	if got := len(api.refreshes()); got != 2 {
		t.Errorf("%d exchanges after the second request, want still 2", got)
	}
}

func TestRefreshOn401RetriesOnce(t *testing.T) {
	var n atomic.Int32
	api := newFakeAPI(t, bearerOnly("never"))
	api.setAuth(func(map[string]string) reply {
		return tokenReply(t, fmt.Sprintf("access-%d", n.Add(1)), 3600)
	})
	c := mustNew(t, Options{URL: api.srv.URL, RefreshToken: "rt"})
	err := ping(c, "Ping")
	if e := mustError(t, err); e.Kind != Unauthorized || Retryable(err) {
		t.Errorf("err = %v (kind %v), want unauthorized, not retryable", err, e.Kind)
	}
	if got := len(api.calls()); got != 2 {
		t.Errorf("%d requests, want 2 (one retry)", got)
	}
	if got := len(api.refreshes()); got != 2 {
		t.Errorf("%d exchanges, want 2", got)
	}
}

func TestStatic401NoRetry(t *testing.T) {
	api := newFakeAPI(t, bearerOnly("other"))
	c := mustNew(t, Options{URL: api.srv.URL, Token: "static"})
	err := ping(c, "Ping")
	if e := mustError(t, err); e.Kind != Unauthorized || Retryable(err) {
		t.Errorf("err = %v (kind %v), want unauthorized, not retryable", err, e.Kind)
	}
	if got := len(api.calls()); got != 1 {
		t.Errorf("%d requests with a static token, want 1", got)
	}
}

// TestGraphQLUnauthenticatedRenews covers an API that says "not
// authenticated" in a 200 answer rather than with a 401: the retry must
// neither see the first answer's errors nor lose the caller's typed data.
func TestGraphQLUnauthenticatedRenews(t *testing.T) {
	var n atomic.Int32
	api := newFakeAPI(t, func(req gqlRequest) reply {
		if req.Auth != "Bearer access-2" {
			return errorsReply(t, "Not authenticated")
		}
		return dataReply(t, map[string]any{"instance": instanceJSON(req.str("id"), "Renewed", 1, nil, "", false)})
	})
	api.setAuth(func(map[string]string) reply {
		return tokenReply(t, fmt.Sprintf("access-%d", n.Add(1)), 3600)
	})
	c := mustNew(t, Options{URL: api.srv.URL, RefreshToken: "rt"})
	resp, err := GetInstance(context.Background(), c, "SW5zdGFuY2U6MQ==", PageSize)
	if err != nil {
		t.Fatalf("GetInstance: %v", err)
	}
	if resp.Instance == nil || resp.Instance.Name != "Renewed" {
		t.Errorf("GetInstance after a renewal = %+v, want the instance named Renewed", resp.Instance)
	}
	if got := len(api.calls()); got != 2 {
		t.Errorf("%d requests, want 2", got)
	}
}

func TestRefreshFails(t *testing.T) {
	const refresh = "rt-very-secret-refresh-token"
	clock := testutil.NewClock()
	tests := []struct {
		name       string
		reply      reply
		kind       Kind
		retryAfter time.Duration
		msg        string
	}{
		{"401 echoing the token", reply{status: 401, body: `{"error":"invalid refresh_token ` + refresh + `"}`},
			Unauthorized, 0, "not accepted"},
		{"403", reply{status: 403, body: refresh}, Forbidden, 0, "not accepted"},
		{"400", reply{status: 400, body: refresh}, Invalid, 0, "auth endpoint failed"},
		{"500", reply{status: 500, body: refresh}, Transient, 0, "auth endpoint failed"},
		{"429", reply{status: 429, header: map[string]string{"Retry-After": "5"}}, RateLimited, 5 * time.Second, "auth endpoint failed"},
		{"no access_token", reply{status: 200, body: `{"token":"x"}`}, Invalid, 0, "no access_token"},
		{"not JSON", reply{status: 200, body: `access_token=x`}, Invalid, 0, "no access_token"},
		{"expired JWT", tokenReply(t, jwt(t, map[string]any{"exp": clock.Now().Add(-time.Minute).Unix()}), 0),
			Invalid, 0, "already expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, func(gqlRequest) reply { return reply{body: okBody} })
			api.setAuth(func(map[string]string) reply { return tt.reply })
			c := mustNew(t, Options{URL: api.srv.URL, RefreshToken: refresh, Now: clock.Now})
			err := ping(c, "Ping")
			e := mustError(t, err)
			if e.Kind != tt.kind || e.RetryAfter != tt.retryAfter {
				t.Errorf("err = %v (kind %v, retry after %v), want kind %v, %v", err, e.Kind, e.RetryAfter, tt.kind, tt.retryAfter)
			}
			if e.Op != "auth refresh" || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q, want op auth refresh and %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), refresh) || strings.Contains(err.Error(), refresh[:10]) {
				t.Errorf("error %q contains the refresh token", err)
			}
			if n := len(api.calls()); n != 0 {
				t.Errorf("%d API requests without a token, want 0", n)
			}
		})
	}
}

// TestRefreshKeepsTokenWhenRenewalFails: the renewal is early, so a failed
// one falls back to the current token for up to a minute past renewAt.
func TestRefreshKeepsTokenWhenRenewalFails(t *testing.T) {
	clock := testutil.NewClock()
	var failing atomic.Bool
	api := newFakeAPI(t, bearerOnly("access-1"))
	api.setAuth(func(map[string]string) reply {
		if failing.Load() {
			return reply{status: 502}
		}
		return tokenReply(t, "access-1", 3600) // renew at +50m
	})
	c := mustNew(t, Options{URL: api.srv.URL, RefreshToken: "rt", Now: clock.Now})
	if err := ping(c, "Ping"); err != nil {
		t.Fatalf("ping: %v", err)
	}
	failing.Store(true)
	clock.Advance(50*time.Minute + 30*time.Second)
	if err := ping(c, "Ping"); err != nil {
		t.Fatalf("ping 30s past the renewal time: %v", err)
	}
	if got := len(api.refreshes()); got != 2 {
		t.Errorf("%d exchanges, want 2 (a failed renewal)", got)
	}
	clock.Advance(time.Minute)
	err := ping(c, "Ping")
	if e := mustError(t, err); e.Op != "auth refresh" || e.Kind != Transient {
		t.Errorf("err = %v, want the auth refresh's transient error", err)
	}
}

func TestJWTExpiry(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	head := enc([]byte(`{"alg":"none"}`))
	tests := []struct {
		name string
		tok  string
		want int64 // unix seconds; 0 for no expiry
	}{
		{"integer exp", head + "." + enc([]byte(`{"exp":1790000000}`)) + ".sig", 1790000000},
		{"float exp", head + "." + enc([]byte(`{"exp":1790000000.75}`)) + ".sig", 1790000000},
		{"exponent exp", head + "." + enc([]byte(`{"exp":1.79e9}`)) + ".sig", 1790000000},
		{"string exp", head + "." + enc([]byte(`{"exp":"1790000000"}`)) + ".sig", 1790000000},
		{"padded payload", head + "." + base64.URLEncoding.EncodeToString([]byte(`{"exp":1790000000,"x":1}`)) + ".sig", 1790000000},
		{"url-safe characters", head + "." + enc([]byte(`{"exp":1790000000,"s":"?>?>"}`)) + ".sig", 1790000000},
		{"empty signature", head + "." + enc([]byte(`{"exp":1790000000}`)) + ".", 1790000000},
		{"no exp", head + "." + enc([]byte(`{"sub":"u"}`)) + ".sig", 0},
		{"exp zero", head + "." + enc([]byte(`{"exp":0}`)) + ".sig", 0},
		{"exp negative", head + "." + enc([]byte(`{"exp":-5}`)) + ".sig", 0},
		{"exp null", head + "." + enc([]byte(`{"exp":null}`)) + ".sig", 0},
		{"exp not a number", head + "." + enc([]byte(`{"exp":"soon"}`)) + ".sig", 0},
		{"exp object", head + "." + enc([]byte(`{"exp":{}}`)) + ".sig", 0},
		{"payload not JSON", head + "." + enc([]byte(`exp=1790000000`)) + ".sig", 0},
		{"payload not base64", head + ".!!!.sig", 0},
		{"standard base64 with +/", head + "." + base64.StdEncoding.EncodeToString([]byte(`{"exp":1790000000,"s":"?>?>"}`)) + ".sig", 0},
		{"two parts", head + "." + enc([]byte(`{"exp":1790000000}`)), 0},
		{"four parts", head + "." + enc([]byte(`{"exp":1790000000}`)) + ".sig.x", 0},
		{"opaque", "opaque-access-token", 0},
		{"empty", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := jwtExpiry(tt.tok)
			if tt.want == 0 {
				if ok {
					t.Errorf("jwtExpiry(%q) = %v, true; want no expiry", tt.tok, got)
				}
				return
			}
			if !ok || got.Unix() != tt.want {
				t.Errorf("jwtExpiry(%q) = %v, %v; want %v", tt.tok, got, ok, time.Unix(tt.want, 0))
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 7 ", 7 * time.Second},
		{"0", 0},
		{"120", 2 * time.Minute},
		{"-3", 0},
		{"+7", 0},
		{"7s", 0},
		{"7.5", 0},
		{"1e3", 0},
		{"soon", 0},
		{"99999999999999999999999", 0},
		{"10000000000", 0}, // would overflow time.Duration
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{now.Format(http.TimeFormat), 0},
		{now.Add(2 * time.Hour).Format(time.RFC850), 2 * time.Hour},
		{now.Add(time.Minute).Format(time.ANSIC), time.Minute},
		{"Fri, 20 Nov 2026 10:00:90 GMT", 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := parseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestKindOfStatus(t *testing.T) {
	tests := []struct {
		status int
		want   Kind
	}{
		{400, Invalid}, {401, Unauthorized}, {403, Forbidden}, {404, Transient}, {408, Transient},
		{409, Invalid}, {422, Invalid}, {429, RateLimited}, {500, Transient}, {502, Transient},
		{503, Transient}, {504, Transient}, {302, Invalid},
	}
	for _, tt := range tests {
		if got := kindOfStatus(tt.status); got != tt.want {
			t.Errorf("kindOfStatus(%d) = %v, want %v", tt.status, got, tt.want)
		}
	}
}

func authsOf(reqs []gqlRequest) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Auth)
	}
	return out
}

// TestRefreshConcurrent: requests racing for the first token share one
// exchange.
func TestRefreshConcurrent(t *testing.T) {
	api := newFakeAPI(t, bearerOnly("access-1"))
	api.setAuth(func(map[string]string) reply { return tokenReply(t, "access-1", 3600) })
	c := mustNew(t, Options{URL: api.srv.URL, RefreshToken: "rt"})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- ping(c, "Ping") })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("ping: %v", err)
		}
	}
	if got := len(api.refreshes()); got != 1 {
		t.Errorf("%d exchanges for 8 concurrent requests, want 1", got)
	}
}
