// Processes the tests start themselves: the daemon (built from this
// repository), its simulator, and redis-server for the Sentinel test.

import assert from "node:assert/strict";
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { TestContext } from "node:test";
import { defer, freePort, have, missing, waitFor } from "./helpers.js";

/** The repository root: clients/typescript/build-test/ is three levels below it. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/** A temporary directory removed after the test. */
export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), "prismcache-ts-test-"));
  defer(t, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let built: Promise<string> | undefined;
let buildDir: string | undefined;

/**
 * The daemon's binary, built once per test file with `go build` from the
 * repository root; undefined after skipping (or failing, under CI) the test
 * when there is no Go toolchain.
 */
export async function daemonBinary(t: TestContext): Promise<string | undefined> {
  if (!have("go")) {
    missing(t, "go is not installed: the daemon cannot be built");
    return undefined;
  }
  assert.ok(existsSync(path.join(repoRoot, "go.mod")), `no go.mod in ${repoRoot}`);
  if (!built) {
    buildDir = mkdtempSync(path.join(tmpdir(), "prismcache-ts-bin-"));
    process.once("exit", () => rmSync(buildDir!, { recursive: true, force: true }));
    const bin = path.join(buildDir, "prismcache");
    built = promisify(execFile)("go", ["build", "-o", bin, "./cmd/prismcache"], { cwd: repoRoot, maxBuffer: 16 << 20 }).then(() => bin);
  }
  return built;
}

/** A process of the test's own, its output in a log file; stopped after the test. */
export class Proc {
  readonly child: ChildProcess;
  #exited: Promise<number | null>;

  constructor(
    t: TestContext,
    readonly name: string,
    readonly log: string,
    cmd: string,
    args: string[],
    env: Record<string, string> = {},
  ) {
    const fd = openSync(log, "a");
    this.child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", fd, fd] });
    closeSync(fd);
    this.#exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
    defer(t, () => this.stop());
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM, then SIGKILL if it has not exited within 20 s. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGTERM");
    const t = setTimeout(() => this.child.kill("SIGKILL"), 20_000);
    await this.#exited;
    clearTimeout(t);
  }

  /** The last lines of its log, for a failure message. */
  tail(n = 30): string {
    try {
      return readFileSync(this.log, "utf8").trimEnd().split("\n").slice(-n).join("\n");
    } catch {
      return "";
    }
  }
}

export interface Stack {
  /** The simulator's base URL (admin API at /admin). */
  sim: string;
  daemon: Proc;
  simProc: Proc;
}

/**
 * Starts `prismcache sim` and `prismcache serve` on free ports, the daemon
 * writing to redisUrl under prefix; waits until the daemon is ready (its
 * first sync is done). Both are stopped after the test, before the keys are
 * deleted.
 */
export async function startStack(t: TestContext, bin: string, redisUrl: string, prefix: string): Promise<Stack> {
  const dir = tempDir(t);
  const [simPort, daemonPort] = [await freePort(), await freePort()];
  const secret = "prismcache-ts-test-secret";
  const sim = `http://127.0.0.1:${simPort}`;
  const simProc = new Proc(t, "sim", path.join(dir, "sim.log"), bin, [
    "sim",
    "--listen",
    `127.0.0.1:${simPort}`,
    "--webhook-url",
    `http://127.0.0.1:${daemonPort}/webhooks/prismatic`,
    "--webhook-secret",
    secret,
    "--log-level",
    "warn",
  ]);
  await waitFor("the simulator to answer", async () => (await fetch(`${sim}/admin/demo`)).ok);
  const daemon = new Proc(t, "serve", path.join(dir, "serve.log"), bin, ["serve"], {
    PRISMCACHE_LISTEN: `127.0.0.1:${daemonPort}`,
    PRISMCACHE_REDIS_URL: redisUrl,
    PRISMCACHE_REDIS_PREFIX: prefix,
    PRISMCACHE_WEBHOOK_SECRET: secret,
    PRISMATIC_URL: sim,
    PRISMATIC_TOKEN: "prismaticsim-access-token",
    PRISMCACHE_PRISMATIC_RATE: "200",
    PRISMCACHE_LOG_LEVEL: "warn",
  });
  try {
    await waitFor(
      "the daemon to be ready",
      async () => {
        assert.ok(daemon.running, `the daemon exited:\n${daemon.tail()}`);
        return (await fetch(`http://127.0.0.1:${daemonPort}/readyz`)).ok;
      },
      60_000,
    );
  } catch (err) {
    t.diagnostic(`daemon log:\n${daemon.tail()}`);
    throw err;
  }
  return { sim, daemon, simProc };
}

/** One call to the simulator's admin API; fails on an error status. */
export async function admin(sim: string, method: string, route: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${sim}/admin${route}`, {
    method,
    headers: { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} /admin${route}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** redis-server, for tests that need servers of their own; undefined after skipping (or failing, under CI). */
export function redisServer(t: TestContext): string | undefined {
  if (!have("redis-server")) {
    missing(t, "redis-server is not installed (Debian: apt-get install redis-server)");
    return undefined;
  }
  return "redis-server";
}
