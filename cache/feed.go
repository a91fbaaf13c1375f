package cache

import "encoding/json"

// Change names what a write did, as published on the events channel.
type Change string

// The changes published on the events channel.
const (
	ChangeRefreshed Change = "refreshed"
	ChangeStale     Change = "stale"
	ChangeEnabled   Change = "enabled"
	ChangeDeleted   Change = "deleted"
)

// Message is one message on the events channel (docs/redis.md). Decode it
// with encoding/json; encode it with MarshalJSON (json.Marshal calls it).
type Message struct {
	ID     string `json:"id"`
	Change Change `json:"change"`
	// DeployedVersion is the entry's deployed_version after the write;
	// absent on a delete, and while it is 0.
	DeployedVersion int `json:"deployed_version,omitempty"`
	// Rev is the entry's rev after the write.
	Rev int64 `json:"rev"`
	// ChangedKeys, on a refreshed message, are the config keys whose value
	// (for connections: status) differs between the document the write
	// replaced and the one it wrote, sorted (see ChangedKeys). Nil means
	// the message did not say — other changes, and daemons older than the
	// field — so anything may have changed; a non-nil empty slice means
	// the refresh changed no config value.
	ChangedKeys []string `json:"changed_keys,omitzero"`
}

// MarshalJSON encodes m as the events channel carries it: changed_keys is
// present exactly when ChangedKeys is non-nil, so that "nothing changed"
// ([]) and "not said" (absent) stay apart.
func (m Message) MarshalJSON() ([]byte, error) {
	type wire Message // the same fields without this method
	return json.Marshal(wire(m))
}
