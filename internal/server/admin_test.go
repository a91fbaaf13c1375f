package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/server"
	"github.com/prismcache/prismcache/internal/store"
)

const testAdminToken = "admin-token-0123456789"

// adminServer is an Admin on store whose refresh, queue and resync are
// the given functions (nil: they fail the test if called).
func adminServer(t *testing.T, db *store.Store, a server.Admin) http.Handler {
	t.Helper()
	a.Token, a.Store = testAdminToken, db
	if a.Refresh == nil {
		a.Refresh = func(context.Context, string) (refresh.Result, error) {
			t.Error("Refresh called")
			return refresh.Result{}, errors.New("unexpected")
		}
	}
	if a.Queue == nil {
		a.Queue = func(context.Context, string) error { t.Error("Queue called"); return nil }
	}
	if a.Resync == nil {
		a.Resync = func(context.Context) error { t.Error("Resync called"); return nil }
	}
	mux := http.NewServeMux()
	a.Register(mux)
	return mux
}

func adminDo(t *testing.T, h http.Handler, method, path string) answer {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if err := json.Unmarshal(rec.Body.Bytes(), &a.body); err != nil {
		t.Fatalf("%s %s: %d with a body that is not a JSON object: %s", method, path, rec.Code, a.raw)
	}
	return a
}

// TestAdminErrorStatuses checks how the admin API maps each failure to a
// status, with fakes in place of the work set.
func TestAdminErrorStatuses(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		db := store.New(b.Client, store.Options{Prefix: b.Prefix})
		seedEntry(t, db)
		id := exampleInstanceID
		refreshWith := func(res refresh.Result, err error) http.Handler {
			return adminServer(t, db, server.Admin{Refresh: func(ctx context.Context, got string) (refresh.Result, error) {
				if got != id {
					t.Errorf("Refresh(%q), want %q", got, id)
				}
				if _, ok := ctx.Deadline(); !ok {
					t.Error("Refresh got a context without a deadline")
				}
				return res, err
			}})
		}
		for _, tc := range []struct {
			name    string
			h       http.Handler
			path    string
			status  int
			mention string
		}{
			{"refreshed", refreshWith(refresh.Result{ID: id, OK: true, Change: cache.ChangeRefreshed, Rev: 1}, nil),
				"/v1/instances/" + id + "/refresh", http.StatusOK, ""},
			{"no result in time", refreshWith(refresh.Result{}, fmt.Errorf("refresh %s: %w", id, refresh.ErrNoResult)),
				"/v1/instances/" + id + "/refresh?timeout=10ms", http.StatusGatewayTimeout, "stays queued"},
			{"fetch failed, retrying", refreshWith(refresh.Result{ID: id, Error: "prismatic said 500", Retrying: true}, nil),
				"/v1/instances/" + id + "/refresh", http.StatusBadGateway, "it will be retried"},
			{"fetch failed for good", refreshWith(refresh.Result{ID: id, Error: "prismatic said 500"}, nil),
				"/v1/instances/" + id + "/refresh", http.StatusBadGateway, "prismatic said 500"},
			{"not in Prismatic", refreshWith(refresh.Result{ID: id, OK: true, Skip: refresh.SkipNotFound}, nil),
				"/v1/instances/" + id + "/refresh", http.StatusNotFound, "does not exist"},
			{"deleted by the fetch", refreshWith(refresh.Result{ID: id, OK: true, Change: cache.ChangeDeleted}, nil),
				"/v1/instances/" + id + "/refresh", http.StatusNotFound, "does not exist"},
			{"tombstoned", refreshWith(refresh.Result{ID: id, OK: true, Skip: refresh.SkipDeleted}, nil),
				"/v1/instances/" + id + "/refresh", http.StatusNotFound, "does not exist"},
			{"work set down", refreshWith(refresh.Result{}, errors.New("work set add: connection refused")),
				"/v1/instances/" + id + "/refresh", http.StatusServiceUnavailable, "retry later"},
			{"queue down", adminServer(t, db, server.Admin{Queue: func(context.Context, string) error { return errors.New("down") }}),
				"/v1/instances/" + id + "/refresh?wait=false", http.StatusServiceUnavailable, "retry later"},
			{"bad timeout", adminServer(t, db, server.Admin{}), "/v1/instances/" + id + "/refresh?timeout=-1s", http.StatusBadRequest, "timeout"},
			{"timeout over the cap", adminServer(t, db, server.Admin{}), "/v1/instances/" + id + "/refresh?timeout=51s", http.StatusBadRequest, "timeout"},
			{"bad id", adminServer(t, db, server.Admin{}), "/v1/instances/%7Bx%7D/refresh", http.StatusBadRequest, "not a Prismatic instance id"},
			{"resync busy", adminServer(t, db, server.Admin{Resync: func(context.Context) error { return server.ErrBusy }}),
				"/v1/resync", http.StatusConflict, "already running"},
			{"resync fails", adminServer(t, db, server.Admin{Resync: func(context.Context) error { return errors.New("down") }}),
				"/v1/resync", http.StatusServiceUnavailable, "retry later"},
			{"external id too long", adminServer(t, db, server.Admin{}),
				"/v1/customers/" + strings.Repeat("e", 513) + "/instances", http.StatusBadRequest, "1 to 512 bytes"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				method := http.MethodPost
				if strings.HasPrefix(tc.path, "/v1/customers/") {
					method = http.MethodGet
				}
				a := adminDo(t, tc.h, method, tc.path)
				if a.status != tc.status {
					t.Fatalf("status %d %s, want %d", a.status, a.raw, tc.status)
				}
				if tc.mention != "" && !strings.Contains(a.str("error"), tc.mention) {
					t.Errorf("error %q does not say %q", a.str("error"), tc.mention)
				}
				if tc.status == http.StatusServiceUnavailable && a.header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
				if tc.status == http.StatusOK {
					entry, _ := a.body["entry"].(map[string]any)
					if entry == nil || entry["id"] != id {
						t.Errorf("refresh answered %s, want the entry", a.raw)
					}
				}
			})
		}
	})
}

func TestAdminRedisDown(t *testing.T) {
	db := store.New(closedPortClient(t), store.Options{})
	h := adminServer(t, db, server.Admin{
		Refresh: func(context.Context, string) (refresh.Result, error) {
			return refresh.Result{ID: exampleInstanceID, OK: true, Change: cache.ChangeRefreshed}, nil
		},
	})
	for _, path := range []string{
		"/v1/instances/" + exampleInstanceID,
		"/v1/customers/acme-001/instances",
		"/v1/customers/acme-001/instances?integration=Salesforce%20Sync",
	} {
		a := adminDo(t, h, http.MethodGet, path)
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || a.str("error") == "" {
			t.Errorf("GET %s with Redis down: %d %s, want 503 with Retry-After", path, a.status, a.raw)
		}
	}
	// The refresh ran but its entry cannot be read back.
	if a := adminDo(t, h, http.MethodPost, "/v1/instances/"+exampleInstanceID+"/refresh"); a.status != http.StatusServiceUnavailable {
		t.Errorf("refresh with Redis down: %d %s", a.status, a.raw)
	}
}

func TestAdminTokenForms(t *testing.T) {
	h := adminServer(t, store.New(closedPortClient(t), store.Options{}), server.Admin{
		Resync: func(context.Context) error { return nil },
	})
	for auth, want := range map[string]int{
		"Bearer " + testAdminToken:        http.StatusAccepted,
		"Bearer  " + testAdminToken + " ": http.StatusAccepted,
		"Bearer " + testAdminToken + "0":  http.StatusUnauthorized,
		"Bearer":                          http.StatusUnauthorized,
		"Token " + testAdminToken:         http.StatusUnauthorized,
		testAdminToken:                    http.StatusUnauthorized,
	} {
		req := httptest.NewRequest(http.MethodPost, "/v1/resync", nil)
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Authorization %q: %d, want %d", auth, rec.Code, want)
		}
	}
	// No token configured: every /v1 route is off, whatever is sent.
	mux := http.NewServeMux()
	(&server.Admin{}).Register(mux)
	req := httptest.NewRequest(http.MethodGet, "/v1/instances/"+exampleInstanceID, nil)
	req.Header.Set("Authorization", "Bearer ")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "--admin-token") {
		t.Errorf("admin API without a token: %d %s", rec.Code, rec.Body.String())
	}
}
