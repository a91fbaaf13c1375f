package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/webhook"
)

// DefaultRefreshWait is how long POST /v1/instances/{id}/refresh waits for
// the result unless ?timeout= says otherwise; MaxRefreshWait caps it below
// the server's write timeout.
const (
	DefaultRefreshWait = 30 * time.Second
	MaxRefreshWait     = 50 * time.Second
)

// Admin is the operator API under /v1, guarded by a bearer token. Configure
// its fields before Register; it is safe for concurrent use afterwards.
type Admin struct {
	// Token is the admin bearer token; the API is off when it is empty.
	Token string
	Store *store.Store
	// Refresh queues one instance through the work set and waits for its
	// result (refresh.Requester.Refresh).
	Refresh func(ctx context.Context, id string) (refresh.Result, error)
	// Queue queues one instance without waiting.
	Queue func(ctx context.Context, id string) error
	// Resync starts a full pass that queues every instance; it returns once
	// the pass is started.
	Resync func(ctx context.Context) error
	Log    *slog.Logger
	// OnRedisError, when set, is told of every request Redis failed.
	OnRedisError func(error)
}

// Register adds the admin routes to mux. With no token, every /v1 route
// answers 404 saying how to turn the API on.
func (a *Admin) Register(mux *http.ServeMux) {
	if a.Token == "" {
		mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "the admin API is off: start the daemon with --admin-token (PRISMCACHE_ADMIN_TOKEN)")
		})
		return
	}
	mux.Handle("GET /v1/instances/{id}", a.auth(a.getInstance))
	mux.Handle("GET /v1/instances/{id}/history", a.auth(a.history))
	mux.Handle("GET /v1/customers/{externalId}/instances", a.auth(a.customerInstances))
	mux.Handle("POST /v1/instances/{id}/refresh", a.auth(a.refresh))
	mux.Handle("POST /v1/resync", a.auth(a.resync))
	mux.Handle("/v1/", a.auth(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	}))
}

// authorized checks the bearer token in constant time (comparing digests,
// so the token's length does not leak either).
func (a *Admin) authorized(r *http.Request) bool {
	want := sha256.Sum256([]byte(a.Token))
	scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	ok = ok && strings.EqualFold(scheme, "Bearer") // the scheme is case-insensitive (RFC 9110)
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return ok && a.Token != "" && subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// auth lets through only requests with the admin token.
func (a *Admin) auth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="prismcache"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong admin token (Authorization: Bearer <token>)")
			return
		}
		next(w, r)
	})
}

func (a *Admin) pathID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !webhook.ValidID(id) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%q is not a Prismatic instance id", truncateID(id)))
		return "", false
	}
	return id, true
}

func (a *Admin) getInstance(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathID(w, r)
	if !ok {
		return
	}
	e, err := a.Store.Get(r.Context(), id)
	switch {
	case errors.Is(err, cache.ErrNotFound):
		writeError(w, http.StatusNotFound, "instance "+id+" is not cached")
	case err != nil:
		a.redisDown(w, err)
	default:
		writeJSON(w, http.StatusOK, store.View(e))
	}
}

// history answers the revisions kept for an instance, newest first: an
// empty list when none are (an instance never refreshed, deleted, or a
// daemon with --history-depth 0).
func (a *Admin) history(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathID(w, r)
	if !ok {
		return
	}
	revs, err := a.Store.History(r.Context(), id)
	if err != nil {
		a.redisDown(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "revisions": revs})
}

func (a *Admin) customerInstances(w http.ResponseWriter, r *http.Request) {
	ext := r.PathValue("externalId")
	if ext == "" || len(ext) > 512 {
		writeError(w, http.StatusBadRequest, "customer external id must be 1 to 512 bytes")
		return
	}
	var (
		entries []cache.Entry
		err     error
	)
	if integ := r.URL.Query().Get("integration"); integ != "" {
		entries, err = a.Store.Find(r.Context(), ext, integ)
	} else {
		entries, err = a.Store.ByCustomer(r.Context(), ext)
	}
	if err != nil {
		a.redisDown(w, err)
		return
	}
	views := make([]store.EntryView, 0, len(entries))
	for _, e := range entries {
		views = append(views, store.View(e))
	}
	writeJSON(w, http.StatusOK, map[string]any{"customerExternalId": ext, "instances": views})
}

func (a *Admin) refresh(w http.ResponseWriter, r *http.Request) {
	id, ok := a.pathID(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	if q.Get("wait") == "false" {
		if err := a.Queue(r.Context(), id); err != nil {
			a.redisDown(w, err)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "queued", "id": id})
		return
	}
	wait := DefaultRefreshWait
	if s := q.Get("timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > MaxRefreshWait {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("timeout=%q: want a duration up to %s", s, MaxRefreshWait))
			return
		}
		wait = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	res, err := a.Refresh(ctx, id)
	switch {
	case errors.Is(err, refresh.ErrNoResult):
		writeError(w, http.StatusGatewayTimeout, fmt.Sprintf("no result within %s; the refresh stays queued", wait))
		return
	case err != nil:
		a.redisDown(w, err)
		return
	case res.Error != "":
		msg := "fetching from Prismatic failed: " + res.Error
		if res.Retrying {
			msg += " (it will be retried)"
		}
		writeError(w, http.StatusBadGateway, msg)
		return
	case res.Change == cache.ChangeDeleted || res.Skip == refresh.SkipNotFound || res.Skip == refresh.SkipDeleted:
		writeError(w, http.StatusNotFound, "instance "+id+" does not exist in Prismatic")
		return
	}
	e, err := a.Store.Get(r.Context(), id)
	switch {
	case errors.Is(err, cache.ErrNotFound):
		writeJSON(w, http.StatusOK, map[string]any{"result": res, "entry": nil})
	case err != nil:
		a.redisDown(w, err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"result": res, "entry": store.View(e)})
	}
}

func (a *Admin) resync(w http.ResponseWriter, r *http.Request) {
	if err := a.Resync(r.Context()); err != nil {
		if errors.Is(err, ErrBusy) {
			writeError(w, http.StatusConflict, err.Error())
			return
		}
		a.redisDown(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "started", "detail": "every instance will be queued; follow the logs or /metrics"})
}

// ErrBusy: a resync is already running.
var ErrBusy = errors.New("a resync is already running")

func (a *Admin) redisDown(w http.ResponseWriter, err error) {
	if a.OnRedisError != nil {
		a.OnRedisError(err)
	}
	if a.Log != nil {
		a.Log.Error("admin request failed", "err", err)
	}
	w.Header().Set("Retry-After", "5")
	writeError(w, http.StatusServiceUnavailable, "the cache's Redis is unavailable; retry later")
}

func truncateID(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
