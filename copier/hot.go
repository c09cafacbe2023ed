package copier

import (
	"container/heap"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redisplit/redisplit/store"
)

// Hot keys and coalescing: what each bucket's copies cost, per key.
//
// Every key handed to a bucket's sink (written, deleted, or held by its
// Admit; not a key skipped because the bucket had failed) is counted in
// the bucket's hot-key counter, and the marks its read covered (every Mark
// of the key, by any producer, since its previous copy was taken) in the
// bucket's figures. Guarantees:
//
//  1. Bounded memory: the counter is Space-Saving (Metwally et al. 2005)
//     with HotCapacity entries per bucket, whatever the keyspace and the
//     write rate; it takes the bucket's lock once per chunk, not per key.
//  2. No key copied more than Total/HotCapacity times in the bucket is
//     missed, and a key's Copies is a lower bound: the exact number of
//     copies counted since Since, when the key last entered the counter
//     (Over is the counter's error bound for the time before). A key that
//     was never evicted from the counter has Over 0 and Copies exact.
//  3. Hot (the one rule, HotKey.Hot): at least HotMinCopies copies and at
//     least HotFactor times the median Copies of the keys tracked: a key
//     copied unusually often compared with the bucket's other busy keys,
//     never a key that only stands out because the bucket is quiet.

// HotCapacity is the number of keys a bucket's hot-key counter tracks.
const HotCapacity = 64

// HotMinCopies and HotFactor are the hot rule (guarantee 3).
const (
	HotMinCopies = 10
	HotFactor    = 10
)

// HotKey is one key of a bucket's hot-key counter.
type HotKey struct {
	Key    string
	Copies int64     // copies counted since Since (a lower bound for the run)
	Over   int64     // error bound: the key may have had up to Over more copies before Since
	Since  time.Time // when the key entered the counter
	PerSec float64   // Copies over the time since Since (at least one second)
	Hot    bool      // the hot rule holds (guarantee 3)
}

// Figures are a bucket's per-key costs since the copier started.
type Figures struct {
	// Reads counts keys read for the bucket and handed to its sink; Marks
	// counts the marks those reads covered. Marks − Reads is what
	// coalescing saved: marks that cost no read of their own.
	Reads, Marks int64
	// Tracked is the number of keys in the hot-key counter (at most
	// HotCapacity); Total the copies it counted.
	Tracked int
	Total   int64
}

// hotCounter is a bucket's Space-Saving counter and coalescing figures;
// its zero value is ready (Bucket embeds one).
type hotCounter struct {
	hotMu sync.Mutex
	hotH  hotHeap // min-heap by count, with its key → index map
	hotN  int64   // copies counted
	reads int64
	marks int64
}

type hotEntry struct {
	key        string
	count, err int64
	since      time.Time
}

type hotHeap struct {
	e   []hotEntry
	idx map[string]int
}

func (h *hotHeap) Len() int           { return len(h.e) }
func (h *hotHeap) Less(i, j int) bool { return h.e[i].count < h.e[j].count }
func (h *hotHeap) Swap(i, j int) {
	h.e[i], h.e[j] = h.e[j], h.e[i]
	h.idx[h.e[i].key], h.idx[h.e[j].key] = i, j
}
func (h *hotHeap) Push(x any) {
	h.e = append(h.e, x.(hotEntry))
	h.idx[h.e[len(h.e)-1].key] = len(h.e) - 1
}
func (h *hotHeap) Pop() any {
	x := h.e[len(h.e)-1]
	h.e = h.e[:len(h.e)-1]
	delete(h.idx, x.key)
	return x
}

// counted records that entries were read for b and handed to its sink;
// cov holds the marks each key's read covered (Batch.covered).
func (b *Bucket) counted(entries []*store.Entry, cov map[string]int64) {
	now := time.Now()
	b.hotMu.Lock()
	defer b.hotMu.Unlock()
	if b.hotH.idx == nil {
		b.hotH.idx = make(map[string]int, HotCapacity)
	}
	for _, e := range entries {
		b.reads++
		b.marks += cov[e.Key]
		b.hotN++
		if i, ok := b.hotH.idx[e.Key]; ok {
			b.hotH.e[i].count++
			heap.Fix(&b.hotH, i)
			continue
		}
		if len(b.hotH.e) < HotCapacity {
			heap.Push(&b.hotH, hotEntry{key: strings.Clone(e.Key), count: 1, since: now})
			continue
		}
		// replace the least counted: it may have had its count before
		least := b.hotH.e[0]
		delete(b.hotH.idx, least.key)
		b.hotH.e[0] = hotEntry{key: strings.Clone(e.Key), count: least.count + 1, err: least.count, since: now}
		b.hotH.idx[b.hotH.e[0].key] = 0
		heap.Fix(&b.hotH, 0)
	}
}

// Figures returns the bucket's reads, marks and counter size.
func (b *Bucket) Figures() Figures {
	b.hotMu.Lock()
	defer b.hotMu.Unlock()
	return Figures{Reads: b.reads, Marks: b.marks, Tracked: len(b.hotH.e), Total: b.hotN}
}

// HotKeys returns up to n keys of the bucket's counter, most copied first
// (by Copies, then by name), with the hot rule applied; rates are as of now.
func (b *Bucket) HotKeys(n int, now time.Time) []HotKey {
	b.hotMu.Lock()
	all := make([]HotKey, len(b.hotH.e))
	for i, e := range b.hotH.e {
		all[i] = HotKey{Key: e.key, Copies: e.count - e.err, Over: e.err, Since: e.since}
	}
	b.hotMu.Unlock()
	return topHot(all, n, now)
}

// topHot sorts keys, applies the hot rule over all of them and keeps n.
func topHot(all []HotKey, n int, now time.Time) []HotKey {
	if len(all) == 0 || n <= 0 {
		return nil
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Copies != all[j].Copies {
			return all[i].Copies > all[j].Copies
		}
		return all[i].Key < all[j].Key
	})
	med := medianCopies(all)
	for i := range all {
		k := &all[i]
		k.Hot = IsHot(k.Copies, med)
		k.PerSec = float64(k.Copies) / max(now.Sub(k.Since).Seconds(), 1)
	}
	return slices.Clip(all[:min(n, len(all))])
}

// medianCopies is the median Copies of keys sorted by Copies, descending.
func medianCopies(sorted []HotKey) int64 {
	m := len(sorted)
	if m%2 == 1 {
		return sorted[m/2].Copies
	}
	return (sorted[m/2-1].Copies + sorted[m/2].Copies) / 2
}

// IsHot is the hot rule (guarantee 3): copies of one key against the
// median copies of the keys tracked with it.
func IsHot(copies, median int64) bool {
	return copies >= HotMinCopies && copies >= HotFactor*median
}
