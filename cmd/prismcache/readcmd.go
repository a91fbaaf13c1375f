package main

import (
	"flag"
	"log/slog"
	"os"

	"github.com/prismcache/prismcache/internal/app"
	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/store"
)

// instanceReader is what the commands that read one instance straight from
// Redis (get, history) share: --redis-url and --redis-prefix, taken from
// the environment first, and one instance id as the argument.
type instanceReader struct {
	cfg config.Config
}

// flags adds --redis-url and --redis-prefix to fs.
func (c *instanceReader) flags(fs *flag.FlagSet) {
	c.cfg = config.Default()
	fs.Var(typedString{&c.cfg.RedisURL, "url"}, "redis-url", "Redis the cache is in (env PRISMCACHE_REDIS_URL)")
	fs.Var(typedString{&c.cfg.RedisPrefix, "prefix"}, "redis-prefix", "prefix of the cache's keys (env PRISMCACHE_REDIS_PREFIX)")
	if v := os.Getenv("PRISMCACHE_REDIS_URL"); v != "" {
		c.cfg.RedisURL = v
	}
	if v := os.Getenv("PRISMCACHE_REDIS_PREFIX"); v != "" {
		c.cfg.RedisPrefix = v
	}
}

// open parses args, which must be one instance id, and opens the store;
// the caller closes it with the returned func.
func (c *instanceReader) open(fs *flag.FlagSet, args []string) (id string, s *store.Store, closeFn func(), err error) {
	if err := parseFlags(fs, args); err != nil {
		return "", nil, nil, err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return "", nil, nil, errUsage
	}
	// go-redis would print its own lines about failed dials; the caller's
	// one line says it all.
	app.RouteRedisLogs(slog.New(slog.DiscardHandler))
	rdb, err := app.OpenRedis(c.cfg.RedisURL)
	if err != nil {
		return "", nil, nil, &exitCodeError{code: exitUsage, err: err}
	}
	return fs.Arg(0), store.New(rdb, store.Options{Prefix: c.cfg.RedisPrefix}), func() { _ = rdb.Close() }, nil
}
