package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// History is the list of an instance's latest revisions (docs/redis.md),
// newest first, in the instance's hash slot.
func (k Keys) History(id string) string { return k.prefix + "history:{" + id + "}" }

// Revision is one write of an instance's deployed document that changed it:
// a deploy, or a connection's status moving. The daemon keeps the latest
// few of each instance (--history-depth).
type Revision struct {
	// DeployedVersion and LastDeployedAt are the document's after the write.
	DeployedVersion int        `json:"deployed_version"`
	LastDeployedAt  *time.Time `json:"last_deployed_at,omitempty"`
	// Rev is the entry's rev after the write; At when the daemon wrote it.
	Rev int64     `json:"rev"`
	At  time.Time `json:"at"`
	// Changes are the keys the write changed (ChangedKeys), with their old
	// and new values.
	Changes []RevisionChange `json:"changes"`
}

// RevisionChange is one key's change in a Revision. Old is nil for a key
// the revision added, New for one it removed. For connections and
// credentials, Old and New are the status: their values are secrets and
// are never kept.
type RevisionChange struct {
	Key  string  `json:"key"`
	Type string  `json:"type"`
	Old  *string `json:"old"`
	New  *string `json:"new"`
}

// NewRevision describes the write that turned prev into next (either may be
// nil).
func NewRevision(prev, next *Doc, rev int64, at time.Time) Revision {
	r := Revision{Rev: rev, At: at.UTC(), Changes: []RevisionChange{}}
	if next != nil {
		r.DeployedVersion, r.LastDeployedAt = next.DeployedVersion, next.LastDeployedAt
	}
	for _, key := range ChangedKeys(prev, next) {
		c := RevisionChange{Key: key}
		if prev != nil {
			if v, ok := prev.Config[key]; ok {
				c.Type, c.Old = v.Type, shown(v)
			}
		}
		if next != nil {
			if v, ok := next.Config[key]; ok {
				c.Type, c.New = v.Type, shown(v)
			}
		}
		r.Changes = append(r.Changes, c)
	}
	return r
}

// shown is what a revision keeps of a variable: its status for a
// connection or credential, else its value.
func shown(v ConfigValue) *string {
	if v.Type == TypeConnection || v.Type == TypeCredential {
		s := v.Status
		return &s
	}
	return v.Value
}

// History reads the revisions kept for instance id, newest first; none when
// the daemon keeps no history or the instance has none.
func (d Direct) History(ctx context.Context, id string) ([]Revision, error) {
	raw, err := d.Client.LRange(ctx, d.Keys.History(id), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", id, err)
	}
	out := make([]Revision, 0, len(raw))
	for i, s := range raw {
		var r Revision
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			return nil, fmt.Errorf("history %s: revision %d: %w", id, i, err)
		}
		out = append(out, r)
	}
	return out, nil
}
