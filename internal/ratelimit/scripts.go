package ratelimit

import (
	"context"
	_ "embed"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed lua/reserve.lua
	reserveSrc    string
	reserveScript = redis.NewScript(reserveSrc)
	//go:embed lua/beat.lua
	beatSrc    string
	beatScript = redis.NewScript(beatSrc)
)

// reserveArgs are the arguments of reserve.lua.
type reserveArgs struct {
	// Interval is the time between two requests at the rate.
	Interval time.Duration
	// Tolerance is how far ahead of the rate a burst may go.
	Tolerance time.Duration
	// Longest is the longest wait the caller accepts; 0 accepts any.
	Longest time.Duration
	// Count is how many requests to reserve, one Interval apart.
	Count int
}

// reserve runs reserve.lua on the limit's key: the wait before the first
// request reserved may go, or ok=false when it would be longer than
// args.Longest (and nothing was reserved).
func reserve(ctx context.Context, rdb redis.Scripter, key string, args reserveArgs) (wait time.Duration, ok bool, err error) {
	us, err := reserveScript.Run(ctx, rdb, []string{key},
		args.Interval.Microseconds(), args.Tolerance.Microseconds(), args.Longest.Microseconds(), max(args.Count, 1)).Int64()
	if err != nil {
		return 0, false, err
	}
	if us < 0 {
		return 0, false, nil
	}
	return time.Duration(us) * time.Microsecond, true, nil
}

// beat runs beat.lua: registers replica id for ttl and returns how many
// replicas are registered.
func beat(ctx context.Context, rdb redis.Scripter, key, id string, ttl time.Duration) (int, error) {
	n, err := beatScript.Run(ctx, rdb, []string{key}, id, ttl.Milliseconds()).Int()
	return n, err
}
