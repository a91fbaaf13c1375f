// npm run bench (REDIS_URL required): what a read costs from memory and from
// Redis, and how long a write takes to reach a watch. Figures, not
// assertions; keys under a prefix of its own, deleted at the end.

import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { createClient } from "redis";
import { Reader, type RedisClient } from "@prismcache/reader";
import { FakeDaemon, deleteKeys, makeDoc } from "./helpers.js";

const url = process.env["REDIS_URL"];
if (!url) {
  console.error("set REDIS_URL, e.g. REDIS_URL=redis://127.0.0.1:6379/0");
  process.exit(2);
}
const c = createClient({ url }) as RedisClient;
await c.connect();
const prefix = `prismcache-ts-bench:${randomBytes(6).toString("hex")}:`;
const daemon = new FakeDaemon(c, prefix);
const reader = await Reader.create({ client: c, prefix });
const config = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`key${i}`, { value: `value ${i}` }]));
const ids = Array.from({ length: 2000 }, (_, i) => `bench-${i}`);
try {
  for (const id of ids) await daemon.write(id, makeDoc(id, { config }), { publish: false });

  // Misses: each id read once from Redis (one HGETALL and a JSON parse).
  let t0 = performance.now();
  for (const id of ids) await reader.get(id);
  const miss = ((performance.now() - t0) * 1000) / ids.length;

  // Hits: the same ids again and again, from memory.
  const rounds = 500;
  t0 = performance.now();
  for (let r = 0; r < rounds; r++) for (const id of ids) await reader.get(id);
  const hit = ((performance.now() - t0) * 1e6) / (rounds * ids.length);

  // A write's way to a watch: write + publish, message, one read, callback.
  const id = ids[0]!;
  const lat: number[] = [];
  let resolveNext: (() => void) | undefined;
  const h = reader.watch(id, (e) => {
    if (e.kind === "change") resolveNext?.();
  });
  await new Promise((r) => setTimeout(r, 100));
  for (let i = 0; i < 300; i++) {
    const seen = new Promise<void>((r) => (resolveNext = r));
    const start = performance.now();
    await daemon.write(id, makeDoc(id, { config: { ...config, key0: { value: `v${i}` } } }), { changedKeys: ["key0"] });
    await seen;
    lat.push(performance.now() - start);
  }
  h.close();
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!.toFixed(2);

  console.log(`node ${process.version}, ${ids.length} entries of 10 config keys`);
  console.log(`get, from memory: ${hit.toFixed(0)} ns/op`);
  console.log(`get, from Redis:  ${miss.toFixed(0)} µs/op`);
  console.log(`write → watch change event: median ${q(0.5)} ms, p99 ${q(0.99)} ms (${lat.length} writes)`);
} finally {
  await reader.close();
  await deleteKeys(c, prefix);
  c.destroy();
}
