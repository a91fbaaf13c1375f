package graphql

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestKindOfRetryableRetryAfter(t *testing.T) {
	rate := &Error{Op: "Op", Kind: RateLimited, Status: 429, RetryAfter: 7 * time.Second}
	tests := []struct {
		name       string
		err        error
		kind       Kind
		retryable  bool
		retryAfter time.Duration
	}{
		{"plain error", errors.New("connection reset"), Transient, true, 0},
		{"transient", &Error{Kind: Transient}, Transient, true, 0},
		{"rate limited", rate, RateLimited, true, 7 * time.Second},
		{"wrapped rate limited", fmt.Errorf("fetch instance X: %w", rate), RateLimited, true, 7 * time.Second},
		{"joined", errors.Join(errors.New("other"), rate), RateLimited, true, 7 * time.Second},
		{"unauthorized", &Error{Kind: Unauthorized}, Unauthorized, false, 0},
		{"forbidden", &Error{Kind: Forbidden}, Forbidden, false, 0},
		{"not found", fmt.Errorf("x: %w", &Error{Kind: NotFound}), NotFound, false, 0},
		{"invalid", &Error{Kind: Invalid, RetryAfter: time.Second}, Invalid, false, time.Second},
		{"too large", &Error{Kind: TooLarge}, TooLarge, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KindOf(tt.err); got != tt.kind {
				t.Errorf("KindOf = %v, want %v", got, tt.kind)
			}
			if got := Retryable(tt.err); got != tt.retryable {
				t.Errorf("Retryable = %v, want %v", got, tt.retryable)
			}
			if got := RetryAfter(tt.err); got != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", got, tt.retryAfter)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	cause := errors.New("dial tcp: refused")
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Op: "GetInstance", Message: "request failed", Err: cause}, "graphql GetInstance: request failed: dial tcp: refused"},
		{&Error{Op: "GetInstance", Kind: Invalid, Message: "answer is not JSON", Err: cause}, "graphql GetInstance: answer is not JSON"},
		{&Error{Op: "GetInstance", Status: 200, Message: "answer has no data"}, "graphql GetInstance: answer has no data"},
		{&Error{Op: "ListInstances", Status: 503, Message: "Service Unavailable"}, "graphql ListInstances: HTTP 503: Service Unavailable"},
		{&Error{Op: "auth refresh", Status: 401, Message: "the refresh token was not accepted"}, "graphql auth refresh: HTTP 401: the refresh token was not accepted"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if e := (&Error{Err: cause}); !errors.Is(e, cause) || errors.Unwrap(e) != cause {
		t.Error("Error does not unwrap to its cause")
	}
}

func TestKindString(t *testing.T) {
	want := map[Kind]string{
		Transient: "transient", RateLimited: "rate_limited", Unauthorized: "unauthorized",
		Forbidden: "forbidden", NotFound: "not_found", Invalid: "invalid", TooLarge: "too_large", Kind(99): "unknown",
	}
	for k, s := range want {
		if got := k.String(); got != s {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, s)
		}
	}
}

func TestClassifyMessage(t *testing.T) {
	tests := []struct {
		msg  string
		want Kind
	}{
		{`Cannot query field "fooBar" on type "Instance".`, Invalid},
		{`Unknown argument "sortBy" on field "Query.instances".`, Invalid},
		{`Unknown type "InstanceSortBy".`, Invalid},
		{`Syntax Error: Expected Name, found <EOF>.`, Invalid},
		{`first must be at most 100`, Invalid},
		{`Variable "$first" got invalid value "x"; Int cannot represent non-integer value: "x"`, Invalid},
		{`Not authenticated`, Unauthorized},
		{`UNAUTHENTICATED`, Unauthorized},
		{`Signature has expired.`, Unauthorized},
		{`Invalid token.`, Unauthorized},
		{`You do not have permission to perform this action`, Forbidden},
		{`Not authorized to view this instance`, Forbidden},
		{`Forbidden`, Forbidden},
		{`Instance not found`, NotFound},
		{`Instance matching query does not exist.`, NotFound},
		{`Rate limit exceeded`, RateLimited},
		{`Too Many Requests`, RateLimited},
		{`Request was throttled.`, RateLimited},
		{"query is too complex: requesting 100 records on the `configVariables` connection exceeds the limit of 50 records", TooLarge},
		{"requesting 500 records on the `instances` connection exceeds the `first` limit of 100 records", TooLarge},
		{`Query complexity of 12000 exceeds the maximum of 10000`, TooLarge},
		{`Query cost exceeded`, TooLarge},
		{`Internal server error`, Transient},
		{``, Transient},
		// The first matching family wins.
		{`Cannot query field "x": permission denied`, Invalid},
	}
	for _, tt := range tests {
		if got := classifyMessage(tt.msg); got != tt.want {
			t.Errorf("classifyMessage(%q) = %v, want %v", tt.msg, got, tt.want)
		}
	}
}
