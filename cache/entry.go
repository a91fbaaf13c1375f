package cache

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Field names of an instance entry hash. Fields whose name starts with "_"
// are the daemon's own ordering bookkeeping: apps must not depend on them.
const (
	FieldDoc             = "doc"
	FieldStale           = "stale"
	FieldStaleSince      = "stale_since"
	FieldStaleReason     = "stale_reason"
	FieldEnabled         = "enabled"
	FieldDeployedVersion = "deployed_version"
	FieldLastDeployedAt  = "last_deployed_at"
	FieldFetchedAt       = "fetched_at"
	FieldRev             = "rev"
	FieldLastError       = "last_error"
	// FieldPriorStaleReason: while stale_reason is fetch_failed, why the
	// entry was stale before its fetches began to fail; absent when it was
	// fresh.
	FieldPriorStaleReason = "prior_stale_reason"

	// FieldUpdatedEventAt and FieldEnabledEventAt are the daemon's ordering
	// bookkeeping (docs/ordering.md): apps ignore them.
	FieldUpdatedEventAt = "_updated_event_at"
	FieldEnabledEventAt = "_enabled_event_at"
)

// Reasons an entry is stale, in its stale_reason field.
const (
	// StaleUpdated: Prismatic sent instance.updated; the stored config changed
	// and the change is not live until the instance is deployed.
	StaleUpdated = "updated"
	// StaleNeedsDeploy: the last fetch found needsDeploy=true, so the API could
	// not show the deployed values; the entry keeps the last deployed config it
	// had (or, if it had none, the stored config).
	StaleNeedsDeploy = "needs_deploy"
	// StaleFetchFailed: fetching the instance keeps failing; the entry keeps
	// its data, last_error says why, prior_stale_reason says why it was
	// stale before (if it was), and the daemon keeps retrying.
	StaleFetchFailed = "fetch_failed"
	// StaleUndeployed: the instance was first fetched while it had undeployed
	// changes (after a flush, say), when the API cannot show the deployed
	// values; the doc holds Prismatic's stored config, some of which may not
	// be live yet. The next deploy makes the entry fresh.
	StaleUndeployed = "undeployed_config"
)

// Doc is the JSON document in an entry's doc field: the instance as it was
// deployed when the daemon fetched it. Its JSON form is part of the public
// contract (docs/redis.md).
type Doc struct {
	ID              string                 `json:"id"`
	Name            string                 `json:"name"`
	Enabled         bool                   `json:"enabled"`
	NeedsDeploy     bool                   `json:"needsDeploy"`
	DeployedVersion int                    `json:"deployedVersion"`
	LastDeployedAt  *time.Time             `json:"lastDeployedAt"`
	UpdatedAt       *time.Time             `json:"updatedAt,omitempty"`
	Customer        Customer               `json:"customer"`
	Integration     Integration            `json:"integration"`
	Config          map[string]ConfigValue `json:"config"`
}

// Customer is the customer an instance belongs to.
type Customer struct {
	ID         string `json:"id"`
	ExternalID string `json:"externalId"`
	Name       string `json:"name"`
}

// Integration is the integration version an instance runs.
type Integration struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	VersionNumber int    `json:"versionNumber"`
}

// ConfigValue is one config variable of an instance, keyed in Doc.Config by
// its requiredConfigVariable key. Value is nil for connections and
// credentials: their inputs are secrets and are never cached.
type ConfigValue struct {
	ID                       string     `json:"id,omitempty"`
	Value                    *string    `json:"value"`
	Type                     string     `json:"type"`
	Status                   string     `json:"status,omitempty"`
	RefreshAt                *time.Time `json:"refreshAt,omitempty"`
	LastSuccessfulRefreshAt  *time.Time `json:"lastSuccessfulRefreshAt,omitempty"`
	CustomerConfigVariableID string     `json:"customerConfigVariableId,omitempty"`
}

// Data types of config variables the cache treats specially.
const (
	TypeConnection = "CONNECTION"
	TypeCredential = "CREDENTIAL"
)

// IsConnection reports whether the variable is a connection, whose status and
// refresh times change without a deploy.
func (c ConfigValue) IsConnection() bool { return c.Type == TypeConnection }

// Entry is one instance entry as stored in Redis: the document plus the
// fields that say how fresh it is. The zero value is an empty entry with no
// document.
type Entry struct {
	// Doc is nil when the hash holds no document.
	Doc             *Doc
	Stale           bool
	StaleSince      time.Time
	StaleReason     string
	Enabled         bool
	DeployedVersion int
	FetchedAt       time.Time
	Rev             int64
	LastError       string
	// PriorStaleReason is, while StaleReason is fetch_failed, the reason
	// the entry was stale before its fetches began to fail ("" if fresh).
	PriorStaleReason string

	// Ordering bookkeeping (fields starting with "_"): the event timestamps
	// of the newest instance.updated and instance.enabled/disabled applied.
	UpdatedEventAt time.Time
	EnabledEventAt time.Time
}

// ParseEntry decodes an entry from the fields of its hash, as HGETALL returns
// them. An empty map gives the zero Entry. A field that does not parse is an
// error naming the field.
func ParseEntry(h map[string]string) (Entry, error) {
	var e Entry
	var err error
	if s, ok := h[FieldDoc]; ok && s != "" {
		var d Doc
		if err := json.Unmarshal([]byte(s), &d); err != nil {
			return Entry{}, fmt.Errorf("field %s: %w", FieldDoc, err)
		}
		e.Doc = &d
	}
	e.Stale = h[FieldStale] == "1"
	e.Enabled = h[FieldEnabled] == "1"
	e.StaleReason = h[FieldStaleReason]
	e.LastError = h[FieldLastError]
	e.PriorStaleReason = h[FieldPriorStaleReason]
	if s := h[FieldRev]; s != "" {
		if e.Rev, err = strconv.ParseInt(s, 10, 64); err != nil {
			return Entry{}, fmt.Errorf("field %s: %w", FieldRev, err)
		}
	}
	if s := h[FieldDeployedVersion]; s != "" {
		if e.DeployedVersion, err = strconv.Atoi(s); err != nil {
			return Entry{}, fmt.Errorf("field %s: %w", FieldDeployedVersion, err)
		}
	}
	times := []struct {
		field string
		dst   *time.Time
	}{
		{FieldStaleSince, &e.StaleSince}, {FieldFetchedAt, &e.FetchedAt},
		{FieldUpdatedEventAt, &e.UpdatedEventAt}, {FieldEnabledEventAt, &e.EnabledEventAt},
	}
	for _, f := range times {
		if s := h[f.field]; s != "" {
			if *f.dst, err = time.Parse(time.RFC3339Nano, s); err != nil {
				return Entry{}, fmt.Errorf("field %s: %w", f.field, err)
			}
		}
	}
	return e, nil
}
