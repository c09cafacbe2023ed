package copier

import (
	"fmt"
	"testing"
	"time"

	"github.com/redisplit/redisplit/store"
)

// feed counts keys as one chunk each (as apply does per chunk), with one
// mark covered per key.
func feed(b *Bucket, keys ...string) {
	es := make([]*store.Entry, len(keys))
	cov := map[string]int64{}
	for i, k := range keys {
		es[i] = &store.Entry{Key: k}
		cov[k] = 1
	}
	b.counted(es, cov)
}

// A key copied every 11th time among 100,000 keys copied once is the top
// hot key, its count within Space-Saving's bound, in a counter that never
// holds more than HotCapacity keys.
func TestHotCounterFindsTheHeavyKeyAmongManyDistinct(t *testing.T) {
	b := &Bucket{}
	const distinct, every = 100_000, 10
	hot := 0
	for i := 0; i < distinct; i++ {
		feed(b, fmt.Sprint("cold:", i))
		if i%every == 0 {
			feed(b, "hot")
			hot++
		}
	}
	f := b.Figures()
	if f.Tracked > HotCapacity || f.Total != int64(distinct+hot) || f.Reads != f.Total || f.Marks != f.Total {
		t.Fatalf("figures %+v: want at most %d keys tracked, %d copies", f, HotCapacity, distinct+hot)
	}
	top := b.HotKeys(10, time.Now())
	if len(top) != 10 || top[0].Key != "hot" || !top[0].Hot {
		t.Fatalf("top keys %+v: want hot first and hot", top)
	}
	bound := f.Total / HotCapacity // Space-Saving's error bound
	if k := top[0]; k.Copies > int64(hot) || k.Copies+k.Over < int64(hot) || k.Over > bound {
		t.Errorf("hot: copies %d (+%d) for %d true copies; error bound %d", k.Copies, k.Over, hot, bound)
	}
	for _, k := range top[1:] {
		if k.Hot || k.Copies > 2 {
			t.Errorf("a cold key reported as %+v", k)
		}
	}
}

// Keys copied equally often are none of them hot, however often.
func TestHotCounterUniformLoadHasNoHotKey(t *testing.T) {
	b := &Bucket{}
	for round := 0; round < 200; round++ {
		for i := 0; i < 20; i++ {
			feed(b, fmt.Sprint("k", i))
		}
	}
	for _, k := range b.HotKeys(10, time.Now()) {
		if k.Hot || k.Copies != 200 || k.Over != 0 {
			t.Errorf("uniform load: %+v", k)
		}
	}
}

func TestIsHotRule(t *testing.T) {
	for _, c := range []struct {
		copies, median int64
		hot            bool
	}{
		{HotMinCopies - 1, 0, false}, // too few, whatever the median
		{HotMinCopies, 1, true},
		{HotMinCopies, 2, false}, // not 10x the median
		{1000, 100, true},
		{999, 100, false},
	} {
		if got := IsHot(c.copies, c.median); got != c.hot {
			t.Errorf("IsHot(%d, %d) = %v, want %v", c.copies, c.median, got, c.hot)
		}
	}
}

// A copy covers every mark since the key's previous copy was taken, by
// every producer; a mark while in flight is covered by the next copy.
func TestBatchCoversEveryMarkSinceTheLastTake(t *testing.T) {
	d := NewDirtySet(1, 100, 1<<20)
	p, q := d.Producer("capture"), d.Producer("rescan")
	for i := 0; i < 5; i++ {
		p.Mark(bg(), "a", 0)
	}
	q.Mark(bg(), "a", 0)
	p.Mark(bg(), "b", 0)
	cov := map[string]int64{"stale": 9}
	b := takeNow(t, d, 0, 10)
	b.covered(cov)
	if len(cov) != 2 || cov["a"] != 6 || cov["b"] != 1 {
		t.Fatalf("covered %v, want a:6 b:1", cov)
	}
	p.Mark(bg(), "a", 0) // while in flight
	d.Done(b)
	b = takeNow(t, d, 0, 10)
	b.covered(cov)
	if len(cov) != 1 || cov["a"] != 1 {
		t.Fatalf("covered after the recopy %v, want a:1", cov)
	}
	d.Done(b)
}

func TestBacklogExactOrEstimated(t *testing.T) {
	of := func(k string) []string {
		switch k[0] {
		case 's':
			return []string{"session"}
		case 'x':
			return []string{"session", "cache"} // either, by its name
		}
		return []string{"cache"}
	}
	bl := backlogOf([]string{"s1", "s2", "c1", "x1"}, 4, of)
	if bl.Estimated || bl.Total != 4 || bl.PerBucket["session"] != 3 || bl.PerBucket["cache"] != 2 {
		t.Errorf("exact backlog: %+v", bl)
	}
	bl = backlogOf([]string{"s1", "c1", "c2", "c3"}, 4000, of)
	if !bl.Estimated || bl.PerBucket["session"] != 1000 || bl.PerBucket["cache"] != 3000 {
		t.Errorf("estimated backlog: %+v", bl)
	}
	// the sample of a real set: at most BacklogSample names, every one in it
	d := NewDirtySet(2, 10_000, 1<<30)
	p := d.Producer("t")
	for i := 0; i < 3000; i++ {
		p.Mark(bg(), fmt.Sprint("k", i), 0)
	}
	sample, total := d.Sample(BacklogSample)
	seen := map[string]bool{}
	for _, k := range sample {
		seen[k] = true
	}
	if total != 3000 || len(sample) != BacklogSample || len(seen) != BacklogSample {
		t.Errorf("sample of %d keys: %d names (%d distinct), total %d", 3000, len(sample), len(seen), total)
	}
}

// BenchmarkHotCounterDistinctKeys is the counter's worst case, a backfill:
// every key new, each replacing the least counted. Reported per key.
//
//	go test ./copier -run '^$' -bench HotCounter
func BenchmarkHotCounterDistinctKeys(b *testing.B) {
	const chunk = 1024
	es := make([]*store.Entry, chunk)
	cov := map[string]int64{}
	for i := range es {
		es[i] = &store.Entry{Key: fmt.Sprintf("cache:user:%08d", i)}
		cov[es[i].Key] = 1
	}
	bk := &Bucket{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bk.counted(es, cov)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*chunk), "ns/key")
}
