package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prismcache/prismcache/internal/prismaticsim"
	"github.com/prismcache/prismcache/internal/webhook"
)

// runSimTrigger sends one correctly signed sample event, like Stripe CLI's
// trigger: the quickest way to see what the daemon does with an event.
func runSimTrigger(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		target = envOr("PRISMCACHE_URL", "http://127.0.0.1:8080")
		secret string
		s      prismaticsim.Sample
		print  bool
	)
	fs := newFlagSet("sim trigger [flags] <event-type>",
		"Sends one sample event, signed as Prismatic signs it, to a daemon (or any URL) and prints the answer.\nEvent types: instance.{created,updated,deployed,enabled,disabled,deleted}, connection.updated,\noauth2.{authorization_completed,authorization_failed,token_refreshed,token_refresh_failed},\ncustomer.{updated,deleted}, webhook.test, or any other string.",
		"prismcache sim trigger instance.deployed --instance SW5zdGFuY2U6… --url http://127.0.0.1:8080 --secret prismcache-dev-secret",
		stderr)
	fs.StringVar(&target, "url", target, "the daemon's base URL, or a full webhook URL (env PRISMCACHE_URL)")
	fs.StringVar(&secret, "secret", "", "webhook secret to sign with; empty sends it unsigned (env PRISMCACHE_WEBHOOK_SECRET)")
	fs.StringVar(&s.InstanceID, "instance", "", "instance id for instance and connection events")
	fs.StringVar(&s.ConnectionID, "connection", "", "connection id (an InstanceConfigVariable or CustomerConfigVariable global id) for connection events")
	fs.StringVar(&s.ConnectionKey, "connection-key", "", "the connection's key")
	fs.StringVar(&s.CustomerID, "customer", "", "customer id for customer events")
	fs.StringVar(&s.CustomerExternalID, "customer-external-id", "", "customer external id for customer events")
	fs.BoolVar(&print, "print", false, "print the signed request instead of sending it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	secret = flagOrEnv(secret, "PRISMCACHE_WEBHOOK_SECRET")
	s.Type = fs.Arg(0)
	body, err := prismaticsim.SamplePayload(s)
	if err != nil {
		return err
	}
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("--url %q is not a URL", target)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/webhooks/prismatic"
	}
	sig := ""
	if secret != "" {
		sig = webhook.SignatureValue(secret, body)
	}
	if print {
		fmt.Fprintf(stdout, "POST %s\nContent-Type: application/json\n%s: %s\n", u, webhook.EventHeader, s.Type)
		if sig != "" {
			fmt.Fprintf(stdout, "%s: %s\n", webhook.SignatureHeader, sig)
		}
		fmt.Fprintf(stdout, "\n%s\n", body)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.EventHeader, s.Type)
	if sig != "" {
		req.Header.Set(webhook.SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("send %s to %s: %w", s.Type, u.Host, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Fprintf(stdout, "%s → %s: HTTP %d\n%s\n", s.Type, u, resp.StatusCode, strings.TrimSpace(string(answer)))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("the daemon answered HTTP %d%s", resp.StatusCode, triggerHint(resp.StatusCode, secret != "", u.String()))
	}
	return nil
}

// triggerHint says what to do about a refused webhook, or "".
func triggerHint(status int, signed bool, target string) string {
	switch {
	case (status == http.StatusUnauthorized || status == http.StatusForbidden) && !signed:
		return ": it was sent unsigned; pass --secret or set PRISMCACHE_WEBHOOK_SECRET to the daemon's webhook secret (prismcache dev prints it)"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return ": the signature does not match; --secret (or PRISMCACHE_WEBHOOK_SECRET) is not one of the daemon's --webhook-secret values"
	case status == http.StatusNotFound:
		return ": no webhook route at " + target + "; is --url the daemon's address (its --listen, not --admin-listen)?"
	}
	return ""
}
