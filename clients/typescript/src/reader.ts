// The Reader: entries from an in-memory LRU when it holds a verified copy,
// else from Redis; the change feed keeps the copies correct.

import { performance } from "node:perf_hooks";
import { DEFAULT_PREFIX, Keys, parseEntry, parseMessage, type Entry, type FeedMessage } from "./entry.js";
import { ReaderClosedError, UnavailableError } from "./errors.js";
import { Tier, type TierItem } from "./tier.js";
import { ClientTopology, SentinelTopology, type Logger, type RedisClient, type SentinelOptions, type Topology } from "./topology.js";
import { Watcher, type WatchCallback, type WatchHandle } from "./watch.js";

/** Options of a Reader. Give exactly one of `client` and `sentinel`. */
export interface ReaderOptions {
  /**
   * A connected node-redis client of the primary the daemon writes to. The
   * Reader reads with it (and never closes it) and opens its subscription on
   * a duplicate. Point it at the primary: a replica can answer with data
   * older than a message already received.
   */
  readonly client?: RedisClient;
  /** Sentinel: the Reader finds the master through the Sentinels, owns its connections and follows failovers. */
  readonly sentinel?: SentinelOptions;
  /** The daemon's `--redis-prefix`; `prismcache:` by default. */
  readonly prefix?: string;
  /** Entries (and remembered "not cached"s) held in memory, least recently used out first; 10 000 by default. */
  readonly size?: number;
  /** Longest an entry is served from memory without asking Redis, messages or not (ms); 60 000 by default. */
  readonly maxAgeMs?: number;
  /** How long "not cached" is remembered (ms); 2 000 by default, 0 turns it off. A message for the id ends it sooner. */
  readonly negativeTtlMs?: number;
  /** Silence on the subscription after which it is pinged; a ping unanswered for as long again counts as a lost subscription (ms); 1 000 by default. */
  readonly healthCheckIntervalMs?: number;
  /** CLIENT SETNAME of the subscription connection; `prismcache-reader` by default. */
  readonly subscriberName?: string;
  /**
   * Called after an id was dropped from memory because of a message, and with
   * null after everything was dropped (the subscription was lost, came back,
   * the master switched, or a message could not be read). Must be quick.
   */
  readonly onInvalidate?: (id: string | null) => void;
  /** Where the Reader logs subscription losses and restores; nothing by default. */
  readonly logger?: Logger;
}

/** The Reader's counters, and whether its subscription is live. */
export interface ReaderStats {
  /** Reads answered from memory (entries, and remembered "not cached"). */
  hits: number;
  /** Reads that went to Redis. */
  misses: number;
  /** Ids dropped because of a message. */
  invalidations: number;
  /** Times everything was dropped, by reason. */
  flushes: Record<FlushReason, number>;
  /** Subscriptions lost or refused. */
  subscribeErrors: number;
  /** True while the subscription to the change feed is live: only then does memory serve reads. */
  subscribed: boolean;
  /** Items in memory now. */
  size: number;
}

/** Why the Reader dropped everything it held. */
export type FlushReason = "disconnected" | "reconnected" | "master_switch" | "bad_message";

const MIN_BACKOFF_MS = 20;
const MAX_BACKOFF_MS = 1000;

interface PendingFill {
  n: number;
  gen: number;
}

interface FillToken {
  p: PendingFill;
  gen: number;
  epoch: number;
}

/**
 * Reads prismcache's entries for an app, following the rules of the Go
 * `cache.Reader`: a copy in memory is served only while the subscription to
 * the change feed is live and was live when the copy was read; every message
 * drops its id; everything is dropped when the subscription is lost, again
 * when it is back, and when the Sentinels switch the master; a read that
 * raced with a message for its id is returned but not kept; concurrent reads
 * of one id share one Redis round trip.
 *
 * Create one per process with {@link Reader.create} (or the constructor) and
 * {@link Reader.close} it at exit.
 */
export class Reader {
  readonly keys: Keys;
  readonly #topo: Topology;
  readonly #opts: Required<Pick<ReaderOptions, "size" | "maxAgeMs" | "negativeTtlMs" | "healthCheckIntervalMs" | "subscriberName">>;
  readonly #log: Logger;
  readonly #onInvalidate: ((id: string | null) => void) | undefined;
  readonly #tier: Tier;
  readonly #pending = new Map<string, PendingFill>();
  readonly #flights = new Map<string, Promise<Entry | null>>();
  readonly #watchers = new Map<string, Set<Watcher>>();
  readonly #stats = {
    hits: 0,
    misses: 0,
    invalidations: 0,
    subscribeErrors: 0,
    flushes: { disconnected: 0, reconnected: 0, master_switch: 0, bad_message: 0 } as Record<FlushReason, number>,
  };
  /** Odd while subscribed (memory may serve), even while not; every flush moves it. */
  #epoch = 0;
  #closed = false;
  #dropSub: ((why: Error) => void) | undefined;
  #wakeLoop: (() => void) | undefined;
  #loop: Promise<void>;
  #subscribedWaiters: Array<(err?: Error) => void> = [];

  constructor(opts: ReaderOptions) {
    if ((opts.client === undefined) === (opts.sentinel === undefined)) {
      throw new TypeError("prismcache reader: give exactly one of client and sentinel");
    }
    const positive = (name: string, v: number | undefined, def: number): number => {
      if (v === undefined) return def;
      if (!Number.isFinite(v) || v <= 0) throw new TypeError(`prismcache reader: ${name} must be a positive number, not ${v}`);
      return v;
    };
    const negativeTtlMs = opts.negativeTtlMs ?? 2000;
    if (!Number.isFinite(negativeTtlMs) || negativeTtlMs < 0) {
      throw new TypeError(`prismcache reader: negativeTtlMs must be 0 or more, not ${negativeTtlMs}`);
    }
    this.#opts = {
      size: Math.floor(positive("size", opts.size, 10_000)),
      maxAgeMs: positive("maxAgeMs", opts.maxAgeMs, 60_000),
      negativeTtlMs,
      healthCheckIntervalMs: positive("healthCheckIntervalMs", opts.healthCheckIntervalMs, 1000),
      subscriberName: opts.subscriberName ?? "prismcache-reader",
    };
    this.#log = opts.logger ?? { info() {}, warn() {} };
    this.#onInvalidate = opts.onInvalidate;
    this.keys = new Keys(opts.prefix ?? DEFAULT_PREFIX);
    this.#tier = new Tier(this.#opts.size);
    this.#topo = opts.client ? new ClientTopology(opts.client) : new SentinelTopology(opts.sentinel!, this.#log);
    this.#topo.start((from, to) => this.#masterSwitched(from, to));
    this.#loop = this.#subscribeLoop();
  }

  /** A Reader whose subscription is live (or that waited `timeoutMs` for it, 5 000 by default). */
  static async create(opts: ReaderOptions & { readonly timeoutMs?: number }): Promise<Reader> {
    const r = new Reader(opts);
    await r.subscribed(opts.timeoutMs ?? 5000).catch(() => undefined);
    return r;
  }

  /**
   * Resolves once the subscription to the change feed is live; rejects after
   * timeoutMs (no timeout when omitted). Until then every read goes to Redis.
   */
  subscribed(timeoutMs?: number): Promise<void> {
    if (this.#closed) return Promise.reject(new ReaderClosedError("subscribed"));
    if (this.#epoch % 2 === 1) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = (err?: Error) => {
        if (t) clearTimeout(t);
        if (err) reject(err);
        else resolve();
      };
      const t =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              this.#subscribedWaiters = this.#subscribedWaiters.filter((w) => w !== waiter);
              reject(new UnavailableError("subscribe", new Error(`not subscribed after ${timeoutMs} ms`)));
            }, timeoutMs);
      this.#subscribedWaiters.push(waiter);
    });
  }

  /** The counters, and whether the subscription is live. */
  stats(): ReaderStats {
    return { ...this.#stats, flushes: { ...this.#stats.flushes }, subscribed: this.#epoch % 2 === 1, size: this.#tier.length };
  }

  /**
   * The entry of an instance, or null when it is not cached (never cached,
   * deleted, or a hash without a document). Throws UnavailableError when
   * Redis cannot answer, EntryFormatError when the hash does not parse.
   */
  async get(id: string): Promise<Entry | null> {
    const it = this.#serving(id);
    if (it) {
      this.#stats.hits++;
      return it.entry;
    }
    if (this.#closed) throw new ReaderClosedError(`get ${id}`);
    this.#stats.misses++;
    let flight = this.#flights.get(id);
    if (!flight) {
      flight = this.#load(id);
      this.#flights.set(id, flight);
      const f = flight;
      const forget = () => {
        if (this.#flights.get(id) === f) this.#flights.delete(id);
      };
      f.then(forget, forget);
    }
    return flight;
  }

  /**
   * Every cached instance of the customer with this external id, ordered by
   * instance id. The index set is read from Redis on every call; each id in
   * it is checked against its entry's `doc.customer.externalId`, and rows
   * whose entry is missing or belongs to another customer are skipped.
   */
  byCustomer(externalId: string): Promise<Entry[]> {
    return this.#lookup(this.keys.customer(externalId), `customer ${externalId}`, (e) => e.doc.customer.externalId === externalId);
  }

  /** {@link byCustomer} restricted to one integration, by name (checked against `doc.integration.name` too). */
  find(externalId: string, integrationName: string): Promise<Entry[]> {
    return this.#lookup(
      this.keys.customerIntegration(externalId, integrationName),
      `customer ${externalId} integration ${integrationName}`,
      (e) => e.doc.customer.externalId === externalId && e.doc.integration.name === integrationName,
    );
  }

  /**
   * Calls back with the instance's entry once the subscription is live
   * (`initial`), then with every change the feed announces for it
   * (`change`: which config keys changed, from what to what), and with
   * `resync` after any gap in the subscription, when messages may have been
   * lost and everything derived from the cache must be re-read. Each message
   * costs at most one read of the entry. Close the handle to stop.
   */
  watch(id: string, callback: WatchCallback): WatchHandle {
    if (this.#closed) throw new ReaderClosedError(`watch ${id}`);
    const w = new Watcher(id, callback, (which) => this.#readRaw(which), this.#log, () => {
      const set = this.#watchers.get(id);
      set?.delete(w);
      if (set?.size === 0) this.#watchers.delete(id);
    });
    let set = this.#watchers.get(id);
    if (!set) this.#watchers.set(id, (set = new Set()));
    set.add(w);
    if (this.#epoch % 2 === 1) w.sync();
    return w;
  }

  /** Stops the subscription and every watch, and empties memory. The client given in the options is left open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#epoch += this.#epoch % 2 === 1 ? 1 : 2;
    this.#tier.clear();
    this.#flights.clear();
    for (const set of this.#watchers.values()) for (const w of set) w.close();
    this.#watchers.clear();
    this.#dropSub?.(new Error("reader closed"));
    this.#wakeLoop?.();
    const waiters = this.#subscribedWaiters;
    this.#subscribedWaiters = [];
    for (const f of waiters) f(new ReaderClosedError("subscribed"));
    await this.#topo.close();
    await this.#loop;
  }

  // ——— memory ———

  #serving(id: string): TierItem | undefined {
    const it = this.#tier.peek(id);
    if (!it || this.#epoch % 2 === 0 || it.epoch !== this.#epoch || performance.now() >= it.expires) return undefined;
    this.#tier.touch(id, it);
    return it;
  }

  #beginFill(id: string): FillToken {
    let p = this.#pending.get(id);
    if (!p) this.#pending.set(id, (p = { n: 0, gen: 0 }));
    p.n++;
    return { p, gen: p.gen, epoch: this.#epoch };
  }

  /** Ends a read begun by beginFill; keeps what it read only if no message for id and no flush came since it began. */
  #endFill(id: string, t: FillToken, entry: Entry | null | undefined): void {
    t.p.n--;
    if (t.p.n === 0 && this.#pending.get(id) === t.p) this.#pending.delete(id);
    if (entry === undefined || this.#closed || t.p.gen !== t.gen || t.epoch !== this.#epoch || t.epoch % 2 === 0) return;
    const life = entry === null ? this.#opts.negativeTtlMs : this.#opts.maxAgeMs;
    if (life <= 0) return;
    this.#tier.set(id, { entry, epoch: t.epoch, expires: performance.now() + life });
  }

  async #load(id: string): Promise<Entry | null> {
    const tok = this.#beginFill(id);
    let kept: Entry | null | undefined;
    try {
      const entry = await this.#readRaw(id);
      kept = entry;
      return entry;
    } finally {
      this.#endFill(id, tok, kept);
    }
  }

  /** One HGETALL of the entry, straight from Redis. */
  async #readRaw(id: string): Promise<Entry | null> {
    const c = await this.#topo.data();
    let h: Record<string, string> | Map<string, string>;
    try {
      h = (await c.hGetAll(this.keys.instance(id))) as Record<string, string>;
    } catch (err) {
      throw new UnavailableError(`get ${id}`, err);
    }
    return parseEntry(id, h);
  }

  async #lookup(key: string, what: string, matches: (e: Entry) => boolean): Promise<Entry[]> {
    if (this.#closed) throw new ReaderClosedError(`lookup ${what}`);
    const c = await this.#topo.data().catch((err) => {
      throw new UnavailableError(`lookup ${what}`, err);
    });
    let ids: string[];
    try {
      ids = ((await c.sMembers(key)) as string[]).map(String);
    } catch (err) {
      throw new UnavailableError(`lookup ${what}`, err);
    }
    ids.sort();
    const found: Array<Entry | null> = new Array(ids.length).fill(null);
    const missed: number[] = [];
    ids.forEach((id, i) => {
      const it = this.#serving(id);
      if (it) {
        this.#stats.hits++;
        found[i] = it.entry;
      } else {
        this.#stats.misses++;
        missed.push(i);
      }
    });
    if (missed.length > 0) {
      // One round trip: node-redis sends commands issued in one tick as one pipeline.
      const toks = missed.map((i) => this.#beginFill(ids[i]!));
      const replies = await Promise.allSettled(missed.map((i) => c.hGetAll(this.keys.instance(ids[i]!))));
      let failure: unknown;
      missed.forEach((i, j) => {
        const id = ids[i]!;
        const r = replies[j]!;
        if (r.status === "rejected") {
          this.#endFill(id, toks[j]!, undefined);
          failure ??= new UnavailableError(`lookup ${what}`, r.reason);
          return;
        }
        try {
          const e = parseEntry(id, r.value as Record<string, string>);
          this.#endFill(id, toks[j]!, e);
          found[i] = e;
        } catch (err) {
          this.#endFill(id, toks[j]!, undefined);
          failure ??= err;
        }
      });
      if (failure) throw failure;
    }
    return found.filter((e): e is Entry => e !== null && matches(e));
  }

  /** Drops id because a message said it changed; reads of it in flight will not be kept. */
  #invalidate(m: FeedMessage): void {
    this.#tier.delete(m.id);
    const p = this.#pending.get(m.id);
    if (p) p.gen++;
    this.#flights.delete(m.id);
    this.#stats.invalidations++;
    this.#notify(m.id);
    const set = this.#watchers.get(m.id);
    if (set) for (const w of set) w.message(m);
  }

  /**
   * Moves the subscription state to connected (odd epoch) or not (even) and
   * drops everything. Reports whether the state changed.
   */
  #transition(connected: boolean, reason: FlushReason): boolean {
    if ((this.#epoch % 2 === 1) === connected || this.#closed) return false;
    const first = this.#epoch === 0;
    this.#epoch++;
    this.#dropAll();
    if (connected) {
      for (const set of this.#watchers.values()) for (const w of set) w.sync();
      const waiters = this.#subscribedWaiters;
      this.#subscribedWaiters = [];
      for (const f of waiters) f();
    } else {
      for (const set of this.#watchers.values()) for (const w of set) w.gap();
    }
    if (!first) this.#flushed(reason);
    return true;
  }

  /** Drops everything while staying subscribed: some id changed and we cannot tell which. */
  #flushAll(reason: FlushReason): void {
    this.#epoch += 2;
    this.#dropAll();
    for (const set of this.#watchers.values()) {
      for (const w of set) {
        w.gap();
        w.sync();
      }
    }
    this.#flushed(reason);
  }

  #dropAll(): void {
    this.#tier.clear();
    this.#flights.clear();
  }

  #flushed(reason: FlushReason): void {
    this.#stats.flushes[reason]++;
    this.#notify(null);
  }

  /** Calls onInvalidate; what it throws is logged, never let into the subscription. */
  #notify(id: string | null): void {
    try {
      this.#onInvalidate?.(id);
    } catch (err) {
      this.#log.warn("prismcache reader: onInvalidate threw", { id, err: String(err) });
    }
  }

  #masterSwitched(from: string, to: string): void {
    if (this.#closed) return;
    this.#log.warn("prismcache reader: master switched; memory dropped, subscribing on the new master", { from, to });
    // Memory was dropped already if the subscription was down.
    this.#transition(false, "master_switch");
    this.#dropSub?.(new Error(`the master moved from ${from} to ${to}`));
  }

  // ——— the subscription ———

  /**
   * Keeps one subscription to the change feed until close: each is a fresh
   * connection; when it fails, memory is dropped and a new one is opened
   * after a short, jittered backoff.
   */
  async #subscribeLoop(): Promise<void> {
    let backoff = MIN_BACKOFF_MS;
    while (!this.#closed) {
      const { confirmed, err } = await this.#subscribeOnce();
      if (this.#closed) return;
      if (this.#transition(false, "disconnected")) {
        this.#log.warn("prismcache reader: subscription lost; memory dropped", { channel: this.keys.events(), err: String(err) });
      }
      this.#stats.subscribeErrors++;
      if (confirmed) backoff = MIN_BACKOFF_MS;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.random() * backoff + 1);
        this.#wakeLoop = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wakeLoop = undefined;
      backoff = Math.min(2 * backoff, MAX_BACKOFF_MS);
    }
  }

  /**
   * Opens one subscription and returns when it ends: whether it was ever
   * confirmed, and why it ended.
   */
  async #subscribeOnce(): Promise<{ confirmed: boolean; err: unknown }> {
    let confirmed = false;
    let lastHeard = performance.now();
    let health: NodeJS.Timeout | undefined;
    let drop!: (why: Error) => void;
    const ended = new Promise<never>((_, reject) => {
      drop = reject;
    });
    ended.catch(() => undefined);
    this.#dropSub = drop;
    const opening = this.#topo.subscriber(this.#opts.subscriberName);
    let sub: RedisClient | undefined;
    try {
      sub = await Promise.race([opening, ended]);
      const s = sub;
      s.on("error", (err: Error) => drop(err));
      s.on("end", () => drop(new Error("connection closed")));
      if (this.#closed) throw new Error("reader closed");
      await Promise.race([
        s.subscribe(this.keys.events(), (payload: string) => {
          lastHeard = performance.now();
          this.#handle(payload);
        }),
        ended,
      ]);
      confirmed = true;
      if (this.#transition(true, "reconnected")) {
        this.#log.info("prismcache reader: subscribed; memory serving", { channel: this.keys.events() });
      }
      const interval = this.#opts.healthCheckIntervalMs;
      let pinging = false;
      health = setInterval(() => {
        if (pinging || performance.now() - lastHeard < interval) return;
        // Silent for an interval: ask. No answer within another one is a lost link.
        pinging = true;
        const timer = setTimeout(() => drop(new Error(`no answer to a ping within ${interval} ms`)), interval);
        s.ping().then(
          () => {
            clearTimeout(timer);
            lastHeard = performance.now();
            pinging = false;
          },
          (err: Error) => {
            clearTimeout(timer);
            drop(err);
          },
        );
      }, Math.max(1, Math.floor(interval / 2)));
      await ended;
      return { confirmed, err: undefined };
    } catch (err) {
      return { confirmed, err };
    } finally {
      if (health) clearInterval(health);
      this.#dropSub = undefined;
      if (sub) {
        sub.destroy();
      } else {
        // Dropped while connecting: close the connection when it comes.
        opening.then(
          (c) => c.destroy(),
          () => undefined,
        );
      }
    }
  }

  #handle(payload: string): void {
    const m = parseMessage(payload);
    if (!m) {
      this.#log.warn("prismcache reader: unreadable message on the change feed; memory dropped", { payload: payload.slice(0, 200) });
      this.#flushAll("bad_message");
      return;
    }
    this.#invalidate(m);
  }
}
