package graphql

import (
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
	case strings.Contains(m, "rate limit"), strings.Contains(m, "too many requests"), strings.Contains(m, "throttl"):
		return RateLimited
	}
	return Transient
}
