// @prismcache/reader: read what prismcache keeps in Redis (docs/redis.md).

export { Reader, type ReaderOptions, type ReaderStats, type FlushReason } from "./reader.js";
export {
  Keys,
  DEFAULT_PREFIX,
  parseEntry,
  parseMessage,
  configDiffers,
  differingKeys,
  type Entry,
  type Doc,
  type ConfigValue,
  type Customer,
  type Integration,
  type StaleReason,
  type ChangeType,
  type FeedMessage,
} from "./entry.js";
export { UnavailableError, ReaderClosedError, EntryFormatError } from "./errors.js";
export type { SentinelOptions, Logger, RedisClient } from "./topology.js";
export type { WatchEvent, InitialEvent, ChangeEvent, ResyncEvent, KeyChange, WatchCallback, WatchHandle } from "./watch.js";
