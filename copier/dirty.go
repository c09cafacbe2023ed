package copier

import (
	"context"
	"errors"
	"math"
	"sort"
	"sync"
	"time"
)

// ErrClosed is returned by Mark, Wait and the workers once the dirty set is
// closed without a cause.
var ErrClosed = errors.New("copier: closed")

// entryOverhead is what one dirty key costs besides its name and size hint
// (the entry, its map slot and queue slot, one mark), counted in the bytes
// budget.
const entryOverhead = 128

// DirtySet is the coalescing set of keys waiting to be copied, partitioned
// by a hash of the key onto a fixed number of workers. Its contracts:
//
//  1. Coalescing: a key marked while it waits is not queued twice; marked
//     while its worker copies it, it is queued again once that copy is done
//     (a copy always reads after its marks, so the last read lands last).
//  2. One key is never handed out twice at once: a key belongs to
//     partition Partition(key, workers), only that partition's worker takes
//     it, and a taken key is not handed out again before Done.
//  3. Bounded: a mark that would add a key beyond MaxKeys keys or MaxBytes
//     bytes (name + size hint + a fixed overhead per key) blocks until
//     copies finish or its context ends; a mark is never dropped. Marks of
//     keys already dirty never block (a hot key costs one entry).
//  4. Per-producer watermark: each Mark returns the producer's next
//     sequence number; Applied(p) is the largest N such that every mark p
//     made with a sequence ≤ N is covered by a copy that was taken after
//     the mark and is Done.
//
// It is safe for concurrent use.
type DirtySet struct {
	mu       sync.Mutex
	keys     map[string]*entry
	parts    []part
	maxKeys  int
	maxBytes int64
	bytes    int64
	inFlight int
	space    chan struct{} // closed (and replaced) when keys leave the set
	closed   chan struct{}
	cause    error
	st       setStats
	wait     *hist // mark → Take per key (stages.go); nil: not timed
}

type setStats struct {
	marks, coalesced, recopies, taken int64
}

type part struct {
	q     []*entry
	head  int
	ready chan struct{} // capacity 1: a key was queued
}

type entry struct {
	key    string
	part   int
	hint   int64
	cost   int64
	queued bool    // in its partition's queue
	busy   bool    // taken, not yet Done
	n      uint32  // marks since it was last taken (saturating; hot.go)
	since  int64   // unix ns of the first of those marks (stages.go)
	takenN uint32  // marks covered by the copy in flight
	marks  []mark  // covered by the next copy
	taken  []mark  // covered by the copy in flight
	buf    [2]mark // marks and taken start here: no allocation for the usual one mark each
}

type mark struct {
	p   *Producer
	seq uint64
}

// NewDirtySet returns a set of workers partitions holding at most maxKeys
// keys and maxBytes bytes (both at least 1).
func NewDirtySet(workers, maxKeys int, maxBytes int64) *DirtySet {
	d := &DirtySet{keys: map[string]*entry{}, parts: make([]part, max(workers, 1)),
		maxKeys: max(maxKeys, 1), maxBytes: max(maxBytes, 1),
		space: make(chan struct{}), closed: make(chan struct{})}
	for i := range d.parts {
		d.parts[i].ready = make(chan struct{}, 1)
	}
	return d
}

// Partition is the worker of a key: FNV-1a of its name modulo n (the hash
// migrate's pipeline uses).
func Partition(key string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// Producer is one source of dirty marks (the backfill SCAN, change capture,
// a rescan, ...) with its own sequence numbers and watermark.
type Producer struct {
	name string
	d    *DirtySet
	// under d.mu
	last    uint64        // sequence of the last mark
	out     []pendingMark // marks not yet applied that carry the watermark, ascending
	head    int
	changed chan struct{} // closed (and replaced) when the watermark moves
}

type pendingMark struct {
	seq  uint64
	done bool
}

// Producer returns a new producer of marks named name (for reports).
func (d *DirtySet) Producer(name string) *Producer {
	return &Producer{name: name, d: d, changed: make(chan struct{})}
}

// Name returns the producer's name.
func (p *Producer) Name() string { return p.name }

// Mark marks key dirty and returns the mark's sequence number (1, 2, ... per
// producer). hint is the caller's estimate of the key's size in bytes (0
// when unknown): it counts in the bytes budget and bounds the batches. It
// blocks while the set is full and key is not already in it; it returns
// ctx's error if ctx ends first, or the close cause once the set is closed.
func (p *Producer) Mark(ctx context.Context, key string, hint int64) (uint64, error) {
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	return p.markLocked(ctx, key, hint)
}

// MarkAll marks keys (size hints 0) in order, as Mark would one by one, and
// returns the sequence number of the last mark. It takes the set's lock
// once for as many keys as fit, so that the workers find the keys queued
// together and read them in batches: the backfill marks a SCAN page this
// way. On an error, the keys before the failing one are marked.
func (p *Producer) MarkAll(ctx context.Context, keys []string) (uint64, error) {
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	seq := p.last
	for _, k := range keys {
		var err error
		if seq, err = p.markLocked(ctx, k, 0); err != nil {
			return p.last, err
		}
	}
	return seq, nil
}

// markLocked is Mark with d.mu held (it is released while waiting for
// room, and held again on return).
func (p *Producer) markLocked(ctx context.Context, key string, hint int64) (uint64, error) {
	d := p.d
	var e *entry
	for {
		select {
		case <-d.closed:
			return 0, d.closeErr()
		default:
		}
		if e = d.keys[key]; e != nil {
			break
		}
		cost := int64(len(key)) + max(hint, 0) + entryOverhead
		if len(d.keys) == 0 || (len(d.keys) < d.maxKeys && d.bytes+cost <= d.maxBytes) {
			e = &entry{key: key, part: Partition(key, len(d.parts)), hint: max(hint, 0), cost: cost}
			e.marks, e.taken = e.buf[0:0:1], e.buf[1:1:2]
			d.keys[key] = e
			d.bytes += cost
			break
		}
		space := d.space
		d.mu.Unlock()
		select {
		case <-space:
		case <-d.closed:
		case <-ctx.Done():
			d.mu.Lock()
			return 0, ctx.Err()
		}
		d.mu.Lock()
	}
	p.last++
	seq := p.last
	d.st.marks++
	if e.n == 0 {
		e.since = time.Now().UnixNano()
	}
	if e.n < math.MaxUint32 {
		e.n++
	}
	covered := false
	for _, m := range e.marks {
		if m.p == p {
			covered = true // an earlier mark of p waits for the same copy
			break
		}
	}
	if covered {
		d.st.coalesced++
	} else {
		if len(e.marks) > 0 { // another producer's mark waits for the same copy
			d.st.coalesced++
		}
		e.marks = append(e.marks, mark{p: p, seq: seq})
		p.out = append(p.out, pendingMark{seq: seq})
	}
	if !e.queued && !e.busy {
		d.enqueue(e)
	}
	return seq, nil
}

// Marked returns the sequence number of p's last mark (0 before the first).
func (p *Producer) Marked() uint64 {
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	return p.last
}

// Applied returns p's watermark: every mark of p with a sequence number at
// or below it has been applied (copied by a copy taken after the mark).
func (p *Producer) Applied() uint64 {
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	return p.applied()
}

func (p *Producer) applied() uint64 {
	if p.head < len(p.out) {
		return p.out[p.head].seq - 1
	}
	return p.last
}

// Wait blocks until Applied() ≥ seq, ctx ends (its error) or the set is
// closed (the close cause).
func (p *Producer) Wait(ctx context.Context, seq uint64) error {
	for {
		p.d.mu.Lock()
		if p.applied() >= seq {
			p.d.mu.Unlock()
			return nil
		}
		ch := p.changed
		p.d.mu.Unlock()
		select {
		case <-ch:
		case <-p.d.closed:
			p.d.mu.Lock()
			ok := p.applied() >= seq
			p.d.mu.Unlock()
			if ok {
				return nil
			}
			return p.d.closeErr()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ack records that the mark seq of p is applied (under d.mu).
func (p *Producer) ack(seq uint64) {
	rest := p.out[p.head:]
	i := sort.Search(len(rest), func(i int) bool { return rest[i].seq >= seq })
	if i == len(rest) || rest[i].seq != seq {
		panic("copier: acknowledged a mark that is not pending")
	}
	rest[i].done = true
	if i != 0 {
		return
	}
	for p.head < len(p.out) && p.out[p.head].done {
		p.head++
	}
	if p.head == len(p.out) {
		p.out, p.head = p.out[:0], 0
	} else if p.head > 1024 && p.head > len(p.out)/2 {
		n := copy(p.out, p.out[p.head:])
		p.out, p.head = p.out[:n], 0
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

func (d *DirtySet) enqueue(e *entry) {
	pt := &d.parts[e.part]
	pt.q = append(pt.q, e)
	e.queued = true
	select {
	case pt.ready <- struct{}{}:
	default:
	}
}

// Batch is keys taken by one worker; hand it back with Done.
type Batch struct {
	entries []*entry
}

// Keys returns the batch's key names (a fresh slice).
func (b *Batch) Keys() []string {
	out := make([]string, len(b.entries))
	for i, e := range b.entries {
		out[i] = e.key
	}
	return out
}

// covered fills m (cleared first) with the number of marks the copy of
// each key of the batch covers: every mark since the key's previous copy
// was taken.
func (b *Batch) covered(m map[string]int64) {
	clear(m)
	for _, e := range b.entries {
		m[e.key] = int64(e.takenN)
	}
}

// Len returns the number of keys in the batch.
func (b *Batch) Len() int { return len(b.entries) }

// Take blocks until partition w has dirty keys, then takes up to maxKeys of
// them in the order they were queued, and, after the first, only while
// their size hints sum to at most maxBytes. Their marks so far are covered
// by this copy: read the keys after Take returns. It returns ctx's error,
// or the close cause once the set is closed.
func (d *DirtySet) Take(ctx context.Context, w, maxKeys int, maxBytes int64) (*Batch, error) {
	pt := &d.parts[w]
	for {
		d.mu.Lock()
		select {
		case <-d.closed:
			d.mu.Unlock()
			return nil, d.closeErr()
		default:
		}
		if pt.head < len(pt.q) {
			b := &Batch{}
			var bytes int64
			now := time.Now().UnixNano()
			for pt.head < len(pt.q) && len(b.entries) < max(maxKeys, 1) {
				e := pt.q[pt.head]
				if len(b.entries) > 0 && bytes+e.hint > maxBytes {
					break
				}
				pt.q[pt.head] = nil
				pt.head++
				bytes += e.hint
				e.queued, e.busy = false, true
				e.taken, e.marks = e.marks, e.taken[:0]
				if d.wait != nil && e.n > 0 {
					d.wait.add(time.Duration(now - e.since))
				}
				e.takenN, e.n = e.n, 0
				b.entries = append(b.entries, e)
			}
			if pt.head == len(pt.q) {
				pt.q, pt.head = pt.q[:0], 0
			} else if pt.head > 1024 && pt.head > len(pt.q)/2 {
				n := copy(pt.q, pt.q[pt.head:])
				clear(pt.q[n:])
				pt.q, pt.head = pt.q[:n], 0
			}
			d.inFlight += len(b.entries)
			d.st.taken += int64(len(b.entries))
			d.mu.Unlock()
			return b, nil
		}
		d.mu.Unlock()
		select {
		case <-pt.ready:
		case <-d.closed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Done records that the batch's copies are complete: the marks they cover
// are applied, a key marked again meanwhile is queued again (at the end of
// its partition's queue), the others leave the set.
func (d *DirtySet) Done(b *Batch) {
	d.mu.Lock()
	defer d.mu.Unlock()
	freed := false
	for _, e := range b.entries {
		e.busy = false
		for _, m := range e.taken {
			m.p.ack(m.seq)
		}
		clear(e.taken)
		e.taken = e.taken[:0]
		if len(e.marks) > 0 {
			d.st.recopies++
			d.enqueue(e)
			continue
		}
		delete(d.keys, e.key)
		d.bytes -= e.cost
		freed = true
	}
	d.inFlight -= len(b.entries)
	b.entries = nil
	if freed {
		close(d.space)
		d.space = make(chan struct{})
	}
}

// Close closes the set: Mark, Take and Wait return cause (ErrClosed when
// nil) from now on; keys still dirty are abandoned, their marks never
// applied. Closing twice keeps the first cause.
func (d *DirtySet) Close(cause error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.closed:
		return
	default:
	}
	d.cause = cause
	close(d.closed)
}

func (d *DirtySet) closeErr() error {
	if d.cause != nil {
		return d.cause
	}
	return ErrClosed
}

// Sample returns up to n names of keys in the set (queued or in flight),
// in no particular order (Go's map order: a random start), and the number
// of keys in the set. It holds the set's lock while it copies the names.
func (d *DirtySet) Sample(n int) ([]string, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, min(n, len(d.keys)))
	for k := range d.keys {
		if len(out) >= n {
			break
		}
		out = append(out, k)
	}
	return out, len(d.keys)
}

// SetStats are the dirty set's figures at one instant.
type SetStats struct {
	Dirty     int   // keys marked and not yet copied (queued or in flight)
	InFlight  int   // keys taken by workers
	Bytes     int64 // the bytes budget in use
	Marks     int64 // marks so far
	Coalesced int64 // marks that added no copy (the key was already waiting)
	Recopies  int64 // copies queued again because the key was marked while in flight
	Taken     int64 // keys handed to workers so far
}

// Stats returns the set's figures.
func (d *DirtySet) Stats() SetStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return SetStats{Dirty: len(d.keys), InFlight: d.inFlight, Bytes: d.bytes, Marks: d.st.marks,
		Coalesced: d.st.coalesced, Recopies: d.st.recopies, Taken: d.st.taken}
}
