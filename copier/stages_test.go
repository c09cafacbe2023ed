package copier

import (
	"testing"
	"time"
)

// Quantiles come back as the upper bound of their bucket: never below the
// true value, at most 25% above it.
func TestHistQuantiles(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * 10 * time.Microsecond) // 10 µs .. 10 ms
	}
	s := h.snapshot()
	if s.Count() != 1000 {
		t.Fatalf("count %d", s.Count())
	}
	for _, c := range []struct {
		q    float64
		true time.Duration
	}{{0.5, 5 * time.Millisecond}, {0.9, 9 * time.Millisecond}, {0.99, 9900 * time.Microsecond}, {1, 10 * time.Millisecond}} {
		got := s.Quantile(c.q)
		if got < c.true || float64(got) > 1.25*float64(c.true)+1 {
			t.Errorf("q%.2f = %s, true %s", c.q, got, c.true)
		}
	}
	prev := s
	h.add(time.Second)
	d := h.snapshot().Sub(prev)
	if d.Count() != 1 || d.Quantile(0.5) < time.Second || d.Quantile(0.5) > 1250*time.Millisecond {
		t.Errorf("interval: %d samples, median %s", d.Count(), d.Quantile(0.5))
	}
	if (Hist{}).Quantile(0.99) != 0 {
		t.Error("a quantile of nothing")
	}
}
