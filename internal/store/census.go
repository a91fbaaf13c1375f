package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// SaveCensus records the latest census of the entries (any value that
// encodes to JSON) for every replica to read.
func (s *Store) SaveCensus(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("record the census: %w", err)
	}
	if err := s.rdb.Set(ctx, s.keys.Census(), b, 0).Err(); err != nil {
		return fmt.Errorf("record the census: %w", err)
	}
	return nil
}

// LoadCensus reads the latest census into v; found is false when none was
// recorded (or Redis was flushed since).
func (s *Store) LoadCensus(ctx context.Context, v any) (found bool, err error) {
	b, err := s.rdb.Get(ctx, s.keys.Census()).Bytes()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the census: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("read the census: %w", err)
	}
	return true, nil
}
