package migrate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
)

// The copy pipeline. Ordering contracts:
//
//  1. A key is routed to worker hash(key) % Workers, always the same one, and
//     a worker handles its batches one after another: one key is never
//     copied by two workers at once, and a later read of a key is written
//     after an earlier one (the contract change events will rely on).
//  2. A key's name is appended to its bucket's journal (one write(2), in
//     the page cache) before it is written to the target: rollback deletes
//     exactly what redisplit wrote, even after kill -9.
//  3. A SCAN batch is acknowledged only when every key of it is written on
//     its target (or absent, refused, or its bucket stopped). The
//     checkpoint cursor is the cursor after the last batch such that it and
//     every batch before it are acknowledged; journals are fsynced before
//     the checkpoint is saved. A rerun resumes from that cursor and rewrites
//     what was in flight (RESTORE REPLACE is idempotent).
//  4. A bucket's counts are kept per SCAN batch and saved with the
//     checkpoint that covers the batch, never before: the saved counts are
//     exactly those of the batches up to the saved cursor, so the keys a
//     rerun rewrites are not counted twice in the totals.
//  5. A bucket that fails stops: its checkpoint (cursor and counts) freezes
//     at the last one saved before the failure, and its later keys are not
//     written (counted as failed in this run); the other buckets go on. The
//     failure is recorded beside the bucket's phase, which does not change.
//  6. With --allow-nonempty, a key is added to its bucket's own-set when it
//     is journaled, before it is written, and the own-set starts as the
//     whole journal: a key redisplit wrote is never taken for a foreign key,
//     whichever run or path sees it again (a SCAN repeating it, a resume
//     from an earlier cursor, change events).
//
// Change capture (--dual-write, a later step) feeds the same queues: a
// change event is an item for its key, registered with the tracker as a
// batch of one, and sent (as a slice of one item, or with the other events
// of its worker) to queues[partition(key)] like a SCAN hit, so
// the event and the backfill of a key are serialised by the same worker.
// For events, a key absent at read time must become a journaled DEL on the
// target; the backfill only skips it.

type item struct {
	seq    uint64
	key    string
	big    bool  // above the size threshold: copy in chunks
	size   int64 // MEMORY USAGE when scanned
	bucket *bucketRun
}

// bucketRun is one bucket during a pass.
type bucketRun struct {
	name string
	t    *store.Redis
	br   *BucketResult
	base state.Bucket // as saved before this run

	j        *state.Journal
	refusedJ *state.Journal // --allow-nonempty only
	own      *ownSet        // --allow-nonempty only: every key this migration journaled
	refused  map[string]struct{}

	mu        sync.Mutex // guards refused, failMsg and the counts
	failMsg   string
	run       Counts             // this run, every outcome as it happens
	pending   map[uint64]*Counts // by SCAN batch, not yet covered by a checkpoint
	committed Counts             // this run's batches covered by the checkpoint

	health health      // the target's transient failures
	retry  store.Retry // the run's policy, reporting to health

	failed atomic.Bool
	noDump atomic.Bool // the target rejected a DUMP payload: copy logically from now on
}

// count records outcomes of keys of SCAN batch seq.
func (b *bucketRun) count(seq uint64, c Counts) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.run.add(c)
	if b.failed.Load() {
		return // never committed again
	}
	p := b.pending[seq]
	if p == nil {
		p = &Counts{}
		b.pending[seq] = p
	}
	p.add(c)
}

// commit moves the counts of the batches before low (acknowledged, and
// covered by the checkpoint about to be saved) to committed. Call with mu.
func (b *bucketRun) commit(low uint64) {
	for s, c := range b.pending {
		if s < low {
			b.committed.add(*c)
			delete(b.pending, s)
		}
	}
}

func (b *bucketRun) copiedSoFar() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.run.Copied
}

func (b *bucketRun) fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failed.Load() {
		return
	}
	b.failMsg = fmt.Sprintf("target %s (%s): %v; stopped the bucket after %d keys (%d payload bytes) copied in this run, %d in all; the other buckets go on; fix the cause and rerun migrate to resume from the last checkpoint",
		b.name, b.t.Describe(), explainTargetErr(err), b.run.Copied, b.run.Bytes, b.base.KeysCopied+b.committed.Copied)
	b.failed.Store(true)
}

func explainTargetErr(err error) string {
	var ke *store.KeyError
	key := ""
	if errors.As(err, &ke) {
		key = fmt.Sprintf(" writing key %q", ke.Key)
		err = ke.Err
	}
	switch cl := redisconn.Classify(err); {
	case cl == redisconn.OOM:
		return "out of memory" + key + " (" + err.Error() + "): the target is full and its maxmemory-policy does not evict; raise maxmemory or add capacity"
	case cl.Retryable():
		return "unavailable" + key + " (" + err.Error() + ") for longer than the retry window"
	}
	return "write failed" + key + ": " + err.Error()
}

// journal appends keys to the bucket's journal and, with --allow-nonempty,
// to its own-set: both before the keys are written.
func (b *bucketRun) journal(keys []string) error {
	if _, err := b.j.Append(keys...); err != nil {
		return err
	}
	if b.own != nil {
		b.own.add(keys...)
	}
	return nil
}

// tracker turns per-key acknowledgements into the checkpoint cursor.
type tracker struct {
	mu       sync.Mutex
	next     uint64 // next batch seq
	low      uint64 // lowest batch not acknowledged
	pending  map[uint64]*pend
	cursor   uint64 // SCAN cursor after batch low-1
	scanDone bool
}

type pend struct {
	left   int
	cursor uint64 // SCAN cursor after this batch
}

func newTracker(cursor uint64) *tracker {
	return &tracker{pending: map[uint64]*pend{}, cursor: cursor}
}

func (t *tracker) add(cursor uint64, n int) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.next
	t.next++
	t.pending[s] = &pend{left: n, cursor: cursor}
	t.advance()
	return s
}

func (t *tracker) done(seq uint64, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending[seq].left -= n
	t.advance()
}

func (t *tracker) advance() {
	for {
		p := t.pending[t.low]
		if p == nil || p.left > 0 {
			return
		}
		t.cursor = p.cursor
		delete(t.pending, t.low)
		t.low++
	}
}

func (t *tracker) finish() {
	t.mu.Lock()
	t.scanDone = true
	t.mu.Unlock()
}

// snapshot returns the checkpoint cursor, the first unacknowledged batch
// and whether the whole pass is acknowledged.
func (t *tracker) snapshot() (cursor, low uint64, complete bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cursor, t.low, t.scanDone && t.low == t.next
}

// pass is one SCAN of legacy from a cursor for a set of buckets.
type pass struct {
	o            Options // o.Retry reports to legacyHealth
	legacyHealth health
	legacy       *redis.Client
	buckets      map[string]*bucketRun
	tr           *tracker
	done         atomic.Int64
	planned      int64
	paused       atomic.Int64 // unix ns until which legacy reads pause
	throttle     atomic.Int64
	cancel       context.CancelCauseFunc
}

// copyAll runs the passes: buckets that resume from the same cursor share
// one SCAN (normally all of them: one read of legacy fanned out).
func copyAll(ctx context.Context, legacy *redis.Client, o Options, targets map[string]*store.Redis, res *Result) error {
	st, err := o.State.Load()
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	groups := map[uint64][]string{}
	err = o.State.Update(func(s *state.State) error {
		s.PlanHash = o.PlanHash
		for b, t := range targets {
			sb := s.Buckets[b]
			if sb == nil {
				sb = &state.Bucket{}
				s.Buckets[b] = sb
			}
			if sb.StartedAt.IsZero() || sb.Phase == state.RolledBack {
				*sb = state.Bucket{StartedAt: now}
			}
			br := res.Bucket(b)
			sb.Phase, sb.Target, sb.LastError, sb.Failed, sb.FailedAt = state.Copying, t.Describe(), "", false, time.Time{}
			sb.PlannedKeys, sb.TargetPolicy, sb.AllowEvictingTarget = br.PlannedKeys, br.Policy, br.AllowEvicting
			groups[sb.Cursor] = append(groups[sb.Cursor], b)
		}
		st = s
		return nil
	})
	if err != nil {
		return err
	}
	cursors := make([]uint64, 0, len(groups))
	for c := range groups {
		cursors = append(cursors, c)
	}
	sort.Slice(cursors, func(i, j int) bool { return cursors[i] < cursors[j] })
	for _, c := range cursors {
		var runs []*bucketRun
		for _, b := range groups[c] {
			br, err := openBucket(o, b, targets[b], res.Bucket(b), st.Buckets[b])
			if err != nil {
				return err
			}
			runs = append(runs, br)
		}
		err := runPass(ctx, legacy, o, c, runs, res)
		for _, br := range runs {
			br.j.Close()
			if br.refusedJ != nil {
				br.refusedJ.Close()
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func openBucket(o Options, name string, t *store.Redis, res *BucketResult, sb *state.Bucket) (*bucketRun, error) {
	b := &bucketRun{name: name, t: t, br: res, base: *sb, pending: map[uint64]*Counts{}}
	var err error
	if b.j, err = o.State.OpenJournal(name); err != nil {
		return nil, err
	}
	if o.AllowNonEmpty {
		if b.refusedJ, err = o.State.OpenRefused(name); err != nil {
			return nil, err
		}
		b.own, b.refused = newOwnSet(), map[string]struct{}{}
		// the whole journal: a key journaled by any earlier run is ours,
		// whatever the checkpoint says
		if err := o.State.ReadJournal(name, func(k string) error { b.own.add(k); return nil }); err != nil {
			return nil, err
		}
		if err := o.State.ReadRefused(name, func(k string) error { b.refused[k] = struct{}{}; return nil }); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func runPass(ctx context.Context, legacy *redis.Client, o Options, cursor uint64, runs []*bucketRun, res *Result) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	p := &pass{o: o, legacy: legacy, buckets: map[string]*bucketRun{}, tr: newTracker(cursor), cancel: cancel}
	p.o.Retry = p.legacyHealth.wrap(o.Retry)
	for _, b := range runs {
		b.retry = b.health.wrap(o.Retry)
		p.buckets[b.name] = b
		p.planned += b.br.PlannedKeys
	}
	queues := make([]chan []item, o.Workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan []item, queuedPages)
		wg.Add(1)
		go func(q chan []item) {
			defer wg.Done()
			p.worker(ctx, q)
		}(queues[i])
	}
	stopCk := make(chan struct{})
	ckDone := make(chan error, 1)
	go func() { ckDone <- p.checkpointer(stopCk) }()

	scanErr := p.scan(ctx, cursor, queues)
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	close(stopCk)
	ckErr := <-ckDone
	finalErr := p.checkpoint()
	p.report()
	_, _, complete := p.tr.snapshot()
	for _, b := range runs {
		b.mu.Lock()
		b.br.ThisRun.add(b.run)
		b.mu.Unlock()
		b.br.Retries += b.health.retries.Load()
		if e := b.health.lastError(); e != "" {
			b.br.LastRetryError = e
		}
		switch {
		case b.failed.Load():
			b.br.Status, b.br.Error = StatusFailed, b.failMsg
		case complete && scanErr == nil:
			b.br.Status = StatusCopied
		default:
			b.br.Status = StatusPending
		}
	}
	res.Throttled += p.throttle.Load()
	res.LegacyRetries += p.legacyHealth.retries.Load()
	if c := context.Cause(ctx); c != nil && scanErr == nil {
		scanErr = c
	}
	return errors.Join(scanErr, ckErr, finalErr)
}

// scan is the only reader of SCAN: it classifies every key and hands it to
// its worker.
func (p *pass) scan(ctx context.Context, cursor uint64, queues []chan []item) error {
	rt := router{c: p.o.Classifier, unknown: p.o.Config.Unknown}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	pages, scanErr := scanPages(ctx, p.legacy, cursor, p.o)
	lc := redisconn.NewRawConn(p.legacy.Options())
	defer lc.Close()
	for pg := range pages {
		if p.allFailed() {
			return nil
		}
		types, err := legacyTypes(ctx, p.legacy, p.o, pg.keys)
		if err != nil {
			return err
		}
		var items []item
		stopped := map[*bucketRun]int64{} // keys of buckets that failed
		for i, k := range pg.keys {
			b, _ := rt.route(k, types[i])
			switch br := p.buckets[b]; {
			case br == nil:
			case br.failed.Load():
				stopped[br]++
				p.done.Add(1)
			default:
				items = append(items, item{key: k, bucket: br})
			}
		}
		items, gone, err := p.sizeCheck(ctx, lc, items)
		if err != nil {
			return err
		}
		// the scanner holds the batch (one extra count) until its own
		// outcomes are recorded: the checkpoint cannot cover the batch first
		seq := p.tr.add(pg.next, len(items)+1)
		for br, n := range stopped {
			br.count(seq, Counts{Failed: n})
		}
		for br, n := range gone {
			br.count(seq, Counts{Gone: n})
		}
		// one send per worker and page, not per key: the workers wake once
		// per page
		parts := make([][]item, len(queues))
		for _, it := range items {
			it.seq = seq
			w := partition(it.key, len(queues))
			parts[w] = append(parts[w], it)
		}
		for w, part := range parts {
			if len(part) == 0 {
				continue
			}
			select {
			case queues[w] <- part:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		p.tr.done(seq, 1)
		if pg.next == 0 {
			p.tr.finish()
		}
	}
	return scanErr()
}

// partition is the worker of a key: FNV-1a of the name.
func partition(key string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// sizeCheck marks the items above the size threshold (MEMORY USAGE, one
// pipeline on the scanner's own connection lc) and drops the keys that no
// longer exist, returning how many per bucket.
func (p *pass) sizeCheck(ctx context.Context, lc *redisconn.RawConn, items []item) ([]item, map[*bucketRun]int64, error) {
	if len(items) == 0 {
		return items, nil, nil
	}
	if err := waitN(ctx, p.o.limiter(), len(items)); err != nil {
		return nil, nil, err
	}
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.key
	}
	var sizes []int64
	err := p.o.Retry.Do(ctx, func() error {
		var err error
		sizes, err = readSizes(ctx, lc, keys)
		return err
	})
	if err != nil {
		return nil, nil, redisconn.Explain(err, "legacy", p.legacy.Options().Addr)
	}
	out := items[:0]
	var gone map[*bucketRun]int64
	for i, it := range items {
		if sizes[i] < 0 {
			if gone == nil {
				gone = map[*bucketRun]int64{}
			}
			gone[it.bucket]++
			p.done.Add(1)
			continue
		}
		it.size = sizes[i]
		it.big = it.size > p.o.BigBytes
		out = append(out, it)
	}
	return out, gone, nil
}

func (p *pass) allFailed() bool {
	for _, b := range p.buckets {
		if !b.failed.Load() {
			return false
		}
	}
	return true
}

// maxBatchBytes bounds the payloads one worker holds: a batch closes when
// its keys' sizes (MEMORY USAGE) reach it, whatever --batch says.
const maxBatchBytes = 32 << 20

// queuedPages is how many pages' worth of keys may wait for each worker.
const queuedPages = 4

// worker copies the keys of its partition in batches of up to o.Batch keys
// and maxBatchBytes: it fills a batch from what is queued and processes it
// as soon as it is full or nothing more is waiting.
func (p *pass) worker(ctx context.Context, q chan []item) {
	lc := redisconn.NewRawConn(p.legacy.Options())
	defer lc.Close()
	batch := make([]item, 0, p.o.Batch)
	var bytes int64
	flush := func() {
		if len(batch) == 0 {
			return
		}
		defer func() { batch, bytes = batch[:0], 0 }()
		if ctx.Err() != nil {
			return // drain without acknowledging: the checkpoint stays behind
		}
		if err := p.process(ctx, lc, batch); err != nil {
			p.cancel(err)
			return
		}
		p.done.Add(int64(len(batch)))
		for i := 0; i < len(batch); {
			j := i + 1
			for j < len(batch) && batch[j].seq == batch[i].seq {
				j++
			}
			p.tr.done(batch[i].seq, j-i)
			i = j
		}
	}
	for items := range q {
		for _, it := range items {
			batch = append(batch, it)
			bytes += it.size
			if len(batch) >= p.o.Batch || bytes >= maxBatchBytes {
				flush()
			}
		}
		if len(q) == 0 {
			flush()
		}
	}
	flush()
}

// outcome is what became of one key of a batch.
type outcome uint8

const (
	undecided outcome = iota
	copiedKey
	refusedKey
	goneKey
)

type write struct {
	e       *store.Entry
	seq     uint64
	out     outcome
	logical bool
	bytes   int64
}

// tally adds the outcomes of ws to their batches' counts. Undecided keys
// (the write stopped on an error) are failed when the bucket failed, and
// not counted when the run was interrupted: their batch is not
// acknowledged, the rerun handles them.
func (b *bucketRun) tally(ws []*write, failed bool) {
	per := map[uint64]*Counts{}
	for _, w := range ws {
		c := per[w.seq]
		if c == nil {
			c = &Counts{}
			per[w.seq] = c
		}
		switch w.out {
		case copiedKey:
			c.Copied++
			c.Bytes += w.bytes
			if w.logical {
				c.Logical++
			}
		case refusedKey:
			c.Refused++
		case goneKey:
			c.Gone++
		default:
			if failed {
				c.Failed++
			}
		}
	}
	for seq, c := range per {
		b.count(seq, *c)
	}
}

// process reads a batch atomically from legacy and writes it to the
// targets, one goroutine per bucket. It returns an error only for what
// stops the whole run (legacy failing, cancellation); target failures stop
// their bucket. Every key's outcome is counted before it returns (before
// the batch is acknowledged), unless it returns an error.
func (p *pass) process(ctx context.Context, lc *redisconn.RawConn, batch []item) error {
	// deduplicate: a key may come twice (SCAN may repeat keys); it is
	// counted once
	seen := make(map[string]struct{}, len(batch))
	keys := make([]string, 0, len(batch))
	big := make([]bool, 0, len(batch))
	var owners []item
	var stopped []item
	for _, it := range batch {
		if _, ok := seen[it.key]; ok {
			continue
		}
		seen[it.key] = struct{}{}
		if it.bucket.failed.Load() {
			stopped = append(stopped, it)
			continue
		}
		keys = append(keys, it.key)
		big = append(big, it.big)
		owners = append(owners, it)
	}
	defer func() {
		for _, it := range stopped {
			it.bucket.count(it.seq, Counts{Failed: 1})
		}
	}()
	if len(keys) == 0 {
		return nil
	}
	if until := p.paused.Load(); until > 0 {
		if d := time.Until(time.Unix(0, until)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
	}
	if err := waitN(ctx, p.o.limiter(), len(keys)); err != nil {
		return err
	}
	var now int64
	var entries []*store.Entry
	t0 := time.Now()
	err := p.o.Retry.Do(ctx, func() error {
		var err error
		now, entries, err = readBatch(ctx, lc, keys, big)
		return err
	})
	if err != nil {
		return redisconn.Explain(err, "legacy", p.legacy.Options().Addr)
	}
	p.legacyHealth.ok()
	if lat := time.Since(t0); lat > p.o.SlowRead {
		// legacy is slow: every worker pauses as long as this read took
		p.paused.Store(time.Now().Add(lat).UnixNano())
		p.throttle.Add(1)
	}
	per := map[*bucketRun][]*write{}
	for i, e := range entries {
		b, seq := owners[i].bucket, owners[i].seq
		switch {
		case e == nil:
			b.count(seq, Counts{Gone: 1})
		case e.ExpireAt > 0 && e.ExpireAt <= now:
			b.count(seq, Counts{Expired: 1})
		default:
			per[b] = append(per[b], &write{e: e, seq: seq})
		}
	}
	var wg sync.WaitGroup
	for b, ws := range per {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.writeBucket(ctx, b, ws)
			switch {
			case err == nil:
				b.health.ok()
			case redisconn.SideOf(err) == redisconn.SideLegacy: // legacy failed under a logical copy
				p.cancel(err)
			case ctx.Err() == nil:
				b.fail(err)
			}
			b.tally(ws, b.failed.Load())
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// writeBucket writes one batch of a bucket: refusal of foreign keys
// (--allow-nonempty), journal, RESTORE, logical copies. It sets the outcome
// of every key it decides; on error the others stay undecided.
func (p *pass) writeBucket(ctx context.Context, b *bucketRun, ws []*write) error {
	if b.failed.Load() {
		return nil
	}
	if p.o.AllowNonEmpty {
		var err error
		if ws, err = p.refuseForeign(ctx, b, ws); err != nil {
			return err
		}
	}
	if len(ws) == 0 {
		return nil
	}
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = w.e.Key
	}
	if err := b.journal(names); err != nil {
		return fmt.Errorf("cannot journal (nothing written): %w", err)
	}
	var restore, logical []*write
	for _, w := range ws {
		if w.e.Big || p.o.ForceLogical || b.noDump.Load() {
			logical = append(logical, w)
		} else {
			restore = append(restore, w)
		}
	}
	if len(restore) > 0 {
		es := make([]*store.Entry, len(restore))
		for i, w := range restore {
			es[i] = w.e
		}
		failed := b.t.Restore(ctx, es, b.retry)
		bad := map[string]bool{}
		for _, f := range failed {
			if f.Class != redisconn.BadPayload {
				return f
			}
			b.noDump.Store(true)
			bad[f.Key] = true
		}
		for _, w := range restore {
			if bad[w.e.Key] {
				logical = append(logical, w)
				continue
			}
			w.out, w.bytes = copiedKey, int64(len(w.e.Payload))
		}
	}
	wait := func(n int) error { return waitN(ctx, p.o.limiter(), n) }
	for _, w := range logical {
		n, err := b.t.CopyLogical(ctx, p.legacy, w.e, b.retry, wait)
		if errors.Is(err, store.ErrAbsent) {
			w.out = goneKey
			continue
		}
		if err != nil {
			return &store.KeyError{Key: w.e.Key, Class: redisconn.Classify(err), Err: err}
		}
		w.out, w.logical, w.bytes = copiedKey, true, n
	}
	return nil
}

// refuseForeign marks refused, and drops, the keys of ws that exist on the
// target although this migration never journaled them (or that it refused
// before), listing the new ones in the refusal journal; it returns the
// others.
func (p *pass) refuseForeign(ctx context.Context, b *bucketRun, ws []*write) ([]*write, error) {
	keep := ws[:0:0]
	b.mu.Lock() // refused grows concurrently (other workers)
	for _, w := range ws {
		if _, ok := b.refused[w.e.Key]; ok {
			w.out = refusedKey
			continue
		}
		keep = append(keep, w)
	}
	b.mu.Unlock()
	ws = keep
	var check []*write
	for _, w := range ws {
		if !b.own.has(w.e.Key) {
			check = append(check, w)
		}
	}
	if len(check) == 0 {
		return ws, nil
	}
	names := make([]string, len(check))
	for i, w := range check {
		names[i] = w.e.Key
	}
	exists, err := b.t.Existing(ctx, names, b.retry)
	if err != nil {
		return nil, err
	}
	var foreign []string
	for j, ex := range exists {
		if ex {
			check[j].out = refusedKey
			foreign = append(foreign, names[j])
		}
	}
	if len(foreign) == 0 {
		return ws, nil
	}
	if _, err := b.refusedJ.Append(foreign...); err != nil {
		return nil, err
	}
	b.mu.Lock()
	for _, k := range foreign {
		b.refused[k] = struct{}{}
	}
	b.mu.Unlock()
	keep = ws[:0:0]
	for _, w := range ws {
		if w.out != refusedKey {
			keep = append(keep, w)
		}
	}
	return keep, nil
}

// checkpointer saves checkpoints and reports progress until stop closes.
func (p *pass) checkpointer(stop chan struct{}) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
		p.report()
		if time.Since(last) >= p.o.CheckpointEvery {
			last = time.Now()
			if err := p.checkpoint(); err != nil {
				p.cancel(err)
				return err
			}
		}
	}
}

// report calls the Progress callback. Counts include what earlier runs
// saved, so that a resumed run starts where the last one stopped.
func (p *pass) report() {
	if p.o.Progress == nil {
		return
	}
	pr := Progress{Planned: p.planned, Done: p.done.Load(), Copied: map[string]int64{},
		BucketPlanned: map[string]int64{}, Retrying: map[string]Retrying{}}
	for n, b := range p.buckets {
		pr.Done += b.base.KeysCopied + b.base.KeysExpired + b.base.KeysGone + b.base.KeysRefused
		pr.Copied[n] = b.base.KeysCopied + b.copiedSoFar()
		pr.BucketPlanned[n] = b.br.PlannedKeys
		if r, ok := b.health.retrying(); ok {
			pr.Retrying[n] = r
		}
	}
	if r, ok := p.legacyHealth.retrying(); ok {
		pr.Retrying["legacy"] = r
	}
	p.o.Progress(pr)
}

// checkpoint saves the acknowledged cursor and, with it, the counts of the
// batches it covers. Order: take the tracker's snapshot, then, per bucket,
// read its failed flag (set before its failing batch is acknowledged, so a
// bucket seen healthy here succeeded in every batch before low) and commit
// the counts of the batches before low, fsync journals, then save. A failed
// bucket keeps its last saved cursor and counts; its failure is recorded
// beside its phase.
func (p *pass) checkpoint() error {
	cursor, low, complete := p.tr.snapshot()
	type snap struct {
		failed bool
		msg    string
		c      Counts
	}
	snaps := map[string]snap{}
	for n, b := range p.buckets {
		var s snap
		b.mu.Lock()
		s.failed, s.msg = b.failed.Load(), b.failMsg
		if !s.failed {
			b.commit(low)
		}
		s.c = b.committed
		b.mu.Unlock()
		if err := b.j.Sync(); err != nil {
			return err
		}
		if b.refusedJ != nil {
			if err := b.refusedJ.Sync(); err != nil {
				return err
			}
		}
		snaps[n] = s
	}
	now := time.Now().UTC()
	return p.o.State.Update(func(st *state.State) error {
		for n, b := range p.buckets {
			sb := st.Buckets[n]
			if sb == nil {
				sb = &state.Bucket{}
				st.Buckets[n] = sb
			}
			s := snaps[n]
			sb.KeysCopied = b.base.KeysCopied + s.c.Copied
			sb.KeysLogical = b.base.KeysLogical + s.c.Logical
			sb.BytesCopied = b.base.BytesCopied + s.c.Bytes
			sb.KeysExpired = b.base.KeysExpired + s.c.Expired
			sb.KeysGone = b.base.KeysGone + s.c.Gone
			sb.KeysRefused = b.base.KeysRefused + s.c.Refused
			if s.failed {
				if !sb.Failed {
					sb.Errors++
					sb.FailedAt = now
				}
				sb.Failed, sb.LastError = true, s.msg
				continue
			}
			sb.Cursor, sb.CheckpointAt = cursor, now
			if complete {
				sb.Cursor, sb.Copied, sb.CopiedAt = 0, true, now
			}
		}
		return nil
	})
}
