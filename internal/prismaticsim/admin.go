package prismaticsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// adminRoutes registers the admin API. docs/simulator.md has a curl example
// for each route.
func (s *Sim) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/instances", s.adminList)
	mux.HandleFunc("POST /admin/instances", s.adminCreate)
	mux.HandleFunc("GET /admin/instances/{id}", s.adminGet)
	mux.HandleFunc("DELETE /admin/instances/{id}", s.instanceOp(s.Delete))
	mux.HandleFunc("PUT /admin/instances/{id}/config/{key}", s.adminSetConfig)
	mux.HandleFunc("POST /admin/instances/{id}/deploy", s.instanceOp(s.Deploy))
	mux.HandleFunc("POST /admin/instances/{id}/enable", s.instanceOp(s.Enable))
	mux.HandleFunc("POST /admin/instances/{id}/disable", s.instanceOp(s.Disable))
	mux.HandleFunc("POST /admin/instances/{id}/connections/{key}/refresh", s.connectionOp(s.RefreshConnection))
	mux.HandleFunc("POST /admin/instances/{id}/connections/{key}/break", s.connectionOp(s.BreakConnection))
	mux.HandleFunc("POST /admin/instances/{id}/connections/{key}/reconnect", s.connectionOp(s.ReconnectConnection))
	mux.HandleFunc("GET /admin/customer-connections", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"customerConnections": s.CustomerConnections()})
	})
	mux.HandleFunc("GET /admin/demo", s.adminDemo)
	mux.HandleFunc("GET /admin/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("POST /admin/stats/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.ResetStats()
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("GET /admin/events", s.adminEvents)
	mux.HandleFunc("GET /admin/faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, faultsToJSON(s.Faults()))
	})
	mux.HandleFunc("PUT /admin/faults", s.adminSetFaults)
	mux.HandleFunc("GET /admin/payload-shape", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]PayloadShape{"shape": s.payloadShape()})
	})
	mux.HandleFunc("PUT /admin/payload-shape", s.adminSetShape)
	mux.HandleFunc("POST /admin/webhooks/test", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"webhooks": []EventRecord{s.SendTestWebhook()}})
	})
}

// adminStatus maps an operation error to an HTTP status.
func adminStatus(err error) int {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnknownVariable):
		return http.StatusNotFound
	case errors.Is(err, ErrNotDeployed):
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

func writeResult(w http.ResponseWriter, res Result, err error) {
	if err != nil {
		writeError(w, adminStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// decodeBody reads a JSON body into v, refusing unknown fields.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	return nil
}

func (s *Sim) instanceOp(op func(id string) (Result, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, err := op(r.PathValue("id"))
		writeResult(w, res, err)
	}
}

func (s *Sim) connectionOp(op func(id, key string) (Result, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, err := op(r.PathValue("id"), r.PathValue("key"))
		writeResult(w, res, err)
	}
}

func (s *Sim) adminList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	out := []InstanceSummary{}
	for _, in := range s.Instances() {
		if c := q.Get("customer"); c != "" && in.CustomerExternalID != c && in.CustomerID != c {
			continue
		}
		if q.Get("system") != "" && strconv.FormatBool(in.IsSystem) != q.Get("system") {
			continue
		}
		out = append(out, in)
	}
	writeJSON(w, http.StatusOK, map[string]any{"instances": out})
}

func (s *Sim) adminGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	stored, err := s.Instance(id)
	if err != nil {
		writeError(w, adminStatus(err), fmt.Sprintf("instance %s: %v", id, err))
		return
	}
	out := map[string]any{"instance": stored, "deployed": nil}
	if d, err := s.Deployed(id); err == nil {
		out["deployed"] = d
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Sim) adminCreate(w http.ResponseWriter, r *http.Request) {
	var req NewInstance
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := s.CreateInstance(req)
	writeResult(w, res, err)
}

func (s *Sim) adminSetConfig(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Value *string `json:"value"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if body.Value == nil {
		writeError(w, http.StatusBadRequest, `body must be {"value": "<string>"}`)
		return
	}
	res, err := s.SetConfig(r.PathValue("id"), r.PathValue("key"), *body.Value)
	writeResult(w, res, err)
}

func (s *Sim) adminDemo(w http.ResponseWriter, _ *http.Request) {
	id := s.DemoInstanceID()
	if id == "" {
		writeError(w, http.StatusNotFound, "the demo instance was deleted")
		return
	}
	in, err := s.Instance(id)
	if err != nil {
		writeError(w, adminStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"instanceId": id, "name": in.Name, "customerExternalId": in.CustomerExternalID,
		"integration": in.IntegrationName,
	})
}

func (s *Sim) adminEvents(w http.ResponseWriter, r *http.Request) {
	events := s.Events()
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "limit must be a non-negative integer")
			return
		}
		events = events[max(len(events)-n, 0):]
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": events})
}

func (s *Sim) payloadShape() PayloadShape {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.shape
}

func (s *Sim) adminSetShape(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Shape PayloadShape `json:"shape"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.SetPayloadShape(body.Shape); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]PayloadShape{"shape": body.Shape})
}

// faultsJSON is Faults on the wire: durations as Go duration strings
// ("20ms"), rates as numbers. In a PUT, absent fields keep their value.
type faultsJSON struct {
	Latency              *string  `json:"latency,omitempty"`
	LatencyJitter        *string  `json:"latencyJitter,omitempty"`
	ErrorRate            *float64 `json:"errorRate,omitempty"`
	RateLimitRate        *float64 `json:"rateLimitRate,omitempty"`
	RetryAfter           *string  `json:"retryAfter,omitempty"`
	PageSizeLimit        *int     `json:"pageSizeLimit,omitempty"`
	WebhookDropRate      *float64 `json:"webhookDropRate,omitempty"`
	WebhookDuplicateRate *float64 `json:"webhookDuplicateRate,omitempty"`
	WebhookReorderRate   *float64 `json:"webhookReorderRate,omitempty"`
	ReorderDelay         *string  `json:"reorderDelay,omitempty"`
}

func faultsToJSON(f Faults) faultsJSON {
	d := func(v time.Duration) *string { return ptr(v.String()) }
	return faultsJSON{
		Latency: d(f.Latency), LatencyJitter: d(f.LatencyJitter),
		ErrorRate: &f.ErrorRate, RateLimitRate: &f.RateLimitRate, RetryAfter: d(f.RetryAfter),
		PageSizeLimit:   &f.PageSizeLimit,
		WebhookDropRate: &f.WebhookDropRate, WebhookDuplicateRate: &f.WebhookDuplicateRate,
		WebhookReorderRate: &f.WebhookReorderRate, ReorderDelay: d(f.ReorderDelay),
	}
}

// apply merges the present fields into f.
func (j faultsJSON) apply(f Faults) (Faults, error) {
	durations := []struct {
		name string
		src  *string
		dst  *time.Duration
	}{
		{"latency", j.Latency, &f.Latency}, {"latencyJitter", j.LatencyJitter, &f.LatencyJitter},
		{"retryAfter", j.RetryAfter, &f.RetryAfter}, {"reorderDelay", j.ReorderDelay, &f.ReorderDelay},
	}
	for _, d := range durations {
		if d.src == nil {
			continue
		}
		v, err := time.ParseDuration(*d.src)
		if err != nil {
			return f, fmt.Errorf("%s: %w", d.name, err)
		}
		*d.dst = v
	}
	rates := []struct {
		src *float64
		dst *float64
	}{
		{j.ErrorRate, &f.ErrorRate}, {j.RateLimitRate, &f.RateLimitRate},
		{j.WebhookDropRate, &f.WebhookDropRate}, {j.WebhookDuplicateRate, &f.WebhookDuplicateRate},
		{j.WebhookReorderRate, &f.WebhookReorderRate},
	}
	for _, r := range rates {
		if r.src != nil {
			*r.dst = *r.src
		}
	}
	if j.PageSizeLimit != nil {
		f.PageSizeLimit = *j.PageSizeLimit
	}
	return f, f.validate()
}

func (s *Sim) adminSetFaults(w http.ResponseWriter, r *http.Request) {
	var body faultsJSON
	if err := decodeBody(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// Read, merge and store under the fault lock, so two PUTs do not lose
	// each other's fields.
	s.faults.mu.Lock()
	f, err := body.apply(s.faults.cfg)
	if err == nil {
		s.faults.cfg = f
	}
	s.faults.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, faultsToJSON(f))
}
