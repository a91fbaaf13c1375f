// The entry hash, its document and the change feed's messages, as the Redis
// contract (docs/redis.md) defines them.

import { EntryFormatError } from "./errors.js";

/** Why an entry is stale (its `stale_reason` field); later daemons may add reasons. */
export type StaleReason = "updated" | "needs_deploy" | "undeployed_config" | "fetch_failed" | (string & {});

/** What a write did, as the change feed announces it; later daemons may add kinds. */
export type ChangeType = "refreshed" | "stale" | "enabled" | "deleted" | (string & {});

/**
 * One config variable of an instance, keyed in {@link Doc.config} by its key.
 * `value` is Prismatic's value as text (JSON-shaped types hold JSON text), or
 * null when it has none; it is always null for `CONNECTION` and `CREDENTIAL`
 * variables, whose inputs are secrets and never cached.
 */
export interface ConfigValue {
  readonly id?: string;
  readonly value: string | null;
  /** The variable's dataType: STRING, BOOLEAN, NUMBER, PICKLIST, JSONFORM, CONNECTION, … */
  readonly type: string;
  /** Connections only: ACTIVE, ERROR, FAILED or PENDING. */
  readonly status?: string;
  readonly refreshAt?: string;
  readonly lastSuccessfulRefreshAt?: string;
  readonly customerConfigVariableId?: string;
}

/** The customer an instance belongs to. */
export interface Customer {
  readonly id: string;
  readonly externalId: string;
  readonly name: string;
}

/** The integration version an instance runs. */
export interface Integration {
  readonly id: string;
  readonly name: string;
  readonly versionNumber: number;
}

/** The `doc` field: the instance as deployed. Times are RFC 3339 text, as stored. */
export interface Doc {
  readonly id: string;
  readonly name: string;
  readonly enabled: boolean;
  readonly needsDeploy: boolean;
  readonly deployedVersion: number;
  readonly lastDeployedAt: string | null;
  readonly updatedAt?: string;
  readonly customer: Customer;
  readonly integration: Integration;
  readonly config: Readonly<Record<string, ConfigValue>>;
}

/**
 * One instance entry: the document and the hash fields that say how fresh it
 * is. Entries are frozen: the Reader shares them between callers.
 */
export interface Entry {
  /** The instance id the entry was read under. */
  readonly id: string;
  readonly doc: Doc;
  /** The cached config may not be what runs or what Prismatic stores; see staleReason. */
  readonly stale: boolean;
  readonly staleSince?: Date;
  readonly staleReason?: StaleReason;
  /** While staleReason is `fetch_failed`: why the entry was stale before its fetches began to fail (absent if it was fresh). */
  readonly priorStaleReason?: StaleReason;
  readonly enabled: boolean;
  readonly deployedVersion: number;
  readonly lastDeployedAt?: Date;
  /** When the fetch that wrote the document began. */
  readonly fetchedAt?: Date;
  /** Incremented on every write of the hash. */
  readonly rev: number;
  /** Why the last fetch failed, when it failed past the daemon's retry limit. */
  readonly lastError?: string;
}

/** One message of the change feed (`<prefix>events`). */
export interface FeedMessage {
  readonly id: string;
  readonly change: ChangeType;
  /** The entry's deployed_version after the write (absent on `deleted` and while 0). */
  readonly deployedVersion?: number;
  /** The entry's rev after the write. */
  readonly rev?: number;
  /**
   * On `refreshed`: the config keys whose value (or, for connections, status)
   * differs between the previous and the new document. Undefined when the
   * message has none: another change type, or a daemon that predates the
   * field, and then any key may have changed.
   */
  readonly changedKeys?: readonly string[];
}

/** The key names of the contract under one prefix. */
export class Keys {
  constructor(readonly prefix: string = DEFAULT_PREFIX) {}
  /** The hash holding one instance's entry. */
  instance(id: string): string {
    return `${this.prefix}instance:{${id}}`;
  }
  /** The set of instance ids of the customer with this external id. */
  customer(externalId: string): string {
    return `${this.prefix}customer:{${externalId}}`;
  }
  /** The same, for one integration (by name). */
  customerIntegration(externalId: string, integration: string): string {
    return `${this.prefix}customer:{${externalId}}:integration:${integration}`;
  }
  /** The change feed's pub/sub channel. */
  events(): string {
    return `${this.prefix}events`;
  }
}

/** The prefix the daemon writes under unless told otherwise (`--redis-prefix`). */
export const DEFAULT_PREFIX = "prismcache:";

/**
 * Decodes the fields of an entry hash, as HGETALL returns them. A hash with no
 * `doc` field is no entry (the daemon never writes one; it is a leftover) and
 * gives null, as does an empty hash. A field that does not parse throws an
 * {@link EntryFormatError} naming the field.
 */
export function parseEntry(id: string, hash: Readonly<Record<string, string>> | Map<string, string>): Entry | null {
  const h = hash instanceof Map ? Object.fromEntries(hash) : hash;
  const raw = h["doc"];
  if (raw === undefined || raw === "") return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new EntryFormatError(id, "doc", (err as Error).message);
  }
  const doc = toDoc(id, parsed);
  const entry: Entry = {
    id,
    doc,
    stale: h["stale"] === "1",
    enabled: h["enabled"] === "1",
    rev: intField(id, h, "rev") ?? 0,
    deployedVersion: intField(id, h, "deployed_version") ?? 0,
    ...optional("staleReason", nonEmpty(h["stale_reason"])),
    ...optional("priorStaleReason", nonEmpty(h["prior_stale_reason"])),
    ...optional("lastError", nonEmpty(h["last_error"])),
    ...optional("staleSince", timeField(id, h, "stale_since")),
    ...optional("lastDeployedAt", timeField(id, h, "last_deployed_at")),
    ...optional("fetchedAt", timeField(id, h, "fetched_at")),
  };
  return deepFreeze(entry);
}

/**
 * Decodes one message of the change feed. It returns null for a message that
 * is not a JSON object with a string `id`: a reader that caches entries must
 * then drop everything, since it cannot tell which instance changed.
 */
export function parseMessage(payload: string): FeedMessage | null {
  let m: unknown;
  try {
    m = JSON.parse(payload);
  } catch {
    return null;
  }
  if (!isObject(m) || typeof m["id"] !== "string" || m["id"] === "") return null;
  const keys = m["changed_keys"];
  const changedKeys =
    Array.isArray(keys) && keys.every((k) => typeof k === "string") ? Object.freeze([...(keys as string[])]) : undefined;
  return Object.freeze({
    id: m["id"],
    change: typeof m["change"] === "string" ? m["change"] : "",
    ...optional("deployedVersion", typeof m["deployed_version"] === "number" ? m["deployed_version"] : undefined),
    ...optional("rev", typeof m["rev"] === "number" ? m["rev"] : undefined),
    ...optional("changedKeys", changedKeys),
  });
}

/**
 * Whether config variable `key` differs between two documents by the feed's
 * rule: present in one only, or a different value, or (connections) a
 * different status.
 */
export function configDiffers(a: Doc | null | undefined, b: Doc | null | undefined, key: string): boolean {
  const x = a ? ownValue(a.config, key) : undefined;
  const y = b ? ownValue(b.config, key) : undefined;
  if (x === undefined || y === undefined) return x !== y;
  return x.value !== y.value || (x.status ?? "") !== (y.status ?? "");
}

/** The keys that differ between two documents by {@link configDiffers}, sorted. */
export function differingKeys(a: Doc | null | undefined, b: Doc | null | undefined): string[] {
  const keys = new Set<string>([...Object.keys(a?.config ?? {}), ...Object.keys(b?.config ?? {})]);
  return [...keys].filter((k) => configDiffers(a, b, k)).sort();
}

/** config[key] if key is the object's own member (not Object.prototype's). */
export function ownValue(config: Readonly<Record<string, ConfigValue>>, key: string): ConfigValue | undefined {
  return Object.prototype.hasOwnProperty.call(config, key) ? config[key] : undefined;
}

function toDoc(id: string, v: unknown): Doc {
  if (!isObject(v)) throw new EntryFormatError(id, "doc", "not a JSON object");
  const config: Record<string, ConfigValue> = Object.create(null);
  const rawConfig = v["config"];
  if (rawConfig !== undefined && rawConfig !== null) {
    if (!isObject(rawConfig)) throw new EntryFormatError(id, "doc", "config is not an object");
    for (const [key, cv] of Object.entries(rawConfig)) {
      if (!isObject(cv)) throw new EntryFormatError(id, "doc", `config ${JSON.stringify(key)} is not an object`);
      const value = cv["value"];
      if (value !== null && value !== undefined && typeof value !== "string") {
        throw new EntryFormatError(id, "doc", `config ${JSON.stringify(key)}: value is not a string or null`);
      }
      config[key] = { ...(cv as object), value: value ?? null, type: str(cv["type"]) } as ConfigValue;
    }
  }
  const customer = isObject(v["customer"]) ? v["customer"] : {};
  const integration = isObject(v["integration"]) ? v["integration"] : {};
  return {
    ...(v as object),
    id: str(v["id"]),
    name: str(v["name"]),
    enabled: v["enabled"] === true,
    needsDeploy: v["needsDeploy"] === true,
    deployedVersion: num(v["deployedVersion"]),
    lastDeployedAt: typeof v["lastDeployedAt"] === "string" ? v["lastDeployedAt"] : null,
    customer: { ...customer, id: str(customer["id"]), externalId: str(customer["externalId"]), name: str(customer["name"]) },
    integration: {
      ...integration,
      id: str(integration["id"]),
      name: str(integration["name"]),
      versionNumber: num(integration["versionNumber"]),
    },
    config,
  } as Doc;
}

function intField(id: string, h: Readonly<Record<string, string>>, field: string): number | undefined {
  const s = h[field];
  if (s === undefined || s === "") return undefined;
  if (!/^-?\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw new EntryFormatError(id, field, `${JSON.stringify(s)} is not an integer`);
  return Number(s);
}

// RFC 3339, as the daemon writes it (UTC, up to nanoseconds).
const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function timeField(id: string, h: Readonly<Record<string, string>>, field: string): Date | undefined {
  const s = h[field];
  if (s === undefined || s === "") return undefined;
  const d = new Date(s);
  if (!rfc3339.test(s) || Number.isNaN(d.getTime())) throw new EntryFormatError(id, field, `${JSON.stringify(s)} is not an RFC 3339 time`);
  return d;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === "" ? undefined : s;
}

function optional<K extends string, V>(key: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [key]: v }) as { [P in K]?: V };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function num(v: unknown): number {
  return typeof v === "number" ? v : 0;
}

function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null && !(v instanceof Date) && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}
