// The Reader against the real daemon: `prismcache serve` fed by
// `prismcache sim`, writing to the Redis under test under a prefix of the
// test's own.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Reader, parseMessage, type ChangeEvent, type FeedMessage, type WatchEvent } from "@prismcache/reader";
import { connect, defer, redisUrl, testPrefix, waitFor } from "./helpers.js";
import { admin, daemonBinary, startStack } from "./procs.js";

test("against the daemon: get, lookups, and a watch told which key a deploy changed", { timeout: 240_000 }, async (t) => {
  const url = redisUrl(t);
  if (!url) return;
  const bin = await daemonBinary(t);
  if (!bin) return;
  const c = await connect(t, url);
  const prefix = testPrefix(t, c);

  // The feed as it is, to see what the daemon itself sends.
  const feed: FeedMessage[] = [];
  const sub = c.duplicate();
  sub.on("error", () => {});
  await sub.connect();
  defer(t, () => sub.destroy());
  await sub.subscribe(`${prefix}events`, (m: string) => {
    const p = parseMessage(m);
    assert.ok(p, `the daemon sent an unreadable message: ${m}`);
    feed.push(p);
  });

  const stack = await startStack(t, bin, url, prefix);
  const demo = (await admin(stack.sim, "GET", "/demo")) as { instanceId: string; customerExternalId: string; integration: string };
  const reader = new Reader({ client: c, prefix });
  defer(t, () => reader.close());
  await reader.subscribed(10_000);

  // The entry the daemon wrote, typed.
  const e = await waitFor("the demo instance to be cached", () => reader.get(demo.instanceId), 60_000);
  assert.equal(e.id, demo.instanceId);
  assert.equal(e.doc.id, demo.instanceId);
  assert.equal(e.doc.customer.externalId, "acme-001");
  assert.equal(e.doc.integration.name, "Salesforce Sync");
  assert.equal(e.stale, false);
  assert.equal(e.enabled, true);
  assert.ok(e.rev >= 1);
  assert.equal(e.deployedVersion, e.doc.deployedVersion);
  assert.deepEqual(Object.keys(e.doc.config).sort(), ["batchSize", "fieldMapping", "salesforceConnection", "slackConnection", "syncContacts", "syncFrequency"]);
  assert.equal(e.doc.config["salesforceConnection"]?.type, "CONNECTION");
  assert.equal(e.doc.config["salesforceConnection"]?.value, null, "connection inputs are never cached");
  assert.equal(e.doc.config["salesforceConnection"]?.status, "ACTIVE");
  assert.equal(e.doc.config["batchSize"]?.type, "NUMBER");

  // Lookups through the daemon's index.
  const acme = await waitFor("acme's three instances", async () => {
    const all = await reader.byCustomer("acme-001");
    return all.length === 3 ? all : undefined;
  });
  assert.deepEqual(acme.map((x) => x.doc.integration.name).sort(), ["HubSpot Contacts", "Salesforce Sync", "Slack Alerts"]);
  assert.ok(acme.every((x) => x.doc.customer.externalId === "acme-001"));
  assert.deepEqual(
    (await reader.find("acme-001", "Salesforce Sync")).map((x) => x.id),
    [demo.instanceId],
  );
  assert.deepEqual(await reader.find("acme-001", "No Such Integration"), []);

  // Watch it; change one key and deploy.
  const events: WatchEvent[] = [];
  const h = reader.watch(demo.instanceId, (ev) => {
    events.push(ev);
  });
  defer(t, () => h.close());
  const initial = await waitFor("the watch's initial event", () => events[0]);
  assert.equal(initial.kind, "initial");
  const before = initial.entry!.doc.config["batchSize"]!.value!;
  const after = String(Number(before) + 17);
  assert.equal((await reader.get(demo.instanceId))?.doc.config["batchSize"]?.value, before);

  await admin(stack.sim, "PUT", `/instances/${demo.instanceId}/config/batchSize`, { value: after });
  const stale = (await waitFor("the stale change", () => events.find((ev) => ev.kind === "change" && ev.entry?.stale))) as ChangeEvent;
  assert.deepEqual(stale.changes, ["stale"]);
  assert.deepEqual(stale.keys, [], "a change that waits for a deploy changes no deployed key");
  assert.equal(stale.entry?.staleReason, "updated");
  assert.equal(stale.entry?.doc.config["batchSize"]?.value, before, "the running config is still the cached one");

  await admin(stack.sim, "POST", `/instances/${demo.instanceId}/deploy`);
  const deployed = (await waitFor("the deploy's change", () =>
    events.find((ev) => ev.kind === "change" && ev.entry?.doc.config["batchSize"]?.value === after),
  )) as ChangeEvent;
  assert.ok(deployed.changes.includes("refreshed"));
  assert.equal(deployed.entry?.stale, false);
  assert.equal(deployed.entry?.deployedVersion, e.deployedVersion + 1);
  const batch = deployed.keys.find((k) => k.key === "batchSize");
  assert.ok(batch, `batchSize among the changed keys: ${JSON.stringify(deployed.keys)}`);
  assert.equal(batch.from?.value, before);
  assert.equal(batch.to?.value, after);
  // Whichever way the keys were found, they are exactly the one deployed.
  assert.deepEqual(deployed.keys.map((k) => k.key), ["batchSize"]);
  // Memory follows: the deploy's message dropped the old copy.
  assert.equal((await reader.get(demo.instanceId))?.doc.config["batchSize"]?.value, after);

  // The feed's refreshed messages of the writes the change covers (usually one: the deploy's).
  const refreshes = feed.filter((m) => m.id === demo.instanceId && m.change === "refreshed" && m.rev! > stale.entry!.rev && m.rev! <= deployed.entry!.rev);
  assert.ok(refreshes.length >= 1, `the deploy's refreshed message on the feed: ${JSON.stringify(feed.filter((m) => m.id === demo.instanceId))}`);

  await t.test("changed_keys: the feed and the watch name exactly the deployed key", () => {
    assert.ok(
      refreshes.every((m) => m.changedKeys !== undefined),
      `every refreshed message carries changed_keys: ${JSON.stringify(refreshes)}`,
    );
    assert.ok(
      refreshes.some((m) => JSON.stringify(m.changedKeys) === JSON.stringify(["batchSize"])),
      `a refreshed message with "changed_keys": ["batchSize"]: ${JSON.stringify(refreshes)}`,
    );
    assert.deepEqual([...new Set(refreshes.flatMap((m) => m.changedKeys!))], ["batchSize"]);
    assert.equal(deployed.keysFrom, "feed");
    assert.deepEqual(deployed.keys.map((k) => k.key), ["batchSize"]);
  });
});
