package prismaticsim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/testutil"
)

func refresh(t *testing.T, url string, body map[string]string) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url+"/auth/refresh", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return resp.StatusCode, out
}

func TestAPIAuth(t *testing.T) {
	_, srv := newTestSim(t, Options{AccessTokens: []string{"static-1", "static-2"}})
	const q = `{ instances(first: 1) { totalCount } }`
	tests := []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"unknown token", "nope", http.StatusUnauthorized},
		{"malformed JWT", "a.b.c", http.StatusUnauthorized},
		{"first static token", "static-1", http.StatusOK},
		{"second static token", "static-2", http.StatusOK},
		{"default token not accepted when others are configured", DefaultAccessToken, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, resp := postGraphQL(t, srv.URL, tt.token, q, nil)
			if status != tt.want {
				t.Fatalf("status %d, want %d: %s", status, tt.want, resp.raw)
			}
			if tt.want == http.StatusUnauthorized && (len(resp.Errors) != 1 || resp.Errors[0]["message"] == "") {
				t.Errorf("401 body %s, want {\"errors\":[{\"message\":…}]}", resp.raw)
			}
		})
	}
}

func TestRefreshTokenExchange(t *testing.T) {
	clock := testutil.NewClock()
	_, srv := newTestSim(t, Options{
		Now: clock.Now, RefreshToken: "rt-1", TenantID: "tenant-a", AccessTokenTTL: 5 * time.Second,
	})
	for _, bad := range []map[string]string{
		{"refresh_token": "wrong"},
		{"refresh_token": "rt-1", "tenant_id": "tenant-b"},
		{},
	} {
		if status, body := refresh(t, srv.URL, bad); status != http.StatusUnauthorized {
			t.Errorf("refresh(%v) = %d %v, want 401", bad, status, body)
		}
	}
	status, body := refresh(t, srv.URL, map[string]string{"refresh_token": "rt-1", "tenant_id": "tenant-a"})
	if status != http.StatusOK || body["token_type"] != "Bearer" || body["expires_in"] != float64(5) {
		t.Fatalf("refresh = %d %v", status, body)
	}
	token := body["access_token"].(string)
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Sub string `json:"sub"`
		Exp int64  `json:"exp"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Sub == "" || claims.Exp != clock.Now().Add(5*time.Second).Unix() {
		t.Errorf("claims = %+v", claims)
	}

	const q = `{ instances(first: 1) { totalCount } }`
	if status, resp := postGraphQL(t, srv.URL, token, q, nil); status != http.StatusOK {
		t.Fatalf("fresh token: %d %s", status, resp.raw)
	}
	clock.Advance(4 * time.Second)
	if status, _ := postGraphQL(t, srv.URL, token, q, nil); status != http.StatusOK {
		t.Fatalf("token before exp: %d", status)
	}
	clock.Advance(time.Second)
	status, resp := postGraphQL(t, srv.URL, token, q, nil)
	if status != http.StatusUnauthorized || !strings.Contains(string(resp.raw), "expired") {
		t.Fatalf("token at exp: %d %s, want 401 expired", status, resp.raw)
	}
	// A token with a forged signature is refused.
	forged := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString([]byte("forged"))
	clock.Advance(-5 * time.Second)
	if status, _ := postGraphQL(t, srv.URL, forged, q, nil); status != http.StatusUnauthorized {
		t.Errorf("forged token: %d, want 401", status)
	}
}
