package refresh

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/internal/store"
)

// ErrLeaseLost: the claim expired and the id was claimed again (or
// released); the holder must not act on it any more.
var ErrLeaseLost = errors.New("lease lost")

// DefaultLease is how long a claim lasts without being renewed. Claims are
// renewed every third of it while their run lasts, so a live worker keeps
// its claim; a dead one's claims return to the queue within it.
const DefaultLease = 10 * time.Second

// WorkSet is the durable set of instance ids that need a fetch, shared by
// every replica through Redis. It is split into shards, each a sorted set of
// ids scored by when they are due plus leases on the ids being worked on,
// under a hash tag of its own, so that on a Redis Cluster the loss of one
// master stops only its shards. An id always lives in the same shard. An id
// is never claimed by two workers at once; an id added while claimed is
// marked dirty and becomes due once more when the claim ends, so any burst
// collapses into at most one more run; the ids of a worker that died become
// due again when their lease expires. Failed runs are counted per id until
// the id succeeds. It is safe for concurrent use.
type WorkSet struct {
	rdb       redis.UniversalClient
	shards    []shardKeys
	legacy    legacyKeys
	layoutKey string
	lease     time.Duration
	now       func() time.Time
	wake      string
	results   string
	failAt    int
}

// WorkSetOptions configure a WorkSet; the zero value means the defaults.
type WorkSetOptions struct {
	// Lease is how long a claim holds without Extend; DefaultLease if zero.
	Lease time.Duration
	// Shards is the shard count; DefaultShards if zero. Every replica on one
	// Redis must use the same (RecordedShards).
	Shards int
	// FailedAfter is how many failed runs make an id count as failed in
	// Stats; DefaultFailedAfter if zero.
	FailedAfter int
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// NewWorkSet returns the work set under keys.
func NewWorkSet(rdb redis.UniversalClient, keys store.Keys, opts WorkSetOptions) *WorkSet {
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Shards <= 0 {
		opts.Shards = DefaultShards
	}
	if opts.FailedAfter <= 0 {
		opts.FailedAfter = DefaultFailedAfter
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	w := &WorkSet{
		rdb: rdb, legacy: newLegacyKeys(keys.Prefix()), layoutKey: keys.WorkShards(), lease: opts.Lease, now: opts.Now,
		wake: keys.WorkWake(), results: keys.WorkResults(), failAt: opts.FailedAfter,
	}
	for i := range opts.Shards {
		w.shards = append(w.shards, newShardKeys(keys.Prefix(), i))
	}
	return w
}

// Lease returns how long a claim lasts.
func (w *WorkSet) Lease() time.Duration { return w.lease }

// Shards returns the shard count.
func (w *WorkSet) Shards() int { return len(w.shards) }

// WakeChannel is the channel on which new due work is announced.
func (w *WorkSet) WakeChannel() string { return w.wake }

func (w *WorkSet) shard(member string) shardKeys { return w.shards[shardOf(member, len(w.shards))] }

func ms(t time.Time) int64 { return t.UnixMilli() }

// Add makes ids due at due (now when zero). An id already due keeps the
// earlier of its two times; an id being worked on is marked to run once more
// after the current run.
func (w *WorkSet) Add(ctx context.Context, due time.Time, ids ...string) error {
	return w.add(ctx, due, false, ids)
}

// AddIfRunning marks, among ids, those being worked on to run once more; it
// queues nothing that is not already claimed. An event whose change a fetch
// in flight may have missed uses it.
func (w *WorkSet) AddIfRunning(ctx context.Context, ids ...string) error {
	// Most ids are not being worked on: a plain look at the leases spares
	// them the script. An id claimed after the look is fetched after it,
	// and so after the change that the caller's event announces: it needs
	// no second run.
	running := ids[:0:0]
	for _, id := range ids {
		err := w.rdb.ZScore(ctx, w.shard(id).leases, id).Err()
		switch {
		case errors.Is(err, redis.Nil):
			continue
		case err != nil:
			return fmt.Errorf("work set add: %w", err)
		}
		running = append(running, id)
	}
	return w.add(ctx, time.Time{}, true, running)
}

func (w *WorkSet) add(ctx context.Context, due time.Time, onlyRunning bool, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if due.IsZero() {
		due = w.now()
	}
	flag := "0"
	if onlyRunning {
		flag = "1"
	}
	byShard := map[int][]any{}
	for _, id := range ids {
		s := shardOf(id, len(w.shards))
		if byShard[s] == nil {
			byShard[s] = []any{ms(due), flag, w.wake, 0}
		}
		byShard[s] = append(byShard[s], id)
	}
	calls := make([]scriptCall, 0, len(byShard))
	for s, args := range byShard {
		k := w.shards[s]
		calls = append(calls, scriptCall{keys: []string{k.due, k.leases, k.dirty, k.asked}, args: args})
	}
	var errs []error
	for _, cmd := range evalEach(ctx, w.rdb, addScript, calls) {
		if err := cmd.Err(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("work set add: %w", errors.Join(errs...))
	}
	return nil
}

// AddOnce makes member due now for a webhook body with digest sum: in the
// same step it marks the body applied for window, and it queues nothing and
// reports dup when the body was applied already.
func (w *WorkSet) AddOnce(ctx context.Context, sum string, window time.Duration, member string) (dup bool, err error) {
	k := w.shard(member)
	n, err := addScript.Run(ctx, w.rdb, []string{k.due, k.leases, k.dirty, k.asked, k.dedup(sum)},
		ms(w.now()), "0", w.wake, window.Milliseconds(), member).Int()
	if err != nil {
		return false, fmt.Errorf("work set add: %w", err)
	}
	return n < 0, nil
}

// Claim is one id a worker holds.
type Claim struct {
	ID    string
	Token string
	// Attempts counts the failed runs of this id since its last success.
	Attempts int
	// Since is, for a job, when it was last asked for (the latest request
	// it serves); for an instance, when it became due.
	Since time.Time
	// ClaimedAt is when it was claimed, by Redis's clock: one clock for all
	// replicas, so a caller can tell runs that began after its request.
	ClaimedAt time.Time
}

// Now returns Redis's clock, the one ClaimedAt is read from.
func (w *WorkSet) Now(ctx context.Context) (time.Time, error) {
	t, err := w.rdb.Time(ctx).Result()
	if err != nil {
		return time.Time{}, fmt.Errorf("work set clock: %w", err)
	}
	return t, nil
}

// Claim takes up to max due ids, each leased to token. Leases that expired
// (their worker died) are returned to the due set first.
func (w *WorkSet) Claim(ctx context.Context, max int, token string) ([]Claim, error) {
	claims, _, err := w.ClaimNext(ctx, max, token)
	return claims, err
}

// ClaimNext is Claim that also tells when the earliest id left queued is
// due (zero when none is), so that a dispatcher knows how long it may wait
// without asking again. It looks at every shard in one round trip and
// claims from those with due work in a second, spreading max across them.
// Shards that cannot be reached are skipped (their error is returned with
// whatever the others gave).
func (w *WorkSet) ClaimNext(ctx context.Context, max int, token string) (claims []Claim, nextDue time.Time, err error) {
	if max <= 0 {
		return nil, time.Time{}, nil
	}
	now := ms(w.now())
	peeks := make([]scriptCall, len(w.shards))
	for i, k := range w.shards {
		peeks[i] = scriptCall{keys: []string{k.due, k.leases}, args: []any{now}}
	}
	var errs []error
	ready := make([]int, len(w.shards)) // due ids (and expired leases) per shard
	for i, cmd := range evalEach(ctx, w.rdb, peekScript, peeks) {
		vals, err := cmd.Slice()
		if err != nil || len(vals) != 3 {
			errs = append(errs, fmt.Errorf("shard %d: %w", i, orReply(err, vals)))
			continue
		}
		due, _ := vals[0].(int64)
		expired, _ := vals[1].(int64)
		ready[i] = int(due + expired)
		if s, _ := vals[2].(string); s != "" {
			nextDue = earliest(nextDue, scoreTime(s))
		}
	}
	// Spread max over the shards with due work, round-robin from a point
	// that moves with the clock, so no shard waits behind another.
	want := make([]int, len(w.shards))
	left, start := max, int(now)%len(w.shards)
	for left > 0 {
		gave := false
		for j := range w.shards {
			i := (start + j) % len(w.shards)
			if left > 0 && want[i] < ready[i] {
				want[i]++
				left--
				gave = true
			}
		}
		if !gave {
			break
		}
	}
	var calls []scriptCall
	var callShards []int
	for i, n := range want {
		if n == 0 {
			continue
		}
		k := w.shards[i]
		calls = append(calls, scriptCall{
			keys: []string{k.due, k.leases, k.owners, k.dirty, k.failures, k.asked},
			args: []any{now, w.lease.Milliseconds(), n, token},
		})
		callShards = append(callShards, i)
	}
	if len(calls) > 0 {
		for j, cmd := range evalEach(ctx, w.rdb, claimScript, calls) {
			got, nd, err := parseClaim(cmd, token)
			if err != nil {
				errs = append(errs, fmt.Errorf("shard %d: %w", callShards[j], err))
				continue
			}
			claims = append(claims, got...)
			nextDue = earliest(nextDue, nd)
		}
	}
	if len(errs) > 0 {
		err = fmt.Errorf("work set claim: %w", errors.Join(errs...))
	}
	return claims, nextDue, err
}

func parseClaim(cmd *redis.Cmd, token string) ([]Claim, time.Time, error) {
	res, err := cmd.StringSlice()
	if err != nil {
		return nil, time.Time{}, err
	}
	if len(res) < 2 || (len(res)-2)%3 != 0 {
		return nil, time.Time{}, fmt.Errorf("claim reply of %d elements", len(res))
	}
	at, _ := strconv.ParseInt(res[0], 10, 64)
	var nextDue time.Time
	if res[1] != "" {
		nextDue = scoreTime(res[1])
	}
	claims := make([]Claim, 0, (len(res)-2)/3)
	for i := 2; i+2 < len(res); i += 3 {
		n, _ := strconv.ParseFloat(res[i+1], 64)
		claims = append(claims, Claim{ID: res[i], Token: token, Attempts: int(n), Since: scoreTime(res[i+2]), ClaimedAt: time.UnixMilli(at)})
	}
	return claims, nextDue, nil
}

// scoreTime reads a sorted-set score of milliseconds.
func scoreTime(s string) time.Time {
	f, _ := strconv.ParseFloat(s, 64)
	return time.UnixMilli(int64(f))
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func orReply(err error, vals []any) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("unexpected reply %v", vals)
}

func (w *WorkSet) finish(ctx context.Context, c Claim, mode string, retryAt time.Time) (bool, error) {
	k := w.shard(c.ID)
	n, err := finishScript.Run(ctx, w.rdb, []string{k.due, k.leases, k.owners, k.dirty, k.failures},
		c.ID, c.Token, mode, ms(w.now()), ms(retryAt)).Int()
	if err != nil {
		return false, fmt.Errorf("work set %s %s: %w", mode, c.ID, err)
	}
	if n < 0 {
		return false, ErrLeaseLost
	}
	return n == 1, nil
}

// Done ends a successful run. rerun reports whether the id was added again
// during the run and is due once more.
func (w *WorkSet) Done(ctx context.Context, c Claim) (rerun bool, err error) {
	return w.finish(ctx, c, "done", time.Time{})
}

// Retry ends a failed run: the id's failures are counted and it is due
// again at at — or now, if it was added again during the run.
func (w *WorkSet) Retry(ctx context.Context, c Claim, at time.Time) error {
	_, err := w.finish(ctx, c, "retry", at)
	return err
}

// Drop ends a run whose work became moot (the instance was deleted): the
// id's failures are forgotten and it is due again only if it was added
// during the run.
func (w *WorkSet) Drop(ctx context.Context, c Claim) error {
	_, err := w.finish(ctx, c, "drop", time.Time{})
	return err
}

// Release hands back a claim that was not run (the worker is shutting
// down): the id is due again now.
func (w *WorkSet) Release(ctx context.Context, c Claim) error {
	_, err := w.finish(ctx, c, "release", time.Time{})
	return err
}

// Extend renews the lease of a run; ErrLeaseLost when it is no longer held.
func (w *WorkSet) Extend(ctx context.Context, c Claim) error {
	k := w.shard(c.ID)
	n, err := extendScript.Run(ctx, w.rdb, []string{k.leases, k.owners}, c.ID, c.Token, ms(w.now().Add(w.lease))).Int()
	if err != nil {
		return fmt.Errorf("work set extend %s: %w", c.ID, err)
	}
	if n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// pullBatch is how many failing ids one call of the pull script looks at.
const pullBatch = 2000

// PullIn brings forward to at every failed id waiting out its backoff, in
// every shard: once the API answers again, the work that failed during the
// outage is tried again now rather than up to a whole backoff later. It
// returns how many ids it brought forward.
func (w *WorkSet) PullIn(ctx context.Context, at time.Time) (int, error) {
	pulled := 0
	var errs []error
	for i, k := range w.shards {
		for offset := 0; ; offset += pullBatch {
			res, err := pullScript.Run(ctx, w.rdb, []string{k.due, k.failures}, ms(at), w.wake, offset, pullBatch).Int64Slice()
			if err != nil || len(res) != 2 {
				errs = append(errs, fmt.Errorf("shard %d: %w", i, orReply(err, nil)))
				break
			}
			pulled += int(res[0])
			if res[1] < pullBatch {
				break
			}
		}
	}
	if len(errs) > 0 {
		return pulled, fmt.Errorf("work set pull in: %w", errors.Join(errs...))
	}
	return pulled, nil
}

// Stats is a snapshot of the work set.
type Stats struct {
	// Queued ids, due now or later; Due of them due now; Leased ids being
	// worked on.
	Queued, Due, Leased int64
	// OldestDue is when the earliest queued id became due (zero when none).
	OldestDue time.Time
	// Failing ids have failed at least once since their last success;
	// Failed of them at least FailedAfter times (their entries say
	// fetch_failed).
	Failing, Failed int64
	// Unreachable lists the shards that could not be read.
	Unreachable []int
}

// Stats reads the work set's size, every shard in one round trip. A shard
// that cannot be read is listed in Unreachable; the error is returned only
// when none could be.
func (w *WorkSet) Stats(ctx context.Context) (Stats, error) {
	now := strconv.FormatInt(ms(w.now()), 10)
	failAt := strconv.Itoa(w.failAt)
	type shardCmds struct {
		q, d, l, f, fp *redis.IntCmd
		o              *redis.ZSliceCmd
	}
	pipe := w.rdb.Pipeline()
	cmds := make([]shardCmds, len(w.shards))
	for i, k := range w.shards {
		cmds[i] = shardCmds{
			q: pipe.ZCard(ctx, k.due), d: pipe.ZCount(ctx, k.due, "-inf", now), l: pipe.ZCard(ctx, k.leases),
			o: pipe.ZRangeWithScores(ctx, k.due, 0, 0),
			f: pipe.ZCard(ctx, k.failures), fp: pipe.ZCount(ctx, k.failures, failAt, "+inf"),
		}
	}
	_, _ = pipe.Exec(ctx)
	var s Stats
	var lastErr error
	for i, c := range cmds {
		if err := firstErr(c.q, c.d, c.l, c.o, c.f, c.fp); err != nil {
			s.Unreachable = append(s.Unreachable, i)
			lastErr = err
			continue
		}
		s.Queued += c.q.Val()
		s.Due += c.d.Val()
		s.Leased += c.l.Val()
		s.Failing += c.f.Val()
		s.Failed += c.fp.Val()
		if zs := c.o.Val(); len(zs) > 0 {
			s.OldestDue = earliest(s.OldestDue, time.UnixMilli(int64(zs[0].Score)))
		}
	}
	if len(s.Unreachable) == len(w.shards) {
		return Stats{}, fmt.Errorf("work set stats: %w", lastErr)
	}
	return s, nil
}

func firstErr(cmds ...redis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	return nil
}
