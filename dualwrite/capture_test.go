package dualwrite

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Every kind of write arrives as a mark, two-key events as two marks in
// order, redisplit's own keys and keymiss never.
func TestCaptureMarks(t *testing.T) {
	srv, admin := legacy(t)
	ctx := ctxT(t)
	admin.ConfigSet(ctx, "notify-keyspace-events", "EAm") // keymiss events on: must not become marks
	_, f := start(t, admin, func() Config { c := fast(); c.DBs = []int{0, 1}; return c }())
	db1 := client(t, srv.Addr(), "", "", 1)

	admin.Set(ctx, "a", "1", 0)
	admin.Rename(ctx, "a", "b")
	admin.Move(ctx, "b", 1)
	db1.Copy(ctx, "b", "c", 1, false)
	admin.HSet(ctx, "h", "f", "v")
	admin.Expire(ctx, "h", time.Hour)
	admin.Get(ctx, "missing") // keymiss
	admin.Set(ctx, own+"lock", "x", time.Minute)
	admin.Del(ctx, "h")
	admin.Set(ctx, "last", "1", 0)

	evs := f.waitFor(t, "the last mark", 5*time.Second, func(evs []Event) bool { return hasMark(evs, "set", "last") })
	var got []string
	for _, e := range evs {
		if e.Kind == KindMark {
			got = append(got, fmt.Sprintf("%d:%s:%s", e.Mark.DB, e.Mark.Event, e.Mark.Key))
		}
		if e.Kind == KindGap || e.Kind == KindDown {
			t.Errorf("unexpected %s: %s", e.Kind, e.Gap.Reason)
		}
	}
	want := []string{"0:set:a", "0:rename_from:a", "0:rename_to:b", "0:move_from:b", "1:move_to:b", "1:copy_to:c",
		"0:hset:h", "0:expire:h", "0:del:h", "0:set:last"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("marks\n got %v\nwant %v", got, want)
	}
}

// Start refuses when notifications are off (where it can tell) and fails
// with the host named when the subscription is not permitted.
func TestStartChecks(t *testing.T) {
	srv, admin := legacy(t)
	ctx := ctxT(t)
	admin.ConfigSet(ctx, "notify-keyspace-events", "")
	_, err := Start(ctx, admin, fast(), ChanSink(make(chan Event)))
	if err == nil || !strings.Contains(err.Error(), "EnableNotifications") {
		t.Fatalf("Start with notifications off: %v", err)
	}
	admin.ConfigSet(ctx, "notify-keyspace-events", "EA")
	admin.Do(ctx, "acl", "setuser", "nochan", "on", ">pw", "~*", "resetchannels", "+@all")
	_, err = Start(ctx, client(t, srv.Addr(), "nochan", "pw", 0), fast(), ChanSink(make(chan Event)))
	if err == nil || !strings.Contains(err.Error(), srv.Addr()) || !strings.Contains(err.Error(), "NOPERM") || !strings.Contains(err.Error(), "&__keyevent@0__:*") {
		t.Fatalf("Start without channel permission: %v", err)
	}
	admin.Do(ctx, "acl", "setuser", "exact", "on", ">pw", "~*", "resetchannels", "&__keyevent@0__:*", "+@all")
	cp, err := Start(ctx, client(t, srv.Addr(), "exact", "pw", 0), fast(), ChanSink(make(chan Event, 100)))
	if err != nil {
		t.Fatalf("Start with the documented channel permission: %v", err)
	}
	cp.Stop()
	if _, err := Start(ctx, admin, Config{}, ChanSink(make(chan Event))); err == nil {
		t.Fatal("Start without OwnPrefix succeeded")
	}
	// The capture ends with its context, even while waiting for events.
	cctx, cancel := context.WithCancel(ctx)
	quiet := fast()
	quiet.MarkerEvery, quiet.Idle = time.Hour, time.Hour
	cp, err = Start(cctx, admin, quiet, func(context.Context, Event) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-cp.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the capture outlived its context")
	}
}

// Legacy's evictions are delivered and counted per key.
func TestCaptureEvictions(t *testing.T) {
	_, admin := legacy(t, "--maxmemory", "3mb", "--maxmemory-policy", "allkeys-random")
	ctx := ctxT(t)
	cp, f := start(t, admin, fast())
	val := strings.Repeat("x", 2000)
	for i := 0; i < 20; i++ {
		p := admin.Pipeline()
		for j := 0; j < 200; j++ {
			p.Set(ctx, fmt.Sprintf("k%d-%d", i, j), val, 0)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	evs := f.waitFor(t, "evicted marks", 5*time.Second, func(evs []Event) bool { return hasMark(evs, "evicted", "") })
	per, _ := cp.Evictions()
	var n int64
	for _, e := range evs {
		if e.Kind == KindMark && e.Mark.Event == "evicted" {
			n++
			if per[e.Mark.Key] == 0 {
				t.Errorf("evicted %s delivered but not counted", e.Mark.Key)
			}
		}
	}
	if n == 0 || cp.Stats().Evicted < n {
		t.Fatalf("evicted marks %d, counted %d", n, cp.Stats().Evicted)
	}
}

// 20k pipelined writes all arrive as marks (not timed; the rate is logged).
func TestCaptureThroughput(t *testing.T) {
	_, admin := legacy(t)
	ctx := ctxT(t)
	_, f := start(t, admin, fast())
	const n = 20000
	begin := time.Now()
	for i := 0; i < n; i += 1000 {
		p := admin.Pipeline()
		for j := i; j < i+1000; j++ {
			p.Set(ctx, fmt.Sprintf("key:%d", j), "v", 0)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	f.waitFor(t, "20k distinct marks", 20*time.Second, func(evs []Event) bool {
		for _, e := range evs {
			if e.Kind == KindMark {
				seen[e.Mark.Key] = true
			}
		}
		return len(seen) == n
	})
	t.Logf("%d marks in %s", n, time.Since(begin).Round(time.Millisecond))
}

// BenchmarkCapture measures marks delivered per second: b.N SETs written by
// 4 pipelined writers, timed until the last mark has reached the sink.
func BenchmarkCapture(b *testing.B) {
	_, admin := legacy(b)
	ctx := ctxT(b)
	got := make(chan struct{})
	var n int
	sink := func(_ context.Context, e Event) error {
		if e.Kind == KindMark {
			if n++; n == b.N {
				close(got)
			}
		}
		return nil
	}
	cp, err := Start(ctx, admin, Config{OwnPrefix: own}, sink)
	if err != nil {
		b.Fatal(err)
	}
	defer cp.Stop()
	b.ResetTimer()
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		go func(w int) {
			c := redis.NewClient(&redis.Options{Addr: admin.Options().Addr, Protocol: 2, DisableIdentity: true})
			defer c.Close()
			for i := w; i < b.N; i += 4 * 500 {
				p := c.Pipeline()
				for j := i; j < b.N && j < i+4*500; j += 4 {
					p.Set(ctx, fmt.Sprintf("key:%d", j), "v", 0)
				}
				if _, err := p.Exec(ctx); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}(w)
	}
	for w := 0; w < 4; w++ {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-got:
	case <-time.After(time.Minute):
		b.Fatalf("only %d of %d marks", n, b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "marks/s")
}
