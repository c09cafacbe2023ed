package metrics

import (
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The hot-key, coalescing and backlog series: per bucket, never a key name;
// absent while unknown.
func TestHotKeyAndBacklogSeries(t *testing.T) {
	snap := func() Snapshot {
		return Snapshot{DirtyBacklog: 77, DirtyBacklogKnown: true, Buckets: []Bucket{
			{Name: "cache", Phase: "syncing", DirtyBacklog: 40, MarksTotal: 2516, ReadsTotal: 563,
				HottestKnown: true, HottestCopies: 47, HottestPerSec: 25.5, HotKeys: 1},
			{Name: "session", Phase: "syncing"},
		}}
	}
	srv := httptest.NewServer(NewCollector(snap).Handler())
	defer srv.Close()
	body := get(t, srv.URL+"/metrics")
	for _, want := range []string{
		`redisplit_dirty_backlog_keys 77`,
		`redisplit_bucket_dirty_backlog_keys{bucket="cache"} 40`,
		`redisplit_bucket_marks_total{bucket="cache"} 2516`,
		`redisplit_bucket_reads_total{bucket="cache"} 563`,
		`redisplit_bucket_hottest_key_copies{bucket="cache"} 47`,
		`redisplit_bucket_hottest_key_copies_per_second{bucket="cache"} 25.5`,
		`redisplit_bucket_hot_keys{bucket="cache"} 1`,
		`redisplit_bucket_hot_keys{bucket="session"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("no %q in the scrape", want)
		}
	}
	if strings.Contains(body, `redisplit_bucket_hottest_key_copies{bucket="session"}`) {
		t.Error("a hottest key for a bucket that copied none")
	}
	empty := httptest.NewServer(NewCollector(func() Snapshot { return Snapshot{} }).Handler())
	defer empty.Close()
	body = get(t, empty.URL+"/metrics")
	if strings.Contains(body, "redisplit_dirty_backlog_keys ") {
		t.Error("the whole backlog shown before the live phase reports")
	}
}

// docs/metrics.md documents every metric the collector describes.
func TestEveryMetricIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc, 64)
	NewCollector(func() Snapshot { return Snapshot{} }).Describe(ch)
	close(ch)
	name := regexp.MustCompile(`fqName: "([^"]+)"`)
	n := 0
	for d := range ch {
		m := name.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		n++
		if !strings.Contains(string(doc), "`"+m[1]+"`") && !strings.Contains(string(doc), "`"+m[1]+"{") {
			t.Errorf("%s is not in docs/metrics.md", m[1])
		}
	}
	if n < 16 {
		t.Errorf("only %d metrics described", n)
	}
}

// The copier's stage latencies: one series per stage and quantile, absent
// before the live phase copied a key.
func TestStageSeries(t *testing.T) {
	srv := httptest.NewServer(NewCollector(func() Snapshot {
		return Snapshot{Stages: []Stage{{Stage: "read", Quantile: "0.99", Seconds: 0.0125}, {Stage: "wait", Quantile: "1", Seconds: 0.5}}}
	}).Handler())
	defer srv.Close()
	body := get(t, srv.URL+"/metrics")
	for _, want := range []string{`redisplit_copier_stage_seconds{quantile="0.99",stage="read"} 0.0125`, `redisplit_copier_stage_seconds{quantile="1",stage="wait"} 0.5`} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("no %q in the scrape", want)
		}
	}
	empty := httptest.NewServer(NewCollector(func() Snapshot { return Snapshot{} }).Handler())
	defer empty.Close()
	if strings.Contains(get(t, empty.URL+"/metrics"), "redisplit_copier_stage_seconds{") {
		t.Error("stage series before any copy")
	}
}
