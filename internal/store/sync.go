package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// SyncState is what the sync marker says: when the last complete reconcile
// pass ended and when it began; both zero when none is recorded (never, or
// Redis was flushed or replaced since).
type SyncState struct {
	At, Began time.Time
}

// Synced reports whether a complete sync has been recorded in this Redis.
func (s *Store) Synced(ctx context.Context) (bool, error) {
	ok, err := s.rdb.HExists(ctx, s.keys.SyncMarker(), "at").Result()
	if err != nil {
		return false, fmt.Errorf("read sync marker: %w", err)
	}
	return ok, nil
}

// SyncedAt returns when the last complete sync was recorded (zero if never).
func (s *Store) SyncedAt(ctx context.Context) (time.Time, error) {
	st, err := s.SyncState(ctx)
	return st.At, err
}

// SyncState reads the sync marker.
func (s *Store) SyncState(ctx context.Context) (SyncState, error) {
	vals, err := s.rdb.HMGet(ctx, s.keys.SyncMarker(), "at", "began").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
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
