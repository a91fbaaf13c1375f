// Command reader is a small app that reads one instance's config through
// cache.Reader and prints it again each time it changes. Start `prismcache
// dev` first; it prints the Redis URL to pass as -redis-url.
//
//	go run ./examples/reader -redis-url redis://127.0.0.1:6379/0
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/cache"
)

func main() {
	redisURL := flag.String("redis-url", "redis://127.0.0.1:6379/0", "Redis that prismcache writes (prismcache dev prints it)")
	prefix := flag.String("prefix", cache.DefaultPrefix, "key prefix prismcache writes under")
	customer := flag.String("customer", "acme-001", "external id of the customer whose first instance to watch")
	id := flag.String("instance", "", "instance id to watch (default: the first instance of -customer)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *redisURL, *prefix, *customer, *id); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, redisURL, prefix, customer, id string) error {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()

	// The Reader calls OnInvalidate after it dropped an id from its tier
	// (or, with "", everything): a nudge to read again.
	changed := make(chan struct{}, 1)
	r, err := cache.NewReader(rdb, cache.ReaderOptions{Prefix: prefix, OnInvalidate: func(string) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}})
	if err != nil {
		return err
	}
	defer r.Close()

	if id == "" {
		es, err := r.ByCustomer(ctx, customer)
		if err != nil || len(es) == 0 {
			return fmt.Errorf("no cached instance of customer %s (is prismcache dev running?): %v", customer, err)
		}
		id = es[0].Doc.ID
	}
	fmt.Printf("watching instance %s; Ctrl-C stops\n", id)
	var last string
	for {
		e, err := r.Get(ctx, id)
		if now := describe(e, err); now != last {
			fmt.Println(now)
			last = now
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// describe renders what Get returned: the entry's state and config, or why
// there is none.
func describe(e cache.Entry, err error) string {
	if errors.Is(err, cache.ErrNotFound) {
		return "\nthe instance is not cached (deleted?)"
	}
	if err != nil && !errors.Is(err, cache.ErrDegraded) { // ErrDegraded comes with a usable entry
		return "\nread failed: " + err.Error()
	}
	s := fmt.Sprintf("\n%s (rev %d, deployed version %d, enabled %v)\n", e.Doc.Name, e.Rev, e.DeployedVersion, e.Enabled)
	if e.Stale {
		s += fmt.Sprintf("  STALE since %s (%s): a change waits for a deploy; these values still run\n",
			e.StaleSince.Format("15:04:05"), e.StaleReason)
	}
	for _, k := range slices.Sorted(maps.Keys(e.Doc.Config)) {
		if c, err := e.Connection(k); err == nil {
			s += fmt.Sprintf("  %-22s connection %s, refresh at %s\n", k, c.Status, c.RefreshAt.Format("15:04:05"))
		} else if v := e.Doc.Config[k].Value; v != nil {
			s += fmt.Sprintf("  %-22s %s\n", k, *v)
		}
	}
	return s
}
