package bench

import (
	"math"
	"slices"
	"time"
)

// Summary is the distribution of a set of latencies. The zero value is an
// empty set.
type Summary struct {
	N    int           `json:"n"`
	Mean time.Duration `json:"-"`
	P50  time.Duration `json:"-"`
	P90  time.Duration `json:"-"`
	P99  time.Duration `json:"-"`
	Max  time.Duration `json:"-"`
}

// Percentile returns the p-th quantile (0 ≤ p ≤ 1) of sorted by the
// nearest-rank method: the smallest value with at least p of the set at or
// below it. It is 0 for an empty set.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Summarize sorts d in place and returns its distribution.
func Summarize(d []time.Duration) Summary {
	if len(d) == 0 {
		return Summary{}
	}
	slices.Sort(d)
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return Summary{
		N: len(d), Mean: sum / time.Duration(len(d)),
		P50: Percentile(d, 0.50), P90: Percentile(d, 0.90), P99: Percentile(d, 0.99), Max: d[len(d)-1],
	}
}

// LatencyJSON is a Summary in milliseconds, as the JSON lines carry it.
type LatencyJSON struct {
	N      int     `json:"n"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
}

// JSON returns s in milliseconds, rounded to the microsecond.
func (s Summary) JSON() LatencyJSON {
	return LatencyJSON{N: s.N, MeanMS: ms(s.Mean), P50MS: ms(s.P50), P90MS: ms(s.P90), P99MS: ms(s.P99), MaxMS: ms(s.Max)}
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())) / 1e3 }

// Ratio returns a/b, or 0 when b is 0.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Counts summarizes counts per key over a set of keys (keys absent from
// counts count 0): the largest, the mean and the total.
func Counts(keys []string, counts map[string]int64) (maxN int64, mean float64, total int64) {
	for _, k := range keys {
		n := counts[k]
		total += n
		maxN = max(maxN, n)
	}
	if len(keys) > 0 {
		mean = float64(total) / float64(len(keys))
	}
	return maxN, mean, total
}
