package copier

import "math"

// BacklogSample is the number of dirty keys Backlog classifies: up to it
// the backlog per bucket is exact, beyond it estimated.
const BacklogSample = 1024

// Backlog is the copier's dirty set split by bucket: the keys waiting to
// be copied (queued or in flight) that of says may belong to each bucket
// (a key's buckets by its name: the dirty set holds names, and a key's
// type, hence its route, is only known when it is read; a key that may
// belong to several buckets counts in each). Total is every key waiting.
// When the set holds at most BacklogSample keys, PerBucket is exact;
// otherwise it is estimated from BacklogSample keys taken from a random
// start of the set (Estimated): each bucket's share of the sample times
// Total, within about ±3% of Total (95%). The set's lock is held only
// while the sample's names are copied; of runs outside it.
type Backlog struct {
	Total     int
	PerBucket map[string]int
	Estimated bool
}

// Backlog returns the dirty set split by bucket (see the type).
func (c *Copier) Backlog(of func(key string) []string) Backlog {
	sample, total := c.dirty.Sample(BacklogSample)
	return backlogOf(sample, total, of)
}

// backlogOf scales the buckets of sample, taken from a set of total keys.
func backlogOf(sample []string, total int, of func(key string) []string) Backlog {
	bl := Backlog{Total: total, PerBucket: map[string]int{}, Estimated: len(sample) < total}
	for _, k := range sample {
		for _, b := range of(k) {
			bl.PerBucket[b]++
		}
	}
	if bl.Estimated && len(sample) > 0 {
		for b, n := range bl.PerBucket {
			bl.PerBucket[b] = int(math.Round(float64(n) * float64(total) / float64(len(sample))))
		}
	}
	return bl
}
