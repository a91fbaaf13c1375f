package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/prismcache/prismcache/cache"
)

// Apply writes m to the entry of instance id if its rev is still prev.Rev
// (0 when the entry did not exist), publishes the change, and keeps the
// lookup indexes in step. It returns the entry's new rev, ErrConflict when
// the entry changed since it was read, or ErrTombstoned when the instance
// was deleted. prev is the entry the mutation was decided on, so that index
// rows it no longer needs are removed.
func (s *Store) Apply(ctx context.Context, id string, prev cache.Entry, m Mutation) (int64, error) {
	return s.apply(ctx, id, State{Entry: prev}, false, m, "", 0)
}

// applyCall is one call of the apply script, its arguments named.
type applyCall struct {
	entry, tombstone, history, dedup string // keys; dedup "" for none
	expectedRev                      int64
	expectedWriteID                  string // "*": any
	delete                           bool
	tombstoneTTL                     time.Duration
	tombstoneValue                   string
	channel                          string
	message                          []byte
	dedupTTL                         time.Duration
	revision                         []byte // added to the history; nil for none
	historyDepth                     int
	set                              map[string]string
	del                              []string
}

// applyReply is what the apply script answered.
type applyReply struct {
	// status: 1 written, 0 not the entry expected, -1 tombstoned, -2
	// duplicate.
	status int64
	rev    int64
}

func (c applyCall) run(ctx context.Context, s *Store) (applyReply, error) {
	keys := []string{c.entry, c.tombstone, c.history}
	if c.dedup != "" {
		keys = append(keys, c.dedup)
	}
	mode := "set"
	if c.delete {
		mode = "delete"
	}
	args := make([]any, 0, 11+2*len(c.set)+len(c.del))
	args = append(args, c.expectedRev, mode, c.tombstoneTTL.Milliseconds(), c.tombstoneValue, c.channel, c.message,
		c.dedupTTL.Milliseconds(), c.revision, c.historyDepth, c.expectedWriteID, len(c.set))
	for k, v := range c.set {
		args = append(args, k, v)
	}
	for _, k := range c.del {
		args = append(args, k)
	}
	res, err := applyScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return applyReply{}, err
	}
	if len(res) != 2 {
		return applyReply{}, fmt.Errorf("unexpected script reply %v", res)
	}
	return applyReply{status: res[0], rev: res[1]}, nil
}

// apply writes m over the entry prevState holds, as a compare-and-set on
// its rev and, with exact, its write id too: the state is then known to be
// the entry as stored, field for field, and a change of flags writes only
// the fields that differ. It remembers the entry it wrote.
func (s *Store) apply(ctx context.Context, id string, prevState State, exact bool, m Mutation, sum string, window time.Duration) (int64, error) {
	rev, writeID, err := s.write(ctx, id, prevState, exact, m, sum, window)
	switch {
	case err == nil || errors.Is(err, ErrIndex):
		if m.Delete {
			s.memory.forget(id)
			break
		}
		next := State{Entry: m.Entry, Exists: true, WriteID: writeID}
		next.Entry.Rev = rev
		if m.KeepDoc && prevState.Entry.Rev > 0 {
			next.Entry.Doc = prevState.Entry.Doc
		}
		s.memory.remember(id, next)
	case errors.Is(err, ErrDuplicate):
	default:
		s.memory.forget(id)
	}
	return rev, err
}

// write is apply's compare-and-set; it returns the entry's new rev and
// write id.
func (s *Store) write(ctx context.Context, id string, prevState State, exact bool, m Mutation, sum string, window time.Duration) (rev int64, writeID string, err error) {
	prev := prevState.Entry
	// The write is a compare-and-set on prev.Rev, and every write adds one
	// to the rev: the message can carry the rev the write will give, so it
	// is built here, whole, and the script publishes it as it is.
	now := time.Now()
	msg := cache.Message{ID: id, Change: m.Kind, Rev: prev.Rev + 1}
	call := applyCall{
		entry: s.keys.Instance(id), tombstone: s.keys.Tombstone(id), history: s.keys.History(id),
		expectedRev: prev.Rev, expectedWriteID: "*", delete: m.Delete, tombstoneTTL: s.tombstone,
		channel: s.keys.Events(), dedupTTL: window, historyDepth: s.historyDepth,
	}
	if exact {
		call.expectedWriteID = prevState.WriteID
	}
	if m.Delete {
		call.tombstoneValue = now.UTC().Format(time.RFC3339Nano)
	}
	if !m.Delete {
		msg.DeployedVersion = m.Entry.DeployedVersion
	}
	if m.Kind == cache.ChangeRefreshed && !m.Delete {
		// What the write changes: in the message, and, when it changed the
		// deployed document, as a revision in the history.
		msg.ChangedKeys = cache.ChangedKeys(prev.Doc, m.Entry.Doc)
		if s.historyDepth > 0 && (len(msg.ChangedKeys) > 0 || prev.Doc == nil || prev.Doc.DeployedVersion != m.Entry.Doc.DeployedVersion) {
			r := cache.NewRevision(prev.Doc, m.Entry.Doc, msg.Rev, now)
			b, err := json.Marshal(r)
			if err != nil {
				return 0, "", fmt.Errorf("apply %s: %w", id, err)
			}
			call.revision = b
		}
	}
	body, err := msg.MarshalJSON() // directly: json.Marshal would check and compact its output again
	if err != nil {
		return 0, "", fmt.Errorf("apply %s: %w", id, err)
	}
	call.message = body
	if sum != "" {
		call.dedup = s.keys.InstanceDedup(id, sum)
	}
	if !m.Delete {
		// A mutation that keeps the stored document (a stale mark, a failed
		// fetch) leaves the doc field as it is: no encoding, and a small
		// write instead of the whole document.
		keepDoc := m.KeepDoc && prev.Rev > 0
		if call.set, call.del, err = fields(m.Entry, !keepDoc); err != nil {
			return 0, "", fmt.Errorf("apply %s: %w", id, err)
		}
		if keepDoc && exact {
			// The stored fields are prev's: write only those that change.
			call.set, call.del = changedFields(prev, call.set, call.del)
		}
		call.set[cache.FieldRev] = strconv.FormatInt(msg.Rev, 10)
		writeID = newWriteID()
		call.set[fieldWriteID] = writeID
	}
	reply, err := call.run(ctx, s)
	if err != nil {
		return 0, "", fmt.Errorf("apply %s: %w", id, err)
	}
	switch reply.status {
	case 0:
		return reply.rev, "", ErrConflict
	case -1:
		return reply.rev, "", ErrTombstoned
	case -2:
		return reply.rev, "", ErrDuplicate
	}
	if reply.rev != msg.Rev {
		return reply.rev, "", fmt.Errorf("apply %s: the write gave rev %d, its message said %d", id, reply.rev, msg.Rev)
	}
	if err := s.reindex(ctx, id, prev.Doc, m); err != nil {
		return reply.rev, writeID, fmt.Errorf("%w: %v", ErrIndex, err)
	}
	return reply.rev, writeID, nil
}

// reindex brings the lookup indexes in step with a write that succeeded. The
// indexes live in other slots than the entry, so they are written after it;
// lookups check every row against the entry, so a row left behind by a crash
// between the two writes is never served (see docs/redis.md).
func (s *Store) reindex(ctx context.Context, id string, prev *cache.Doc, m Mutation) error {
	var next *cache.Doc
	if !m.Delete {
		next = m.Entry.Doc
	}
	if (m.Kind == cache.ChangeStale || m.Kind == cache.ChangeEnabled) && sameIndexRows(prev, next) {
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
		kept := configIDs(next)
		for _, cv := range prev.Config {
			if cv.ID == "" {
				continue
			}
			if _, ok := kept[cv.ID]; !ok {
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

// changedFields keeps, of the fields set and deleted by a write over prev
// that leaves the document alone, those that change what is stored.
func changedFields(prev cache.Entry, set map[string]string, del []string) (map[string]string, []string) {
	old, _, err := fields(prev, false)
	if err != nil { // without the document, fields cannot fail
		return set, del
	}
	for k, v := range set {
		if old[k] == v {
			delete(set, k)
		}
	}
	kept := del[:0]
	for _, k := range del {
		if _, ok := old[k]; ok {
			kept = append(kept, k)
		}
	}
	return set, kept
}

// newWriteID returns a random write id (State.WriteID).
func newWriteID() string { return strconv.FormatUint(rand.Uint64(), 36) }

// sameIndexRows reports whether two documents need the same index rows.
func sameIndexRows(a, b *cache.Doc) bool {
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

func configIDs(d *cache.Doc) map[string]struct{} {
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
