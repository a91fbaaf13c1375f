package app

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/internal/refresh"
)

// mastersTimeout bounds the readiness check of every master: a master that
// does not answer a PING within it counts as unreachable.
const mastersTimeout = time.Second

// masterState is one Redis master the daemon writes to, as /status shows it.
type masterState struct {
	Addr   string `json:"addr"`
	State  string `json:"state"` // "ok" or "unreachable"
	Detail string `json:"detail,omitempty"`
}

// checkMasters pings every master the daemon needs and reports each. On a
// Redis Cluster that is every master that serves slots, as a fresh look at
// the cluster names them: the daemon writes to all of them (each instance's
// keys live in one slot), so while one does not answer, the webhooks and
// fetches for its slots fail even though the others work. For a single
// server or Sentinel it returns nil: there the sync-marker read that
// readiness makes already reaches the one master.
func checkMasters(ctx context.Context, rdb redis.UniversalClient) []masterState {
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, mastersTimeout)
	defer cancel()
	var mu sync.Mutex
	var out []masterState
	err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		m := masterState{Addr: node.Options().Addr, State: StateOK}
		if err := node.Ping(ctx).Err(); err != nil {
			m.State, m.Detail = "unreachable", err.Error()
		}
		mu.Lock()
		out = append(out, m)
		mu.Unlock()
		return nil
	})
	if err != nil {
		// Not even the slot map could be read: no node answers.
		return []masterState{{Addr: strings.Join(cc.Options().Addrs, ","), State: "unreachable", Detail: err.Error()}}
	}
	slices.SortFunc(out, func(a, b masterState) int { return strings.Compare(a.Addr, b.Addr) })
	return out
}

// unreachable returns the addresses of the masters that did not answer, and
// each with why.
func unreachable(ms []masterState) (addrs []string, why string) {
	var reasons []string
	for _, m := range ms {
		if m.State != StateOK {
			addrs = append(addrs, m.Addr)
			reasons = append(reasons, m.Addr+": "+m.Detail)
		}
	}
	return addrs, strings.Join(reasons, "; ")
}

// masterChanged is told by the Redis client that its new connections reach
// another server than before (see watchServer): the master changed. Redis
// replicates asynchronously, so writes the old master acknowledged just
// before the switch — webhooks answered 2xx, which their sender will not
// send again — may be missing from the new one: a repair is owed, as when
// Redis was lost (it runs as soon as the new master answers).
func (a *App) masterChanged(from, to string) {
	a.log().Warn("the Redis master changed; a reconcile pass will repair what the old master acknowledged but did not pass on",
		"from", from, "to", to)
	a.recon.Owe(refresh.RepairMasterChanged, time.Now())
}
