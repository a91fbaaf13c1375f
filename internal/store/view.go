package store

import (
	"time"

	"github.com/prismcache/prismcache/cache"
)

// EntryView is the JSON form of an entry that prismcache's CLI and admin API
// print: the public fields of the hash, decoded.
type EntryView struct {
	ID          string     `json:"id"`
	Stale       bool       `json:"stale"`
	StaleSince  *time.Time `json:"staleSince,omitempty"`
	StaleReason string     `json:"staleReason,omitempty"`
	// PriorStaleReason: while StaleReason is fetch_failed, why the entry was
	// stale before its fetches began to fail.
	PriorStaleReason string     `json:"priorStaleReason,omitempty"`
	Enabled          bool       `json:"enabled"`
	DeployedVersion  int        `json:"deployedVersion"`
	FetchedAt        *time.Time `json:"fetchedAt,omitempty"`
	Rev              int64      `json:"rev"`
	LastError        string     `json:"lastError,omitempty"`
	Doc              *cache.Doc `json:"doc"`
}

// View returns the entry's JSON form.
func View(e cache.Entry) EntryView {
	v := EntryView{
		Stale: e.Stale, StaleReason: e.StaleReason, PriorStaleReason: e.PriorStaleReason, Enabled: e.Enabled,
		DeployedVersion: e.DeployedVersion, Rev: e.Rev, LastError: e.LastError, Doc: e.Doc,
	}
	if e.Doc != nil {
		v.ID = e.Doc.ID
	}
	if !e.StaleSince.IsZero() {
		t := e.StaleSince
		v.StaleSince = &t
	}
	if !e.FetchedAt.IsZero() {
		t := e.FetchedAt
		v.FetchedAt = &t
	}
	return v
}
