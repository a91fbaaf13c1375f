// The contract's shapes: entry hashes, feed messages, the key-difference rule.
// No Redis needed.

import assert from "node:assert/strict";
import { test } from "node:test";
import { EntryFormatError, Keys, configDiffers, differingKeys, parseEntry, parseMessage } from "@prismcache/reader";
import { makeDoc } from "./helpers.js";

const ID = "SW5zdGFuY2U6ZWM5YzViM2EtZjNhNy00MDliLTllM2QtODA3MDAxNDVlNWU0";

test("parseEntry reads every field of the hash", () => {
  const doc = makeDoc(ID, {
    config: {
      syncFrequency: { value: "15m" },
      salesforceConnection: { value: null, type: "CONNECTION", status: "ACTIVE" },
    },
  });
  const e = parseEntry(ID, {
    doc: JSON.stringify({ ...doc, futureMember: { x: 1 } }),
    stale: "1",
    stale_since: "2026-11-20T10:07:00.123456789Z",
    stale_reason: "fetch_failed",
    prior_stale_reason: "updated",
    enabled: "1",
    deployed_version: "7",
    last_deployed_at: "2026-11-20T10:06:30.555555Z",
    fetched_at: "2026-11-20T10:06:31Z",
    rev: "12",
    last_error: "graphql: 503",
    _updated_event_at: "2026-11-20T10:07:00Z",
  });
  assert.ok(e);
  assert.equal(e.id, ID);
  assert.equal(e.stale, true);
  assert.equal(e.staleReason, "fetch_failed");
  assert.equal(e.priorStaleReason, "updated");
  assert.equal(e.staleSince?.toISOString(), "2026-11-20T10:07:00.123Z");
  assert.equal(e.enabled, true);
  assert.equal(e.deployedVersion, 7);
  assert.equal(e.lastDeployedAt?.toISOString(), "2026-11-20T10:06:30.555Z");
  assert.equal(e.fetchedAt?.toISOString(), "2026-11-20T10:06:31.000Z");
  assert.equal(e.rev, 12);
  assert.equal(e.lastError, "graphql: 503");
  assert.equal(e.doc.customer.externalId, "acme-001");
  assert.equal(e.doc.integration.name, "Salesforce Sync");
  assert.equal(e.doc.config["syncFrequency"]?.value, "15m");
  assert.equal(e.doc.config["salesforceConnection"]?.value, null);
  assert.equal(e.doc.config["salesforceConnection"]?.status, "ACTIVE");
  assert.ok(Object.isFrozen(e) && Object.isFrozen(e.doc) && Object.isFrozen(e.doc.config), "entries are shared: they must be frozen");
  assert.throws(() => {
    (e.doc.config as Record<string, unknown>)["syncFrequency"] = null;
  }, TypeError);
});

test("parseEntry: a fresh entry has no stale fields, absent fields stay undefined", () => {
  const e = parseEntry(ID, { doc: JSON.stringify(makeDoc(ID)), stale: "0", enabled: "0", rev: "1", deployed_version: "1" });
  assert.ok(e);
  assert.equal(e.stale, false);
  assert.equal(e.enabled, false);
  assert.equal(e.staleReason, undefined);
  assert.equal(e.priorStaleReason, undefined);
  assert.equal(e.staleSince, undefined);
  assert.equal(e.lastError, undefined);
});

test("parseEntry: no doc field means not cached", () => {
  assert.equal(parseEntry(ID, {}), null);
  assert.equal(parseEntry(ID, { rev: "3", stale: "1" }), null);
  assert.equal(parseEntry(ID, new Map([["rev", "3"]])), null);
});

test("parseEntry names the field that does not parse", () => {
  const doc = JSON.stringify(makeDoc(ID));
  const cases: Array<[Record<string, string>, string]> = [
    [{ doc: "{not json" }, "doc"],
    [{ doc: "[1,2]" }, "doc"],
    [{ doc: JSON.stringify({ config: { k: { value: 5 } } }) }, "doc"],
    [{ doc, rev: "twelve" }, "rev"],
    [{ doc, deployed_version: "1.5" }, "deployed_version"],
    [{ doc, fetched_at: "yesterday" }, "fetched_at"],
    [{ doc, stale_since: "2026-13-45" }, "stale_since"],
  ];
  for (const [h, field] of cases) {
    assert.throws(
      () => parseEntry(ID, h),
      (err: unknown) => err instanceof EntryFormatError && err.field === field && err.instanceId === ID && err.message.includes(field),
      `hash ${JSON.stringify(h)} should fail on ${field}`,
    );
  }
});

test("parseMessage reads changed_keys on refreshed messages, and tells a message without it apart", () => {
  assert.deepEqual(parseMessage('{"id":"a","change":"refreshed","deployed_version":7,"changed_keys":["batchSize","x"],"rev":12}'), {
    id: "a",
    change: "refreshed",
    deployedVersion: 7,
    rev: 12,
    changedKeys: ["batchSize", "x"],
  });
  const empty = parseMessage('{"id":"a","change":"refreshed","deployed_version":7,"changed_keys":[],"rev":13}');
  assert.deepEqual(empty?.changedKeys, [], "[]: nothing changed");
  const old = parseMessage('{"id":"a","change":"refreshed","deployed_version":7,"rev":12}');
  assert.equal(old?.changedKeys, undefined, "an older daemon: anything may have changed");
  assert.equal(parseMessage('{"id":"a","change":"refreshed","changed_keys":[1],"rev":1}')?.changedKeys, undefined, "malformed changed_keys counts as absent");
  assert.deepEqual(parseMessage('{"id":"a","change":"deleted","rev":3}'), { id: "a", change: "deleted", rev: 3 });
});

test("parseMessage refuses what names no instance", () => {
  for (const p of ["", "not json", "[]", "null", '{"change":"refreshed"}', '{"id":""}', '{"id":7}']) {
    assert.equal(parseMessage(p), null, p);
  }
});

test("configDiffers: value, connection status, added and removed keys", () => {
  const a = makeDoc(ID, {
    config: {
      same: { value: "1" },
      value: { value: "1" },
      conn: { value: null, type: "CONNECTION", status: "ACTIVE" },
      connSame: { value: null, type: "CONNECTION", status: "ACTIVE" },
      removed: { value: "x" },
      nulled: { value: "y" },
    },
  });
  const b = makeDoc(ID, {
    config: {
      same: { value: "1" },
      value: { value: "2" },
      conn: { value: null, type: "CONNECTION", status: "ERROR" },
      connSame: { value: null, type: "CONNECTION", status: "ACTIVE" },
      added: { value: "z" },
      nulled: { value: null },
    },
  });
  assert.deepEqual(differingKeys(a, b), ["added", "conn", "nulled", "removed", "value"]);
  assert.equal(configDiffers(a, b, "same"), false);
  assert.equal(configDiffers(a, b, "toString"), false, "members of Object.prototype are no config keys");
  assert.deepEqual(differingKeys(null, b), ["added", "conn", "connSame", "nulled", "same", "value"]);
  assert.deepEqual(differingKeys(a, undefined), ["conn", "connSame", "nulled", "removed", "same", "value"]);
});

test("Keys names the contract's keys", () => {
  const k = new Keys();
  assert.equal(k.instance("abc"), "prismcache:instance:{abc}");
  assert.equal(k.customer("acme-001"), "prismcache:customer:{acme-001}");
  assert.equal(k.customerIntegration("acme-001", "Salesforce Sync"), "prismcache:customer:{acme-001}:integration:Salesforce Sync");
  assert.equal(new Keys("p:").events(), "p:events");
});
