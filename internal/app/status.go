package app

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prismcache/prismcache/graphql"
	"github.com/prismcache/prismcache/internal/refresh"
)

// Overall states of the daemon, as /readyz and /status tell them.
const (
	StateOK          = "ok"
	StateDegraded    = "degraded"     // serving, but Prismatic fails or the last pass failed
	StateNeverSynced = "never_synced" // the first full sync has not completed
	StateNotSynced   = "not_synced"   // the sync marker vanished (Redis flushed); a resync runs
	StateRedisDown   = "redis_down"
	// StateRedisPartial: a Redis Cluster master the daemon needs does not
	// answer; the webhooks and fetches for its slots fail.
	StateRedisPartial = "redis_partial"
)

// component is the state of one part, and since when.
type component struct {
	State  string    `json:"state"`
	Since  time.Time `json:"since"`
	Detail string    `json:"detail,omitempty"`
}

// health follows the daemon's parts through the hooks they report on. It is
// safe for concurrent use.
type health struct {
	mu         sync.Mutex
	now        func() time.Time
	prismatic  component
	redis      component
	masters    []masterState // as of the last state, nil but on a Cluster
	lastPass   *passInfo
	everSynced bool
}

type passInfo struct {
	At          time.Time      `json:"at"`
	Result      string         `json:"result"`
	Error       string         `json:"error,omitempty"`
	TookSeconds float64        `json:"tookSeconds"`
	Report      refresh.Report `json:"report"`
}

func newHealth(now func() time.Time) *health {
	t := now()
	return &health{now: now, prismatic: component{State: "unknown", Since: t}, redis: component{State: "unknown", Since: t}}
}

func (h *health) set(c *component, state, detail string) {
	if c.State != state {
		c.State, c.Since = state, h.now()
	}
	c.Detail = detail
}

// apiResult follows the GraphQL requests: any success means Prismatic
// answers; a failure that is not about one object means it does not.
func (h *health) apiResult(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil:
		h.set(&h.prismatic, StateOK, "")
	case graphql.KindOf(err) == graphql.NotFound:
	case graphql.KindOf(err) == graphql.RateLimited:
		h.set(&h.prismatic, "throttled", err.Error())
	default:
		h.set(&h.prismatic, "failing", err.Error())
	}
}

func (h *health) redisResult(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.set(&h.redis, "down", err.Error())
	} else {
		h.set(&h.redis, StateOK, "")
	}
}

func (h *health) pass(rep refresh.Report, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := &passInfo{At: h.now(), Result: "ok", Report: rep, TookSeconds: rep.Took.Seconds()}
	if err != nil {
		p.Result, p.Error = "failed", err.Error()
	}
	h.lastPass = p
}

// state derives the overall state from a fresh look at Redis: the sync
// marker, and every master the daemon needs.
func (h *health) state(ctx context.Context, synced func(context.Context) (bool, error), masters func(context.Context) []masterState) (string, string) {
	ok, err := synced(ctx)
	h.redisResult(err)
	var ms []masterState
	if err == nil {
		ms = masters(ctx)
	}
	down, why := unreachable(ms)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.masters = ms
	if len(down) > 0 {
		h.set(&h.redis, "partial", why)
	}
	switch {
	case err != nil:
		return StateRedisDown, "Redis does not answer: " + err.Error()
	case len(down) > 0:
		return StateRedisPartial, "Redis masters do not answer (webhooks and fetches for their slots fail): " + strings.Join(down, ", ")
	case !ok && h.everSynced:
		return StateNotSynced, "the sync marker disappeared (Redis flushed or replaced); a full resync is running"
	case !ok:
		return StateNeverSynced, "the first full sync has not completed"
	}
	h.everSynced = true
	if h.prismatic.State == "failing" || h.prismatic.State == "throttled" {
		return StateDegraded, "Prismatic's API is " + h.prismatic.State + ": " + h.prismatic.Detail
	}
	if h.lastPass != nil && h.lastPass.Result != "ok" {
		return StateDegraded, "the last reconcile pass failed: " + h.lastPass.Error
	}
	return StateOK, ""
}

// ready is /readyz: ready when Redis answers and a full sync is recorded
// (degraded still serves).
func (a *App) ready(ctx context.Context) (bool, string, string) {
	state, detail := a.health.state(ctx, a.store.Synced, a.masters)
	return state == StateOK || state == StateDegraded, state, detail
}

// masters checks every Redis master the daemon needs (see checkMasters).
func (a *App) masters(ctx context.Context) []masterState { return checkMasters(ctx, a.rdb) }

// redactURL hides a password in a URL for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Status is the body of GET /status.
type Status struct {
	Status      string               `json:"status"`
	Detail      string               `json:"detail,omitempty"`
	Version     string               `json:"version"`
	Components  map[string]component `json:"components"`
	Work        *workStatus          `json:"work,omitempty"`
	LastSyncAt  *time.Time           `json:"lastSyncAt,omitempty"`
	Reconcile   *passInfo            `json:"lastReconcile,omitempty"`
	Entries     map[string]int       `json:"entries,omitempty"`
	OldestStale *oldestStale         `json:"oldestStale,omitempty"`

	// RedisMasters lists the Redis Cluster masters and whether each
	// answers; empty but on a Cluster.
	RedisMasters []masterState `json:"redisMasters,omitempty"`
}

type workStatus struct {
	Queued           int64   `json:"queued"`
	Due              int64   `json:"due"`
	InFlight         int64   `json:"inFlight"`
	OldestDueSeconds float64 `json:"oldestDueAgeSeconds"`
}

type oldestStale struct {
	Since time.Time `json:"since"`
	// ID is shown only to callers with the admin token.
	ID string `json:"id,omitempty"`
}

// status builds GET /status. Instance ids appear only for admins.
func (a *App) status(ctx context.Context, admin bool) any {
	state, detail := a.health.state(ctx, a.store.Synced, a.masters)
	s := Status{Status: state, Detail: detail, Version: a.Version, Components: map[string]component{}}
	if ws, err := a.work.Stats(ctx); err == nil {
		w := &workStatus{Queued: ws.Queued, Due: ws.Due, InFlight: ws.Leased}
		if ws.Due > 0 && !ws.OldestDue.IsZero() {
			w.OldestDueSeconds = max(0, time.Since(ws.OldestDue).Seconds())
		}
		s.Work = w
	}
	if at, err := a.store.SyncedAt(ctx); err == nil && !at.IsZero() {
		s.LastSyncAt = &at
	}
	a.health.mu.Lock()
	s.Components["redis"] = a.health.redis
	s.Components["prismatic"] = a.health.prismatic
	s.RedisMasters = slices.Clone(a.health.masters)
	if p := a.health.lastPass; p != nil {
		cp := *p
		s.Reconcile = &cp
		s.Entries = map[string]int{"fresh": p.Report.Fresh, "stale": p.Report.Stale, "error": p.Report.Errors}
		if !p.Report.OldestStaleSince.IsZero() {
			s.OldestStale = &oldestStale{Since: p.Report.OldestStaleSince}
			if admin {
				s.OldestStale.ID = p.Report.OldestStaleID
			}
		}
		if !admin {
			s.Reconcile.Report.OldestStaleID = ""
		}
	}
	a.health.mu.Unlock()
	if !admin {
		// Error texts can name instances (and say more about the setup than
		// an anonymous caller needs): states only, details for the admin.
		s.Detail = ""
		for name, c := range s.Components {
			c.Detail = ""
			s.Components[name] = c
		}
		for i := range s.RedisMasters {
			s.RedisMasters[i].Detail = ""
		}
		if s.Reconcile != nil && s.Reconcile.Error != "" {
			s.Reconcile.Error = "(shown with the admin token)"
		}
	}
	return s
}
