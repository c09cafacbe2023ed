// Package copier is the one per-key pipeline of a migration run: producers
// mark key names dirty (the backfill SCAN, change capture, rescans after a
// gap, later the reverse direction and queue moves), and a fixed set of
// workers copies each dirty key's current state from a store.Source to the
// sink of every bucket the key routes to. Marks carry names, never values:
// a worker reads the key after its marks, so whatever a producer saw, the
// copy carries that state or a later one.
//
// Guarantees and ordering contracts:
//
//  1. One worker per key. A key belongs to worker Partition(key, Workers)
//     (FNV-1a of the name), and the dirty set never hands a key out again
//     before its copy is Done: one key is never read or written by two
//     workers at once, and a later read of a key is written after an
//     earlier one. A key marked while it is copied is copied again after:
//     the last read lands last.
//  2. Coalescing. A key marked many times while it waits is copied once; a
//     hot key costs one entry and one copy per round, not one per write.
//  3. Bounded memory. The dirty set holds at most MaxKeys keys and MaxBytes
//     bytes of names and size hints; a Mark that would exceed them blocks
//     (context-aware) until copies finish; no mark is ever dropped. A
//     worker holds at most one chunk of payloads (store.Source bounds
//     them) and copies Big keys page by page.
//  4. Tombstone by absence. A key absent at read time, or whose absolute
//     expiry has passed, is deleted on its sinks (journaled like a write),
//     never written. For an absent key the route gets type "none" and may
//     name every bucket the key could belong to.
//  5. Journal first. Every key is passed to its bucket's Journal before
//     anything is written or deleted on the bucket's sink, so rollback can
//     undo exactly what was written.
//  6. Acknowledgement per producer. Producer.Applied is the producer's
//     watermark: every mark it made up to that sequence number has been
//     applied, i.e. copied (or deleted, or dropped because no bucket wants
//     the key, or given up because its bucket failed) by a copy whose read
//     started after the mark. The backfill turns it into SCAN checkpoints
//     (Checkpoints); change capture into the catch-up proof (a marker key
//     is caught up when the mark of its event is applied).
//  7. A failing bucket stops alone. A write error that retries cannot cure
//     (OOM, a permanent error, a transient one that outlives the retry
//     window) fails the bucket: Bucket.Err reports it, and later keys of the
//     bucket are not written (counted as skipped); the other buckets go on.
//     The failure is recorded before the marks of its batch are applied,
//     so a checkpointer that reads Applied first and Bucket.Err second
//     never advances a failed bucket past what it wrote.
//  8. A failing source stops the copier: Err reports it, Mark and Wait
//     return it, and the marks of the batch in flight are never applied.
//  9. Admit and Observe. A bucket's Admit filter sees its entries before
//     anything of them is journaled or written, and what it keeps out is
//     neither (e.g. foreign keys on a target that was not empty). Observe
//     hears, once per key and bucket, what became of the key, before the
//     marks the copy covers are applied: a checkpointer that reads a
//     watermark has heard the outcome of every key below it.
package copier

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/store"
)

// Bucket is one destination of the copier: a sink with its journal and
// retry policy. Its counters and failure are the copier's report for it.
type Bucket struct {
	Name    string
	Sink    store.Sink
	Journal store.Journal // called before any write; nil: no journal
	Retry   store.Retry
	// Admit, when set, is called with the bucket's entries of every chunk
	// (present and absent) before anything of them is journaled or
	// written; the entries it returns are copied (or deleted), the others
	// are left alone on the sink and observed as Held. It is called
	// concurrently by the workers. An error fails the bucket.
	Admit func(ctx context.Context, entries []*store.Entry) ([]*store.Entry, error)

	failed atomic.Bool
	noDump atomic.Bool // the sink rejected a payload: copy logically from now on
	mu     sync.Mutex
	err    error

	written, deleted, logical, bytes, skipped atomic.Int64

	hotCounter // hot keys and coalescing (hot.go)
}

// BucketStats are a bucket's figures since the copier started.
type BucketStats struct {
	Written int64 // keys restored or copied logically
	Deleted int64 // keys deleted (absent or expired at read time)
	Logical int64 // of Written, copied page by page
	Bytes   int64 // payload bytes written
	Skipped int64 // keys not written because the bucket had failed
}

// Stats returns the bucket's counters.
func (b *Bucket) Stats() BucketStats {
	return BucketStats{Written: b.written.Load(), Deleted: b.deleted.Load(), Logical: b.logical.Load(),
		Bytes: b.bytes.Load(), Skipped: b.skipped.Load()}
}

// Err returns the failure that stopped the bucket (a *store.KeyError for a
// key's write), nil while it runs.
func (b *Bucket) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Failed reports whether the bucket has stopped.
func (b *Bucket) Failed() bool { return b.failed.Load() }

func (b *Bucket) fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = err
		b.failed.Store(true)
	}
}

// Outcome is what became of a key read for one bucket.
type Outcome uint8

const (
	Written        Outcome = iota + 1 // restored from its payload
	WrittenLogical                    // copied page by page
	Deleted                           // absent (or expired) at read: deleted on the sink
	Held                              // kept out by the bucket's Admit: nothing written
	Skipped                           // the bucket had failed before: nothing written
	Failed                            // in the write that failed the bucket: not known to be written
	Dropped                           // no bucket wanted the key (the bucket is nil)
)

func (o Outcome) String() string {
	return [...]string{"?", "written", "written-logical", "deleted", "held", "skipped", "failed", "dropped"}[min(int(o), 7)]
}

// Route names the buckets of a key as read: typ is its Redis type, or
// store.TypeNone when the key is absent (then name every bucket it could
// belong to, since the type is unknown). No bucket: the key is dropped and
// counted. It is called concurrently by the workers.
type Route func(key, typ string) []*Bucket

// Config configures a Copier. Source and Route are required.
type Config struct {
	Source     store.Source
	Route      Route
	Workers    int   // partitions, one worker each; default 4
	Batch      int   // keys per read; default 1024
	BatchBytes int64 // size hints per batch, after its first key; default 32 MiB
	MaxKeys    int   // dirty keys held before Mark blocks; default 1,000,000
	MaxBytes   int64 // dirty-set bytes before Mark blocks; default 256 MiB
	// Throttle, when set, is called before every read from the source with
	// the number of keys (or pages) about to be read: the ops budget and
	// the back-off when the source is slow. Its error stops the copier.
	Throttle func(ctx context.Context, n int) error
	// ForceLogical copies every present key page by page (needs a
	// store.PagedSource and store.LogicalSink).
	ForceLogical bool
	// Observe, when set, is called once per key read and bucket it routes
	// to (b nil for Dropped) with what became of the key and the payload
	// bytes written, before the marks the copy covers are applied. Keys of
	// a batch cut short by Close are not observed (their marks are never
	// applied either). It is called concurrently by the workers and must
	// not block.
	Observe func(b *Bucket, e *store.Entry, o Outcome, bytes int64)
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Batch <= 0 {
		c.Batch = 1024
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 32 << 20
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = 1_000_000
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 256 << 20
	}
	return c
}

// Copier owns the dirty set and its workers for the whole run.
type Copier struct {
	cfg    Config
	dirty  *DirtySet
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	producers []*Producer
	err       error

	copies, dropped atomic.Int64
	stages          stages
}

// New starts a copier; its workers run until Close or until ctx ends.
func New(ctx context.Context, cfg Config) (*Copier, error) {
	if cfg.Source == nil || cfg.Route == nil {
		return nil, errors.New("copier: Source and Route are required")
	}
	cfg = cfg.withDefaults()
	c := &Copier{cfg: cfg, dirty: NewDirtySet(cfg.Workers, cfg.MaxKeys, cfg.MaxBytes)}
	c.dirty.wait = &c.stages.wait
	c.ctx, c.cancel = context.WithCancel(ctx)
	for w := 0; w < cfg.Workers; w++ {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.worker(w)
		}()
	}
	return c, nil
}

// Producer returns a new producer of dirty marks (see DirtySet.Producer).
func (c *Copier) Producer(name string) *Producer {
	p := c.dirty.Producer(name)
	c.mu.Lock()
	c.producers = append(c.producers, p)
	c.mu.Unlock()
	return p
}

// Flush waits until every mark made before the call, by every producer, is
// applied. It returns ctx's error, or the copier's once it has stopped.
func (c *Copier) Flush(ctx context.Context) error {
	c.mu.Lock()
	ps := append([]*Producer(nil), c.producers...)
	c.mu.Unlock()
	for _, p := range ps {
		if err := p.Wait(ctx, p.Marked()); err != nil {
			return err
		}
	}
	return nil
}

// Close stops the workers and waits for them: batches in flight are cut
// short and, like every key still dirty, abandoned (their marks are never
// applied, so a checkpoint taken from the watermarks stays behind them;
// call Flush first to drain). It returns Err.
func (c *Copier) Close() error {
	c.dirty.Close(nil)
	c.cancel()
	c.wg.Wait()
	return c.Err()
}

// Err returns the source failure that stopped the copier, if any.
func (c *Copier) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Copier) stop(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.dirty.Close(err)
	c.cancel()
}

// Stats are the copier's figures at one instant.
type Stats struct {
	SetStats
	Copies  int64 // keys read from the source
	Dropped int64 // keys read that no bucket wanted
}

// Stats returns the copier's figures.
func (c *Copier) Stats() Stats {
	return Stats{SetStats: c.dirty.Stats(), Copies: c.copies.Load(), Dropped: c.dropped.Load()}
}

func (c *Copier) worker(w int) {
	ctx := c.ctx
	cov := map[string]int64{} // marks covered per key of the batch (hot.go)
	for {
		b, err := c.dirty.Take(ctx, w, c.cfg.Batch, c.cfg.BatchBytes)
		if err != nil {
			return
		}
		keys := b.Keys()
		b.covered(cov)
		t0 := time.Now()
		if c.cfg.Throttle != nil {
			if err := c.cfg.Throttle(ctx, len(keys)); err != nil {
				if ctx.Err() == nil {
					c.stop(err)
				}
				return
			}
		}
		err = c.cfg.Source.Read(ctx, keys, func(entries []*store.Entry) error {
			t1 := time.Now()
			c.copies.Add(int64(len(entries)))
			c.apply(ctx, entries, cov)
			t2 := time.Now()
			for range entries {
				c.stages.read.add(t1.Sub(t0))
				c.stages.write.add(t2.Sub(t1))
			}
			t0 = t2 // the next chunk's read starts now
			return ctx.Err()
		})
		if err != nil {
			if ctx.Err() == nil {
				c.stop(err)
			}
			return // the batch's marks stay unapplied
		}
		c.dirty.Done(b)
	}
}

// apply writes one chunk of entries to their buckets, one goroutine per
// bucket when there are several; cov holds the marks each key's read
// covered.
func (c *Copier) apply(ctx context.Context, entries []*store.Entry, cov map[string]int64) {
	per := map[*Bucket][]*store.Entry{}
	for _, e := range entries {
		bs := c.cfg.Route(e.Key, e.Type)
		if len(bs) == 0 {
			c.dropped.Add(1)
			c.observe(nil, e, Dropped, 0)
			continue
		}
		for _, b := range bs {
			if b.failed.Load() {
				b.skipped.Add(1)
				c.observe(b, e, Skipped, 0)
				continue
			}
			per[b] = append(per[b], e)
		}
	}
	for b, es := range per {
		b.counted(es, cov)
	}
	if len(per) == 1 {
		for b, es := range per {
			c.write(ctx, b, es)
		}
		return
	}
	var wg sync.WaitGroup
	for b, es := range per {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.write(ctx, b, es)
		}()
	}
	wg.Wait()
}

func (c *Copier) observe(b *Bucket, e *store.Entry, o Outcome, n int64) {
	if c.cfg.Observe != nil {
		c.cfg.Observe(b, e, o, n)
	}
}

// write applies entries to one bucket: the bucket's Admit filter first,
// then payloads and deletes through the sink's Apply, Big entries (and,
// once the sink rejected a payload, every present entry) page by page.
func (c *Copier) write(ctx context.Context, b *Bucket, entries []*store.Entry) {
	now := nowMs()
	obs := func(e *store.Entry, o Outcome, n int64) { c.observe(b, e, o, n) }
	// fail fails the bucket; undecided are the entries not observed yet
	fail := func(err error, undecided []*store.Entry) {
		if ctx.Err() != nil {
			return // cancellation is no failure of the bucket; nothing observed
		}
		b.fail(err)
		for _, e := range undecided {
			obs(e, Failed, 0)
		}
	}
	if b.Admit != nil {
		kept, err := b.Admit(ctx, entries)
		if err != nil {
			fail(err, entries)
			return
		}
		if len(kept) < len(entries) {
			in := make(map[*store.Entry]bool, len(kept))
			for _, e := range kept {
				in[e] = true
			}
			for _, e := range entries {
				if !in[e] {
					obs(e, Held, 0)
				}
			}
		}
		entries = kept
	}
	var direct, logical []*store.Entry
	for _, e := range entries {
		present := !e.Absent() && !e.Expired(now)
		if present && (e.Big || c.cfg.ForceLogical || b.noDump.Load()) {
			logical = append(logical, e)
		} else {
			direct = append(direct, e)
		}
	}
	if len(direct) > 0 {
		var bad map[string]bool
		for _, f := range b.Sink.Apply(ctx, direct, b.Journal, b.Retry) {
			if f.Class != redisconn.BadPayload {
				fail(f, entries) // nothing of the call is observed yet
				return
			}
			b.noDump.Store(true)
			if bad == nil {
				bad = map[string]bool{}
			}
			bad[f.Key] = true
		}
		for _, e := range direct {
			switch {
			case bad[e.Key]:
				logical = append(logical, e) // journaled by Apply already
			case e.Absent() || e.Expired(now):
				b.deleted.Add(1)
				obs(e, Deleted, 0)
			default:
				b.written.Add(1)
				b.bytes.Add(int64(len(e.Payload)))
				obs(e, Written, int64(len(e.Payload)))
			}
		}
	}
	if len(logical) == 0 {
		return
	}
	ls, ok1 := b.Sink.(store.LogicalSink)
	ps, ok2 := c.cfg.Source.(store.PagedSource)
	if !ok1 || !ok2 {
		fail(&store.KeyError{Key: logical[0].Key, Class: redisconn.Permanent,
			Err: fmt.Errorf("needs a page-by-page copy (big key or unreadable payload), which %s → %s cannot do", c.cfg.Source.Describe(), b.Sink.Describe())}, logical)
		return
	}
	if b.Journal != nil {
		keys := make([]string, len(logical))
		for i, e := range logical {
			keys[i] = e.Key
		}
		if err := b.Journal(keys); err != nil {
			fail(&store.KeyError{Key: keys[0], Class: redisconn.Permanent, Err: fmt.Errorf("cannot journal (nothing written): %w", err)}, logical)
			return
		}
	}
	wait := func(n int) error {
		if c.cfg.Throttle != nil {
			return c.cfg.Throttle(ctx, n)
		}
		return nil
	}
	for i, e := range logical {
		n, err := ls.CopyLogical(ctx, ps.Pages(), e, b.Retry, wait)
		for try := 0; store.SourceChanged(err) && try < 3; try++ {
			e.Type = "" // replaced mid-copy: copy it again as what it is now
			n, err = ls.CopyLogical(ctx, ps.Pages(), e, b.Retry, wait)
		}
		if errors.Is(err, store.ErrAbsent) {
			b.deleted.Add(1) // CopyLogical deleted the target's key first
			obs(e, Deleted, 0)
			continue
		}
		if err != nil && redisconn.SideOf(err) == redisconn.SideLegacy {
			// the source failed while the key was read page by page: it is
			// the source's failure (guarantee 8), not the bucket's
			c.stop(err)
			return
		}
		if err != nil {
			fail(&store.KeyError{Key: e.Key, Class: redisconn.Classify(err), Err: err}, logical[i:])
			return
		}
		b.written.Add(1)
		b.logical.Add(1)
		b.bytes.Add(n)
		obs(e, WrittenLogical, n)
	}
}

func nowMs() int64 { return time.Now().UnixMilli() }
