package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

func runRefresh(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		base    = envOr("PRISMCACHE_URL", "http://127.0.0.1:8080")
		token   string
		wait    = true
		timeout = 30 * time.Second
	)
	fs := newFlagSet("refresh [flags] <instance-id>",
		"Asks a running daemon to fetch one instance now, through the same work set as webhooks,\nwaits for the result and prints the new entry as JSON.",
		"PRISMCACHE_ADMIN_TOKEN=… prismcache refresh --url http://127.0.0.1:8080 SW5zdGFuY2U6ZWM5YzViM2Et…",
		stderr)
	fs.StringVar(&base, "url", base, "the daemon's base URL (env PRISMCACHE_URL)")
	fs.StringVar(&token, "admin-token", "", "the daemon's admin token (env PRISMCACHE_ADMIN_TOKEN)")
	fs.BoolVar(&wait, "wait", wait, "wait for the result (false: only queue it)")
	fs.DurationVar(&timeout, "timeout", timeout, "how long the daemon waits for the result")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	token = flagOrEnv(token, "PRISMCACHE_ADMIN_TOKEN")
	if token == "" {
		return fmt.Errorf("no admin token: pass --admin-token or set PRISMCACHE_ADMIN_TOKEN to the daemon's admin token (prismcache dev prints one)")
	}
	q := url.Values{}
	if !wait {
		q.Set("wait", "false")
	} else {
		q.Set("timeout", timeout.String())
	}
	u := strings.TrimRight(base, "/") + "/v1/instances/" + url.PathEscape(fs.Arg(0)) + "/refresh?" + q.Encode()
	body, status, err := adminCall(ctx, http.MethodPost, u, token, timeout+10*time.Second)
	if err != nil {
		return err
	}
	if status >= 300 {
		return fmt.Errorf("%s%s", errorMessage(body, status), adminHint(status, body))
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, body, "", "  ") == nil {
		body = pretty.Bytes()
	}
	_, err = stdout.Write(append(bytes.TrimRight(body, "\n"), '\n'))
	return err
}

// adminCall sends one request to the daemon's admin API.
func adminCall(ctx context.Context, method, u, token string, timeout time.Duration) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("daemon at %s: %w", req.URL.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return body, resp.StatusCode, err
}

// errorMessage turns an error answer into one line.
func errorMessage(body []byte, status int) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Error, status)
	}
	return fmt.Sprintf("HTTP %d: %s", status, strings.TrimSpace(string(body)))
}

// adminHint says what to do about an admin API refusal, or "".
func adminHint(status int, body []byte) string {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "; the token is not the daemon's --admin-token: pass the right one with --admin-token or PRISMCACHE_ADMIN_TOKEN"
	case status == http.StatusNotFound && strings.Contains(string(body), "no route"):
		return "; if the daemon runs with --admin-listen, the admin API is on that address: pass it as --url (or PRISMCACHE_URL)"
	}
	return ""
}

// flagOrEnv is a secret flag's value, or when it was not given its
// environment variable's: read after parsing, so help texts never show a
// secret as a flag's default.
func flagOrEnv(v, env string) string {
	if v != "" {
		return v
	}
	return os.Getenv(env)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
