package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The cache package only reads; its tests write entries the way
// docs/redis.md says the daemon does — the hash, its rev, its index rows
// and its message on the events channel, in one transaction — so that the
// Reader is tested against the documented contract, not the daemon's code.

// writer writes the contract for tests. Writes of one id must not race.
type writer struct {
	rdb  redis.UniversalClient
	keys Keys
	// legacy makes it publish as a daemon older than changed_keys did:
	// refreshed messages without the field.
	legacy bool
}

func newWriter(rdb redis.UniversalClient, prefix string) *writer {
	return &writer{rdb: rdb, keys: NewKeys(prefix)}
}

// writeOp is one write: the entry to store, or a delete.
type writeOp struct {
	Kind   Change
	Entry  Entry
	Delete bool
	// ChangedKeys, when not nil, is published as the refreshed message's
	// changed_keys instead of what ChangedKeys computes.
	ChangedKeys []string
}

// writeState is an entry as read.
type writeState struct {
	Entry Entry
}

// Load reads the entry of id.
func (w *writer) Load(ctx context.Context, id string) (writeState, error) {
	h, err := w.rdb.HGetAll(ctx, w.keys.Instance(id)).Result()
	if err != nil {
		return writeState{}, err
	}
	e, err := ParseEntry(h)
	return writeState{Entry: e}, err
}

// Apply writes op over prev (the entry as read) and returns the new rev.
func (w *writer) Apply(ctx context.Context, id string, prev Entry, op writeOp) (int64, error) {
	rev := prev.Rev + 1
	msg := Message{ID: id, Change: op.Kind, Rev: rev}
	if !op.Delete {
		msg.DeployedVersion = op.Entry.DeployedVersion
	}
	if op.Kind == ChangeRefreshed && !op.Delete && !w.legacy {
		msg.ChangedKeys = op.ChangedKeys
		if msg.ChangedKeys == nil {
			msg.ChangedKeys = ChangedKeys(prev.Doc, op.Entry.Doc)
		}
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return 0, err
	}
	key := w.keys.Instance(id)
	pipe := w.rdb.TxPipeline()
	if op.Delete {
		pipe.Del(ctx, key)
		pipe.Set(ctx, w.keys.Tombstone(id), time.Now().UTC().Format(time.RFC3339Nano), time.Hour)
	} else {
		e := op.Entry
		doc, err := json.Marshal(e.Doc)
		if err != nil {
			return 0, err
		}
		fields := map[string]any{
			FieldDoc: string(doc), FieldStale: flag(e.Stale), FieldEnabled: flag(e.Enabled),
			FieldDeployedVersion: strconv.Itoa(e.DeployedVersion), FieldRev: strconv.FormatInt(rev, 10),
		}
		var gone []string
		optional := map[string]string{FieldStaleReason: e.StaleReason, FieldLastError: e.LastError,
			FieldStaleSince: when(e.StaleSince), FieldFetchedAt: when(e.FetchedAt)}
		if e.Doc != nil && e.Doc.LastDeployedAt != nil {
			optional[FieldLastDeployedAt] = when(*e.Doc.LastDeployedAt)
		}
		for f, v := range optional {
			if v == "" {
				gone = append(gone, f)
			} else {
				fields[f] = v
			}
		}
		pipe.HSet(ctx, key, fields)
		if len(gone) > 0 {
			pipe.HDel(ctx, key, gone...)
		}
	}
	pipe.Publish(ctx, w.keys.Events(), body)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("write %s: %w", id, err)
	}
	// The index rows live in other slots: written after the entry.
	if e := op.Entry; !op.Delete && e.Doc != nil && e.Doc.Customer.ExternalID != "" {
		idx := w.rdb.Pipeline()
		idx.SAdd(ctx, w.keys.Customer(e.Doc.Customer.ExternalID), id)
		idx.SAdd(ctx, w.keys.CustomerIntegration(e.Doc.Customer.ExternalID, e.Doc.Integration.Name), id)
		if _, err := idx.Exec(ctx); err != nil {
			return 0, fmt.Errorf("index %s: %w", id, err)
		}
	}
	return rev, nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Keys returns the keys the writer writes.
func (w *writer) Keys() Keys { return w.keys }
