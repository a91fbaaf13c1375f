// The in-memory tier: a least-recently-used map of instance ids to what Redis
// answered for them (an entry, or "not cached").

import type { Entry } from "./entry.js";

/** One id in the tier: an entry, or a remembered "not cached" (entry null). */
export interface TierItem {
  readonly entry: Entry | null;
  /** The subscription epoch the read that made it began in. */
  readonly epoch: number;
  /** When it stops serving, on the monotonic clock (ms). */
  readonly expires: number;
}

/**
 * A Map kept in recency order: a hit moves its key to the end, an insert past
 * the size drops the first (least recently used) key.
 */
export class Tier {
  readonly #items = new Map<string, TierItem>();
  constructor(readonly size: number) {}

  get length(): number {
    return this.#items.size;
  }

  /** The item of id, without changing its recency. */
  peek(id: string): TierItem | undefined {
    return this.#items.get(id);
  }

  /** Marks id as just used. */
  touch(id: string, item: TierItem): void {
    this.#items.delete(id);
    this.#items.set(id, item);
  }

  set(id: string, item: TierItem): void {
    this.#items.delete(id);
    this.#items.set(id, item);
    while (this.#items.size > this.size) {
      const oldest = this.#items.keys().next();
      if (oldest.done) break;
      this.#items.delete(oldest.value);
    }
  }

  delete(id: string): void {
    this.#items.delete(id);
  }

  clear(): void {
    this.#items.clear();
  }
}
