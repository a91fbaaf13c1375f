package lease_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prismcache/prismcache/internal/lease"
	"github.com/prismcache/prismcache/internal/redistest"
)

func TestLockHasOneHolder(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		l := lease.NewLock(b.Client, b.Prefix+"lock", 10*time.Second)
		tok, ok, err := l.Acquire(ctx)
		if err != nil || !ok {
			t.Fatalf("first Acquire = %v, %v; want the lease", ok, err)
		}
		if _, ok, err := l.Acquire(ctx); err != nil || ok {
			t.Fatalf("second Acquire = %v, %v; want refused while held", ok, err)
		}
		if err := l.Renew(ctx, "someone-else"); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("Renew with a stranger's token = %v, want ErrLost", err)
		}
		if err := l.Release(ctx, "someone-else"); err != nil {
			t.Fatal(err)
		}
		if held, _ := l.Held(ctx); !held {
			t.Fatal("a stranger's Release freed the lease")
		}
		if err := l.Renew(ctx, tok); err != nil {
			t.Fatalf("holder's Renew = %v", err)
		}
		if err := l.Release(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if held, _ := l.Held(ctx); held {
			t.Fatal("lease still held after its holder released it")
		}
	})
}

func TestLockExpiresWhenNotRenewed(t *testing.T) {
	b := redistest.Mini(t)
	ctx := context.Background()
	l := lease.NewLock(b.Client, b.Prefix+"lock", 10*time.Second)
	tok, _, _ := l.Acquire(ctx)
	b.Mini.FastForward(11 * time.Second)
	if err := l.Renew(ctx, tok); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Renew after expiry = %v, want ErrLost", err)
	}
	if _, ok, _ := l.Acquire(ctx); !ok {
		t.Fatal("an expired lease could not be taken")
	}
}

func TestDoCancelsWorkWhenTheLeaseIsTaken(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		key := b.Prefix + "lock"
		l := lease.NewLock(b.Client, key, 300*time.Millisecond)
		ran, err := l.Do(ctx, func(ctx context.Context) error {
			// Someone else takes the lease over (it expired while this
			// holder was partitioned, say).
			if err := b.Client.Set(ctx, key, "other", time.Minute).Err(); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Second):
				return errors.New("work was not cancelled after its lease was taken")
			}
		})
		if !ran || !errors.Is(err, lease.ErrLost) {
			t.Fatalf("Do = %v, %v; want ran and ErrLost", ran, err)
		}
		if v := b.Client.Get(ctx, key).Val(); v != "other" {
			t.Fatalf("the new holder's lease = %q after Do; Do must not release what it lost", v)
		}
	})
}

func TestKeepGivesUpAfterATTLWithoutRenewal(t *testing.T) {
	ctx, stop := lease.Keep(context.Background(), 90*time.Millisecond, func(context.Context) error {
		return errors.New("redis unreachable")
	})
	defer stop()
	select {
	case <-ctx.Done():
		if !lease.Lost(ctx) {
			t.Fatalf("cause = %v, want ErrLost", context.Cause(ctx))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Keep went on although no renewal succeeded for longer than the TTL")
	}
}

func TestKeepHoldsWhileRenewalsSucceed(t *testing.T) {
	renewals := make(chan struct{}, 100)
	ctx, stop := lease.Keep(context.Background(), 30*time.Millisecond, func(context.Context) error {
		renewals <- struct{}{}
		return nil
	})
	for range 5 {
		select {
		case <-renewals:
		case <-time.After(10 * time.Second):
			t.Fatal("no renewal")
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("context ended although every renewal succeeded: %v", context.Cause(ctx))
	}
	stop()
	if ctx.Err() == nil {
		t.Fatal("stop left the context running")
	}
	if lease.Lost(ctx) {
		t.Fatal("stop reported the lease as lost")
	}
}
