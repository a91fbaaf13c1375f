package prismaticsim

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// StatsWindow is how far back Stats.APIRequestsPerSecond reaches.
const StatsWindow = 5 * time.Minute

// Stats counts what the simulator served and sent since it started or since
// the last ResetStats. Sim.Stats returns a copy.
type Stats struct {
	// APIRequests counts every POST /api, whatever its answer.
	APIRequests int64 `json:"apiRequests"`
	// APIRequestsPerSecond counts the /api requests that arrived in each
	// second of the clock (Options.Now), oldest first, from the first second
	// with a request to the last one, seconds without a request included,
	// reaching back at most StatsWindow. APIRequestRate reads it.
	APIRequestsPerSecond []SecondCount `json:"apiRequestsPerSecond"`
	// GraphQLRequests counts the /api requests that got past faults and auth
	// and were answered with a GraphQL response (valid or not).
	GraphQLRequests int64 `json:"graphqlRequests"`
	// GraphQLRequestsByOperation counts GraphQLRequests by the name of the
	// operation (the document's, else the request's operationName), or
	// "(anonymous)".
	GraphQLRequestsByOperation map[string]int64 `json:"graphqlRequestsByOperation"`
	Unauthorized               int64            `json:"unauthorized"`
	RateLimited                int64            `json:"rateLimited"`
	ServerErrors               int64            `json:"serverErrors"`
	// TooComplex counts the requests refused because they asked for a page
	// larger than Faults.PageSizeLimit.
	TooComplex int64 `json:"tooComplex"`
	// InstanceFetches counts resolutions of Query.instance(id:), in total
	// and by the id asked for (unknown ids included).
	InstanceFetches     int64            `json:"instanceFetches"`
	InstanceFetchesByID map[string]int64 `json:"instanceFetchesById"`
	// TokensIssued counts successful /auth/refresh exchanges.
	TokensIssued int64 `json:"tokensIssued"`

	// WebhookEvents counts events generated (sent or not).
	WebhookEvents int64 `json:"webhookEvents"`
	// WebhookAttempts counts HTTP POSTs made, retries and duplicates included.
	WebhookAttempts int64 `json:"webhookAttempts"`
	// WebhooksSent counts deliveries answered 2xx (a duplicate is a second
	// delivery); WebhooksFailed those that ran out of retries.
	WebhooksSent       int64 `json:"webhooksSent"`
	WebhooksFailed     int64 `json:"webhooksFailed"`
	WebhooksDropped    int64 `json:"webhooksDropped"`
	WebhooksDuplicated int64 `json:"webhooksDuplicated"`
	WebhooksReordered  int64 `json:"webhooksReordered"`
}

// SecondCount is how many requests arrived in the second that starts at
// Second.
type SecondCount struct {
	Second   time.Time `json:"second"`
	Requests int64     `json:"requests"`
}

// APIRequestRate is the mean number of /api requests per second over the
// whole seconds from from up to (not including) to's second, read from
// APIRequestsPerSecond; 0 for an empty span.
func (st Stats) APIRequestRate(from, to time.Time) float64 {
	from, to = from.Truncate(time.Second), to.Truncate(time.Second)
	secs := to.Sub(from).Seconds()
	if secs <= 0 {
		return 0
	}
	var n int64
	for _, c := range st.APIRequestsPerSecond {
		if !c.Second.Before(from) && c.Second.Before(to) {
			n += c.Requests
		}
	}
	return float64(n) / secs
}

// window is the number of one-second buckets kept.
const window = int64(StatsWindow / time.Second)

type statsState struct {
	now func() time.Time

	mu sync.Mutex
	s  Stats
	// perSecond is a ring of buckets indexed by Unix second modulo window;
	// a bucket whose second is not the one asked for is stale.
	perSecond [window]struct{ sec, n int64 }
	first     int64 // the first second with a request since the reset
	counted   bool  // whether there was one
}

func newStatsState(now func() time.Time) *statsState {
	st := &statsState{now: now}
	st.reset()
	return st
}

// reset sets every counter to zero; st.mu must be held or st unshared.
func (st *statsState) reset() {
	st.s = Stats{InstanceFetchesByID: map[string]int64{}, GraphQLRequestsByOperation: map[string]int64{}}
	st.perSecond = [window]struct{ sec, n int64 }{}
	st.first, st.counted = 0, false
}

func (st *statsState) add(f func(s *Stats)) {
	st.mu.Lock()
	f(&st.s)
	st.mu.Unlock()
}

// apiRequest counts one /api request, in total and in its second.
func (st *statsState) apiRequest() {
	sec := st.now().Unix()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s.APIRequests++
	b := &st.perSecond[sec%window]
	if b.sec != sec {
		b.sec, b.n = sec, 0
	}
	b.n++
	if !st.counted {
		st.first, st.counted = sec, true
	}
}

// series reads the per-second buckets from the first second with a request
// (at most window seconds back) to the last one; st.mu must be held.
func (st *statsState) series() []SecondCount {
	if !st.counted {
		return []SecondCount{}
	}
	last := st.first
	for _, b := range st.perSecond {
		last = max(last, b.sec)
	}
	start := max(st.first, last-window+1)
	out := make([]SecondCount, 0, last-start+1)
	for sec := start; sec <= last; sec++ {
		c := SecondCount{Second: time.Unix(sec, 0).UTC()}
		if b := st.perSecond[sec%window]; b.sec == sec {
			c.Requests = b.n
		}
		out = append(out, c)
	}
	// Seconds before the first request of a ring that wrapped are zeros
	// from stale buckets only; trim them so the series starts with traffic.
	for len(out) > 0 && out[0].Requests == 0 {
		out = out[1:]
	}
	return slices.Clip(out)
}

// Stats returns a copy of the counters.
func (s *Sim) Stats() Stats {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	out := s.stats.s
	out.InstanceFetchesByID = maps.Clone(s.stats.s.InstanceFetchesByID)
	out.GraphQLRequestsByOperation = maps.Clone(s.stats.s.GraphQLRequestsByOperation)
	out.APIRequestsPerSecond = s.stats.series()
	return out
}

// ResetStats sets every counter to zero.
func (s *Sim) ResetStats() {
	s.stats.mu.Lock()
	s.stats.reset()
	s.stats.mu.Unlock()
}
