package server_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/server"
	"github.com/prismcache/prismcache/internal/testutil"
	"github.com/prismcache/prismcache/internal/webhook"
	"github.com/prismcache/prismcache/internal/webhook/examples"
)

// slowAttack holds open connections from other loopback addresses, each
// sending a body of bodyLen bytes a chunk at a time and never its last
// byte; a connection the server ends is opened again. It counts what the
// server answered.
type slowAttack struct {
	target  string
	conns   int
	bodyLen int
	chunk   int
	every   time.Duration

	stop      chan struct{}
	stopOnce  sync.Once
	wg        sync.WaitGroup
	dials     atomic.Int64
	answers   sync.Map // status code → *atomic.Int64
	noRetryAf atomic.Int64
}

func (a *slowAttack) start(t *testing.T) {
	t.Helper()
	a.stop = make(chan struct{})
	for i := 0; i < a.conns; i++ {
		// 127.0.0.2 to 127.0.0.9: not the address of the valid sender.
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

// once runs one connection until the server ends it or the attack stops.
func (a *slowAttack) once(local *net.TCPAddr) {
	d := net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", a.target)
	if err != nil {
		select {
		case <-a.stop:
		case <-time.After(10 * time.Millisecond):
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
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		n, _ := a.answers.LoadOrStore(resp.StatusCode, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
			a.noRetryAf.Add(1)
		}
	}()
	head := fmt.Sprintf("POST /webhooks/prismatic HTTP/1.1\r\nHost: prismcache\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\n%s: sha256=%s\r\n\r\n{\"padding\":\"", a.bodyLen, webhook.SignatureHeader, strings.Repeat("0", 64))
	if _, err := io.WriteString(conn, head); err != nil {
		return
	}
	sent := len(`{"padding":"`)
	chunk := []byte(strings.Repeat("x", a.chunk))
	tick := time.NewTicker(a.every)
	defer tick.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-ended:
			return
		case <-tick.C:
		}
		n := min(a.chunk, a.bodyLen-1-sent) // the last byte is never sent
		if n <= 0 {
			continue
		}
		if _, err := conn.Write(chunk[:n]); err != nil {
			return
		}
		sent += n
	}
}

func (a *slowAttack) close() {
	a.stopOnce.Do(func() { close(a.stop) })
	a.wg.Wait()
}

func (a *slowAttack) count(status int) int64 {
	if n, ok := a.answers.Load(status); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

// instanceID is a valid global id of a made-up instance.
func instanceID(i int) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("Instance:00000000-0000-4000-8000-%012d", i)))
}

// TestSlowBodiesDoNotStarveWebhooks: a real server on loopback, many
// connections from other loopback addresses each sending a body just under
// the maximum, slowly, never finishing. The bytes of bodies held never
// exceed the budget, the attack does fill it (bodies are cut to make room,
// and answered 503 with Retry-After), and every valid webhook sent
// meanwhile from 127.0.0.1 is answered 2xx and applied.
func TestSlowBodiesDoNotStarveWebhooks(t *testing.T) {
	if testing.Short() {
		t.Skip("holds dozens of connections for seconds")
	}
	// Linux routes all of 127.0.0.0/8 to loopback; other systems may need
	// an alias for 127.0.0.2.
	if ln, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Skipf("cannot use 127.0.0.2 on this machine: %v", err)
	} else {
		ln.Close()
	}
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		const (
			maxBody = 32 << 10
			budget  = 8 * (maxBody + 1) // eight bodies of the maximum size
			valid   = 20
		)
		r := newRig(t, b)
		r.in.Now = nil // the wall clock: the bodies are dated now
		r.in.MaxBody = maxBody
		r.in.MaxInFlightBytes = budget
		r.in.MaxInFlight = 64
		r.in.BodyStall = 3 * time.Second
		srv := server.New(server.Options{Intake: r.in})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv.Serve(ln)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Close(ctx)
		})

		attack := &slowAttack{target: srv.Addr(), conns: 40, bodyLen: maxBody - 1, chunk: 2 << 10, every: 20 * time.Millisecond}
		attack.start(t)
		defer attack.close()
		testutil.Eventually(t, "the attack to fill the budget and be cut", func() bool {
			st := r.in.Stats().Budget
			return st.PeakBytes > budget-maxBody && st.Shed > 0
		})

		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}).DialContext,
		}}
		t.Cleanup(client.CloseIdleConnections)
		base := examples.Must(t, "instance.deployed.json")
		want := map[string]bool{}
		for i := 0; i < valid; i++ {
			id := instanceID(i)
			want[id] = true
			body := examples.Edit(t, base, func(m map[string]any) {
				m["instance"] = map[string]any{"id": id, "name": "slow-body test"}
				m["timestamp"] = time.Now().UTC().Format(time.RFC3339Nano)
			})
			req, err := http.NewRequest(http.MethodPost, "http://"+srv.Addr()+"/webhooks/prismatic", strings.NewReader(string(body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(webhook.SignatureHeader, webhook.SignatureValue(secretA, body))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("valid webhook %d: %v", i, err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				t.Fatalf("valid webhook %d under attack: %d %s", i, resp.StatusCode, answer)
			}
		}
		// Still under attack, and the attack is still being cut.
		shedBefore := r.in.Stats().Budget.Shed
		testutil.Eventually(t, "more attack bodies to be cut", func() bool { return r.in.Stats().Budget.Shed > shedBefore })
		attack.close()
		// Closed by their senders, the bodies still held are let go.
		testutil.Eventually(t, "the budget to empty", func() bool {
			st := r.in.Stats().Budget
			return st.Bytes == 0 && st.Requests == 0 && st.HeldBytes == 0
		})

		st := r.in.Stats().Budget
		t.Logf("budget %d B: peak reserved %d B, peak held %d B, peak requests %d; %d bodies cut, %d refused; %d attack connections, answered 503 %d times, 408 %d times",
			budget, st.PeakBytes, st.PeakHeldBytes, st.PeakRequests, st.Shed, st.Refused, attack.dials.Load(),
			attack.count(http.StatusServiceUnavailable), attack.count(http.StatusRequestTimeout))
		if st.PeakBytes > budget || st.PeakHeldBytes > budget || st.PeakRequests > 64 {
			t.Errorf("over the budget: %+v", st)
		}
		if st.PeakHeldBytes == 0 {
			t.Errorf("no body bytes were ever held: the attack did not reach the handler")
		}
		if attack.count(http.StatusServiceUnavailable) == 0 || attack.noRetryAf.Load() > 0 {
			t.Errorf("attack answered 503 %d times, %d of them without Retry-After; want some, all with it",
				attack.count(http.StatusServiceUnavailable), attack.noRetryAf.Load())
		}
		for _, id := range claimAll(t, r.work) {
			delete(want, id)
		}
		if len(want) > 0 {
			t.Errorf("%d valid webhooks answered 2xx but not in the work set: %v", len(want), want)
		}
	})
}
