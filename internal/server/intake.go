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
	DefaultDedupWindow = 24 * time.Hour
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
	if ct := r.Header.Get("Content-Type"); ct != "" {
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
	ctx := r.Context()
	// An instance event reads its entry with the dedup check: one round
	// trip instead of two.
	var (
		seen bool
		pre  *cache.State
	)
	if plan.Target == webhook.TargetInstance {
		var st cache.State
		st, seen, err = in.Store.LoadSeen(ctx, plan.InstanceID, digest)
		pre = &st
	} else {
		seen, err = in.Store.SeenEvent(ctx, digest)
	}
	if err != nil {
		in.unavailable(w, &d, err)
		return
	}
	if seen {
		d.Status, d.Outcome = http.StatusOK, "duplicate"
		writeJSON(w, http.StatusOK, accepted{Status: "duplicate", Event: ev.Type, Action: plan.Action})
		return
	}
	detail, err := in.apply(ctx, ev, plan, pre)
	if err != nil {
		in.unavailable(w, &d, err)
		return
	}
	window := in.DedupWindow
	if window <= 0 {
		window = DefaultDedupWindow
	}
	if err := in.Store.MarkEvent(ctx, digest, window); err != nil {
		in.unavailable(w, &d, err)
		return
	}
	d.Status, d.Outcome, d.Detail = http.StatusOK, "accepted", detail
	if plan.Action == webhook.ActionIgnore {
		d.Outcome = "ignored"
	}
	writeJSON(w, http.StatusOK, accepted{Status: "accepted", Event: ev.Type, Action: plan.Action, Detail: detail})
}

// apply carries out a plan. It returns a note for the log (why nothing was
// written, say) or an error when Redis failed. pre, when set, is the target
// instance's state as just read.
func (in *Intake) apply(ctx context.Context, ev webhook.Event, plan webhook.Plan, pre *cache.State) (string, error) {
	switch plan.Target {
	case webhook.TargetNone:
		return plan.Note, nil
	case webhook.TargetConnection:
		return "", in.Work.Add(ctx, time.Time{}, refresh.ConnectionJob(plan.ConnectionID))
	case webhook.TargetInstance:
		return in.applyInstance(ctx, plan.Action, ev.Timestamp, plan.InstanceID, pre)
	case webhook.TargetCustomer:
		return in.applyCustomer(ctx, ev, plan)
	}
	return "", nil
}

// applyCustomer refreshes or removes a customer's instances. A refresh is a
// job that lists the customer's instances through the API and queues them
// (the external id itself may be what changed, so the index cannot be
// trusted to find them); a delete removes the cached instances the index
// lists for the external id, checking each entry's customer.
func (in *Intake) applyCustomer(ctx context.Context, ev webhook.Event, plan webhook.Plan) (string, error) {
	if plan.Action == webhook.ActionCustomerRefresh {
		if plan.CustomerID == "" {
			return "no customer id in the payload", nil
		}
		return "", in.Work.Add(ctx, time.Time{}, refresh.CustomerJob(plan.CustomerID))
	}
	if plan.CustomerExternalID == "" {
		return "no customer external id in the payload", nil
	}
	entries, err := in.Store.ByCustomer(ctx, plan.CustomerExternalID)
	if err != nil {
		return "", err
	}
	removed := 0
	for _, e := range entries {
		if plan.CustomerID != "" && e.Doc.Customer.ID != plan.CustomerID {
			continue
		}
		if _, err := in.applyInstance(ctx, webhook.ActionDelete, ev.Timestamp, e.Doc.ID, nil); err != nil {
			return "", err
		}
		removed++
	}
	return fmt.Sprintf("removed %d instances", removed), nil
}

// applyInstance decides and writes one instance's effect, deciding again
// when a concurrent write got in first. pre, when set, is the state to
// decide on first (read with the dedup check); later attempts read again.
func (in *Intake) applyInstance(ctx context.Context, action webhook.Action, ts time.Time, id string, pre *cache.State) (string, error) {
	for attempt := 0; attempt < 16; attempt++ {
		var st cache.State
		if attempt == 0 && pre != nil {
			st = *pre
		} else {
			var err error
			if st, err = in.Store.Load(ctx, id); err != nil {
				return "", err
			}
		}
		eff := webhook.Decide(action, ts, st)
		if eff.Fetch == webhook.FetchNow {
			if err := in.Work.Add(ctx, time.Time{}, id); err != nil {
				return "", err
			}
		}
		if eff.Mutation != nil {
			_, err := in.Store.Apply(ctx, id, st.Entry, *eff.Mutation)
			if errors.Is(err, cache.ErrConflict) {
				continue
			}
			if errors.Is(err, cache.ErrTombstoned) {
				return webhook.SkipDeleted, nil
			}
			if err != nil {
				return "", err
			}
		}
		if eff.Fetch == webhook.FetchIfRunning {
			if err := in.Work.AddIfRunning(ctx, id); err != nil {
				return "", err
			}
		}
		return eff.Skip, nil
	}
	return "", fmt.Errorf("apply %s to %s: the entry kept changing", action, id)
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
	in.Log.Log(context.Background(), level, "webhook", "event", d.Event, "instance", d.Instance, "action", d.Action,
		"status", d.Status, "outcome", d.Outcome, "detail", d.Detail, "took", d.Took.Round(time.Microsecond))
}
