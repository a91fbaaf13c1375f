package prismaticsim

import (
	"math/rand/v2"
	"sync"
	"time"
)

// faultState holds the current fault settings and the seeded source their
// choices are drawn from. Safe for concurrent use.
type faultState struct {
	mu  sync.Mutex
	cfg Faults
	rng *rand.Rand
}

func newFaultState(seed uint64, f Faults) *faultState {
	return &faultState{cfg: f, rng: rand.New(rand.NewPCG(seed, 0x6661756c7473))} // "faults"
}

// Faults returns the current fault settings.
func (s *Sim) Faults() Faults {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	return s.faults.cfg
}

// SetFaults replaces the fault settings; later requests and webhooks use
// them.
func (s *Sim) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.faults.mu.Lock()
	s.faults.cfg = f
	s.faults.mu.Unlock()
	return nil
}

// apiFault is what to do to one /api request.
type apiFault struct {
	delay      time.Duration
	status     int // 0, 429 or 500
	retryAfter time.Duration
}

// forAPI draws the faults of one /api request. It draws the same number of
// values whatever the settings, so a run stays reproducible when faults are
// switched on and off between requests.
func (f *faultState) forAPI() apiFault {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cfg
	jitter, limit, fail := f.rng.Float64(), f.rng.Float64(), f.rng.Float64()
	out := apiFault{delay: c.Latency}
	if c.LatencyJitter > 0 {
		out.delay += time.Duration((2*jitter - 1) * float64(c.LatencyJitter))
		out.delay = max(out.delay, 0)
	}
	switch {
	case limit < c.RateLimitRate:
		out.status = 429
		out.retryAfter = c.RetryAfter
		if out.retryAfter == 0 {
			out.retryAfter = DefaultRetryAfter
		}
	case fail < c.ErrorRate:
		out.status = 500
	}
	return out
}

// webhookFault is what to do to one webhook.
type webhookFault struct {
	drop, duplicate, reorder bool
	reorderDelay             time.Duration
}

func (f *faultState) forWebhook() webhookFault {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cfg
	drop, dup, reorder := f.rng.Float64(), f.rng.Float64(), f.rng.Float64()
	out := webhookFault{
		drop:         drop < c.WebhookDropRate,
		duplicate:    dup < c.WebhookDuplicateRate,
		reorder:      reorder < c.WebhookReorderRate,
		reorderDelay: c.ReorderDelay,
	}
	if out.reorderDelay == 0 {
		out.reorderDelay = DefaultReorderDelay
	}
	return out
}
