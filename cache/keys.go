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
// Its absence tells that Redis was flushed or replaced and is being
// repopulated.
func (k Keys) SyncMarker() string { return k.prefix + "synced" }
