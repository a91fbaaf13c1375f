// watch: what changed in one instance, key by key, from the change feed's
// changed_keys and the copy of the entry the watcher held before.

import { differingKeys, ownValue, type ChangeType, type ConfigValue, type Entry, type FeedMessage } from "./entry.js";
import type { Logger } from "./topology.js";

/** One config key that changed: its variable before and after (undefined: absent on that side). */
export interface KeyChange {
  readonly key: string;
  readonly from: ConfigValue | undefined;
  readonly to: ConfigValue | undefined;
}

/** The first read of the entry, once the subscription is live. */
export interface InitialEvent {
  readonly kind: "initial";
  readonly id: string;
  /** null: the instance is not cached (yet). */
  readonly entry: Entry | null;
}

/** One or more writes the change feed announced for the instance. */
export interface ChangeEvent {
  readonly kind: "change";
  readonly id: string;
  /** The change types of the writes this event covers, oldest first (usually one). */
  readonly changes: readonly ChangeType[];
  /** The copy before (null: the watcher had none, e.g. the instance was not cached). */
  readonly previous: Entry | null;
  /** The entry now (null: deleted). */
  readonly entry: Entry | null;
  /**
   * The config keys that changed, sorted, with their variables before and
   * after. Empty for `stale` and `enabled` changes, which leave the config
   * as it was.
   */
  readonly keys: readonly KeyChange[];
  /**
   * `feed`: the keys are the daemon's `changed_keys`. `comparison`: the
   * daemon did not say (it predates `changed_keys`, or the entry was new,
   * deleted or rewritten from scratch), so the keys are those that differ
   * between the two copies.
   */
  readonly keysFrom: "feed" | "comparison";
}

/**
 * The subscription had a gap (lost, reconnected, master switch, an
 * unreadable message, or a read of the entry failed): messages may have been
 * missed. The entry was read again; `keys` compares it with the copy held
 * before the gap, but anything may have changed in between: re-read
 * everything derived from the cache, not only this entry.
 */
export interface ResyncEvent {
  readonly kind: "resync";
  readonly id: string;
  readonly previous: Entry | null;
  readonly entry: Entry | null;
  readonly keys: readonly KeyChange[];
}

export type WatchEvent = InitialEvent | ChangeEvent | ResyncEvent;

/** Called with each event of one watch, one at a time: the next waits for a returned promise. */
export type WatchCallback = (event: WatchEvent) => void | Promise<void>;

/** A running watch. */
export interface WatchHandle {
  /** Stops the watch; no callback is called after it returns. */
  close(): void;
}

interface Accumulated {
  keys: Set<string>;
  unknown: boolean;
  changes: ChangeType[];
}

const fresh = (): Accumulated => ({ keys: new Set(), unknown: false, changes: [] });

/**
 * One watch. Events are handled in order on a queue. The watcher holds the
 * copy it reported last; a message makes it read the entry once, unless a
 * read made for an earlier message already got past this message's write.
 * Because every write bumps the entry's rev by one and publishes its message
 * in the same step, a read that returns rev N means the messages up to rev N
 * are on their way: the watcher keeps the read and reports when the message
 * of rev N arrives, with the changed_keys of every message in between.
 */
export class Watcher implements WatchHandle {
  #reported: Entry | null = null;
  #synced = false;
  /** A read that got ahead of the messages received; reported when the message of its rev arrives. */
  #ahead: Entry | undefined;
  #acc = fresh();
  /** Bumped by every gap: work queued before it is dropped. */
  #gen = 0;
  /** Set by a gap or a failed read until the next resync: messages are ignored meanwhile. */
  #broken = true;
  #closed = false;
  #queue: Promise<void> = Promise.resolve();
  #retry: NodeJS.Timeout | undefined;
  #retryBackoff = 20;

  constructor(
    readonly id: string,
    readonly callback: WatchCallback,
    readonly read: (id: string) => Promise<Entry | null>,
    readonly log: Logger,
    readonly onClose: () => void,
  ) {}

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.onClose();
  }

  /** A message of the feed for this id. */
  message(m: FeedMessage): void {
    const gen = this.#gen;
    this.#enqueue(() => this.#onMessage(m, gen));
  }

  /** Messages may be missed from now on: drop what is in progress. */
  gap(): void {
    this.#gen++;
    this.#broken = true;
    this.#ahead = undefined;
    this.#acc = fresh();
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = undefined;
  }

  /** The subscription is live (again): read the entry and report it. */
  sync(): void {
    const gen = this.#gen;
    this.#enqueue(() => this.#resync(gen));
  }

  #enqueue(task: () => Promise<void>): void {
    this.#queue = this.#queue.then(task).catch((err: unknown) => {
      this.log.warn("prismcache reader: watch task failed", { id: this.id, err: String(err) });
    });
  }

  async #emit(e: WatchEvent): Promise<void> {
    if (this.#closed) return;
    try {
      await this.callback(e);
    } catch (err) {
      this.log.warn("prismcache reader: watch callback threw", { id: this.id, err: String(err) });
    }
  }

  async #resync(gen: number): Promise<void> {
    if (gen !== this.#gen || this.#closed) return;
    let entry: Entry | null;
    try {
      entry = await this.read(this.id);
    } catch (err) {
      this.#retryLater(gen, err);
      return;
    }
    if (gen !== this.#gen || this.#closed) return;
    const previous = this.#reported;
    const wasSynced = this.#synced;
    this.#reported = entry;
    this.#synced = true;
    this.#broken = false;
    this.#ahead = undefined;
    this.#acc = fresh();
    this.#retryBackoff = 20;
    if (!wasSynced) {
      await this.#emit({ kind: "initial", id: this.id, entry });
    } else {
      await this.#emit({ kind: "resync", id: this.id, previous, entry, keys: changesOf(previous, entry, differingKeys(previous?.doc, entry?.doc)) });
    }
  }

  /** A read failed: messages are ignored until a resync, retried with backoff while no gap intervenes. */
  #retryLater(gen: number, err: unknown): void {
    this.#broken = true;
    this.log.warn("prismcache reader: watch could not read the entry; retrying", { id: this.id, err: String(err) });
    const wait = this.#retryBackoff;
    this.#retryBackoff = Math.min(2 * wait, 1000);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (gen === this.#gen && !this.#closed) this.#enqueue(() => this.#resync(gen));
    }, Math.random() * wait + 1);
  }

  async #onMessage(m: FeedMessage, gen: number): Promise<void> {
    if (gen !== this.#gen || this.#broken || this.#closed) return;
    const acc = this.#acc;
    acc.changes.push(m.change);
    if (m.change === "refreshed") {
      if (m.changedKeys) for (const k of m.changedKeys) acc.keys.add(k);
      else acc.unknown = true;
    }
    if (m.change === "deleted") {
      const previous = this.#reported;
      this.#reported = null;
      this.#ahead = undefined;
      this.#acc = fresh();
      if (previous !== null) await this.#report(previous, null, acc, true);
      return;
    }
    const rev = m.rev;
    if (this.#ahead !== undefined && rev !== undefined) {
      if (rev < this.#ahead.rev) return; // on the way to the read we hold
      if (rev === this.#ahead.rev) {
        const next = this.#ahead;
        await this.#reportAndKeep(next, acc);
        return;
      }
    }
    const held = this.#reported;
    const stale = this.#ahead === undefined && held !== null && rev !== undefined && rev <= held.rev;
    let entry: Entry | null;
    try {
      entry = await this.read(this.id);
    } catch (err) {
      this.#retryLater(gen, err);
      return;
    }
    if (gen !== this.#gen || this.#closed) return;
    if (stale) {
      // The write of this message is older than the copy held: it was sent
      // before the read that made the copy. Unless the entry was rewritten
      // from scratch (its rev started again), there is nothing new.
      if (entry !== null && entry.rev === held!.rev) {
        this.#acc = fresh();
        return;
      }
      acc.unknown = true;
      await this.#reportAndKeep(entry, acc);
      return;
    }
    if (entry === null) {
      // Deleted after this write: the delete's message is on its way.
      this.#ahead = undefined;
      return;
    }
    if (rev === undefined || entry.rev <= rev) {
      await this.#reportAndKeep(entry, acc);
      return;
    }
    this.#ahead = entry;
  }

  async #reportAndKeep(next: Entry | null, acc: Accumulated): Promise<void> {
    const previous = this.#reported;
    this.#reported = next;
    this.#ahead = undefined;
    this.#acc = fresh();
    await this.#report(previous, next, acc, false);
  }

  async #report(previous: Entry | null, entry: Entry | null, acc: Accumulated, deleted: boolean): Promise<void> {
    const fromFeed = !acc.unknown && previous !== null && entry !== null && !deleted;
    const keys = fromFeed ? [...acc.keys].sort() : differingKeys(previous?.doc, entry?.doc);
    await this.#emit({
      kind: "change",
      id: this.id,
      changes: acc.changes,
      previous,
      entry,
      keys: changesOf(previous, entry, keys),
      keysFrom: fromFeed ? "feed" : "comparison",
    });
  }
}

function changesOf(previous: Entry | null, entry: Entry | null, keys: readonly string[]): KeyChange[] {
  return keys.map((key) =>
    Object.freeze({
      key,
      from: previous ? ownValue(previous.doc.config, key) : undefined,
      to: entry ? ownValue(entry.doc.config, key) : undefined,
    }),
  );
}
