package copier

import (
	"slices"
	"sort"
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
// its zero value is ready (Bucket embeds one). The entries sit in fixed
// slots (idx maps a key to its slot); heap orders the slots by count, and
// pos is each slot's place in it, so that moving a slot touches no map.
type hotCounter struct {
	hotMu sync.Mutex
	slots []hotEntry
	idx   map[string]int32
	heap  []int32 // slots, a min-heap by count
	pos   []int32 // slot → index in heap
	hotN  int64   // copies counted
	reads int64
	marks int64
}

type hotEntry struct {
	key        string
	count, err int64
	since      time.Time
}

// siftDown moves the slot at heap index i down to its place.
func (h *hotCounter) siftDown(i int) {
	n := len(h.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && h.slots[h.heap[r]].count < h.slots[h.heap[l]].count {
			c = r
		}
		if h.slots[h.heap[c]].count >= h.slots[h.heap[i]].count {
			return
		}
		h.swap(i, c)
		i = c
	}
}

// siftUp moves the slot at heap index i up to its place.
func (h *hotCounter) siftUp(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h.slots[h.heap[p]].count <= h.slots[h.heap[i]].count {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *hotCounter) swap(i, j int) {
	h.heap[i], h.heap[j] = h.heap[j], h.heap[i]
	h.pos[h.heap[i]], h.pos[h.heap[j]] = int32(i), int32(j)
}

// counted records that entries were read for b and handed to its sink;
// cov holds the marks each key's read covered (Batch.covered).
func (b *Bucket) counted(entries []*store.Entry, cov map[string]int64) {
	now := time.Now()
	h := &b.hotCounter
	h.hotMu.Lock()
	defer h.hotMu.Unlock()
	if h.idx == nil {
		h.idx = make(map[string]int32, HotCapacity)
	}
	for _, e := range entries {
		h.reads++
		h.marks += cov[e.Key]
		h.hotN++
		if s, ok := h.idx[e.Key]; ok {
			h.slots[s].count++
			h.siftDown(int(h.pos[s]))
			continue
		}
		if len(h.slots) < HotCapacity {
			s := int32(len(h.slots))
			h.slots = append(h.slots, hotEntry{key: e.Key, count: 1, since: now})
			h.idx[e.Key] = s
			h.heap = append(h.heap, s)
			h.pos = append(h.pos, int32(len(h.heap)-1))
			h.siftUp(len(h.heap) - 1)
			continue
		}
		// replace the least counted: the new key may have had its count
		// before (the error bound)
		s := h.heap[0]
		least := h.slots[s].count
		delete(h.idx, h.slots[s].key)
		h.slots[s] = hotEntry{key: e.Key, count: least + 1, err: least, since: now}
		h.idx[e.Key] = s
		h.siftDown(0)
	}
}

// Figures returns the bucket's reads, marks and counter size.
func (b *Bucket) Figures() Figures {
	b.hotMu.Lock()
	defer b.hotMu.Unlock()
	return Figures{Reads: b.reads, Marks: b.marks, Tracked: len(b.slots), Total: b.hotN}
}

// HotKeys returns up to n keys of the bucket's counter, most copied first
// (by Copies, then by name), with the hot rule applied; rates are as of now.
func (b *Bucket) HotKeys(n int, now time.Time) []HotKey {
	b.hotMu.Lock()
	all := make([]HotKey, len(b.slots))
	for i, e := range b.slots {
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
