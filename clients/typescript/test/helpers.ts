// Test helpers: the Redis under test, a stand-in writer that follows the
// contract (one transaction writes the hash and publishes its message, rev
// bumped by one), conditions with deadlines, and key cleanup.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import net from "node:net";
import type { TestContext } from "node:test";
import { createClient } from "redis";
import type { Doc, RedisClient } from "@prismcache/reader";

export const inCI = process.env["CI"] === "true";

/**
 * Skips the test on a developer machine when a requirement is missing, and
 * fails it under CI=true, where everything must run.
 */
export function missing(t: TestContext, what: string): void {
  if (inCI) assert.fail(`${what} (CI=true: every test must run)`);
  t.skip(what);
}

/** REDIS_URL, or undefined after skipping (or failing, under CI) the test. */
export function redisUrl(t: TestContext): string | undefined {
  const url = process.env["REDIS_URL"];
  if (!url) missing(t, "REDIS_URL is not set (e.g. REDIS_URL=redis://127.0.0.1:6379/0)");
  return url || undefined;
}

/** Whether a program is on PATH. */
export function have(program: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const deferred = new WeakMap<TestContext, Array<() => unknown>>();

/** Runs fn after the test, last deferred first (node's own after hooks run first-in, first-out). */
export function defer(t: TestContext, fn: () => unknown): void {
  let list = deferred.get(t);
  if (!list) {
    const l: Array<() => unknown> = [];
    deferred.set(t, (list = l));
    t.after(async () => {
      let first: unknown;
      for (const f of l.reverse()) {
        try {
          await f();
        } catch (err) {
          first ??= err;
        }
      }
      if (first) throw first;
    });
  }
  list.push(fn);
}

/** A connected client of the Redis under test, closed after the test. */
export async function connect(t: TestContext, url: string): Promise<RedisClient> {
  const c = createClient({ url }) as RedisClient;
  c.on("error", () => {});
  await c.connect();
  defer(t, () => {
    if (c.isOpen) c.destroy();
  });
  return c;
}

/**
 * A key prefix of this test's own; every key under it is deleted after the
 * test, once the cleanups deferred after this call have run.
 */
export function testPrefix(t: TestContext, admin: RedisClient): string {
  const prefix = `prismcache-ts-test:${randomBytes(6).toString("hex")}:`;
  defer(t, () => deleteKeys(admin, prefix));
  return prefix;
}

/** Deletes every key that starts with prefix; fails if any is left. */
export async function deleteKeys(c: RedisClient, prefix: string): Promise<void> {
  const pattern = prefix.replace(/[*?[\]\\]/g, (ch) => `\\${ch}`) + "*";
  for (let round = 0; round < 3; round++) {
    const keys: string[] = [];
    for await (const batch of c.scanIterator({ MATCH: pattern, COUNT: 500 })) keys.push(...(batch as string[]));
    if (keys.length === 0) return;
    for (let i = 0; i < keys.length; i += 500) await c.del(keys.slice(i, i + 500));
  }
  const left: string[] = [];
  for await (const batch of c.scanIterator({ MATCH: pattern, COUNT: 500 })) left.push(...(batch as string[]));
  assert.deepEqual(left, [], `keys left under ${prefix}`);
}

/** Waits until cond() is truthy; fails after timeoutMs with a message naming what was awaited. */
export async function waitFor<T>(what: string, cond: () => T | Promise<T>, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`);
    await sleep(10);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A TCP port free on 127.0.0.1 now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A document shaped as the daemon writes it. */
export function makeDoc(id: string, opts: { externalId?: string; integration?: string; config?: Record<string, { value: string | null; type?: string; status?: string }> } = {}): Doc {
  const config: Record<string, { value: string | null; type: string; status?: string }> = {};
  for (const [k, v] of Object.entries(opts.config ?? { syncFrequency: { value: "15m" } })) {
    config[k] = { type: "STRING", ...v };
  }
  return {
    id,
    name: `instance ${id}`,
    enabled: true,
    needsDeploy: false,
    deployedVersion: 1,
    lastDeployedAt: "2026-11-20T10:06:30.555555Z",
    customer: { id: "Q3VzdG9tZXI6MQ==", externalId: opts.externalId ?? "acme-001", name: "Acme Corp" },
    integration: { id: "SW50ZWdyYXRpb246MQ==", name: opts.integration ?? "Salesforce Sync", versionNumber: 4 },
    config,
  };
}

/** Writes as the daemon does, without its guards: the test is the only writer under its prefix. */
export class FakeDaemon {
  constructor(
    readonly c: RedisClient,
    readonly prefix: string,
  ) {}

  key(id: string): string {
    return `${this.prefix}instance:{${id}}`;
  }

  async rev(id: string): Promise<number> {
    return Number((await this.c.hGet(this.key(id), "rev")) ?? 0);
  }

  /**
   * Writes the entry and publishes its message in one transaction. changedKeys
   * undefined leaves the field out, as a daemon that predates it does.
   */
  async write(id: string, doc: Doc, o: { change?: string; changedKeys?: string[]; fields?: Record<string, string>; publish?: boolean } = {}): Promise<number> {
    const rev = (await this.rev(id)) + 1;
    const fields: Record<string, string> = {
      doc: JSON.stringify(doc),
      stale: "0",
      enabled: doc.enabled ? "1" : "0",
      deployed_version: String(doc.deployedVersion),
      fetched_at: "2026-11-20T10:06:31.123456789Z",
      rev: String(rev),
      ...o.fields,
    };
    const m = this.c.multi().hSet(this.key(id), fields);
    if (o.publish !== false) {
      const msg: Record<string, unknown> = { id, change: o.change ?? "refreshed", deployed_version: doc.deployedVersion };
      if (o.changedKeys) msg["changed_keys"] = o.changedKeys;
      msg["rev"] = rev;
      m.publish(`${this.prefix}events`, JSON.stringify(msg));
    }
    await m.exec();
    return rev;
  }

  /** Changes fields without a message, as a write whose message was lost would. */
  async silently(id: string, fields: Record<string, string>): Promise<void> {
    await this.c.hSet(this.key(id), fields);
  }

  async delete(id: string): Promise<void> {
    const rev = (await this.rev(id)) + 1;
    await this.c.multi().del(this.key(id)).publish(`${this.prefix}events`, JSON.stringify({ id, change: "deleted", rev })).exec();
  }

  async index(externalId: string, integration: string | undefined, ...ids: string[]): Promise<void> {
    const key = integration === undefined ? `${this.prefix}customer:{${externalId}}` : `${this.prefix}customer:{${externalId}}:integration:${integration}`;
    await this.c.sAdd(key, ids);
  }

  async publishRaw(payload: string): Promise<void> {
    await this.c.publish(`${this.prefix}events`, payload);
  }
}

/** The id of the connection with this CLIENT SETNAME, or undefined. */
export async function clientIdByName(c: RedisClient, name: string): Promise<string | undefined> {
  const list = String(await c.sendCommand(["CLIENT", "LIST", "TYPE", "pubsub"]));
  for (const line of list.split("\n")) {
    const f = Object.fromEntries(line.trim().split(" ").map((kv) => kv.split("=", 2) as [string, string]));
    if (f["name"] === name) return f["id"];
  }
  return undefined;
}

/** Kills the subscription connection named name, as a network failure would end it. */
export async function killSubscriber(c: RedisClient, name: string): Promise<void> {
  const id = await waitFor(`a pub/sub connection named ${name}`, () => clientIdByName(c, name));
  await c.sendCommand(["CLIENT", "KILL", "ID", id]);
}

/**
 * Wraps a client so that HGETALL waits at a gate the test opens — before the
 * command is sent (hold("send")) or after its reply came (hold("reply")) —
 * and counts them. Everything else goes to the real client.
 */
export function gated(real: RedisClient): {
  client: RedisClient;
  reads: () => number;
  hold: (where: "send" | "reply") => void;
  release: () => void;
} {
  let reads = 0;
  let gate: { where: "send" | "reply"; open: Promise<void> } | undefined;
  let open: (() => void) | undefined;
  const client = new Proxy(real, {
    get(target, p) {
      if (p === "hGetAll") {
        return async (key: string) => {
          reads++;
          const g = gate;
          if (g?.where === "send") await g.open;
          const r = await target.hGetAll(key);
          if (g?.where === "reply") await g.open;
          return r;
        };
      }
      const v = Reflect.get(target, p, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return {
    client,
    reads: () => reads,
    hold: (where) => {
      gate = { where, open: new Promise((r) => (open = r)) };
    },
    release: () => {
      gate = undefined;
      open?.();
    },
  };
}
