package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/prismcache/prismcache/internal/app"
	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/store"
)

func runGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	fs := newFlagSet("get [flags] <instance-id>",
		"Prints the cached entry of one instance as JSON, read straight from Redis.",
		"prismcache get --redis-url redis://127.0.0.1:6379 SW5zdGFuY2U6ZWM5YzViM2EtZjNhNy00MDliLTllM2QtODA3MDAxNDVlNWU0",
		stderr)
	fs.Var(stringFlag{&cfg.RedisURL}, "redis-url", "Redis the cache is in (env PRISMCACHE_REDIS_URL)")
	fs.Var(stringFlag{&cfg.RedisPrefix}, "redis-prefix", "prefix of the cache's keys (env PRISMCACHE_REDIS_PREFIX)")
	if v := os.Getenv("PRISMCACHE_REDIS_URL"); v != "" {
		cfg.RedisURL = v
	}
	if v := os.Getenv("PRISMCACHE_REDIS_PREFIX"); v != "" {
		cfg.RedisPrefix = v
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	id := fs.Arg(0)
	rdb, err := app.OpenRedis(cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	st, err := store.New(rdb, store.Options{Prefix: cfg.RedisPrefix}).Load(ctx, id)
	if err != nil {
		return err
	}
	if st.Entry.Doc == nil {
		if st.Tombstoned {
			return fmt.Errorf("instance %s was deleted", id)
		}
		return fmt.Errorf("instance %s is not cached (under prefix %q in %s)", id, cfg.RedisPrefix, cfg.RedisURL)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(store.View(st.Entry))
}

// stringFlag is a flag.Value writing into a string.
type stringFlag struct{ p *string }

func (f stringFlag) String() string {
	if f.p == nil {
		return ""
	}
	return *f.p
}
func (f stringFlag) Set(s string) error { *f.p = s; return nil }
