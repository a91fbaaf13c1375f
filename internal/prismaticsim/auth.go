package prismaticsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// authority checks bearer tokens and issues access tokens. Its fields never
// change after New, so it is safe for concurrent use.
type authority struct {
	static       []string
	refreshToken string
	tenantID     string
	ttl          time.Duration
	key          []byte // signs issued tokens, so none need to be stored
	subject      string // the "sub" claim: the simulated user's id
}

func newAuthority(o Options) *authority {
	r := rand.New(rand.NewPCG(o.Seed, 0x746f6b656e73)) // "tokens"
	key := make([]byte, 32)
	for i := 0; i < len(key); i += 8 {
		binary.BigEndian.PutUint64(key[i:], r.Uint64())
	}
	return &authority{
		static: o.AccessTokens, refreshToken: o.RefreshToken, tenantID: o.TenantID,
		ttl: o.AccessTokenTTL, key: key,
	}
}

var (
	errNoToken      = errors.New("missing bearer token")
	errBadToken     = errors.New("invalid token")
	errExpiredToken = errors.New("token expired")
)

// check validates the request's bearer token at time now: one of the static
// tokens, or a token this authority issued that has not expired.
func (a *authority) check(r *http.Request, now time.Time) error {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return errNoToken
	}
	token = strings.TrimSpace(token)
	for _, t := range a.static {
		if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
			return nil
		}
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errBadToken
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, a.sign(parts[0]+"."+parts[1])) {
		return errBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return errBadToken
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return errBadToken
	}
	if now.Unix() >= claims.Exp {
		return errExpiredToken
	}
	return nil
}

func (a *authority) sign(s string) []byte {
	mac := hmac.New(sha256.New, a.key)
	mac.Write([]byte(s))
	return mac.Sum(nil)
}

// issue makes a JWT valid from now for the authority's TTL.
func (a *authority) issue(now time.Time, tenant string) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims := map[string]any{
		"sub": a.subject, "iss": "prismaticsim",
		"iat": now.Unix(), "exp": now.Add(a.ttl).Unix(),
	}
	if tenant != "" {
		claims["tenant_id"] = tenant
	}
	body, _ := json.Marshal(claims) // a map of strings and ints always marshals
	signing := header + "." + enc.EncodeToString(body)
	return signing + "." + enc.EncodeToString(a.sign(signing))
}

// handleRefresh serves POST /auth/refresh: {"refresh_token", "tenant_id"} →
// {"access_token", "token_type", "expires_in"}.
func (s *Sim) handleRefresh(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RefreshToken string `json:"refresh_token"`
		TenantID     string `json:"tenant_id"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "body must be JSON with refresh_token")
		return
	}
	a := s.auth
	if subtle.ConstantTimeCompare([]byte(req.RefreshToken), []byte(a.refreshToken)) != 1 {
		writeError(w, http.StatusUnauthorized, "invalid refresh token")
		return
	}
	if a.tenantID != "" && req.TenantID != "" && req.TenantID != a.tenantID {
		writeError(w, http.StatusUnauthorized, "unknown tenant")
		return
	}
	s.stats.add(func(st *Stats) { st.TokensIssued++ })
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": a.issue(s.now(), req.TenantID),
		"token_type":   "Bearer",
		"expires_in":   int64(a.ttl / time.Second),
	})
}
