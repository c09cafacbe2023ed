package copier

import "sync"

// Checkpoints turns a producer's watermark into a resume point, e.g. the
// backfill's SCAN cursor: after marking the keys of a page, the producer
// calls Add(p.Marked(), cursorAfterPage); Acked(p.Applied()) is then the
// resume point after the last page every key of which is applied, and
// every page before it. Safe for concurrent use; Add must be called with
// non-decreasing sequence numbers.
type Checkpoints[T any] struct {
	mu    sync.Mutex
	list  []checkpoint[T]
	last  T
	acked bool
}

type checkpoint[T any] struct {
	seq uint64
	v   T
}

// Add records that v is the resume point once every mark up to seq is
// applied.
func (c *Checkpoints[T]) Add(seq uint64, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.list); n > 0 && c.list[n-1].seq == seq {
		c.list[n-1].v = v // same marks cover both: the later point wins
		return
	}
	c.list = append(c.list, checkpoint[T]{seq: seq, v: v})
}

// Acked returns the latest resume point whose marks are all applied given
// the watermark applied, and false when there is none yet. Points it passes
// are forgotten.
func (c *Checkpoints[T]) Acked(applied uint64) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := 0
	for i < len(c.list) && c.list[i].seq <= applied {
		c.last, c.acked = c.list[i].v, true
		i++
	}
	if i > 0 {
		c.list = append(c.list[:0], c.list[i:]...)
	}
	return c.last, c.acked
}

// Pending returns how many recorded points are not yet acknowledged.
func (c *Checkpoints[T]) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.list)
}
