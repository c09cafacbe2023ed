package migrate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/copier"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
)

// The copy machinery of a run. Ordering contracts:
//
//  1. One copier (package copier) owns the dirty set and its workers for
//     the whole run, and every producer feeds it: the backfill SCAN here,
//     change capture and rescans in live.go. A key is copied only by the
//     worker of its partition, one copy at a time, and a copy reads the
//     key after its marks: the last read lands last, whichever producer
//     marked it. A key absent at read time is deleted on its target
//     (tombstone by absence); one read with its expiry reached is deleted,
//     never written.
//  2. A key's name is appended to its bucket's journal (one write(2), in
//     the page cache) before it is written or deleted on the target:
//     rollback deletes exactly what redisplit wrote, even after kill -9.
//  3. Checkpoints. After marking the keys of a SCAN page, the backfill
//     records the cursor after the page with the producer's last sequence
//     number (copier.Checkpoints). A checkpoint, in this order: the cursor
//     acknowledged by the producer's watermark (Acked(Applied())), then
//     each bucket's failure (the copier records it before the marks of
//     the failing batch are applied, so a bucket seen healthy here wrote
//     every key up to the cursor), then the counts of the pages up to the
//     cursor, then fsync of the journals, then the save. A rerun resumes
//     from that cursor and rewrites what was in flight (RESTORE REPLACE is
//     idempotent).
//  4. Counts. The copier reports what became of each key it read
//     (copier.Config.Observe) before the marks the copy covers are
//     applied; the outcome is counted for the bucket and SCAN page that
//     marked the key (copied, expired, gone, refused or failed: a
//     tombstone of a key absent at read is gone, of one read expired is
//     expired) and saved with the checkpoint that covers the page, never
//     before: the saved counts are exactly those of the pages up to the
//     saved cursor, so the keys a rerun rewrites are not counted twice.
//     Keys marked only by change capture or a rescan are not counted in
//     the backfill's totals (LiveStats has their figures).
//  5. A bucket that fails stops alone: the copier writes none of its later
//     keys (counted as failed in this run), its checkpoint (cursor and
//     counts) freezes at the last one saved before the failure, and the
//     failure is recorded beside the bucket's phase, which does not
//     change. The other buckets go on.
//  6. With --allow-nonempty a filter (bucketRun.admit, the copier's Admit)
//     stands in front of the bucket's sink for writes and deletes alike: a
//     key this migration never journaled that exists on the target is
//     foreign and left alone (a present one is refused and listed in the
//     refusal journal; a tombstone is not sent). A key is added to the
//     bucket's own-set when it is journaled, before it is written, and the
//     own-set starts as the whole journal: a key redisplit wrote is never
//     taken for a foreign key, whichever run or producer sees it again.
//  7. Cache warming (warm.go): with targets.cache.copy hot or none, the
//     backfill marks only the cache keys the policy warms; the others are
//     counted as not warmed for their page before its resume point is
//     recorded, like the keys of a failed bucket. The policy and its
//     threshold are in the bucket's state before the first write.
//  8. Legacy is protected: every read of the copier (store.RedisSource:
//     a MEMORY USAGE pipeline, then MULTI/PEXPIRETIME/DUMP per chunk;
//     one read script for a read of a few keys) and every SCAN and
//     TYPE takes the ops budget (--max-ops) first, and a read slower than
//     SlowRead pauses every worker as long (copier Config.Throttle).
//  9. One SCAN per run: without --dual-write the backfill from cursor 0
//     copies the pages the pre-pass SCANned (its spill, scanpages.go), in
//     the same order and with the same cursors, so checkpoints and resumes
//     are those of a SCAN; a resumed pass, every pass of --dual-write
//     (change capture must start before the backfill's SCAN) and a copy
//     that starts more than spillFresh after the pre-pass (a slow
//     confirmation) SCAN.

// bucketRun is one bucket with a target during a run.
type bucketRun struct {
	name string
	t    *store.Redis
	br   *BucketResult
	base state.Bucket // as saved before this run
	cb   *copier.Bucket
	one  []*copier.Bucket // {cb}, the route of its keys

	j        *state.Journal
	refusedJ *state.Journal // --allow-nonempty only
	own      *ownSet        // --allow-nonempty only: every key this migration journaled

	mu        sync.Mutex          // guards refused and the counts
	refused   map[string]struct{} // --allow-nonempty only
	run       Counts              // this run's backfill, every outcome as it is heard
	pending   map[int]*Counts     // by SCAN page of its pass, not yet covered by a checkpoint
	committed Counts              // this run's pages covered by the checkpoint

	health health      // the target's transient failures
	retry  store.Retry // the run's policy, reporting to health

	// the live figures (live.go): change events for its keys (by name),
	// keys written or deleted by every producer, legacy's evictions
	liveEvents, liveCopies, liveEvicted atomic.Int64
}

// count records outcomes of keys of SCAN page pg.
func (b *bucketRun) count(pg int, c Counts) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.run.add(c)
	if b.cb.Failed() {
		return // never committed again
	}
	p := b.pending[pg]
	if p == nil {
		p = &Counts{}
		b.pending[pg] = p
	}
	p.add(c)
}

// commit moves the counts of the pages up to pg (acknowledged, and covered
// by the checkpoint about to be saved) to committed. Call with mu.
func (b *bucketRun) commit(pg int) {
	for s, c := range b.pending {
		if s <= pg {
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

// failMsg explains the failure that stopped the bucket.
func (b *bucketRun) failMsg() string {
	b.mu.Lock()
	copied, bytes, all := b.run.Copied, b.run.Bytes, b.base.KeysCopied+b.committed.Copied
	b.mu.Unlock()
	return fmt.Sprintf("target %s (%s): %v; stopped the bucket after %d keys (%d payload bytes) copied in this run, %d in all; the other buckets go on; fix the cause and rerun migrate to resume from the last checkpoint",
		b.name, b.t.Describe(), explainTargetErr(b.cb.Err()), copied, bytes, all)
}

func explainTargetErr(err error) string {
	var ke *store.KeyError
	key := ""
	if errors.As(err, &ke) {
		key = fmt.Sprintf(" writing key %q", ke.Key)
		err = ke.Err
	}
	switch redisconn.Classify(err) {
	case redisconn.OOM:
		return "out of memory" + key + " (" + err.Error() + "): the target is full and its maxmemory-policy does not evict; raise maxmemory or add capacity"
	case redisconn.Transient:
		return "unavailable" + key + " (" + err.Error() + ") for longer than the retry window"
	}
	return "write failed" + key + ": " + err.Error()
}

// journal appends keys to the bucket's journal and, with an own-set
// (--allow-nonempty, --dual-write), to the own-set: both before the keys
// are written (the copier's Journal). With an own-set, a key already in it
// is journaled already (the set starts as the whole journal) and is not
// appended again: the live phase copies the same keys over and over, and
// the journal stays one record per key. (A hash collision would leave a
// new key unjournaled, so rollback would leave it behind: odds as in
// ownSet.)
func (b *bucketRun) journal(keys []string) error {
	if b.own == nil {
		_, err := b.j.Append(keys...)
		return err
	}
	fresh := keys[:0:0]
	for _, k := range keys {
		if !b.own.has(k) {
			fresh = append(fresh, k)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	if _, err := b.j.Append(fresh...); err != nil {
		return err
	}
	b.own.add(fresh...)
	return nil
}

func openBucket(o Options, name string, t *store.Redis, res *BucketResult, sb *state.Bucket) (*bucketRun, error) {
	b := &bucketRun{name: name, t: t, br: res, base: *sb, pending: map[int]*Counts{}}
	var err error
	if b.j, err = o.State.OpenJournal(name); err != nil {
		return nil, err
	}
	b.retry = b.health.wrap(o.Retry)
	b.cb = &copier.Bucket{Name: name, Sink: t, Journal: b.journal, Retry: b.retry}
	b.one = []*copier.Bucket{b.cb}
	if o.AllowNonEmpty || o.DualWrite {
		b.own = newOwnSet()
		// the whole journal: a key journaled by any earlier run is ours,
		// whatever the checkpoint says
		if err := o.State.ReadJournal(name, func(k string) error { b.own.add(k); return nil }); err != nil {
			b.close()
			return nil, err
		}
	}
	if o.AllowNonEmpty {
		if b.refusedJ, err = o.State.OpenRefused(name); err != nil {
			b.close()
			return nil, err
		}
		b.refused = map[string]struct{}{}
		if err := o.State.ReadRefused(name, func(k string) error { b.refused[k] = struct{}{}; return nil }); err != nil {
			b.close()
			return nil, err
		}
		b.cb.Admit = b.admit
	}
	return b, nil
}

func (b *bucketRun) close() {
	b.j.Close()
	if b.refusedJ != nil {
		b.refusedJ.Close()
	}
}

// syncJournals fsyncs the bucket's journal and refusal list.
func (b *bucketRun) syncJournals() error {
	if err := b.j.Sync(); err != nil {
		return err
	}
	if b.refusedJ != nil {
		return b.refusedJ.Sync()
	}
	return nil
}

// run is the copy machinery of one migration run: the copier, its source
// and every bucket with a target.
type run struct {
	o       Options
	legacy  *redis.Client
	src     *legacySource
	cp      *copier.Copier
	buckets map[string]*bucketRun
	list    []*bucketRun // the same, fixed before the copier starts (byCB looks up here)
	rt      router
	warm    *state.Warm // the cache's copy policy; nil: every key is copied
	// warmRoom is what is left of a hot policy's budget (bytes), taken by
	// the backfill producer alone
	warmRoom int64
	noTouch  bool   // the copier's reads leave legacy's LRU/LFU clocks alone
	spill    *spill // the pre-pass's pages, for the pass from cursor 0 (nil: SCAN)
	pages    *redis.Client

	legacyHealth health
	paused       atomic.Int64 // unix ns until which legacy reads pause
	throttle     atomic.Int64

	// lockKeys, when set (--dual-write, before the first mark), locks the
	// keys a legacy read is about to copy until the copy is written
	// (window.go contract 3); it returns their unlock.
	lockKeys func(keys []string) (unlock func())

	mu      sync.Mutex
	scanned map[string]scanRef // keys marked by a backfill SCAN whose outcome is not heard yet

	done    atomic.Int64 // backfill keys with an outcome in this run
	planned int64        // keys the backfill of this run covers (pre-pass)
	passes  []*pass
}

// scanRef is a key marked by a backfill SCAN: its bucket and page, and the
// pages of later marks when SCAN returned it again before it was copied.
type scanRef struct {
	b     *bucketRun
	page  int
	again []int
}

// newRun opens the journals of the buckets and starts the copier. The
// copier runs until close; ctx ends it early (its batches in flight are
// abandoned, their marks never applied).
func newRun(ctx context.Context, legacy *redis.Client, o Options, runs []*bucketRun, warm *state.Warm) (*run, error) {
	r := &run{o: o, legacy: legacy, buckets: map[string]*bucketRun{}, warm: warm,
		rt: router{c: o.Classifier, unknown: o.Config.Unknown}, scanned: map[string]scanRef{}}
	r.o.Retry = r.legacyHealth.wrap(o.Retry) // SCAN and reads report to legacy's health
	for _, b := range runs {
		r.buckets[b.name] = b
		r.list = append(r.list, b)
	}
	ok, err := store.SupportsNoTouch(ctx, legacy)
	if err != nil {
		ok = false // refused by an ACL: read as before, and say so
	}
	r.noTouch = ok
	r.pages = legacy
	if ok {
		opt := *legacy.Options()
		opt.OnConnect = store.NoTouchOnConnect(opt.OnConnect)
		opt.PoolSize = o.Workers + 1
		r.pages = redis.NewClient(&opt)
	}
	r.src = &legacySource{RedisSource: &store.RedisSource{Client: legacy, BigBytes: o.BigBytes, ChunkBytes: maxBatchBytes,
		Retry: r.o.Retry, NoTouch: ok}, r: r}
	r.cp, err = copier.New(ctx, copier.Config{
		Source: r.src, Route: r.route, Workers: o.Workers, Batch: o.Batch, BatchBytes: maxBatchBytes,
		Throttle: r.throttleRead, ForceLogical: o.ForceLogical, Observe: r.observe,
	})
	if err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// close stops the copier (abandoning what is still dirty: drain first with
// Flush) and closes the source and the journals.
func (r *run) close() {
	if r.cp != nil {
		r.cp.Close()
	}
	if r.src != nil {
		r.src.Close()
	}
	if r.pages != nil && r.pages != r.legacy {
		r.pages.Close()
	}
	for _, b := range r.buckets {
		b.close()
	}
}

// maxBatchBytes bounds the payloads one worker holds: a read chunk closes
// when its keys' sizes (MEMORY USAGE) reach it, whatever --batch says.
const maxBatchBytes = 32 << 20

// legacySource is the copier's source: legacy read by a store.RedisSource,
// under the ops budget (the MEMORY USAGE pipeline counts one op per key,
// the read another, taken by throttleRead), watching the read's latency.
type legacySource struct {
	*store.RedisSource
	r *run
}

// Pages implements store.PagedSource: logical copies page through a client
// whose connections do not touch keys, where legacy has CLIENT NO-TOUCH.
func (s *legacySource) Pages() *redis.Client { return s.r.pages }

// Read implements store.Source; a read slower than SlowRead (to its first
// chunk) pauses every worker as long as it took.
func (s *legacySource) Read(ctx context.Context, keys []string, fn func([]*store.Entry) error) error {
	if err := waitN(ctx, s.r.o.limiter(), len(keys)); err != nil {
		return err
	}
	if s.r.lockKeys != nil {
		defer s.r.lockKeys(keys)()
	}
	t0 := time.Now()
	first := true
	return s.RedisSource.Read(ctx, keys, func(es []*store.Entry) error {
		if first {
			first = false
			s.r.legacyHealth.ok()
			if lat := time.Since(t0); lat > s.r.o.SlowRead {
				s.r.paused.Store(time.Now().Add(lat).UnixNano())
				s.r.throttle.Add(1)
			}
		}
		return fn(es)
	})
}

// throttleRead is the copier's Throttle: the pause after a slow read, then
// the ops budget.
func (r *run) throttleRead(ctx context.Context, n int) error {
	if until := r.paused.Load(); until > 0 {
		if d := time.Until(time.Unix(0, until)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
	}
	return waitN(ctx, r.o.limiter(), n)
}

// route is the copier's Route: the bucket of a key by the plan (name and
// type); for an absent key (type none) every bucket of the run it could
// belong to, since its type is unknown.
func (r *run) route(key, typ string) []*copier.Bucket {
	if strings.HasPrefix(key, OwnPrefix) {
		return nil
	}
	if typ != store.TypeNone {
		name, _ := r.rt.route(key, typ)
		if b := r.buckets[name]; b != nil {
			return b.one
		}
		return nil
	}
	var out []*copier.Bucket
	for _, pb := range r.o.Classifier.PossibleBuckets(key) {
		name := string(pb)
		if pb == classify.Unknown {
			name = r.rt.unknownBucket()
		}
		if b := r.buckets[name]; b != nil && !containsBucket(out, b.cb) {
			out = append(out, b.cb)
		}
	}
	return out
}

func containsBucket(bs []*copier.Bucket, b *copier.Bucket) bool {
	for _, x := range bs {
		if x == b {
			return true
		}
	}
	return false
}

// observe is the copier's Observe: it keeps the target's health and the
// live figures, and counts the outcome of a key a backfill SCAN marked for
// that key's bucket and page (contract 4).
func (r *run) observe(cb *copier.Bucket, e *store.Entry, o copier.Outcome, n int64) {
	b := r.byCB(cb) // nil for Dropped
	if b != nil {
		switch o {
		case copier.Written, copier.WrittenLogical, copier.Deleted:
			b.health.ok()
			b.liveCopies.Add(1)
		}
	}
	r.mu.Lock()
	ref, ok := r.scanned[e.Key]
	if !ok || (b != ref.b && b != nil && e.Absent()) {
		// not the backfill's, or the tombstone of another bucket the
		// absent key could have been in (its own bucket is observed too)
		r.mu.Unlock()
		return
	}
	delete(r.scanned, e.Key)
	r.mu.Unlock()
	var c Counts
	switch {
	case b != ref.b:
		c.Gone = 1 // it routes elsewhere now (or nowhere): gone from its bucket
	case o == copier.Written:
		c.Copied, c.Bytes = 1, n
	case o == copier.WrittenLogical:
		c.Copied, c.Logical, c.Bytes = 1, 1, n
	case o == copier.Deleted || o == copier.Held && e.Absent():
		if e.ExpireAt > 0 {
			c.Expired = 1
		} else {
			c.Gone = 1
		}
	case o == copier.Held:
		c.Refused = 1
	default: // Skipped, Failed
		c.Failed = 1
	}
	ref.b.count(ref.page, c)
	r.done.Add(1)
	for _, pg := range ref.again {
		ref.b.count(pg, c)
		r.done.Add(1)
	}
}

// byCB returns the bucket of a copier bucket (nil for nil): a scan of at
// most four, cheaper than a map on the copier's hot path.
func (r *run) byCB(cb *copier.Bucket) *bucketRun {
	for _, b := range r.list {
		if b.cb == cb {
			return b
		}
	}
	return nil
}

// markScanned registers keys[i] as marked by the backfill for owners[i]
// on page pg; call it before the marks, so that the copy covering a mark
// finds its key.
func (r *run) markScanned(keys []string, owners []*bucketRun, pg int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, k := range keys {
		if ref, ok := r.scanned[k]; ok && ref.b == owners[i] {
			ref.again = append(ref.again, pg) // SCAN returned it again: counted twice
			r.scanned[k] = ref
			continue
		}
		r.scanned[k] = scanRef{b: owners[i], page: pg}
	}
}

// copyAll prepares the buckets (phase copying), starts the run's copier
// and runs the backfill passes: buckets that resume from the same cursor
// share one SCAN (normally all of them: one read of legacy fanned out).
// With --dual-write it runs the live phase around them (live.go): capture
// starts before the first SCAN, the buckets copied before are rescanned
// and every bucket is mirrored until ctx ends; then it drains and stops.
// wctx is the writers' context: ctx without SIGINT (a lost lease cancels
// both). warm is the cache's copy policy (prepareWarm; nil: all), saved in
// the cache's state before the copier starts.
//
// sp, when not nil, holds the pre-pass's SCAN pages: the pass from cursor 0
// copies them instead of SCANning legacy again.
func copyAll(ctx, wctx context.Context, legacy *redis.Client, o Options, targets map[string]*store.Redis, res *Result, notify *state.Notify, warm *state.Warm, sp *spill) error {
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
			if b == warmBucket {
				sb.Warm = warm // a resumed bucket's own (prepareWarm)
			}
			br := res.Bucket(b)
			sb.Target, sb.LastError, sb.Failed, sb.FailedAt = t.Describe(), "", false, time.Time{}
			if sb.Copied { // --dual-write: mirrored, not copied again; its phase stays
				continue
			}
			sb.Phase = state.Copying
			sb.PlannedKeys, sb.TargetPolicy, sb.AllowEvictingTarget = br.PlannedKeys, br.Policy, br.AllowEvicting
			groups[sb.Cursor] = append(groups[sb.Cursor], b)
		}
		st = s
		return nil
	})
	if err != nil {
		return err
	}
	var runs []*bucketRun
	byName := map[string]*bucketRun{}
	for _, b := range sortedKeys(targets) {
		br, err := openBucket(o, b, targets[b], res.Bucket(b), st.Buckets[b])
		if err != nil {
			for _, x := range runs {
				x.close()
			}
			return err
		}
		runs = append(runs, br)
		byName[b] = br
	}
	cctx := ctx // the copier: cut short by SIGINT, unless it is drained first
	if o.DualWrite {
		cctx = wctx
	}
	r, err := newRun(cctx, legacy, o, runs, warm)
	if err != nil {
		return err
	}
	defer r.close()
	r.spill = sp
	res.NoTouch = r.noTouch
	if warm != nil && byName[warmBucket] != nil {
		r.warmRoom = warm.Budget - byName[warmBucket].base.WarmedBytes
	}
	defer func() {
		res.Throttled += r.throttle.Load()
		res.LegacyRetries += r.legacyHealth.retries.Load()
	}()
	cursors := make([]uint64, 0, len(groups))
	for c := range groups {
		cursors = append(cursors, c)
	}
	sort.Slice(cursors, func(i, j int) bool { return cursors[i] < cursors[j] })
	for _, c := range cursors {
		p := &pass{r: r, start: c, buckets: map[string]*bucketRun{}}
		for _, b := range groups[c] {
			p.buckets[b] = byName[b]
			r.planned += byName[b].br.PlannedKeys
		}
		r.passes = append(r.passes, p)
	}
	if !o.DualWrite {
		for _, p := range r.passes {
			if err := p.run(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	var resumed []string
	for _, b := range sortedKeys(targets) {
		if res.Bucket(b).Resumed {
			resumed = append(resumed, b)
		}
	}
	l, err := startLive(ctx, r, o, notify, res, resumed, st.Live)
	if err != nil {
		return err
	}
	for _, p := range r.passes {
		p.drain = func() { l.drain(wctx) }
		err = p.run(ctx)
		l.backfillDone(p)
		if err != nil {
			break
		}
	}
	if err == nil {
		err = l.wait(ctx)
	}
	l.stop(wctx)
	l.statuses(res)
	if ctx.Err() != nil {
		if c := context.Cause(ctx); !errors.Is(c, context.Canceled) {
			return c // the lease was lost: not a clean stop
		}
		return nil // SIGINT/SIGTERM: stopped, drained, saved
	}
	return err
}

// pass is one SCAN of legacy from a cursor for a set of buckets: a
// producer of the run's copier.
type pass struct {
	r       *run
	start   uint64
	buckets map[string]*bucketRun
	prod    *copier.Producer
	ck      copier.Checkpoints[point]
	drain   func() // --dual-write: apply what is marked before the last checkpoint of an interrupted pass

	mu       sync.Mutex
	scanDone bool
	lastPage int  // the page after which SCAN ended (valid once scanDone)
	done     bool // the last checkpoint covered the whole pass
}

// point is a resume point of a pass: the cursor after page.
type point struct {
	cursor uint64
	page   int
}

func (p *pass) run(ctx context.Context) error {
	r := p.r
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	p.prod = r.cp.Producer("backfill")
	stopCk := make(chan struct{})
	ckDone := make(chan error, 1)
	go func() { ckDone <- p.checkpointer(stopCk, cancel) }()

	scanErr := p.scan(ctx)
	if scanErr == nil {
		// every key marked is applied (or its bucket failed) before the
		// last checkpoint
		scanErr = p.prod.Wait(ctx, p.prod.Marked())
	}
	close(stopCk)
	ckErr := <-ckDone
	if scanErr != nil && ctx.Err() != nil && p.drain != nil {
		p.drain()
	}
	finalErr := p.checkpoint()
	r.report()
	complete := p.complete()
	for _, b := range p.buckets {
		b.mu.Lock()
		b.br.ThisRun.add(b.run)
		b.mu.Unlock()
		b.br.Retries += b.health.retries.Load()
		if e := b.health.lastError(); e != "" {
			b.br.LastRetryError = e
		}
		switch {
		case b.cb.Failed():
			b.br.Status, b.br.Error = StatusFailed, b.failMsg()
		case complete && scanErr == nil:
			b.br.Status = StatusCopied
		default:
			b.br.Status = StatusPending
		}
	}
	if c := context.Cause(ctx); c != nil && scanErr == nil {
		scanErr = c
	}
	return errors.Join(scanErr, ckErr, finalErr)
}

// complete reports whether the last checkpoint covered the whole pass.
func (p *pass) complete() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// ahead bounds the keys the backfill marks before they are applied, so
// that the dirty set keeps room for change capture.
func (p *pass) ahead() uint64 { return uint64(4 * p.r.o.Workers * max(p.r.o.Batch, p.r.o.ScanCount)) }

// scan is the backfill producer: it SCANs legacy, routes every key by the
// plan and marks those of the pass's buckets dirty. Pages are marked
// together while more are waiting (up to Workers × Batch keys), so that
// every worker finds a full batch queued; each page still gets its own
// resume point.
func (p *pass) scan(ctx context.Context) error {
	r := p.r
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var pages <-chan page
	var scanErr func() error
	if p.start == 0 && r.spill.fresh() {
		pages, scanErr = r.spill.replay(ctx) // what the pre-pass SCANned: one SCAN per run
	} else {
		pages, scanErr = scanPages(ctx, r.legacy, p.start, r.o)
	}
	type routed struct {
		page int
		next uint64
		n    int // keys of the page marked
	}
	var (
		group  []routed
		keys   []string
		owners []*bucketRun
		page   int
	)
	target := r.o.Workers * r.o.Batch
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		// registered before they are marked, so that the copy covering a
		// mark finds its key
		base := p.prod.Marked()
		off := 0
		for _, g := range group {
			r.markScanned(keys[off:off+g.n], owners[off:off+g.n], g.page)
			off += g.n
		}
		if _, err := p.prod.MarkAll(ctx, keys); err != nil {
			return err
		}
		p.mu.Lock()
		seq := base
		for _, g := range group {
			seq += uint64(g.n)
			p.ck.Add(seq, point{cursor: g.next, page: g.page})
			if g.next == 0 {
				p.scanDone, p.lastPage = true, g.page
			}
		}
		p.mu.Unlock()
		group, keys, owners = group[:0], keys[:0], owners[:0]
		return nil
	}
	for pg := range pages {
		if p.allFailed() {
			return nil
		}
		if m, a := p.prod.Marked(), p.ahead(); m > a {
			if err := p.prod.Wait(ctx, m-a); err != nil {
				return err
			}
		}
		types := pg.types // from the spill
		if types == nil {
			var err error
			if types, err = legacyTypes(ctx, r.legacy, r.o, pg.keys); err != nil {
				return err
			}
		}
		page++
		stopped := map[*bucketRun]int64{} // keys of buckets that failed
		from := len(keys)
		for i, k := range pg.keys {
			name, _ := r.rt.route(k, types[i])
			b := p.buckets[name]
			switch {
			case b == nil:
			case b.cb.Failed():
				stopped[b]++
				r.done.Add(1)
			default:
				keys = append(keys, k)
				owners = append(owners, b)
			}
		}
		for b, c := range stopped { // before the page's resume point is recorded
			b.count(page, Counts{Failed: c})
		}
		if r.warm != nil && from < len(keys) {
			var err error
			if keys, owners, err = p.warmPage(ctx, page, keys, owners, from); err != nil {
				return err
			}
		}
		n := len(keys) - from
		group = append(group, routed{page: page, next: pg.next, n: n})
		if len(keys) >= target || len(pages) == 0 || pg.next == 0 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := scanErr(); err != nil {
		return err
	}
	return flush()
}

// warmPage applies the cache's copy policy to the keys of page pg routed
// from index from on (contract 7): the cache keys it does not warm are
// dropped from keys and owners and counted as not warmed for the page.
func (p *pass) warmPage(ctx context.Context, pg int, keys []string, owners []*bucketRun, from int) ([]string, []*bucketRun, error) {
	names := make([]string, len(keys)-from)
	for i, b := range owners[from:] {
		names[i] = b.name
	}
	room := p.r.warmRoom
	keep, left, err := warmFilter(ctx, p.r.legacy, p.r.o, p.r.warm, keys[from:], names, &p.r.warmRoom)
	if err != nil {
		return keys, owners, err
	}
	if used := room - p.r.warmRoom; used > 0 {
		p.buckets[warmBucket].count(pg, Counts{WarmBytes: used})
	}
	if left == 0 {
		return keys, owners, nil
	}
	b := p.buckets[warmBucket]
	j := from
	for i, k := range keep {
		if k {
			keys[j], owners[j] = keys[from+i], owners[from+i]
			j++
		}
	}
	b.count(pg, Counts{NotWarmed: left})
	p.r.done.Add(left)
	return keys[:j], owners[:j], nil
}

func (p *pass) allFailed() bool {
	for _, b := range p.buckets {
		if !b.cb.Failed() {
			return false
		}
	}
	return true
}

// checkpointer saves checkpoints and reports progress until stop closes.
func (p *pass) checkpointer(stop chan struct{}, cancel context.CancelCauseFunc) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
		p.r.report()
		if time.Since(last) >= p.r.o.CheckpointEvery {
			last = time.Now()
			if err := p.checkpoint(); err != nil {
				cancel(err)
				return err
			}
		}
	}
}

// report calls the Progress callback. Counts include what earlier runs
// saved, so that a resumed run starts where the last one stopped.
func (r *run) report() {
	if r.o.Progress == nil {
		return
	}
	pr := Progress{Planned: r.planned, Done: r.done.Load(), Copied: map[string]int64{},
		BucketPlanned: map[string]int64{}, Retrying: map[string]Retrying{}}
	for _, p := range r.passes {
		for n, b := range p.buckets {
			pr.Done += b.base.KeysCopied + b.base.KeysExpired + b.base.KeysGone + b.base.KeysRefused + b.base.KeysNotWarmed
			pr.Copied[n] = b.base.KeysCopied + b.copiedSoFar()
			pr.BucketPlanned[n] = b.br.PlannedKeys
		}
	}
	for n, b := range r.buckets {
		if rt, ok := b.health.retrying(); ok {
			pr.Retrying[n] = rt
		}
	}
	if rt, ok := r.legacyHealth.retrying(); ok {
		pr.Retrying["legacy"] = rt
	}
	r.o.Progress(pr)
}

// checkpoint saves the acknowledged cursor and, with it, the counts of the
// pages it covers, in the order of contract 3. A failed bucket keeps its
// last saved cursor and counts; its failure is recorded beside its phase.
func (p *pass) checkpoint() error {
	p.mu.Lock()
	pt, acked := p.ck.Acked(p.prod.Applied())
	complete := acked && p.scanDone && pt.page == p.lastPage
	p.done = complete
	p.mu.Unlock()
	type snap struct {
		failed bool
		msg    string
		c      Counts
	}
	snaps := map[string]snap{}
	for n, b := range p.buckets {
		var s snap
		if s.failed = b.cb.Failed(); s.failed {
			s.msg = b.failMsg()
		}
		b.mu.Lock()
		if !s.failed && acked {
			b.commit(pt.page)
		}
		s.c = b.committed
		b.mu.Unlock()
		if err := b.syncJournals(); err != nil {
			return err
		}
		snaps[n] = s
	}
	now := time.Now().UTC()
	return p.r.o.State.Update(func(st *state.State) error {
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
			sb.KeysNotWarmed = b.base.KeysNotWarmed + s.c.NotWarmed
			sb.WarmedBytes = b.base.WarmedBytes + s.c.WarmBytes
			if s.failed {
				if !sb.Failed {
					sb.Errors++
					sb.FailedAt = now
				}
				sb.Failed, sb.LastError = true, s.msg
				continue
			}
			if acked {
				sb.Cursor, sb.CheckpointAt = pt.cursor, now
			}
			if complete {
				sb.Cursor, sb.Copied, sb.CopiedAt = 0, true, now
			}
		}
		return nil
	})
}
