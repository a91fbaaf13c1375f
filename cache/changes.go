package cache

import (
	"encoding/json"
	"slices"
)

// ChangedKeys returns the config keys whose value — for connections and
// credentials, whose status, never a value — differs between two deployed
// documents, keys added or removed included, sorted. A nil document counts
// as one without config. It is the rule behind the change feed's
// changed_keys (docs/redis.md).
func ChangedKeys(prev, next *Doc) []string {
	var a, b map[string]ConfigValue
	if prev != nil {
		a = prev.Config
	}
	if next != nil {
		b = next.Config
	}
	keys := []string{}
	for k, nv := range b {
		if pv, ok := a[k]; !ok || !sameValue(pv, nv) {
			keys = append(keys, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// sameValue reports whether a variable holds the same as another: its
// status for a connection or credential, its value otherwise.
func sameValue(a, b ConfigValue) bool {
	if a.Type == TypeConnection || a.Type == TypeCredential || b.Type == TypeConnection || b.Type == TypeCredential {
		return a.Type == b.Type && a.Status == b.Status
	}
	switch {
	case a.Value == nil || b.Value == nil:
		return a.Value == nil && b.Value == nil
	default:
		return *a.Value == *b.Value
	}
}

// messageJSON is Message as it is encoded.
type messageJSON struct {
	ID              string    `json:"id"`
	Change          Change    `json:"change"`
	DeployedVersion int       `json:"deployed_version,omitempty"`
	Rev             int64     `json:"rev"`
	ChangedKeys     *[]string `json:"changed_keys,omitempty"`
}

// MarshalJSON writes changed_keys exactly when ChangedKeys is not nil: an
// empty list says a refresh changed nothing, an absent one that the
// message does not tell.
func (m Message) MarshalJSON() ([]byte, error) {
	j := messageJSON{ID: m.ID, Change: m.Change, DeployedVersion: m.DeployedVersion, Rev: m.Rev}
	if m.ChangedKeys != nil {
		j.ChangedKeys = &m.ChangedKeys
	}
	return json.Marshal(j)
}
