package redisbatch_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/internal/redisbatch"
	"github.com/prismcache/prismcache/internal/redistest"
)

// Concurrent callers' commands leave in shared pipelines, and every caller
// gets its own command's answer: values, redis.Nil, script results, and a
// failing command's own error without spoiling its neighbours'.
func TestConcurrentCallersGetTheirOwnAnswers(t *testing.T) {
	redistest.Each(t, func(t *testing.T, be redistest.Backend) {
		rdb := be.Client
		b := redisbatch.Install(rdb)
		ctx := context.Background()
		script := redis.NewScript(`return redis.call('INCRBY', KEYS[1], ARGV[1])`)
		const callers, rounds = 64, 40
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for g := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := be.Prefix + "k:" + strconv.Itoa(g)
				for r := range rounds {
					want := fmt.Sprintf("%d-%d", g, r)
					if err := rdb.Set(ctx, key, want, 0).Err(); err != nil {
						errs <- err
						return
					}
					if got, err := rdb.Get(ctx, key).Result(); err != nil || got != want {
						errs <- fmt.Errorf("caller %d got %q, %v; want %q", g, got, err, want)
						return
					}
					if _, err := rdb.Get(ctx, key+":missing").Result(); !errors.Is(err, redis.Nil) {
						errs <- fmt.Errorf("caller %d: missing key gave %v, want redis.Nil", g, err)
						return
					}
					n, err := script.Run(ctx, rdb, []string{key + ":n"}, 1).Int()
					if err != nil || n != r+1 {
						errs <- fmt.Errorf("caller %d: script gave %d, %v; want %d", g, n, err, r+1)
						return
					}
					if err := rdb.HSet(ctx, key, "f", "v").Err(); err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
						errs <- fmt.Errorf("caller %d: HSET on a string gave %v, want WRONGTYPE", g, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		st := b.Stats()
		if st.Commands < callers*rounds*5 {
			t.Fatalf("stats: %d commands batched, want at least %d", st.Commands, callers*rounds*5)
		}
		if st.Pipelines >= st.Commands {
			t.Errorf("%d commands went out in %d pipelines: nothing was batched", st.Commands, st.Pipelines)
		}
		t.Logf("%d commands in %d pipelines", st.Commands, st.Pipelines)
	})
}

// A lone caller's commands go through the batcher each in a pipeline of its
// own: sequential commands are never merged or held for one another.
func TestLoneCallerGoesOutAtOnce(t *testing.T) {
	redistest.Each(t, func(t *testing.T, be redistest.Backend) {
		b := redisbatch.Install(be.Client)
		before := b.Stats()
		ctx := context.Background()
		for i := range 10 {
			if err := be.Client.Set(ctx, be.Prefix+"lone", i, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		st := b.Stats()
		if got := st.Pipelines - before.Pipelines; got != 10 {
			t.Fatalf("10 commands from one caller went out in %d pipelines, want 10", got)
		}
	})
}

// A command whose caller's context has ended is not sent, as with the
// client alone: it returns the context's error and writes nothing.
func TestCancelledCallerSendsNothing(t *testing.T) {
	redistest.Each(t, func(t *testing.T, be redistest.Backend) {
		redisbatch.Install(be.Client)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		key := be.Prefix + "cancelled"
		if err := be.Client.Set(ctx, key, "v", 0).Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("SET with a cancelled context: %v, want context.Canceled", err)
		}
		if n, err := be.Client.Exists(context.Background(), key).Result(); err != nil || n != 0 {
			t.Fatalf("the cancelled SET was written (exists %d, %v)", n, err)
		}
	})
}
