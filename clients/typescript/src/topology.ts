// Where the Reader's connections go: one Redis server through the app's own
// client, or the master that a set of Sentinels names, followed across
// failovers.

import { createClient, type RedisClientOptions, type RedisClientType } from "redis";
import { UnavailableError } from "./errors.js";

/** Any node-redis client, whatever modules, scripts or RESP version it was made with. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type RedisClient = RedisClientType<any, any, any, any, any>;

/** Where the Reader finds Redis when it runs on Sentinel. */
export interface SentinelOptions {
  /** The master's name in the Sentinels' configuration (`sentinel monitor <name> …`). */
  readonly name: string;
  /** Sentinels to ask, tried in order; one answering is enough. */
  readonly sentinels: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  /**
   * node-redis options of the connections to the master (username, password,
   * database, `socket.tls`, timeouts…); `socket.host` and `socket.port` come
   * from the Sentinels, `url` is not allowed.
   */
  readonly masterOptions?: RedisClientOptions;
  /** node-redis options of the connections to the Sentinels (their own password, TLS…), as masterOptions. */
  readonly sentinelOptions?: RedisClientOptions;
}

/** Where to log; each method gets a message and a few fields. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** The Reader's connections. */
export interface Topology {
  /** A connected client to read entries with; throws UnavailableError when there is none. */
  data(): Promise<RedisClient>;
  /** A new client connected to the primary, that never reconnects by itself, for one subscription. */
  subscriber(name: string): Promise<RedisClient>;
  /** Starts watching for a change of primary; onSwitch is called after each. */
  start(onSwitch: (from: string, to: string) => void): void;
  close(): Promise<void>;
}

export type Address = { readonly host: string; readonly port: number };

const addrString = (a: Address): string => `${a.host}:${a.port}`;

/** One Redis server, through the app's client; subscriptions on duplicates of it. */
export class ClientTopology implements Topology {
  constructor(readonly client: RedisClient) {
    const o = client.options as RedisClientOptions | undefined;
    if (o?.keyPrefix !== undefined && o.keyPrefix !== "") {
      throw new TypeError("prismcache reader: the client has a keyPrefix; give one without it (the Reader's prefix option names the daemon's keys)");
    }
  }

  async data(): Promise<RedisClient> {
    if (!this.client.isReady) throw new UnavailableError("read", new Error("the redis client is not connected"));
    return this.client;
  }

  async subscriber(name: string): Promise<RedisClient> {
    const o = (this.client.options ?? {}) as RedisClientOptions;
    const sub = this.client.duplicate({
      name,
      socket: { ...(o.socket ?? {}), reconnectStrategy: false },
    } as RedisClientOptions) as RedisClient;
    return connectOnce(sub);
  }

  start(): void {}

  async close(): Promise<void> {}
}

/**
 * A master found through Sentinels. The Reader owns these connections: the
 * read client and each subscription go to the address the Sentinels name
 * now, are checked with ROLE, and are dropped when a Sentinel announces
 * `+switch-master` for the name (or, after a lost Sentinel connection, when
 * the name points elsewhere than before).
 */
export class SentinelTopology implements Topology {
  readonly #opts: SentinelOptions;
  readonly #log: Logger;
  #master: Address | undefined;
  #data: RedisClient | undefined;
  #dataConnecting: Promise<RedisClient> | undefined;
  #watch: RedisClient | undefined;
  #closed = false;
  #onSwitch: ((from: string, to: string) => void) | undefined;
  #wake: (() => void) | undefined;

  constructor(opts: SentinelOptions, log: Logger) {
    if (!opts.name) throw new TypeError("prismcache reader: sentinel.name is empty");
    if (opts.sentinels.length === 0) throw new TypeError("prismcache reader: sentinel.sentinels is empty");
    if (opts.masterOptions?.url !== undefined || opts.sentinelOptions?.url !== undefined) {
      throw new TypeError("prismcache reader: sentinel connections take no url: the Sentinels give the addresses");
    }
    this.#opts = opts;
    this.#log = log;
  }

  async data(): Promise<RedisClient> {
    if (this.#closed) throw new UnavailableError("read", new Error("closed"));
    if (this.#data?.isReady) return this.#data;
    this.#dataConnecting ??= (async () => {
      try {
        const c = await this.#connectMaster("prismcache-reader");
        c.on("error", () => {
          if (this.#data === c) this.#data = undefined;
        });
        if (this.#closed) {
          c.destroy();
          throw new UnavailableError("read", new Error("closed"));
        }
        this.#data = c;
        return c;
      } finally {
        this.#dataConnecting = undefined;
      }
    })();
    return this.#dataConnecting;
  }

  async subscriber(name: string): Promise<RedisClient> {
    return this.#connectMaster(name);
  }

  start(onSwitch: (from: string, to: string) => void): void {
    this.#onSwitch = onSwitch;
    void this.#watchLoop();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    this.#data?.destroy();
    this.#data = undefined;
    this.#watch?.destroy();
    this.#watch = undefined;
  }

  /** Asks the Sentinels where the master is, then connects there and checks it is one. */
  async #connectMaster(name: string): Promise<RedisClient> {
    const addr = await this.#resolve();
    const o = this.#opts.masterOptions ?? {};
    const c = createClient({
      ...o,
      name,
      socket: { ...(o.socket ?? {}), host: addr.host, port: addr.port, reconnectStrategy: false },
    } as RedisClientOptions) as RedisClient;
    await connectOnce(c);
    try {
      const role = (await c.sendCommand(["ROLE"])) as unknown[];
      if (String(role?.[0]) !== "master") throw new Error(`${addrString(addr)} is a ${String(role?.[0])}, not a master`);
    } catch (err) {
      c.destroy();
      throw new UnavailableError("connect to the master", err);
    }
    return c;
  }

  /** The master's address according to the first Sentinel that answers. */
  async #resolve(): Promise<Address> {
    let last: unknown;
    for (const s of this.#opts.sentinels) {
      const c = this.#sentinelClient(s);
      try {
        await connectOnce(c);
        const reply = (await c.sendCommand(["SENTINEL", "GET-MASTER-ADDR-BY-NAME", this.#opts.name])) as unknown[] | null;
        if (!Array.isArray(reply) || reply.length < 2) {
          last = new Error(`sentinel ${addrString(s)} knows no master named ${JSON.stringify(this.#opts.name)}`);
          continue;
        }
        const addr = { host: String(reply[0]), port: Number(reply[1]) };
        this.#noteMaster(addr);
        return addr;
      } catch (err) {
        last = err instanceof UnavailableError && err.cause instanceof Error ? err.cause : err;
      } finally {
        c.destroy();
      }
    }
    throw new UnavailableError(`find master ${JSON.stringify(this.#opts.name)}`, last);
  }

  #sentinelClient(s: Address): RedisClient {
    const o = this.#opts.sentinelOptions ?? {};
    const c = createClient({
      ...o,
      RESP: 2,
      socket: { ...(o.socket ?? {}), host: s.host, port: s.port, reconnectStrategy: false },
    } as unknown as RedisClientOptions) as RedisClient;
    c.on("error", () => {});
    return c;
  }

  /** Records addr as the master; when it differs from the one known, that is a switch. */
  #noteMaster(addr: Address): void {
    const prev = this.#master;
    this.#master = addr;
    if (prev && addrString(prev) !== addrString(addr)) this.#switched(prev, addr);
  }

  #switched(from: Address, to: Address): void {
    this.#log.warn("prismcache reader: the Sentinels switched the master", { name: this.#opts.name, from: addrString(from), to: addrString(to) });
    const d = this.#data;
    this.#data = undefined;
    d?.destroy();
    this.#onSwitch?.(addrString(from), addrString(to));
  }

  /**
   * Stays subscribed to `+switch-master` on one Sentinel at a time, moving to
   * the next when one fails. After each new subscription it asks where the
   * master is, so a switch announced while no Sentinel was listened to is
   * still noticed.
   */
  async #watchLoop(): Promise<void> {
    let i = 0;
    let backoff = 50;
    while (!this.#closed) {
      const s = this.#opts.sentinels[i % this.#opts.sentinels.length]!;
      i++;
      const c = this.#sentinelClient(s);
      this.#watch = c;
      const lost = new Promise<void>((resolve) => {
        c.on("error", () => resolve());
        c.on("end", () => resolve());
        this.#wake = resolve;
      });
      try {
        await connectOnce(c);
        await c.subscribe("+switch-master", (message: string) => {
          // "<name> <old ip> <old port> <new ip> <new port>"
          const f = message.split(" ");
          if (f.length < 5 || f[0] !== this.#opts.name) return;
          this.#noteMaster({ host: f[3]!, port: Number(f[4]) });
        });
        backoff = 50;
        await this.#resolve().catch(() => undefined);
        await lost;
      } catch (err) {
        this.#log.warn("prismcache reader: cannot listen to a Sentinel", { sentinel: addrString(s), err: String(err) });
      } finally {
        c.destroy();
        if (this.#watch === c) this.#watch = undefined;
      }
      if (this.#closed) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.random() * backoff + 1);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      backoff = Math.min(2 * backoff, 1000);
    }
  }
}

/**
 * Connects c (which must not reconnect by itself); on failure it is
 * destroyed and the error is an UnavailableError. An error listener is
 * attached first, so that node-redis never throws an unhandled 'error'.
 */
export async function connectOnce(c: RedisClient): Promise<RedisClient> {
  c.on("error", () => {});
  try {
    await c.connect();
    return c;
  } catch (err) {
    try {
      c.destroy();
    } catch {
      // never connected: nothing to close
    }
    throw new UnavailableError("connect", err);
  }
}
