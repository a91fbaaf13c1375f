package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// WebhookPath is where the daemon (and the baseline) take webhooks.
const WebhookPath = "/webhooks/prismatic"

// Signer builds signed webhook requests as Prismatic sends them, each body
// with a unique, strictly increasing timestamp so that the daemon's dedup
// never short-circuits one. It is safe for concurrent use.
type Signer struct {
	Secret []byte
	last   atomic.Int64 // unix µs of the last timestamp handed out
}

// Stamp returns now, truncated to the microsecond, or 1µs after the last
// stamp when the clock has not moved past it.
func (s *Signer) Stamp() time.Time {
	for {
		last := s.last.Load()
		now := time.Now().UnixMicro()
		if now <= last {
			now = last + 1
		}
		if s.last.CompareAndSwap(last, now) {
			return time.UnixMicro(now).UTC()
		}
	}
}

// webhookTime is the payload's timestamp format, as in Prismatic's examples.
const webhookTime = "2006-01-02T15:04:05.000000+00:00"

type instanceRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// body has the keys of Prismatic's instance event payloads, in their order.
type body struct {
	Integration       *instanceRef `json:"integration"`
	Customer          *instanceRef `json:"customer"`
	ParentIntegration *instanceRef `json:"parent_integration"`
	Instance          instanceRef  `json:"instance"`
	User              struct {
		ID    string `json:"id"`
		Email string `json:"email"`
		Name  string `json:"name"`
	} `json:"user"`
	EventType      string `json:"event_type"`
	Timestamp      string `json:"timestamp"`
	OrganizationID string `json:"organization_id"`
	WebhookID      string `json:"webhook_id"`
}

// InstanceEvent returns the body of an instance event (instance.updated,
// instance.deployed, …) for id, stamped now.
func (s *Signer) InstanceEvent(typ, id, name string) []byte {
	b := body{Instance: instanceRef{ID: id, Name: name}, EventType: typ, Timestamp: s.Stamp().Format(webhookTime),
		OrganizationID: "T3JnYW5pemF0aW9uOmJlbmNo", WebhookID: "V2ViaG9va0NvbmZpZzpiZW5jaA=="}
	b.User.ID, b.User.Email, b.User.Name = "VXNlcjpiZW5jaA==", "bench@example.com", "prismbench"
	out, err := json.Marshal(b)
	if err != nil {
		panic("bench: marshal webhook: " + err.Error()) // strings only
	}
	return out
}

// hexHMAC returns the hex HMAC-SHA256 of body under secret.
func hexHMAC(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Request appends to buf an HTTP/1.1 POST of the signed body to host.
func (s *Signer) Request(buf []byte, host, typ string, body []byte) []byte {
	mac := hmac.New(sha256.New, s.Secret)
	mac.Write(body)
	var sum [sha256.Size]byte
	buf = append(buf, "POST "+WebhookPath+" HTTP/1.1\r\nHost: "...)
	buf = append(buf, host...)
	buf = append(buf, "\r\nContent-Type: application/json\r\nUser-Agent: prismbench\r\nX-Webhook-Event: "...)
	buf = append(buf, typ...)
	buf = append(buf, "\r\nX-Webhook-Signature: sha256="...)
	buf = hex.AppendEncode(buf, mac.Sum(sum[:0]))
	buf = append(buf, "\r\nContent-Length: "...)
	buf = strconv.AppendInt(buf, int64(len(body)), 10)
	buf = append(buf, "\r\n\r\n"...)
	return append(buf, body...)
}

// Conn is one keep-alive HTTP/1.1 connection that writes prepared request
// bytes and parses the answer: a load generator much lighter than
// net/http's client, so the machine's CPU goes to the servers under test.
// It is not safe for concurrent use.
type Conn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
	body bytes.Buffer
}

// NewConn returns a connection to addr (host:port), dialled on first use.
func NewConn(addr string) *Conn { return &Conn{addr: addr} }

// Do sends one request and returns the answer's status and body (valid
// until the next call). A failed connection is closed and dialled again on
// the next call.
func (c *Conn) Do(req []byte) (int, []byte, error) {
	if c.c == nil {
		nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			return 0, nil, err
		}
		c.c, c.br = nc, bufio.NewReaderSize(nc, 16<<10)
	}
	_ = c.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.c.Write(req); err != nil {
		c.Close()
		return 0, nil, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.Close()
		return 0, nil, err
	}
	c.body.Reset()
	_, err = io.Copy(&c.body, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.Close()
	}
	return resp.StatusCode, c.body.Bytes(), err
}

// Close closes the connection.
func (c *Conn) Close() {
	if c.c != nil {
		_ = c.c.Close()
		c.c, c.br = nil, nil
	}
}

// HostOf returns host:port of a base URL.
func HostOf(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("bad URL %q", base)
	}
	return u.Host, nil
}

// Job prepares one request into buf. done, when not nil, is told the
// answer and when it arrived.
type Job func(buf []byte) (req []byte, done func(status int, body []byte, ack time.Time), err error)

// Load is the outcome of one load run.
type Load struct {
	Target      string  `json:"target"`
	Concurrency int     `json:"concurrency,omitempty"`
	Rate        float64 `json:"rate_per_s,omitempty"`
	Seconds     float64 `json:"seconds"`
	Sent        int64   `json:"sent"`
	OK          int64   `json:"ok"`
	Failed      int64   `json:"failed"`
	Duplicates  int64   `json:"duplicates"`
	// Throughput is 2xx answers per second of the measured window.
	Throughput float64     `json:"throughput_per_s"`
	Latency    LatencyJSON `json:"ack_latency"`
	// FromSchedule (open loop only) counts from when each request was due,
	// so it includes any wait in the sender (no coordinated omission).
	FromSchedule *LatencyJSON `json:"ack_latency_from_schedule,omitempty"`
	LastError    string       `json:"last_error,omitempty"`
	// Others is the CPU other processes on the machine used during the run.
	Others *NoiseReport `json:"other_processes,omitempty"`

	lat Summary
}

type tally struct {
	mu       sync.Mutex
	lat      []time.Duration
	sched    []time.Duration
	sent, ok int64
	failed   int64
	dups     int64
	lastErr  error
}

// counts is one connection's share of a load, merged into the tally when
// the connection is done.
type counts struct {
	lat, sched             []time.Duration
	sent, ok, failed, dups int64
	lastErr                error
}

// record counts one answer sent at t0 and received at t1; at, when not
// zero, is when the request was due (open loop).
func (c *counts) record(status int, body []byte, err error, at, t0, t1 time.Time) {
	c.sent++
	switch {
	case err != nil:
		c.failed++
		c.lastErr = err
	case status/100 != 2:
		c.failed++
		c.lastErr = fmt.Errorf("status %d: %s", status, bytes.TrimSpace(body))
	default:
		c.ok++
		c.lat = append(c.lat, t1.Sub(t0))
		if !at.IsZero() {
			c.sched = append(c.sched, t1.Sub(at))
		}
		if IsDuplicate(body) {
			c.dups++
		}
	}
}

// jobFailed counts a request the job could not build.
func (c *counts) jobFailed(err error) {
	c.failed++
	c.lastErr = err
}

func (t *tally) add(c counts) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lat = append(t.lat, c.lat...)
	t.sched = append(t.sched, c.sched...)
	t.sent += c.sent
	t.ok += c.ok
	t.failed += c.failed
	t.dups += c.dups
	if c.lastErr != nil {
		t.lastErr = c.lastErr
	}
}

// IsDuplicate reports whether an answer's body says its webhook was a
// duplicate: `"status":"duplicate"`, written compactly or indented.
func IsDuplicate(body []byte) bool {
	return bytes.Contains(body, duplicateCompact) || bytes.Contains(body, duplicateIndented)
}

var (
	duplicateCompact  = []byte(`"status":"duplicate"`)
	duplicateIndented = []byte(`"status": "duplicate"`)
)

// ClosedLoop runs conc connections, each sending its next request as soon as
// the previous one is answered, for warm-up plus d; only requests begun
// after the warm-up are counted.
func ClosedLoop(ctx context.Context, addr string, conc int, warm, d time.Duration, job Job) Load {
	var t tally
	start := time.Now()
	from, until := start.Add(warm), start.Add(warm+d)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := NewConn(addr)
			defer c.Close()
			var n counts
			buf := make([]byte, 0, 2048)
			for ctx.Err() == nil {
				req, done, err := job(buf[:0])
				if err != nil {
					n.jobFailed(err)
					continue
				}
				t0 := time.Now()
				if !t0.Before(until) {
					break
				}
				status, body, err := c.Do(req)
				t1 := time.Now()
				if done != nil {
					done(status, body, t1)
				}
				if !t0.Before(from) {
					n.record(status, body, err, time.Time{}, t0, t1)
				}
			}
			t.add(n)
		}()
	}
	wg.Wait()
	l := t.load(d)
	l.Concurrency = conc
	return l
}

// OpenLoop sends rate requests per second for d, each when it is due
// whatever the answers to earlier ones, over up to conns connections.
func OpenLoop(ctx context.Context, addr string, rate float64, d time.Duration, conns int, job Job) Load {
	total := int64(rate * d.Seconds())
	due := make(chan time.Time, total)
	var t tally
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := NewConn(addr)
			defer c.Close()
			var n counts
			buf := make([]byte, 0, 2048)
			for at := range due {
				if ctx.Err() != nil {
					break
				}
				req, done, err := job(buf[:0])
				if err != nil {
					n.jobFailed(err)
					continue
				}
				t0 := time.Now()
				status, body, err := c.Do(req)
				t1 := time.Now()
				if done != nil {
					done(status, body, t1)
				}
				n.record(status, body, err, at, t0, t1)
			}
			t.add(n)
		}()
	}
	start := time.Now()
	interval := float64(time.Second) / rate
	for next := int64(0); next < total && ctx.Err() == nil; {
		n := int64(float64(time.Since(start)) / interval)
		for ; next < total && next <= n; next++ {
			due <- start.Add(time.Duration(float64(next) * interval))
		}
		time.Sleep(100 * time.Microsecond)
	}
	close(due)
	wg.Wait()
	l := t.load(time.Since(start))
	l.Rate = rate
	s := Summarize(t.sched).JSON()
	l.FromSchedule = &s
	return l
}

func (t *tally) load(d time.Duration) Load {
	l := Load{Seconds: d.Seconds(), Sent: t.sent, OK: t.ok, Failed: t.failed, Duplicates: t.dups}
	l.lat = Summarize(t.lat)
	l.Latency = l.lat.JSON()
	l.Throughput = Ratio(float64(t.ok), d.Seconds())
	if t.lastErr != nil {
		l.LastError = t.lastErr.Error()
	}
	return l
}
