package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/prismcache/prismcache/cache"
)

// fieldWriteID holds the entry's write id (State.WriteID): a "_" field,
// the daemon's bookkeeping, which apps ignore.
const fieldWriteID = "_write_id"

// fields encodes an entry as the fields of its hash, the inverse of
// cache.ParseEntry, except rev, which only the write script sets. Fields
// that hold their zero value are returned in del, to be deleted, so that a
// write never leaves an old value behind. Without withDoc it leaves the doc
// field (and the fields derived from the doc) out, for a write that keeps
// the document.
func fields(e cache.Entry, withDoc bool) (set map[string]string, del []string, err error) {
	set = make(map[string]string, 14)
	put := func(field, value string) {
		if value == "" {
			del = append(del, field)
			return
		}
		set[field] = value
	}
	switch {
	case !withDoc:
	case e.Doc != nil:
		b, err := json.Marshal(e.Doc)
		if err != nil {
			return nil, nil, fmt.Errorf("encode doc %s: %w", e.Doc.ID, err)
		}
		put(cache.FieldDoc, string(b))
	default:
		put(cache.FieldDoc, "")
	}
	set[cache.FieldStale] = boolField(e.Stale)
	set[cache.FieldEnabled] = boolField(e.Enabled)
	put(cache.FieldStaleSince, timeField(e.StaleSince))
	put(cache.FieldStaleReason, e.StaleReason)
	put(cache.FieldLastError, e.LastError)
	put(cache.FieldPriorStaleReason, e.PriorStaleReason)
	set[cache.FieldDeployedVersion] = strconv.Itoa(e.DeployedVersion)
	switch {
	case !withDoc:
	case e.Doc != nil && e.Doc.LastDeployedAt != nil:
		put(cache.FieldLastDeployedAt, timeField(*e.Doc.LastDeployedAt))
	default:
		put(cache.FieldLastDeployedAt, "")
	}
	put(cache.FieldFetchedAt, timeField(e.FetchedAt))
	put(cache.FieldUpdatedEventAt, timeField(e.UpdatedEventAt))
	put(cache.FieldEnabledEventAt, timeField(e.EnabledEventAt))
	return set, del, nil
}

func boolField(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func timeField(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
