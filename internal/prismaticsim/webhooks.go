package prismaticsim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// DeliveryState is where an event's webhook delivery stands.
type DeliveryState string

// Delivery states.
const (
	// StateRecorded: no webhook URL (or the Sim was closed), only logged.
	StateRecorded DeliveryState = "recorded"
	// StateDropped: a drop fault; never sent.
	StateDropped DeliveryState = "dropped"
	// StateHeld: a reorder fault; waiting for the next event or its delay.
	StateHeld DeliveryState = "held"
	// StateRetrying: no 2xx yet, retries pending.
	StateRetrying DeliveryState = "retrying"
	// StateDelivered: answered 2xx.
	StateDelivered DeliveryState = "delivered"
	// StateFailed: no 2xx after every retry.
	StateFailed DeliveryState = "failed"
)

// EventRecord is one entry of the event log, copied out of it: later retries
// do not change a record already returned. Body is the exact signed payload.
type EventRecord struct {
	Seq  int64  `json:"seq"`
	Type string `json:"type"`
	// InstanceID is the instance the event is about, even when the payload
	// shape leaves "instance" null; empty for a shared-connection event in
	// the customer-connection shape.
	InstanceID   string          `json:"instanceId,omitempty"`
	ConnectionID string          `json:"connectionId,omitempty"`
	CustomerID   string          `json:"customerId,omitempty"`
	Timestamp    time.Time       `json:"timestamp"`
	State        DeliveryState   `json:"state"`
	Status       int             `json:"status,omitempty"`
	Error        string          `json:"error,omitempty"`
	Attempts     int             `json:"attempts"`
	Duplicated   bool            `json:"duplicated,omitempty"`
	Reordered    bool            `json:"reordered,omitempty"`
	Body         json.RawMessage `json:"body"`
}

type entry struct {
	rec       EventRecord
	inFlight  int // copies with attempts left
	delivered int
}

// settle sets the state from the copies' outcomes; the sender's mu is held.
func (e *entry) settle() {
	switch {
	case e.delivered > 0:
		e.rec.State = StateDelivered
	case e.inFlight > 0:
		e.rec.State = StateRetrying
	default:
		e.rec.State = StateFailed
	}
}

type delivery struct {
	e           *entry
	url, secret string
}

// sender delivers webhooks and keeps the event log. Safe for concurrent use.
type sender struct {
	client  *http.Client
	retries int
	backoff time.Duration
	logSize int
	log     *slog.Logger
	faults  *faultState
	stats   *statsState

	mu        sync.Mutex
	url       string
	secret    string
	seq       int64
	entries   []*entry
	held      *delivery
	heldTimer *time.Timer
	closed    bool
	// wg counts dispatches in progress, retry loops and held-back sends.
	// Adds happen under mu while closed is false (or from a goroutine that
	// holds a count), so none races close's Wait.
	wg sync.WaitGroup
}

func newSender(o Options, f *faultState, st *statsState) *sender {
	return &sender{
		client: o.HTTPClient, retries: o.WebhookRetries, backoff: o.WebhookBackoff,
		logSize: o.EventLogSize, log: o.Logger, faults: f, stats: st,
		url: o.WebhookURL, secret: o.WebhookSecret,
	}
}

func (s *sender) setTarget(url, secret string) {
	s.mu.Lock()
	s.url, s.secret = url, secret
	s.mu.Unlock()
}

// dispatch logs and sends events in order, each after the previous one's
// first attempt, and returns their records as they stand after that.
func (s *sender) dispatch(events []*event) []EventRecord {
	out := make([]EventRecord, 0, len(events))
	for _, ev := range events {
		out = append(out, s.dispatchOne(ev))
	}
	return out
}

func (s *sender) dispatchOne(ev *event) EventRecord {
	s.mu.Lock()
	s.seq++
	e := &entry{rec: EventRecord{
		Seq: s.seq, Type: ev.typ, InstanceID: ev.instanceID, ConnectionID: ev.connectionID,
		CustomerID: ev.customerID, Timestamp: ev.at, Body: ev.body,
	}}
	s.entries = append(s.entries, e)
	if len(s.entries) > s.logSize {
		s.entries = s.entries[len(s.entries)-s.logSize:]
	}
	s.stats.add(func(st *Stats) { st.WebhookEvents++ })
	if s.url == "" || s.closed {
		e.rec.State = StateRecorded
		if s.closed {
			e.rec.Error = "simulator closed"
		}
		rec := e.rec
		s.mu.Unlock()
		s.log.Debug("webhook recorded", "event", ev.typ, "instance", ev.instanceID)
		return rec
	}
	f := s.faults.forWebhook()
	d := &delivery{e: e, url: s.url, secret: s.secret}
	switch {
	case f.drop:
		e.rec.State = StateDropped
		rec := e.rec
		s.mu.Unlock()
		s.stats.add(func(st *Stats) { st.WebhooksDropped++ })
		s.log.Info("webhook dropped (fault)", "event", ev.typ, "instance", ev.instanceID)
		return rec
	case f.reorder && s.held == nil:
		e.rec.State, e.rec.Reordered = StateHeld, true
		s.held = d
		s.wg.Add(1)
		s.heldTimer = time.AfterFunc(f.reorderDelay, func() { s.releaseHeld(d) })
		rec := e.rec
		s.mu.Unlock()
		s.stats.add(func(st *Stats) { st.WebhooksReordered++ })
		s.log.Info("webhook held back (fault)", "event", ev.typ, "instance", ev.instanceID)
		return rec
	}
	s.wg.Add(1)
	defer s.wg.Done()
	release := s.takeHeldLocked()
	copies := 1
	if f.duplicate {
		copies = 2
		e.rec.Duplicated = true
	}
	e.inFlight = copies
	s.mu.Unlock()
	if f.duplicate {
		s.stats.add(func(st *Stats) { st.WebhooksDuplicated++ })
	}
	for range copies {
		s.attempt(d)
	}
	if release != nil {
		s.attempt(release)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return e.rec
}

// takeHeldLocked takes the held-back delivery, if any, to send after the
// current one. s.mu is held.
func (s *sender) takeHeldLocked() *delivery {
	d := s.held
	if d == nil {
		return nil
	}
	s.held = nil
	if s.heldTimer.Stop() {
		s.wg.Done() // its timer will not run
	}
	d.e.inFlight = 1
	return d
}

// releaseHeld sends d when its delay ran out before another event came.
func (s *sender) releaseHeld(d *delivery) {
	defer s.wg.Done()
	s.mu.Lock()
	if s.held != d {
		s.mu.Unlock()
		return
	}
	s.held = nil
	d.e.inFlight = 1
	s.mu.Unlock()
	s.attempt(d)
}

// attempt makes a first attempt and hands a failure to a background retry
// loop.
func (s *sender) attempt(d *delivery) {
	ok := s.try(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		return
	}
	if s.retries == 0 {
		s.giveUpLocked(d)
		return
	}
	s.wg.Add(1)
	go s.retry(d)
}

func (s *sender) retry(d *delivery) {
	defer s.wg.Done()
	wait := s.backoff
	for range s.retries {
		t := time.NewTimer(wait)
		<-t.C
		wait *= 2
		if s.try(d) {
			return
		}
	}
	s.mu.Lock()
	s.giveUpLocked(d)
	s.mu.Unlock()
}

func (s *sender) giveUpLocked(d *delivery) {
	d.e.inFlight--
	d.e.settle()
	s.stats.add(func(st *Stats) { st.WebhooksFailed++ })
	s.log.Warn("webhook failed", "event", d.e.rec.Type, "instance", d.e.rec.InstanceID,
		"attempts", d.e.rec.Attempts, "status", d.e.rec.Status, "error", d.e.rec.Error)
}

// try POSTs the body once and records the outcome; true on 2xx.
func (s *sender) try(d *delivery) bool {
	status, err := s.post(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	d.e.rec.Attempts++
	d.e.rec.Status, d.e.rec.Error = status, ""
	if err != nil {
		d.e.rec.Error = err.Error()
	}
	ok := err == nil && status >= 200 && status < 300
	if ok {
		d.e.inFlight--
		d.e.delivered++
		s.stats.add(func(st *Stats) { st.WebhooksSent++ })
	}
	d.e.settle()
	s.log.Debug("webhook attempt", "event", d.e.rec.Type, "instance", d.e.rec.InstanceID,
		"status", status, "ok", ok)
	return ok
}

func (s *sender) post(d *delivery) (int, error) {
	s.stats.add(func(st *Stats) { st.WebhookAttempts++ })
	body := d.e.rec.Body
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "prismaticsim")
	req.Header.Set("X-Webhook-Event", d.e.rec.Type)
	if d.secret != "" {
		req.Header.Set("X-Webhook-Signature", Sign(d.secret, body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// Sign returns the X-Webhook-Signature value for body: "sha256=" and the
// lower-case hex HMAC-SHA256 of the raw body keyed with secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// close sends a held-back webhook and waits for every delivery to finish.
func (s *sender) close() {
	s.mu.Lock()
	s.closed = true
	d := s.held
	if d != nil {
		s.held = nil
		if s.heldTimer.Stop() {
			s.wg.Done()
		}
		d.e.inFlight = 1
	}
	s.mu.Unlock()
	if d != nil {
		s.attempt(d)
	}
	s.wg.Wait()
}

// Events returns the event log, oldest first (at most
// Options.EventLogSize entries).
func (s *Sim) Events() []EventRecord {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	out := make([]EventRecord, len(s.hooks.entries))
	for i, e := range s.hooks.entries {
		out[i] = e.rec
	}
	return out
}
