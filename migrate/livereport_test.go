package migrate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redisplit/redisplit/state"
)

// The live phase's reports on real servers: one cache key written 2,000
// times while 200 others are written once is the cache bucket's top hot
// key, copied far fewer than 2,000 times (coalescing) and at least once
// per burst of 100; status (text and
// JSON), the metrics and the run's summary say so, and the marks the
// cache bucket's reads covered outnumber the reads. Every snapshot's
// backlog per bucket is at most the copier's whole backlog.
func TestDualWriteReportsHotKeysAndCoalescing(t *testing.T) {
	e := newLiveEnv(t)
	ctx := ctxT(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	m := e.startMigrate("--metrics-addr", addr)
	e.waitFor("every bucket syncing", 60*time.Second, m, allSyncing)

	wctx, stopWatch := context.WithCancel(ctx)
	backlogErr := make(chan string, 1)
	go func() { // the backlog per bucket never exceeds the whole
		defer close(backlogErr)
		for wctx.Err() == nil {
			st := e.liveState()
			if st.Live != nil {
				for b, lb := range st.Live.Buckets {
					if lb.Backlog > st.Live.Backlog {
						backlogErr <- fmt.Sprintf("%s: backlog %d > the copier's %d", b, lb.Backlog, st.Live.Backlog)
						return
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	const hotWrites, cold = 2000, 200
	// 20 bursts of 100 writes, ten to a pipeline as an application's; after
	// each burst its last value reaches the target, so the hot key is
	// copied at least 20 times (enough to be hot) and at most 2,000
	const bursts = 20
	for i := 0; i < hotWrites; i += 10 {
		pl := e.lc.Pipeline()
		for j := i; j < i+10; j++ {
			pl.Set(ctx, "cache:hot", j, 0)
		}
		if i%(hotWrites/cold) == 0 {
			pl.Set(ctx, fmt.Sprint("cache:cold:", i), i, 0)
		}
		if _, err := pl.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if last := i + 9; (last+1)%(hotWrites/bursts) == 0 {
			want := fmt.Sprint(last)
			for deadline := time.Now().Add(30 * time.Second); e.tg["cache"].Get(ctx, "cache:hot").Val() != want; {
				if time.Now().After(deadline) {
					t.Fatalf("cache:hot never reached %s on the target", want)
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	if code, out, errs := run(t, "--config", e.cfg, "status", "--wait-caught-up", "--timeout", "60s"); code != 0 {
		t.Fatalf("status --wait-caught-up: exit %d\n%s\n%s", code, out, errs)
	}
	stopWatch()
	if msg := <-backlogErr; msg != "" {
		t.Error(msg)
	}

	// status JSON: the hot key first, flagged, far fewer copies than writes
	code, out, errs := run(t, "--config", e.cfg, "status", "-o", "json")
	if code != 0 {
		t.Fatalf("status -o json: exit %d: %s", code, errs)
	}
	var rep struct{ Live *state.Live }
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Live == nil || rep.Live.Buckets["cache"] == nil {
		t.Fatalf("status JSON: %v\n%s", err, out)
	}
	cb := rep.Live.Buckets["cache"]
	if len(cb.HotKeys) == 0 || cb.HotKeys[0].Key != "cache:hot" {
		t.Fatalf("cache hot keys %+v: want cache:hot first", cb.HotKeys)
	}
	h := cb.HotKeys[0]
	t.Logf("cache:hot: %d writes → %d copies (%.0f/s); cache bucket: %d marks → %d reads", hotWrites, h.Copies, h.PerSec, cb.Marks, cb.Reads)
	if !h.Hot || h.Copies+h.Over < bursts || h.Copies >= hotWrites/2 {
		t.Errorf("cache:hot: %+v: want hot, with far fewer copies than its %d writes", h, hotWrites)
	}
	for _, k := range cb.HotKeys[1:] {
		if k.Hot {
			t.Errorf("a key written once reported hot: %+v", k)
		}
	}
	if cb.Marks <= cb.Reads {
		t.Errorf("cache: %d marks, %d reads: coalescing saved nothing", cb.Marks, cb.Reads)
	}
	for b, lb := range rep.Live.Buckets {
		if b != "cache" && len(lb.HotKeys) > 0 && lb.HotKeys[0].Hot {
			t.Errorf("%s: hot key %+v without a hot load", b, lb.HotKeys[0])
		}
	}

	// status text: a hot keys line for the cache bucket only
	_, text, _ := run(t, "--config", e.cfg, "status")
	if !strings.Contains(text, "hot keys cache: cache:hot (") || strings.Count(text, "hot keys ") != 1 ||
		!strings.Contains(text, "MARKS/READS") || !strings.Contains(text, "copier backlog:") {
		t.Errorf("status text:\n%s", text)
	}

	// metrics: the hottest key's figures per bucket, never its name
	body := scrape(t, addr)
	if strings.Contains(body, "cache:hot") {
		t.Error("a key name in the metrics (a label per key)")
	}
	if v := metricValue(t, body, `redisplit_bucket_hottest_key_copies{bucket="cache"}`); v < 1 || v >= hotWrites {
		t.Errorf("hottest key copies metric %v", v)
	}
	if v := metricValue(t, body, `redisplit_bucket_hot_keys{bucket="cache"}`); v < 1 {
		t.Errorf("hot keys metric %v, want ≥ 1", v)
	}
	if mk, rd := metricValue(t, body, `redisplit_bucket_marks_total{bucket="cache"}`), metricValue(t, body, `redisplit_bucket_reads_total{bucket="cache"}`); mk <= rd {
		t.Errorf("metrics: marks %v ≤ reads %v", mk, rd)
	}
	if metricValue(t, body, "redisplit_dirty_backlog_keys") < 0 || !strings.Contains(body, `redisplit_bucket_dirty_backlog_keys{bucket="session"}`) {
		t.Error("backlog metrics missing")
	}

	// the run's summary (JSON) carries them too
	r := m.stop(t)
	if r.code != 0 {
		t.Fatalf("SIGINT: exit %d\n%s", r.code, r.errs)
	}
	var res struct {
		Live struct {
			Stats  *state.Live
			Stages *state.Stages
		}
	}
	if err := json.Unmarshal([]byte(r.out), &res); err != nil || res.Live.Stats == nil {
		t.Fatalf("summary: %v\n%s", err, r.out)
	}
	// where the copier's time went, over the live load (its copies at least)
	if sg := res.Live.Stages; sg == nil || sg.Keys < h.Copies || sg.Read.Max <= 0 || sg.Write.Max <= 0 || sg.Wait.P50 > sg.Wait.Max {
		t.Errorf("summary's copier stages: %+v (the hot key alone was copied %d times)", sg, h.Copies)
	}
	if s := res.Live.Stats.Buckets["cache"]; s == nil || len(s.HotKeys) == 0 || s.HotKeys[0].Key != "cache:hot" || !s.HotKeys[0].Hot {
		t.Errorf("summary's cache figures: %+v", s)
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metricValue is the value of the series (name with its labels) in body.
func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no series %s in the metrics", series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// verify during the live phase, under a live load: after catch-up it
// re-checks differing keys after twice the measured lag (not the 1 ms
// asked), says so, and exits 0.
func TestVerifyDuringTheLivePhaseWaitsForTheLag(t *testing.T) {
	e := newLiveEnv(t)
	load := startLoad(t, e.leg.Addr(), 2000)
	m := e.startMigrate()
	e.waitFor("every bucket syncing", 60*time.Second, m, allSyncing)
	if code, out, errs := run(t, "--config", e.cfg, "status", "--wait-caught-up", "--timeout", "60s"); code != 0 {
		t.Fatalf("status --wait-caught-up: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs := run(t, "--config", e.cfg, "verify", "--interval", "1ms", "-o", "json")
	if code != 0 {
		t.Fatalf("verify under the live load: exit %d\n%s\n%s", code, out, errs)
	}
	var rep struct {
		OK         bool
		IntervalMs int64 `json:"interval_ms"` // what verify used
		Recheck    *struct {
			Live        bool  `json:"live"`
			Raised      bool  `json:"raised"`
			LagMs       int64 `json:"lag_ms"`
			IntervalMs  int64 `json:"interval_ms"`
			RequestedMs int64 `json:"requested_ms"`
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Recheck == nil {
		t.Fatalf("verify JSON: %v\n%s", err, out)
	}
	rc := rep.Recheck
	t.Logf("re-check interval %d ms for a measured lag of %d ms (asked %d ms)", rc.IntervalMs, rc.LagMs, rc.RequestedMs)
	if !rep.OK || !rc.Live || !rc.Raised || rc.IntervalMs < 2*rc.LagMs+100 || rc.RequestedMs != 1 || rep.IntervalMs != rc.IntervalMs {
		t.Errorf("verify's re-check: ok %v, used %d ms, %+v", rep.OK, rep.IntervalMs, rc)
	}
	code, text, errs := run(t, "--config", e.cfg, "verify", "--interval", "1ms")
	if code != 0 || !strings.Contains(text, "live phase running: re-checking after 2× the measured lag of ") {
		t.Errorf("verify text under the live load: exit %d\n%s\n%s", code, text, errs)
	}
	load.stop(t)
	e.stopped(m, "")
	// no live phase any more: --interval is taken as is, nothing said
	code, text, _ = run(t, "--config", e.cfg, "verify", "--interval", "1ms")
	if strings.Contains(text, "re-checking after") {
		t.Errorf("verify after the live phase (exit %d) still speaks of the lag:\n%s", code, text)
	}
}
