package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A real scrape over HTTP of the text format: every figure of every bucket
// under its bucket label, each scrape reading a fresh snapshot, and Serve
// ending when its context does.
func TestScrape(t *testing.T) {
	var backlog atomic.Int64
	backlog.Store(42)
	catchUp := time.Unix(1700000000, 500_000_000)
	snap := func() Snapshot {
		return Snapshot{Buckets: []Bucket{
			{Name: "cache", Phase: "syncing", Lag: 12 * time.Millisecond, LagKnown: true, DirtyBacklog: backlog.Load(),
				LastCatchUp: catchUp, EventsTotal: 1000, CopiesTotal: 900, GapsTotal: 2, RescansTotal: 1,
				Keys: Keys{Copied: 600, Expired: 3, Gone: 4, Refused: 5, Failed: 0}},
			{Name: "queue", Phase: "copying", Failed: true},
		}}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- NewCollector(snap).ServeListener(ctx, l) }()
	url := "http://" + l.Addr().String() + "/metrics"

	body := get(t, url)
	for _, want := range []string{
		`redisplit_bucket_phase{bucket="cache",phase="syncing"} 1`,
		`redisplit_bucket_phase{bucket="queue",phase="copying"} 1`,
		`redisplit_bucket_failed{bucket="cache"} 0`,
		`redisplit_bucket_failed{bucket="queue"} 1`,
		`redisplit_bucket_lag_seconds{bucket="cache"} 0.012`,
		`redisplit_bucket_dirty_backlog_keys{bucket="cache"} 42`,
		`redisplit_bucket_last_catch_up_timestamp_seconds{bucket="cache"} 1.7000000005e+09`,
		`redisplit_bucket_events_total{bucket="cache"} 1000`,
		`redisplit_bucket_copies_total{bucket="cache"} 900`,
		`redisplit_bucket_gaps_total{bucket="cache"} 2`,
		`redisplit_bucket_rescans_total{bucket="cache"} 1`,
		`redisplit_bucket_keys_total{bucket="cache",outcome="copied"} 600`,
		`redisplit_bucket_keys_total{bucket="cache",outcome="expired"} 3`,
		`redisplit_bucket_keys_total{bucket="cache",outcome="gone"} 4`,
		`redisplit_bucket_keys_total{bucket="cache",outcome="refused"} 5`,
		`redisplit_bucket_keys_total{bucket="cache",outcome="failed"} 0`,
		`# TYPE redisplit_bucket_events_total counter`,
		`# TYPE redisplit_bucket_dirty_backlog_keys gauge`,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(body, want+"\n") && !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	for _, absent := range []string{`redisplit_bucket_lag_seconds{bucket="queue"}`, `redisplit_bucket_last_catch_up_timestamp_seconds{bucket="queue"}`} {
		if strings.Contains(body, absent) {
			t.Errorf("scrape has %q, which was never measured", absent)
		}
	}
	backlog.Store(7)
	if body := get(t, url); !strings.Contains(body, `redisplit_bucket_dirty_backlog_keys{bucket="cache"} 7`+"\n") {
		t.Errorf("second scrape did not read a fresh snapshot")
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve returned %v after its context ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

func TestServeReportsListenError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := NewCollector(func() Snapshot { return Snapshot{} }).Serve(context.Background(), l.Addr().String()); err == nil {
		t.Fatal("Serve on a taken address returned nil")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}
