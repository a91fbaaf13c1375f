package cache

// DefaultPrefix is the key prefix used when none is configured.
const DefaultPrefix = "prismcache:"

// Keys names every Redis key of the contract under one prefix. Each key that
// belongs to one instance or one customer carries that id as a Redis Cluster
// hash tag ({…}), so the keys of one instance always live in one slot and can
// be written by one script. The zero value uses an empty prefix; use
// NewKeys(DefaultPrefix) for the default. Keys is a value and safe to share.
type Keys struct {
	prefix string
}

// NewKeys returns the key names under prefix.
func NewKeys(prefix string) Keys { return Keys{prefix: prefix} }

// Prefix returns the prefix every key starts with.
func (k Keys) Prefix() string { return k.prefix }

// Instance is the hash holding one instance's entry.
func (k Keys) Instance(id string) string { return k.prefix + "instance:{" + id + "}" }

// Tombstone is the key left behind by a delete, with a TTL, so that late
// events and in-flight fetches cannot bring the instance back.
func (k Keys) Tombstone(id string) string { return k.prefix + "tombstone:{" + id + "}" }

// Customer is the set of instance ids that belong to the customer with this
// external id.
func (k Keys) Customer(externalID string) string {
	return k.prefix + "customer:{" + externalID + "}"
}

// CustomerIntegration is the set of instance ids of one integration for the
// customer with this external id. It shares the customer's hash tag.
func (k Keys) CustomerIntegration(externalID, integration string) string {
	return k.prefix + "customer:{" + externalID + "}:integration:" + integration
}

// ConfigVariable maps an InstanceConfigVariable id to the id of the instance
// that owns it; connection events that carry only the variable's id are
// resolved through it.
func (k Keys) ConfigVariable(id string) string { return k.prefix + "configvar:{" + id + "}" }

// Events is the pub/sub channel on which every change is published.
func (k Keys) Events() string { return k.prefix + "events" }

// SyncMarker is a hash whose field "at" is written after a complete sync.
// Its absence tells the daemon that Redis was flushed or replaced and must be
// repopulated; a pass in progress keeps its token in the field "pass".
func (k Keys) SyncMarker() string { return k.prefix + "synced" }

// ReconcileLease is held by the one replica whose reconciler is running.
func (k Keys) ReconcileLease() string { return k.prefix + "reconcile:lease" }

// InstanceDedup records a webhook body about one instance that was already
// applied. It shares the instance's hash tag, so the write script sets it in
// the same step as the effect.
func (k Keys) InstanceDedup(id, sum string) string { return k.prefix + "dedup:{" + id + "}:" + sum }

// WorkDedup records a webhook body whose only effect was to queue work. It
// shares the work set's hash tag, so the queuing script sets it in the same
// step.
func (k Keys) WorkDedup(sum string) string { return k.prefix + "{work}:dedup:" + sum }

// WorkDue, WorkLeases, WorkOwners, WorkDirty and WorkAttempts are the durable
// work set; they share one hash tag so that its scripts stay in one slot.
func (k Keys) WorkDue() string { return k.prefix + "{work}:due" }

// WorkLeases is a sorted set of claimed ids scored by lease expiry (ms).
func (k Keys) WorkLeases() string { return k.prefix + "{work}:leases" }

// WorkOwners maps a claimed id to the token of the claim that holds it.
func (k Keys) WorkOwners() string { return k.prefix + "{work}:owners" }

// WorkDirty is the set of claimed ids marked again while claimed.
func (k Keys) WorkDirty() string { return k.prefix + "{work}:dirty" }

// WorkAttempts counts failed attempts per id since its last success.
func (k Keys) WorkAttempts() string { return k.prefix + "{work}:attempts" }

// WorkAsked holds, for queued jobs, when they were last asked for.
func (k Keys) WorkAsked() string { return k.prefix + "{work}:asked" }

// WorkWake is the channel on which new due work is announced to all replicas.
func (k Keys) WorkWake() string { return k.prefix + "{work}:wake" }

// WorkResults is the channel on which workers announce the outcome of each
// run, for callers that wait on a refresh.
func (k Keys) WorkResults() string { return k.prefix + "{work}:results" }
