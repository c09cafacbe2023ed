package migrate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/copier"
	"github.com/redisplit/redisplit/dualwrite"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
)

// The switch window of a bucket (from cutover to complete or rollback):
// the reverse mirror, target → legacy, beside the forward one. Ordering
// contracts:
//
//  1. Notifications on the target: each master's notify-keyspace-events
//     is saved in the state (state.Bucket.TargetNotify) before it is
//     changed and put back when the window closes (or by the next migrate
//     that closes it, after a kill -9).
//  2. Change capture (dualwrite.Capture, the forward direction's) runs on
//     every master of the target: every cluster master (markers carry a
//     hash tag of a slot the master serves), the Sentinel master through
//     the failover client (a failover changes run_id: a gap). It is
//     subscribed before the reverse mirror counts as started, so every
//     write the target executes afterwards reaches the reverse copier or
//     lies in a gap.
//  3. One reverse copier per window (source: the target through
//     dualwrite.ServerSource; sink: legacy; journal: the bucket's, so
//     that a rollback deletes from the target what the application wrote
//     there too). Both directions pass dualwrite.Suppressor (a copy that
//     would not change its destination is not written) and hold the
//     bucket's keys' dualwrite.KeyLocks from read to write: an echo dies
//     after one hop, and a key written on both sides ends with the value
//     the later copy read on both (the most recent write a mirror
//     observed wins).
//  4. Gaps heal from the authoritative side only: a gap in the reverse
//     feed — or in the forward feed, or migrate not running — is healed
//     by a reverse rescan (every key of the bucket on the target copied to
//     legacy where it differs, and every key of the bucket on legacy that
//     the target no longer has deleted from legacy), never by a forward
//     rescan, which would overwrite the application's newer writes on the
//     target.
//  5. Drain (rollback): a marker written on every master comes back
//     through its feed, and every change delivered before it is applied to
//     legacy, with no reverse rescan pending; when a marker does not come
//     back within drainMarkerWait, a final reverse rescan is the proof.
//  6. The queue bucket's lists are merged in both directions by
//     dualwrite.QueueLists instead of copied whole (a whole-list copy runs
//     jobs twice or loses them while producers push to legacy and
//     consumers pop the target); its bases are taken from the target once
//     the forward copies in flight when the window opened are written,
//     before cutover writes the control key. The bases are saved in the
//     state directory (state.QueueBase) before legacy is rewritten: a
//     window that reopens after a kill merges from the saved bases, so
//     that jobs pushed to legacy while migrate was down are forwarded
//     (at least once) before any reverse copy of the list.
type window struct {
	l     *live
	lb    *liveBucket
	b     *bucketRun
	since time.Time

	legacySink     *store.Redis
	cp             *copier.Copier
	rev            []*copier.Bucket
	supRev, supFwd *dualwrite.Suppressor
	ql             *dualwrite.QueueLists // the queue bucket: its lists are merged, not copied (contract 6)
	masters        []*redis.Client
	labels         []string
	legs           []*leg
	rescanProd     *copier.Producer

	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	mu        sync.Mutex
	gen, done uint64
	caughtUp  bool
	lagMs     int64

	gaps, rescans, revCopies, appWrites, lastApp atomic.Int64
}

// leg is the reverse capture of one target master.
type leg struct {
	cap    *dualwrite.Capture
	prod   *copier.Producer
	marker string

	mu        sync.Mutex
	seenSeq   uint64 // the last marker seen
	markSeq   uint64 // the producer's last mark when it was seen
	writtenAt time.Time
	down      bool
}

// drainMarkerWait bounds the wait for a drain marker (contract 5).
const drainMarkerWait = 15 * time.Second

// openWindow starts the reverse mirror of lb's bucket (contracts 1-3);
// with rescan, a reverse rescan follows at once (migrate was not running,
// or the window reopens after a kill).
func (l *live) openWindow(ctx context.Context, lb *liveBucket, rescan bool) (*window, error) {
	if w := lb.win.Load(); w != nil {
		if rescan {
			w.requestRescan()
		}
		return w, nil
	}
	b := lb.b
	w := &window{l: l, lb: lb, b: b, since: time.Now().UTC(), kick: make(chan struct{}, 1)}
	err := b.t.ForEachMaster(ctx, func(_ context.Context, c *redis.Client) error {
		l.mu.Lock() // ForEachMaster runs concurrently on a cluster
		defer l.mu.Unlock()
		w.masters = append(w.masters, c)
		label := c.Options().Addr
		if b.t.Kind == config.KindSentinel {
			label = "sentinel-master" // the failover client follows the master (rollback restores by this label too)
		}
		w.labels = append(w.labels, label)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("target %s (%s): listing its masters: %w", b.name, b.t.Describe(), err)
	}
	sets, err := w.enableNotify(ctx)
	if err != nil {
		return nil, err
	}
	lt := config.Target{Kind: config.KindStandalone, Endpoint: l.r.o.Config.Legacy}
	if w.legacySink, err = store.Open(ctx, b.name, lt); err != nil {
		return nil, err
	}
	w.supFwd, w.supRev = dualwrite.Pair(l.r.legacy, b.t.Client)
	w.supFwd.Written = func(es []*store.Entry) {
		w.appWrites.Add(int64(len(es)))
		w.lastApp.Store(time.Now().UnixNano())
	}
	if b.name == "queue" {
		w.ql = &dualwrite.QueueLists{Legacy: l.r.legacy, Target: b.t.Client, Journal: b.journal,
			OnConflict: func(key, why string) { l.note(LiveGap, b.name, fmt.Sprintf("queue list %q: %s", key, why)) },
			Forwarded: func(n int) {
				w.appWrites.Add(int64(n))
				w.lastApp.Store(time.Now().UnixNano())
			},
			OnDuplicate: func(key string, n int, why string) {
				l.note(LiveResumed, b.name, fmt.Sprintf("queue list %q: up to %d jobs may run twice (%s)", key, n, why))
			},
			Persist: func(m map[string]state.QueueBase) error { return l.o.State.SaveQueueBases(b.name, m) }}
		if err := w.queueBases(rescan); err != nil {
			w.legacySink.Close()
			return nil, err
		}
	}
	rb := &copier.Bucket{Name: b.name + " (reverse)", Sink: w.legacySink, Journal: b.journal, Retry: l.o.Retry, Admit: w.admitRev}
	w.rev = []*copier.Bucket{rb}
	cctx := context.WithoutCancel(ctx)
	w.cp, err = copier.New(cctx, copier.Config{
		Source:  &dualwrite.ServerSource{Client: b.t.Client, Name: "target " + b.name + " " + b.t.Describe(), Retry: l.o.Retry, Locks: l.locks},
		Route:   w.route,
		Workers: 2, Batch: 64, BatchBytes: maxBatchBytes,
		Observe: func(_ *copier.Bucket, _ *store.Entry, o copier.Outcome, _ int64) {
			if o == copier.Written || o == copier.WrittenLogical || o == copier.Deleted {
				w.revCopies.Add(1)
			}
		},
	})
	if err != nil {
		w.legacySink.Close()
		return nil, err
	}
	w.rescanProd = w.cp.Producer("reverse-rescan")
	wctx, cancel := context.WithCancel(ctx)
	w.cancel = cancel
	for i, m := range w.masters {
		lg := &leg{prod: w.cp.Producer("reverse-capture"), marker: "rev-" + b.name}
		if cc, ok := b.t.Client.(*redis.ClusterClient); ok {
			tag, err := slotTag(ctx, cc, m.Options().Addr)
			if err != nil {
				w.close(ctx)
				return nil, err
			}
			lg.marker += "{" + tag + "}"
		}
		cfg := dualwrite.Config{OwnPrefix: OwnPrefix, Markers: []string{lg.marker}, Notify: sets[i]}
		if lg.cap, err = dualwrite.Start(wctx, m, cfg, w.sink(lg)); err != nil {
			w.close(ctx)
			return nil, fmt.Errorf("target %s (%s): reverse change capture: %w", b.name, w.labels[i], err)
		}
		w.legs = append(w.legs, lg)
	}
	// the forward direction's reads of the bucket's keys take the same
	// locks from now on
	l.windows.Add(1)
	lb.win.Store(w)
	if w.ql != nil {
		if err := w.startQueueLists(ctx); err != nil {
			w.close(ctx)
			return nil, fmt.Errorf("target %s: merging its queue lists: %w", b.name, err)
		}
	}
	w.wg.Add(2)
	go func() { defer w.wg.Done(); w.rescanLoop(wctx) }()
	go func() { defer w.wg.Done(); w.proofLoop(wctx) }()
	if rescan {
		w.requestRescan()
	}
	return w, nil
}

// admitFwd is the forward direction's Admit while the window is open.
func (w *window) admitFwd(ctx context.Context, es []*store.Entry) ([]*store.Entry, error) {
	return w.admit(ctx, es, w.supFwd)
}

// admitRev is the reverse copier's Admit.
func (w *window) admitRev(ctx context.Context, es []*store.Entry) ([]*store.Entry, error) {
	return w.admit(ctx, es, w.supRev)
}

// admit is one direction's Admit: the queue bucket's lists are merged
// (contract 6), everything else passes that direction's Suppressor.
func (w *window) admit(ctx context.Context, es []*store.Entry, sup *dualwrite.Suppressor) ([]*store.Entry, error) {
	if w.ql != nil {
		var err error
		if es, err = w.ql.Take(ctx, es); err != nil || len(es) == 0 {
			return nil, err
		}
	}
	return sup.Admit(ctx, es)
}

// queueBases gives the queue window the merge bases a killed run saved
// (contract 6) when the window reopens — after a restart (rescan) or with
// the bucket cut over already — and removes them when it opens fresh
// (cutover): bases of an earlier window say nothing of this one.
func (w *window) queueBases(rescan bool) error {
	sd, name := w.l.o.State, w.b.name
	reopen := rescan
	if !reopen {
		_, sb, err := w.l.bucketState(name)
		if err != nil {
			return err
		}
		reopen = sb != nil && sb.Phase == state.Cutover
	}
	if !reopen {
		return sd.RemoveQueueBases(name)
	}
	m, err := sd.LoadQueueBases(name)
	if err != nil {
		return fmt.Errorf("bucket %s: %w (a kill cannot tear it: it is replaced atomically; remove it to have the queue lists merged by content instead, jobs the target ran meanwhile may then run twice)", name, err)
	}
	w.ql.Loaded, w.ql.Reopened = m, true
	return nil
}

// startQueueLists is contract 6: the forward copies admitted before the
// window are written, the bases are taken from the target's lists of the
// bucket, and the lists held back meanwhile are merged (the keys among
// them that are no lists are marked again for the ordinary copy).
func (w *window) startQueueLists(ctx context.Context) error {
	fctx, cancel := context.WithTimeout(ctx, drainTimeout)
	err := w.l.r.cp.Flush(fctx)
	cancel()
	if err != nil {
		return fmt.Errorf("waiting for the forward copies in flight: %w", err)
	}
	var keys []string
	for _, m := range w.masters {
		iter := m.ScanType(ctx, 0, "*", 1000, "list").Iterator()
		for iter.Next(ctx) {
			if k := iter.Val(); !strings.HasPrefix(k, OwnPrefix) && w.belongs(k, "list") {
				keys = append(keys, k)
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
	}
	others, err := w.ql.Start(ctx, keys, w.l.locks.Lock)
	if err != nil {
		return err
	}
	for _, k := range others {
		if _, err := w.l.capture.Mark(ctx, k, 0); err != nil {
			return err
		}
	}
	return nil
}

// slotTag returns a hash tag whose slot the cluster master at addr serves.
func slotTag(ctx context.Context, cc *redis.ClusterClient, addr string) (string, error) {
	for i := 0; i < 10000; i++ {
		tag := fmt.Sprint(i)
		m, err := cc.MasterForKey(ctx, "{"+tag+"}")
		if err != nil {
			return "", err
		}
		if m.Options().Addr == addr {
			return tag, nil
		}
	}
	return "", fmt.Errorf("no hash tag found for cluster master %s", addr)
}

// route is the reverse copier's Route: the bucket's keys (by the plan)
// go to legacy; an absent key when the bucket is among those it could be.
func (w *window) route(key, typ string) []*copier.Bucket {
	if strings.HasPrefix(key, OwnPrefix) {
		return nil
	}
	if w.belongs(key, typ) {
		return w.rev
	}
	return nil
}

func (w *window) belongs(key, typ string) bool {
	r := w.l.r
	if typ != store.TypeNone {
		name, _ := r.rt.route(key, typ)
		return name == w.b.name
	}
	for _, b := range w.l.bucketsOfName(key) {
		if b == w.b {
			return true
		}
	}
	return false
}

// mayBelong: the key's name may be of the bucket (events carry no type).
func (w *window) mayBelong(key string) bool { return w.belongs(key, store.TypeNone) }

func (w *window) sink(lg *leg) dualwrite.Sink {
	return func(ctx context.Context, e dualwrite.Event) error {
		switch e.Kind {
		case dualwrite.KindMark:
			if !w.mayBelong(e.Mark.Key) {
				return nil
			}
			_, err := lg.prod.Mark(ctx, e.Mark.Key, 0)
			return err
		case dualwrite.KindMarker:
			lg.mu.Lock()
			lg.seenSeq, lg.markSeq, lg.writtenAt, lg.down = e.Marker.Seq, lg.prod.Marked(), e.Marker.WrittenAt, false
			lg.mu.Unlock()
		case dualwrite.KindDown:
			lg.mu.Lock()
			lg.down = true
			lg.mu.Unlock()
			w.mu.Lock()
			w.caughtUp = false
			w.mu.Unlock()
			w.l.note(LiveFeedDown, w.b.name, "reverse feed: "+e.Gap.Reason)
		case dualwrite.KindGap:
			lg.mu.Lock()
			lg.down = false
			lg.mu.Unlock()
			w.gaps.Add(1)
			w.l.note(LiveGap, w.b.name, fmt.Sprintf("gap in the reverse feed of %s (%s): %s; reverse rescan (target → legacy)", w.b.name, e.Gap.Cause, e.Gap.Reason))
			w.requestRescan()
		}
		return nil
	}
}

func (w *window) requestRescan() {
	w.mu.Lock()
	w.gen++
	w.caughtUp = false
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *window) rescanPending() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.done < w.gen
}

// rescanLoop runs reverse rescans (contract 4) until every one asked for
// is done; a failed one (a failover mid-SCAN) is retried.
func (w *window) rescanLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		}
		for ctx.Err() == nil {
			w.mu.Lock()
			g, pending := w.gen, w.done < w.gen
			w.mu.Unlock()
			if !pending {
				break
			}
			w.rescans.Add(1)
			t0 := time.Now()
			if err := w.rescan(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				w.l.note(LiveRescan, w.b.name, fmt.Sprintf("reverse rescan of %s failed (%v): retrying", w.b.name, err))
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				continue
			}
			w.mu.Lock()
			if w.done < g {
				w.done = g
			}
			w.mu.Unlock()
			w.l.note(LiveRescanned, w.b.name, fmt.Sprintf("reverse rescan of %s (target → legacy) done in %s", w.b.name, time.Since(t0).Round(time.Millisecond)))
		}
	}
}

func (w *window) rescan(ctx context.Context) error {
	o := w.l.r.o
	return dualwrite.ReverseRescan(ctx, w.rescanProd, w.masters, w.l.r.legacy, w.belongs, OwnPrefix, o.ScanCount, uint64(8*o.Batch))
}

// proofLoop turns the reverse markers into catch-up proofs.
func (w *window) proofLoop(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, lag := !w.rescanPending(), int64(0)
		for _, lg := range w.legs {
			lg.mu.Lock()
			seen, seq, at, down := lg.seenSeq, lg.markSeq, lg.writtenAt, lg.down
			lg.mu.Unlock()
			if down || seen == 0 || lg.prod.Applied() < seq {
				ok = false
				continue
			}
			lag = max(lag, time.Since(at).Milliseconds())
		}
		w.mu.Lock()
		w.caughtUp = ok
		if ok {
			w.lagMs = lag
		}
		w.mu.Unlock()
	}
}

// drain proves that legacy holds every write the target executed before
// the call (contract 5), then applies every mark.
func (w *window) drain(ctx context.Context) error {
	seqs := make([]uint64, len(w.legs))
	ok := true
	for i, lg := range w.legs {
		s, err := lg.cap.WriteMarker(ctx, lg.marker)
		if err != nil {
			ok = false
			break
		}
		seqs[i] = s
	}
	deadline := time.Now().Add(drainMarkerWait)
	for i, lg := range w.legs {
		if !ok {
			break
		}
		for {
			lg.mu.Lock()
			seen, mark := lg.seenSeq, lg.markSeq
			lg.mu.Unlock()
			if seen >= seqs[i] {
				if err := lg.prod.Wait(ctx, mark); err != nil {
					return err
				}
				break
			}
			if time.Now().After(deadline) {
				ok = false
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	for ok && w.rescanPending() {
		if time.Now().After(deadline) {
			ok = false
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !ok {
		w.l.note(LiveRescan, w.b.name, "reverse drain: a marker did not come back in time; proving catch-up with a final reverse rescan")
		if err := w.rescan(ctx); err != nil {
			return fmt.Errorf("reverse drain of %s: %w", w.b.name, err)
		}
	}
	return w.cp.Flush(ctx)
}

// close ends the window: captures, loops, a drain of what was marked,
// the copier, the target's notifications (contract 1) and the reverse
// markers on the target.
func (w *window) close(ctx context.Context) {
	for _, lg := range w.legs {
		_ = lg.cap.Stop()
	}
	if w.cancel != nil {
		w.cancel()
	}
	w.wg.Wait()
	if w.lb.win.Load() == w {
		w.lb.win.Store(nil)
		w.l.windows.Add(-1)
	}
	if w.cp != nil {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
		_ = w.cp.Flush(fctx)
		cancel()
		_ = w.cp.Close()
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	w.restoreNotify(rctx)
	for _, m := range w.masters {
		iter := m.Scan(rctx, 0, OwnPrefix+"marker:rev-*", 1000).Iterator()
		var keys []string
		for iter.Next(rctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			m.Unlink(rctx, keys...)
		}
	}
	if w.legacySink != nil {
		w.legacySink.Close()
	}
}

// stats is the window's figures for the state.
func (w *window) stats() *state.Window {
	w.mu.Lock()
	cu, lag := w.caughtUp, w.lagMs
	w.mu.Unlock()
	s := &state.Window{Directions: "forward+reverse", Since: w.since, ReverseCopies: w.revCopies.Load(),
		Suppressed: w.supRev.Suppressed() + w.supFwd.Suppressed(), AppWrites: w.appWrites.Load(),
		ReverseGaps: w.gaps.Load(), ReverseRescans: w.rescans.Load(), ReverseCaughtUp: cu, ReverseLagMs: lag}
	if w.ql != nil {
		s.QueueDuplicates = w.ql.Stats().Duplicates
	}
	if t := w.lastApp.Load(); t > 0 {
		s.LastAppWriteAt = time.Unix(0, t).UTC()
	}
	return s
}

// enableNotify makes every master publish what change capture needs and
// returns the value set on each ("" when none was needed), recording the
// old values first (contract 1).
func (w *window) enableNotify(ctx context.Context) ([]string, error) {
	sd, name := w.l.o.State, w.b.name
	sets := make([]string, len(w.masters))
	for i, m := range w.masters {
		label := w.labels[i]
		st, err := sd.Load()
		if err != nil {
			return nil, err
		}
		var rec *state.Notify
		if sb := st.Buckets[name]; sb != nil && sb.TargetNotify != nil {
			rec = sb.TargetNotify[label]
		}
		if rec == nil {
			cur, err := m.ConfigGet(ctx, "notify-keyspace-events").Result()
			if v, ok := cur["notify-keyspace-events"]; err == nil && ok {
				rec = &state.Notify{Old: v, Known: true, At: time.Now().UTC()}
				if !dualwrite.NotifySufficient(v) {
					rec.Set = dualwrite.NotifyValue(v)
				}
				if err := w.saveNotify(label, rec); err != nil {
					return nil, err
				}
			}
		}
		ns, err := dualwrite.EnableNotifications(ctx, m, OwnPrefix)
		if err != nil {
			return nil, fmt.Errorf("target %s (%s): %w", name, label, err)
		}
		if rec == nil {
			rec = &state.Notify{Old: ns.Old, Known: ns.Known, Set: ns.Set, Probed: ns.Probed, At: time.Now().UTC()}
		} else if ns.Set != "" {
			rec.Set = ns.Set
		}
		if err := w.saveNotify(label, rec); err != nil {
			return nil, err
		}
		sets[i] = rec.Set
	}
	return sets, nil
}

func (w *window) saveNotify(label string, rec *state.Notify) error {
	return w.l.o.State.Update(func(s *state.State) error {
		sb := s.Buckets[w.b.name]
		if sb == nil {
			return nil
		}
		if sb.TargetNotify == nil {
			sb.TargetNotify = map[string]*state.Notify{}
		}
		if rec == nil {
			delete(sb.TargetNotify, label)
		} else {
			sb.TargetNotify[label] = rec
		}
		if len(sb.TargetNotify) == 0 {
			sb.TargetNotify = nil
		}
		return nil
	})
}

// restoreNotify puts every master's notify-keyspace-events back as
// recorded and clears the records (a value someone else changed since is
// left alone: the record is cleared all the same).
func (w *window) restoreNotify(ctx context.Context) {
	st, err := w.l.o.State.Load()
	if err != nil {
		return
	}
	sb := st.Buckets[w.b.name]
	if sb == nil || sb.TargetNotify == nil {
		return
	}
	for i, m := range w.masters {
		rec := sb.TargetNotify[w.labels[i]]
		if rec == nil {
			continue
		}
		err := dualwrite.RestoreNotifications(ctx, m, dualwrite.NotifySetting{Old: rec.Old, Known: rec.Known, Set: rec.Set, Probed: rec.Probed})
		if err != nil && !errors.Is(err, dualwrite.ErrNotifyChanged) {
			w.l.note(LiveGap, w.b.name, fmt.Sprintf("target %s (%s): notify-keyspace-events NOT restored (%v): set it back to %q yourself", w.b.name, w.labels[i], err, rec.Old))
			continue
		}
		_ = w.saveNotify(w.labels[i], nil)
	}
}
