package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/webhook"
)

// Defaults of Intake.
const (
	DefaultMaxBody     = 1 << 20
	DefaultDedupWindow = time.Hour
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
	Store    *cache.Store
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
	// Wake, when set, is called after a delivery queued work, so that this
	// process's workers claim it at once rather than when the work set's
	// wake-up message comes back from Redis (other replicas get that).
	Wake func()
	// Observe, when set, is told the outcome of every delivery.
	Observe func(Delivery)
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Delivery is what happened to one webhook delivery.
type Delivery struct {
	Event    string
	Instance string
	Action   webhook.Action
	// Status is the HTTP status answered.
	Status int
	// Outcome is a short word: accepted, duplicate, ignored, rejected,
	// unavailable.
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
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reject(http.StatusMethodNotAllowed, "rejected", "method "+r.Method+" not allowed: webhooks are POSTed")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			reject(http.StatusUnsupportedMediaType, "rejected", fmt.Sprintf("Content-Type %q: want application/json", ct))
			return
		}
	}
	limit := in.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			reject(http.StatusRequestEntityTooLarge, "rejected", fmt.Sprintf("body larger than %d bytes", limit))
			return
		}
		reject(http.StatusBadRequest, "rejected", "read body: "+err.Error())
		return
	}
	if err := in.Verifier.Verify(body, r.Header.Get(webhook.SignatureHeader)); err != nil {
		reject(http.StatusUnauthorized, "rejected", err.Error())
		return
	}
	ev, err := webhook.Parse(r.Header.Get(webhook.EventHeader), body, in.now())
	if err != nil {
		reject(http.StatusBadRequest, "rejected", err.Error())
		return
	}
	d.Event, d.Instance = ev.Type, ev.InstanceID
	if in.TimestampWindow > 0 && !ev.TimestampMissing {
		if skew := in.now().Sub(ev.Timestamp); skew > in.TimestampWindow || -skew > in.TimestampWindow {
			reject(http.StatusBadRequest, "rejected", fmt.Sprintf("timestamp %s is outside the accepted window of ±%s", ev.Timestamp.Format(time.RFC3339), in.TimestampWindow))
			return
		}
	}
	plan, err := webhook.PlanEvent(ev, in.Actions)
	if err != nil {
		reject(http.StatusBadRequest, "rejected", err.Error())
		return
	}
	d.Action = plan.Action
	sum := sha256.Sum256(body)
	digest := hex.EncodeToString(sum[:])
	res, err := in.apply(r.Context(), ev, plan, digest)
	if err != nil {
		in.unavailable(w, &d, err)
		return
	}
	if res.dup {
		d.Status, d.Outcome = http.StatusOK, "duplicate"
		writeAck(w, accepted{Status: "duplicate", Event: ev.Type, Action: plan.Action})
		return
	}
	if res.queued && in.Wake != nil {
		in.Wake()
	}
	d.Status, d.Outcome, d.Detail = http.StatusOK, "accepted", res.detail
	if plan.Action == webhook.ActionIgnore {
		d.Outcome = "ignored"
	}
	writeAck(w, accepted{Status: "accepted", Event: ev.Type, Action: plan.Action, Detail: res.detail})
}

// result is what applying one event did.
type result struct {
	// dup: the body was applied already; nothing was done this time.
	dup bool
	// detail says why nothing was written, or what was, for the log.
	detail string
	// queued: work was added to the work set.
	queued bool
}

func (in *Intake) window() time.Duration {
	if in.DedupWindow > 0 {
		return in.DedupWindow
	}
	return DefaultDedupWindow
}

// apply carries out a plan; an error means Redis failed and the sender must
// retry. The mark that makes a repeat of the body a no-op is written in the
// same script as the effect it guards (same hash slot), so a delivery is
// either applied and marked, or neither: a retry after any failure applies
// it in full, and a repeat after success does nothing.
func (in *Intake) apply(ctx context.Context, ev webhook.Event, plan webhook.Plan, digest string) (result, error) {
	switch plan.Target {
	case webhook.TargetConnection:
		dup, err := in.Work.AddOnce(ctx, digest, in.window(), refresh.ConnectionJob(plan.ConnectionID))
		return result{dup: dup, queued: !dup}, err
	case webhook.TargetInstance:
		return in.applyInstance(ctx, plan.Action, ev.Timestamp, plan.InstanceID, digest)
	case webhook.TargetCustomer:
		return in.applyCustomer(ctx, plan, digest)
	}
	// Nothing to store, and a repeat would do nothing either.
	return result{detail: plan.Note}, nil
}

// applyCustomer queues the job that refreshes or removes a customer's
// instances. A refresh lists them through the API (the external id itself
// may be what changed, so the index cannot be trusted to find them); a
// delete removes the cached instances the index lists for the external id,
// checking each entry's customer. Either way the webhook costs one script.
func (in *Intake) applyCustomer(ctx context.Context, plan webhook.Plan, digest string) (result, error) {
	var job string
	switch {
	case plan.Action == webhook.ActionCustomerRefresh && plan.CustomerID != "":
		job = refresh.CustomerJob(plan.CustomerID)
	case plan.Action == webhook.ActionCustomerRefresh:
		return result{detail: "no customer id in the payload"}, nil
	case plan.CustomerExternalID != "":
		job = refresh.CustomerDeleteJob(plan.CustomerID, plan.CustomerExternalID)
	default:
		return result{detail: "no customer external id in the payload"}, nil
	}
	dup, err := in.Work.AddOnce(ctx, digest, in.window(), job)
	return result{dup: dup, queued: !dup}, err
}

// applyInstance decides and writes one instance's effect, once per body.
func (in *Intake) applyInstance(ctx context.Context, action webhook.Action, ts time.Time, id, digest string) (result, error) {
	if action == webhook.ActionRefetch {
		// Nothing to decide but the fetch, which decides for itself (a
		// deleted instance's fetch writes nothing): one script, one round
		// trip.
		dup, err := in.Work.AddOnce(ctx, digest, in.window(), id)
		return result{dup: dup, queued: !dup}, err
	}
	var skip string
	// A stale mark changes only the entry's flags: it is decided without
	// reading the document.
	once := cache.UpdateOnce{Sum: digest, Window: in.window(), WithoutDoc: action == webhook.ActionStale}
	if action != webhook.ActionDelete {
		// A fetch of this instance in flight may have read Prismatic before
		// this event's change: have it run once more. It is done while the
		// entry is read, and before the effect and its dedup mark are
		// written, so that a delivery that fails after it is retried in
		// full; it is harmless to repeat.
		once.Alongside = func() error { return in.Work.AddIfRunning(ctx, id) }
	}
	up, err := in.Store.Update(ctx, id, once, func(st cache.State) *cache.Mutation {
		eff := webhook.Decide(action, ts, st)
		skip = eff.Skip
		return eff.Mutation
	})
	switch {
	case err != nil:
		return result{}, err
	case up.Duplicate:
		return result{dup: true}, nil
	case up.Tombstoned:
		return result{detail: webhook.SkipDeleted}, nil
	case up.IndexErr != nil && in.Log != nil:
		in.Log.Warn("webhook applied; its lookup rows were not", "instance", id, "err", up.IndexErr)
	}
	return result{detail: skip}, nil
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
	level := slog.LevelInfo
	switch {
	case d.Status >= 500:
		level = slog.LevelError
	case d.Status >= 400:
		level = slog.LevelWarn
	}
	ctx := context.Background()
	if !in.Log.Enabled(ctx, level) {
		return // before the attributes are boxed: most deliveries are not logged
	}
	in.Log.Log(ctx, level, "webhook", "event", d.Event, "instance", d.Instance, "action", d.Action,
		"status", d.Status, "outcome", d.Outcome, "detail", d.Detail, "took", d.Took.Round(time.Microsecond))
}
