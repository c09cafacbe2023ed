package dualwrite

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
)

// Gaps.
//
// A gap is a stretch of time in which legacy may have changed keys without a
// Mark reaching the sink. Each cause is detected on its own:
//
//   - the subscriber's connection broke (CLIENT KILL, client-output-buffer-
//     limit pubsub after a slow consumer, a restart, the network): the
//     reader's Receive fails, or the watchdog finds it silent and its PING
//     unanswered;
//   - notifications were switched off: CONFIG GET polled every PollEvery
//     (where allowed), any CONFIG SET by another client (INFO commandstats
//     cmdstat_config|set, Redis ≥ 7: an off-and-on between two polls leaves
//     nothing else behind), and a marker that does not come back within
//     MarkerDeadline (or a later one that does while it did not);
//   - legacy restarted or was replaced (INFO run_id changed), is loading its
//     dataset (LOADING), or became a replica (its dataset replaced by a full
//     sync);
//   - FLUSHDB, FLUSHALL, SWAPDB, REPLICAOF: they publish no per-key events;
//     their INFO commandstats calls counters are compared every PollEvery.
//     The counters are cumulative, so a failed poll loses nothing: the next
//     one compares with the last that succeeded. A counter that went down
//     (CONFIG RESETSTAT) is a gap too, since a flush just before the reset
//     cannot be ruled out.
//
// A condition that lasts (connection down, notifications off, loading,
// marker overdue) is "open" from its detection until it clears; each opening
// is announced at once by a KindDown event. A Gap is delivered when the feed
// is whole again: its condition has cleared and no other is open. Instant
// causes (a flush, a restart seen afterwards) clear as soon as they are seen.
//
// Ordering contract: a Gap is delivered after the feed is whole again and
// before any event read after that point; after a dropped connection, after
// the new subscription is confirmed and before its first event. So a caller
// that starts a rescan when it receives a Gap misses nothing: every write
// legacy executes once the rescan has started arrives as a Mark. Marks
// delivered between a KindDown and its Gap are genuine, but incomplete.

// GapCause names what made a gap; stable strings for state and JSON.
type GapCause string

const (
	GapDropped     GapCause = "subscriber-dropped" // the pubsub connection broke
	GapNotifyOff   GapCause = "notifications-off"  // notify-keyspace-events lost E or a class
	GapConfigSet   GapCause = "config-set"         // CONFIG SET by another client
	GapMarker      GapCause = "marker-not-seen"    // a marker did not come back in time
	GapRestart     GapCause = "legacy-restarted"   // run_id changed
	GapLoading     GapCause = "legacy-loading"     // LOADING after a restart
	GapReplication GapCause = "legacy-replica"     // legacy became a replica, or REPLICAOF ran
	GapFlush       GapCause = "flush"              // FLUSHDB, FLUSHALL or SWAPDB ran
	GapStatsReset  GapCause = "stats-reset"        // INFO commandstats counters went down
)

// Gap is a window in which events may have been lost.
type Gap struct {
	Cause  GapCause
	Reason string // one line for an operator: what was seen, on which host
	// Since is the earliest time at which events may have been lost.
	Since time.Time
	// At is when the gap was delivered: the feed was whole again, and a
	// rescan started after At misses nothing. Zero in a KindDown event.
	At time.Time
	// DBs are the affected databases; nil: every database followed.
	DBs []int
	// Times counts gaps of the same cause merged into this one while the
	// feed was not whole (1 for a single one).
	Times int
}

// openGap is a lasting condition.
type openGap struct {
	g        Gap
	detected time.Time
}

// gapTracker holds open conditions and the gaps waiting for the feed to be
// whole. Safe for concurrent use.
type gapTracker struct {
	mu      sync.Mutex
	open    map[GapCause]*openGap
	pending []*Gap
	ready   atomic.Bool // nothing open and something pending
}

func newGapTracker() *gapTracker { return &gapTracker{open: map[GapCause]*openGap{}} }

// opened starts a lasting condition; it reports false when one of that
// cause is already open (the earlier one's Since stands).
func (t *gapTracker) opened(g Gap, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.open[g.Cause]; ok {
		return false
	}
	t.open[g.Cause] = &openGap{g: g, detected: now}
	t.ready.Store(false)
	return true
}

// cleared ends the open condition of cause, queueing its gap; it reports
// whether one was open.
func (t *gapTracker) cleared(cause GapCause) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.open[cause]
	if !ok {
		return false
	}
	delete(t.open, cause)
	t.queue(o.g)
	return true
}

// instant queues a gap whose cause is already over.
func (t *gapTracker) instant(g Gap) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queue(g)
}

func (t *gapTracker) queue(g Gap) {
	for _, p := range t.pending {
		if p.Cause == g.Cause {
			if g.Since.Before(p.Since) {
				p.Since = g.Since
			}
			p.Times++
			t.ready.Store(len(t.open) == 0)
			return
		}
	}
	g.Times = 1
	t.pending = append(t.pending, &g)
	t.ready.Store(len(t.open) == 0)
}

// isOpen reports whether a condition of cause is open, and since when it was
// detected.
func (t *gapTracker) isOpen(cause GapCause) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.open[cause]
	if !ok {
		return time.Time{}, false
	}
	return o.detected, true
}

func (t *gapTracker) anyOpen() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.open) > 0
}

// take returns the pending gaps stamped with At = now when nothing is open.
func (t *gapTracker) take(now time.Time) []*Gap {
	if !t.ready.Load() {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.open) > 0 {
		return nil
	}
	out := t.pending
	t.pending = nil
	t.ready.Store(false)
	for _, g := range out {
		g.At = now
	}
	return out
}

// openNow lists the open conditions, for Stats.
func (t *gapTracker) openNow() []Gap {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Gap, 0, len(t.open))
	for _, o := range t.open {
		out = append(out, o.g)
	}
	slices.SortFunc(out, func(a, b Gap) int { return a.Since.Compare(b.Since) })
	return out
}

// facts is what one INFO poll learns about legacy.
type facts struct {
	runID    string
	loading  bool
	role     string
	major    int              // redis_version's major number
	counters map[string]int64 // calls of the commands in watchedCommands
}

// watchedCommands change data (or may switch notifications off) without
// per-key events. config|set is watched only on Redis ≥ 7, where CONFIG
// subcommands have their own counters.
var watchedCommands = []string{"flushdb", "flushall", "swapdb", "replicaof", "slaveof", "config|set"}

// readFacts reads INFO server, persistence, replication and commandstats in
// one round trip (separate sections: INFO with several sections needs Redis
// ≥ 7).
func readFacts(ctx context.Context, c *redis.Client) (facts, error) {
	var cmds [4]*redis.StringCmd
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, s := range []string{"server", "persistence", "replication", "commandstats"} {
			cmds[i] = p.Info(ctx, s)
		}
		return nil
	})
	if err != nil {
		return facts{}, err
	}
	f := facts{counters: map[string]int64{}}
	for _, cmd := range cmds {
		for _, line := range strings.Split(cmd.Val(), "\n") {
			line = strings.TrimSpace(line)
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch {
			case k == "run_id":
				f.runID = v
			case k == "loading":
				f.loading = v == "1"
			case k == "role":
				f.role = v
			case k == "redis_version":
				f.major, _ = strconv.Atoi(strings.SplitN(v, ".", 2)[0])
			case strings.HasPrefix(k, "cmdstat_"):
				name := strings.TrimPrefix(k, "cmdstat_")
				for _, w := range watchedCommands {
					if name == w {
						f.counters[w] = parseCalls(v)
					}
				}
			}
		}
	}
	if f.runID == "" {
		return facts{}, fmt.Errorf("INFO server has no run_id")
	}
	return f, nil
}

// parseCalls reads calls=N out of "calls=N,usec=...".
func parseCalls(v string) int64 {
	for _, kv := range strings.Split(v, ",") {
		if n, ok := strings.CutPrefix(kv, "calls="); ok {
			x, _ := strconv.ParseInt(n, 10, 64)
			return x
		}
	}
	return 0
}

// compareFacts turns the difference between the last facts and cur into
// instant gaps and updates the baseline. Callers hold c.factsMu; the
// loading condition is the caller's (it emits, which must not happen under
// the lock).
func (c *Capture) compareFacts(cur facts, now time.Time) {
	prev := c.facts
	c.facts = cur
	since := c.lastPoll
	c.lastPoll = now
	if cur.runID != prev.runID {
		c.replaced.Store(true)
		c.gaps.instant(Gap{Cause: GapRestart, Since: since,
			Reason: fmt.Sprintf("legacy %s was restarted or replaced (run_id %s… → %s…): its dataset may have changed without events", c.addr, short(prev.runID), short(cur.runID))})
		c.ownConfigSets = 0
		return // counters start again from zero
	}
	if prev.role == "master" && cur.role != "master" {
		c.gaps.instant(Gap{Cause: GapReplication, Since: since,
			Reason: fmt.Sprintf("legacy %s became a replica (role %s): a full sync replaces its dataset without per-key events", c.addr, cur.role)})
	}
	for _, w := range watchedCommands {
		if w == "config|set" && cur.major < 7 {
			continue
		}
		a, b := prev.counters[w], cur.counters[w]
		if w == "config|set" {
			a += c.ownConfigSets
			c.ownConfigSets = 0
		}
		switch {
		case b < a:
			c.gaps.instant(Gap{Cause: GapStatsReset, Since: since,
				Reason: fmt.Sprintf("legacy %s: INFO commandstats counters went down (cmdstat_%s calls %d → %d: CONFIG RESETSTAT?), so a FLUSHDB, FLUSHALL or SWAPDB just before cannot be ruled out", c.addr, w, a, b)})
		case b > a:
			cause, what := GapFlush, "it deletes or swaps keys without per-key events"
			switch w {
			case "replicaof", "slaveof":
				cause, what = GapReplication, "a full sync replaces the dataset without per-key events"
			case "config|set":
				cause, what = GapConfigSet, "notify-keyspace-events may have been switched off and on in between"
			}
			c.gaps.instant(Gap{Cause: cause, Since: since,
				Reason: fmt.Sprintf("%s ran on legacy %s (%d times since the last check, INFO commandstats cmdstat_%s): %s", strings.ToUpper(w), c.addr, b-a, w, what)})
		}
	}
}

// checkFacts reads legacy's facts and compares them with the last ones.
func (c *Capture) checkFacts(ctx context.Context) {
	f, err := readFacts(ctx, c.legacy)
	now := time.Now()
	if err != nil {
		c.stats.pollErrors.Add(1)
		if redisconn.ReplyCode(err) == "LOADING" {
			c.openLoading(now)
		}
		return // the next poll compares with the last good one
	}
	c.factsMu.Lock()
	c.compareFacts(f, now)
	c.factsMu.Unlock()
	if f.loading {
		c.openLoading(now)
	} else {
		c.gaps.cleared(GapLoading)
	}
}

func (c *Capture) openLoading(now time.Time) {
	c.openGap(Gap{Cause: GapLoading, Since: now,
		Reason: fmt.Sprintf("legacy %s is loading its dataset (LOADING): what it holds afterwards may differ from what was mirrored", c.addr)})
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// poll is one round of the poller: INFO facts, then notify-keyspace-events.
// The poller and the reader (after a resubscription) both poll; pollMu
// makes them take turns.
func (c *Capture) poll(ctx context.Context) {
	c.pollMu.Lock()
	defer c.pollMu.Unlock()
	c.checkFacts(ctx)
	c.pollNotify(ctx)
}

// pollNotify checks notify-keyspace-events where CONFIG GET is allowed, and
// sets cfg.Notify again when it is found insufficient (a restart resets
// values set with CONFIG SET).
func (c *Capture) pollNotify(ctx context.Context) {
	if !c.notifyPollable {
		return
	}
	v, err := configGetNotify(ctx, c.legacy)
	if err != nil {
		if configRefused(err) {
			c.notifyPollable = false // the marker and cmdstat_config|set are the checks left
		}
		return
	}
	if NotifySufficient(v) {
		c.notifyOKAt = time.Now()
		c.gaps.cleared(GapNotifyOff)
		return
	}
	c.openGap(Gap{Cause: GapNotifyOff, Since: c.notifyOKAt,
		Reason: fmt.Sprintf("notify-keyspace-events on legacy %s is %q, without E or a class: events are missing", c.addr, v)})
	if c.cfg.Notify == "" {
		return
	}
	if err := c.legacy.ConfigSet(ctx, notifyParam, c.cfg.Notify).Err(); err != nil {
		return
	}
	c.factsMu.Lock()
	c.ownConfigSets++
	c.factsMu.Unlock()
	c.stats.notifyResets.Add(1)
	if v, err := configGetNotify(ctx, c.legacy); err == nil && NotifySufficient(v) {
		c.notifyOKAt = time.Now()
		c.gaps.cleared(GapNotifyOff)
	}
}

// afterResubscribe checks, on the fresh subscription, whether legacy
// restarted or is loading, before the dropped-connection gap is delivered.
func (c *Capture) afterResubscribe(ctx context.Context) {
	c.poll(ctx)
	c.replaced.Store(false) // the fresh subscription is on the server polled
}

// pollLoop runs poll every PollEvery.
func (c *Capture) pollLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.PollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.poll(ctx)
		if c.replaced.Swap(false) {
			// the server answering the client is another one (a Sentinel
			// failover, a restart behind a proxy): the subscription may
			// still be on the old one, which no longer sees the writes.
			// Subscribe again through the client, to the current server.
			r := "the server behind the client changed (run_id): subscribing again to the current one"
			c.closeReason.Store(&r)
			c.closePS()
		}
		if err := c.flushGaps(); err != nil {
			c.fail(err)
			return
		}
	}
}

// openGap opens a lasting condition and announces it with a KindDown event.
func (c *Capture) openGap(g Gap) {
	if !c.gaps.opened(g, time.Now()) {
		return
	}
	if err := c.emitOther(Event{Kind: KindDown, Gap: &g}); err != nil {
		c.fail(err)
	}
}

// flushGaps delivers the gaps that are ready, in the sink's order.
func (c *Capture) flushGaps() error {
	if !c.gaps.ready.Load() {
		return nil
	}
	c.sinkMu.Lock()
	defer c.sinkMu.Unlock()
	return c.flushGapsLocked()
}

// flushGapsLocked is flushGaps with c.sinkMu held. Markers written before
// the delivery stop counting towards MarkerDeadline: their loss, if any, is
// covered by the gaps delivered now.
func (c *Capture) flushGapsLocked() error {
	if !c.gaps.ready.Load() {
		return nil
	}
	now := time.Now()
	gs := c.gaps.take(now)
	if len(gs) == 0 {
		return nil
	}
	c.markers.exemptBefore(now)
	for _, g := range gs {
		c.stats.gaps.Add(1)
		if err := c.sink(c.ctx, Event{Kind: KindGap, Gap: g}); err != nil {
			return err
		}
	}
	return nil
}

// explainLegacy names legacy in err.
func (c *Capture) explainLegacy(err error) error { return redisconn.Explain(err, "legacy", c.addr) }
