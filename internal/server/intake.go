package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/webhook"
)

// Defaults of Intake.
const (
	// DefaultMaxBody: Prismatic's payloads are a few KB; 256 KiB leaves
	// room for the largest seen many times over.
	DefaultMaxBody     = 256 << 10
	DefaultDedupWindow = time.Hour
	// DefaultMaxClockSkew is how far ahead of this server's clock an event
	// may be dated.
	DefaultMaxClockSkew = 5 * time.Minute
	// DefaultMaxInFlightBytes holds 128 bodies of the maximum size, or
	// thousands of real ones, at once.
	DefaultMaxInFlightBytes = 32 << 20
	// DefaultMaxInFlight is the most requests handled at once.
	DefaultMaxInFlight = 1024
	// DefaultBodyStall drops a body that sends nothing for this long.
	DefaultBodyStall = 5 * time.Second
	// DefaultBodyTimeout is the longest a body may take to arrive, from
	// the end of its headers (the server's ReadTimeout).
	DefaultBodyTimeout = ReadTimeout
	// DefaultRejectLogEvery is how often a refused request is logged; the
	// refusals in between are counted, and the next line says how many.
	DefaultRejectLogEvery = 10 * time.Second
	// overloadRetryAfter is the Retry-After of a 503 for lack of room.
	overloadRetryAfter = 2
	// minReserve is the least room a request reserves, whatever its
	// Content-Length: a request costs memory beyond its body, and a flood
	// of tiny bodies must not count as nothing.
	minReserve = 4 << 10
)

// Intake is the handler of POST /webhooks/prismatic. It verifies, parses and
// decides each event, applies the decision to Redis, and answers 2xx only
// once every effect and work-set entry is in Redis; when Redis fails it
// answers 503, so the sender retries and nothing acknowledged is lost.
// Configure it through its fields before serving; it is safe for concurrent
// use afterwards.
type Intake struct {
	Verifier *webhook.Verifier
	Actions  webhook.Actions
	Store    *store.Store
	Work     *refresh.WorkSet
	Log      *slog.Logger
	// MaxBody caps a body in bytes; DefaultMaxBody if zero.
	MaxBody int64
	// DedupWindow is how long a body is remembered so that a second delivery
	// of it has no effect; DefaultDedupWindow if zero.
	DedupWindow time.Duration
	// TimestampWindow, when positive, refuses bodies whose timestamp is
	// further than this from now, in either direction.
	TimestampWindow time.Duration
	// MaxClockSkew refuses bodies dated further than this ahead of now;
	// DefaultMaxClockSkew if zero.
	MaxClockSkew time.Duration
	// MaxInFlightBytes and MaxInFlight bound the bodies held at once (see
	// Budget); DefaultMaxInFlightBytes and DefaultMaxInFlight if zero.
	// MaxInFlightBytes must exceed MaxBody (twice it, say), or a body of
	// the maximum size never fits.
	MaxInFlightBytes int64
	MaxInFlight      int
	// BodyStall drops a body that sends nothing for this long,
	// BodyTimeout one that takes longer than this in all; DefaultBodyStall
	// and DefaultBodyTimeout if zero.
	BodyStall   time.Duration
	BodyTimeout time.Duration
	// RejectLogEvery is the least time between two log lines of refused
	// requests; DefaultRejectLogEvery if zero.
	RejectLogEvery time.Duration
	// Wake, when set, is called after a delivery queued work, so that this
	// process's workers claim it at once rather than when the work set's
	// wake-up message comes back from Redis (other replicas get that).
	Wake func()
	// Observe, when set, is told the outcome of every delivery.
	Observe func(Delivery)
	// Now is the clock; time.Now if nil.
	Now func() time.Time

	once      sync.Once
	budget    *Budget
	rejectLog *logLimiter
	acks      ackMemo
}

// IntakeStats is what the intake's guards did, for metrics.
type IntakeStats struct {
	Budget BudgetStats
	// LogsSuppressed counts refused requests not logged to keep the log
	// from flooding.
	LogsSuppressed uint64
}

// Stats returns the state of the intake's budget and log limiter.
func (in *Intake) Stats() IntakeStats {
	in.init()
	return IntakeStats{Budget: in.budget.Stats(), LogsSuppressed: in.rejectLog.suppressedTotal()}
}

func (in *Intake) init() {
	in.once.Do(func() {
		in.budget = NewBudget(orDefault(in.MaxInFlightBytes, DefaultMaxInFlightBytes), orDefault(in.MaxInFlight, DefaultMaxInFlight))
		in.rejectLog = &logLimiter{every: orDefault(in.RejectLogEvery, DefaultRejectLogEvery)}
	})
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Delivery is what happened to one webhook delivery.
type Delivery struct {
	Event    string
	Instance string
	Action   webhook.Action
	// Status is the HTTP status answered.
	Status int
	// Outcome is a short word: accepted, duplicate, ignored, rejected,
	// overloaded (503: no room in the budget, or the body was cut to make
	// room), unavailable (503: Redis failed).
	Outcome string
	// Detail says more (the reason for a rejection or a skip).
	Detail string
	Took   time.Duration
}

// accepted is the body of a 2xx answer.
type accepted struct {
	Status string         `json:"status"`
	Event  string         `json:"event"`
	Action webhook.Action `json:"action,omitempty"`
	Detail string         `json:"detail,omitempty"`
}

func (in *Intake) now() time.Time {
	if in.Now != nil {
		return in.Now()
	}
	return time.Now()
}

func (in *Intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	in.init()
	start := in.now()
	d := Delivery{}
	defer func() {
		d.Took = in.now().Sub(start)
		in.logDelivery(d)
		if in.Observe != nil {
			in.Observe(d)
		}
	}()
	reject := func(status int, outcome, msg string) {
		d.Status, d.Outcome, d.Detail = status, outcome, msg
		writeError(w, status, msg)
	}
	// refuse answers before the body is read in full: the connection is
	// closed after the answer rather than drained, which a slow sender
	// could make last.
	refuse := func(status int, outcome, msg string) {
		w.Header().Set("Connection", "close")
		reject(status, outcome, msg)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(http.StatusMethodNotAllowed, "rejected", "method "+r.Method+" not allowed: webhooks are POSTed")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			refuse(http.StatusUnsupportedMediaType, "rejected", fmt.Sprintf("Content-Type %q: want application/json", ct))
			return
		}
	}
	maxBody := orDefault(in.MaxBody, DefaultMaxBody)
	if r.ContentLength > maxBody {
		refuse(http.StatusRequestEntityTooLarge, "rejected", fmt.Sprintf("body larger than %d bytes (Content-Length %d)", maxBody, r.ContentLength))
		return
	}
	sig, err := in.Verifier.Begin(r.Header.Get(webhook.SignatureHeader))
	if err != nil {
		refuse(http.StatusUnauthorized, "rejected", err.Error())
		return
	}
	// Room for the body before a byte of it is read: its announced
	// length, or the maximum when it has none (chunked).
	limit := maxBody
	if r.ContentLength >= 0 {
		limit = r.ContentLength
	}
	rc := http.NewResponseController(w)
	res, err := in.budget.Reserve(max(limit+1, minReserve), func() { _ = rc.SetReadDeadline(time.Unix(1, 0)) })
	if err != nil {
		w.Header().Set("Retry-After", strconv.Itoa(overloadRetryAfter))
		refuse(http.StatusServiceUnavailable, "overloaded", "too many webhooks in flight; retry later")
		return
	}
	defer res.Release()
	// Deadlines are the connection's, on the wall clock whatever in.Now is.
	read, err := readBody(rc, r, res, sig, limit, orDefault(in.BodyStall, DefaultBodyStall),
		time.Now().Add(orDefault(in.BodyTimeout, DefaultBodyTimeout)), time.Now)
	if res.Finished() || errors.Is(err, errBodyCut) {
		w.Header().Set("Retry-After", strconv.Itoa(overloadRetryAfter))
		refuse(http.StatusServiceUnavailable, "overloaded", "too many webhooks in flight: this body was still arriving when newer ones needed its room; retry later")
		return
	}
	switch {
	case errors.Is(err, errBodyTooLarge):
		refuse(http.StatusRequestEntityTooLarge, "rejected", fmt.Sprintf("body larger than %d bytes", maxBody))
		return
	case errors.Is(err, errBodyStalled):
		refuse(http.StatusRequestTimeout, "rejected", "the body did not arrive in time")
		return
	case err != nil:
		refuse(http.StatusBadRequest, "rejected", "read body: "+err.Error())
		return
	}
	// The body is in. Clear its deadline: the server now watches the
	// connection for the client going away, and a deadline passing there
	// would cancel the request's context while the event is applied.
	_ = rc.SetReadDeadline(time.Time{})
	body := read.body
	if err := sig.Verify(); err != nil {
		reject(http.StatusUnauthorized, "rejected", err.Error())
		return
	}
	now := in.now()
	ev, err := webhook.Parse(r.Header.Get(webhook.EventHeader), body, now)
	if err != nil {
		reject(http.StatusBadRequest, "rejected", err.Error())
		return
	}
	d.Event, d.Instance = ev.Type, ev.InstanceID
	if !ev.TimestampMissing {
		if err := webhook.CheckTime(ev.Timestamp, now, orDefault(in.MaxClockSkew, DefaultMaxClockSkew), in.TimestampWindow); err != nil {
			reject(http.StatusBadRequest, "rejected", err.Error())
			return
		}
	}
	plan, err := webhook.Decide(ev, in.Actions, nil)
	if err != nil {
		reject(http.StatusBadRequest, "rejected", err.Error())
		return
	}
	d.Action = plan.Action
	digest := hex.EncodeToString(read.sum[:])
	redecide := func(st store.State) webhook.Plan {
		p, _ := webhook.Decide(ev, in.Actions, &st) // refused above if it errs
		return p
	}
	// The mark that makes a repeat of the body a no-op is written in the
	// same script as the effect it guards (same hash slot), so a delivery is
	// either applied and marked, or neither: a retry after any failure
	// applies it in full, and a repeat after success does nothing.
	out, err := refresh.Executor{Store: in.Store, Work: in.Work}.Execute(r.Context(), plan, redecide,
		refresh.Once{Sum: digest, Window: in.window()})
	if err != nil {
		in.unavailable(w, &d, err)
		return
	}
	if out.Duplicate {
		d.Status, d.Outcome = http.StatusOK, "duplicate"
		in.acks.writeAck(w, accepted{Status: "duplicate", Event: ev.Type, Action: plan.Action})
		return
	}
	if out.IndexErr != nil && in.Log != nil {
		in.Log.Warn("webhook applied; its lookup rows were not", "instance", plan.Instance, "err", out.IndexErr)
	}
	if out.Queued && in.Wake != nil {
		in.Wake()
	}
	d.Status, d.Outcome, d.Detail = http.StatusOK, "accepted", out.Plan.Why
	if plan.Action == webhook.ActionIgnore {
		d.Outcome = "ignored"
	}
	in.acks.writeAck(w, accepted{Status: "accepted", Event: ev.Type, Action: plan.Action, Detail: out.Plan.Why})
}

func (in *Intake) window() time.Duration {
	if in.DedupWindow > 0 {
		return in.DedupWindow
	}
	return DefaultDedupWindow
}

func (in *Intake) unavailable(w http.ResponseWriter, d *Delivery, err error) {
	d.Status, d.Outcome, d.Detail = http.StatusServiceUnavailable, "unavailable", err.Error()
	w.Header().Set("Retry-After", "5")
	writeError(w, http.StatusServiceUnavailable, "the cache's Redis is unavailable; retry later")
}

func (in *Intake) logDelivery(d Delivery) {
	if in.Log == nil {
		return
	}
	// A delivered webhook is logged at debug: at thousands a second, a
	// line each would cost the intake more than its Redis work, and
	// prismcache_webhooks_total counts every one by type and outcome.
	level := slog.LevelDebug
	switch {
	case d.Outcome == "unavailable" || d.Status >= 500 && d.Outcome != "overloaded":
		level = slog.LevelError
	case d.Status >= 400:
		level = slog.LevelWarn
	}
	ctx := context.Background()
	if !in.Log.Enabled(ctx, level) {
		return // before the attributes are boxed: most deliveries are not logged
	}
	attrs := []any{"event", d.Event, "instance", d.Instance, "action", d.Action,
		"status", d.Status, "outcome", d.Outcome, "detail", d.Detail, "took", d.Took.Round(time.Microsecond)}
	if d.Outcome == "rejected" || d.Outcome == "overloaded" {
		// Anyone can send these: one line per interval, saying how many
		// were left out since the last.
		ok, skipped := in.rejectLog.allow(in.now())
		if !ok {
			return
		}
		if skipped > 0 {
			attrs = append(attrs, "suppressed", skipped)
		}
	}
	in.Log.Log(ctx, level, "webhook", attrs...)
}
