package refresh_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/refresh"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/webhook"
)

// This property test drives the two pure rules — webhook.Decide, the one
// decision of what an event does, and refresh.DecideWrite for fetches — the
// way the daemon does (refresh.Executor's order of steps), over a
// model of Prismatic: random changes, deploys, toggles, connection changes
// and deletes on a handful of instances, their webhooks delivered late,
// reordered and duplicated, fetches that begin, read Prismatic and write at
// arbitrary moments in between. After everything settles, the cache must
// hold each instance's deployed state (or say it is stale when the API
// cannot show it), and no write may ever lower a deployed version.

const propertySequences = 3000

type modelInstance struct {
	stored, deployed map[string]string
	version          int
	lastDeployed     time.Time
	updated          time.Time
	needsDeploy      bool
	enabled          bool
	conn             string
	deleted          bool
}

type modelEvent struct {
	typ string
	ts  time.Time
	id  string
}

type inflight struct {
	started time.Time
	read    bool
	doc     *cache.Doc
}

type world struct {
	t       *testing.T
	rng     *rand.Rand
	now     time.Time
	actions webhook.Actions
	model   map[string]*modelInstance
	ids     []string
	transit []modelEvent
	cache   map[string]*store.State
	pending map[string]bool
	running map[string]*inflight
	dirty   map[string]bool
	writes  int
}

func (w *world) tick() time.Time {
	w.now = w.now.Add(time.Microsecond * time.Duration(1+w.rng.IntN(1000)))
	return w.now
}

func (w *world) emit(typ, id string) {
	w.transit = append(w.transit, modelEvent{typ: typ, ts: w.now, id: id})
}

func (w *world) docAt(id string) *cache.Doc {
	m := w.model[id]
	if m.deleted {
		return nil
	}
	d := &cache.Doc{ID: id, Enabled: m.enabled, NeedsDeploy: m.needsDeploy, DeployedVersion: m.version, Config: map[string]cache.ConfigValue{}}
	if m.version > 0 {
		at := m.lastDeployed
		d.LastDeployedAt = &at
	}
	up := m.updated
	d.UpdatedAt = &up
	for k, v := range m.stored {
		d.Config[k] = cache.ConfigValue{Value: &v, Type: "STRING"}
	}
	d.Config["conn"] = cache.ConfigValue{Type: cache.TypeConnection, Status: m.conn}
	return d
}

// apply writes a mutation to the in-memory cache as the store's script
// would, and checks the deployed version never goes down.
func (w *world) apply(id string, m *store.Mutation) {
	st := w.cache[id]
	if st == nil {
		st = &store.State{}
		w.cache[id] = st
	}
	if m.Delete {
		*st = store.State{Tombstoned: true}
		return
	}
	if st.Tombstoned {
		w.t.Fatalf("a write over a tombstone was decided for %s", id)
	}
	if st.Entry.Doc != nil && m.Entry.Doc != nil && m.Entry.Doc.DeployedVersion < st.Entry.Doc.DeployedVersion {
		w.t.Fatalf("a write lowered %s's deployed version from %d to %d", id, st.Entry.Doc.DeployedVersion, m.Entry.Doc.DeployedVersion)
	}
	rev := st.Entry.Rev + 1
	st.Entry = m.Entry
	st.Entry.Rev = rev
	st.Exists = true
	w.writes++
}

func (w *world) state(id string) store.State {
	if st := w.cache[id]; st != nil {
		return *st
	}
	return store.State{}
}

func (w *world) deliver(i int) {
	ev := w.transit[i]
	if w.rng.IntN(5) > 0 { // one delivery in five is duplicated: the copy stays in transit
		w.transit = slices.Delete(w.transit, i, i+1)
	}
	w.tick()
	// The plan, carried out as refresh.Executor does: the rerun mark beside
	// the read of the entry, the write decided on the entry, the queue.
	event := webhook.Event{Type: ev.typ, Timestamp: ev.ts, InstanceID: ev.id}
	plan, err := webhook.Decide(event, w.actions, nil)
	if err != nil {
		w.t.Fatalf("decide %v: %v", ev, err)
	}
	if plan.RerunIfRunning && w.running[ev.id] != nil {
		w.dirty[ev.id] = true
	}
	if plan.NeedsEntry {
		st := w.state(ev.id)
		withEntry, err := webhook.Decide(event, w.actions, &st)
		if err != nil {
			w.t.Fatalf("decide %v on its entry: %v", ev, err)
		}
		if withEntry.Write != nil {
			w.apply(ev.id, withEntry.Write)
		}
	}
	for _, task := range plan.Queue {
		if task.Kind != webhook.TaskFetch || task.ID != ev.id {
			w.t.Fatalf("event %v queued %+v", ev, task)
		}
		if w.running[ev.id] != nil {
			w.dirty[ev.id] = true
		} else {
			w.pending[ev.id] = true
		}
	}
}

func (w *world) startFetch(id string) {
	delete(w.pending, id)
	w.running[id] = &inflight{started: w.tick()}
}

func (w *world) readFetch(id string) {
	f := w.running[id]
	w.tick()
	f.doc, f.read = w.docAt(id), true
}

func (w *world) finishFetch(id string) {
	f := w.running[id]
	m, _ := refresh.DecideWrite(w.state(id), f.doc, f.started, w.tick())
	if m != nil {
		w.apply(id, m)
	}
	delete(w.running, id)
	if w.dirty[id] {
		delete(w.dirty, id)
		w.pending[id] = true
	}
}

// op makes one random change in the model and emits its event.
func (w *world) op() {
	id := w.ids[w.rng.IntN(len(w.ids))]
	m := w.model[id]
	if m.deleted {
		return
	}
	w.tick()
	switch r := w.rng.IntN(100); {
	case r < 40:
		key := []string{"a", "b"}[w.rng.IntN(2)]
		m.stored[key] = fmt.Sprint(w.rng.IntN(1000))
		m.needsDeploy, m.updated = true, w.now
		w.emit(webhook.InstanceUpdated, id)
	case r < 65:
		m.deployed = maps.Clone(m.stored)
		m.version++
		m.lastDeployed, m.updated, m.needsDeploy = w.now, w.now, false
		w.emit(webhook.InstanceDeployed, id)
	case r < 80:
		m.enabled = !m.enabled
		typ := webhook.InstanceDisabled
		if m.enabled {
			typ = webhook.InstanceEnabled
		}
		w.emit(typ, id)
	case r < 97:
		m.conn = []string{"ACTIVE", "ERROR", "PENDING"}[w.rng.IntN(3)]
		w.emit(webhook.OAuth2TokenRefreshed, id)
	default:
		m.deleted = true
		w.emit(webhook.InstanceDeleted, id)
	}
}

// step does one random thing the world allows; false when nothing is left.
func (w *world) step(opsLeft *int) bool {
	var choices []func()
	if *opsLeft > 0 {
		choices = append(choices, func() { *opsLeft--; w.op() })
	}
	if n := len(w.transit); n > 0 {
		choices = append(choices, func() { w.deliver(w.rng.IntN(min(n, 4))) }) // reordering within a window of 4
	}
	for _, id := range sortedKeys(w.pending) {
		if w.running[id] == nil {
			choices = append(choices, func() { w.startFetch(id) })
		}
	}
	for _, id := range sortedKeys(w.running) {
		if !w.running[id].read {
			choices = append(choices, func() { w.readFetch(id) })
		} else {
			choices = append(choices, func() { w.finishFetch(id) })
		}
	}
	if len(choices) == 0 {
		return false
	}
	choices[w.rng.IntN(len(choices))]()
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func (w *world) check(seed uint64) {
	for _, id := range w.ids {
		m, st := w.model[id], w.state(id)
		fail := func(format string, args ...any) {
			w.t.Helper()
			w.t.Fatalf("seed %d, instance %s: "+format+"\nmodel %+v\nentry %+v", append([]any{seed, id}, append(args, *m, st.Entry)...)...)
		}
		if m.deleted {
			if st.Exists || st.Entry.Doc != nil {
				fail("deleted in Prismatic but still cached")
			}
			continue
		}
		e := st.Entry
		if e.Doc == nil {
			fail("deployed in Prismatic but not cached")
		}
		if e.Enabled != m.enabled || e.Doc.Enabled != m.enabled {
			fail("enabled %v (doc %v), Prismatic says %v", e.Enabled, e.Doc.Enabled, m.enabled)
		}
		if got := e.Doc.Config["conn"].Status; got != m.conn {
			fail("connection status %q, Prismatic says %q", got, m.conn)
		}
		if m.needsDeploy && !e.Stale {
			fail("Prismatic has undeployed changes but the entry is fresh")
		}
		if !m.needsDeploy && (e.Stale || e.DeployedVersion != m.version) {
			fail("stale=%v version %d; Prismatic is deployed at %d with nothing pending", e.Stale, e.DeployedVersion, m.version)
		}
		if e.StaleReason == cache.StaleUndeployed && !m.needsDeploy {
			fail("labelled undeployed_config but Prismatic has nothing pending")
		}
		if e.DeployedVersion == m.version && e.StaleReason != cache.StaleUndeployed {
			for k, v := range m.deployed {
				if got := e.Doc.Config[k].Value; got == nil || *got != v {
					fail("config %s = %v, deployed value is %q", k, got, v)
				}
			}
		}
	}
}

func TestPropertyCacheConvergesToDeployedState(t *testing.T) {
	actions, err := webhook.NewActions(nil)
	if err != nil {
		t.Fatal(err)
	}
	totalEvents, totalWrites := 0, 0
	for seed := uint64(1); seed <= propertySequences; seed++ {
		w := &world{
			t: t, rng: rand.New(rand.NewPCG(seed, 0x5eed)), now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
			actions: actions, model: map[string]*modelInstance{}, cache: map[string]*store.State{},
			pending: map[string]bool{}, running: map[string]*inflight{}, dirty: map[string]bool{},
		}
		n := 1 + w.rng.IntN(4)
		for i := range n {
			id := fmt.Sprintf("inst%d", i)
			w.ids = append(w.ids, id)
			w.tick()
			w.model[id] = &modelInstance{
				stored: map[string]string{"a": "0", "b": "0"}, deployed: map[string]string{"a": "0", "b": "0"},
				version: 1, lastDeployed: w.now, updated: w.now, enabled: true, conn: "ACTIVE",
			}
			w.emit(webhook.InstanceDeployed, id)
		}
		ops := 5 + w.rng.IntN(60)
		totalEvents += ops
		for w.step(&ops) {
		}
		w.check(seed)
		totalWrites += w.writes
	}
	t.Logf("%d generated sequences, %d operations, %d cache writes: every one converged to Prismatic's deployed state", propertySequences, totalEvents, totalWrites)
}
