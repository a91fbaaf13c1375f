package prismaticsim

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const maxBodyBytes = 1 << 20

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api", s.handleAPI)
	mux.HandleFunc("POST /auth/refresh", s.handleRefresh)
	s.adminRoutes(mux)
	return jsonNotFound(mux)
}

// handleAPI serves POST /api: faults first (latency, then 429 or 500), then
// auth (401), then the GraphQL request, answered 200 with the response
// (errors included) as the GraphQL-over-HTTP convention has it; a body that
// is not a GraphQL request is a 400.
func (s *Sim) handleAPI(w http.ResponseWriter, r *http.Request) {
	s.stats.apiRequest()
	f := s.faults.forAPI()
	if f.delay > 0 {
		t := time.NewTimer(f.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch f.status {
	case http.StatusTooManyRequests:
		s.stats.add(func(st *Stats) { st.RateLimited++ })
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(f.retryAfter.Seconds()))))
		writeGraphQLError(w, http.StatusTooManyRequests, "rate limit exceeded (injected by prismaticsim)")
		return
	case http.StatusInternalServerError:
		s.stats.add(func(st *Stats) { st.ServerErrors++ })
		writeGraphQLError(w, http.StatusInternalServerError, "internal server error (injected by prismaticsim)")
		return
	}
	if err := s.auth.check(r, s.now()); err != nil {
		s.stats.add(func(st *Stats) { st.Unauthorized++ })
		w.Header().Set("WWW-Authenticate", `Bearer realm="prismaticsim"`)
		writeGraphQLError(w, http.StatusUnauthorized, err.Error())
		return
	}
	var req graphqlRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		writeGraphQLError(w, http.StatusBadRequest, "body must be a JSON GraphQL request: "+err.Error())
		return
	}
	if req.Query == "" {
		writeGraphQLError(w, http.StatusBadRequest, "missing query")
		return
	}
	introspection := strings.EqualFold(r.Header.Get(IntrospectionHeader), "true")
	resp, op := s.execute(r.Context(), req, introspection)
	s.stats.add(func(st *Stats) {
		st.GraphQLRequests++
		st.GraphQLRequestsByOperation[op]++
	})
	body, err := resp.encode()
	if err != nil {
		writeGraphQLError(w, http.StatusInternalServerError, "encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func writeGraphQLError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"errors": []map[string]string{{"message": msg}}})
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// jsonNotFound answers the mux's own 404 and 405 with a JSON body instead of
// plain text.
func jsonNotFound(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			mux.ServeHTTP(&jsonStatusWriter{ResponseWriter: w}, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// jsonStatusWriter replaces a 404 or 405 body with {"error": …}; other
// answers (such as the mux's redirects) pass through.
type jsonStatusWriter struct {
	http.ResponseWriter
	replaced bool
}

func (j *jsonStatusWriter) WriteHeader(code int) {
	if code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
		j.ResponseWriter.WriteHeader(code)
		return
	}
	j.replaced = true
	h := j.ResponseWriter.Header()
	h.Del("X-Content-Type-Options")
	msg := "not found"
	if code == http.StatusMethodNotAllowed {
		msg = "method not allowed"
	}
	writeError(j.ResponseWriter, code, msg)
}

func (j *jsonStatusWriter) Write(b []byte) (int, error) {
	if j.replaced {
		return len(b), nil
	}
	return j.ResponseWriter.Write(b)
}
