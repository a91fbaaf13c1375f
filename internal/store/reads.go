package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/cache"
)

// Get reads the entry of instance id; an error wrapping cache.ErrNotFound
// when it has none.
func (s *Store) Get(ctx context.Context, id string) (cache.Entry, error) {
	return s.direct.Get(ctx, id)
}

// ByCustomer reads the entries of every cached instance of the customer with
// this external id (see cache.Direct.ByCustomer).
func (s *Store) ByCustomer(ctx context.Context, externalID string) ([]cache.Entry, error) {
	return s.direct.ByCustomer(ctx, externalID)
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

// Peek reads the entries of ids without their documents, all in one
// pipeline: the states a reconcile pass or a census compares, each with
// DocOmitted set (Entry.Doc, when the entry has one, holds only its ID and
// LastDeployedAt) and Tombstoned left unknown (false).
func (s *Store) Peek(ctx context.Context, ids []string) ([]State, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	type cmds struct {
		vals   *redis.SliceCmd
		docLen *redis.IntCmd
	}
	cs := make([]cmds, len(ids))
	for i, id := range ids {
		key := s.keys.Instance(id)
		cs[i] = cmds{vals: pipe.HMGet(ctx, key, metaFields...), docLen: pipe.HStrLen(ctx, key, cache.FieldDoc)}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read entries: %w", err)
	}
	out := make([]State, len(ids))
	for i, id := range ids {
		res := []any{int64(0), int64(0), cs[i].docLen.Val(), cs[i].vals.Val()}
		st, err := parseLoad(id, res, false)
		if err != nil {
			return nil, fmt.Errorf("read entry %s: %w", id, err)
		}
		out[i] = st
	}
	return out, nil
}

// Scan calls fn with the ids of the cached entries, a batch at a time, on
// every master of a Cluster (one at a time), until fn returns an error.
func (s *Store) Scan(ctx context.Context, batch int, fn func(ids []string) error) error {
	prefix := strings.TrimSuffix(s.keys.Instance(""), "{}")
	pattern := prefix + "{*}"
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var ids []string
		iter := c.Scan(ctx, 0, pattern, int64(batch)).Iterator()
		for iter.Next(ctx) {
			ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(iter.Val(), prefix+"{"), "}"))
			if len(ids) == batch {
				if err := fn(ids); err != nil {
					return err
				}
				ids = ids[:0]
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		if len(ids) > 0 {
			return fn(ids)
		}
		return nil
	}
	if c, ok := s.rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex // fn sees one batch at a time
		return c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return scan(ctx, n)
		})
	}
	return scan(ctx, s.rdb)
}

// Find is ByCustomer restricted to the instances of one integration (see
// cache.Direct.Find).
func (s *Store) Find(ctx context.Context, externalID, integrationName string) ([]cache.Entry, error) {
	return s.direct.Find(ctx, externalID, integrationName)
}

// History reads the revisions kept for instance id, newest first.
func (s *Store) History(ctx context.Context, id string) ([]cache.Revision, error) {
	return s.direct.History(ctx, id)
}

// LoadMany reads the entries and tombstones of ids, documents included, in
// one pipeline. An entry that does not parse gets its error in errs (its
// state is what could be read); err is Redis's.
func (s *Store) LoadMany(ctx context.Context, ids []string) (states []State, errs []error, err error) {
	pipe := s.rdb.Pipeline()
	entries := make([]*redis.MapStringStringCmd, len(ids))
	tombs := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		entries[i] = pipe.HGetAll(ctx, s.keys.Instance(id))
		tombs[i] = pipe.Exists(ctx, s.keys.Tombstone(id))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, nil, fmt.Errorf("read entries: %w", err)
		}
	}
	states = make([]State, len(ids))
	errs = make([]error, len(ids))
	for i := range ids {
		h := entries[i].Val()
		e, perr := cache.ParseEntry(h)
		errs[i] = perr
		states[i] = State{Entry: e, Exists: len(h) > 0, Tombstoned: tombs[i].Val() > 0, WriteID: h[fieldWriteID]}
	}
	return states, errs, nil
}
