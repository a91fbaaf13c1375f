// Package redisbatch sends the single commands that concurrent goroutines
// issue on one go-redis client as shared pipelines (auto-pipelining).
//
// The daemon answers a webhook only once its effect is in Redis, and each
// fetch ends in a few Redis writes, so under load hundreds of goroutines
// each wait on one small command at a time. Sent one by one, every command
// costs a write and a read system call in the daemon and in Redis; batched,
// a pipeline of fifty costs the same two. Batching here is natural, with no
// timer: a command goes out at once when a pipeline slot is free, and the
// commands that arrive while every slot is busy leave together as the next
// pipeline. A lone caller therefore pays one round trip, as without
// batching.
//
// Two things differ from sending commands one by one. go-redis retries a
// pipeline after a network error as a whole, so a command can run twice —
// as a single command whose answer was lost can, and here also one whose
// answer was read before the error. The daemon's writes are built for that:
// a second write or finish fails its compare-and-set or finds its dedup mark
// and reports its work done, and ids claimed by a lost claim return to the
// queue when their lease ends. And go-redis retries a pipeline on a
// retryable Redis error (LOADING, READONLY during a failover) only when its
// first command got it; a later command gets the error, which the daemon
// treats like any failed Redis call (a 503 to the webhook, a retry for a
// worker).
package redisbatch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

const (
	// inFlight is how many pipelines may be on their way at once.
	inFlight = 2
	// maxBatch caps the commands of one pipeline.
	maxBatch = 256
)

// Stats count what a Batcher did.
type Stats struct {
	// Pipelines sent, and the commands they carried.
	Pipelines, Commands int64
}

// Batcher is a go-redis hook (see Install). It is safe for concurrent use.
type Batcher struct {
	// rdb sends the batches, as ordinary pipelines.
	rdb redis.UniversalClient

	mu      sync.Mutex
	running int // pipelines on their way
	queue   []*call

	pipelines, commands atomic.Int64
}

// call is one waiting command. Its goroutine waits on wake; when it is woken
// with a batch it leads that batch: it sends the pipeline for everyone in it.
type call struct {
	ctx   context.Context
	cmd   redis.Cmder
	wake  chan struct{}
	batch []*call
}

// Install adds a Batcher to rdb's hooks and returns it. Call it once per
// client, from whoever owns the client: a second Batcher on one client
// would batch the first one's pipelines' commands again. Commands that block
// the connection (the B… list and stream reads, WAIT, pub/sub) are never
// batched.
func Install(rdb redis.UniversalClient) *Batcher {
	b := &Batcher{rdb: rdb}
	rdb.AddHook(b)
	return b
}

// Stats returns the counts so far.
func (b *Batcher) Stats() Stats {
	return Stats{Pipelines: b.pipelines.Load(), Commands: b.commands.Load()}
}

// DialHook implements redis.Hook.
func (b *Batcher) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessPipelineHook implements redis.Hook: pipelines, the batches
// included, pass through unchanged.
func (b *Batcher) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// ProcessHook implements redis.Hook: it queues a command and waits until a
// pipeline carrying it has its answer.
func (b *Batcher) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if unbatchable(cmd.Name()) {
			return next(ctx, cmd)
		}
		return b.do(ctx, cmd)
	}
}

func (b *Batcher) do(ctx context.Context, cmd redis.Cmder) error {
	if err := ctx.Err(); err != nil {
		cmd.SetErr(err)
		return err
	}
	c := &call{ctx: ctx, cmd: cmd, wake: make(chan struct{}, 1)}
	b.mu.Lock()
	if b.running < inFlight {
		b.running++
		c.batch = b.take(c)
		b.mu.Unlock()
		b.lead(c)
		return cmd.Err()
	}
	b.queue = append(b.queue, c)
	b.mu.Unlock()
	<-c.wake
	if c.batch != nil {
		b.lead(c)
	}
	return cmd.Err()
}

// take returns the next batch: first, then what is queued, up to maxBatch.
// A queued command whose caller's context ended is not sent: it gets that
// error and its caller is woken. b.mu is held.
func (b *Batcher) take(first *call) []*call {
	batch := make([]*call, 1, min(len(b.queue)+1, maxBatch))
	batch[0] = first
	i := 0
	for ; i < len(b.queue) && len(batch) < maxBatch; i++ {
		x := b.queue[i]
		if err := x.ctx.Err(); err != nil {
			x.cmd.SetErr(err)
			x.wake <- struct{}{}
			continue
		}
		batch = append(batch, x)
	}
	rest := copy(b.queue, b.queue[i:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	return batch
}

// errNotSent is the error of the commands of a batch whose sending panicked.
var errNotSent = errors.New("redisbatch: the pipeline carrying this command failed before it was sent")

// lead sends c's batch, wakes the others in it, and then hands the slot on
// (see handoff) — also when sending panics, so that no caller is left
// waiting.
func (b *Batcher) lead(c *call) {
	batch := c.batch
	c.batch = nil
	sent := false
	defer func() {
		if !sent {
			for _, x := range batch {
				x.cmd.SetErr(errNotSent)
			}
		}
		for _, x := range batch[1:] {
			x.wake <- struct{}{}
		}
		b.handoff()
	}()
	// The pipeline carries other callers' commands too, so one caller's
	// cancellation must not abort it: the client's read and write timeouts
	// bound it (with them disabled, a command can outlast its caller's
	// deadline; commands whose caller gave up before they were sent are
	// dropped, see take).
	ctx := context.WithoutCancel(c.ctx)
	pipe := b.rdb.Pipeline()
	for _, x := range batch {
		_ = pipe.Process(ctx, x.cmd) // queues it: each caller reads its own command's answer
	}
	_, _ = pipe.Exec(ctx)
	sent = true
	b.pipelines.Add(1)
	b.commands.Add(int64(len(batch)))
}

// handoff gives the slot of a finished pipeline to the first queued command
// whose caller still waits, which leads the next batch; with none, the slot
// is freed.
func (b *Batcher) handoff() {
	b.mu.Lock()
	for len(b.queue) > 0 {
		first := b.queue[0]
		n := copy(b.queue, b.queue[1:])
		b.queue[n] = nil
		b.queue = b.queue[:n]
		if err := first.ctx.Err(); err != nil {
			first.cmd.SetErr(err)
			first.wake <- struct{}{}
			continue
		}
		first.batch = b.take(first)
		b.mu.Unlock()
		first.wake <- struct{}{}
		return
	}
	b.running--
	b.mu.Unlock()
}

// unbatchable names the commands that hold the connection or change its
// state: they go out on their own.
func unbatchable(name string) bool {
	switch name {
	case "blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop",
		"xread", "xreadgroup", "wait", "waitaof", "subscribe", "psubscribe", "ssubscribe",
		"unsubscribe", "punsubscribe", "sunsubscribe", "multi", "exec", "discard", "watch", "unwatch",
		"select", "client", "hello", "auth", "monitor", "sync", "psync", "reset", "quit":
		return true
	}
	return false
}
