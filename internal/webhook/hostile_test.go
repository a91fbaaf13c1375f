package webhook_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/webhook"
)

// TestCheckTime: an event dated more than the skew ahead is refused, at any
// distance, with no arithmetic that wraps; the window refuses both ways.
func TestCheckTime(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	skew := 5 * time.Minute
	year9999, err := webhook.ParseTimestamp("9999-12-31T23:59:59.999999999Z")
	if err != nil {
		t.Fatal(err)
	}
	year1, err := webhook.ParseTimestamp("0001-01-01T00:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		ts      time.Time
		window  time.Duration
		refused string // "" for accepted; else a word of the error
	}{
		{"now", now, 0, ""},
		{"at the skew", now.Add(skew), 0, ""},
		{"skew + 1s", now.Add(skew + time.Second), 0, "max-clock-skew"},
		{"skew + 1ns", now.Add(skew + 1), 0, "max-clock-skew"},
		{"a year ahead", now.AddDate(1, 0, 0), 0, "ahead"},
		{"year 9999", year9999, 0, "ahead"},
		{"year 9999 with a window", year9999, time.Hour, "window"},
		{"more than a Duration ahead", now.AddDate(600, 0, 0), 0, "ahead"},
		{"far past, no window", year1, 0, ""},
		{"far past with a window", year1, time.Hour, "window"},
		{"past the window", now.Add(-time.Hour - 1), time.Hour, "window"},
		{"inside the window", now.Add(-time.Hour), time.Hour, ""},
		{"window wider than the skew, ahead", now.Add(10 * time.Minute), time.Hour, "max-clock-skew"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := webhook.CheckTime(tc.ts, now, skew, tc.window)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && err == nil:
				t.Fatalf("accepted %s", tc.ts)
			case tc.refused != "" && (!errors.Is(err, webhook.ErrInvalid) || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("error %v: want ErrInvalid saying %q", err, tc.refused)
			}
		})
	}
}

// TestHeaderOnlyType: the unsigned header alone may name only a type whose
// action changes nothing.
func TestHeaderOnlyType(t *testing.T) {
	actions, err := webhook.NewActions(nil)
	if err != nil {
		t.Fatal(err)
	}
	const instance = `"instance":{"id":"SW5zdGFuY2U6ZWM5YzViM2EtZjNhNy00MDliLTllM2QtODA3MDAxNDVlNWU0"}`
	received := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		header, body string
		ok           bool
		action       webhook.Action
	}{
		{webhook.WebhookTest, `{"message":"hello"}`, true, webhook.ActionIgnore},
		{"integration.published", `{"integration":{"id":"SW50ZWdyYXRpb246MQ=="}}`, true, webhook.ActionIgnore},
		{webhook.InstanceDeleted, `{` + instance + `}`, false, ""},
		{webhook.InstanceUpdated, `{` + instance + `}`, false, ""},
		{webhook.InstanceDisabled, `{` + instance + `}`, false, ""},
		{webhook.InstanceDeployed, `{` + instance + `}`, false, ""},
		{webhook.ConnectionUpdated, `{"connection":{"id":"SW5zdGFuY2VDb25maWdWYXJpYWJsZTox"}}`, false, ""},
		{webhook.CustomerDeleted, `{"customer":{"external_id":"acme-001"}}`, false, ""},
		// The body's type decides; the header only has to agree.
		{webhook.InstanceDeleted, `{"event_type":"instance.deleted",` + instance + `}`, true, webhook.ActionDelete},
		{"", `{"event_type":"instance.deleted",` + instance + `}`, true, webhook.ActionDelete},
	} {
		ev, err := webhook.Parse(tc.header, []byte(tc.body), received)
		if err != nil {
			t.Fatalf("%s %s: parse: %v", tc.header, tc.body, err)
		}
		plan, err := webhook.Decide(ev, actions, nil)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s %s: refused: %v", tc.header, tc.body, err)
		case tc.ok && plan.Action != tc.action:
			t.Errorf("%s %s: action %s, want %s", tc.header, tc.body, plan.Action, tc.action)
		case !tc.ok && err == nil:
			t.Errorf("%s %s: planned %+v from the unsigned header", tc.header, tc.body, plan)
		case !tc.ok && (!errors.Is(err, webhook.ErrInvalid) || !strings.Contains(err.Error(), "not signed")):
			t.Errorf("%s %s: error %v, want ErrInvalid saying the header is not signed", tc.header, tc.body, err)
		}
	}
}

// TestStreamMatchesVerify: a body written in pieces verifies exactly as the
// whole does, under each secret of a rotation; a malformed header is
// refused before any body.
func TestStreamMatchesVerify(t *testing.T) {
	v := webhook.NewVerifier("old-secret", "new-secret")
	body := []byte(`{"event_type":"webhook.test","message":"hello"}`)
	for _, secret := range []string{"old-secret", "new-secret", "other"} {
		header := webhook.SignatureValue(secret, body)
		s, err := v.Begin(header)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(body); i += 7 {
			_, _ = s.Write(body[i:min(i+7, len(body))])
		}
		if got, want := s.Verify(), v.Verify(body, header); !errors.Is(got, want) && got != want {
			t.Errorf("secret %s: stream says %v, whole body %v", secret, got, want)
		}
		if (secret == "other") != (s.Verify() != nil) {
			t.Errorf("secret %s: stream says %v", secret, s.Verify())
		}
	}
	for _, header := range []string{"", "   ", "sha1=abc", "sha256=zz", "sha256=abcd"} {
		if _, err := v.Begin(header); err == nil {
			t.Errorf("header %q accepted before the body", header)
		}
	}
	if s, err := webhook.NewVerifier().Begin(""); err != nil || s.Verify() != nil {
		t.Errorf("a verifier without secrets refused: %v", err)
	}
}
