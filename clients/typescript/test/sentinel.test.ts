// Sentinel failover, for real: a master, a replica and a Sentinel of the
// test's own; SENTINEL FAILOVER promotes the replica, and the Reader must
// drop its memory and its subscription and go on with the new master.

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { createClient } from "redis";
import { Reader, type ChangeEvent, type RedisClient, type WatchEvent } from "@prismcache/reader";
import { FakeDaemon, defer, freePort, makeDoc, waitFor } from "./helpers.js";
import { Proc, redisServer, tempDir } from "./procs.js";

/** A client of one server of the test's own; it reconnects (a failover kills client connections). */
async function client(t: TestContext, port: number, RESP?: 2): Promise<RedisClient> {
  const c = createClient({ socket: { host: "127.0.0.1", port, reconnectStrategy: 50 }, ...(RESP ? { RESP } : {}) }) as unknown as RedisClient;
  c.on("error", () => {});
  await c.connect();
  defer(t, () => {
    if (c.isOpen) c.destroy();
  });
  return c;
}

const doc = (id: string, v: string) => makeDoc(id, { config: { batchSize: { value: v, type: "NUMBER" } } });

test("Sentinel: on a failover the Reader drops its memory and follows the new master", { timeout: 120_000 }, async (t) => {
  const bin = redisServer(t);
  if (!bin) return;
  const dir = tempDir(t);
  const [pm, pr, ps] = [await freePort(), await freePort(), await freePort()];
  const server = (name: string, port: number, ...extra: string[]) =>
    new Proc(t, name, path.join(dir, `${name}.log`), bin, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--dbfilename", `${name}.rdb`, ...extra]);
  const master = server("master", pm);
  server("replica", pr, "--replicaof", "127.0.0.1", String(pm));
  const conf = path.join(dir, "sentinel.conf");
  writeFileSync(
    conf,
    [
      `port ${ps}`,
      "bind 127.0.0.1",
      `dir ${dir}`,
      `sentinel monitor mymaster 127.0.0.1 ${pm} 1`,
      "sentinel down-after-milliseconds mymaster 2000",
      "sentinel failover-timeout mymaster 10000",
      "",
    ].join("\n"),
  );
  new Proc(t, "sentinel", path.join(dir, "sentinel.log"), bin, [conf, "--sentinel"]);

  const m = await client(t, pm);
  const r = await client(t, pr);
  const s = await client(t, ps, 2);
  await waitFor("the replica to sync", async () => String(await r.sendCommand(["INFO", "replication"])).includes("master_link_status:up"));
  await waitFor("the Sentinel to know the replica", async () => {
    const reps = (await s.sendCommand(["SENTINEL", "REPLICAS", "mymaster"])) as unknown[][];
    return reps.some((rep) => {
      const f = new Map<string, string>();
      for (let i = 0; i + 1 < rep.length; i += 2) f.set(String(rep[i]), String(rep[i + 1]));
      return f.get("port") === String(pr) && f.get("flags") === "slave";
    });
  });

  const prefix = "prismcache-ts-test:sentinel:";
  const reader = new Reader({
    sentinel: { name: "mymaster", sentinels: [{ host: "127.0.0.1", port: ps }], masterOptions: { socket: { connectTimeout: 2000 } } },
    prefix,
    logger: process.env["DEBUG_READER"] ? { info: (m, f) => console.log(Date.now() % 100000, m, f), warn: (m, f) => console.log(Date.now() % 100000, m, f) } : undefined,
  });
  defer(t, () => reader.close());
  await reader.subscribed(15_000);

  const id = Buffer.from("Instance:sentinel-test").toString("base64");
  const onMaster = new FakeDaemon(m, prefix);
  const seen = reader.stats().invalidations;
  await onMaster.write(id, doc(id, "1"));
  await waitFor("the write's message", () => reader.stats().invalidations > seen);
  assert.equal((await reader.get(id))?.doc.config["batchSize"]?.value, "1");
  const events: WatchEvent[] = [];
  const h = reader.watch(id, (e) => {
    events.push(e);
  });
  defer(t, () => h.close());
  await waitFor("the watch's initial event", () => events.length === 1);

  // A change whose message is lost, replicated before the failover.
  await onMaster.silently(id, { doc: JSON.stringify(doc(id, "2")) });
  await m.sendCommand(["WAIT", "1", "5000"]);
  assert.equal((await reader.get(id))?.doc.config["batchSize"]?.value, "1", "memory answers while nothing says otherwise");

  await s.sendCommand(["SENTINEL", "FAILOVER", "mymaster"]);
  await waitFor("the Reader to see the new master", () => reader.stats().flushes.master_switch >= 1, 30_000);
  await waitFor("a subscription on the new master", () => reader.stats().subscribed);
  await waitFor("the replica to be master", async () => String(((await r.sendCommand(["ROLE"])) as unknown as unknown[])[0]) === "master");
  assert.equal((await reader.get(id))?.doc.config["batchSize"]?.value, "2", "memory from before the switch is gone");
  const resync = await waitFor("the watch's resync", () => events.find((e) => e.kind === "resync"));
  assert.equal(resync.kind === "resync" ? resync.entry?.doc.config["batchSize"]?.value : undefined, "2");

  // The old master goes away for good: reads and messages come from the new one.
  await master.stop();
  const onNew = new FakeDaemon(r, prefix);
  await onNew.write(id, doc(id, "3"), { changedKeys: ["batchSize"] });
  await waitFor("the new master's write to reach the Reader", async () => (await reader.get(id))?.doc.config["batchSize"]?.value === "3");
  const change = (await waitFor("the watch's change", () =>
    events.find((e) => e.kind === "change" && e.entry?.doc.config["batchSize"]?.value === "3"),
  )) as ChangeEvent;
  assert.deepEqual(
    change.keys.map((k) => [k.key, k.from?.value, k.to?.value]),
    [["batchSize", "2", "3"]],
  );
});
