package app

import (
	"context"
	"fmt"
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
	StateRepairing   = "repairing"    // events may have been lost (webhooks refused, Redis lost); a pass compares everything
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
	// apiNotBefore is the end of the latest wait the API asked for.
	apiNotBefore time.Time
	eviction     *eviction
	lastReady    string // the state /readyz last answered, to log changes
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
	switch k := graphql.KindOf(err); {
	case err == nil:
		h.set(&h.prismatic, StateOK, "")
	case k == graphql.NotFound:
	case k == graphql.RateLimited:
		h.set(&h.prismatic, "throttled", err.Error())
	case k == graphql.Unauthorized || k == graphql.Forbidden:
		h.set(&h.prismatic, "refused", err.Error())
	default:
		h.set(&h.prismatic, "failing", err.Error())
	}
	if ra := graphql.RetryAfter(err); ra > 0 {
		h.apiNotBefore = h.now().Add(ra)
	}
}

// apiNeedsProbe reports whether the API should be probed now: it failed at
// its last answer, and did not ask to be left alone until later.
func (h *health) apiNeedsProbe(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return apiBad(h.prismatic.State) && !now.Before(h.apiNotBefore)
}

// apiBad reports whether a state of the Prismatic component is a failure.
func apiBad(state string) bool {
	return state == "failing" || state == "throttled" || state == "refused"
}

func (h *health) setEviction(ev eviction) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.eviction = &ev
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

// state derives the overall state from a fresh look at Redis — the sync
// marker, and every master the daemon needs; owed is the repair this
// replica owes, nil when none.
func (h *health) state(ctx context.Context, synced func(context.Context) (bool, error), masters func(context.Context) []masterState, owed *refresh.Repair) (string, string) {
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
	if owed != nil {
		return StateRepairing, repairDetail(owed)
	}
	if apiBad(h.prismatic.State) {
		return StateDegraded, "Prismatic's API is " + h.prismatic.State + ": " + h.prismatic.Detail
	}
	if h.lastPass != nil && h.lastPass.Result != "ok" {
		return StateDegraded, "the last reconcile pass failed: " + h.lastPass.Error
	}
	if h.eviction != nil && h.eviction.Unsafe {
		return StateDegraded, fmt.Sprintf("Redis may evict keys (maxmemory-policy %s): entries, tombstones and queued work can be lost", h.eviction.Policy)
	}
	return StateOK, ""
}

func repairDetail(r *refresh.Repair) string {
	why := "webhooks were refused"
	switch r.Reason {
	case refresh.RepairRedisLost:
		why = "Redis stopped answering"
	case refresh.RepairMasterChanged:
		why = "the Redis master changed"
	}
	what := "a pass comparing every instance with Prismatic runs as soon as Redis answers"
	if r.Running {
		what = "a pass comparing every instance with Prismatic is running"
	}
	return fmt.Sprintf("events may have been lost (%s at %s): %s", why, r.Since.UTC().Format(time.RFC3339), what)
}

// ready is /readyz: ready when Redis answers, a full sync is recorded and no
// repair is owed (degraded still serves).
//
// Anonymous callers get the state only; the reason goes to the log, once
// per change of state, and to callers with the admin token.
func (a *App) ready(ctx context.Context) (bool, string, string) {
	state, detail := a.health.state(ctx, a.store.Synced, a.masters, a.recon.Owed())
	a.health.mu.Lock()
	changed := a.health.lastReady != state
	a.health.lastReady = state
	a.health.mu.Unlock()
	if changed && state != StateOK {
		a.log().Warn("readiness", "state", state, "detail", detail)
	} else if changed {
		a.log().Info("readiness", "state", state)
	}
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
	Status  string `json:"status"`
	Detail  string `json:"detail,omitempty"`
	Version string `json:"version"`
	// InsecureSkipSignature: webhook signatures are not checked.
	InsecureSkipSignature bool                 `json:"insecureSkipSignature"`
	Components            map[string]component `json:"components"`
	Work                  *workStatus          `json:"work,omitempty"`
	LastSyncAt            *time.Time           `json:"lastSyncAt,omitempty"`
	Reconcile             *passInfo            `json:"lastReconcile,omitempty"`
	Entries               map[string]int       `json:"entries,omitempty"`
	EntriesCountedAt      *time.Time           `json:"entriesCountedAt,omitempty"`
	OldestStale           *oldestStale         `json:"oldestStale,omitempty"`
	Repair                *repairStatus        `json:"repair,omitempty"`
	Eviction              *evictionStatus      `json:"redisEviction,omitempty"`

	// RedisMasters lists the Redis Cluster masters and whether each
	// answers; empty but on a Cluster.
	RedisMasters []masterState `json:"redisMasters,omitempty"`
}

type workStatus struct {
	Queued           int64   `json:"queued"`
	Due              int64   `json:"due"`
	InFlight         int64   `json:"inFlight"`
	OldestDueSeconds float64 `json:"oldestDueAgeSeconds"`
	// Failing items failed at least once since their last success;
	// FetchFailed of them often enough that their entries say fetch_failed.
	Failing     int64 `json:"failing"`
	FetchFailed int64 `json:"fetchFailed"`
	// UnreachableShards lists the work-set shards Redis did not answer for.
	UnreachableShards []int `json:"unreachableShards,omitempty"`
}

// repairStatus is the repair this replica owes: why, since when, and
// whether its pass runs now.
type repairStatus struct {
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
	Running bool      `json:"running"`
}

// evictionStatus is what Redis's memory settings allow.
type evictionStatus struct {
	Policy    string    `json:"policy"`
	MaxMemory int64     `json:"maxMemory"`
	Safe      bool      `json:"safe"`
	Detail    string    `json:"detail,omitempty"`
	CheckedAt time.Time `json:"checkedAt"`
}

type oldestStale struct {
	Since time.Time `json:"since"`
	// ID is shown only to callers with the admin token.
	ID string `json:"id,omitempty"`
}

// status builds GET /status. Instance ids appear only for admins.
func (a *App) status(ctx context.Context, admin bool) any {
	owed := a.recon.Owed()
	state, detail := a.health.state(ctx, a.store.Synced, a.masters, owed)
	s := Status{Status: state, Detail: detail, Version: a.Version, InsecureSkipSignature: a.insecure, Components: map[string]component{}}
	if owed != nil {
		s.Repair = &repairStatus{Reason: owed.Reason, Since: owed.Since, Running: owed.Running}
	}
	if ws, err := a.work.Stats(ctx); err == nil {
		w := &workStatus{Queued: ws.Queued, Due: ws.Due, InFlight: ws.Leased, Failing: ws.Failing, FetchFailed: ws.Failed,
			UnreachableShards: ws.Unreachable}
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
	if ev := a.health.eviction; ev != nil {
		s.Eviction = &evictionStatus{Policy: ev.Policy, MaxMemory: ev.MaxMemory, Safe: !ev.Unsafe && ev.Err == nil, CheckedAt: ev.At}
		if ev.Err != nil {
			s.Eviction.Detail = "could not read: " + ev.Err.Error()
		} else if ev.Unsafe {
			s.Eviction.Detail = "Redis may evict prismcache's keys: set maxmemory-policy noeviction"
		}
	}
	s.RedisMasters = slices.Clone(a.health.masters)
	if p := a.health.lastPass; p != nil {
		cp := *p
		s.Reconcile = &cp
	}
	a.health.mu.Unlock()
	if c, err := a.census.Read(ctx); err == nil && c != nil {
		s.Entries = map[string]int{"fresh": c.Fresh, "stale": c.Stale, "fetchFailed": c.FetchFailed}
		at := c.At
		s.EntriesCountedAt = &at
		if !c.OldestStaleSince.IsZero() {
			s.OldestStale = &oldestStale{Since: c.OldestStaleSince}
			if admin {
				s.OldestStale.ID = c.OldestStaleID
			}
		}
	}
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
