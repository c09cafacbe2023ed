package dualwrite

import (
	"fmt"
	"testing"
	"time"
)

// A marker's event comes after the marks of every write legacy executed
// before it, through the same sink; its lag is its round trip.
func TestMarkerOrder(t *testing.T) {
	_, admin := legacy(t)
	ctx := ctxT(t)
	cfg := fast()
	cfg.Markers = []string{"cache", "session"}
	cp, f := start(t, admin, cfg)
	for i := 0; i < 500; i++ {
		admin.Set(ctx, fmt.Sprintf("k%d", i), "v", 0)
	}
	seq, err := cp.WriteMarker(ctx, "session")
	if err != nil {
		t.Fatal(err)
	}
	evs := f.waitFor(t, "the marker", 5*time.Second, func(evs []Event) bool {
		for _, e := range evs {
			if e.Kind == KindMarker && e.Marker.Name == "session" && e.Marker.Seq == seq {
				return true
			}
		}
		return false
	})
	last := indexMark(evs, "set", "k499")
	names := map[string]bool{}
	for i, e := range evs {
		if e.Kind != KindMarker {
			continue
		}
		names[e.Marker.Name] = true
		if e.Marker.Lag() <= 0 || e.Marker.WrittenAt.IsZero() {
			t.Errorf("marker %+v", e.Marker)
		}
		if e.Marker.Name == "session" && e.Marker.Seq == seq && (last < 0 || i < last) {
			t.Fatalf("marker at %d, last mark at %d", i, last)
		}
	}
	if !names["cache"] || !names["session"] {
		t.Errorf("markers seen: %v", names)
	}
	if n := admin.Exists(ctx, "redisplit:marker:session:"+fmt.Sprint(seq)).Val(); n != 1 {
		t.Errorf("marker key missing")
	}
	if ttl := admin.PTTL(ctx, "redisplit:marker:session:"+fmt.Sprint(seq)).Val(); ttl <= 0 || ttl > 2*cfg.MarkerDeadline {
		t.Errorf("marker TTL %v", ttl)
	}
	if s := cp.Stats(); s.LastMarker.Seq == 0 || s.Markers == 0 || s.Own == 0 || s.Gaps != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestMarkerTable(t *testing.T) {
	tab := newMarkerTable()
	t0 := time.Now()
	p1 := tab.register("b", t0, 0)
	p2 := tab.register("b", t0.Add(time.Second), 0)
	p3 := tab.register("b", t0.Add(2*time.Second), 0)
	tab.setAcked(p1, true)
	tab.setAcked(p2, false) // failed SET: never a gap by itself
	tab.setAcked(p3, true)
	// Blocked in the sink for 10 s since p1's write: not overdue.
	if _, p := tab.overdue(t0.Add(12*time.Second), int64(10*time.Second), 5*time.Second, time.Minute); p != nil {
		t.Fatalf("overdue while blocked: %+v", p)
	}
	if _, p := tab.overdue(t0.Add(6*time.Second), 0, 5*time.Second, time.Minute); p != p1 {
		t.Fatalf("overdue = %+v, want #1", p)
	}
	// overdue exempted every marker: #3 seen now reports no loss.
	if p, lost := tab.seen("b", 3); p != p3 || len(lost) != 0 {
		t.Fatalf("seen = %+v, lost %v", p, lost)
	}
	p4 := tab.register("b", t0, 0)
	p5 := tab.register("b", t0, 0)
	tab.setAcked(p4, true)
	tab.setAcked(p5, true)
	if p, lost := tab.seen("b", 5); p != p5 || len(lost) != 1 || lost[0] != p4 {
		t.Fatalf("seen #5 = %+v, lost %v", p, lost)
	}
	if p, _ := tab.seen("b", 4); p != nil {
		t.Fatal("#4 resolved twice")
	}
	if p, _ := tab.seen("other", 1); p != nil {
		t.Fatal("a marker never written was seen")
	}
	for k, want := range map[string]string{"a:1": "a 1", "a:b:22": "a:b 22", "x": "-", ":3": "-", "a:": "-", "a:x": "-"} {
		got := "-"
		if name, seq, ok := parseMarkerKey(k); ok {
			got = fmt.Sprintf("%s %d", name, seq)
		}
		if got != want {
			t.Errorf("parseMarkerKey(%q) = %s, want %s", k, got, want)
		}
	}
}
