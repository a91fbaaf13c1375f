package refresh

import (
	"maps"
	"time"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/webhook"
)

// Reasons a fetch writes nothing.
const (
	SkipDeleted      = webhook.SkipDeleted
	SkipNotFound     = "instance not found and not cached"
	SkipNeverDeploy  = "instance was never deployed"
	SkipOlderVersion = "fetched deployedVersion is older than the cached one"
	SkipOlderFetch   = "a fetch that started later already wrote the entry"
)

// DecideWrite decides what a fetch that started at started and returned doc
// (nil: the instance does not exist) does to the entry in st. It is pure; the
// caller applies the mutation as a compare-and-set and decides again if it
// lost a race. A nil mutation comes with the reason.
//
//   - needsDeploy=false: the fetched config is the deployed one; it replaces
//     the entry and clears stale.
//   - needsDeploy=true: the API shows config that is not live; the entry
//     keeps the deployed config it has, takes only the live parts (connection
//     status and refresh times, customer fields) and is stale with reason
//     needs_deploy. With no deployed config cached (a new instance, or after
//     a flush), the stored config is written, stale with reason
//     undeployed_config, which says the doc may hold values not yet live.
//   - an instance.updated that arrived after the fetch started and is newer
//     than the fetched deploy keeps the entry stale; an enable or disable
//     newer than the fetch start keeps its flag.
//   - a tombstone, an older deployedVersion, or a fetch older than the one
//     the entry holds writes nothing.
//   - an event time ahead of now keeps nothing (see aheadOfClock).
func DecideWrite(st store.State, doc *cache.Doc, started, now time.Time) (*store.Mutation, string) {
	if st.Tombstoned {
		return nil, SkipDeleted
	}
	cur := beforeFailure(aheadOfClock(st.Entry, started, now))
	if doc == nil {
		if !st.Exists {
			return nil, SkipNotFound
		}
		return &store.Mutation{Kind: cache.ChangeDeleted, Delete: true}, ""
	}
	if cur.Doc == nil && doc.DeployedVersion == 0 {
		return nil, SkipNeverDeploy
	}
	if cur.Doc != nil {
		if doc.DeployedVersion < cur.Doc.DeployedVersion {
			return nil, SkipOlderVersion
		}
		if cur.FetchedAt.After(started) {
			return nil, SkipOlderFetch
		}
	}
	next := cur
	switch {
	case !doc.NeedsDeploy:
		next.Doc = doc
		next.Stale, next.StaleReason = false, ""
	case cur.Doc == nil || cur.StaleReason == cache.StaleUndeployed:
		// No deployed config to keep: the stored one, labelled as such.
		next.Doc = doc
		next.Stale, next.StaleReason = true, cache.StaleUndeployed
	default:
		next.Doc = mergeLive(cur.Doc, doc)
		next.Stale, next.StaleReason = true, cache.StaleNeedsDeploy
	}
	if next.StaleReason != cache.StaleUndeployed && !next.Stale && cur.UpdatedEventAt.After(started) &&
		(doc.LastDeployedAt == nil || cur.UpdatedEventAt.After(*doc.LastDeployedAt)) {
		next.Stale, next.StaleReason = true, cache.StaleUpdated
	}
	if cur.EnabledEventAt.After(started) {
		next.Enabled = cur.Enabled
	} else {
		next.Enabled = doc.Enabled
	}
	if next.Doc.Enabled != next.Enabled {
		d := *next.Doc
		d.Enabled = next.Enabled
		next.Doc = &d
	}
	switch {
	case !next.Stale:
		next.StaleSince = time.Time{}
	case cur.Stale && !cur.StaleSince.IsZero():
		next.StaleSince = cur.StaleSince
	case next.StaleReason == cache.StaleNeedsDeploy && doc.UpdatedAt != nil:
		next.StaleSince = *doc.UpdatedAt
	default:
		next.StaleSince = now
	}
	next.DeployedVersion = next.Doc.DeployedVersion
	next.FetchedAt = started
	next.LastError = ""
	return &store.Mutation{Kind: cache.ChangeRefreshed, Entry: next}, ""
}

// aheadOfClock finds the event times of e that are ahead of now and moves
// them back to started, the time the fetch reflects, so that they are not
// newer than the fetch. Such a time is an entry written before the intake
// refused events dated past --max-clock-skew, or a sender's clock running
// ahead within it. Kept, it would win every comparison until the clock
// caught up — years, for a year-9999 time — and pin the entry stale or its
// flag; so what the fetch found decides instead. Should an event within
// the skew really have arrived during the fetch, the fetch runs once more
// (the intake's AddIfRunning) and that run decides.
func aheadOfClock(e cache.Entry, started, now time.Time) cache.Entry {
	if e.UpdatedEventAt.After(now) {
		e.UpdatedEventAt = started
	}
	if e.EnabledEventAt.After(now) {
		e.EnabledEventAt = started
	}
	return e
}

// mergeLive returns the cached document with the parts of fetched that are
// live without a deploy: connection status and refresh times, and the
// customer's fields.
func mergeLive(cached, fetched *cache.Doc) *cache.Doc {
	d := *cached
	d.Config = maps.Clone(cached.Config)
	d.Customer = fetched.Customer
	d.NeedsDeploy = fetched.NeedsDeploy
	for key, cv := range d.Config {
		f, ok := fetched.Config[key]
		if !ok || !cv.IsConnection() || !f.IsConnection() {
			continue
		}
		cv.Status, cv.RefreshAt, cv.LastSuccessfulRefreshAt = f.Status, f.RefreshAt, f.LastSuccessfulRefreshAt
		d.Config[key] = cv
	}
	return &d
}

// beforeFailure returns the entry as it was before its fetches began to
// fail: a fetch that succeeds decides from what the entry said then (its
// stale reason, its stale time), not from the failure.
func beforeFailure(e cache.Entry) cache.Entry {
	if e.StaleReason == cache.StaleFetchFailed {
		e.StaleReason = e.PriorStaleReason
		e.Stale = e.StaleReason != ""
		if !e.Stale {
			e.StaleSince = time.Time{}
		}
	}
	e.PriorStaleReason = ""
	return e
}

// DecideFailure decides what a fetch that keeps failing does: the entry
// keeps its data, turns stale with reason fetch_failed — keeping, in
// prior_stale_reason, the reason it was stale for before, and its stale
// time — and says why in last_error. Nothing is written for an instance
// that is not cached, nor when the entry says so already.
func DecideFailure(st store.State, msg string, now time.Time) *store.Mutation {
	if st.Tombstoned || st.Entry.Doc == nil {
		return nil
	}
	next := st.Entry
	if next.StaleReason == cache.StaleFetchFailed && next.LastError == msg {
		return nil
	}
	next.LastError = msg
	if next.StaleReason != cache.StaleFetchFailed {
		next.PriorStaleReason = ""
		if next.Stale {
			next.PriorStaleReason = next.StaleReason
		} else {
			next.StaleSince = now
		}
		next.Stale, next.StaleReason = true, cache.StaleFetchFailed
	}
	return &store.Mutation{Kind: cache.ChangeStale, Entry: next, KeepDoc: true}
}
