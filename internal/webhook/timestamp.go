package webhook

import (
	"fmt"
	"time"
)

// CheckTime decides whether an event dated ts may be acted on at now. An
// event dated more than skew ahead of now is refused: event times order
// effects, and a time in the future would win every later comparison, so
// one such event would pin an entry (stale, or disabled) until the clock
// caught up. With window positive, an event dated further than window from
// now, either way, is refused too. skew must be positive.
//
// The comparisons are between times, never differences of times, so no
// timestamp the parser admits (years 1 to 9999) can overflow them: a
// Duration spans only ±292 years, and time.Time.Sub saturates at its ends.
func CheckTime(ts, now time.Time, skew, window time.Duration) error {
	if window > 0 && (ts.Before(now.Add(-window)) || ts.After(now.Add(window))) {
		return fmt.Errorf("%w: timestamp %s is outside the accepted window of ±%s",
			ErrInvalid, ts.Format(time.RFC3339Nano), window)
	}
	if ts.After(now.Add(skew)) {
		return fmt.Errorf("%w: timestamp %s is ahead of this server's clock (%s) by more than --max-clock-skew=%s",
			ErrInvalid, ts.Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339), skew)
	}
	return nil
}
