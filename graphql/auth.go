package graphql

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
)

// tokenSource hands out the bearer token for each request.
type tokenSource interface {
	// Token returns a token valid for at least a little while.
	Token(ctx context.Context) (string, error)
	// Refused tells the source the API refused tok, so the next call to Token
	// must not return it again if the source can get another.
	Refused(tok string)
	// Renewable reports whether Refused can lead to a different token.
	Renewable() bool
}

// staticToken is a token given in configuration (PRISMATIC_TOKEN).
type staticToken string

func (s staticToken) Token(context.Context) (string, error) { return string(s), nil }
func (s staticToken) Refused(string)                        {}
func (s staticToken) Renewable() bool                       { return false }

// refreshingToken exchanges a long-lived refresh token for access tokens at
// <stack>/auth/refresh and renews the access token before it expires.
type refreshingToken struct {
	url          string
	refreshToken string
	tenantID     string
	http         *http.Client
	timeout      time.Duration
	now          func() time.Time

	mu      sync.Mutex
	access  string
	renewAt time.Time
}

func (r *refreshingToken) Renewable() bool { return true }

func (r *refreshingToken) Refused(tok string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.access == tok {
		r.access = ""
	}
}

func (r *refreshingToken) Token(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.access != "" && r.now().Before(r.renewAt) {
		return r.access, nil
	}
	tok, exp, err := r.exchange(ctx)
	if err != nil {
		if r.access != "" && r.now().Before(r.renewAt.Add(time.Minute)) {
			// The renewal is early by design; keep using the old token a
			// little longer rather than fail every request.
			return r.access, nil
		}
		return "", err
	}
	now := r.now()
	life := exp.Sub(now)
	margin := life / 5
	if margin > 10*time.Minute {
		margin = 10 * time.Minute
	}
	r.access, r.renewAt = tok, exp.Add(-margin)
	return tok, nil
}

// exchange posts the refresh token and returns the access token and when it
// expires: the JWT's exp claim, else expires_in, else one hour.
func (r *refreshingToken) exchange(ctx context.Context) (string, time.Time, error) {
	const op = "auth refresh"
	body := map[string]string{"refresh_token": r.refreshToken}
	if r.tenantID != "" {
		body["tenant_id"] = r.tenantID
	}
	b, err := json.Marshal(body)
	if err != nil {
		return "", time.Time{}, &Error{Op: op, Kind: Invalid, Message: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(b))
	if err != nil {
		return "", time.Time{}, &Error{Op: op, Kind: Invalid, Message: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return "", time.Time{}, &Error{Op: op, Kind: Transient, Message: "request failed", Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", time.Time{}, &Error{Op: op, Kind: Transient, Status: resp.StatusCode, Message: "read answer", Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		// The body is not echoed: it may carry token material.
		e := &Error{Op: op, Kind: kindOfStatus(resp.StatusCode), Status: resp.StatusCode,
			Message: "the refresh token was not accepted", RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), r.now())}
		if e.Kind != Unauthorized && e.Kind != Forbidden {
			e.Message = "the auth endpoint failed"
		}
		return "", time.Time{}, e
	}
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.AccessToken == "" {
		return "", time.Time{}, &Error{Op: op, Kind: Invalid, Status: resp.StatusCode, Message: "the answer has no access_token"}
	}
	now := r.now()
	exp, ok := jwtExpiry(out.AccessToken)
	switch {
	case ok:
	case out.ExpiresIn > 0:
		exp = now.Add(time.Duration(out.ExpiresIn) * time.Second)
	default:
		exp = now.Add(time.Hour)
	}
	if !exp.After(now) {
		return "", time.Time{}, &Error{Op: op, Kind: Invalid, Status: resp.StatusCode, Message: "the access token it returned has already expired"}
	}
	return out.AccessToken, exp, nil
}

// jwtExpiry reads the exp claim of a JWT without verifying it: the daemon
// only needs to know when to renew, the API does the verifying.
func jwtExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == "" {
		return time.Time{}, false
	}
	f, err := claims.Exp.Float64()
	if err != nil || f <= 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

func kindOfStatus(status int) Kind {
	switch {
	case status == http.StatusUnauthorized:
		return Unauthorized
	case status == http.StatusForbidden:
		return Forbidden
	case status == http.StatusNotFound:
		// A 404 from the endpoint itself (a proxy, a maintenance page, a
		// wrong URL) says nothing about the object asked for: retry.
		return Transient
	case status == http.StatusTooManyRequests:
		return RateLimited
	case status >= 500 || status == http.StatusRequestTimeout:
		return Transient
	}
	return Invalid
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var secs int64
	if _, err := fmt.Sscanf(v, "%d", &secs); err == nil && fmt.Sprint(secs) == v {
		if secs < 0 || secs > int64(math.MaxInt64/time.Second) {
			return 0 // negative, or overflows time.Duration
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
