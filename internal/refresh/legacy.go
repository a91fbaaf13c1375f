package refresh

import (
	"context"
	"errors"
	"fmt"
)

// legacyBatch is how many entries one round of DrainLegacy moves.
const legacyBatch = 500

// Maintain keeps the work set's layout in order; replicas call it every
// few seconds. It records the shard count again if the record vanished
// (Redis flushed), so that a replica started afterwards takes this count,
// and it moves work left in the single-slot layout of earlier versions into
// the shards: during a rolling upgrade, replicas of the earlier version
// keep queuing and claiming there, and whatever they queue or leave behind
// (their claims expire when they stop) is moved here, so no acknowledged
// work is lost. It returns how many ids it moved.
func (w *WorkSet) Maintain(ctx context.Context) (moved int, err error) {
	if err := w.rdb.SetNX(ctx, w.layoutKey, len(w.shards), 0).Err(); err != nil {
		return 0, fmt.Errorf("record the work set's shard count: %w", err)
	}
	for {
		n, err := w.drainLegacy(ctx)
		moved += n
		if err != nil || n < legacyBatch {
			return moved, err
		}
	}
}

// drainLegacy moves one batch from the earlier layout: it reads ids due
// there and ids whose old claims expired, queues them in the shards, then
// removes them from the old keys unless an old replica changed them since
// (they move on a later round).
func (w *WorkSet) drainLegacy(ctx context.Context) (int, error) {
	l := w.legacy
	res, err := legacyTakeScript.Run(ctx, w.rdb, []string{l.due, l.leases}, ms(w.now()), legacyBatch).StringSlice()
	if err != nil {
		return 0, fmt.Errorf("read the earlier work-set layout: %w", err)
	}
	if len(res)%3 != 0 {
		return 0, fmt.Errorf("read the earlier work-set layout: reply of %d elements", len(res))
	}
	if len(res) == 0 {
		return 0, nil
	}
	args := make([]any, 0, len(res))
	var errs []error
	for i := 0; i+2 < len(res); i += 3 {
		kind, id, score := res[i], res[i+1], res[i+2]
		due := w.now() // an expired claim is due at once
		if kind == "due" {
			due = scoreTime(score)
		}
		if err := w.Add(ctx, due, id); err != nil {
			errs = append(errs, err)
			continue
		}
		args = append(args, kind, id, score)
	}
	if len(args) > 0 {
		keys := []string{l.due, l.leases, l.owners, l.dirty, l.attempts, l.asked}
		if err := legacyForgetScript.Run(ctx, w.rdb, keys, args...).Err(); err != nil {
			errs = append(errs, fmt.Errorf("clear the earlier work-set layout: %w", err))
		}
	}
	return len(args) / 3, errors.Join(errs...)
}
