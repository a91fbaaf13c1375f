package refresh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prismcache/prismcache/cache"
	"github.com/prismcache/prismcache/internal/store"
	"github.com/prismcache/prismcache/internal/webhook"
)

// Result is the outcome of one run for one id, published on the results
// channel so that whoever waits on a refresh, on any replica, learns it.
type Result struct {
	ID string `json:"id"`
	// OK is true when the fetch succeeded (whether or not it wrote).
	OK bool `json:"ok"`
	// Rev is the entry's rev after the write, 0 when nothing was written.
	Rev int64 `json:"rev,omitempty"`
	// Change is what the write did ("refreshed", "deleted", …), "" for none.
	Change cache.Change `json:"change,omitempty"`
	// Skip says why nothing was written.
	Skip string `json:"skip,omitempty"`
	// Error is the fetch's error, "" on success.
	Error string `json:"error,omitempty"`
	// Retrying is true when the id is queued again after this failure.
	Retrying bool `json:"retrying,omitempty"`
	// Dropped is true when the failed work was moot and is not retried:
	// the instance was deleted meanwhile, or the API says it does not exist
	// and nothing of it is cached.
	Dropped bool `json:"dropped,omitempty"`
	// Attempts counts the failed runs of the id so far, this one included.
	Attempts int `json:"attempts,omitempty"`
	// Started is when the run began (the worker's clock).
	Started time.Time `json:"started"`
	// Claimed is when the run's claim was taken, by Redis's clock, so a
	// waiter on any replica can tell a run that began after its request
	// from one that was already in flight.
	Claimed time.Time `json:"claimed"`
	// Took is how long the run lasted; in JSON it is tookSeconds, a number
	// of seconds, as every duration the daemon shows.
	Took time.Duration `json:"-"`
}

// resultJSON is Result's JSON form.
type resultJSON struct {
	resultFields
	TookSeconds float64 `json:"tookSeconds,omitempty"`
}

type resultFields Result // Result without its methods

// MarshalJSON writes Took as tookSeconds.
func (r Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(resultJSON{resultFields: resultFields(r), TookSeconds: r.Took.Seconds()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Result) UnmarshalJSON(b []byte) error {
	var v resultJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Result(v.resultFields)
	r.Took = time.Duration(v.TookSeconds * float64(time.Second))
	return nil
}

// Waiters lets callers wait for the next result of an id, whichever replica
// runs it. It holds one subscription to the results channel. Start it before
// use; it is safe for concurrent use.
type Waiters struct {
	rdb    redis.UniversalClient
	keys   store.Keys
	log    *slog.Logger
	mu     sync.Mutex
	byID   map[string]map[chan Result]struct{}
	ps     *redis.PubSub
	doneCh chan struct{}
}

// NewWaiters returns Waiters on the results channel under keys.
func NewWaiters(rdb redis.UniversalClient, keys store.Keys, log *slog.Logger) *Waiters {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Waiters{rdb: rdb, keys: keys, log: log, byID: map[string]map[chan Result]struct{}{}}
}

// Start subscribes and returns once the subscription is confirmed, so no
// result published afterwards is missed.
func (w *Waiters) Start(ctx context.Context) error {
	ps := w.rdb.Subscribe(ctx, w.keys.WorkResults())
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return fmt.Errorf("subscribe to results: %w", err)
	}
	w.ps, w.doneCh = ps, make(chan struct{})
	go w.loop()
	return nil
}

func (w *Waiters) loop() {
	defer close(w.doneCh)
	for msg := range w.ps.Channel() {
		w.mu.Lock()
		none := len(w.byID) == 0
		w.mu.Unlock()
		if none {
			continue // every replica's every fetch is published here; most have no waiter
		}
		var r Result
		if err := json.Unmarshal([]byte(msg.Payload), &r); err != nil {
			w.log.Warn("bad message on the results channel", "err", err)
			continue
		}
		w.mu.Lock()
		for ch := range w.byID[r.ID] {
			select {
			case ch <- r:
			default:
			}
		}
		w.mu.Unlock()
	}
}

// Close ends the subscription.
func (w *Waiters) Close() error {
	if w.ps == nil {
		return nil
	}
	err := w.ps.Close()
	<-w.doneCh
	return err
}

// Register starts listening for results of id; call it before queuing the
// id. Results arrive on the returned channel until cancel is called.
func (w *Waiters) Register(id string) (results <-chan Result, cancel func()) {
	ch := make(chan Result, 4)
	w.mu.Lock()
	if w.byID[id] == nil {
		w.byID[id] = map[chan Result]struct{}{}
	}
	w.byID[id][ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(w.byID[id], ch)
		if len(w.byID[id]) == 0 {
			delete(w.byID, id)
		}
		w.mu.Unlock()
	}
}

func publishResult(ctx context.Context, rdb redis.UniversalClient, channel string, r Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return rdb.Publish(ctx, channel, b).Err()
}

// Requester queues refreshes and waits for their outcome. Its zero value is
// not usable; fill both fields.
type Requester struct {
	Exec    Executor
	Waiters *Waiters
}

// ErrNoResult: no run of the id finished before the context ended; the id
// stays queued.
var ErrNoResult = errors.New("no result yet")

// Refresh queues id through the work set — the one path every refresh takes —
// and waits for the first run that began after the request. A failed run
// that will be retried is returned as it is (Retrying set).
func (r Requester) Refresh(ctx context.Context, id string) (Result, error) {
	results, cancel := r.Waiters.Register(id)
	defer cancel()
	asked, err := r.Exec.Work.Now(ctx)
	if err != nil {
		return Result{}, err
	}
	asked = asked.Truncate(time.Millisecond) // claims are stamped in whole ms
	if _, err := r.Exec.Execute(ctx, webhook.FetchPlan(id), nil, Once{}); err != nil {
		return Result{}, err
	}
	for {
		select {
		case <-ctx.Done():
			return Result{}, fmt.Errorf("refresh %s: %w", id, ErrNoResult)
		case res := <-results:
			if res.Claimed.Before(asked) {
				continue // a run that was already in flight; ours follows it
			}
			return res, nil
		}
	}
}
