// Command watch is a small app that watches one instance through
// cache.Reader's Watch and prints what changed — which config key, from
// what to what — as the daemon writes it. Start `prismcache dev` first; it
// prints the Redis URL to pass as -redis-url.
//
//	go run ./examples/watch -redis-url redis://127.0.0.1:6379/0
package main

import (
	"context"
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
	r, err := cache.NewReader(rdb, cache.ReaderOptions{Prefix: prefix})
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
	events, err := r.Watch(ctx, id)
	if err != nil {
		return err
	}
	fmt.Printf("watching instance %s; Ctrl-C stops\n", id)
	for ev := range events { // closed when ctx is done
		fmt.Println(describe(ev))
	}
	return nil
}

// describe renders one event: what happened, and each key that changed.
func describe(ev cache.WatchEvent) string {
	e := ev.Entry
	if e.Doc == nil {
		return fmt.Sprintf("%s: the instance is not cached", ev.Kind)
	}
	s := fmt.Sprintf("%s: %s (rev %d, deployed version %d, enabled %v)", ev.Kind, e.Doc.Name, e.Rev, e.DeployedVersion, e.Enabled)
	switch {
	case ev.Kind == cache.WatchInitial:
		for _, k := range slices.Sorted(maps.Keys(e.Doc.Config)) {
			c := e.Doc.Config[k]
			s += fmt.Sprintf("\n  %-22s %s", k, show(&c))
		}
	case ev.Kind == cache.WatchResync:
		s += "\n  (changes may have been missed: anything derived from earlier events should be read again)"
	}
	if e.Stale {
		s += fmt.Sprintf("\n  STALE since %s (%s): a change waits for a deploy; these values still run",
			e.StaleSince.Format("15:04:05"), e.StaleReason)
	}
	for _, k := range ev.Keys {
		s += fmt.Sprintf("\n  %-22s %s → %s", k.Key, show(k.Old), show(k.New))
	}
	return s
}

// show renders one config variable: its value, or a connection's status.
func show(c *cache.ConfigValue) string {
	switch {
	case c == nil:
		return "(absent)"
	case c.IsConnection():
		return "connection " + c.Status
	case c.Value == nil:
		return "(null)"
	}
	return fmt.Sprintf("%q", *c.Value)
}
