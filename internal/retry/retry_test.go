package retry

import (
	"testing"
	"time"
)

func TestDelayGrowsDoublesAndCaps(t *testing.T) {
	p := Policy{Base: time.Second, Cap: time.Minute}
	for _, tc := range []struct {
		n        int
		lo, high time.Duration
	}{
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{3, 2 * time.Second, 4 * time.Second},
		{7, 30 * time.Second, time.Minute},  // 64s capped at 60s
		{50, 30 * time.Second, time.Minute}, // no overflow however long it fails
	} {
		for range 200 {
			d := p.Delay(tc.n, 0)
			if d < tc.lo || d > tc.high {
				t.Fatalf("Delay(%d) = %s, want within [%s, %s]", tc.n, d, tc.lo, tc.high)
			}
		}
	}
}

func TestDelayHonoursRetryAfter(t *testing.T) {
	p := Policy{Base: time.Second, Cap: time.Minute}
	if d := p.Delay(1, 90*time.Second); d != 90*time.Second {
		t.Fatalf("Delay with Retry-After 90s = %s, want 90s: the other side's wait wins when longer", d)
	}
	if d := p.Delay(1, 10*time.Millisecond); d < 500*time.Millisecond {
		t.Fatalf("Delay with a short Retry-After = %s, want the policy's own wait", d)
	}
}

func TestFullJitterSpreadsFromZero(t *testing.T) {
	p := Policy{Base: time.Second, Cap: time.Second, FullJitter: true}
	sawLow := false
	for range 1000 {
		d := p.Delay(1, 0)
		if d < 0 || d > time.Second {
			t.Fatalf("Delay = %s, want within [0, 1s]", d)
		}
		if d < 250*time.Millisecond {
			sawLow = true
		}
	}
	if !sawLow {
		t.Fatal("full jitter never drew a wait below a quarter of the ceiling in 1000 draws")
	}
}

func TestBackoffResets(t *testing.T) {
	b := Backoff{Policy: Policy{Base: time.Second, Cap: 8 * time.Second}}
	for range 5 {
		b.Next(0)
	}
	if b.Failures() != 5 {
		t.Fatalf("Failures = %d, want 5", b.Failures())
	}
	b.Reset()
	if d := b.Next(0); d > time.Second {
		t.Fatalf("first wait after Reset = %s, want at most Base", d)
	}
}
