package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prismcache/prismcache/internal/webhook"
)

// Hostile settings: the slow-body attack of docs/security.md.
const (
	hostileConns    = 1500
	hostileBody     = 256<<10 - 1 // just under the default --max-body
	hostileRate     = 100_000     // bytes per second per connection
	hostileTick     = 100 * time.Millisecond
	hostileDuration = 40 * time.Second
	hostileEvery    = 200 * time.Millisecond // one valid webhook
	hostilePeakMB   = 256
	hostileP99      = 2 * time.Second
)

// HostileResults is the hostile scenario's JSON payload.
type HostileResults struct {
	Connections int     `json:"attack_connections"`
	BodyBytes   int     `json:"attack_body_bytes"`
	RateBps     int     `json:"attack_bytes_per_s_per_connection"`
	DurationS   float64 `json:"duration_s"`
	// Dials counts the attack's connections, first ones and reconnections
	// after the daemon ended one; Answers what the daemon answered them.
	Dials   int64            `json:"attack_dials"`
	Answers map[string]int64 `json:"attack_answers"`
	// AttackBytes is what the attack sent in all.
	AttackBytes int64 `json:"attack_bytes_sent"`
	// Valid webhooks: sent, answered 2xx, applied (entry stale in Redis).
	ValidSent    int         `json:"valid_sent"`
	Valid2xx     int         `json:"valid_2xx"`
	ValidApplied int         `json:"valid_applied"`
	ValidErrors  []string    `json:"valid_errors,omitempty"`
	ValidLatency LatencyJSON `json:"valid_latency"`
	// PeakRSS is the daemon's VmHWM at the end; RSSAfter its VmRSS.
	PeakRSS  int64 `json:"daemon_vmhwm_bytes"`
	RSSAfter int64 `json:"daemon_vmrss_after_bytes"`
	// Metrics are the daemon's intake metrics at the end.
	Metrics map[string]float64 `json:"daemon_intake_metrics"`
}

// Hostile runs 1,500 connections from 127.0.0.2–9, each sending a body
// just under the maximum at 100 KB/s and holding back its last byte
// (reconnecting when the daemon ends one), for 40 s, while a valid signed
// instance.updated arrives every 200 ms from 127.0.0.1. It reports the
// daemon's peak RSS, the valid webhooks' answers and latency from first
// send, and whether each was applied.
func (e *Env) Hostile(ctx context.Context) (Report, error) {
	rep := Report{Scenario: "hostile", Quick: e.Quick}
	sim, err := StartSim(pick(e, 100, 20), 0)
	if err != nil {
		return rep, err
	}
	defer sim.Close()
	if err := e.Prefill(ctx, sim); err != nil {
		return rep, err
	}
	d, err := e.Daemon(ctx, sim, intakeRate, intakeWorkers)
	if err != nil {
		return rep, err
	}
	defer d.Close()
	host, _ := HostOf(d.URL)
	conns, dur := pick(e, hostileConns, 150), pick(e, hostileDuration, 5*time.Second)
	res := HostileResults{Connections: conns, BodyBytes: hostileBody, RateBps: hostileRate, DurationS: dur.Seconds(), Answers: map[string]int64{}}

	atk := &slowBodies{target: host, bodyLen: hostileBody, chunk: hostileRate * int(hostileTick) / int(time.Second), every: hostileTick}
	atk.start(conns)
	e.Logf("hostile: %d slow connections from 127.0.0.2-9 to %s", conns, host)

	ids := sim.CustomerInstances()
	sg := &Signer{Secret: []byte(benchSecret)}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true, // every webhook opens its connection, as a stranger's would
		DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}).DialContext,
	}}
	var (
		mu      sync.Mutex
		lat     []time.Duration
		applied []string
		wg      sync.WaitGroup
	)
	tick := time.NewTicker(hostileEvery)
	end := time.After(dur)
	n := 0
send:
	for {
		select {
		case <-ctx.Done():
			break send
		case <-end:
			break send
		case <-tick.C:
		}
		in := ids[n%len(ids)]
		n++
		body := sg.InstanceEvent(webhook.InstanceUpdated, in.ID, in.Name)
		res.ValidSent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, d.URL+WebhookPath, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(webhook.SignatureHeader, webhook.SignatureValue(benchSecret, body))
			resp, err := client.Do(req)
			took := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.ValidErrors = append(res.ValidErrors, err.Error())
				return
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			lat = append(lat, took)
			if resp.StatusCode/100 != 2 {
				res.ValidErrors = append(res.ValidErrors, fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(msg)))
				return
			}
			res.Valid2xx++
			applied = append(applied, in.ID)
		}()
	}
	tick.Stop()
	wg.Wait()
	atk.close()
	res.Dials, res.AttackBytes = atk.dials.Load(), atk.sent.Load()
	atk.answers.Range(func(k, v any) bool {
		res.Answers[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	if m, err := ReadMemory(d.PID()); err == nil {
		res.PeakRSS, res.RSSAfter = m.Peak, m.RSS
	} else {
		return rep, fmt.Errorf("read the daemon's memory: %w", err)
	}
	res.Metrics = scrapeIntake(ctx, d.URL)
	// Applied: each instance a valid webhook named is stale in Redis.
	k := e.Keys()
	for _, id := range applied {
		if v, err := e.Redis.Client.HGet(ctx, k.Instance(id), "stale").Result(); err == nil && v == "1" {
			res.ValidApplied++
		}
	}
	s := Summarize(lat)
	res.ValidLatency = s.JSON()
	e.Logf("hostile: daemon VmHWM %s; valid webhooks %d sent, %d 2xx, %d applied, p50 %s p99 %s max %s; attack: %d dials, %s sent, answers %v; intake %v",
		MB(res.PeakRSS), res.ValidSent, res.Valid2xx, res.ValidApplied, FmtDur(s.P50), FmtDur(s.P99), FmtDur(s.Max),
		res.Dials, MB(res.AttackBytes), res.Answers, res.Metrics)
	rep.Results = res
	rep.Figures = []Row{
		{Scenario: "hostile", Figure: fmt.Sprintf("daemon peak RSS (VmHWM), %d slow bodies", conns), Value: MB(res.PeakRSS),
			Reference: fmt.Sprintf("budget %s", MB(int64(res.Metrics["prismcache_intake_max_bytes"]))),
			Target:    NewTarget(float64(res.PeakRSS)/(1<<20), "<=", hostilePeakMB, fmt.Sprintf("≤ %d MB", hostilePeakMB))},
		{Scenario: "hostile", Figure: "valid webhooks answered 2xx and applied", Value: fmt.Sprintf("%d / %d / %d", res.Valid2xx, res.ValidApplied, res.ValidSent),
			Target: NewTarget(float64(min(res.Valid2xx, res.ValidApplied)-res.ValidSent), ">=", 0, "all")},
		{Scenario: "hostile", Figure: "valid webhook p99 from first send (p50)", Value: FmtDur(s.P99) + " (" + FmtDur(s.P50) + ")",
			Target: NewTarget(s.P99.Seconds(), "<=", hostileP99.Seconds(), "≤ 2 s")},
	}
	if len(res.ValidErrors) > 0 {
		rep.Error = fmt.Sprintf("%d valid webhooks failed, first: %s", len(res.ValidErrors), res.ValidErrors[0])
	}
	return rep, nil
}

// scrapeIntake reads the daemon's intake metrics from /metrics.
func scrapeIntake(ctx context.Context, base string) map[string]float64 {
	out := map[string]float64{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return out
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "prismcache_intake_") && !strings.HasPrefix(line, `prismcache_webhooks_total{event="instance.updated"`) &&
			!strings.HasPrefix(line, `prismcache_webhooks_total{event="other"`) {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(val, 64); err == nil && f != 0 {
			out[name] = f
		}
	}
	return out
}

// slowBodies holds connections from 127.0.0.2–9 that each send a body of
// bodyLen bytes, chunk bytes every tick, never the last byte; a connection
// the daemon ends is opened again at once.
type slowBodies struct {
	target  string
	bodyLen int
	chunk   int
	every   time.Duration

	stop    chan struct{}
	wg      sync.WaitGroup
	dials   atomic.Int64
	sent    atomic.Int64
	answers sync.Map // status text → *atomic.Int64
}

func (a *slowBodies) start(n int) {
	a.stop = make(chan struct{})
	for i := 0; i < n; i++ {
		local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%8))}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			for {
				select {
				case <-a.stop:
					return
				default:
				}
				a.once(local)
			}
		}()
	}
}

func (a *slowBodies) close() {
	close(a.stop)
	a.wg.Wait()
}

func (a *slowBodies) count(what string) {
	n, _ := a.answers.LoadOrStore(what, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
}

func (a *slowBodies) once(local *net.TCPAddr) {
	d := net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", a.target)
	if err != nil {
		a.count("dial error")
		select {
		case <-a.stop:
		case <-time.After(100 * time.Millisecond):
		}
		return
	}
	a.dials.Add(1)
	defer conn.Close()
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			a.count("closed without an answer")
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		a.count(strconv.Itoa(resp.StatusCode))
	}()
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s: sha256=%s\r\n\r\n",
		WebhookPath, a.target, a.bodyLen, webhook.SignatureHeader, strings.Repeat("0", 64))
	if _, err := io.WriteString(conn, head); err != nil {
		return
	}
	chunk := bytes.Repeat([]byte("x"), a.chunk)
	sent := 0
	t := time.NewTicker(a.every)
	defer t.Stop()
	for {
		n := min(a.chunk, a.bodyLen-1-sent) // never the last byte
		if n > 0 {
			if _, err := conn.Write(chunk[:n]); err != nil {
				return
			}
			sent += n
			a.sent.Add(int64(n))
		}
		select {
		case <-a.stop:
			return
		case <-ended:
			return
		case <-t.C:
		}
	}
}
