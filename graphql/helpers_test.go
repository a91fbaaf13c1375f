package graphql

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	gql "github.com/Khan/genqlient/graphql"
)

// gqlRequest is what the client posts to /api.
type gqlRequest struct {
	Query         string         `json:"query"`
	Variables     map[string]any `json:"variables"`
	OperationName string         `json:"operationName"`
	// Auth is the Authorization header the request came with.
	Auth string `json:"-"`
}

// str returns variable name as a string, "" when absent or null.
func (r gqlRequest) str(name string) string {
	s, _ := r.Variables[name].(string)
	return s
}

// reply is one canned answer of the fake.
type reply struct {
	status int
	header map[string]string
	body   string
}

// dataReply answers 200 {"data": data}.
func dataReply(t *testing.T, data any) reply {
	t.Helper()
	b, err := json.Marshal(map[string]any{"data": data})
	if err != nil {
		t.Fatalf("marshal reply: %v", err)
	}
	return reply{status: http.StatusOK, body: string(b)}
}

// errorsReply answers 200 {"data": null, "errors": [{"message": msg}]}.
func errorsReply(t *testing.T, msg string) reply {
	t.Helper()
	b, err := json.Marshal(map[string]any{"data": nil, "errors": []map[string]any{{"message": msg}}})
	if err != nil {
		t.Fatalf("marshal reply: %v", err)
	}
	return reply{status: http.StatusOK, body: string(b)}
}

// fakeAPI is a Prismatic stack on 127.0.0.1: /api answers with api, and
// /auth/refresh with auth. It records every request.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	api       func(req gqlRequest) reply
	auth      func(body map[string]string) reply
	requests  []gqlRequest
	exchanges []map[string]string
}

func newFakeAPI(t *testing.T, api func(req gqlRequest) reply) *fakeAPI {
	t.Helper()
	f := &fakeAPI{t: t, api: api}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api", f.serveAPI)
	mux.HandleFunc("POST /auth/refresh", f.serveAuth)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) serveAPI(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		f.t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var req gqlRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.t.Errorf("decode GraphQL request: %v", err)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if req.OperationName == "" || !strings.Contains(req.Query, req.OperationName) {
		f.t.Errorf("request has operationName %q and query %q", req.OperationName, req.Query)
	}
	req.Auth = r.Header.Get("Authorization")
	f.mu.Lock()
	f.requests = append(f.requests, req)
	api := f.api
	f.mu.Unlock()
	write(w, api(req))
}

func (f *fakeAPI) serveAuth(w http.ResponseWriter, r *http.Request) {
	var body map[string]string
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.t.Errorf("decode refresh request: %v", err)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.exchanges = append(f.exchanges, body)
	auth := f.auth
	f.mu.Unlock()
	if auth == nil {
		f.t.Errorf("unexpected token exchange %v", body)
		http.Error(w, "no auth configured", http.StatusInternalServerError)
		return
	}
	write(w, auth(body))
}

func write(w http.ResponseWriter, rep reply) {
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	if rep.status == 0 {
		rep.status = http.StatusOK
	}
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

func (f *fakeAPI) setAuth(auth func(body map[string]string) reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth = auth
}

// calls returns a copy of the recorded /api requests.
func (f *fakeAPI) calls() []gqlRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]gqlRequest(nil), f.requests...)
}

// ops returns the operation names of the recorded /api requests.
func (f *fakeAPI) ops() []string {
	var ops []string
	for _, r := range f.calls() {
		ops = append(ops, r.OperationName)
	}
	return ops
}

// refreshes returns a copy of the recorded token exchanges.
func (f *fakeAPI) refreshes() []map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]string(nil), f.exchanges...)
}

// mustNew builds a Client, failing the test on error.
func mustNew(t *testing.T, opts Options) *Client {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	return c
}

// mustError asserts err is an *Error and returns it.
func mustError(t *testing.T, err error) *Error {
	t.Helper()
	if err == nil {
		t.Fatal("err = nil, want an *Error")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %T %v, want an *Error", err, err)
	}
	return e
}

// ping sends one small operation through c and returns its error.
func ping(c *Client, op string) error {
	var data map[string]any
	return c.MakeRequest(context.Background(), pingRequest(op), pingResponse(&data))
}

func pingRequest(op string) *gql.Request {
	return &gql.Request{OpName: op, Query: "query " + op + " { __typename }"}
}

func pingResponse(data any) *gql.Response { return &gql.Response{Data: data} }

// okBody is a small successful answer to ping.
const okBody = `{"data":{"__typename":"Query"}}`

// jwt returns an unsigned JWT whose payload is claims.
func jwt(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("marshal claims: %v", err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
		enc.EncodeToString(payload) + "." + enc.EncodeToString([]byte("signature"))
}

// tokenReply answers a token exchange with access (and expires_in when > 0).
func tokenReply(t *testing.T, access string, expiresIn int) reply {
	t.Helper()
	body := map[string]any{"access_token": access}
	if expiresIn > 0 {
		body["expires_in"] = expiresIn
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatalf("marshal token reply: %v", err)
	}
	return reply{status: http.StatusOK, body: string(b)}
}

// bearerOnly answers okBody to requests bearing want and 401 to others.
func bearerOnly(want string) func(gqlRequest) reply {
	return func(req gqlRequest) reply {
		if req.Auth != "Bearer "+want {
			return reply{status: http.StatusUnauthorized, body: `{"errors":[{"message":"Not authenticated"}]}`}
		}
		return reply{status: http.StatusOK, body: okBody}
	}
}

func cursor(n int) string { return fmt.Sprintf("cursor:%d", n) }
