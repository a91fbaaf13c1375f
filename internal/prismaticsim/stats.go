package prismaticsim

import (
	"maps"
	"sync"
)

// Stats counts what the simulator served and sent since it started or since
// the last ResetStats. Sim.Stats returns a copy.
type Stats struct {
	// APIRequests counts every POST /api, whatever its answer.
	APIRequests int64 `json:"apiRequests"`
	// GraphQLRequests counts the /api requests that got past faults and auth
	// and were answered with a GraphQL response (valid or not).
	GraphQLRequests int64 `json:"graphqlRequests"`
	Unauthorized    int64 `json:"unauthorized"`
	RateLimited     int64 `json:"rateLimited"`
	ServerErrors    int64 `json:"serverErrors"`
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

type statsState struct {
	mu sync.Mutex
	s  Stats
}

func newStatsState() *statsState {
	return &statsState{s: Stats{InstanceFetchesByID: map[string]int64{}}}
}

func (st *statsState) add(f func(s *Stats)) {
	st.mu.Lock()
	f(&st.s)
	st.mu.Unlock()
}

// Stats returns a copy of the counters.
func (s *Sim) Stats() Stats {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	out := s.stats.s
	out.InstanceFetchesByID = maps.Clone(s.stats.s.InstanceFetchesByID)
	return out
}

// ResetStats sets every counter to zero.
func (s *Sim) ResetStats() {
	s.stats.mu.Lock()
	s.stats.s = Stats{InstanceFetchesByID: map[string]int64{}}
	s.stats.mu.Unlock()
}
