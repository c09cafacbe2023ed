package migrate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/copier"
	"github.com/redisplit/redisplit/dualwrite"
	"github.com/redisplit/redisplit/keyname"
	"github.com/redisplit/redisplit/lease"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
)

// The live phase (--dual-write, DESIGN.md §4). Ordering contracts:
//
//  1. Notifications: legacy's notify-keyspace-events is read and saved in
//     the state (state.Notify) before it is changed; a rerun that finds a
//     value saved keeps its Old (the value from before the migration,
//     never the one redisplit set). It is put back when the live phase
//     ends, or by the next migrate after a kill -9.
//  2. Change capture (package dualwrite) is subscribed before the backfill
//     SCAN starts, and before any rescan: every write legacy executes
//     afterwards reaches the copier as a mark of the "capture" producer,
//     or lies in a gap that is rescanned.
//  3. A gap (the feed dropped, notifications off, legacy restarted or
//     flushed, ... and migrate itself not running since the last run)
//     marks every bucket for a rescan that reconciles both ways: the
//     "rescan" producer marks every key legacy has (SCAN) and every key of
//     the bucket's journal, so that a key redisplit wrote that legacy no
//     longer has is read absent and deleted on the target. A gap during a
//     rescan restarts it. Until the rescan's marks are applied the bucket
//     is not caught up.
//  4. Catch-up proof: when a marker of bucket B comes back through the
//     feed, the capture producer's sequence number at that moment covers
//     every change legacy executed before the marker's write; once the
//     producer's watermark reaches it, and B's backfill is done and no
//     rescan of B is pending, B is caught up as of the marker's
//     WrittenAt. Lag is the time from that write to that moment. The first
//     proof moves B from copying to syncing.
//  5. Stopping (SIGINT/SIGTERM): the producers stop (capture, rescans,
//     the backfill SCAN), the copier is drained (every mark made is
//     applied, within drainTimeout), the backfill checkpoint and the live
//     figures are saved, notifications are put back, then the lease is
//     released (Run). A lost lease stops the copier at once instead.

// LiveStats are the live phase's figures, as status shows them and as a
// metrics exporter would export them: one struct, saved in the state.
type LiveStats = state.Live

// LiveEvent is a note of the live phase for the operator, delivered
// through Options.LiveEvent.
type LiveEvent struct {
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"`             // LiveGap, LiveFeedDown, LiveRescan, LiveRescanned, LiveCaughtUp, LiveEvicted, LiveResumed
	Bucket  string    `json:"bucket,omitempty"` // "" for every bucket
	Message string    `json:"message"`
}

// Kinds of LiveEvent.
const (
	LiveResumed   = "resumed"   // the live phase was not running since the last run: rescanning
	LiveFeedDown  = "feed-down" // the change feed stopped being whole
	LiveGap       = "gap"       // events may have been lost: rescanning
	LiveRescan    = "rescan"    // a rescan started
	LiveRescanned = "rescanned" // a rescan's marks are applied
	LiveCaughtUp  = "caught-up" // a bucket proved catch-up for the first time (it is syncing)
	LiveEvicted   = "evicted"   // legacy evicted a key that must not be lost
)

// LiveResult is the live phase's part of a Result.
type LiveResult struct {
	StartedAt time.Time `json:"started_at"`
	StoppedAt time.Time `json:"stopped_at"`
	// Resumed says why the buckets copied before were rescanned at the
	// start (the live phase was not running since the last run).
	Resumed string `json:"resumed,omitempty"`
	Events  int64  `json:"events"`
	Copies  int64  `json:"copies"`
	// Gaps are the gaps in the change feed (each healed by a rescan).
	Gaps     []string `json:"gaps,omitempty"`
	Rescans  int64    `json:"rescans"`
	Notify   string   `json:"notify,omitempty"`   // what became of notify-keyspace-events
	Warnings []string `json:"warnings,omitempty"` // e.g. evictions on legacy
	// Stats is the last snapshot of the live figures.
	Stats *LiveStats `json:"stats,omitempty"`
	// Stages is where the copier's time went per key copied since every
	// bucket's backfill was done (nil before).
	Stages *state.Stages `json:"stages,omitempty"`
}

// drainTimeout bounds the drain of the copier when the live phase stops.
const drainTimeout = 30 * time.Second

// maxGapReasons bounds LiveResult.Gaps.
const maxGapReasons = 20

// liveBucket is one bucket's live state (under live.mu).
type liveBucket struct {
	b            *bucketRun
	backfillDone bool
	gen, done    uint64 // rescans requested, and requested up to done completed
	rescans      int64
	gaps         int64
	caughtUp     bool
	proven       bool // caught up at least once in this run
	lagMs        int64
	caughtUpAt   time.Time
	markerAt     time.Time
	evictNoted   bool

	// the switch window (window.go, cutover.go)
	win atomic.Pointer[window] // the reverse mirror, while it runs
	cut atomic.Bool            // the target is authoritative: never rescanned forward
	off atomic.Bool            // completed or rolled back: the forward mirror writes none of its keys
}

type markerWait struct {
	name    string
	seq     uint64
	written time.Time
}

// live is the live phase of a run.
type live struct {
	r          *run
	o          Options
	res        *LiveResult
	notify     *state.Notify
	cap        *dualwrite.Capture
	capture    *copier.Producer
	rescanProd *copier.Producer
	markers    chan markerWait
	kick       chan struct{}
	failed     chan struct{} // closed by fail
	failOnce   sync.Once
	failErr    error
	stopLoops  context.CancelFunc
	wg         sync.WaitGroup
	events     atomic.Int64
	pops       *dualwrite.PopWatch // the queue bucket's pops on legacy (cutover's consumer check)
	start      time.Time
	pid        int
	host       string

	saveMu sync.Mutex

	mu           sync.Mutex
	bk           map[string]*liveBucket
	want         map[string]uint64 // rescans requested, not started
	cancelRescan context.CancelFunc
	feedDown     string

	prevAt                 time.Time
	prevEvents, prevCopies int64
	// the copier's stage histograms at the previous snapshot, and when
	// every bucket's backfill was first seen done (LiveResult.Stages)
	prevStages, baseStages copier.StageStats
	baseSet                bool
	prevBucket             map[string][2]int64

	// the switch windows and the control channel (window.go, control.go)
	locks   *dualwrite.KeyLocks
	windows atomic.Int64 // windows open
	trMu    sync.Mutex   // one transition at a time
	ln      net.Listener
	sock    string
}

// startLive starts change capture for every bucket of r (before any SCAN
// of the run), and the rescan of the buckets listed in resumed.
func startLive(ctx context.Context, r *run, o Options, notify *state.Notify, res *Result, resumed []string, prev *state.Live) (*live, error) {
	l := &live{r: r, o: o, res: &LiveResult{StartedAt: time.Now().UTC()}, notify: notify,
		markers: make(chan markerWait, 1024), kick: make(chan struct{}, 1), failed: make(chan struct{}),
		start: time.Now(), pid: os.Getpid(), bk: map[string]*liveBucket{}, want: map[string]uint64{},
		prevBucket: map[string][2]int64{}, pops: dualwrite.NewPopWatch(time.Now())}
	l.host, _ = os.Hostname()
	res.Live = l.res
	st, err := o.State.Load()
	if err != nil {
		return nil, err
	}
	l.locks = &dualwrite.KeyLocks{}
	var names []string
	for n, b := range r.buckets {
		lb := &liveBucket{b: b, backfillDone: b.base.Copied}
		l.bk[n] = lb
		names = append(names, n)
		if sb := st.Buckets[n]; sb != nil && (sb.Phase == state.Cutover || sb.Transition != nil && sb.Transition.Switched) {
			lb.cut.Store(true) // the target is authoritative: no forward rescan (window.go contract 4)
		}
		// installed before the first mark: the workers read Admit after a
		// Take, which the dirty set's lock orders after this write
		prev := b.cb.Admit
		b.cb.Admit = func(ctx context.Context, es []*store.Entry) ([]*store.Entry, error) {
			if lb.off.Load() {
				return nil, nil
			}
			if prev != nil {
				var err error
				if es, err = prev(ctx, es); err != nil {
					return nil, err
				}
			}
			if w := lb.win.Load(); w != nil && len(es) > 0 {
				return w.admitFwd(ctx, es)
			}
			return es, nil
		}
	}
	sort.Strings(names)
	r.lockKeys = l.lockWindowKeys
	var fwd []string
	for _, n := range resumed {
		if !l.bk[n].cut.Load() {
			fwd = append(fwd, n)
		}
	}
	resumed = fwd
	l.capture = r.cp.Producer("capture")
	l.rescanProd = r.cp.Producer("rescan")
	cfg := dualwrite.Config{OwnPrefix: lease.OwnPrefix, Markers: names}
	if notify != nil {
		cfg.Notify = notify.Set
	}
	l.cap, err = dualwrite.Start(ctx, r.legacy, cfg, l.sink)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(ctx)
	l.stopLoops = cancel
	l.wg.Add(3)
	go func() { defer l.wg.Done(); l.markerLoop(lctx) }()
	go func() { defer l.wg.Done(); l.rescanLoop(lctx) }()
	go func() { defer l.wg.Done(); l.saveLoop(lctx) }()
	if len(resumed) > 0 {
		why := fmt.Sprintf("migrate --dual-write was not running: changes to legacy since the last run were not followed; rescanning %s (every legacy key, and every key redisplit wrote)", strings.Join(resumed, ", "))
		if prev != nil && prev.Running {
			why = fmt.Sprintf("the live phase of an earlier migrate (pid %d on %s) did not stop cleanly (killed?): changes since %s were not followed; rescanning %s (every legacy key, and every key redisplit wrote)",
				prev.PID, prev.Host, prev.UpdatedAt.Format(time.RFC3339), strings.Join(resumed, ", "))
		}
		l.res.Resumed = why
		l.note(LiveResumed, "", why)
		l.requestRescan(resumed)
	}
	if l.ln, l.sock, err = listenControl(o.State.Path()); err != nil {
		_ = l.cap.Stop()
		cancel()
		l.wg.Wait()
		return nil, err
	}
	l.wg.Add(1)
	go func() { defer l.wg.Done(); serveControl(lctx, l.ln, l.handle, l.endIfIdle) }()
	l.wg.Add(1)
	go func() { defer l.wg.Done(); l.resume(lctx, st) }()
	return l, nil
}

// lockWindowKeys is the run's lockKeys: while a window is open, a legacy
// read locks those of its keys that may be of a bucket in its window
// (window.go contract 3).
func (l *live) lockWindowKeys(keys []string) func() {
	if l.windows.Load() == 0 {
		return func() {}
	}
	var lock []string
	for _, k := range keys {
		for _, b := range l.bucketsOfName(k) {
			if l.bk[b.name].win.Load() != nil {
				lock = append(lock, k)
				break
			}
		}
	}
	return l.locks.Lock(lock)
}

func (l *live) note(kind, bucket, msg string) {
	if l.o.LiveEvent != nil {
		l.o.LiveEvent(LiveEvent{At: time.Now(), Kind: kind, Bucket: bucket, Message: msg})
	}
}

// fail ends the live phase with err (the copier or the capture stopped).
func (l *live) fail(err error) {
	l.failOnce.Do(func() {
		l.failErr = err
		close(l.failed)
	})
}

// bucketsOfName are the buckets of the run a key may belong to, by its
// name (for per-bucket event counts: an event carries no type).
func (l *live) bucketsOfName(key string) []*bucketRun {
	r := l.r
	if m, ok := r.o.Classifier.ClassifyName(key); ok {
		name := string(m.Bucket)
		if m.Bucket == classify.Unknown || m.Bucket == "" {
			name = r.rt.unknownBucket()
		}
		if b := r.buckets[name]; b != nil {
			return []*bucketRun{b}
		}
		return nil
	}
	var out []*bucketRun
	for _, cb := range r.route(key, store.TypeNone) {
		out = append(out, r.byCB(cb))
	}
	return out
}

// sink is the capture's sink: the feed, in order, from one goroutine.
func (l *live) sink(ctx context.Context, e dualwrite.Event) error {
	switch e.Kind {
	case dualwrite.KindMark:
		l.events.Add(1)
		for _, b := range l.bucketsOfName(e.Mark.Key) {
			b.liveEvents.Add(1)
			if e.Mark.Event == "evicted" {
				l.evicted(b, e.Mark.Key)
			}
			if b.name == "queue" {
				l.pops.Observe(e.Mark)
			}
		}
		_, err := l.capture.Mark(ctx, e.Mark.Key, 0)
		return err
	case dualwrite.KindMarker:
		m := markerWait{name: e.Marker.Name, seq: l.capture.Marked(), written: e.Marker.WrittenAt}
		select {
		case l.markers <- m:
		case <-ctx.Done():
			return ctx.Err()
		}
	case dualwrite.KindDown:
		l.mu.Lock()
		l.feedDown = e.Gap.Reason
		for _, lb := range l.bk {
			lb.caughtUp = false
		}
		l.mu.Unlock()
		l.note(LiveFeedDown, "", e.Gap.Reason)
	case dualwrite.KindGap:
		l.mu.Lock()
		l.feedDown = ""
		var names []string
		for n, lb := range l.bk {
			lb.gaps++
			names = append(names, n)
		}
		if len(l.res.Gaps) < maxGapReasons {
			l.res.Gaps = append(l.res.Gaps, fmt.Sprintf("%s: %s", e.Gap.At.Format(time.RFC3339), e.Gap.Reason))
		}
		l.mu.Unlock()
		sort.Strings(names)
		l.note(LiveGap, "", fmt.Sprintf("gap in the change feed (%s): %s; rescanning %s", e.Gap.Cause, e.Gap.Reason, strings.Join(names, ", ")))
		l.requestRescan(names)
	}
	return nil
}

// evicted records legacy's eviction of key, a key of b.
func (l *live) evicted(b *bucketRun, key string) {
	b.liveEvicted.Add(1)
	if !config.MustNotEvict(b.name) {
		return
	}
	l.mu.Lock()
	lb := l.bk[b.name]
	first := !lb.evictNoted
	lb.evictNoted = true
	l.mu.Unlock()
	if first {
		l.note(LiveEvicted, b.name, fmt.Sprintf("legacy evicted %s key %q during the live phase: legacy is still losing %s keys (its maxmemory-policy evicts them when full)", b.name, key, b.name))
	}
}

// markerLoop turns markers into catch-up proofs (contract 4).
func (l *live) markerLoop(ctx context.Context) {
	for {
		var m markerWait
		select {
		case m = <-l.markers:
		case <-ctx.Done():
			return
		}
		if err := l.capture.Wait(ctx, m.seq); err != nil {
			return
		}
		now := time.Now()
		l.mu.Lock()
		lb := l.bk[m.name]
		if lb == nil {
			l.mu.Unlock()
			continue
		}
		lb.lagMs = now.Sub(m.written).Milliseconds()
		first := false
		if lb.backfillDone && lb.done >= lb.gen && l.feedDown == "" && !lb.b.cb.Failed() {
			first = !lb.proven
			lb.caughtUp, lb.proven, lb.caughtUpAt, lb.markerAt = true, true, now.UTC(), m.written.UTC()
		}
		l.mu.Unlock()
		if first {
			l.note(LiveCaughtUp, m.name, fmt.Sprintf("%s caught up (lag %d ms): syncing", m.name, now.Sub(m.written).Milliseconds()))
			l.save(false)
		}
	}
}

// backfillDone records that the backfill of the buckets of p completed.
func (l *live) backfillDone(p *pass) {
	if !p.complete() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for n, b := range p.buckets {
		if !b.cb.Failed() {
			l.bk[n].backfillDone = true
		}
	}
}

// requestRescan marks buckets for a rescan (contract 3); a rescan running
// is restarted with them added.
func (l *live) requestRescan(names []string) {
	l.mu.Lock()
	for _, n := range names {
		lb := l.bk[n]
		if lb.off.Load() {
			continue // completed or rolled back
		}
		if lb.cut.Load() { // heal from the target (window.go contract 4)
			if w := lb.win.Load(); w != nil {
				w.requestRescan()
			}
			continue
		}
		lb.gen++
		lb.caughtUp = false
		l.want[n] = lb.gen
	}
	if l.cancelRescan != nil {
		l.cancelRescan()
	}
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

func (l *live) rescanLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
		}
		l.mu.Lock()
		set := l.want
		l.want = map[string]uint64{}
		rctx, cancel := context.WithCancel(ctx)
		l.cancelRescan = cancel
		var names []string
		for n := range set {
			l.bk[n].rescans++
			names = append(names, n)
		}
		l.mu.Unlock()
		sort.Strings(names)
		if len(set) == 0 {
			cancel()
			continue
		}
		l.res.Rescans++
		l.note(LiveRescan, "", "rescanning "+strings.Join(names, ", "))
		t0 := time.Now()
		err := l.rescan(rctx, set)
		l.mu.Lock()
		l.cancelRescan = nil
		superseded := err != nil && rctx.Err() != nil
		if err != nil {
			for n, g := range set { // a newer request has a higher generation
				if l.want[n] < g {
					l.want[n] = g
				}
			}
		} else {
			for n, g := range set {
				if lb := l.bk[n]; lb.done < g {
					lb.done = g
				}
			}
		}
		l.mu.Unlock()
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case superseded:
			continue // restarted with what was asked meanwhile
		case err != nil:
			l.fail(fmt.Errorf("rescan: %w", err))
			return
		}
		l.note(LiveRescanned, "", fmt.Sprintf("rescanned %s in %s", strings.Join(names, ", "), time.Since(t0).Round(time.Millisecond)))
	}
}

// rescan marks every legacy key of the buckets of set, then every key of
// their journals, and waits until those marks are applied.
func (l *live) rescan(ctx context.Context, set map[string]uint64) error {
	r, p := l.r, l.rescanProd
	ahead := uint64(4 * r.o.Workers * max(r.o.Batch, r.o.ScanCount))
	bound := func() error {
		if m := p.Marked(); m > ahead {
			return p.Wait(ctx, m-ahead)
		}
		return nil
	}
	pages, scanErr := scanPages(ctx, r.legacy, 0, r.o)
	for pg := range pages {
		if err := bound(); err != nil {
			return err
		}
		types, err := legacyTypes(ctx, r.legacy, r.o, pg.keys)
		if err != nil {
			return err
		}
		var keys, names []string
		for i, k := range pg.keys {
			if name, _ := r.rt.route(k, types[i]); set[name] != 0 {
				keys, names = append(keys, k), append(names, name)
			}
		}
		if keys, err = r.warmRescan(ctx, keys, names); err != nil { // the cache's copy policy (warm.go)
			return err
		}
		if _, err := p.MarkAll(ctx, keys); err != nil {
			return err
		}
	}
	if err := scanErr(); err != nil {
		return err
	}
	var keys []string
	flush := func() error {
		if err := bound(); err != nil {
			return err
		}
		_, err := p.MarkAll(ctx, keys)
		keys = keys[:0]
		return err
	}
	for _, n := range slices.Sorted(maps.Keys(set)) {
		err := r.o.State.ReadJournal(n, func(k string) error {
			if keys = append(keys, k); len(keys) >= r.o.Batch {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return err
		}
	}
	return p.Wait(ctx, p.Marked())
}

// saveLoop saves the live figures about once a second.
func (l *live) saveLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.save(false)
		if l.allFailed() {
			l.fail(nil)
			return
		}
	}
}

func (l *live) allFailed() bool {
	for _, b := range l.r.buckets {
		if !b.cb.Failed() {
			return false
		}
	}
	return true
}

// hotTop is the number of hot keys LiveStats keeps per bucket.
const hotTop = 10

// snapshot returns the live figures now (rates over the time since the
// previous snapshot). The backlog per bucket is copier.Backlog by the
// keys' names (bucketsOfName), taken before l.mu.
func (l *live) snapshot(stopped bool) *LiveStats {
	now := time.Now()
	cs := l.r.cp.Stats()
	bl := l.r.cp.Backlog(func(k string) []string {
		if strings.HasPrefix(k, OwnPrefix) {
			return nil // redisplit's own keys (markers) go nowhere
		}
		var out []string
		for _, b := range l.bucketsOfName(k) {
			out = append(out, b.name)
		}
		return out
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	el := now.Sub(l.prevAt).Seconds()
	if l.prevAt.IsZero() {
		el = now.Sub(l.start).Seconds()
	}
	el = max(el, 0.001)
	s := &LiveStats{Running: !stopped, PID: l.pid, Host: l.host, StartedAt: l.res.StartedAt, UpdatedAt: now.UTC(),
		NoTouch: l.r.noTouch, Backlog: cs.Dirty, FeedDown: l.feedDown, Buckets: map[string]*state.LiveBucket{}}
	if stopped {
		s.StoppedAt = now.UTC()
	}
	s.Events = l.events.Load()
	s.EventsPerSec = float64(s.Events-l.prevEvents) / el
	for n, lb := range l.bk {
		b := lb.b
		ev, cp := b.liveEvents.Load(), b.liveCopies.Load()
		s.Copies += cp
		prev := l.prevBucket[n]
		fig := b.cb.Figures()
		s.Buckets[n] = &state.LiveBucket{BackfillDone: lb.backfillDone, CaughtUp: lb.caughtUp && !stopped, LagMs: lb.lagMs,
			Backlog: bl.PerBucket[n], BacklogEstimated: bl.Estimated, Events: ev, EventsPerSec: float64(ev-prev[0]) / el,
			Copies: cp, CopiesPerSec: float64(cp-prev[1]) / el,
			Gaps: lb.gaps, Rescans: lb.rescans, RescanPending: lb.done < lb.gen, Evicted: b.liveEvicted.Load(),
			CaughtUpAt: lb.caughtUpAt, MarkerWrittenAt: lb.markerAt, Reads: fig.Reads, Marks: fig.Marks}
		for _, h := range b.cb.HotKeys(hotTop, now) {
			s.Buckets[n].HotKeys = append(s.Buckets[n].HotKeys, state.HotKey{JSON: keyname.Of(h.Key), Copies: h.Copies,
				Over: h.Over, Since: h.Since.UTC(), PerSec: h.PerSec, Hot: h.Hot})
		}
		if w := lb.win.Load(); w != nil {
			s.Buckets[n].Window = w.stats()
		}
		l.prevBucket[n] = [2]int64{ev, cp}
	}
	s.CopiesPerSec = float64(s.Copies-l.prevCopies) / el
	l.prevAt, l.prevEvents, l.prevCopies = now, s.Events, s.Copies
	st := l.r.cp.Stages()
	s.Stages = stagesOf(st.Sub(l.prevStages))
	l.prevStages = st
	if !l.baseSet {
		done := true
		for _, lb := range l.bk {
			done = done && lb.backfillDone
		}
		if done {
			l.baseStages, l.baseSet = st, true
		}
	} else {
		l.res.Stages = stagesOf(st.Sub(l.baseStages))
	}
	return s
}

// stagesOf renders the copier's stage histograms; nil without copies.
func stagesOf(st copier.StageStats) *state.Stages {
	n := st.Read.Count()
	if n == 0 {
		return nil
	}
	q := func(h copier.Hist) state.Quantile {
		ms := func(p float64) float64 { return float64(h.Quantile(p).Microseconds()) / 1000 }
		return state.Quantile{P50: ms(0.5), P90: ms(0.9), P99: ms(0.99), Max: ms(1)}
	}
	return &state.Stages{Keys: n, Wait: q(st.Wait), Read: q(st.Read), Write: q(st.Write)}
}

// save saves the live figures and moves the buckets that proved catch-up
// from copying to syncing (never back: verify may have moved them on);
// it fsyncs the journals first, so that what the state calls caught up is
// journaled on disk.
func (l *live) save(stopped bool) {
	l.saveMu.Lock() // one save at a time, so that a later snapshot is never overwritten by an earlier one
	defer l.saveMu.Unlock()
	s := l.snapshot(stopped)
	for _, b := range l.r.buckets {
		_ = b.syncJournals()
	}
	l.mu.Lock()
	proven := map[string]bool{}
	for n, lb := range l.bk {
		proven[n] = lb.proven
	}
	l.mu.Unlock()
	err := l.o.State.Update(func(st *state.State) error {
		st.Live = s
		for n, ok := range proven {
			if sb := st.Buckets[n]; ok && sb != nil && sb.Phase == state.Copying && sb.Copied && !sb.Failed {
				sb.Phase = state.Syncing
			}
		}
		return nil
	})
	if err != nil {
		l.fail(err)
	}
	if l.o.Live != nil {
		l.o.Live(*s)
	}
}

// wait blocks until the live phase has to end: ctx (SIGINT, a lost lease),
// the capture ending, a failure, or every bucket failed.
func (l *live) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-l.cap.Done():
		if err := l.cap.Err(); err != nil {
			return fmt.Errorf("change capture stopped: %w", err)
		}
		return nil
	case <-l.failed:
		return l.failErr
	}
}

// drain applies every mark made so far (contract 5), within drainTimeout.
func (l *live) drain(wctx context.Context) {
	ctx, cancel := context.WithTimeout(wctx, drainTimeout)
	defer cancel()
	_ = l.r.cp.Flush(ctx)
}

// stop ends the live phase (contract 5): producers, drain, figures,
// evictions, notifications. wctx is the writers' context (it outlives a
// SIGINT, not a lost lease).
func (l *live) stop(wctx context.Context) {
	_ = l.ln.Close() // no new transition; one in progress ends with the loops
	_ = os.Remove(l.sock)
	_ = l.cap.Stop()
	l.stopLoops()
	l.wg.Wait()
	l.trMu.Lock()
	for _, lb := range l.bk {
		if w := lb.win.Load(); w != nil {
			w.close(wctx) // drained; the next migrate reopens it
		}
	}
	l.trMu.Unlock()
	l.drain(wctx)
	s := l.snapshot(true)
	l.res.StoppedAt, l.res.Events, l.res.Copies, l.res.Stats = s.UpdatedAt, s.Events, s.Copies, s
	l.save(true)
	l.res.Warnings = append(l.res.Warnings, l.evictionWarnings()...)
	if !l.r.noTouch {
		l.res.Warnings = append(l.res.Warnings, noTouchWarning)
	}
}

// noTouchWarning says that the copier's reads reordered legacy's eviction.
const noTouchWarning = "legacy has no CLIENT NO-TOUCH (Redis < 7.2): every key the copier read looks recently used to legacy's LRU/LFU eviction"

// evictionWarnings are the keys legacy evicted during the live phase that
// must not be lost (session, queue, ratelimit), one line per bucket.
func (l *live) evictionWarnings() []string {
	perKey, others := l.cap.Evictions()
	type agg struct {
		n      int64
		sample []string
	}
	by := map[string]*agg{}
	for k, n := range perKey {
		for _, b := range l.bucketsOfName(k) {
			if !config.MustNotEvict(b.name) {
				continue
			}
			a := by[b.name]
			if a == nil {
				a = &agg{}
				by[b.name] = a
			}
			a.n += n
			if len(a.sample) < 3 {
				a.sample = append(a.sample, k)
			}
		}
	}
	var out []string
	for _, b := range slices.Sorted(maps.Keys(by)) {
		a := by[b]
		sort.Strings(a.sample)
		out = append(out, fmt.Sprintf("legacy evicted %d %s keys during the live phase (e.g. %s): legacy is still losing %s keys; its maxmemory-policy evicts them when full",
			a.n, b, quoteList(a.sample), b))
	}
	if others > 0 {
		out = append(out, fmt.Sprintf("legacy evicted %d more keys (not listed one by one)", others))
	}
	return out
}

// enableNotify makes legacy publish the events change capture needs
// (contract 1) and returns the setting as saved in the state.
func enableNotify(ctx context.Context, legacy *redis.Client, sd *state.Dir) (*state.Notify, error) {
	st, err := sd.Load()
	if err != nil {
		return nil, err
	}
	rec := st.Notify
	if rec == nil {
		// saved before CONFIG SET: a kill -9 right after it leaves the old
		// value recorded
		cur, err := legacy.ConfigGet(ctx, "notify-keyspace-events").Result()
		v, ok := cur["notify-keyspace-events"]
		if err == nil && ok {
			rec = &state.Notify{Old: v, Known: true, At: time.Now().UTC()}
			if !dualwrite.NotifySufficient(v) {
				rec.Set = dualwrite.NotifyValue(v)
			}
			if err := sd.Update(func(s *state.State) error { s.Notify = rec; return nil }); err != nil {
				return nil, err
			}
		}
	}
	ns, err := dualwrite.EnableNotifications(ctx, legacy, lease.OwnPrefix)
	if err != nil {
		if st.Notify == nil && rec != nil { // nothing was changed: forget the record
			_ = sd.Update(func(s *state.State) error { s.Notify = nil; return nil })
		}
		return nil, err
	}
	switch {
	case rec == nil:
		rec = &state.Notify{Old: ns.Old, Known: ns.Known, Set: ns.Set, Probed: ns.Probed, At: time.Now().UTC()}
	case st.Notify != nil: // a rerun: the first run's Old stands
		if ns.Set != "" {
			rec.Set = ns.Set
		}
	default: // recorded just now
		rec.Set, rec.Probed = ns.Set, ns.Probed
	}
	if err := sd.Update(func(s *state.State) error { s.Notify = rec; return nil }); err != nil {
		return nil, err
	}
	return rec, nil
}

// restoreNotify puts legacy's notify-keyspace-events back as the state
// records it and clears the record; it returns what it did, for the
// summary. A value changed by someone else since is left alone (and the
// record cleared: it is theirs now).
func restoreNotify(ctx context.Context, legacy *redis.Client, sd *state.Dir) string {
	st, err := sd.Load()
	if err != nil || st.Notify == nil {
		return ""
	}
	rec := st.Notify
	ns := dualwrite.NotifySetting{Old: rec.Old, Known: rec.Known, Set: rec.Set, Probed: rec.Probed}
	msg := ""
	switch err := dualwrite.RestoreNotifications(ctx, legacy, ns); {
	case errors.Is(err, dualwrite.ErrNotifyChanged):
		msg = "notify-keyspace-events left as is: " + err.Error()
	case err != nil:
		return fmt.Sprintf("notify-keyspace-events NOT restored (%v): it is still %q; the next migrate restores it, or set it back to %q yourself",
			redisconn.Explain(err, "legacy", legacy.Options().Addr), rec.Set, rec.Old)
	case ns.Changed():
		msg = fmt.Sprintf("notify-keyspace-events restored to %q (redisplit had set %q)", rec.Old, rec.Set)
	default:
		msg = fmt.Sprintf("notify-keyspace-events left at %q (redisplit did not change it)", rec.Old)
	}
	_ = sd.Update(func(s *state.State) error { s.Notify = nil; return nil })
	return msg
}

// statuses sets the buckets' results after the live phase: syncing for a
// bucket that proved catch-up, failed for one that stopped.
func (l *live) statuses(res *Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	inPass := map[*bucketRun]bool{}
	for _, p := range l.r.passes {
		for _, b := range p.buckets {
			inPass[b] = true
		}
	}
	for n, lb := range l.bk {
		b := lb.b
		if !inPass[b] {
			b.br.Retries += b.health.retries.Load()
			if e := b.health.lastError(); e != "" {
				b.br.LastRetryError = e
			}
		}
		switch {
		case lb.off.Load(): // its window ended in this run (cutover.go)
			if st, err := l.o.State.Load(); err == nil && st.Buckets[n] != nil {
				b.br.Status = string(st.Buckets[n].Phase) // completed or rolled-back
			}
		case b.cb.Failed():
			b.br.Status, b.br.Error = StatusFailed, b.failMsg()
		case lb.proven:
			b.br.Status = StatusSyncing
		case !inPass[b]:
			b.br.Status = StatusCopied // copied by an earlier run, mirrored, not proven caught up in this one
		}
		if b.cb.Failed() && !inPass[b] {
			// mirrored only: record the failure beside its phase
			msg := b.br.Error
			_ = l.o.State.Update(func(s *state.State) error {
				if sb := s.Buckets[n]; sb != nil && !sb.Failed {
					sb.Failed, sb.FailedAt, sb.LastError = true, time.Now().UTC(), msg
					sb.Errors++
				}
				return nil
			})
		}
	}
}
