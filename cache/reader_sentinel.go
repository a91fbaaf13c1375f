package cache

import (
	"context"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// sentinelSettle is how long the Reader waits, after a sentinel announced a
// new master, for the other sentinels it hears from to name the same one
// before it follows anyway. Sentinels that see each other agree within
// milliseconds.
const sentinelSettle = time.Second

// sentinelWatch follows the master that a Sentinel group names, for a Reader
// whose client is a Sentinel failover client. When the sentinels switch to
// another master, the Reader's subscription is still on the old one, which
// receives no more changes (it is turned into a replica seconds later, or
// never when the sentinels lost sight of it while apps did not): the watch
// then makes the Reader stop serving from its tier and subscribe again,
// which its client does on the new master.
type sentinelWatch struct {
	r    *Reader
	opts *redis.FailoverOptions

	mu     sync.Mutex
	master string            // the master the Reader follows; "" until a sentinel named one
	named  map[string]string // sentinel address → the master it names now, for the sentinels heard from
	timer  *time.Timer       // pending follow of a master not every sentinel names yet
}

// watchSentinels starts one goroutine per sentinel of opts, owned by the
// Reader, each listening to that sentinel's +switch-master announcements.
func (r *Reader) watchSentinels(opts *redis.FailoverOptions) {
	w := &sentinelWatch{r: r, opts: opts, named: map[string]string{}}
	for _, addr := range opts.SentinelAddrs {
		r.wg.Add(1)
		go w.listen(addr)
	}
	r.wg.Add(1)
	go func() { defer r.wg.Done(); <-r.ctx.Done(); w.stop() }()
}

// listen keeps a subscription to one sentinel's +switch-master channel until
// the Reader closes. On every (re)connection it also asks the sentinel which
// master it names, so a switch announced while the link was down is seen.
func (w *sentinelWatch) listen(addr string) {
	defer w.r.wg.Done()
	o := w.opts
	sc := redis.NewSentinelClient(&redis.Options{
		Addr: addr, Username: o.SentinelUsername, Password: o.SentinelPassword, TLSConfig: o.TLSConfig,
		Dialer: o.Dialer, DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		DialerRetries: 1, MaxRetries: -1,
	})
	defer sc.Close()
	ctx := w.r.ctx
	backoff := readerMinReconnectBackoff
	for ctx.Err() == nil {
		ps := sc.Subscribe(ctx, "+switch-master")
		unblock := context.AfterFunc(ctx, func() { _ = ps.Close() }) // Close ends a blocked receive
		err := w.receive(ctx, addr, sc, ps)
		unblock()
		_ = ps.Close()
		w.forget(addr)
		if ctx.Err() != nil {
			return
		}
		w.r.log.Warn("prismcache reader: lost a sentinel", "sentinel", addr, "err", err)
		t := time.NewTimer(rand.N(backoff) + time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, readerMaxReconnectBackoff)
	}
}

// receive reads one subscription to a sentinel until it fails.
func (w *sentinelWatch) receive(ctx context.Context, addr string, sc *redis.SentinelClient, ps *redis.PubSub) error {
	if _, err := ps.Receive(ctx); err != nil {
		return err
	}
	hp, err := sc.GetMasterAddrByName(ctx, w.opts.MasterName).Result()
	if err != nil {
		return err
	}
	if len(hp) == 2 {
		w.report(addr, net.JoinHostPort(hp[0], hp[1]))
	}
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, w.r.opts.HealthCheckInterval)
		if err != nil {
			if !isTimeout(err) || pinged {
				return err
			}
			if err := ps.Ping(ctx); err != nil {
				return err
			}
			pinged = true
			continue
		}
		pinged = false
		if m, ok := msg.(*redis.Message); ok {
			// "<master name> <old ip> <old port> <new ip> <new port>"
			f := strings.Fields(m.Payload)
			if len(f) == 5 && f[0] == w.opts.MasterName {
				w.report(addr, net.JoinHostPort(f[3], f[4]))
			}
		}
	}
}

// report records the master a sentinel names and follows it once every
// sentinel heard from agrees, or sentinelSettle after the first named it.
func (w *sentinelWatch) report(sentinel, master string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.named[sentinel] = master
	w.decideLocked()
}

// forget drops a sentinel the Reader no longer hears from.
func (w *sentinelWatch) forget(sentinel string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.named, sentinel)
	w.decideLocked()
}

func (w *sentinelWatch) decideLocked() {
	if w.master == "" {
		for _, m := range w.named {
			w.master = m // the first master named: the one the client connects to
			return
		}
		return
	}
	next, agreed := "", true
	for _, m := range w.named {
		switch {
		case m == w.master:
			agreed = false
		case next == "":
			next = m
		case m != next:
			agreed = false
		}
	}
	switch {
	case next == "":
		if w.timer != nil {
			w.timer.Stop()
			w.timer = nil
		}
	case agreed:
		w.followLocked(next)
	case w.timer == nil:
		w.timer = time.AfterFunc(sentinelSettle, func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.timer = nil
			for _, m := range w.named {
				if m != w.master {
					w.followLocked(m)
					return
				}
			}
		})
	}
}

// followLocked makes the Reader follow master: the tier stops serving at
// once, and the subscription is closed, so that the Reader subscribes again
// through its client (whose sentinels now name the new master).
func (w *sentinelWatch) followLocked(master string) {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	old := w.master
	w.master = master
	if w.r.ctx.Err() != nil {
		return
	}
	w.r.log.Warn("prismcache reader: the sentinels switched masters; in-process tier flushed, subscribing again",
		"master", w.opts.MasterName, "from", old, "to", master)
	w.r.transition(false, flushFailover)
	w.r.psMu.Lock()
	if w.r.ps != nil {
		_ = w.r.ps.Close()
	}
	w.r.psMu.Unlock()
}

func (w *sentinelWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}
