package copier

import (
	"math"
	"sync/atomic"
	"time"
)

// Where a copy's time goes. Every key a worker copies passes three stages,
// timed by the copier itself:
//
//   - wait: from the mark that made the key dirty (the first mark since its
//     previous copy was taken) until a worker takes it;
//   - read: the batch's read from the source (the Throttle's pause and
//     budget included), until the chunk holding the key is handed over;
//   - write: the chunk's writes to the key's buckets (journal, sink, the
//     replica's acknowledgement), the slowest bucket of the chunk.
//
// Their sum is the copier's share of a write's lag; change capture's
// delay (legacy publishing the event, the subscriber reading it) comes
// before it and is not included. Histograms are cumulative since the
// copier started; StageStats.Sub gives an interval's.

// stageBounds are the histograms' upper bounds: 50 µs × 1.25^i, i < 64
// (the last bucket, above 50 µs × 1.25^62 ≈ 50 min, holds the rest).
const stageBuckets = 64

func stageBound(i int) time.Duration {
	return time.Duration(50e3 * math.Pow(1.25, float64(i)))
}

// hist is a lock-free log-scale histogram of durations.
type hist struct {
	n [stageBuckets]atomic.Int64
}

func (h *hist) add(d time.Duration) {
	i := 0
	if d > 50*time.Microsecond {
		i = int(math.Ceil(math.Log(float64(d)/50e3) / math.Log(1.25)))
		i = min(max(i, 0), stageBuckets-1)
	}
	h.n[i].Add(1)
}

func (h *hist) snapshot() Hist {
	var s Hist
	for i := range h.n {
		s.N[i] = h.n[i].Load()
	}
	return s
}

// Hist is a snapshot of one stage's histogram.
type Hist struct {
	N [stageBuckets]int64
}

// Count returns the number of samples.
func (h Hist) Count() int64 {
	var t int64
	for _, n := range h.N {
		t += n
	}
	return t
}

// Quantile returns the upper bound of the bucket holding quantile q (0..1)
// of the samples: within 25% above the true value. 0 without samples.
func (h Hist) Quantile(q float64) time.Duration {
	t := h.Count()
	if t == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(t)))
	var c int64
	for i, n := range h.N {
		c += n
		if c >= max(rank, 1) {
			return stageBound(i)
		}
	}
	return stageBound(stageBuckets - 1)
}

// Sub returns h minus an earlier snapshot of the same histogram.
func (h Hist) Sub(prev Hist) Hist {
	for i := range h.N {
		h.N[i] -= prev.N[i]
	}
	return h
}

// StageStats are the copier's stage histograms (see the stages above).
type StageStats struct {
	Wait, Read, Write Hist
}

// Sub returns s minus an earlier snapshot.
func (s StageStats) Sub(prev StageStats) StageStats {
	return StageStats{Wait: s.Wait.Sub(prev.Wait), Read: s.Read.Sub(prev.Read), Write: s.Write.Sub(prev.Write)}
}

type stages struct {
	wait, read, write hist
}

func (s *stages) snapshot() StageStats {
	return StageStats{Wait: s.wait.snapshot(), Read: s.read.snapshot(), Write: s.write.snapshot()}
}

// Stages returns the copier's stage histograms since it started.
func (c *Copier) Stages() StageStats { return c.stages.snapshot() }
