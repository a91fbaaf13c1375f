// The Reader against a real Redis, with a stand-in writer that follows the
// contract: memory served only while it is verified, dropped by messages,
// by subscription loss and by unreadable messages; lookups checked against
// their entries.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test, type TestContext } from "node:test";
import { createClient } from "redis";
import { Reader, ReaderClosedError, UnavailableError, type ReaderOptions, type RedisClient } from "@prismcache/reader";
import { FakeDaemon, connect, defer, gated, killSubscriber, makeDoc, redisUrl, testPrefix, waitFor } from "./helpers.js";

interface Setup {
  /** Writes as the daemon does and waits until the reader got the message. */
  write: FakeDaemon["write"];
  admin: RedisClient;
  daemon: FakeDaemon;
  reader: Reader;
  prefix: string;
  name: string;
}

/** A reader under a prefix of the test's own, subscribed; undefined when the test was skipped. */
async function setup(t: TestContext, opts: Partial<ReaderOptions> = {}, wrap?: (c: RedisClient) => RedisClient): Promise<Setup | undefined> {
  const url = redisUrl(t);
  if (!url) return undefined;
  const admin = await connect(t, url);
  const prefix = testPrefix(t, admin);
  const client = await connect(t, url);
  const name = `prismcache-ts-test-${randomBytes(4).toString("hex")}`;
  const reader = new Reader({ client: wrap ? wrap(client) : client, prefix, subscriberName: name, ...opts });
  defer(t, () => reader.close());
  await reader.subscribed(10_000);
  const daemon = new FakeDaemon(admin, prefix);
  const write: FakeDaemon["write"] = async (...args) => {
    const before = reader.stats().invalidations;
    const rev = await daemon.write(...args);
    await waitFor("the write's message to reach the reader", () => reader.stats().invalidations > before);
    return rev;
  };
  return { write, admin, daemon, reader, prefix, name };
}

const id = (n: number): string => Buffer.from(`Instance:${n}-${randomBytes(4).toString("hex")}`).toString("base64");

test("get: from Redis, then from memory until a message drops it", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const a = id(1);
  assert.equal(await s.reader.get(a), null, "not cached yet");
  await s.daemon.write(a, makeDoc(a, { config: { batchSize: { value: "100", type: "NUMBER" } } }));
  // The message drops the remembered "not cached".
  const e1 = await waitFor("the entry to be read", () => s.reader.get(a));
  assert.equal(e1.doc.config["batchSize"]?.value, "100");
  assert.equal(e1.rev, 1);

  // A change Redis holds but no message announced: memory still answers.
  await s.daemon.silently(a, { doc: JSON.stringify(makeDoc(a, { config: { batchSize: { value: "999", type: "NUMBER" } } })) });
  const hits = s.reader.stats().hits;
  assert.equal((await s.reader.get(a))?.doc.config["batchSize"]?.value, "100", "served from memory");
  assert.equal(s.reader.stats().hits, hits + 1);

  // A write with its message: the next get reads Redis.
  await s.daemon.write(a, makeDoc(a, { config: { batchSize: { value: "500", type: "NUMBER" } } }), { changedKeys: ["batchSize"] });
  const e2 = await waitFor("the write to reach the reader", async () => {
    const e = await s.reader.get(a);
    return e?.doc.config["batchSize"]?.value === "500" ? e : undefined;
  });
  assert.equal(e2.rev, 2, "the silent change did not bump rev");
  assert.ok(s.reader.stats().invalidations >= 2);
});

test("get: a deleted instance is not cached any more", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const a = id(2);
  await s.daemon.write(a, makeDoc(a));
  await waitFor("the entry", () => s.reader.get(a));
  await s.daemon.delete(a);
  await waitFor("the delete to reach the reader", async () => (await s.reader.get(a)) === null);
});

test("a read that raced with a message for its id is returned but not kept", async (t) => {
  let g!: ReturnType<typeof gated>;
  const s = await setup(t, {}, (c) => (g = gated(c)).client);
  if (!s) return;
  const a = id(3);
  await s.daemon.write(a, makeDoc(a, { config: { k: { value: "old" } } }));
  await waitFor("the write's message", () => s.reader.stats().invalidations >= 1);

  g.hold("reply");
  const reads = g.reads();
  const slow = s.reader.get(a); // reads "old", then waits at the gate
  await waitFor("the read to be sent", () => g.reads() > reads);
  const inv = s.reader.stats().invalidations;
  await s.daemon.write(a, makeDoc(a, { config: { k: { value: "new" } } }), { changedKeys: ["k"] });
  await waitFor("the message of the new write", () => s.reader.stats().invalidations > inv);
  g.release();
  assert.equal((await slow)?.doc.config["k"]?.value, "old", "the caller gets what its read found");
  assert.equal((await s.reader.get(a))?.doc.config["k"]?.value, "new", "but memory did not keep it");
});

test("concurrent reads of one id share one Redis read", async (t) => {
  let g!: ReturnType<typeof gated>;
  const s = await setup(t, {}, (c) => (g = gated(c)).client);
  if (!s) return;
  const a = id(4);
  await s.daemon.write(a, makeDoc(a));
  await waitFor("the write's message", () => s.reader.stats().invalidations >= 1);
  g.hold("send");
  const before = g.reads();
  const all = Array.from({ length: 20 }, () => s.reader.get(a));
  await waitFor("the read to be sent", () => g.reads() > before);
  g.release();
  const got = await Promise.all(all);
  assert.equal(g.reads() - before, 1, "one HGETALL for twenty gets");
  assert.ok(got.every((e) => e !== null && e === got[0]));
});

test("a lost subscription drops memory; the Reader subscribes again", async (t) => {
  const flushes: Array<string | null> = [];
  const s = await setup(t, { onInvalidate: (x) => flushes.push(x) });
  if (!s) return;
  const a = id(5);
  await s.write(a, makeDoc(a, { config: { k: { value: "before" } } }));
  await waitFor("the entry", () => s.reader.get(a));
  assert.equal((await s.reader.get(a))?.doc.config["k"]?.value, "before");

  // Lost while the subscription is down: a write whose message nobody got.
  await s.daemon.silently(a, { doc: JSON.stringify(makeDoc(a, { config: { k: { value: "during the gap" } } })) });
  await killSubscriber(s.admin, s.name);
  await waitFor("the loss to be noticed", () => s.reader.stats().flushes.disconnected >= 1);
  await waitFor("a new subscription", () => s.reader.stats().subscribed && s.reader.stats().flushes.reconnected >= 1);
  assert.equal((await s.reader.get(a))?.doc.config["k"]?.value, "during the gap", "nothing from before the gap is served");
  assert.ok(flushes.includes(null), "onInvalidate(null) after a flush");
  assert.ok(s.reader.stats().subscribeErrors >= 1);

  // And the new subscription works: messages drop ids again.
  await s.daemon.write(a, makeDoc(a, { config: { k: { value: "after" } } }), { changedKeys: ["k"] });
  await waitFor("the write after the gap", async () => (await s.reader.get(a))?.doc.config["k"]?.value === "after");
});

test("an unreadable message drops everything", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const a = id(6);
  await s.write(a, makeDoc(a, { config: { k: { value: "1" } } }));
  await waitFor("the entry", () => s.reader.get(a));
  await s.daemon.silently(a, { doc: JSON.stringify(makeDoc(a, { config: { k: { value: "2" } } })) });
  assert.equal((await s.reader.get(a))?.doc.config["k"]?.value, "1");
  await s.daemon.publishRaw("this is not JSON");
  await waitFor("the flush", () => s.reader.stats().flushes.bad_message === 1);
  assert.equal((await s.reader.get(a))?.doc.config["k"]?.value, "2");
});

test("remembered 'not cached' ends with the message that caches the instance", async (t) => {
  const s = await setup(t, { negativeTtlMs: 600_000 });
  if (!s) return;
  const a = id(7);
  assert.equal(await s.reader.get(a), null);
  await s.daemon.silently(a, { doc: JSON.stringify(makeDoc(a)), rev: "1" });
  assert.equal(await s.reader.get(a), null, "remembered: no message said otherwise");
  await s.daemon.write(a, makeDoc(a));
  await waitFor("the message to end the negative entry", () => s.reader.get(a));
});

test("maxAgeMs bounds how long memory answers without messages", async (t) => {
  const s = await setup(t, { maxAgeMs: 200 });
  if (!s) return;
  const a = id(8);
  await s.daemon.write(a, makeDoc(a, { config: { k: { value: "1" } } }));
  await waitFor("the entry", () => s.reader.get(a));
  await s.daemon.silently(a, { doc: JSON.stringify(makeDoc(a, { config: { k: { value: "2" } } })) });
  await waitFor("the copy to age out", async () => (await s.reader.get(a))?.doc.config["k"]?.value === "2");
});

test("lookups check each index row against its entry", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const [a, b, moved, other, gone] = [id(10), id(11), id(12), id(13), id(14)];
  await s.daemon.write(a, makeDoc(a, { externalId: "acme-001", integration: "Salesforce Sync" }));
  await s.daemon.write(b, makeDoc(b, { externalId: "acme-001", integration: "Slack Alerts" }));
  // Left over in acme's rows: moved to another customer, another integration, deleted.
  await s.daemon.write(moved, makeDoc(moved, { externalId: "globex-002", integration: "Salesforce Sync" }));
  await s.daemon.write(other, makeDoc(other, { externalId: "acme-001", integration: "HubSpot Contacts" }));
  await s.daemon.index("acme-001", undefined, a, b, moved, other, gone);
  await s.daemon.index("acme-001", "Salesforce Sync", a, moved, other, gone);

  const all = await s.reader.byCustomer("acme-001");
  assert.deepEqual(all.map((e) => e.id), [a, b, other].sort());
  const sf = await s.reader.find("acme-001", "Salesforce Sync");
  assert.deepEqual(sf.map((e) => e.id), [a]);
  assert.deepEqual(await s.reader.byCustomer("nobody"), []);

  // The entries found are in memory now; a message still drops them.
  await s.daemon.write(a, makeDoc(a, { externalId: "globex-002" }));
  await waitFor("a's move to reach the lookup", async () => (await s.reader.byCustomer("acme-001")).every((e) => e.id !== a));
});

test("a disconnected client is unavailable, a closed reader is closed", async (t) => {
  const url = redisUrl(t);
  if (!url) return;
  const c = createClient({ url }) as RedisClient;
  c.on("error", () => {});
  const r = new Reader({ client: c, prefix: "prismcache-ts-test-never:" });
  defer(t, () => r.close());
  await assert.rejects(r.get("x"), UnavailableError);
  await assert.rejects(r.byCustomer("acme-001"), UnavailableError);
  await r.close();
  await assert.rejects(r.get("x"), ReaderClosedError);
  assert.throws(() => r.watch("x", () => {}), ReaderClosedError);
});

test("options are checked", () => {
  assert.throws(() => new Reader({}), /exactly one of client and sentinel/);
  const fake = { options: {}, isReady: false } as unknown as RedisClient;
  assert.throws(() => new Reader({ client: fake, size: 0 }), /size must be a positive number/);
  assert.throws(() => new Reader({ client: { options: { keyPrefix: "app:" } } as unknown as RedisClient }), /keyPrefix/);
  assert.throws(() => new Reader({ sentinel: { name: "", sentinels: [{ host: "127.0.0.1", port: 1 }] } }), /sentinel.name/);
});
