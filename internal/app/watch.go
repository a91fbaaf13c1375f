package app

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// probeEvery is how often Prismatic's API is asked the cheapest question
// while it is failing.
const probeEvery = 5 * time.Second

// probeAPI asks Prismatic's API the cheapest question every few seconds
// while it is failing (and not asking us to wait), so that health recovers as
// soon as the API does — nothing else may be asking it — and the work that
// failed meanwhile is tried again at once instead of at the end of its
// backoff.
func (a *App) probeAPI(ctx context.Context) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !a.health.apiNeedsProbe(time.Now()) {
			continue
		}
		// The answer reaches the health through the client's Observe hook.
		if err := a.api.Probe(ctx); err == nil {
			a.log().Info("Prismatic's API answers again")
			a.pool.APIRecovered()
		}
	}
}

// evictionCheckEvery is how often Redis's eviction policy is read again.
const evictionCheckEvery = 5 * time.Minute

// watchEviction reads Redis's maxmemory settings at start-up and then
// periodically. A Redis that may evict keys can drop an entry (apps then
// miss it until it is fetched again), a tombstone (a deleted instance comes
// back) or a queued piece of work (an acknowledged event is lost): only
// noeviction, or no memory limit, is safe.
func (a *App) watchEviction(ctx context.Context) {
	for first := true; ; first = false {
		ev := readEviction(ctx, a.rdb)
		a.health.setEviction(ev)
		a.metrics.EvictionUnsafe(ev.Unsafe)
		switch {
		case ev.Err != nil && first:
			a.log().Warn("could not read Redis's eviction policy; make sure its maxmemory-policy is noeviction (see docs/operations.md)", "err", ev.Err)
		case ev.Err != nil:
			a.log().Debug("could not read Redis's eviction policy", "err", ev.Err)
		case ev.Unsafe:
			a.log().Warn("Redis may evict prismcache's keys: set maxmemory-policy noeviction (see docs/operations.md)",
				"policy", ev.Policy, "maxmemory", ev.MaxMemory, "nodes", ev.Nodes)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(evictionCheckEvery):
		}
	}
}

// eviction is what Redis's memory settings allow.
type eviction struct {
	// Policy and MaxMemory of the first node that may evict, else of any.
	Policy    string
	MaxMemory int64
	// Unsafe is true when some node may evict keys.
	Unsafe bool
	// Nodes that may evict (their addresses, on a Cluster).
	Nodes []string
	Err   error
	At    time.Time
}

// readEviction reads maxmemory and maxmemory-policy from INFO memory (which
// needs no CONFIG permission) on every master.
func readEviction(ctx context.Context, rdb redis.UniversalClient) eviction {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ev := eviction{At: time.Now()}
	var mu sync.Mutex
	check := func(ctx context.Context, c redis.Cmdable, node string) error {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			return fmt.Errorf("INFO memory on %s: %w", node, err)
		}
		policy, limit := infoField(info, "maxmemory_policy"), infoField(info, "maxmemory")
		mem, _ := strconv.ParseInt(limit, 10, 64)
		mu.Lock()
		defer mu.Unlock()
		if ev.Policy == "" {
			ev.Policy, ev.MaxMemory = policy, mem
		}
		if mem > 0 && policy != "noeviction" {
			if !ev.Unsafe {
				ev.Policy, ev.MaxMemory = policy, mem
			}
			ev.Unsafe = true
			ev.Nodes = append(ev.Nodes, node)
		}
		return nil
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		ev.Err = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			return check(ctx, n, n.Options().Addr)
		})
	} else {
		ev.Err = check(ctx, rdb, "redis")
	}
	return ev
}

// infoField returns one field of an INFO reply.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}
