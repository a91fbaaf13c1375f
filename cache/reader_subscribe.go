package cache

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
)

// subscribe keeps the Reader subscribed to the events channel until Close.
// Each subscription is a fresh PubSub: when one fails (a read error, or a
// health-check ping left unanswered) it is closed, the tier is flushed, and a
// new one is opened after a short backoff. The tier serves hits only between
// the confirmation of a subscription and its loss, and is flushed again on
// each confirmation, because messages sent while no subscription was live
// are lost.
func (r *Reader) subscribe() {
	defer r.wg.Done()
	backoff := readerMinReconnectBackoff
	for r.ctx.Err() == nil {
		ps := r.rdb.Subscribe(r.ctx, r.keys.Events())
		r.psMu.Lock()
		if r.ctx.Err() != nil {
			r.psMu.Unlock()
			_ = ps.Close()
			return
		}
		r.ps = ps
		r.psMu.Unlock()

		confirmed, err := r.listen(ps)

		r.psMu.Lock()
		r.ps = nil
		r.psMu.Unlock()
		_ = ps.Close()
		if r.ctx.Err() != nil {
			return // closing: Close empties the tier
		}
		if r.transition(false, flushDisconnected) {
			r.log.Warn("prismcache reader: subscription lost; in-process tier flushed", "channel", r.keys.Events(), "err", err)
		}
		r.stats.redisErrors[opSubscribe].Add(1)
		r.reloadTopology()
		if confirmed {
			backoff = readerMinReconnectBackoff
		}
		// Full jitter, so that many readers do not reconnect in step.
		t := time.NewTimer(rand.N(backoff) + time.Millisecond)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, readerMaxReconnectBackoff)
	}
}

// listen reads the subscription until it fails, handling confirmations,
// messages and pongs, and pinging it when it stays silent. It reports
// whether the subscription was ever confirmed, and why it ended.
func (r *Reader) listen(ps *redis.PubSub) (confirmed bool, err error) {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(r.ctx, r.opts.HealthCheckInterval)
		if err != nil {
			if !isTimeout(err) || pinged {
				return confirmed, err
			}
			// Silent for an interval: ask. The answer (or its absence
			// within another interval) tells whether the link still works.
			if err := ps.Ping(r.ctx); err != nil {
				return confirmed, err
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == r.keys.Events() {
				confirmed = true
				if r.transition(true, flushReconnected) {
					r.log.Info("prismcache reader: subscribed; in-process tier serving", "channel", m.Channel)
				}
			}
		case *redis.Message:
			r.handle(m.Payload)
		case *redis.Pong:
		}
	}
}

// handle applies one message of the events channel.
func (r *Reader) handle(payload string) {
	var m Message
	if err := json.Unmarshal([]byte(payload), &m); err != nil || m.ID == "" {
		// Some id changed and we cannot tell which: drop them all.
		r.log.Warn("prismcache reader: unreadable message on the events channel; in-process tier flushed", "payload", truncate(payload, 200), "err", err)
		r.flushAll(flushBadMessage)
		return
	}
	r.invalidate(m.ID, m.Change)
	r.watches.deliver(m) // after the tier dropped the id
}

// reloadTopology asks a Redis Cluster client to reload its slot map after a
// failure. When a master dies, go-redis keeps dialling it for the slots it
// served until its periodic reload, up to a minute later, although a
// replica took over within seconds; the Reader would stay unsubscribed (and
// its reads would fail) all that time. The reload runs in the background,
// one at a time, so calling this on every failure is cheap.
func (r *Reader) reloadTopology() {
	if c, ok := r.rdb.(*redis.ClusterClient); ok {
		c.ReloadState(r.ctx)
	}
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
