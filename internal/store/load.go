package store

import (
	"context"
	"fmt"
	"time"

	"github.com/prismcache/prismcache/cache"
)

// Load reads one instance's entry and tombstone in one round trip.
func (s *Store) Load(ctx context.Context, id string) (State, error) {
	st, _, err := s.load(ctx, id, "", true)
	return st, err
}

// metaFields are the fields of an entry other than its document, in the
// order a "meta" load asks for them.
var metaFields = []string{cache.FieldStale, cache.FieldStaleSince, cache.FieldStaleReason, cache.FieldEnabled, cache.FieldDeployedVersion,
	cache.FieldLastDeployedAt, cache.FieldFetchedAt, cache.FieldRev, cache.FieldLastError, cache.FieldPriorStaleReason,
	cache.FieldUpdatedEventAt, cache.FieldEnabledEventAt, fieldWriteID}

// loadArgs are the load script's arguments: "all", or "meta" and the
// fields, built once.
var (
	loadAll  = []any{"all"}
	loadMeta = func() []any {
		args := []any{"meta"}
		for _, f := range metaFields {
			args = append(args, f)
		}
		return args
	}()
)

// load reads an entry and its tombstone, and with a digest the dedup mark
// of that webhook body, in one round trip; when the mark exists (seen) the
// state is not decoded. Without withDoc it leaves the document in Redis:
// the state then has DocOmitted set and a Doc that holds only its ID and
// LastDeployedAt.
func (s *Store) load(ctx context.Context, id, sum string, withDoc bool) (st State, seen bool, err error) {
	keys := []string{s.keys.Instance(id), s.keys.Tombstone(id)}
	if sum != "" {
		keys = append(keys, s.keys.InstanceDedup(id, sum))
	}
	args := loadMeta
	if withDoc {
		args = loadAll
	}
	res, err := loadScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return State{}, false, fmt.Errorf("load %s: %w", id, err)
	}
	if len(res) > 0 && res[0] == int64(1) {
		return State{}, true, nil
	}
	st, err = parseLoad(id, res, withDoc)
	if err != nil {
		return State{}, false, fmt.Errorf("load %s: %w", id, err)
	}
	s.memory.remember(id, st)
	return st, false, nil
}

// parseLoad decodes the load script's reply.
func parseLoad(id string, res []any, withDoc bool) (State, error) {
	want := 3
	if !withDoc {
		want = 4
	}
	if len(res) != want {
		return State{}, fmt.Errorf("unexpected script reply of %d elements", len(res))
	}
	tomb, _ := res[1].(int64)
	h := make(map[string]string, 14)
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
		if len(vals) != len(metaFields) {
			return State{}, fmt.Errorf("unexpected script reply: %d fields", len(vals))
		}
		for i, v := range vals {
			if v, ok := v.(string); ok {
				h[metaFields[i]] = v
			}
		}
	}
	e, err := cache.ParseEntry(h)
	if err != nil {
		return State{}, err
	}
	st := State{Entry: e, Exists: len(h) > 0 || docLen > 0, Tombstoned: tomb > 0, WriteID: h[fieldWriteID]}
	if !withDoc {
		st.DocOmitted = true
		if docLen > 0 {
			st.Entry.Doc = &cache.Doc{ID: id}
			if v := h[cache.FieldLastDeployedAt]; v != "" {
				t, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					return State{}, fmt.Errorf("field %s: %w", cache.FieldLastDeployedAt, err)
				}
				st.Entry.Doc.LastDeployedAt = &t
			}
		}
	}
	return st, nil
}
