package graphql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind classifies a failed call by what the caller should do about it.
type Kind int

const (
	// Transient failures (network errors, timeouts, 5xx, unclassified GraphQL
	// errors) may succeed when retried with backoff.
	Transient Kind = iota
	// RateLimited: the API answered 429 (or 503 with Retry-After); retry after
	// Error.RetryAfter when it is set.
	RateLimited
	// Unauthorized: the token was refused; retrying the same token is useless.
	Unauthorized
	// Forbidden: the token's user may not read this object.
	Forbidden
	// NotFound: the API's answer says the object does not exist (a GraphQL
	// error message to that effect). Only a null object in the data is taken
	// as proof of a deletion on its own; see refresh.
	NotFound
	// Invalid: the API rejected the query itself (it does not match the live
	// schema) or sent an answer that cannot be used; retrying cannot help.
	Invalid
	// TooLarge: the API refused the request as too large, too complex or
	// too costly (HTTP 413, or a GraphQL error saying so). The same request
	// will be refused again; a smaller page may not be. The client shrinks
	// its page size and asks again by itself (see Client.PageSize), so a
	// caller sees this kind only when even the smallest page was refused.
	TooLarge
)

func (k Kind) String() string {
	switch k {
	case Transient:
		return "transient"
	case RateLimited:
		return "rate_limited"
	case Unauthorized:
		return "unauthorized"
	case Forbidden:
		return "forbidden"
	case NotFound:
		return "not_found"
	case Invalid:
		return "invalid"
	case TooLarge:
		return "too_large"
	}
	return "unknown"
}

// Error is a failed call to the API. Its message names the operation and
// never contains a token.
type Error struct {
	// Op is the GraphQL operation name (or "auth refresh").
	Op string
	// Kind says whether and how to retry.
	Kind Kind
	// Status is the HTTP status, 0 when no answer arrived.
	Status int
	// Message is what the API said, or what went wrong on the way.
	Message string
	// RetryAfter is the wait the API asked for, 0 when it asked for none.
	RetryAfter time.Duration
	// Err is the underlying transport error, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graphql %s: ", e.Op)
	if e.Status != 0 && e.Status != 200 {
		fmt.Fprintf(&b, "HTTP %d: ", e.Status)
	}
	b.WriteString(e.Message)
	if e.Err != nil && e.Kind == Transient {
		// Transport failures: the cause (refused, reset, DNS) is what an
		// operator needs. Request URLs carry no token.
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of err: the Kind of the *Error it wraps, Transient
// for any other error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Transient
}

// Retryable reports whether retrying the call that failed with err may help.
func Retryable(err error) bool {
	k := KindOf(err)
	return k == Transient || k == RateLimited
}

// RetryAfter returns the wait the API asked for with err, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// classifyMessage guesses the Kind of a GraphQL error from its message: the
// API documents no error codes, so this looks for the words its messages
// use and otherwise assumes the failure is transient.
func classifyMessage(msg string) Kind {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "cannot query field"), strings.Contains(m, "unknown argument"),
		strings.Contains(m, "unknown type"), strings.Contains(m, "syntax error"),
		strings.Contains(m, "must be at most"), strings.Contains(m, "got invalid value"):
		return Invalid
	case strings.Contains(m, "not authenticated"), strings.Contains(m, "unauthenticated"),
		strings.Contains(m, "expired"), strings.Contains(m, "invalid token"):
		return Unauthorized
	case strings.Contains(m, "permission"), strings.Contains(m, "not authorized"),
		strings.Contains(m, "forbidden"):
		return Forbidden
	case strings.Contains(m, "not found"), strings.Contains(m, "does not exist"):
		return NotFound
	case strings.Contains(m, "too complex"), strings.Contains(m, "complexity"), strings.Contains(m, "query cost"),
		strings.Contains(m, "too large"), strings.Contains(m, "too many records"),
		strings.Contains(m, "exceeds the") && strings.Contains(m, "records"):
		return TooLarge
	case strings.Contains(m, "rate limit"), strings.Contains(m, "too many requests"), strings.Contains(m, "throttl"):
		return RateLimited
	}
	return Transient
}

// tooLargeCodes are the extensions.code values with which GraphQL servers
// refuse a query for its size or cost.
var tooLargeCodes = []string{"QUERY_TOO_COMPLEX", "COMPLEXITY", "TOO_COMPLEX", "QUERY_COST", "MAX_COST", "TOO_LARGE", "PAYLOAD_TOO_LARGE"}

// classifyCode returns TooLarge for an extensions.code that says the query
// was refused for its size or cost, and false for any other code.
func classifyCode(code string) (Kind, bool) {
	c := strings.ToUpper(code)
	for _, want := range tooLargeCodes {
		if strings.Contains(c, want) {
			return TooLarge, true
		}
	}
	return 0, false
}

// timedOut reports whether err is a request that got no answer in time, or
// a gateway's timeout (504): on a page, a sign the page is too large to
// answer in time.
func timedOut(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Status == 504 || (e.Kind == Transient && e.Status == 0 && errors.Is(e.Err, context.DeadlineExceeded))
}
