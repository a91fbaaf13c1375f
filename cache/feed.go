package cache

// Change names what a write did, as published on the events channel.
type Change string

// The changes published on the events channel.
const (
	ChangeRefreshed Change = "refreshed"
	ChangeStale     Change = "stale"
	ChangeEnabled   Change = "enabled"
	ChangeDeleted   Change = "deleted"
)

// Message is one message on the events channel (docs/redis.md).
type Message struct {
	ID     string `json:"id"`
	Change Change `json:"change"`
	// DeployedVersion is the entry's deployed_version after the write;
	// absent on a delete, and while it is 0.
	DeployedVersion int `json:"deployed_version,omitempty"`
	// Rev is the entry's rev after the write.
	Rev int64 `json:"rev"`
	// ChangedKeys, on a refreshed message, are the config keys whose value
	// (for connections, status) the write changed — empty when it changed
	// none (ChangedKeys tells the rule). Nil when the message does not say:
	// other changes, and daemons before this field.
	ChangedKeys []string `json:"changed_keys,omitempty"`
}
