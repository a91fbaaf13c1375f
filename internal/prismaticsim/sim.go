package prismaticsim

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/vektah/gqlparser/v2/ast"
)

// Sim is a simulated Prismatic organisation and the HTTP API in front of it.
// Create one with New and Close it when done. All methods are safe for
// concurrent use.
type Sim struct {
	opts Options
	log  *slog.Logger

	// mu guards the model, the event clock and the payload shape. GraphQL
	// requests hold the read lock for their whole execution, so each answer
	// is one consistent snapshot, as a database transaction would give.
	mu    sync.RWMutex
	m     *model
	last  time.Time
	shape PayloadShape

	lists listings // the instances listings select, sorted; see Instances

	schema  *ast.Schema // the schema served: schema.graphql, or its variant
	gql     *executor.Executor
	auth    *authority
	faults  *faultState
	stats   *statsState
	hooks   *sender
	handler http.Handler
}

// New seeds a model from opts and returns a Sim serving it. It starts no
// goroutine until a webhook needs a retry or a delayed send.
func New(opts Options) (*Sim, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("prismaticsim: %w", err)
	}
	schema, err := servedSchema(opts.SchemaChange)
	if err != nil {
		return nil, fmt.Errorf("prismaticsim: %w", err)
	}
	base := opts.Now().UTC().Truncate(time.Microsecond)
	s := &Sim{
		opts:   opts,
		log:    opts.Logger,
		m:      seed(opts.Seed, opts.Customers, base),
		last:   base,
		shape:  opts.ConnectionPayload,
		auth:   newAuthority(opts),
		faults: newFaultState(opts.Seed, opts.Faults),
		stats:  newStatsState(opts.Now),
	}
	s.auth.subject = s.m.userID
	s.hooks = newSender(opts, s.faults, s.stats)
	s.schema = schema
	s.gql = s.newExecutor(schema)
	s.handler = s.routes()
	return s, nil
}

// Handler serves /api, /auth/refresh and /admin/.
func (s *Sim) Handler() http.Handler { return s.handler }

// Close sends any held-back (reordered) webhook and waits for background
// deliveries and their retries to finish. Later events are only recorded.
func (s *Sim) Close() error {
	s.hooks.close()
	return nil
}

// tick returns the timestamp of a new event: the clock's time, truncated to
// microseconds, or 1µs after the previous event when the clock has not moved
// past it, so events are strictly ordered. s.mu must be held.
func (s *Sim) tick() time.Time {
	t := s.opts.Now().UTC().Truncate(time.Microsecond)
	if !t.After(s.last) {
		t = s.last.Add(time.Microsecond)
	}
	s.last = t
	return t
}

// lockModel takes the write lock to change the model, and counts the
// change so that no listing remembered before it is served after it. Every
// operation that changes the model takes the lock this way.
func (s *Sim) lockModel() {
	s.mu.Lock()
	s.m.gen++
}

// now is the clock without the bump, for token expiry.
func (s *Sim) now() time.Time { return s.opts.Now() }

// SetPayloadShape changes the shape of later connection events.
func (s *Sim) SetPayloadShape(p PayloadShape) error {
	if !p.valid() {
		return fmt.Errorf("payload shape %q: %w", p, ErrInvalidValue)
	}
	s.mu.Lock()
	s.shape = p
	s.mu.Unlock()
	return nil
}

// SetWebhookTarget changes where later webhooks go and how they are signed;
// an empty url means events are only recorded. Deliveries already started
// keep their target.
func (s *Sim) SetWebhookTarget(url, secret string) {
	s.hooks.setTarget(url, secret)
}
