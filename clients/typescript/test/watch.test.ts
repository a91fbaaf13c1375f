// watch against a real Redis, with a stand-in writer that follows the
// contract: key-by-key changes from changed_keys and the copy held, one
// read per change, and a resync after any gap.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test, type TestContext } from "node:test";
import { Reader, type ChangeEvent, type RedisClient, type WatchEvent } from "@prismcache/reader";
import { FakeDaemon, connect, defer, gated, killSubscriber, makeDoc, redisUrl, testPrefix, waitFor } from "./helpers.js";

interface Setup {
  daemon: FakeDaemon;
  admin: RedisClient;
  reader: Reader;
  name: string;
  g: ReturnType<typeof gated>;
}

async function setup(t: TestContext): Promise<Setup | undefined> {
  const url = redisUrl(t);
  if (!url) return undefined;
  const admin = await connect(t, url);
  const prefix = testPrefix(t, admin);
  const g = gated(await connect(t, url));
  const name = `prismcache-ts-test-${randomBytes(4).toString("hex")}`;
  const reader = new Reader({ client: g.client, prefix, subscriberName: name });
  defer(t, () => reader.close());
  await reader.subscribed(10_000);
  return { daemon: new FakeDaemon(admin, prefix), admin, reader, name, g };
}

/** Collects a watch's events; next() waits for the next one. */
function collect(t: TestContext, reader: Reader, id: string) {
  const events: WatchEvent[] = [];
  let taken = 0;
  const h = reader.watch(id, (e) => {
    events.push(e);
  });
  defer(t, () => h.close());
  return {
    events,
    handle: h,
    async next(): Promise<WatchEvent> {
      await waitFor(`event ${taken + 1} of the watch of ${id}`, () => events.length > taken);
      return events[taken++]!;
    },
    pending: () => events.length - taken,
  };
}

const newId = (): string => Buffer.from(`Instance:${randomBytes(8).toString("hex")}`).toString("base64");
const cfg = (batchSize: string, channel = "#ops", status = "ACTIVE") =>
  makeDoc("", {
    config: {
      batchSize: { value: batchSize, type: "NUMBER" },
      channel: { value: channel },
      salesforceConnection: { value: null, type: "CONNECTION", status },
    },
  });
const doc = (id: string, batchSize: string, channel?: string, status?: string) => ({ ...cfg(batchSize, channel, status), id });

function asChange(e: WatchEvent): ChangeEvent {
  assert.equal(e.kind, "change", `want a change event, got ${JSON.stringify(e)}`);
  return e as ChangeEvent;
}

test("watch: initial entry, then 'key K changed from A to B' from changed_keys, one read per change", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = newId();
  await s.daemon.write(id, doc(id, "100"));
  const w = collect(t, s.reader, id);
  const first = await w.next();
  assert.equal(first.kind, "initial");
  assert.equal(first.entry?.doc.config["batchSize"]?.value, "100");

  const reads = s.g.reads();
  await s.daemon.write(id, doc(id, "500"), { changedKeys: ["batchSize"] });
  const c = asChange(await w.next());
  assert.deepEqual(c.changes, ["refreshed"]);
  assert.equal(c.keysFrom, "feed");
  assert.deepEqual(
    c.keys.map((k) => [k.key, k.from?.value, k.to?.value]),
    [["batchSize", "100", "500"]],
  );
  assert.equal(c.previous?.rev, 1);
  assert.equal(c.entry?.rev, 2);
  assert.equal(s.g.reads() - reads, 1, "one read of the entry for one change");

  // A connection's status is a change too; [] says nothing changed.
  await s.daemon.write(id, doc(id, "500", "#ops", "ERROR"), { changedKeys: ["salesforceConnection"] });
  const conn = asChange(await w.next());
  assert.deepEqual(
    conn.keys.map((k) => [k.key, k.from?.status, k.to?.status]),
    [["salesforceConnection", "ACTIVE", "ERROR"]],
  );
  await s.daemon.write(id, doc(id, "500", "#ops", "ERROR"), { changedKeys: [] });
  const none = asChange(await w.next());
  assert.deepEqual(none.keys, []);
  assert.equal(none.keysFrom, "feed");
});

test("watch: a daemon without changed_keys — the keys come from comparing the copies", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = newId();
  await s.daemon.write(id, doc(id, "100", "#ops"));
  const w = collect(t, s.reader, id);
  assert.equal((await w.next()).kind, "initial");
  await s.daemon.write(id, doc(id, "200", "#alerts")); // no changed_keys
  const c = asChange(await w.next());
  assert.equal(c.keysFrom, "comparison");
  assert.deepEqual(
    c.keys.map((k) => [k.key, k.from?.value, k.to?.value]),
    [
      ["batchSize", "100", "200"],
      ["channel", "#ops", "#alerts"],
    ],
  );
});

test("watch: stale, enabled and deleted changes", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = newId();
  await s.daemon.write(id, doc(id, "100"));
  const w = collect(t, s.reader, id);
  assert.equal((await w.next()).kind, "initial");

  await s.daemon.write(id, doc(id, "100"), { change: "stale", fields: { stale: "1", stale_reason: "updated", stale_since: "2026-11-20T10:07:00Z" } });
  const st = asChange(await w.next());
  assert.deepEqual(st.changes, ["stale"]);
  assert.deepEqual(st.keys, []);
  assert.equal(st.entry?.stale, true);
  assert.equal(st.entry?.staleReason, "updated");

  await s.daemon.write(id, { ...doc(id, "100"), enabled: false }, { change: "enabled", fields: { stale: "1", stale_reason: "updated" } });
  const en = asChange(await w.next());
  assert.deepEqual(en.changes, ["enabled"]);
  assert.equal(en.previous?.enabled, true);
  assert.equal(en.entry?.enabled, false);

  await s.daemon.delete(id);
  const del = asChange(await w.next());
  assert.deepEqual(del.changes, ["deleted"]);
  assert.equal(del.entry, null);
  assert.deepEqual(
    del.keys.map((k) => [k.key, k.from?.value ?? null, k.to]),
    [
      ["batchSize", "100", undefined],
      ["channel", "#ops", undefined],
      ["salesforceConnection", null, undefined],
    ],
  );

  // Cached again (a new instance under the id): every key is new.
  await s.daemon.write(id, doc(id, "7"), { changedKeys: ["batchSize", "channel", "salesforceConnection"] });
  const again = asChange(await w.next());
  assert.equal(again.previous, null);
  assert.equal(again.entry?.rev, 1);
  assert.deepEqual(again.keys.map((k) => [k.key, k.from, k.to?.value ?? null]), [
    ["batchSize", undefined, "7"],
    ["channel", undefined, "#ops"],
    ["salesforceConnection", undefined, null],
  ]);
});

test("watch: writes that land before the read are told once, with every key, from one read", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = newId();
  await s.daemon.write(id, doc(id, "100", "#ops"));
  const w = collect(t, s.reader, id);
  assert.equal((await w.next()).kind, "initial");

  s.g.hold("send"); // the read made for the first message waits until both writes are in
  const reads = s.g.reads();
  await s.daemon.write(id, doc(id, "200", "#ops"), { changedKeys: ["batchSize"] });
  await waitFor("the read for the first message", () => s.g.reads() > reads);
  await s.daemon.write(id, doc(id, "200", "#alerts"), { changedKeys: ["channel"] });
  s.g.release();
  const c = asChange(await w.next());
  assert.deepEqual(c.changes, ["refreshed", "refreshed"]);
  assert.equal(c.keysFrom, "feed");
  assert.equal(c.previous?.rev, 1);
  assert.equal(c.entry?.rev, 3);
  assert.deepEqual(
    c.keys.map((k) => [k.key, k.from?.value, k.to?.value]),
    [
      ["batchSize", "100", "200"],
      ["channel", "#ops", "#alerts"],
    ],
  );
  // The first read saw rev 3 already, so the second message needed none.
  await s.daemon.write(id, doc(id, "300", "#alerts"), { changedKeys: ["batchSize"] });
  const c2 = asChange(await w.next());
  assert.deepEqual(c2.keys.map((k) => k.key), ["batchSize"]);
  assert.equal(s.g.reads() - reads, 2, "two reads for three writes");
  assert.equal(w.pending(), 0);
});

test("watch: after a lost subscription, a resync with the entry as it is now", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = newId();
  await s.daemon.write(id, doc(id, "100"));
  const w = collect(t, s.reader, id);
  assert.equal((await w.next()).kind, "initial");

  // A write whose message is lost, then the subscription drops.
  await s.daemon.write(id, doc(id, "250"), { publish: false });
  await killSubscriber(s.admin, s.name);
  const r = await w.next();
  assert.equal(r.kind, "resync");
  if (r.kind !== "resync") return;
  assert.equal(r.previous?.doc.config["batchSize"]?.value, "100");
  assert.equal(r.entry?.doc.config["batchSize"]?.value, "250");
  assert.deepEqual(r.keys.map((k) => k.key), ["batchSize"]);

  // The watch goes on on the new subscription.
  await s.daemon.write(id, doc(id, "300"), { changedKeys: ["batchSize"] });
  const c = asChange(await w.next());
  assert.deepEqual(c.keys.map((k) => [k.key, k.from?.value, k.to?.value]), [["batchSize", "250", "300"]]);
});

test("watch: an unreadable message on the feed is a gap too", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = newId();
  await s.daemon.write(id, doc(id, "100"));
  const w = collect(t, s.reader, id);
  assert.equal((await w.next()).kind, "initial");
  await s.daemon.publishRaw("{broken");
  const r = await w.next();
  assert.equal(r.kind, "resync");
});

test("watch: an instance not cached yet, and close", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = newId();
  const w = collect(t, s.reader, id);
  const first = await w.next();
  assert.equal(first.kind, "initial");
  assert.equal(first.entry, null);
  await s.daemon.write(id, doc(id, "1"), { changedKeys: ["batchSize", "channel", "salesforceConnection"] });
  const c = asChange(await w.next());
  assert.equal(c.previous, null);
  assert.equal(c.keys.length, 3);

  // Closed, it hears nothing more. A second watch opened after the close is
  // the witness: the message reaches it, and it would have reached the
  // first one at the same time.
  w.handle.close();
  const witness = collect(t, s.reader, id);
  assert.equal((await witness.next()).kind, "initial");
  await s.daemon.write(id, doc(id, "2"), { changedKeys: ["batchSize"] });
  assert.deepEqual(asChange(await witness.next()).keys.map((k) => k.key), ["batchSize"]);
  assert.equal(w.pending(), 0);
});
