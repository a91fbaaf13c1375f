package cache

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Errors a Store's writes return; callers branch on them with errors.Is.
var (
	// ErrConflict: the entry's rev changed between the read the mutation was
	// decided on and the write; read again and decide again.
	ErrConflict = errors.New("entry changed since it was read")
	// ErrTombstoned: the instance was deleted; nothing may bring it back.
	ErrTombstoned = errors.New("instance is deleted")
)

// DefaultTombstoneTTL is how long a deleted instance's tombstone is kept when
// StoreOptions leaves it zero.
const DefaultTombstoneTTL = 24 * time.Hour

// Change names what a write did, as published on the events channel.
type Change string

// The changes published on the events channel.
const (
	ChangeRefreshed Change = "refreshed"
	ChangeStale     Change = "stale"
	ChangeEnabled   Change = "enabled"
	ChangeDeleted   Change = "deleted"
)

// Message is one message on the events channel.
type Message struct {
	ID     string `json:"id"`
	Change Change `json:"change"`
	// DeployedVersion is the entry's deployed_version after the write;
	// absent on a delete, and while it is 0.
	DeployedVersion int `json:"deployed_version,omitempty"`
	// Rev must stay the last field: the write script appends it.
	Rev int64 `json:"rev"`
}

// State is what the daemon knows of one instance before it decides a change:
// its entry, whether the hash exists, and whether it was deleted.
type State struct {
	Entry      Entry
	Exists     bool
	Tombstoned bool
	// DocOmitted: the entry was read without its document (see
	// UpdateOnce.WithoutDoc); Entry.Doc, when the entry has a document, holds
	// only its ID and LastDeployedAt.
	DocOmitted bool
}

// Mutation is a decided change to one entry. With Delete set, the entry and
// its index rows go and a tombstone stays; otherwise Entry replaces the
// stored fields. Kind is what the events channel announces.
type Mutation struct {
	Kind   Change
	Entry  Entry
	Delete bool
	// KeepDoc says the mutation leaves the stored document as it is (only
	// the flags change), so the write need not carry it.
	KeepDoc bool
}

// StoreOptions configure a Store. The zero value means the defaults.
type StoreOptions struct {
	// Prefix of every key; DefaultPrefix when empty.
	Prefix string
	// TombstoneTTL is how long a delete's tombstone lives; DefaultTombstoneTTL
	// when zero.
	TombstoneTTL time.Duration
}

// Store writes the Redis contract. Every write is a compare-and-set on the
// entry's rev, done by one script in the instance's slot, that also refuses
// to write over a tombstone and publishes the change. Store is safe for
// concurrent use.
type Store struct {
	rdb       redis.UniversalClient
	keys      Keys
	tombstone time.Duration
}

// NewStore returns a Store writing through rdb.
func NewStore(rdb redis.UniversalClient, opts StoreOptions) *Store {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.TombstoneTTL <= 0 {
		opts.TombstoneTTL = DefaultTombstoneTTL
	}
	return &Store{rdb: rdb, keys: NewKeys(opts.Prefix), tombstone: opts.TombstoneTTL}
}

// Keys returns the key names the store writes.
func (s *Store) Keys() Keys { return s.keys }

// Client returns the Redis client the store writes through.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// Load reads one instance's entry and tombstone in one round trip.
func (s *Store) Load(ctx context.Context, id string) (State, error) {
	st, _, err := s.load(ctx, id, "", true)
	return st, err
}

// loadScript reads an entry, whether it is tombstoned and, optionally,
// whether a webhook body's dedup mark exists, as one command: one round trip
// that an auto-pipelining client can batch with other callers' commands.
//
// KEYS[1] entry hash, KEYS[2] tombstone, KEYS[3] (optional) dedup mark.
// ARGV[1] "all", or "meta" followed by the fields to read.
//
// Returns {1} when the mark exists; otherwise {0, tombstoned, fields} with
// fields the flat HGETALL reply ("all"), or {0, tombstoned, doc length,
// values} with the HMGET reply of the named fields ("meta").
var loadScript = redis.NewScript(`
if #KEYS > 2 and redis.call('EXISTS', KEYS[3]) == 1 then return {1} end
local tomb = redis.call('EXISTS', KEYS[2])
if ARGV[1] == 'all' then
  return {0, tomb, redis.call('HGETALL', KEYS[1])}
end
return {0, tomb, redis.call('HSTRLEN', KEYS[1], 'doc'), redis.call('HMGET', KEYS[1], unpack(ARGV, 2))}
`)

// metaFields are the fields of an entry other than its document, in the
// order a "meta" load asks for them.
var metaFields = []any{"meta", FieldStale, FieldStaleSince, FieldStaleReason, FieldEnabled, FieldDeployedVersion,
	FieldLastDeployedAt, FieldFetchedAt, FieldRev, FieldLastError, FieldPriorStaleReason, fieldUpdatedEventAt, fieldEnabledEventAt}

// load reads an entry and its tombstone, and with a digest the dedup mark
// of that webhook body, in one round trip; when the mark exists the state is
// not decoded. Without withDoc it leaves the document in Redis: the state
// then has DocOmitted set and a Doc that holds only its ID and
// LastDeployedAt (see UpdateOnce.WithoutDoc).
func (s *Store) load(ctx context.Context, id, sum string, withDoc bool) (State, bool, error) {
	keys := []string{s.keys.Instance(id), s.keys.Tombstone(id)}
	if sum != "" {
		keys = append(keys, s.keys.InstanceDedup(id, sum))
	}
	args := metaFields
	if withDoc {
		args = []any{"all"}
	}
	res, err := loadScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return State{}, false, fmt.Errorf("load %s: %w", id, err)
	}
	if len(res) > 0 && res[0] == int64(1) {
		return State{}, true, nil
	}
	st, err := parseLoad(id, res, withDoc)
	if err != nil {
		return State{}, false, fmt.Errorf("load %s: %w", id, err)
	}
	return st, false, nil
}

// parseLoad decodes loadScript's reply.
func parseLoad(id string, res []any, withDoc bool) (State, error) {
	want := 3
	if !withDoc {
		want = 4
	}
	if len(res) != want {
		return State{}, fmt.Errorf("unexpected script reply of %d elements", len(res))
	}
	tomb, _ := res[1].(int64)
	h := make(map[string]string, 12)
	docLen := int64(0)
	if withDoc {
		flat, _ := res[2].([]any)
		for i := 0; i+1 < len(flat); i += 2 {
			k, _ := flat[i].(string)
			v, _ := flat[i+1].(string)
			h[k] = v
		}
	} else {
		docLen, _ = res[2].(int64)
		vals, _ := res[3].([]any)
		if len(vals) != len(metaFields)-1 {
			return State{}, fmt.Errorf("unexpected script reply: %d fields", len(vals))
		}
		for i, v := range vals {
			if v, ok := v.(string); ok {
				h[metaFields[i+1].(string)] = v
			}
		}
	}
	e, err := ParseEntry(h)
	if err != nil {
		return State{}, err
	}
	st := State{Entry: e, Exists: len(h) > 0 || docLen > 0, Tombstoned: tomb > 0}
	if !withDoc {
		st.DocOmitted = true
		if docLen > 0 {
			st.Entry.Doc = &Doc{ID: id}
			if v := h[FieldLastDeployedAt]; v != "" {
				t, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					return State{}, fmt.Errorf("field %s: %w", FieldLastDeployedAt, err)
				}
				st.Entry.Doc.LastDeployedAt = &t
			}
		}
	}
	return st, nil
}

// applyScript writes an entry if its rev is still the one the caller read.
//
// KEYS[1] entry hash, KEYS[2] tombstone, KEYS[3] (optional) the dedup mark of
// the webhook body that caused the write.
// ARGV[1] expected rev ("0": the hash must not exist), ARGV[2] "set" or
// "delete", ARGV[3] tombstone TTL in ms, ARGV[4] tombstone value, ARGV[5]
// events channel, ARGV[6] message up to the rev ('{"id":…,"rev":'), ARGV[7]
// dedup mark TTL in ms, ARGV[8] number of field/value pairs n, then n pairs,
// then fields to delete.
//
// Returns {1, rev} when written, {0, rev} on a rev mismatch, {-1, rev} when a
// tombstone forbids the write, {-2, rev} when the dedup mark exists (the
// body was applied already).
var applyScript = redis.NewScript(`
local rev = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')
if #KEYS > 2 and redis.call('EXISTS', KEYS[3]) == 1 then return {-2, rev} end
if rev ~= tonumber(ARGV[1]) then return {0, rev} end
local newrev
if ARGV[2] == 'delete' then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[3])
  newrev = rev + 1
else
  if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, rev} end
  local n = tonumber(ARGV[8])
  local i = 9
  if n > 0 then
    local args = {}
    for j = 1, 2 * n do args[j] = ARGV[i + j - 1] end
    redis.call('HSET', KEYS[1], unpack(args))
  end
  i = 9 + 2 * n
  if i <= #ARGV then
    local del = {}
    for j = i, #ARGV do del[#del + 1] = ARGV[j] end
    redis.call('HDEL', KEYS[1], unpack(del))
  end
  newrev = redis.call('HINCRBY', KEYS[1], 'rev', 1)
end
if #KEYS > 2 then redis.call('SET', KEYS[3], '1', 'PX', ARGV[7]) end
redis.call('PUBLISH', ARGV[5], ARGV[6] .. newrev .. '}')
return {1, newrev}
`)

// ErrDuplicate: the webhook body behind an ApplyOnce was applied already.
var ErrDuplicate = errors.New("webhook body applied already")

// Apply writes m to the entry of instance id if its rev is still
// prev.Rev (0 when the entry did not exist), publishes the change, and
// keeps the lookup indexes in step. It returns the entry's new rev,
// ErrConflict when the entry changed since it was read, or ErrTombstoned
// when the instance was deleted. prev is the entry the mutation was decided
// on, so that index rows it no longer needs are removed.
func (s *Store) Apply(ctx context.Context, id string, prev Entry, m Mutation) (int64, error) {
	return s.apply(ctx, id, prev, m, "", 0)
}

// ApplyOnce is Apply for the effect of a webhook body with digest sum: in
// the same step as the write it marks the body applied for window, and it
// refuses with ErrDuplicate when the body was applied already. A delivery
// that fails before the write is therefore applied in full when retried,
// and one that got through is never applied twice.
func (s *Store) ApplyOnce(ctx context.Context, id string, prev Entry, m Mutation, sum string, window time.Duration) (int64, error) {
	return s.apply(ctx, id, prev, m, sum, window)
}

func (s *Store) apply(ctx context.Context, id string, prev Entry, m Mutation, sum string, window time.Duration) (int64, error) {
	head := Message{ID: id, Change: m.Kind}
	if !m.Delete {
		head.DeployedVersion = m.Entry.DeployedVersion
	}
	msg, err := json.Marshal(head)
	if err != nil {
		return 0, fmt.Errorf("apply %s: %w", id, err)
	}
	// Cut the encoded message before its rev so the script appends the rev it
	// assigns: `{"id":"…","change":"…","rev":`.
	msgHead := string(msg[:len(msg)-2]) // drop `0}`
	args := []any{prev.Rev, "set", s.tombstone.Milliseconds(), time.Now().UTC().Format(time.RFC3339Nano), s.keys.Events(), msgHead, window.Milliseconds()}
	if m.Delete {
		args[1] = "delete"
		args = append(args, 0)
	} else {
		// A mutation that keeps the stored document (a stale mark, a failed
		// fetch) leaves the doc field as it is: no encoding, and a small
		// write instead of the whole document.
		keepDoc := m.KeepDoc && prev.Rev > 0
		set, del, err := m.Entry.fields(!keepDoc)
		if err != nil {
			return 0, fmt.Errorf("apply %s: %w", id, err)
		}
		args = append(args, len(set))
		for k, v := range set {
			args = append(args, k, v)
		}
		for _, k := range del {
			args = append(args, k)
		}
	}
	keys := []string{s.keys.Instance(id), s.keys.Tombstone(id)}
	if sum != "" {
		keys = append(keys, s.keys.InstanceDedup(id, sum))
	}
	res, err := applyScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("apply %s: %w", id, err)
	}
	if len(res) != 2 {
		return 0, fmt.Errorf("apply %s: unexpected script reply %v", id, res)
	}
	switch res[0] {
	case 0:
		return res[1], ErrConflict
	case -1:
		return res[1], ErrTombstoned
	case -2:
		return res[1], ErrDuplicate
	}
	if err := s.reindex(ctx, id, prev.Doc, m); err != nil {
		return res[1], fmt.Errorf("%w: %v", ErrIndex, err)
	}
	return res[1], nil
}

// ErrIndex: the entry was written but its lookup rows were not. The write
// stands — lookups check every row against its entry and the next fetch
// rewrites the rows — so callers report it and go on.
var ErrIndex = errors.New("entry written, lookup index not updated")

// Updated is what Update did.
type Updated struct {
	// Mutation is what was written; nil when decide asked for nothing.
	Mutation *Mutation
	// Rev is the entry's rev after the write.
	Rev int64
	// Tombstoned: the instance was deleted, so nothing was written.
	Tombstoned bool
	// Duplicate: with a digest, the body was applied already.
	Duplicate bool
	// IndexErr is set when the entry was written but its index rows were
	// not (see ErrIndex).
	IndexErr error
}

// UpdateOnce, when its Sum is set, makes Update's write happen once per
// webhook body (see ApplyOnce) and has it check the body's mark when it
// reads the entry.
type UpdateOnce struct {
	Sum    string
	Window time.Duration
	// WithoutDoc has Update decide first on the entry read without its
	// document (State.DocOmitted), which spares reading and decoding it for
	// changes that only touch the entry's flags. When decide then asks for
	// anything but such a change (a mutation without KeepDoc, or a delete,
	// whose index rows come from the document), Update reads the whole entry
	// and decides again.
	WithoutDoc bool
	// Prior, when set, is the entry as read earlier (by Load), for the first
	// decision: a caller that reads it while it waits on something else
	// saves the read's round trip afterwards. If the entry changed since,
	// the write's compare-and-set fails and Update reads it and decides
	// again, as after any lost race; a decision to write nothing, which no
	// compare-and-set checks, is made again on a fresh read.
	Prior *State
	// Alongside, when set, runs while the entry is first read; the write
	// waits for it, and when it fails nothing is written and Update returns
	// its error. The intake uses it for work that must be in Redis before
	// a webhook's effect, without a round trip of its own.
	Alongside func() error
}

// maxUpdateAttempts bounds how often Update decides again after losing a
// race; an entry that changes that often is an error worth reporting.
const maxUpdateAttempts = 16

// Update reads the entry of instance id, asks decide for a mutation, and
// writes it with a compare-and-set on the rev it read, reading and
// deciding again whenever another write got in first. decide may be called
// several times and must be a pure function of the state; nil means
// nothing to write.
func (s *Store) Update(ctx context.Context, id string, once UpdateOnce, decide func(State) *Mutation) (Updated, error) {
	if once.Alongside == nil {
		return s.update(ctx, id, once, func() error { return nil }, decide)
	}
	alongside := make(chan error, 1)
	go func() { alongside <- once.Alongside() }()
	var aerr error
	waited := false
	wait := func() error { // before the write, and before returning
		if !waited {
			aerr, waited = <-alongside, true
		}
		return aerr
	}
	up, err := s.update(ctx, id, once, wait, decide)
	if werr := wait(); werr != nil && err == nil {
		return Updated{}, werr
	}
	return up, err
}

// update is Update's loop; before runs ahead of the write.
func (s *Store) update(ctx context.Context, id string, once UpdateOnce, before func() error, decide func(State) *Mutation) (Updated, error) {
	withDoc, prior := !once.WithoutDoc, once.Prior
	for attempt := 0; attempt < maxUpdateAttempts; attempt++ {
		var st State
		var seen bool
		var err error
		fromPrior := prior != nil
		if fromPrior {
			st, prior = *prior, nil
		} else if st, seen, err = s.load(ctx, id, once.Sum, withDoc); err != nil {
			return Updated{}, err
		}
		if seen {
			return Updated{Duplicate: true}, nil
		}
		m := decide(st)
		if m == nil {
			if fromPrior {
				continue // no compare-and-set checks a skip: decide again on the entry as it is now
			}
			return Updated{}, nil
		}
		if st.DocOmitted && (m.Delete || !m.KeepDoc || st.Entry.Rev == 0) {
			// The change needs the document: read it and decide on it.
			withDoc = true
			attempt--
			continue
		}
		if err := before(); err != nil {
			return Updated{}, err
		}
		rev, err := s.apply(ctx, id, st.Entry, *m, once.Sum, once.Window)
		switch {
		case errors.Is(err, ErrConflict):
			continue
		case errors.Is(err, ErrTombstoned):
			return Updated{Tombstoned: true}, nil
		case errors.Is(err, ErrDuplicate):
			return Updated{Duplicate: true}, nil
		case errors.Is(err, ErrIndex):
			return Updated{Mutation: m, Rev: rev, IndexErr: err}, nil
		case err != nil:
			return Updated{}, err
		}
		return Updated{Mutation: m, Rev: rev}, nil
	}
	return Updated{}, fmt.Errorf("update %s: the entry kept changing", id)
}

// reindex brings the lookup indexes in step with a write that succeeded. The
// indexes live in other slots than the entry, so they are written after it;
// lookups check every row against the entry, so a row left behind by a crash
// between the two writes is never served (see docs/redis.md).
func (s *Store) reindex(ctx context.Context, id string, prev *Doc, m Mutation) error {
	var next *Doc
	if !m.Delete {
		next = m.Entry.Doc
	}
	if (m.Kind == ChangeStale || m.Kind == ChangeEnabled) && sameIndexRows(prev, next) {
		// A stale mark or a toggle moves no index row. Fetch writes always
		// rewrite theirs, which repairs rows a crash between the entry's
		// write and the index's left missing.
		return nil
	}
	pipe := s.rdb.Pipeline()
	if prev != nil {
		if next == nil || prev.Customer.ExternalID != next.Customer.ExternalID || prev.Integration.Name != next.Integration.Name {
			if prev.Customer.ExternalID != "" {
				pipe.SRem(ctx, s.keys.Customer(prev.Customer.ExternalID), id)
				pipe.SRem(ctx, s.keys.CustomerIntegration(prev.Customer.ExternalID, prev.Integration.Name), id)
			}
		}
		for _, cv := range prev.Config {
			if cv.ID == "" {
				continue
			}
			if _, kept := configIDs(next)[cv.ID]; !kept {
				pipe.Del(ctx, s.keys.ConfigVariable(cv.ID))
			}
		}
	}
	if next != nil {
		if next.Customer.ExternalID != "" {
			pipe.SAdd(ctx, s.keys.Customer(next.Customer.ExternalID), id)
			pipe.SAdd(ctx, s.keys.CustomerIntegration(next.Customer.ExternalID, next.Integration.Name), id)
		}
		for _, cv := range next.Config {
			if cv.ID != "" {
				pipe.Set(ctx, s.keys.ConfigVariable(cv.ID), id, 0)
			}
		}
	}
	if pipe.Len() == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("index %s: %w", id, err)
	}
	return nil
}

// sameIndexRows reports whether two documents need the same index rows.
func sameIndexRows(a, b *Doc) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Customer.ExternalID != b.Customer.ExternalID || a.Integration.Name != b.Integration.Name || len(a.Config) != len(b.Config) {
		return false
	}
	ids := configIDs(a)
	for _, cv := range b.Config {
		if _, ok := ids[cv.ID]; !ok && cv.ID != "" {
			return false
		}
	}
	return true
}

func configIDs(d *Doc) map[string]struct{} {
	if d == nil {
		return nil
	}
	ids := make(map[string]struct{}, len(d.Config))
	for _, cv := range d.Config {
		if cv.ID != "" {
			ids[cv.ID] = struct{}{}
		}
	}
	return ids
}

// InstanceForConfigVariable returns the id of the instance that owns the
// InstanceConfigVariable cvID, from the index kept on every write, or "" when
// no cached instance has it.
func (s *Store) InstanceForConfigVariable(ctx context.Context, cvID string) (string, error) {
	id, err := s.rdb.Get(ctx, s.keys.ConfigVariable(cvID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("config variable %s: %w", cvID, err)
	}
	return id, nil
}

// Synced reports whether a complete sync has been recorded in this Redis.
func (s *Store) Synced(ctx context.Context) (bool, error) {
	ok, err := s.rdb.HExists(ctx, s.keys.SyncMarker(), "at").Result()
	if err != nil {
		return false, fmt.Errorf("read sync marker: %w", err)
	}
	return ok, nil
}

// SyncState is what the sync marker says: when the last complete reconcile
// pass ended and when it began; both zero when none is recorded (never, or
// Redis was flushed or replaced since).
type SyncState struct {
	At, Began time.Time
}

// SyncedAt returns when the last complete sync was recorded (zero if never).
func (s *Store) SyncedAt(ctx context.Context) (time.Time, error) {
	st, err := s.SyncState(ctx)
	return st.At, err
}

// SyncState reads the sync marker.
func (s *Store) SyncState(ctx context.Context) (SyncState, error) {
	vals, err := s.rdb.HMGet(ctx, s.keys.SyncMarker(), "at", "began").Result()
	if err != nil {
		return SyncState{}, fmt.Errorf("read sync marker: %w", err)
	}
	var st SyncState
	for i, dst := range []*time.Time{&st.At, &st.Began} {
		v, _ := vals[i].(string)
		if v == "" {
			continue
		}
		if *dst, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return SyncState{}, fmt.Errorf("read sync marker: %w", err)
		}
	}
	return st, nil
}

// BeginSync records that a sync pass with this token started.
func (s *Store) BeginSync(ctx context.Context, token string) error {
	if err := s.rdb.HSet(ctx, s.keys.SyncMarker(), "pass", token).Err(); err != nil {
		return fmt.Errorf("write sync marker: %w", err)
	}
	return nil
}

var (
	//go:embed lua/finish_sync.lua
	finishSyncSrc    string
	finishSyncScript = redis.NewScript(finishSyncSrc)
)

// FinishSync records a complete sync that began at began and ended at at,
// unless the pass that began with token was lost on the way — Redis flushed
// or replaced mid-pass, or another pass began since — in which case it
// reports false and writes nothing.
func (s *Store) FinishSync(ctx context.Context, token string, began, at time.Time) (bool, error) {
	n, err := finishSyncScript.Run(ctx, s.rdb, []string{s.keys.SyncMarker()}, token,
		at.UTC().Format(time.RFC3339Nano), began.UTC().Format(time.RFC3339Nano)).Int()
	if err != nil {
		return false, fmt.Errorf("write sync marker: %w", err)
	}
	return n == 1, nil
}
