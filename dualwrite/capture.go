// Package dualwrite is the live phase of a migration. This part is change
// capture: it follows legacy's keyspace notifications and turns them into
// dirty marks (key names, never values) for the copier, detects and reports
// every gap in that feed, and proves catch-up with marker keys.
//
// Engine package: it never prints; it returns values and errors, and
// diagnostics go to log/slog at debug level.
package dualwrite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
)

// Change capture. Guarantees and ordering contracts:
//
//  1. Start returns only once legacy has confirmed the subscription
//     (PSUBSCRIBE __keyevent@<db>__:* for every followed database). Every
//     write legacy executes after Start returns is delivered as a Mark or
//     lies within a Gap delivered later: start the backfill SCAN after
//     Start, never before.
//  2. Events reach the sink in the order legacy published them, from one
//     goroutine at a time (the sink is never called concurrently). The sink
//     may block: that is backpressure, nothing is queued in between (the
//     events wait in the socket and in legacy's output buffer for the
//     connection; if legacy drops the connection for it,
//     client-output-buffer-limit pubsub, that is a GapDropped).
//  3. An event naming two keys arrives as two messages, each naming one
//     (rename_from/rename_to, move_from/move_to; copy_to names the
//     destination, the source is unchanged): both are delivered, in order.
//  4. Events for keys under OwnPrefix are redisplit's own (lease, markers,
//     probes) and never delivered as Marks; keymiss events (flag m) are not
//     changes and are dropped. Evictions are delivered as Marks (Event
//     "evicted") and counted per key (Evictions).
//  5. Gaps: see gap.go. A Gap is delivered after the feed is whole again and
//     before any event read after that; a caller that starts its rescan when
//     it receives a Gap misses nothing. After a dropped connection the
//     Capture resubscribes by itself, with back-off, and the Gap covers the
//     time it was down.
//  6. Markers: see marker.go. Every Mark for a write legacy executed before
//     a marker's SET is delivered before that marker's KindMarker event.
//  7. When the Capture ends (Stop, its context, a sink error, a permission
//     taken away) the feed ends with it: whatever legacy changes afterwards
//     is a gap the caller must treat as such (as after kill -9, a rerun
//     rescans).

// Kind is the kind of an Event.
type Kind uint8

const (
	// KindMark: a key may have changed; Mark is set.
	KindMark Kind = iota + 1
	// KindMarker: a marker came back through the feed; Marker is set.
	KindMarker
	// KindDown: the feed stopped being whole (Gap.At is zero). A KindGap
	// follows once it is whole again; do not start the rescan before it.
	KindDown
	// KindGap: events may have been lost in [Gap.Since, Gap.At]; rescan the
	// affected buckets now. Gap is set.
	KindGap
)

func (k Kind) String() string {
	switch k {
	case KindMark:
		return "mark"
	case KindMarker:
		return "marker"
	case KindDown:
		return "down"
	case KindGap:
		return "gap"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Mark is a dirty mark: key may have changed on legacy (written, deleted,
// expired, evicted, renamed from or to). It carries no value: the copier
// reads the key's current state.
type Mark struct {
	DB    int
	Key   string
	Event string    // the keyevent: set, del, rename_from, expired, evicted, ...
	At    time.Time // when it was read from the feed
}

// Event is one item of the feed.
type Event struct {
	Kind   Kind
	Mark   Mark        // KindMark
	Marker *MarkerSeen // KindMarker
	Gap    *Gap        // KindDown, KindGap
}

// Sink receives the feed. It is called from one goroutine at a time, in
// feed order; it may block (backpressure) and must return when ctx is done.
// An error ends the Capture with that error. It must not call Stop.
type Sink func(ctx context.Context, e Event) error

// ChanSink returns a Sink that sends every event to ch, blocking while ch
// is full: the channel's capacity is the only buffer between the feed and
// its consumer.
func ChanSink(ch chan<- Event) Sink {
	return func(ctx context.Context, e Event) error {
		select {
		case ch <- e:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Config of a Capture. Zero durations take the defaults.
type Config struct {
	// OwnPrefix is the namespace of redisplit's own keys (migrate.OwnPrefix,
	// "redisplit:"). Required. Markers are written under OwnPrefix+"marker:".
	OwnPrefix string
	// DBs are legacy's databases to follow; default: the client's. The
	// client's database must be among them (markers are written there).
	DBs []int
	// Markers are the names of the markers written every MarkerEvery (e.g.
	// one per bucket); default: one named "feed". At least one is written:
	// it is the feed's heartbeat.
	Markers []string
	// MarkerEvery is the markers' period (default 1 s).
	MarkerEvery time.Duration
	// MarkerDeadline: a marker not seen this long after its write is a gap
	// (default 5 s). Markers expire on legacy after twice this.
	MarkerDeadline time.Duration
	// PollEvery is the period of the INFO and CONFIG GET polls (default 1 s).
	PollEvery time.Duration
	// Idle: when the subscription has received nothing for this long it is
	// PINGed, and after three times this without anything it is closed and
	// resubscribed (a GapDropped). Default 3 s.
	Idle time.Duration
	// MaxBackoff caps the wait between resubscription attempts (they start
	// at 100 ms and double). Default 5 s.
	MaxBackoff time.Duration
	// Notify, when set (NotifySetting.Set), is set again with CONFIG SET when
	// a poll finds notify-keyspace-events insufficient: a restart forgets
	// values set with CONFIG SET. The gap is reported all the same.
	Notify string
	// MaxEvictedKeys bounds the keys Evictions counts one by one (default
	// 10000); evictions of further keys are counted together.
	MaxEvictedKeys int
}

func (cfg *Config) defaults(clientDB int) error {
	if cfg.OwnPrefix == "" {
		return errors.New("dualwrite: Config.OwnPrefix is required")
	}
	if len(cfg.DBs) == 0 {
		cfg.DBs = []int{clientDB}
	}
	if !slices.Contains(cfg.DBs, clientDB) {
		return fmt.Errorf("dualwrite: the client's database %d is not among the followed ones %v", clientDB, cfg.DBs)
	}
	if len(cfg.Markers) == 0 {
		cfg.Markers = []string{"feed"}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.MarkerEvery, time.Second)
	def(&cfg.MarkerDeadline, 5*time.Second)
	def(&cfg.PollEvery, time.Second)
	def(&cfg.Idle, 3*time.Second)
	def(&cfg.MaxBackoff, 5*time.Second)
	if cfg.MaxEvictedKeys <= 0 {
		cfg.MaxEvictedKeys = 10000
	}
	return nil
}

// Capture follows legacy's keyspace notifications; see the package's
// contracts above. Start one with Start.
type Capture struct {
	cfg          Config
	legacy       *redis.Client
	addr         string
	sink         Sink
	patterns     []string
	markerPrefix string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{}
	errMu  sync.Mutex
	err    error

	sinkMu    sync.Mutex   // one sink call at a time, gaps before what follows them
	sinkTotal atomic.Int64 // ns the reader spent not reading the socket (in handle)
	sinkSince atomic.Int64 // unix ns since the reader is in handle, 0 when reading

	psMu        sync.Mutex
	ps          *redis.PubSub
	closeReason atomic.Pointer[string] // why the watchdog (or the poller) closed ps
	replaced    atomic.Bool            // a poll saw another run_id: resubscribe (gap.go)
	waitSince   atomic.Int64           // unix ns since the reader waits in Receive, 0 otherwise
	lastRecv    atomic.Int64           // unix ns of the last message read

	gaps    *gapTracker
	markers *markerTable

	pollMu         sync.Mutex
	notifyPollable bool      // CONFIG GET allowed; under pollMu
	notifyOKAt     time.Time // the last CONFIG GET that found notifications sufficient; under pollMu

	factsMu       sync.Mutex
	facts         facts
	lastPoll      time.Time
	ownConfigSets int64 // CONFIG SETs of our own since the last poll

	stats captureStats

	evMu         sync.Mutex
	evicted      map[string]int64
	evictedOther int64
}

// Start subscribes to legacy's keyevent notifications and returns once the
// subscription is confirmed; then it runs until ctx ends or Stop. The client
// must speak RESP2 (redisconn.Protocol). Before subscribing it reads the
// baseline of the gap checks (INFO) and, where CONFIG GET is allowed,
// refuses to start when notify-keyspace-events is insufficient (call
// EnableNotifications first). Errors name legacy and say what to do.
func Start(ctx context.Context, legacy *redis.Client, cfg Config, sink Sink) (*Capture, error) {
	opt := legacy.Options()
	if err := cfg.defaults(opt.DB); err != nil {
		return nil, err
	}
	c := &Capture{
		cfg: cfg, legacy: legacy, addr: opt.Addr, sink: sink,
		markerPrefix: cfg.OwnPrefix + "marker:",
		done:         make(chan struct{}),
		gaps:         newGapTracker(),
		markers:      newMarkerTable(),
		evicted:      map[string]int64{},
	}
	for _, db := range cfg.DBs {
		c.patterns = append(c.patterns, fmt.Sprintf("__keyevent@%d__:*", db))
	}
	f, err := readFacts(ctx, legacy)
	if err != nil {
		return nil, c.explainLegacy(err)
	}
	if f.loading {
		return nil, fmt.Errorf("legacy %s is loading its dataset (LOADING); wait until it has loaded and rerun", c.addr)
	}
	c.facts, c.lastPoll = f, time.Now()
	v, err := configGetNotify(ctx, legacy)
	switch {
	case err == nil && !NotifySufficient(v):
		return nil, fmt.Errorf("legacy %s: notify-keyspace-events is %q, without E or a class change capture needs: call EnableNotifications before Start", c.addr, v)
	case err == nil:
		c.notifyPollable, c.notifyOKAt = true, time.Now()
	case !configRefused(err):
		return nil, c.explainLegacy(err)
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	ps, early, err := c.subscribe(c.ctx)
	if err != nil {
		c.cancel()
		if redisconn.Classify(err) == redisconn.NoPerm {
			return nil, fmt.Errorf("%w; change capture needs +psubscribe and these channel patterns, literally (ACL matches a PSUBSCRIBE pattern as a string): %s",
				c.explainLegacy(err), aclChannels(c.patterns))
		}
		return nil, c.explainLegacy(err)
	}
	context.AfterFunc(c.ctx, c.closePS) // a blocked Receive ignores its context
	c.stats.subscribed.Store(time.Now().UnixNano())
	c.lastRecv.Store(time.Now().UnixNano())
	c.wg.Add(4)
	go func() { defer c.wg.Done(); c.read(ps, early) }()
	go func() { defer c.wg.Done(); c.pollLoop(c.ctx) }()
	go func() { defer c.wg.Done(); c.markerLoop(c.ctx) }()
	go func() { defer c.wg.Done(); c.watchdog(c.ctx) }()
	go func() { c.wg.Wait(); close(c.done) }()
	return c, nil
}

// Stop ends the Capture and waits for it: no sink call happens after it
// returns. It returns the error that ended the Capture early, if any.
// Idempotent.
func (c *Capture) Stop() error {
	c.cancel()
	c.closePS()
	<-c.done
	return c.Err()
}

// Done is closed when the Capture has ended (Stop, its context, an error).
func (c *Capture) Done() <-chan struct{} { return c.done }

// Err is the error that ended the Capture early (a sink error, a permission
// taken away); nil while it runs and after a plain Stop.
func (c *Capture) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

func (c *Capture) fail(err error) {
	if err == nil || c.ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return
	}
	c.errMu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.errMu.Unlock()
	c.cancel()
	c.closePS()
}

func (c *Capture) setPS(ps *redis.PubSub) {
	c.psMu.Lock()
	c.ps = ps
	c.psMu.Unlock()
	if c.ctx.Err() != nil { // Stop raced with a resubscription
		ps.Close()
	}
}

func (c *Capture) closePS() {
	c.psMu.Lock()
	defer c.psMu.Unlock()
	if c.ps != nil {
		_ = c.ps.Close()
	}
}

// subscribe opens a new subscription and waits for its confirmations;
// messages that arrive before the last one are returned to be handled first.
func (c *Capture) subscribe(ctx context.Context) (*redis.PubSub, []*redis.Message, error) {
	ps := c.legacy.PSubscribe(ctx, c.patterns...)
	c.setPS(ps) // so that Stop interrupts the wait below
	var early []*redis.Message
	for n := 0; n < len(c.patterns); {
		msg, err := ps.ReceiveTimeout(ctx, 5*time.Second)
		if err != nil {
			ps.Close()
			return nil, nil, err
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "psubscribe" {
				n++
			}
		case *redis.Message:
			early = append(early, m)
		}
	}
	return ps, early, nil
}

// read is the reader goroutine: it owns the subscription.
func (c *Capture) read(ps *redis.PubSub, early []*redis.Message) {
	t := time.Now()
	for {
		for _, m := range early {
			if t = c.handleTimed(m, time.Now()); c.ctx.Err() != nil {
				return
			}
		}
		early = nil
		c.waitSince.Store(t.UnixNano())
		msg, err := ps.Receive(c.ctx)
		t = time.Now()
		c.waitSince.Store(0)
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			if ps, early = c.resubscribe(ps, err); ps == nil {
				return
			}
			t = time.Now()
			continue
		}
		c.lastRecv.Store(t.UnixNano())
		if m, ok := msg.(*redis.Message); ok {
			if t = c.handleTimed(m, t); c.ctx.Err() != nil {
				return
			}
		}
	}
}

// handleTimed handles m, read at start, and accounts the time as not
// reading the socket; it returns the time it ended. An error ends the
// Capture.
func (c *Capture) handleTimed(m *redis.Message, start time.Time) time.Time {
	c.sinkSince.Store(start.UnixNano())
	err := c.handle(m, start)
	end := time.Now()
	c.sinkTotal.Add(int64(end.Sub(start)))
	c.sinkSince.Store(0)
	if err != nil {
		c.fail(err)
	}
	return end
}

// sinkBlocked is the time the reader has spent not reading the socket.
func (c *Capture) sinkBlocked(now time.Time) int64 {
	t := c.sinkTotal.Load()
	if s := c.sinkSince.Load(); s != 0 {
		t += now.UnixNano() - s
	}
	return t
}

func (c *Capture) handle(m *redis.Message, now time.Time) error {
	db, event, ok := parseChannel(m.Channel)
	if !ok {
		return nil
	}
	key := m.Payload
	if strings.HasPrefix(key, c.cfg.OwnPrefix) {
		c.stats.own.Add(1)
		if event == "set" && strings.HasPrefix(key, c.markerPrefix) {
			return c.markerEvent(key[len(c.markerPrefix):], now)
		}
		return nil
	}
	switch event {
	case "keymiss":
		return nil
	case "evicted":
		c.countEviction(key)
	}
	c.stats.marks.Add(1)
	return c.emit(Event{Kind: KindMark, Mark: Mark{DB: db, Key: key, Event: event, At: now}})
}

// parseChannel splits "__keyevent@<db>__:<event>".
func parseChannel(ch string) (int, string, bool) {
	rest, ok := strings.CutPrefix(ch, "__keyevent@")
	if !ok {
		return 0, "", false
	}
	dbs, event, ok := strings.Cut(rest, "__:")
	if !ok {
		return 0, "", false
	}
	db, err := strconv.Atoi(dbs)
	if err != nil {
		return 0, "", false
	}
	return db, event, true
}

// emit delivers e after any gap that is ready.
func (c *Capture) emit(e Event) error {
	c.sinkMu.Lock()
	defer c.sinkMu.Unlock()
	if err := c.flushGapsLocked(); err != nil {
		return err
	}
	return c.sinkLocked(e)
}

// emitOther delivers e (a KindDown) without flushing gaps.
func (c *Capture) emitOther(e Event) error {
	c.sinkMu.Lock()
	defer c.sinkMu.Unlock()
	return c.sinkLocked(e)
}

func (c *Capture) sinkLocked(e Event) error { return c.sink(c.ctx, e) }

// resubscribe handles a broken subscription: it opens the GapDropped
// condition, subscribes again with back-off, checks legacy (restart,
// loading, notifications), clears the condition and delivers the gaps that
// are ready, all before the new subscription's first event is read.
// It returns nil when the Capture ends meanwhile.
func (c *Capture) resubscribe(old *redis.PubSub, cause error) (*redis.PubSub, []*redis.Message) {
	_ = old.Close()
	reason := cause.Error()
	if r := c.closeReason.Swap(nil); r != nil {
		reason = *r
	}
	since := time.Unix(0, c.lastRecv.Load())
	c.stats.drops.Add(1)
	slog.Debug("change feed dropped", "legacy", c.addr, "err", reason)
	c.openGap(Gap{Cause: GapDropped, Since: since,
		Reason: fmt.Sprintf("the change feed's connection to legacy %s broke (%s): CLIENT KILL, client-output-buffer-limit pubsub after a slow consumer, a restart or the network; events published meanwhile are lost", c.addr, reason)})
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-c.ctx.Done():
			return nil, nil
		case <-time.After(backoff):
		}
		ps, early, err := c.subscribe(c.ctx)
		if err == nil {
			c.stats.resubscribes.Add(1)
			c.lastRecv.Store(time.Now().UnixNano())
			c.afterResubscribe(c.ctx)
			c.gaps.cleared(GapDropped)
			if err := c.flushGaps(); err != nil {
				c.fail(err)
				return nil, nil
			}
			return ps, early
		}
		if c.ctx.Err() != nil {
			return nil, nil
		}
		if e := c.explainLegacy(err); isPermanent(e) {
			c.fail(fmt.Errorf("change capture: resubscribing: %w", e))
			return nil, nil
		}
		slog.Debug("change feed: resubscribe failed", "legacy", c.addr, "err", err, "retry_in", backoff)
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

func aclChannels(patterns []string) string {
	out := make([]string, len(patterns))
	for i, p := range patterns {
		out[i] = "&" + p
	}
	return strings.Join(out, " ")
}

// isPermanent: retrying cannot help (a permission or the password changed).
func isPermanent(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "NOPERM") || strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "NOAUTH")
}

// watchdog PINGs a silent subscription and closes it when even the PING
// gets no answer: a half-open connection would otherwise hide a gap.
func (c *Capture) watchdog(ctx context.Context) {
	t := time.NewTicker(c.cfg.Idle)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ws := c.waitSince.Load()
		if ws == 0 {
			continue // the reader is busy (or blocked in the sink): not silent
		}
		last := max(ws, c.lastRecv.Load())
		idle := time.Since(time.Unix(0, last))
		c.psMu.Lock()
		ps := c.ps
		c.psMu.Unlock()
		switch {
		case idle > 3*c.cfg.Idle:
			r := fmt.Sprintf("no message and no answer to PING for %s", idle.Round(time.Millisecond))
			c.closeReason.Store(&r)
			_ = ps.Close()
		case idle > c.cfg.Idle:
			_ = ps.Ping(ctx)
		}
	}
}

func (c *Capture) countEviction(key string) {
	c.stats.evicted.Add(1)
	c.evMu.Lock()
	defer c.evMu.Unlock()
	if _, ok := c.evicted[key]; ok || len(c.evicted) < c.cfg.MaxEvictedKeys {
		c.evicted[key]++
		return
	}
	c.evictedOther++
}

// Evictions returns how many times each key was evicted by legacy since
// Start (up to MaxEvictedKeys keys), and the evictions of further keys. The
// caller classifies them: a session, queue or rate-limit key evicted during
// the run means legacy is still losing what must not be lost.
func (c *Capture) Evictions() (perKey map[string]int64, others int64) {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	out := make(map[string]int64, len(c.evicted))
	for k, v := range c.evicted {
		out[k] = v
	}
	return out, c.evictedOther
}

// Stats is a snapshot of a Capture's counters.
type Stats struct {
	Marks        int64      // Marks delivered (or being delivered)
	Markers      int64      // KindMarker events delivered
	MarkersHeld  int64      // markers seen while the feed was not whole (not delivered)
	Gaps         int64      // Gaps delivered
	Drops        int64      // subscription connections that broke
	Resubscribes int64      // successful resubscriptions
	Evicted      int64      // evicted events
	Own          int64      // events for redisplit's own keys
	PollErrors   int64      // INFO polls that failed
	NotifyResets int64      // times Config.Notify was set again
	Subscribed   time.Time  // when Start's subscription was confirmed
	LastMarker   MarkerSeen // the last marker seen (zero before the first)
	MarkerErr    string     // the last marker write's error, "" once one succeeds
	Open         []Gap      // conditions open now: the feed is not whole
}

type captureStats struct {
	marks, markers, markersHeld, gaps, drops, resubscribes, evicted, own, pollErrors, notifyResets atomic.Int64
	subscribed                                                                                     atomic.Int64

	mu         sync.Mutex
	lastMarker MarkerSeen
	markerErr  string
}

func (s *captureStats) setLastMarker(m MarkerSeen) {
	s.mu.Lock()
	s.lastMarker = m
	s.mu.Unlock()
}

func (s *captureStats) setMarkerErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.markerErr = ""
		return
	}
	s.markerErr = err.Error()
}

// Stats returns a snapshot; safe for concurrent use.
func (c *Capture) Stats() Stats {
	s := &c.stats
	s.mu.Lock()
	lm, me := s.lastMarker, s.markerErr
	s.mu.Unlock()
	return Stats{
		Marks: s.marks.Load(), Markers: s.markers.Load(), MarkersHeld: s.markersHeld.Load(), Gaps: s.gaps.Load(),
		Drops: s.drops.Load(), Resubscribes: s.resubscribes.Load(), Evicted: s.evicted.Load(), Own: s.own.Load(),
		PollErrors: s.pollErrors.Load(), NotifyResets: s.notifyResets.Load(),
		Subscribed: time.Unix(0, s.subscribed.Load()), LastMarker: lm, MarkerErr: me, Open: c.gaps.openNow(),
	}
}
