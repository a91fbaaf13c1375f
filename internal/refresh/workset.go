package refresh

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/cache"
)

// ErrLeaseLost: the claim expired and the id was claimed again (or
// released); the holder must not act on it any more.
var ErrLeaseLost = errors.New("lease lost")

// DefaultLease is how long a claim lasts without being extended.
const DefaultLease = 60 * time.Second

// WorkSet is the durable set of instance ids that need a fetch, shared by
// every replica through Redis: a sorted set of ids scored by when they are
// due, and leases on the ids being worked on. An id is never claimed by two
// workers at once; an id added while claimed is marked dirty and becomes due
// once more when the claim ends, so any burst collapses into at most one
// more run; the ids of a worker that died become due again when their lease
// expires. It is safe for concurrent use.
type WorkSet struct {
	rdb   redis.UniversalClient
	keys  cache.Keys
	lease time.Duration
	now   func() time.Time
	// work is the keys every work-set script takes, and wake the channel
	// that announces new work, named once.
	work []string
	wake string
}

// WorkSetOptions configure a WorkSet; the zero value means the defaults.
type WorkSetOptions struct {
	// Lease is how long a claim holds without Extend; DefaultLease if zero.
	Lease time.Duration
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// NewWorkSet returns the work set under keys.
func NewWorkSet(rdb redis.UniversalClient, keys cache.Keys, opts WorkSetOptions) *WorkSet {
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	work := []string{keys.WorkDue(), keys.WorkLeases(), keys.WorkOwners(), keys.WorkDirty(), keys.WorkAttempts(), keys.WorkAsked()}
	return &WorkSet{rdb: rdb, keys: keys, lease: opts.Lease, now: opts.Now, work: work, wake: keys.WorkWake()}
}

// Lease returns how long a claim lasts.
func (w *WorkSet) Lease() time.Duration { return w.lease }

// workKeys returns the keys every work-set script takes; its capacity is
// its length, so that an append copies it.
func (w *WorkSet) workKeys() []string { return slices.Clip(w.work) }

func ms(t time.Time) int64 { return t.UnixMilli() }

// addScript: KEYS due, leases, owners, dirty, attempts, asked, and
// optionally the dedup mark of the webhook body that asks for the work. ARGV
// due ms, only-if-claimed flag, wake channel, dedup mark TTL ms, ids…
// Returns how many ids became due, or -1 when the dedup mark exists (the
// body was applied already; nothing is queued). For jobs (ids starting with
// "@") it keeps the latest time they were asked for.
var addScript = redis.NewScript(`
if #KEYS > 6 and redis.call('EXISTS', KEYS[7]) == 1 then return -1 end
local added = 0
local due = tonumber(ARGV[1])
for i = 5, #ARGV do
  local id = ARGV[i]
  if string.sub(id, 1, 1) == '@' and ARGV[2] == '0' then
    local asked = tonumber(redis.call('HGET', KEYS[6], id) or '0')
    if due > asked then redis.call('HSET', KEYS[6], id, due) end
  end
  if redis.call('ZSCORE', KEYS[2], id) then
    redis.call('SADD', KEYS[4], id)
  elseif ARGV[2] == '0' then
    local cur = redis.call('ZSCORE', KEYS[1], id)
    if (not cur) or tonumber(cur) > due then
      redis.call('ZADD', KEYS[1], due, id)
      added = added + 1
    end
  end
end
if #KEYS > 6 then redis.call('SET', KEYS[7], '1', 'PX', ARGV[4]) end
if added > 0 then redis.call('PUBLISH', ARGV[3], '1') end
return added
`)

// Add makes ids due at due (now when zero). An id already due keeps the
// earlier of its two times; an id being worked on is marked to run once more
// after the current run.
func (w *WorkSet) Add(ctx context.Context, due time.Time, ids ...string) error {
	_, err := w.add(ctx, due, false, "", 0, ids)
	return err
}

// AddOnce is Add, now, for the work a webhook body with digest sum asks
// for: in the same step it marks the body applied for window, and it queues
// nothing and reports dup when the body was applied already.
func (w *WorkSet) AddOnce(ctx context.Context, sum string, window time.Duration, ids ...string) (dup bool, err error) {
	return w.add(ctx, time.Time{}, false, sum, window, ids)
}

// AddIfRunning marks, among ids, those being worked on to run once more; it
// queues nothing that is not already claimed. An event whose change a fetch
// in flight may have missed uses it.
func (w *WorkSet) AddIfRunning(ctx context.Context, ids ...string) error {
	_, err := w.add(ctx, time.Time{}, true, "", 0, ids)
	return err
}

func (w *WorkSet) add(ctx context.Context, due time.Time, onlyRunning bool, sum string, window time.Duration, ids []string) (bool, error) {
	if len(ids) == 0 {
		return false, nil
	}
	if due.IsZero() {
		due = w.now()
	}
	flag := "0"
	if onlyRunning {
		flag = "1"
	}
	args := make([]any, 0, 4+len(ids))
	args = append(args, ms(due), flag, w.wake, window.Milliseconds())
	for _, id := range ids {
		args = append(args, id)
	}
	keys := w.workKeys()
	if sum != "" {
		keys = append(keys, w.keys.WorkDedup(sum))
	}
	n, err := addScript.Run(ctx, w.rdb, keys, args...).Int()
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

// claimScript: KEYS due, leases, owners, dirty, attempts, asked. ARGV now ms, lease
// ms, max, token. First returns expired leases to due, then claims up to max
// due ids. Returns Redis's clock (ms), the due time (ms) of the earliest id
// left queued or "" when none is, then id, attempts, due-score triples.
var claimScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('SREM', KEYS[4], id)
  local cur = redis.call('ZSCORE', KEYS[1], id)
  if (not cur) or tonumber(cur) > now then redis.call('ZADD', KEYS[1], now, id) end
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local t = redis.call('TIME')
local out = {tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)), ''}
for _, id in ipairs(ids) do
  local since = redis.call('HGET', KEYS[6], id) or redis.call('ZSCORE', KEYS[1], id)
  redis.call('HDEL', KEYS[6], id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
  redis.call('HSET', KEYS[3], id, ARGV[4])
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[5], id) or '0'
  out[#out + 1] = since
end
local nd = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
out[2] = nd[2] or ''
return out
`)

// Claim takes up to max due ids, each leased to token. Leases that expired
// (their worker died) are returned to the due set first.
func (w *WorkSet) Claim(ctx context.Context, max int, token string) ([]Claim, error) {
	claims, _, err := w.ClaimNext(ctx, max, token)
	return claims, err
}

// ClaimNext is Claim that also tells, in the same round trip, when the
// earliest id left queued is due (zero when none is), so that a dispatcher
// knows how long it may wait without asking again.
func (w *WorkSet) ClaimNext(ctx context.Context, max int, token string) (claims []Claim, nextDue time.Time, err error) {
	if max <= 0 {
		return nil, time.Time{}, nil
	}
	res, err := claimScript.Run(ctx, w.rdb, w.workKeys(), ms(w.now()), w.lease.Milliseconds(), max, token).StringSlice()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("work set claim: %w", err)
	}
	if len(res) < 2 {
		return nil, time.Time{}, fmt.Errorf("work set claim: reply of %d elements", len(res))
	}
	at, _ := strconv.ParseInt(res[0], 10, 64)
	if res[1] != "" {
		nd, _ := strconv.ParseFloat(res[1], 64)
		nextDue = time.UnixMilli(int64(nd))
	}
	claims = make([]Claim, 0, (len(res)-2)/3)
	for i := 2; i+2 < len(res); i += 3 {
		n, _ := strconv.Atoi(res[i+1])
		since, _ := strconv.ParseFloat(res[i+2], 64)
		claims = append(claims, Claim{ID: res[i], Token: token, Attempts: n, Since: time.UnixMilli(int64(since)), ClaimedAt: time.UnixMilli(at)})
	}
	return claims, nextDue, nil
}

// finishScript: KEYS due, leases, owners, dirty, attempts. ARGV id, token,
// mode, now ms, retry-due ms. Modes:
//
//	done:    success; attempts reset; due again now if marked dirty.
//	retry:   failure; attempts+1; due at retry-due.
//	giveup:  failure past the limit; attempts reset; due again now if dirty.
//	release: not run (shutdown); due again now, attempts unchanged.
//
// Returns -1 when token no longer holds the id, else 1 when the id is due
// again, 0 when it is not.
var finishScript = redis.NewScript(`
local id = ARGV[1]
if redis.call('HGET', KEYS[3], id) ~= ARGV[2] then return -1 end
redis.call('ZREM', KEYS[2], id)
redis.call('HDEL', KEYS[3], id)
local dirty = redis.call('SREM', KEYS[4], id)
local mode = ARGV[3]
local due = nil
if mode == 'done' or mode == 'giveup' then
  redis.call('HDEL', KEYS[5], id)
  if dirty == 1 then due = ARGV[4] end
elseif mode == 'retry' then
  redis.call('HINCRBY', KEYS[5], id, 1)
  due = ARGV[5]
  if dirty == 1 and tonumber(ARGV[4]) > tonumber(due) then due = ARGV[4] end
else
  due = ARGV[4]
end
if due then
  redis.call('ZADD', KEYS[1], due, id)
  return 1
end
return 0
`)

func (w *WorkSet) finish(ctx context.Context, c Claim, mode string, retryAt time.Time) (bool, error) {
	n, err := finishScript.Run(ctx, w.rdb, w.workKeys(), c.ID, c.Token, mode, ms(w.now()), ms(retryAt)).Int()
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

// Retry ends a failed run; the id is due again at at.
func (w *WorkSet) Retry(ctx context.Context, c Claim, at time.Time) error {
	_, err := w.finish(ctx, c, "retry", at)
	return err
}

// GiveUp ends a run that failed for the last time; the id is due again only
// if it was added during the run.
func (w *WorkSet) GiveUp(ctx context.Context, c Claim) error {
	_, err := w.finish(ctx, c, "giveup", time.Time{})
	return err
}

// Release hands back a claim that was not run (the worker is shutting
// down): the id is due again now.
func (w *WorkSet) Release(ctx context.Context, c Claim) error {
	_, err := w.finish(ctx, c, "release", time.Time{})
	return err
}

var extendScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
`)

// Extend renews the lease of a long run.
func (w *WorkSet) Extend(ctx context.Context, c Claim) error {
	n, err := extendScript.Run(ctx, w.rdb, []string{w.keys.WorkLeases(), w.keys.WorkOwners()},
		c.ID, c.Token, ms(w.now().Add(w.lease))).Int()
	if err != nil {
		return fmt.Errorf("work set extend %s: %w", c.ID, err)
	}
	if n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// Stats is a snapshot of the work set.
type Stats struct {
	// Queued ids, due now or later; Due of them due now; Leased ids being
	// worked on.
	Queued, Due, Leased int64
	// OldestDue is when the earliest queued id became due (zero when none).
	OldestDue time.Time
}

// Stats reads the work set's size in one round trip.
func (w *WorkSet) Stats(ctx context.Context) (Stats, error) {
	now := w.now()
	pipe := w.rdb.Pipeline()
	q := pipe.ZCard(ctx, w.keys.WorkDue())
	d := pipe.ZCount(ctx, w.keys.WorkDue(), "-inf", strconv.FormatInt(ms(now), 10))
	l := pipe.ZCard(ctx, w.keys.WorkLeases())
	o := pipe.ZRangeWithScores(ctx, w.keys.WorkDue(), 0, 0)
	if _, err := pipe.Exec(ctx); err != nil {
		return Stats{}, fmt.Errorf("work set stats: %w", err)
	}
	s := Stats{Queued: q.Val(), Due: d.Val(), Leased: l.Val()}
	if zs := o.Val(); len(zs) > 0 {
		s.OldestDue = time.UnixMilli(int64(zs[0].Score))
	}
	return s, nil
}
