package migrate

import (
	"testing"
	"time"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/state"
)

// The idle-time bins are ordered, contiguous and cover every value: a
// value lies in its bin's range, and each bin starts where the previous
// one ended.
func TestIdleBinsContiguous(t *testing.T) {
	prevMax := int64(-1)
	for b := 0; b < idleBins-1; b++ {
		lo, hi := prevMax+1, idleBinMax(b)
		if hi < lo {
			t.Fatalf("bin %d: max %d below its start %d", b, hi, lo)
		}
		for _, v := range []int64{lo, hi, (lo + hi) / 2} {
			if got := idleBin(v); got != b {
				t.Fatalf("idle %d: bin %d, want %d (range %d..%d)", v, got, b, lo, hi)
			}
		}
		prevMax = hi
	}
	if idleBin(1<<62) != idleBins-1 || idleBin(-3) != 0 {
		t.Errorf("out-of-range values: %d %d", idleBin(1<<62), idleBin(-3))
	}
	if freqBin(255) != 0 || freqBin(0) != 255 || binThreshold(MetricFreq, freqBin(17)) != 17 {
		t.Errorf("freq bins: %d %d %d", freqBin(255), freqBin(0), binThreshold(MetricFreq, freqBin(17)))
	}
}

// A key hot at the selection stays hot while the clock moves on; a colder
// one does not become hot; none and an empty selection warm nothing.
func TestHotNow(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := &state.Warm{Policy: config.CopyHot, Metric: MetricIdle, Threshold: 60, SelectedAt: at}
	for _, tc := range []struct {
		idle  int64
		after time.Duration
		want  bool
	}{
		{60, 0, true}, {61, 0, false}, {61, 500 * time.Millisecond, true}, // elapsed seconds round up
		{60 + 600, 10 * time.Minute, true}, {61 + 600, 10 * time.Minute, false}, {0, time.Hour, true},
	} {
		if got := hotNow(w, tc.idle, at.Add(tc.after)); got != tc.want {
			t.Errorf("idle %d after %s: hot %v, want %v", tc.idle, tc.after, got, tc.want)
		}
	}
	f := &state.Warm{Policy: config.CopyHot, Metric: MetricFreq, Threshold: 12}
	if !hotNow(f, 12, at) || hotNow(f, 11, at) {
		t.Error("LFU threshold")
	}
	for _, x := range []*state.Warm{{Policy: config.CopyNone, Threshold: -1}, {Policy: config.CopyHot, Metric: MetricIdle, Threshold: -1}} {
		if hotNow(x, 0, at) {
			t.Errorf("%+v warms a key", x)
		}
	}
}
