package app

import (
	"fmt"

	"github.com/redis/go-redis/v9"
)

// OpenRedis returns a client for a redis:// or rediss:// URL.
func OpenRedis(rawURL string) (redis.UniversalClient, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	return redis.NewClient(opts), nil
}
