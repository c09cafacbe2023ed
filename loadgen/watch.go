package loadgen

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Target is one store the mirror writes to; the watcher follows every node
// of it that takes writes. Exactly one of Addr, Cluster and Sentinels is set.
type Target struct {
	Name      string   // for reports, e.g. the bucket
	Addr      string   // a standalone server
	Cluster   []string // any nodes of a Redis Cluster: every master is followed
	Sentinels []string
	Master    string // the master name the Sentinels monitor
	Password  string
}

func (t Target) String() string {
	switch {
	case t.Addr != "":
		return t.Name + " " + t.Addr
	case len(t.Cluster) > 0:
		return t.Name + " cluster " + strings.Join(t.Cluster, ",")
	}
	return t.Name + " sentinel " + t.Master + "@" + strings.Join(t.Sentinels, ",")
}

// WatchConfig configures a Watcher.
type WatchConfig struct {
	Targets []Target
	// SetNotify sets notify-keyspace-events to "EA" on every followed node
	// (and a Sentinel target's replicas, which may be promoted) first, and
	// again after each resubscription. For test and benchmark targets: the
	// watcher needs the events; a production target should not pay them.
	SetNotify bool
	// MaxPending bounds the writes waiting to be seen (default 4,000,000);
	// beyond it, writes are counted (Report.Overflow) and not tracked.
	MaxPending int
	// Readers per target (default 2): a key is always read by the same one.
	Readers int
}

// Watcher measures, from outside the mirror, when each recorded write
// arrived on a target. It subscribes to every target node's keyevent
// channel (PSUBSCRIBE __keyevent@0__:*); on each event for a load key it
// reads the key there (readScript, one atomic read) and records the
// version found. A write is applied when a target is seen holding its
// version or a later one (see version.go): a DEL is applied when the key is
// seen absent after it was sent. Its lag is the time from the write's send
// to legacy until the read that saw it answered: an upper bound, which
// includes the watcher's own delay (Report.WatcherDelay).
//
// Writes may be recorded before or after the event that applies them is
// read: the last observation of each key is kept and checked against
// writes recorded later. Record is safe for concurrent use.
type Watcher struct {
	cfg    WatchConfig
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	targets []*watched

	mu      sync.Mutex
	keys    map[string]*tracked
	pending int
	lag     Hist
	delay   Hist
	rep     Report // counters kept as they happen

	events, reads, gaps, readErrs atomic.Int64
}

type watched struct {
	t       Target
	reader  redis.UniversalClient // routes a key to its node
	subs    []*redis.Client       // one per followed node
	readers []*reader
	closers []func() error
}

// tracked is what the watcher knows of one key.
type tracked struct {
	key       string
	pending   []pend
	has       bool // a write was recorded
	last      pend // the last write recorded
	obs       State
	obsSent   time.Time
	obsDone   time.Time
	hasObs    bool
	maxSeen   uint64
	uncertain bool
}

type pend struct {
	version uint64
	absent  bool
	op      Op
	at      time.Time
	expires time.Time
}

// Sample is one write (or key) a report points at.
type Sample struct {
	Key     string    `json:"key"`
	Op      string    `json:"op,omitempty"`
	Version uint64    `json:"version"`
	At      time.Time `json:"at,omitzero"`
	Detail  string    `json:"detail,omitempty"`
}

// Report is the watcher's verdict.
type Report struct {
	Writes  int64 `json:"writes"`  // recorded (uncertain ones apart)
	Applied int64 `json:"applied"` // seen applied by a read on an event: Lag has one value each
	// Swept were seen applied only by the final sweep (the event read missed
	// them: a gap of the watcher's own feed): applied, lag unknown.
	Swept int64 `json:"swept"`
	// Unchanged writes left the key absent on legacy with the targets
	// absent before and after them: a key created and deleted or renamed
	// away before the mirror read it. A state-copying mirror has nothing to
	// write for them and a target publishes no event; not in Lag.
	Unchanged int64 `json:"unchanged"`
	// Lost were never seen applied, also not by the final sweep.
	Lost int64 `json:"lost"`
	// ExpiredUnseen were not seen before their key expired, with a TTL under
	// ExpiryGrace: not a loss the mirror could have avoided, not in Lag.
	ExpiredUnseen int64     `json:"expired_unseen"`
	Uncertain     int64     `json:"uncertain"` // writes of keys a failed command made unknowable
	Overflow      int64     `json:"overflow"`  // writes not tracked (MaxPending)
	Lag           Quantiles `json:"lag"`
	// WatcherDelay is from an event's arrival at the watcher to the answer
	// of the read it caused: the part of Lag that is the watcher's own.
	WatcherDelay Quantiles `json:"watcher_delay"`
	// Stale keys end, after the settle, in a state other than legacy's last
	// write (an older version, or present where legacy deleted it or it
	// expired): a lost write the version check may not show, e.g. a lost
	// DEL covered by nothing later.
	Stale int64 `json:"stale"`
	// Duplicates are keys present on more than one target.
	Duplicates int64 `json:"duplicates"`
	// Regressions are reads that found an older version than one seen
	// before on a target: a mirror applying writes out of order.
	Regressions int64 `json:"regressions"`
	Events      int64 `json:"events"`
	Reads       int64 `json:"reads"`
	// FeedGaps count the watcher's own subscription breaking or being
	// renewed: events may be missing (the sweep still finds the state).
	FeedGaps    int64    `json:"feed_gaps"`
	ReadErrors  int64    `json:"read_errors"`
	LostSample  []Sample `json:"lost_sample,omitempty"`
	SweptSample []Sample `json:"swept_sample,omitempty"`
	StaleSample []Sample `json:"stale_sample,omitempty"`
	OtherSample []Sample `json:"other_sample,omitempty"` // duplicates, regressions
}

const sampleMax = 20

func addSample(s *[]Sample, x Sample) {
	if len(*s) < sampleMax {
		*s = append(*s, x)
	}
}

// Watch connects to every target, subscribes, and returns once every
// subscription is confirmed: from then on every change on a target is seen.
// ctx bounds the connecting; the watcher runs until Close.
func Watch(ctx context.Context, cfg WatchConfig) (*Watcher, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New("loadgen: Watch needs at least one target")
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 4_000_000
	}
	if cfg.Readers <= 0 {
		cfg.Readers = 2
	}
	wctx, cancel := context.WithCancel(context.Background())
	w := &Watcher{cfg: cfg, ctx: wctx, cancel: cancel, keys: map[string]*tracked{}}
	for _, t := range cfg.Targets {
		wt, err := w.connect(ctx, t)
		if err != nil {
			w.Close()
			return nil, err
		}
		w.targets = append(w.targets, wt)
	}
	for _, wt := range w.targets {
		for _, c := range wt.subs {
			ps, err := w.subscribe(ctx, wt, c)
			if err != nil {
				w.Close()
				return nil, err
			}
			w.wg.Add(1)
			go func() { defer w.wg.Done(); w.follow(wt, c, ps) }()
		}
		for _, r := range wt.readers {
			w.wg.Add(1)
			go func() { defer w.wg.Done(); w.read(wt, r) }()
		}
	}
	return w, nil
}

func (w *Watcher) connect(ctx context.Context, t Target) (*watched, error) {
	wt := &watched{t: t}
	opt := func(addr string) *redis.Options {
		return &redis.Options{Addr: addr, Password: t.Password, DisableIdentity: true, MaxRetries: 2}
	}
	switch {
	case t.Addr != "":
		c := redis.NewClient(opt(t.Addr))
		wt.reader, wt.subs = c, []*redis.Client{c}
		wt.closers = append(wt.closers, c.Close)
	case len(t.Cluster) > 0:
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: t.Cluster, Password: t.Password, DisableIdentity: true})
		wt.reader = cc
		wt.closers = append(wt.closers, cc.Close)
		var mu sync.Mutex
		var masters []string
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			masters = append(masters, c.Options().Addr)
			return nil
		})
		if err != nil {
			cc.Close()
			return nil, fmt.Errorf("loadgen: target %s: listing masters: %w", t, err)
		}
		sort.Strings(masters)
		for _, a := range masters {
			c := redis.NewClient(opt(a))
			wt.subs = append(wt.subs, c)
			wt.closers = append(wt.closers, c.Close)
		}
	case len(t.Sentinels) > 0:
		fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: t.Master, SentinelAddrs: t.Sentinels,
			Password: t.Password, DisableIdentity: true, MaxRetries: 2})
		wt.reader, wt.subs = fc, []*redis.Client{fc}
		wt.closers = append(wt.closers, fc.Close)
		if w.cfg.SetNotify { // the replicas too: one may be promoted
			sc := redis.NewSentinelClient(&redis.Options{Addr: t.Sentinels[0], DisableIdentity: true})
			reps, err := sc.Replicas(ctx, t.Master).Result()
			sc.Close()
			if err != nil {
				fc.Close()
				return nil, fmt.Errorf("loadgen: target %s: SENTINEL REPLICAS: %w", t, err)
			}
			for _, r := range reps {
				c := redis.NewClient(opt(net.JoinHostPort(r["ip"], r["port"])))
				err := c.ConfigSet(ctx, "notify-keyspace-events", "EA").Err()
				c.Close()
				if err != nil {
					fc.Close()
					return nil, fmt.Errorf("loadgen: target %s: replica %s:%s: CONFIG SET notify-keyspace-events: %w", t, r["ip"], r["port"], err)
				}
			}
		}
	default:
		return nil, fmt.Errorf("loadgen: target %q has no address", t.Name)
	}
	for i := 0; i < w.cfg.Readers; i++ {
		wt.readers = append(wt.readers, &reader{queued: map[string]time.Time{}, wake: make(chan struct{}, 1)})
	}
	return wt, nil
}

const eventPattern = "__keyevent@0__:*"

func (w *Watcher) subscribe(ctx context.Context, wt *watched, c *redis.Client) (*redis.PubSub, error) {
	if w.cfg.SetNotify {
		if err := c.ConfigSet(ctx, "notify-keyspace-events", "EA").Err(); err != nil {
			return nil, fmt.Errorf("loadgen: target %s (%s): CONFIG SET notify-keyspace-events EA: %w", wt.t, c.Options().Addr, err)
		}
	}
	ps := c.PSubscribe(ctx, eventPattern)
	if _, err := ps.Receive(ctx); err != nil { // the confirmation
		ps.Close()
		return nil, fmt.Errorf("loadgen: target %s (%s): PSUBSCRIBE %s: %w", wt.t, c.Options().Addr, eventPattern, err)
	}
	wt.closers = append(wt.closers, ps.Close)
	return ps, nil
}

// follow reads one node's events and queues their keys for reading.
func (w *Watcher) follow(wt *watched, c *redis.Client, ps *redis.PubSub) {
	ctx := w.ctx
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, 2*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				_ = ps.Ping(ctx) // a dead connection fails the next receive
				continue
			}
			w.gaps.Add(1)
			sleep(ctx, 50*time.Millisecond) // the next receive reconnects and resubscribes
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription: // a resubscription after a reconnect
			w.gaps.Add(1)
			if w.cfg.SetNotify {
				_ = c.ConfigSet(ctx, "notify-keyspace-events", "EA").Err()
			}
		case *redis.Message:
			if FamilyOf(m.Payload) == nil {
				continue
			}
			w.events.Add(1)
			h := fnv.New32a()
			h.Write([]byte(m.Payload))
			wt.readers[int(h.Sum32()%uint32(len(wt.readers)))].add(m.Payload, time.Now())
		}
	}
}

// reader coalesces the keys waiting to be read: a key with an event while
// queued is read once; one with an event while being read is read again.
type reader struct {
	mu     sync.Mutex
	queued map[string]time.Time // key → its first event since queued
	wake   chan struct{}
}

func (r *reader) add(k string, at time.Time) {
	r.mu.Lock()
	if _, ok := r.queued[k]; !ok {
		r.queued[k] = at
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

const readBatch = 256

func (w *Watcher) read(wt *watched, r *reader) {
	ctx := w.ctx
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		r.mu.Lock()
		q := r.queued
		r.queued = map[string]time.Time{}
		r.mu.Unlock()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		for i := 0; i < len(keys); i += readBatch {
			batch := keys[i:min(i+readBatch, len(keys))]
			sent := time.Now()
			states, errs, err := ReadStates(ctx, wt.reader, batch)
			done := time.Now()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				w.readErrs.Add(1)
				for _, k := range batch { // read them again
					r.add(k, q[k])
				}
				sleep(ctx, 50*time.Millisecond)
				continue
			}
			w.reads.Add(int64(len(batch)))
			w.observe(batch, states, errs, sent, done, q, false)
		}
	}
}

// observe applies reads of keys (errs[i] != nil: key i was not read).
func (w *Watcher) observe(keys []string, states []State, errs []error, sent, done time.Time, firstEvent map[string]time.Time, swept bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, k := range keys {
		if errs != nil && errs[i] != nil {
			w.readErrs.Add(1)
			continue
		}
		if t, ok := firstEvent[k]; ok {
			w.delay.Add(done.Sub(t))
		}
		tr := w.track(k)
		st := states[i]
		if st.Present {
			if st.Version < tr.maxSeen {
				w.rep.Regressions++
				addSample(&w.rep.OtherSample, Sample{Key: k, Version: st.Version, Detail: fmt.Sprintf("regression: read version %d after %d", st.Version, tr.maxSeen)})
			}
			tr.maxSeen = max(tr.maxSeen, st.Version)
		}
		wasAbsent := tr.absentSeen()
		if !tr.hasObs || !done.Before(tr.obsDone) {
			tr.obs, tr.obsSent, tr.obsDone, tr.hasObs = st, sent, done, true
		}
		w.cover(tr, st, sent, done, swept, swept && wasAbsent && !st.Present)
	}
}

// absentSeen: no target was seen holding the key at the last read (or it
// was never read).
func (tr *tracked) absentSeen() bool { return !tr.hasObs || !tr.obs.Present }

// cover resolves the pending writes of tr that state st, read between sent
// and done, shows applied. swept: the read is the final sweep's;
// unchanged: the targets had the key absent before those writes and have
// it absent after, so there was nothing to apply.
func (w *Watcher) cover(tr *tracked, st State, sent, done time.Time, swept, unchanged bool) {
	n := 0
	if st.Present {
		for _, p := range tr.pending {
			if (p.absent && p.version < st.Version) || (!p.absent && p.version <= st.Version) {
				n++
				continue
			}
			break
		}
	} else {
		for i, p := range tr.pending {
			if p.absent && !p.at.After(sent) {
				n = i + 1
			}
		}
	}
	if n == 0 {
		return
	}
	for _, p := range tr.pending[:n] {
		switch {
		case unchanged:
			w.rep.Unchanged++
		case swept:
			w.rep.Swept++
			detail := "no read on an event saw the key"
			if tr.hasObs {
				detail = fmt.Sprintf("the last read on an event found %s", describe(tr.obs))
			}
			addSample(&w.rep.SweptSample, Sample{Key: tr.key, Op: p.op.String(), Version: p.version, At: p.at,
				Detail: fmt.Sprintf("%s; the sweep found %s", detail, describe(st))})
		default:
			w.rep.Applied++
			w.lag.Add(done.Sub(p.at))
		}
	}
	w.pending -= n
	if n == len(tr.pending) {
		tr.pending = nil
	} else {
		tr.pending = append([]pend(nil), tr.pending[n:]...)
	}
}

func (w *Watcher) track(k string) *tracked {
	tr := w.keys[k]
	if tr == nil {
		tr = &tracked{key: k}
		w.keys[k] = tr
	}
	return tr
}

func describe(s State) string {
	if !s.Present {
		return "it absent"
	}
	return fmt.Sprintf("version %d", s.Version)
}

// Record implements Recorder.
func (w *Watcher) Record(ws []Write) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, wr := range ws {
		tr := w.track(wr.Key)
		if tr.uncertain {
			continue
		}
		if wr.Uncertain {
			tr.uncertain = true
			w.rep.Uncertain += int64(len(tr.pending)) + 1
			w.pending -= len(tr.pending)
			tr.pending = nil
			continue
		}
		w.rep.Writes++
		p := pend{version: wr.Version, absent: wr.Absent, op: wr.Op, at: wr.At, expires: wr.Expires}
		tr.has, tr.last = true, p
		if w.pending >= w.cfg.MaxPending {
			w.rep.Overflow++
			continue
		}
		tr.pending = append(tr.pending, p)
		w.pending++
		if tr.hasObs {
			w.cover(tr, tr.obs, tr.obsSent, tr.obsDone, false, false)
		}
	}
}

// Pending returns the writes not yet seen applied, leaving out those that
// no event can show: of keys that have expired, and of keys whose last
// write left them absent while the targets were last seen without them
// (see Report.Unchanged). It is the load's backlog as seen from outside.
func (w *Watcher) Pending() int {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, tr := range w.keys {
		if len(tr.pending) > 0 && !expired(tr.last, now) && !(tr.last.absent && tr.absentSeen()) {
			n += len(tr.pending)
		}
	}
	return n
}

// expiredMargin covers the distance between a write's send (where
// Expires is counted from) and legacy's deadline.
const expiredMargin = 500 * time.Millisecond

func expired(last pend, now time.Time) bool {
	return !last.expires.IsZero() && now.After(last.expires.Add(expiredMargin))
}

// Settle waits, for at most d, until every write recorded is seen applied
// or its key has expired, then reads every key it tracks on every target
// (the final sweep) and returns the verdict. Stop the load first.
func (w *Watcher) Settle(ctx context.Context, d time.Duration) (Report, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil && w.Pending() > 0 {
		sleep(ctx, 20*time.Millisecond)
	}
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	if err := w.sweep(ctx); err != nil {
		return Report{}, err
	}
	return w.verdict(), nil
}

// sweep reads every tracked key on every target and applies what it finds.
func (w *Watcher) sweep(ctx context.Context) error {
	w.mu.Lock()
	var keys []string
	for k, tr := range w.keys {
		if tr.has && !tr.uncertain {
			keys = append(keys, k)
		}
	}
	w.mu.Unlock()
	sort.Strings(keys)
	const batch = 500
	for i := 0; i < len(keys); i += batch {
		ks := keys[i:min(i+batch, len(keys))]
		best := make([]State, len(ks))
		where := make([][]string, len(ks))
		sent := time.Now()
		for _, wt := range w.targets {
			states, errs, err := ReadStates(ctx, wt.reader, ks)
			if err != nil {
				return fmt.Errorf("loadgen: final sweep of %s: %w", wt.t, err)
			}
			for j, st := range states {
				if errs != nil && errs[j] != nil {
					return fmt.Errorf("loadgen: final sweep of %s: %w", wt.t, errs[j])
				}
				if st.Present {
					where[j] = append(where[j], wt.t.Name)
					if !best[j].Present || st.Version > best[j].Version {
						best[j] = st
					}
				}
			}
		}
		done := time.Now()
		w.observe(ks, best, nil, sent, done, nil, true)
		w.mu.Lock()
		for j, k := range ks {
			if len(where[j]) > 1 {
				w.rep.Duplicates++
				addSample(&w.rep.OtherSample, Sample{Key: k, Version: best[j].Version, Detail: "present on " + strings.Join(where[j], " and ")})
			}
			w.finalCheck(k, w.keys[k], best[j], done)
		}
		w.mu.Unlock()
	}
	return nil
}

// finalCheck compares a key's state on the targets after the settle with
// legacy's last write.
func (w *Watcher) finalCheck(k string, tr *tracked, st State, now time.Time) {
	last := tr.last
	switch {
	case last.absent || expired(last, now):
		if st.Present {
			why := "deleted"
			if !last.absent {
				why = "expired"
			}
			w.rep.Stale++
			addSample(&w.rep.StaleSample, Sample{Key: k, Op: last.op.String(), Version: st.Version, At: last.at,
				Detail: fmt.Sprintf("a target holds version %d; on legacy the key was %s", st.Version, why)})
		}
	case !last.expires.IsZero() && now.Before(last.expires.Add(expiredMargin)) && !now.Before(last.expires.Add(-expiredMargin)):
		// expiring right now: undecidable
	case !st.Present || st.Version != last.version:
		w.rep.Stale++
		found := "absent"
		if st.Present {
			found = fmt.Sprintf("version %d", st.Version)
		}
		addSample(&w.rep.StaleSample, Sample{Key: k, Op: last.op.String(), Version: last.version, At: last.at,
			Detail: fmt.Sprintf("targets hold %s; legacy's last write made version %d", found, last.version)})
	}
}

// verdict classifies what is still pending and returns the report.
func (w *Watcher) verdict() Report {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	rep := w.rep
	rep.LostSample = append([]Sample(nil), w.rep.LostSample...)
	lag := w.lag // a copy: verdict may run again
	var lost []Sample
	for k, tr := range w.keys {
		for _, p := range tr.pending {
			if expired(tr.last, now) {
				rep.ExpiredUnseen++
				lag.Add(tr.last.expires.Sub(p.at))
				continue
			}
			rep.Lost++
			lost = append(lost, Sample{Key: k, Op: p.op.String(), Version: p.version, At: p.at})
		}
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i].At.Before(lost[j].At) })
	for _, s := range lost {
		addSample(&rep.LostSample, s)
	}
	rep.Lag = lag.Summary()
	rep.WatcherDelay = w.delay.Summary()
	rep.Events, rep.Reads, rep.FeedGaps, rep.ReadErrors = w.events.Load(), w.reads.Load(), w.gaps.Load(), w.readErrs.Load()
	return rep
}

// Close stops the watcher.
func (w *Watcher) Close() error {
	w.cancel()
	for _, wt := range w.targets {
		for i := len(wt.closers) - 1; i >= 0; i-- {
			_ = wt.closers[i]()
		}
	}
	w.wg.Wait()
	return nil
}

// String is a one-paragraph summary of the report.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d writes: %d applied (lag %s), %d seen only by the final sweep, %d with nothing to apply, %d lost, %d expired unseen",
		r.Writes, r.Applied, r.Lag, r.Swept, r.Unchanged, r.Lost, r.ExpiredUnseen)
	if r.Uncertain+r.Overflow > 0 {
		fmt.Fprintf(&b, ", %d uncertain, %d untracked", r.Uncertain, r.Overflow)
	}
	fmt.Fprintf(&b, "; final state: %d stale keys, %d on two targets, %d regressions; watcher: %d events, %d reads, delay %s, %d feed gaps, %d read errors",
		r.Stale, r.Duplicates, r.Regressions, r.Events, r.Reads, r.WatcherDelay, r.FeedGaps, r.ReadErrors)
	for _, s := range r.LostSample {
		fmt.Fprintf(&b, "\n  lost: %s %s version %d at %s", s.Key, s.Op, s.Version, s.At.Format("15:04:05.000"))
	}
	for _, s := range r.StaleSample {
		fmt.Fprintf(&b, "\n  stale: %s: %s", s.Key, s.Detail)
	}
	for _, s := range r.SweptSample {
		fmt.Fprintf(&b, "\n  only by the sweep: %s %s version %d: %s", s.Key, s.Op, s.Version, s.Detail)
	}
	for _, s := range r.OtherSample {
		fmt.Fprintf(&b, "\n  %s: %s", s.Key, s.Detail)
	}
	return b.String()
}
