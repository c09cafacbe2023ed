package loadgen

import (
	"fmt"
	"math"
	"math/bits"
	"time"
)

// Hist is a histogram of durations in microseconds with bounded memory
// (7424 counters) and a relative error under 0.8%: values below 256 µs are
// exact, larger ones fall in buckets of 128 per power of two. Quantiles are
// reported as their bucket's upper bound (never below the true value),
// clipped to the exact maximum. Not safe for concurrent use.
type Hist struct {
	counts [256 + 56*128]uint64
	n      int64
	max    time.Duration
	sum    time.Duration
}

func bucketOf(us uint64) int {
	if us < 256 {
		return int(us)
	}
	e := bits.Len64(us) - 8 // us>>e is in [128, 256)
	return 256 + (e-1)*128 + int(us>>e) - 128
}

func upperOf(i int) uint64 {
	if i < 256 {
		return uint64(i)
	}
	e := (i-256)/128 + 1
	m := uint64((i-256)%128 + 128)
	return (m+1)<<e - 1
}

// Add records d (negative durations count as 0).
func (h *Hist) Add(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(uint64(d/time.Microsecond))]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

// Count is the number of values recorded.
func (h *Hist) Count() int64 { return h.n }

// Max is the largest value recorded.
func (h *Hist) Max() time.Duration { return h.max }

// Quantile returns the q-quantile (0 < q ≤ 1): the smallest bucket bound
// at or below which at least q of the values lie; 0 when empty.
func (h *Hist) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var cum int64
	for i, c := range h.counts {
		cum += int64(c)
		if cum >= rank {
			return min(time.Duration(upperOf(i)+1)*time.Microsecond-1, h.max)
		}
	}
	return h.max
}

// Quantiles summarises a Hist.
type Quantiles struct {
	N    int64         `json:"n"`
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	Max  time.Duration `json:"max_ns"`
	Mean time.Duration `json:"mean_ns"`
}

// Summary returns the histogram's quantiles.
func (h *Hist) Summary() Quantiles {
	q := Quantiles{N: h.n, P50: h.Quantile(0.5), P90: h.Quantile(0.9), P99: h.Quantile(0.99), Max: h.max}
	if h.n > 0 {
		q.Mean = h.sum / time.Duration(h.n)
	}
	return q
}

func (q Quantiles) String() string {
	if q.N == 0 {
		return "none"
	}
	r := func(d time.Duration) string {
		switch {
		case d < time.Millisecond:
			return fmt.Sprintf("%.2fms", float64(d)/1e6)
		case d < time.Second:
			return fmt.Sprintf("%.1fms", float64(d)/1e6)
		}
		return d.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("p50 %s, p90 %s, p99 %s, max %s (n=%d)", r(q.P50), r(q.P90), r(q.P99), r(q.Max), q.N)
}
