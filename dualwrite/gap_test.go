package dualwrite

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func countKind(evs []Event, k Kind, cause GapCause) int {
	n := 0
	for _, e := range evs {
		if e.Kind == k && (cause == "" || e.Gap.Cause == cause) {
			n++
		}
	}
	return n
}

// nthKind is the index of the n-th (1-based) event of kind k and cause.
func nthKind(evs []Event, n int, k Kind, cause GapCause) int {
	for i, e := range evs {
		if e.Kind == k && (cause == "" || e.Gap.Cause == cause) {
			if n--; n == 0 {
				return i
			}
		}
	}
	return -1
}

// noMarkerBetween checks that no KindMarker was delivered between a Down and
// the Gap that follows it.
func noMarkerBetween(t *testing.T, evs []Event, down, gap int) {
	t.Helper()
	for i := down; i < gap; i++ {
		if evs[i].Kind == KindMarker {
			t.Errorf("a marker was delivered at %d, between the Down at %d and the Gap at %d", i, down, gap)
		}
	}
}

// A caller that writes (or starts its rescan) the moment it receives the Gap
// misses nothing: the write made from inside the sink arrives as a mark.
func TestGapSubscriberKilledTwice(t *testing.T) {
	_, admin := legacy(t)
	ctx := ctxT(t)
	f := newFeed()
	next := ChanSink(f.ch)
	var gaps atomic.Int32
	sink := func(ctx context.Context, e Event) error {
		if e.Kind == KindGap {
			admin.Set(ctx, fmt.Sprintf("on-gap-%d", gaps.Add(1)), "1", 0)
		}
		return next(ctx, e)
	}
	cp, err := Start(ctx, admin, fast(), sink)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()
	for i := 1; i <= 2; i++ {
		if n := admin.ClientKillByFilter(ctx, "TYPE", "pubsub").Val(); n != 1 {
			t.Fatalf("killed %d pubsub clients", n)
		}
		evs := f.waitFor(t, fmt.Sprintf("gap #%d", i), 10*time.Second, func(evs []Event) bool {
			return countKind(evs, KindGap, GapDropped) == i
		})
		gi, di := nthKind(evs, i, KindGap, GapDropped), nthKind(evs, i, KindDown, GapDropped)
		if di < 0 || di > gi {
			t.Fatalf("no Down before the Gap: %s", describe(evs))
		}
		if g := evs[gi].Gap; g.At.Before(g.Since) || g.At.IsZero() {
			t.Errorf("gap window %v .. %v", g.Since, g.At)
		}
		noMarkerBetween(t, evs, di, gi)
		f.waitFor(t, "the write made on the gap", 5*time.Second, func(evs []Event) bool {
			return indexMark(evs, "set", fmt.Sprintf("on-gap-%d", i)) > gi
		})
		resumes(t, f, admin, fmt.Sprintf("after-kill-%d", i), gi)
	}
	if s := cp.Stats(); s.Drops != 2 || s.Resubscribes != 2 || len(s.Open) != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// A sink that blocks is backpressure until legacy drops the subscriber for
// its output buffer (client-output-buffer-limit pubsub): then it is a gap.
// The time blocked does not make markers overdue.
func TestGapOutputBufferLimit(t *testing.T) {
	_, admin := legacy(t)
	ctx := ctxT(t)
	if err := admin.ConfigSet(ctx, "client-output-buffer-limit", "pubsub 256kb 128kb 1").Err(); err != nil {
		t.Fatal(err)
	}
	f := newFeed()
	release := make(chan struct{})
	var blocked atomic.Bool
	next := ChanSink(f.ch)
	sink := func(ctx context.Context, e Event) error {
		if e.Kind == KindMark && e.Mark.Key == "block" {
			blocked.Store(true)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return next(ctx, e)
	}
	cp, err := Start(ctx, admin, fast(), sink)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()
	admin.Set(ctx, "block", "1", 0)
	for !blocked.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	long := strings.Repeat("k", 1000)
	for i := 0; ; i++ {
		if i == 200 {
			t.Fatal("legacy never dropped the subscriber")
		}
		p := admin.Pipeline()
		for j := 0; j < 1000; j++ {
			p.Set(ctx, long, "v", 0)
		}
		p.Exec(ctx)
		if n := admin.ClientList(ctx).Val(); !strings.Contains(n, "cmd=psubscribe") {
			break
		}
	}
	time.Sleep(1500 * time.Millisecond) // longer than MarkerDeadline, while blocked
	close(release)
	evs := f.waitFor(t, "the dropped-subscriber gap", 10*time.Second, func(evs []Event) bool {
		return indexKind(evs, KindGap, GapDropped) >= 0
	})
	gi := indexKind(evs, KindGap, GapDropped)
	if n := countKind(evs, KindDown, GapMarker) + countKind(evs, KindGap, GapMarker); n != 0 {
		t.Errorf("backpressure counted as a marker gap: %s", describe(evs))
	}
	resumes(t, f, admin, "after-drop", gi)
}

// Notifications switched off for 3 s and back on (CONFIG polled). The poll
// is slow here, so that markers come back before it sees them on again: they
// must not be delivered before the gap.
func TestGapNotificationsOff(t *testing.T) {
	_, admin := legacy(t)
	ctx := ctxT(t)
	cfg := fast()
	cfg.PollEvery = 2 * time.Second // polls at 2 s and 4 s: notifications are back on at 3 s
	cp, f := start(t, admin, cfg)
	off := time.Now()
	admin.ConfigSet(ctx, "notify-keyspace-events", "")
	f.waitFor(t, "the Down", 5*time.Second, func(evs []Event) bool { return indexKind(evs, KindDown, GapNotifyOff) >= 0 })
	admin.Set(ctx, "while-off", "1", 0)
	time.Sleep(time.Until(off.Add(3 * time.Second)))
	if n := countKind(f.snapshot(), KindGap, ""); n != 0 {
		t.Fatalf("a gap was delivered while notifications were off: %s", describe(f.snapshot()))
	}
	admin.ConfigSet(ctx, "notify-keyspace-events", "EA")
	if _, err := cp.WriteMarker(ctx, "feed"); err != nil {
		t.Fatal(err)
	}
	evs := f.waitFor(t, "the gap", 5*time.Second, func(evs []Event) bool { return indexKind(evs, KindGap, GapNotifyOff) >= 0 })
	gi := indexKind(evs, KindGap, GapNotifyOff)
	if cp.Stats().MarkersHeld == 0 {
		t.Error("no marker came back before the poll saw notifications on again: the test proves nothing")
	}
	if g := evs[gi].Gap; g.Since.After(off.Add(time.Second)) {
		t.Errorf("gap since %v, notifications were off from %v", g.Since, off)
	}
	noMarkerBetween(t, evs, indexKind(evs, KindDown, GapNotifyOff), gi)
	resumes(t, f, admin, "after-on", gi)
}

// Without CONFIG (managed services), notifications switched off are seen by
// the marker not coming back.
func TestGapMarkerNotSeen(t *testing.T) {
	srv, admin := legacy(t)
	ctx := ctxT(t)
	admin.Do(ctx, "acl", "setuser", "nocfg", "on", ">pw", "~*", "&*", "+@all", "-config")
	u := client(t, srv.Addr(), "nocfg", "pw", 0)
	_, f := start(t, u, fast())
	f.waitFor(t, "a first marker", 5*time.Second, func(evs []Event) bool { return indexKind(evs, KindMarker, "") >= 0 })
	admin.ConfigSet(ctx, "notify-keyspace-events", "")
	f.waitFor(t, "the Down", 5*time.Second, func(evs []Event) bool { return indexKind(evs, KindDown, GapMarker) >= 0 })
	admin.ConfigSet(ctx, "notify-keyspace-events", "EA")
	evs := f.waitFor(t, "the gap", 5*time.Second, func(evs []Event) bool { return indexKind(evs, KindGap, GapMarker) >= 0 })
	gi := indexKind(evs, KindGap, GapMarker)
	if !strings.Contains(evs[gi].Gap.Reason, "marker not seen: notifications off or feed stalled") {
		t.Errorf("reason: %s", evs[gi].Gap.Reason)
	}
	noMarkerBetween(t, evs, indexKind(evs, KindDown, GapMarker), gi)
	resumes(t, f, u, "after-on", gi)
}

// Legacy restarted (AOF on): the subscription drops, run_id changes, and the
// capture sets Config.Notify again (a restart forgets CONFIG SET).
func TestGapLegacyRestarted(t *testing.T) {
	srv, admin := legacy(t, "--appendonly", "yes")
	ctx := ctxT(t)
	cfg := fast()
	cfg.Notify = "EA"
	cp, f := start(t, admin, cfg)
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	evs := f.waitFor(t, "the restart gap", 15*time.Second, func(evs []Event) bool {
		return indexKind(evs, KindGap, GapRestart) >= 0 && indexKind(evs, KindGap, GapDropped) >= 0
	})
	gi := max(indexKind(evs, KindGap, GapRestart), indexKind(evs, KindGap, GapDropped))
	resumes(t, f, admin, "after-restart", gi)
	if cp.Stats().NotifyResets == 0 {
		t.Error("notifications were not set again")
	}
}

// FLUSHDB, FLUSHALL ASYNC, SWAPDB and CONFIG RESETSTAT publish no per-key
// events: each is a gap, and the capture goes on.
func TestGapNoEventCommands(t *testing.T) {
	_, admin := legacy(t)
	ctx := ctxT(t)
	_, f := start(t, admin, fast())
	for i, tc := range []struct {
		cmd   []any
		cause GapCause
		says  string
	}{
		{[]any{"flushdb"}, GapFlush, "FLUSHDB"},
		{[]any{"flushall", "async"}, GapFlush, "FLUSHALL"},
		{[]any{"swapdb", "0", "1"}, GapFlush, "SWAPDB"},
		{[]any{"config", "resetstat"}, GapStatsReset, "went down"},
	} {
		admin.Set(ctx, "k", "v", 0)
		if err := admin.Do(ctx, tc.cmd...).Err(); err != nil {
			t.Fatal(err)
		}
		n := countKind(f.snapshot(), KindGap, "")
		evs := f.waitFor(t, tc.says, 5*time.Second, func(evs []Event) bool { return countKind(evs, KindGap, "") > n })
		gi := nthKind(evs, n+1, KindGap, "")
		if g := evs[gi].Gap; g.Cause != tc.cause || !strings.Contains(g.Reason, tc.says) || g.DBs != nil {
			t.Errorf("%v: gap %+v", tc.cmd, g)
		}
		resumes(t, f, admin, fmt.Sprintf("after-%d", i), gi)
	}
}

func TestGapTracker(t *testing.T) {
	tr := newGapTracker()
	now := time.Now()
	tr.opened(Gap{Cause: GapDropped, Since: now}, now)
	tr.instant(Gap{Cause: GapFlush, Since: now.Add(time.Second)})
	tr.instant(Gap{Cause: GapFlush, Since: now})
	if got := tr.take(now); got != nil {
		t.Fatalf("delivered while a condition is open: %v", got)
	}
	if tr.opened(Gap{Cause: GapDropped, Since: now.Add(time.Hour)}, now) {
		t.Fatal("opened twice")
	}
	tr.cleared(GapDropped)
	got := tr.take(now.Add(time.Minute))
	if len(got) != 2 || got[0].Cause != GapFlush || got[0].Times != 2 || !got[0].Since.Equal(now) || got[1].Cause != GapDropped || !got[1].At.Equal(now.Add(time.Minute)) {
		t.Fatalf("got %+v %+v", got[0], got[1])
	}
	if tr.take(now) != nil {
		t.Fatal("delivered twice")
	}
}

// A subscription that goes silent (legacy frozen: the connection stays open
// but nothing answers) is closed by the watchdog and is a gap.
func TestGapSilentConnection(t *testing.T) {
	_, admin := legacy(t)
	ctx := ctxT(t)
	cfg := fast()
	cfg.Idle = 300 * time.Millisecond
	_, f := start(t, admin, cfg)
	pid, err := admin.InfoMap(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(pid["Server"]["process_id"])
	if p == 0 {
		t.Fatalf("no process_id: %v", pid)
	}
	if err := syscall.Kill(p, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(p, syscall.SIGCONT) })
	f.waitFor(t, "the Down", 10*time.Second, func(evs []Event) bool { return indexKind(evs, KindDown, GapDropped) >= 0 })
	syscall.Kill(p, syscall.SIGCONT)
	evs := f.waitFor(t, "the gap", 10*time.Second, func(evs []Event) bool { return indexKind(evs, KindGap, GapDropped) >= 0 })
	gi := indexKind(evs, KindGap, GapDropped)
	if !strings.Contains(evs[gi].Gap.Reason, "no answer to PING") {
		t.Errorf("reason: %s", evs[gi].Gap.Reason)
	}
	resumes(t, f, admin, "after-freeze", gi)
}
