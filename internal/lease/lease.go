// Package lease is the daemon's one lease helper: Keep renews a lease while
// the work it guards runs and cancels that work the moment the lease may be
// someone else's; Lock is a named lease in Redis (one holder among all
// replicas) built on it. The work set's per-instance claims and the
// reconcile and census locks all use it, so the rule — renew every third of
// the TTL, give up once a whole TTL passed without a renewal — lives here.
package lease

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrLost: the lease expired or was taken over; its holder must stop.
var ErrLost = errors.New("lease lost")

// Keep renews a lease of ttl by calling renew every ttl/3 until stop is
// called or ctx ends. The returned context is cancelled, with ErrLost as its
// cause, when renew reports ErrLost or when no renewal succeeded for a whole
// ttl (Redis unreachable: the lease may have expired and been taken). Work
// guarded by the lease runs under that context.
func Keep(ctx context.Context, ttl time.Duration, renew func(context.Context) error) (context.Context, func()) {
	kctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(max(ttl/3, time.Millisecond))
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case <-kctx.Done():
				return
			case <-t.C:
			}
			err := renew(kctx)
			switch {
			case err == nil:
				last = time.Now()
			case errors.Is(err, ErrLost):
				cancel(ErrLost)
				return
			case time.Since(last) >= ttl:
				cancel(fmt.Errorf("%w: no renewal for %s: %v", ErrLost, ttl, err))
				return
			}
		}
	}()
	return kctx, func() {
		close(done)
		<-stopped
		cancel(nil)
	}
}

// Lost reports whether ctx, from Keep, ended because its lease was lost.
func Lost(ctx context.Context) bool { return errors.Is(context.Cause(ctx), ErrLost) }

var (
	//go:embed renew.lua
	renewSrc    string
	renewScript = redis.NewScript(renewSrc)
	//go:embed release.lua
	releaseSrc    string
	releaseScript = redis.NewScript(releaseSrc)
)

// Lock is a named lease in Redis: at most one holder at a time among every
// process sharing the Redis. It is a value, safe for concurrent use; each
// Acquire returns its own holder token.
type Lock struct {
	rdb redis.UniversalClient
	key string
	ttl time.Duration
}

// NewLock returns the lease stored under key, held for ttl at a time.
func NewLock(rdb redis.UniversalClient, key string, ttl time.Duration) Lock {
	return Lock{rdb: rdb, key: key, ttl: ttl}
}

// TTL returns how long one acquisition or renewal holds.
func (l Lock) TTL() time.Duration { return l.ttl }

// Acquire takes the lease if nobody holds it; ok is false when someone does.
func (l Lock) Acquire(ctx context.Context) (token string, ok bool, err error) {
	token = Token()
	ok, err = l.rdb.SetNX(ctx, l.key, token, l.ttl).Result()
	if err != nil {
		return "", false, fmt.Errorf("take lease %s: %w", l.key, err)
	}
	return token, ok, nil
}

// Renew extends the lease held with token; ErrLost when it is not held.
func (l Lock) Renew(ctx context.Context, token string) error {
	n, err := renewScript.Run(ctx, l.rdb, []string{l.key}, token, l.ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", l.key, err)
	}
	if n == 0 {
		return ErrLost
	}
	return nil
}

// Release gives the lease held with token up; releasing a lease that is no
// longer held does nothing.
func (l Lock) Release(ctx context.Context, token string) error {
	if err := releaseScript.Run(ctx, l.rdb, []string{l.key}, token).Err(); err != nil {
		return fmt.Errorf("release lease %s: %w", l.key, err)
	}
	return nil
}

// Held reports whether anyone holds the lease now.
func (l Lock) Held(ctx context.Context) (bool, error) {
	n, err := l.rdb.Exists(ctx, l.key).Result()
	if err != nil {
		return false, fmt.Errorf("read lease %s: %w", l.key, err)
	}
	return n > 0, nil
}

// Do runs fn while holding the lease, renewed all along, and releases it
// afterwards. ran is false (and fn is not called) when another holder has
// it. fn's context is cancelled if the lease is lost; Do then returns an
// error wrapping ErrLost.
func (l Lock) Do(ctx context.Context, fn func(ctx context.Context) error) (ran bool, err error) {
	token, ok, err := l.Acquire(ctx)
	if err != nil || !ok {
		return false, err
	}
	kctx, stop := Keep(ctx, l.ttl, func(ctx context.Context) error { return l.Renew(ctx, token) })
	err = fn(kctx)
	lost := Lost(kctx)
	stop()
	if rerr := l.Release(context.WithoutCancel(ctx), token); rerr != nil && err == nil && !lost {
		err = rerr
	}
	if lost {
		return true, fmt.Errorf("%w: %s", ErrLost, l.key)
	}
	return true, err
}

// Token returns a new random token naming one holder.
func Token() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
