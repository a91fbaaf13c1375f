package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/config"
	"github.com/prismcache/prismcache/internal/prismaticsim"
	"github.com/prismcache/prismcache/internal/redistest"
	"github.com/prismcache/prismcache/internal/webhook"
	"github.com/prismcache/prismcache/internal/webhook/examples"
)

// idle reports whether the work set is empty: nothing queued, nothing
// being fetched.
func idle(t *testing.T, h *harness) bool {
	t.Helper()
	s, err := h.app.WorkStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.Queued == 0 && s.Leased == 0
}

func waitIdle(t *testing.T, h *harness) {
	t.Helper()
	h.waitFor(t, "the work set to drain", func() bool { return idle(t, h) })
}

// fetches is how often the simulator answered instance(id:) for id.
func fetches(h *harness, id string) int64 { return h.sim.Stats().InstanceFetchesByID[id] }

// mustCached returns the entry of id, failing when it has none.
func mustCached(t *testing.T, h *harness, id string) cache.Entry {
	t.Helper()
	e, err := h.store.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("entry %s: %v", id, err)
	}
	return e
}

func notCached(t *testing.T, h *harness, id string) bool {
	t.Helper()
	_, err := h.store.Get(context.Background(), id)
	if err != nil && !errors.Is(err, cache.ErrNotFound) {
		t.Fatal(err)
	}
	return errors.Is(err, cache.ErrNotFound)
}

// e2eTimeFormat is the payloads' timestamp format.
const e2eTimeFormat = "2006-01-02T15:04:05.000000+00:00"

// examplePayload is an example payload as edit changes it.
func examplePayload(t *testing.T, file string, edit func(m map[string]any)) []byte {
	t.Helper()
	return examples.Edit(t, examples.Must(t, file), edit)
}

// instancePayload is the example payload of an instance.* event, about the
// instance id at ts.
func instancePayload(t *testing.T, typ, id, name string, ts time.Time) []byte {
	t.Helper()
	return examplePayload(t, typ+".json", func(m map[string]any) {
		m["event_type"] = typ
		m["timestamp"] = ts.UTC().Format(e2eTimeFormat)
		m["instance"] = map[string]any{"id": id, "name": name}
	})
}

// customerPayload is a customer.* event shaped like the example payloads: the
// envelope with a customer object (id, name, external_id).
func customerPayload(t *testing.T, typ string, in prismaticsim.InstanceSummary, ts time.Time) []byte {
	t.Helper()
	return examplePayload(t, "connection.updated.customer-connection.json", func(m map[string]any) {
		delete(m, "connection")
		m["event_type"] = typ
		m["timestamp"] = ts.UTC().Format(e2eTimeFormat)
		m["customer"] = map[string]any{"id": in.CustomerID, "name": in.CustomerName, "external_id": in.CustomerExternalID}
	})
}

// sendWebhook posts body to the daemon, signed with the harness secret as
// Prismatic signs, and returns the status and the decoded answer.
func sendWebhook(t *testing.T, h *harness, typ string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.app.URL()+"/webhooks/prismatic", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.EventHeader, typ)
	req.Header.Set(webhook.SignatureHeader, webhook.SignatureValue(secret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("webhook answer %d is not JSON: %s", resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// delivered returns a check of a simulator operation's result: it fails the
// test unless the operation worked and every webhook it sent was answered
// 200. Curried so that it takes the operation's two results directly.
func delivered(t *testing.T, what string) func(prismaticsim.Result, error) prismaticsim.Result {
	return func(res prismaticsim.Result, err error) prismaticsim.Result {
		t.Helper()
		return checkDelivered(t, what, res, err)
	}
}

func checkDelivered(t *testing.T, what string, res prismaticsim.Result, err error) prismaticsim.Result {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if len(res.Webhooks) == 0 {
		t.Fatalf("%s sent no webhook", what)
	}
	for _, w := range res.Webhooks {
		if w.Status != http.StatusOK {
			t.Fatalf("%s: webhook %s answered %d (%s, %s)", what, w.Type, w.Status, w.State, w.Error)
		}
	}
	return res
}

// e2eSnapshot reads every key under the prefix by type (miniredis' DUMP
// only dumps strings), leaving out the dedup marks.
func e2eSnapshot(t *testing.T, h *harness) map[string]string {
	t.Helper()
	ctx := context.Background()
	rdb := h.b.Client
	keys, err := rdb.Keys(ctx, h.b.Prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		if strings.HasPrefix(k, h.b.Prefix+"dedup:") || background(h.b.Prefix, k) {
			continue
		}
		var v any
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "string":
			v, err = rdb.Get(ctx, k).Result()
		case "hash":
			v, err = rdb.HGetAll(ctx, k).Result()
		case "set":
			var m []string
			m, err = rdb.SMembers(ctx, k).Result()
			sort.Strings(m)
			v = m
		case "zset":
			v, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "list":
			v, err = rdb.LRange(ctx, k, 0, -1).Result()
		case "none":
			continue
		default:
			t.Fatalf("key %s of type %s", k, typ)
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(v)
		out[k] = string(b)
	}
	return out
}

func mustSameKeys(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for k, v := range after {
		if before[k] != v {
			t.Errorf("%s changed %s:\n before %s\n after  %s", what, k, before[k], v)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			t.Errorf("%s removed %s", what, k)
		}
	}
}

// customerInstances lists the customer's instances in the simulator.
func customerInstances(h *harness, externalID string) []prismaticsim.InstanceSummary {
	var out []prismaticsim.InstanceSummary
	for _, in := range h.sim.Instances() {
		if in.CustomerExternalID == externalID {
			out = append(out, in)
		}
	}
	return out
}

func summary(t *testing.T, h *harness, id string) prismaticsim.InstanceSummary {
	t.Helper()
	for _, in := range h.sim.Instances() {
		if in.ID == id {
			return in
		}
	}
	t.Fatalf("no instance %s in the simulator", id)
	return prismaticsim.InstanceSummary{}
}

// twoValues returns a plain variable of the instance, its value, and two
// other valid values for it.
func twoValues(t *testing.T, h *harness, id string) (key, v0, v1, v2 string) {
	t.Helper()
	key, v0, v1 = plainVar(t, h.sim, id)
	in, err := h.sim.Instance(id)
	if err != nil {
		t.Fatal(err)
	}
	cv, _ := in.Value(key)
	v2 = "changed twice by the e2e test"
	if cv.DataType == "NUMBER" {
		v2 = "4343"
	}
	return key, v0, v1, v2
}

func TestEventUpdatedAndDeployed(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		h := startE2E(t, b, e2eOptions{})
		id := h.sim.DemoInstanceID()
		in := summary(t, h, id)
		key, old, next := plainVar(t, h.sim, id)

		// instance.updated: stale, no fetch.
		n := fetches(h, id)
		delivered(t, "SetConfig")(h.sim.SetConfig(id, key, next))
		e := h.entry(t, id)
		if !e.Stale || e.StaleReason != cache.StaleUpdated || value(e, key) != old || !idle(t, h) || fetches(h, id) != n {
			t.Fatalf("after instance.updated: stale %v (%s), %s=%q, fetches %d → %d; want stale, the old value, no fetch",
				e.Stale, e.StaleReason, key, value(e, key), n, fetches(h, id))
		}

		// instance.deployed: one fetch, fresh, the new value.
		delivered(t, "Deploy")(h.sim.Deploy(id))
		h.waitFor(t, "the deploy to be fetched", func() bool { return idle(t, h) && !h.entry(t, id).Stale })
		fresh := h.entry(t, id)
		truth, err := h.sim.Deployed(id)
		if err != nil {
			t.Fatal(err)
		}
		if value(fresh, key) != next || fresh.DeployedVersion != truth.DeployedVersion || fetches(h, id) != n+1 {
			t.Fatalf("after deploy: %s=%q v%d, fetches %d; want %q v%d after one fetch", key, value(fresh, key),
				fresh.DeployedVersion, fetches(h, id)-n, next, truth.DeployedVersion)
		}

		// A late instance.updated, from before the deploy the entry holds,
		// does not mark it stale.
		deployedAt := *fresh.Doc.LastDeployedAt
		status, ans := sendWebhook(t, h, webhook.InstanceUpdated,
			instancePayload(t, webhook.InstanceUpdated, id, in.Name, deployedAt.Add(-time.Millisecond)))
		if status != http.StatusOK || ans["detail"] != webhook.SkipOlderThanDeploy {
			t.Fatalf("late instance.updated: %d %v; want 200 %q", status, ans, webhook.SkipOlderThanDeploy)
		}
		if e := h.entry(t, id); e.Stale || e.Rev != fresh.Rev || !idle(t, h) {
			t.Fatalf("a late instance.updated changed the entry: stale %v, rev %d → %d", e.Stale, fresh.Rev, e.Rev)
		}
		// The same hand-made payload, newer than the deploy, is applied.
		status, _ = sendWebhook(t, h, webhook.InstanceUpdated,
			instancePayload(t, webhook.InstanceUpdated, id, in.Name, deployedAt.Add(time.Millisecond)))
		if e := h.entry(t, id); status != http.StatusOK || !e.Stale || e.StaleReason != cache.StaleUpdated {
			t.Fatalf("instance.updated after the deploy: %d, stale %v %q", status, e.Stale, e.StaleReason)
		}

		// Prismatic delivering instance.deployed twice: one fetch.
		if err := h.sim.SetFaults(prismaticsim.Faults{WebhookDuplicateRate: 1}); err != nil {
			t.Fatal(err)
		}
		n = fetches(h, id)
		res := delivered(t, "Deploy")(h.sim.Deploy(id))
		if !res.Webhooks[0].Duplicated {
			t.Fatal("the simulator did not send the webhook twice")
		}
		h.waitFor(t, "the second deploy to be fetched", func() bool { return idle(t, h) && !h.entry(t, id).Stale })
		if got := fetches(h, id) - n; got != 1 {
			t.Fatalf("a deploy delivered twice caused %d fetches, want 1", got)
		}
	})
}

// TestEventDeployedThenChangedStaysStale: an instance changed again before
// the fetch of its deploy could read it. The API then shows undeployed
// config, so the entry must end stale and hold deployed values — never the
// undeployed one.
func TestEventDeployedThenChangedStaysStale(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		t.Run("changed during a slow fetch", func(t *testing.T) {
			h := startE2E(t, b.Fresh(t), e2eOptions{})
			id := h.sim.DemoInstanceID()
			key, v0, v1, v2 := twoValues(t, h, id)
			before := h.entry(t, id)
			delivered(t, "SetConfig")(h.sim.SetConfig(id, key, v1))

			if err := h.sim.SetFaults(prismaticsim.Faults{Latency: 500 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			api := h.sim.Stats().APIRequests
			delivered(t, "Deploy")(h.sim.Deploy(id))
			// The fetch of the deploy has reached the simulator and waits
			// out its latency: change the instance now.
			h.waitFor(t, "the fetch to start", func() bool { return h.sim.Stats().APIRequests > api })
			delivered(t, "SetConfig")(h.sim.SetConfig(id, key, v2))
			if err := h.sim.SetFaults(prismaticsim.Faults{}); err != nil {
				t.Fatal(err)
			}
			waitIdle(t, h)

			e := h.entry(t, id)
			truth, err := h.sim.Deployed(id)
			if err != nil {
				t.Fatal(err)
			}
			got := value(e, key)
			switch {
			case !e.Stale:
				t.Fatalf("entry is fresh (%s=%q) while Prismatic has an undeployed change", key, got)
			case got == v2:
				t.Fatalf("entry holds the undeployed value %s=%q", key, got)
			case got == v1 && e.DeployedVersion == truth.DeployedVersion:
				// The fetch read Prismatic before the change.
				t.Logf("the fetch read the deployed config (v%d) before the change; stale %s", e.DeployedVersion, e.StaleReason)
			case got == v0 && e.DeployedVersion == before.DeployedVersion:
				// The fetch read it after: needsDeploy=true, so the entry
				// keeps the last deployed config it could read.
				t.Logf("the fetch saw needsDeploy; the entry keeps v%d (v%d runs)", e.DeployedVersion, truth.DeployedVersion)
			default:
				t.Fatalf("entry %s=%q v%d stale %s; want the deployed %q (v%d) or the previous %q (v%d)",
					key, got, e.DeployedVersion, e.StaleReason, v1, truth.DeployedVersion, v0, before.DeployedVersion)
			}

			// The next deploy makes it fresh with the value now deployed.
			delivered(t, "Deploy")(h.sim.Deploy(id))
			h.waitFor(t, "the next deploy", func() bool {
				e := h.entry(t, id)
				return idle(t, h) && !e.Stale && value(e, key) == v2
			})
		})

		t.Run("deploy event arrives after the next change", func(t *testing.T) {
			h := startE2E(t, b.Fresh(t), e2eOptions{})
			id := h.sim.DemoInstanceID()
			key, v0, v1, v2 := twoValues(t, h, id)
			before := h.entry(t, id)
			// Deploy v1 and store v2 while the webhooks are held back, then
			// deliver them: the deploy's fetch can only see needsDeploy.
			h.sim.SetWebhookTarget("", "")
			for _, step := range []func() (prismaticsim.Result, error){
				func() (prismaticsim.Result, error) { return h.sim.SetConfig(id, key, v1) },
				func() (prismaticsim.Result, error) { return h.sim.Deploy(id) },
				func() (prismaticsim.Result, error) { return h.sim.SetConfig(id, key, v2) },
			} {
				if _, err := step(); err != nil {
					t.Fatal(err)
				}
			}
			h.sim.SetWebhookTarget(h.app.URL()+"/webhooks/prismatic", secret)
			events := h.sim.Events()
			for _, ev := range events[len(events)-3:] {
				if status, ans := sendWebhook(t, h, ev.Type, ev.Body); status != http.StatusOK {
					t.Fatalf("%s: %d %v", ev.Type, status, ans)
				}
			}
			waitIdle(t, h)
			e := h.entry(t, id)
			// The reason is needs_deploy, or updated when the second
			// instance.updated landed after the fetch's write: both stale.
			if !e.Stale || value(e, key) != v0 || e.DeployedVersion != before.DeployedVersion ||
				(e.StaleReason != cache.StaleNeedsDeploy && e.StaleReason != cache.StaleUpdated) {
				t.Fatalf("entry stale %v (%s) %s=%q v%d; want stale holding %q v%d",
					e.Stale, e.StaleReason, key, value(e, key), e.DeployedVersion, v0, before.DeployedVersion)
			}
		})
	})
}

func TestEventDeleteThenLateDeploy(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		h := startE2E(t, b, e2eOptions{})
		in := customerInstances(h, "globex-002")[0]
		id := in.ID
		e := mustCached(t, h, id)
		keys := h.store.Keys()

		delivered(t, "Delete")(h.sim.Delete(id))
		if !notCached(t, h, id) {
			t.Fatal("the entry survived instance.deleted")
		}
		tombstoned := func() {
			t.Helper()
			if ttl := b.Client.PTTL(ctx, keys.Tombstone(id)).Val(); ttl <= 0 {
				t.Fatalf("tombstone TTL %v, want a tombstone that expires", ttl)
			}
		}
		tombstoned()
		if b.Client.SIsMember(ctx, keys.Customer(in.CustomerExternalID), id).Val() ||
			b.Client.SIsMember(ctx, keys.CustomerIntegration(in.CustomerExternalID, in.IntegrationName), id).Val() {
			t.Error("the customer index still lists the deleted instance")
		}
		for k, cv := range e.Doc.Config {
			if cv.ID != "" && b.Client.Exists(ctx, keys.ConfigVariable(cv.ID)).Val() != 0 {
				t.Errorf("the config variable index still has %s", k)
			}
		}

		// A late instance.deployed, from before the delete: it is queued
		// like any deploy (one script, no read), and its fetch finds the
		// instance gone and writes nothing.
		n := fetches(h, id)
		late := instancePayload(t, webhook.InstanceDeployed, id, in.Name, e.Doc.LastDeployedAt.Add(time.Second))
		if status, ans := sendWebhook(t, h, webhook.InstanceDeployed, late); status != http.StatusOK || ans["status"] != "accepted" {
			t.Fatalf("late instance.deployed: %d %v; want 200 accepted", status, ans)
		}
		waitIdle(t, h)
		if !notCached(t, h, id) || fetches(h, id) > n+1 {
			t.Fatalf("a late deploy brought the instance back (fetches %d → %d)", n, fetches(h, id))
		}
		tombstoned()

		// A fetch in flight when the delete arrives writes nothing either.
		other := customerInstances(h, "initech-003")[0].ID
		if err := h.sim.SetFaults(prismaticsim.Faults{Latency: 300 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		api := h.sim.Stats().APIRequests
		delivered(t, "Deploy")(h.sim.Deploy(other))
		h.waitFor(t, "the fetch to start", func() bool { return h.sim.Stats().APIRequests > api })
		delivered(t, "Delete")(h.sim.Delete(other))
		waitIdle(t, h)
		if !notCached(t, h, other) || b.Client.Exists(ctx, keys.Tombstone(other)).Val() != 1 {
			t.Fatal("a fetch in flight during the delete brought the instance back")
		}
	})
}

// connectionStatus is the status of the connection variable backed by the
// customer connection ccv in the instance's entry.
func connectionStatus(e cache.Entry, ccv string) (key, status string) {
	if e.Doc == nil {
		return "", ""
	}
	for k, cv := range e.Doc.Config {
		if cv.CustomerConfigVariableID == ccv {
			return k, cv.Status
		}
	}
	return "", ""
}

func TestEventSharedConnectionFailure(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		for _, shape := range []prismaticsim.PayloadShape{
			prismaticsim.ShapeWithInstance, prismaticsim.ShapeConnectionOnly, prismaticsim.ShapeCustomerConnection,
		} {
			t.Run(string(shape), func(t *testing.T) {
				h := startE2E(t, b.Fresh(t), e2eOptions{})
				if err := h.sim.SetPayloadShape(shape); err != nil {
					t.Fatal(err)
				}
				cc := h.sim.CustomerConnections()[0]
				if len(cc.InstanceIDs) < 2 {
					t.Fatalf("customer connection %s is used by %v; want a shared one", cc.ID, cc.InstanceIDs)
				}
				users := map[string]bool{}
				revs := map[string]int64{}
				for _, in := range h.sim.Instances() {
					revs[in.ID] = h.entry(t, in.ID).Rev
				}
				keyOf := map[string]string{}
				for _, id := range cc.InstanceIDs {
					users[id] = true
					key, status := connectionStatus(h.entry(t, id), cc.ID)
					if key == "" || status != "ACTIVE" {
						t.Fatalf("instance %s: connection %q status %q before the failure", id, key, status)
					}
					keyOf[id] = key
				}

				first, second := cc.InstanceIDs[0], cc.InstanceIDs[1]
				res := delivered(t, "BreakConnection")(h.sim.BreakConnection(first, keyOf[first]))
				t.Logf("%s: %d webhooks", shape, len(res.Webhooks))
				h.waitFor(t, "every instance using the connection to show ERROR", func() bool {
					for id := range users {
						if _, status := connectionStatus(h.entry(t, id), cc.ID); status != "ERROR" {
							return false
						}
					}
					return idle(t, h)
				})
				for id := range users {
					if e := h.entry(t, id); e.Stale {
						t.Errorf("instance %s turned stale (%s): a connection change needs no deploy", id, e.StaleReason)
					}
				}
				for _, in := range h.sim.Instances() {
					if !users[in.ID] && h.entry(t, in.ID).Rev != revs[in.ID] {
						t.Errorf("instance %s does not use the connection but was rewritten", in.ID)
					}
				}

				// Reconnecting (connection.updated) makes them all ACTIVE again,
				// with the refresh times Prismatic has.
				delivered(t, "ReconnectConnection")(h.sim.ReconnectConnection(second, keyOf[second]))
				var now prismaticsim.CustomerConnection
				for _, c := range h.sim.CustomerConnections() {
					if c.ID == cc.ID {
						now = c
					}
				}
				h.waitFor(t, "every instance using the connection to show ACTIVE", func() bool {
					for id := range users {
						e := h.entry(t, id)
						key, status := connectionStatus(e, cc.ID)
						if status != "ACTIVE" {
							return false
						}
						at := e.Doc.Config[key].LastSuccessfulRefreshAt
						if at == nil || !at.Equal(now.LastRefreshAt) {
							return false
						}
					}
					return idle(t, h)
				})
			})
		}
	})
}

// TestEventConnectionWhileUndeployed: a credential event on an instance
// with undeployed changes updates only its connections; the plain values
// stay the deployed ones.
func TestEventConnectionWhileUndeployed(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		h := startE2E(t, b, e2eOptions{})
		id := h.sim.DemoInstanceID()
		key, old, next := plainVar(t, h.sim, id)
		before := h.entry(t, id)
		delivered(t, "SetConfig")(h.sim.SetConfig(id, key, next))
		n := fetches(h, id)
		delivered(t, "BreakConnection")(h.sim.BreakConnection(id, "salesforceConnection"))
		h.waitFor(t, "the connection status", func() bool {
			e := h.entry(t, id)
			return idle(t, h) && e.Doc.Config["salesforceConnection"].Status == "ERROR"
		})
		e := h.entry(t, id)
		if fetches(h, id) == n {
			t.Error("the credential event fetched nothing")
		}
		if value(e, key) != old || !e.Stale || e.StaleReason != cache.StaleNeedsDeploy || e.DeployedVersion != before.DeployedVersion {
			t.Fatalf("entry %s=%q stale %v (%s) v%d; want the deployed %q, stale needs_deploy, v%d",
				key, value(e, key), e.Stale, e.StaleReason, e.DeployedVersion, old, before.DeployedVersion)
		}
		if !strings.Contains(h.b.Client.HGet(context.Background(), h.store.Keys().Instance(id), "doc").Val(), `"ERROR"`) {
			t.Error("the raw doc does not show the new status")
		}
	})
}

func TestEventEnableDisable(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		h := startE2E(t, b, e2eOptions{})
		id := h.sim.DemoInstanceID()
		in := summary(t, h, id)
		n := fetches(h, id)
		before := h.entry(t, id)
		if !before.Enabled || !before.Doc.Enabled {
			t.Fatal("the demo instance starts disabled")
		}

		delivered(t, "Disable")(h.sim.Disable(id))
		off := h.entry(t, id)
		if off.Enabled || off.Doc.Enabled || off.Rev != before.Rev+1 || off.Stale {
			t.Fatalf("after instance.disabled: enabled %v/%v rev %d stale %v; want disabled in place, rev %d",
				off.Enabled, off.Doc.Enabled, off.Rev, off.Stale, before.Rev+1)
		}
		raw := h.b.Client.HGet(context.Background(), h.store.Keys().Instance(id), cache.FieldEnabled).Val()
		if raw != "0" {
			t.Fatalf("enabled field %q, want 0", raw)
		}

		// A late instance.enabled, from before the disable, is dropped.
		late := instancePayload(t, webhook.InstanceEnabled, id, in.Name, off.EnabledEventAt.Add(-time.Millisecond))
		if status, ans := sendWebhook(t, h, webhook.InstanceEnabled, late); status != http.StatusOK || ans["detail"] != webhook.SkipOlderThanToggle {
			t.Fatalf("late instance.enabled: %d %v", status, ans)
		}
		if e := h.entry(t, id); e.Enabled || e.Rev != off.Rev {
			t.Fatal("a late instance.enabled re-enabled the entry")
		}

		delivered(t, "Enable")(h.sim.Enable(id))
		on := h.entry(t, id)
		if !on.Enabled || !on.Doc.Enabled || on.Rev != off.Rev+1 {
			t.Fatalf("after instance.enabled: enabled %v/%v rev %d", on.Enabled, on.Doc.Enabled, on.Rev)
		}
		if !idle(t, h) || fetches(h, id) != n {
			t.Fatalf("enable/disable fetched the instance (%d → %d fetches)", n, fetches(h, id))
		}
		if value(on, "batchSize") != value(before, "batchSize") || on.DeployedVersion != before.DeployedVersion {
			t.Fatal("enable/disable changed the config")
		}
	})
}

func TestEventCreatedAndTestWebhook(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		h := startE2E(t, b, e2eOptions{})
		before := e2eSnapshot(t, h)
		res := delivered(t, "CreateInstance")(h.sim.CreateInstance(prismaticsim.NewInstance{
			Customer: "globex-002", Integration: "Slack Alerts", Name: "Globex - Ops alerts",
		}))
		id := res.Instance.ID
		if res.Webhooks[0].Type != webhook.InstanceCreated {
			t.Fatalf("CreateInstance sent %s", res.Webhooks[0].Type)
		}
		if rec := h.sim.SendTestWebhook(); rec.Status != http.StatusOK {
			t.Fatalf("webhook.test answered %d (%s)", rec.Status, rec.Error)
		}
		if !idle(t, h) || fetches(h, id) != 0 || !notCached(t, h, id) {
			t.Fatal("instance.created fetched or cached the instance")
		}
		mustSameKeys(t, "instance.created and webhook.test", before, e2eSnapshot(t, h))

		// Once deployed it is cached like any other.
		delivered(t, "Deploy")(h.sim.Deploy(id))
		h.waitFor(t, "the new instance to be cached", func() bool { return idle(t, h) && !notCached(t, h, id) })
		if e := h.entry(t, id); e.Stale || e.DeployedVersion != 1 || e.Doc.Customer.ExternalID != "globex-002" {
			t.Fatalf("new instance cached as %+v", e)
		}
	})
}

func TestEventCustomerUpdatedAndDeleted(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		h := startE2E(t, b, e2eOptions{})
		acme := customerInstances(h, "acme-001")
		globex := customerInstances(h, "globex-002")
		if len(acme) != 3 || len(globex) != 3 {
			t.Fatalf("acme has %d instances, globex %d; want 3 each", len(acme), len(globex))
		}
		revs := map[string]int64{}
		for _, in := range append(append([]prismaticsim.InstanceSummary(nil), acme...), globex...) {
			revs[in.ID] = mustCached(t, h, in.ID).Rev
		}
		// A change the daemon is not told of (its webhook lost): one of
		// acme's own connections breaks.
		if err := h.sim.SetFaults(prismaticsim.Faults{WebhookDropRate: 1}); err != nil {
			t.Fatal(err)
		}
		broken := ""
		for _, in := range acme {
			if _, err := h.sim.BreakConnection(in.ID, "hubspotConnection"); err == nil {
				broken = in.ID
			}
		}
		if broken == "" {
			t.Fatal("no acme instance has a hubspotConnection to break")
		}
		if err := h.sim.SetFaults(prismaticsim.Faults{}); err != nil {
			t.Fatal(err)
		}
		h.sim.ResetStats()

		// customer.updated re-reads that customer's instances, and no
		// other: in pages that carry their documents, so the one that
		// changed is written and the others are left as they are.
		status, ans := sendWebhook(t, h, webhook.CustomerUpdated, customerPayload(t, webhook.CustomerUpdated, acme[0], time.Now()))
		if status != http.StatusOK || ans["action"] != string(webhook.ActionCustomerRefresh) {
			t.Fatalf("customer.updated: %d %v", status, ans)
		}
		h.waitFor(t, "the broken connection to show", func() bool {
			return mustCached(t, h, broken).Doc.Config["hubspotConnection"].Status == "ERROR" && idle(t, h)
		})
		for id, rev := range revs {
			if e := mustCached(t, h, id); id != broken && e.Rev != rev {
				t.Errorf("customer.updated rewrote %s, which did not change (rev %d → %d)", id, rev, e.Rev)
			}
		}
		if st := h.sim.Stats(); st.InstanceFetches != 0 || st.GraphQLRequestsByOperation["ListCustomerInstances"] != 1 {
			t.Errorf("customer.updated made %d instance fetches and %d listing requests; want none and one page",
				st.InstanceFetches, st.GraphQLRequestsByOperation["ListCustomerInstances"])
		}

		// customer.deleted drops that customer's entries, and no other.
		status, ans = sendWebhook(t, h, webhook.CustomerDeleted, customerPayload(t, webhook.CustomerDeleted, acme[0], time.Now()))
		if status != http.StatusOK || ans["status"] != "accepted" {
			t.Fatalf("customer.deleted: %d %v", status, ans)
		}
		h.waitFor(t, "the customer's instances to be removed", func() bool {
			for _, in := range acme {
				if !notCached(t, h, in.ID) {
					return false
				}
			}
			return true
		})
		for _, in := range acme {
			if !notCached(t, h, in.ID) || b.Client.Exists(ctx, h.store.Keys().Tombstone(in.ID)).Val() != 1 {
				t.Errorf("instance %s of the deleted customer is still cached, or has no tombstone", in.ID)
			}
		}
		if got, err := h.store.ByCustomer(ctx, "acme-001"); err != nil || len(got) != 0 {
			t.Errorf("lookup of the deleted customer: %d entries, %v", len(got), err)
		}
		if got, err := h.store.ByCustomer(ctx, "globex-002"); err != nil || len(got) != 3 {
			t.Errorf("lookup of another customer: %d entries, %v; want 3", len(got), err)
		}
	})
}

// feed collects the messages of the change feed.
type feed struct {
	mu   sync.Mutex
	msgs []string
}

func watchFeed(t *testing.T, h *harness) *feed {
	t.Helper()
	ctx := context.Background()
	sub := h.b.Client.Subscribe(ctx, h.store.Keys().Events())
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	f := &feed{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range sub.Channel() {
			f.mu.Lock()
			f.msgs = append(f.msgs, m.Payload)
			f.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = sub.Close(); <-done })
	return f
}

// of returns the messages about id, checking each has exactly id, change,
// deployed_version (except a delete's), rev, and on a refresh changed_keys.
func (f *feed) of(t *testing.T, id string) []cache.Message {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cache.Message
	for _, raw := range f.msgs {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal([]byte(raw), &fields); err != nil {
			t.Fatalf("change feed message %q is not a JSON object", raw)
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range fields {
				if !yield(k) {
					return
				}
			}
		})
		want := []string{"change", "deployed_version", "id", "rev"}
		switch string(fields["change"]) {
		case `"deleted"`:
			want = []string{"change", "id", "rev"}
		case `"refreshed"`:
			want = []string{"change", "changed_keys", "deployed_version", "id", "rev"}
		}
		if !slices.Equal(keys, want) {
			t.Fatalf("change feed message %s has members %v, want %v", raw, keys, want)
		}
		var m cache.Message
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatalf("change feed message %s: %v", raw, err)
		}
		if m.ID == id {
			out = append(out, m)
		}
	}
	return out
}

func TestEventChangeFeed(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		h := startE2E(t, b, e2eOptions{})
		f := watchFeed(t, h)
		id := h.sim.DemoInstanceID()
		key, _, next := plainVar(t, h.sim, id)
		steps := []struct {
			change cache.Change
			do     func() (prismaticsim.Result, error)
		}{
			{cache.ChangeStale, func() (prismaticsim.Result, error) { return h.sim.SetConfig(id, key, next) }},
			{cache.ChangeRefreshed, func() (prismaticsim.Result, error) { return h.sim.Deploy(id) }},
			{cache.ChangeEnabled, func() (prismaticsim.Result, error) { return h.sim.Disable(id) }},
			{cache.ChangeEnabled, func() (prismaticsim.Result, error) { return h.sim.Enable(id) }},
			{cache.ChangeRefreshed, func() (prismaticsim.Result, error) { return h.sim.RefreshConnection(id, "salesforceConnection") }},
			{cache.ChangeDeleted, func() (prismaticsim.Result, error) { return h.sim.Delete(id) }},
		}
		lastRev := h.entry(t, id).Rev
		for i, s := range steps {
			res, err := s.do()
			delivered(t, string(s.change))(res, err)
			h.waitFor(t, "a message for "+string(s.change), func() bool { return len(f.of(t, id)) > i && idle(t, h) })
			msgs := f.of(t, id)
			if len(msgs) != i+1 {
				t.Fatalf("after step %d: %d messages %+v", i, len(msgs), msgs)
			}
			m := msgs[i]
			if m.Change != s.change || m.Rev != lastRev+1 {
				t.Fatalf("step %d: message %+v; want change %s, rev %d", i, m, s.change, lastRev+1)
			}
			if s.change != cache.ChangeDeleted {
				if e := h.entry(t, id); e.Rev != m.Rev || e.DeployedVersion != m.DeployedVersion {
					t.Fatalf("step %d: message rev %d deployed_version %d, entry rev %d deployed_version %d",
						i, m.Rev, m.DeployedVersion, e.Rev, e.DeployedVersion)
				}
			}
			lastRev = m.Rev
		}
	})
}

func TestEventActionOverrides(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		h := startE2E(t, b, e2eOptions{configure: func(c *config.Config) {
			c.EventActions = "instance.updated=refetch,instance.deployed=ignore,instance.disabled=stale"
		}})
		id := h.sim.DemoInstanceID()
		key, old, next := plainVar(t, h.sim, id)
		before := h.entry(t, id)

		// instance.updated=refetch: the update is fetched; the API shows
		// needsDeploy, so the entry keeps the deployed value, stale.
		n := fetches(h, id)
		delivered(t, "SetConfig")(h.sim.SetConfig(id, key, next))
		h.waitFor(t, "the update to be fetched", func() bool { return fetches(h, id) > n && idle(t, h) })
		e := h.entry(t, id)
		if !e.Stale || e.StaleReason != cache.StaleNeedsDeploy || value(e, key) != old {
			t.Fatalf("after a refetched update: stale %v (%s) %s=%q", e.Stale, e.StaleReason, key, value(e, key))
		}

		// instance.deployed=ignore: the deploy does nothing.
		n = fetches(h, id)
		delivered(t, "Deploy")(h.sim.Deploy(id))
		if after := h.entry(t, id); !idle(t, h) || fetches(h, id) != n || after.Rev != e.Rev {
			t.Fatalf("an ignored deploy fetched (%d → %d) or wrote (rev %d → %d)", n, fetches(h, id), e.Rev, after.Rev)
		}

		// instance.disabled=stale: a stale mark, the flag untouched.
		delivered(t, "Disable")(h.sim.Disable(id))
		if after := h.entry(t, id); !after.Enabled || !after.Stale || after.Rev != e.Rev+1 {
			t.Fatalf("instance.disabled as stale: enabled %v stale %v rev %d", after.Enabled, after.Stale, after.Rev)
		}
		if before.DeployedVersion != h.entry(t, id).DeployedVersion {
			t.Fatal("the deployed version moved without a fetched deploy")
		}
	})
}

// TestEventSystemInstanceSurvivesResync: a system (test) instance is cached
// by its deploy webhook although the reconciler's listing leaves such
// instances out; a pass must not take it for deleted and tombstone it, while
// an instance Prismatic really lost is still removed.
func TestEventSystemInstanceSurvivesResync(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		h := startE2E(t, b, e2eOptions{configure: withAdmin})
		var sys string
		for _, in := range h.sim.Instances() {
			if in.IsSystem {
				sys = in.ID
				break
			}
		}
		delivered(t, "Deploy")(h.sim.Deploy(sys))
		h.waitFor(t, "the system instance to be cached", func() bool { return idle(t, h) && !notCached(t, h, sys) })

		// Lost without a webhook: deleted in Prismatic while none is sent.
		lost := customerInstances(h, "globex-002")[0].ID
		h.sim.SetWebhookTarget("", "")
		if _, err := h.sim.Delete(lost); err != nil {
			t.Fatal(err)
		}
		h.sim.SetWebhookTarget(h.app.URL()+"/webhooks/prismatic", secret)

		synced, err := h.store.SyncedAt(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if status, out := admin(t, h, http.MethodPost, "/v1/resync"); status != http.StatusAccepted {
			t.Fatalf("resync: %d %v", status, out)
		}
		h.waitFor(t, "the pass to finish", func() bool {
			at, err := h.store.SyncedAt(ctx)
			return err == nil && at.After(synced) && idle(t, h)
		})
		if !notCached(t, h, lost) || b.Client.Exists(ctx, h.store.Keys().Tombstone(lost)).Val() != 1 {
			t.Error("the pass kept an instance Prismatic no longer has")
		}
		if notCached(t, h, sys) || b.Client.Exists(ctx, h.store.Keys().Tombstone(sys)).Val() != 0 {
			t.Fatal("the pass removed (and tombstoned) a system instance Prismatic still has")
		}
		// Its next deploy is cached as before.
		delivered(t, "Deploy")(h.sim.Deploy(sys))
		truth, err := h.sim.Deployed(sys)
		if err != nil {
			t.Fatal(err)
		}
		h.waitFor(t, "the next deploy", func() bool {
			return idle(t, h) && !notCached(t, h, sys) && h.entry(t, sys).DeployedVersion == truth.DeployedVersion
		})
	})
}

// TestDeployTellsWhatChanged: deploying a change of one key publishes a
// refresh naming exactly that key, and the history keeps the revision with
// its old and new value.
func TestDeployTellsWhatChanged(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		h := start(t, b)
		f := watchFeed(t, h)
		id := h.sim.DemoInstanceID()
		key, old, next := plainVar(t, h.sim, id)
		before := h.entry(t, id)
		delivered(t, "change")(h.sim.SetConfig(id, key, next))
		delivered(t, "deploy")(h.sim.Deploy(id))
		var deployMsg *cache.Message
		h.waitFor(t, "the deploy's refresh on the feed", func() bool {
			for _, m := range f.of(t, id) {
				if m.Change == cache.ChangeRefreshed && m.Rev > before.Rev {
					deployMsg = &m
					return true
				}
			}
			return false
		})
		if !slices.Equal(deployMsg.ChangedKeys, []string{key}) {
			t.Fatalf("changed_keys %v, want exactly [%s]", deployMsg.ChangedKeys, key)
		}
		revs, err := h.store.History(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(revs) != 2 {
			t.Fatalf("%d revisions, want 2: the first sync's and the deploy's", len(revs))
		}
		c := revs[0].Changes
		if len(c) != 1 || c[0].Key != key || c[0].Old == nil || *c[0].Old != old || c[0].New == nil || *c[0].New != next {
			t.Fatalf("newest revision's changes %+v, want %s from %q to %q", c, key, old, next)
		}
		if revs[0].DeployedVersion <= revs[1].DeployedVersion {
			t.Fatalf("revisions not newest first: %d then %d", revs[0].DeployedVersion, revs[1].DeployedVersion)
		}
	})
}
