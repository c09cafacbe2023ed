package dualwrite

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Markers: catch-up proof and heartbeat.
//
// The Capture writes a marker key on legacy for every name of Config.Markers
// every MarkerEvery: SET <OwnPrefix>marker:<name>:<seq> <unix ms> PX
// <2×MarkerDeadline>. The sequence number is part of the key name because a
// keyevent notification carries the key name only: so each event names its
// write exactly, and a lost one is told from a late one. When the marker's
// "set" event comes back through the feed, a KindMarker event is delivered
// through the sink, in feed order with the Marks.
//
// Ordering contract: legacy publishes the events of one server in the order
// it executes the commands, on the one subscription connection. So every
// write legacy executed before the marker's SET has its Mark delivered
// before the marker's KindMarker event, and a consumer that has applied
// every Mark delivered before a KindMarker, with no Gap delivered after the
// last rescan it started, has caught up with legacy as of WrittenAt. A Gap
// that covers a marker is delivered before any KindMarker read after it.
//
// Heartbeat: a marker whose event has not come back MarkerDeadline after its
// write opens a GapMarker condition ("marker not seen: notifications off or
// feed stalled"); it clears when a marker written after that comes back.
// Time the reader spends blocked in the sink (backpressure) does not count
// towards the deadline: the events wait in the socket then, they are not
// lost (if legacy drops the connection for it, that is a GapDropped). A
// marker whose event is missing while a later one's arrives is a gap at
// once.
//
// A KindMarker event is delivered only while the feed is whole (no
// condition open, no Gap waiting); markers seen otherwise still clear the
// GapMarker condition and are counted in Stats.MarkersHeld.

// MarkerSeen is a marker's event read back from the feed.
type MarkerSeen struct {
	Name      string
	Seq       uint64
	WrittenAt time.Time // just before the SET was sent
	SeenAt    time.Time // when its event was read from the feed
}

// Lag is the marker's round trip: from its write on legacy to its event
// read from the feed (an upper bound of the feed's delay; the copier adds
// its own apply time).
func (m MarkerSeen) Lag() time.Duration { return m.SeenAt.Sub(m.WrittenAt) }

type pendingMarker struct {
	seq     uint64
	written time.Time
	blocked int64 // c.sinkBlocked at the write
	acked   bool  // the SET succeeded
	exempt  bool  // not counted for the deadline (covered by a gap, or the SET failed)
}

type markerTable struct {
	mu   sync.Mutex
	next map[string]uint64
	out  map[string][]*pendingMarker // by name, in seq order
}

func newMarkerTable() *markerTable {
	return &markerTable{next: map[string]uint64{}, out: map[string][]*pendingMarker{}}
}

func (t *markerTable) register(name string, now time.Time, blocked int64) *pendingMarker {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next[name]++
	p := &pendingMarker{seq: t.next[name], written: now, blocked: blocked}
	t.out[name] = append(t.out[name], p)
	return p
}

func (t *markerTable) setAcked(p *pendingMarker, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p.acked = ok
	if !ok {
		p.exempt = true // it may or may not have run: never a gap by itself
	}
}

// seen removes the marker name#seq and every earlier one; it returns the
// marker and the earlier ones that were acknowledged and counted (lost).
func (t *markerTable) seen(name string, seq uint64) (p *pendingMarker, lost []*pendingMarker) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.out[name]
	i := 0
	for ; i < len(out) && out[i].seq <= seq; i++ {
		if out[i].seq == seq {
			p = out[i]
		} else if out[i].acked && !out[i].exempt {
			lost = append(lost, out[i])
		}
	}
	if p == nil {
		return nil, nil // not ours, or already resolved
	}
	t.out[name] = out[i:]
	return p, lost
}

// exemptBefore stops counting the markers written before now.
func (t *markerTable) exemptBefore(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, out := range t.out {
		for _, p := range out {
			if p.written.Before(now) {
				p.exempt = true
			}
		}
	}
}

// overdue returns the oldest counted marker whose deadline passed (then
// exempts every marker: the gap it opens covers them), and drops markers
// older than maxAge that never came back.
func (t *markerTable) overdue(now time.Time, blocked int64, deadline, maxAge time.Duration) (string, *pendingMarker) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var (
		late     *pendingMarker
		lateName string
	)
	for name, out := range t.out {
		j := 0
		for _, p := range out {
			if now.Sub(p.written) > maxAge {
				continue
			}
			out[j] = p
			j++
			if !p.acked || p.exempt {
				continue
			}
			waited := now.Sub(p.written) - time.Duration(blocked-p.blocked)
			if waited > deadline && (late == nil || p.written.Before(late.written)) {
				late, lateName = p, name
			}
		}
		t.out[name] = out[:j]
	}
	if late != nil {
		for _, out := range t.out {
			for _, p := range out {
				p.exempt = true
			}
		}
	}
	return lateName, late
}

func (c *Capture) markerKey(name string, seq uint64) string {
	return c.markerPrefix + name + ":" + strconv.FormatUint(seq, 10)
}

// parseMarkerKey splits "<name>:<seq>" (after the marker prefix).
func parseMarkerKey(rest string) (string, uint64, bool) {
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(rest[i+1:], 10, 64)
	if err != nil {
		return "", 0, false
	}
	return rest[:i], seq, true
}

// WriteMarker writes marker name on legacy now and returns its sequence
// number; its KindMarker event follows through the sink (a caller waiting
// for catch-up "after now" waits for that seq or a later one). Safe for
// concurrent use; the Capture's own periodic writes go through it too.
func (c *Capture) WriteMarker(ctx context.Context, name string) (uint64, error) {
	now := time.Now()
	p := c.markers.register(name, now, c.sinkBlocked(now))
	wctx, cancel := context.WithTimeout(ctx, c.cfg.MarkerDeadline)
	defer cancel()
	err := c.legacy.Set(wctx, c.markerKey(name, p.seq), now.UnixMilli(), 2*c.cfg.MarkerDeadline).Err()
	c.markers.setAcked(p, err == nil)
	if err != nil {
		c.stats.setMarkerErr(c.explainLegacy(err))
		return 0, c.explainLegacy(err)
	}
	c.stats.setMarkerErr(nil)
	return p.seq, nil
}

// markerEvent handles the "set" event of a marker key (the part after the
// marker prefix).
func (c *Capture) markerEvent(rest string, now time.Time) error {
	name, seq, ok := parseMarkerKey(rest)
	if !ok {
		return nil
	}
	p, lost := c.markers.seen(name, seq)
	if p == nil {
		return nil
	}
	if len(lost) > 0 {
		c.gaps.instant(Gap{Cause: GapMarker, Since: lost[0].written,
			Reason: fmt.Sprintf("marker not seen: marker %s #%d, written to legacy %s at %s, never came back through the feed while #%d did: events were lost (notifications switched off for a moment?)",
				name, lost[0].seq, c.addr, lost[0].written.Format(time.RFC3339Nano), seq)})
	}
	if det, open := c.gaps.isOpen(GapMarker); open && p.written.After(det) {
		c.gaps.cleared(GapMarker)
	}
	ms := &MarkerSeen{Name: name, Seq: seq, WrittenAt: p.written, SeenAt: now}
	c.stats.setLastMarker(*ms)
	// Delivered only while the feed is whole: a marker is a catch-up proof
	// only if no gap is open or waiting.
	c.sinkMu.Lock()
	defer c.sinkMu.Unlock()
	if err := c.flushGapsLocked(); err != nil {
		return err
	}
	if c.gaps.anyOpen() {
		c.stats.markersHeld.Add(1)
		return nil
	}
	c.stats.markers.Add(1)
	return c.sinkLocked(Event{Kind: KindMarker, Marker: ms})
}

// markerLoop writes the markers every MarkerEvery and checks deadlines.
func (c *Capture) markerLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.MarkerEvery)
	defer t.Stop()
	for {
		for _, name := range c.cfg.Markers {
			if ctx.Err() != nil {
				return
			}
			_, _ = c.WriteMarker(ctx, name) // a failure is in Stats; it is no gap by itself
		}
		c.checkMarkers(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkMarkers opens the GapMarker condition for an overdue marker, unless
// the feed is already known not to be whole.
func (c *Capture) checkMarkers(now time.Time) {
	if c.gaps.anyOpen() {
		return
	}
	name, p := c.markers.overdue(now, c.sinkBlocked(now), c.cfg.MarkerDeadline, 10*c.cfg.MarkerDeadline)
	if p == nil {
		return
	}
	c.openGap(Gap{Cause: GapMarker, Since: p.written,
		Reason: fmt.Sprintf("marker not seen: notifications off or feed stalled (marker %s #%d, written to legacy %s, has not come back through the feed after %s)",
			name, p.seq, c.addr, c.cfg.MarkerDeadline)})
}
