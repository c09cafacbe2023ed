// Package metrics exports the figures of a running migration to Prometheus
// (`migrate --dual-write --metrics-addr HOST:PORT`, path /metrics), with a
// bucket label on every series. It reads a Snapshot from a function the
// caller passes, on every scrape: it holds no state of its own and depends
// on no engine package. docs/metrics.md is the reference.
package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Snapshot is the migration's figures at one instant.
type Snapshot struct {
	// DirtyBacklog is every key waiting in the copier (shared by the
	// buckets); DirtyBacklogKnown is false before the live phase reports.
	DirtyBacklog      int64
	DirtyBacklogKnown bool
	// Stages are the copier's stage latencies per key copied over the
	// last second or so (wait for a worker, read from legacy, write to the
	// targets), by quantile; nil before the live phase copied a key.
	Stages  []Stage
	Buckets []Bucket
}

// Stage is one quantile of one copier stage.
type Stage struct {
	Stage    string  // wait, read, write
	Quantile string  // 0.5, 0.9, 0.99, 1
	Seconds  float64 // the quantile's upper bound
}

// Bucket is one bucket's figures. Counters (the *Total fields and Keys)
// only grow during a run; a rescan or a new run may start some afresh,
// which Prometheus reads as a counter reset.
type Bucket struct {
	Name   string
	Phase  string // planned, copying, syncing, verified, cutover, completed, rolled-back
	Failed bool   // the bucket stopped on an error (beside its phase)

	// Lag is the last catch-up round trip (marker written on legacy →
	// applied to the target); LagKnown is false until one was measured.
	Lag      time.Duration
	LagKnown bool
	// DirtyBacklog is the number of keys marked dirty and not yet copied
	// that may belong to the bucket by their name (estimated from a sample
	// beyond 1024 keys waiting).
	DirtyBacklog int64
	// LastCatchUp is when catch-up was last proven; zero: never.
	LastCatchUp time.Time

	EventsTotal  uint64 // change events received from legacy for the bucket
	CopiesTotal  uint64 // key copies done (writes and deletes on the target)
	GapsTotal    uint64 // gaps in the change feed that concerned the bucket
	RescansTotal uint64 // rescans started to heal them

	// MarksTotal are the dirty marks covered by ReadsTotal, the reads of
	// the bucket's keys: MarksTotal − ReadsTotal is what coalescing saved.
	MarksTotal, ReadsTotal uint64
	// The bucket's most copied key, never named (one series per bucket):
	// its copies (a lower bound) and copies per second since it was
	// tracked; HottestKnown is false until a key was copied. HotKeys is
	// how many keys of the top list are hot (copied unusually often).
	HottestKnown  bool
	HottestCopies uint64
	HottestPerSec float64
	HotKeys       int

	// Keys are the migration's key counts, as in `redisplit status`.
	Keys Keys
}

// Keys are the outcomes of the keys of a bucket.
type Keys struct {
	Copied, Expired, Gone, Refused, Failed int64
}

const ns = "redisplit"

var (
	bucketLabel = []string{"bucket"}
	descPhase   = prometheus.NewDesc(ns+"_bucket_phase", "The bucket's current phase: one series, value 1, labelled with the phase.",
		[]string{"bucket", "phase"}, nil)
	descFailed = prometheus.NewDesc(ns+"_bucket_failed", "1 when the bucket stopped on an error (its phase is kept beside it), else 0.",
		bucketLabel, nil)
	descLag = prometheus.NewDesc(ns+"_bucket_lag_seconds", "Last catch-up round trip: from a marker written on legacy to its application on the target. Absent until measured.",
		bucketLabel, nil)
	descBacklog = prometheus.NewDesc(ns+"_bucket_dirty_backlog_keys", "Keys waiting in the copier that may belong to the bucket by their name (estimated from a sample of 1024 when more are waiting).",
		bucketLabel, nil)
	descCatchUp = prometheus.NewDesc(ns+"_bucket_last_catch_up_timestamp_seconds", "Unix time catch-up was last proven. Absent until it was.",
		bucketLabel, nil)
	descEvents = prometheus.NewDesc(ns+"_bucket_events_total", "Change events received from legacy for keys of the bucket.",
		bucketLabel, nil)
	descCopies = prometheus.NewDesc(ns+"_bucket_copies_total", "Key copies done: writes and deletes on the target.",
		bucketLabel, nil)
	descGaps = prometheus.NewDesc(ns+"_bucket_gaps_total", "Gaps in the change feed that concerned the bucket.",
		bucketLabel, nil)
	descRescans = prometheus.NewDesc(ns+"_bucket_rescans_total", "Rescans started to heal gaps.",
		bucketLabel, nil)
	descMarks = prometheus.NewDesc(ns+"_bucket_marks_total", "Dirty marks covered by the reads of the bucket's keys (marks_total - reads_total: what coalescing saved).",
		bucketLabel, nil)
	descReads = prometheus.NewDesc(ns+"_bucket_reads_total", "Keys of the bucket read from legacy and handed to its target.",
		bucketLabel, nil)
	descHottestCopies = prometheus.NewDesc(ns+"_bucket_hottest_key_copies", "Copies of the bucket's most copied key since it was tracked (a lower bound; the key is not a label). Absent until a key was copied.",
		bucketLabel, nil)
	descHottestRate = prometheus.NewDesc(ns+"_bucket_hottest_key_copies_per_second", "Copies per second of the bucket's most copied key since it was tracked. Absent until a key was copied.",
		bucketLabel, nil)
	descHotKeys = prometheus.NewDesc(ns+"_bucket_hot_keys", "Keys of the bucket's top 10 copied unusually often (at least 10 copies and 10x the median of its busiest keys).",
		bucketLabel, nil)
	descStage = prometheus.NewDesc(ns+"_copier_stage_seconds", "Where the copier's time per key went over the last second or so, by stage (wait: mark until a worker takes the key; read: from legacy; write: to the targets, replica acknowledgement included) and quantile (0.5, 0.9, 0.99, 1 = max; each a histogram bucket's upper bound, within 25%). Absent before the live phase copied a key.",
		[]string{"stage", "quantile"}, nil)
	descDirty = prometheus.NewDesc(ns+"_dirty_backlog_keys", "Every key waiting in the copier's dirty set (shared by the buckets). Absent before the live phase reports.",
		nil, nil)
	descKeys = prometheus.NewDesc(ns+"_bucket_keys_total", "Keys of the migration by outcome: copied, expired (read with its expiry reached), gone (absent when read), refused (on the target, not written by redisplit), failed (not copied because the bucket stopped).",
		[]string{"bucket", "outcome"}, nil)
)

// Collector is a prometheus.Collector of Snapshots. It is safe for
// concurrent scrapes if snap is safe for concurrent calls.
type Collector struct {
	snap func() Snapshot
}

// NewCollector returns a Collector calling snap on every scrape.
func NewCollector(snap func() Snapshot) *Collector { return &Collector{snap: snap} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPhase, descFailed, descLag, descBacklog, descCatchUp,
		descEvents, descCopies, descGaps, descRescans, descKeys, descMarks, descReads, descHottestCopies, descHottestRate,
		descHotKeys, descDirty, descStage} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	if s.DirtyBacklogKnown {
		ch <- prometheus.MustNewConstMetric(descDirty, prometheus.GaugeValue, float64(s.DirtyBacklog))
	}
	for _, st := range s.Stages {
		ch <- prometheus.MustNewConstMetric(descStage, prometheus.GaugeValue, st.Seconds, st.Stage, st.Quantile)
	}
	for _, b := range s.Buckets {
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{b.Name}, labels...)...)
		}
		counter := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, append([]string{b.Name}, labels...)...)
		}
		gauge(descPhase, 1, b.Phase)
		gauge(descFailed, boolf(b.Failed))
		if b.LagKnown {
			gauge(descLag, b.Lag.Seconds())
		}
		gauge(descBacklog, float64(b.DirtyBacklog))
		if !b.LastCatchUp.IsZero() {
			gauge(descCatchUp, float64(b.LastCatchUp.UnixNano())/1e9)
		}
		counter(descEvents, float64(b.EventsTotal))
		counter(descCopies, float64(b.CopiesTotal))
		counter(descGaps, float64(b.GapsTotal))
		counter(descRescans, float64(b.RescansTotal))
		counter(descMarks, float64(b.MarksTotal))
		counter(descReads, float64(b.ReadsTotal))
		if b.HottestKnown {
			gauge(descHottestCopies, float64(b.HottestCopies))
			gauge(descHottestRate, b.HottestPerSec)
		}
		gauge(descHotKeys, float64(b.HotKeys))
		for _, o := range []struct {
			name string
			n    int64
		}{{"copied", b.Keys.Copied}, {"expired", b.Keys.Expired}, {"gone", b.Keys.Gone}, {"refused", b.Keys.Refused}, {"failed", b.Keys.Failed}} {
			counter(descKeys, float64(o.n), o.name)
		}
	}
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Handler serves the text exposition of c, with the process and Go runtime
// collectors (process_resident_memory_bytes, go_goroutines, ...).
func (c *Collector) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	return mux
}

// Serve listens on addr (HOST:PORT) and serves /metrics until ctx ends,
// then returns nil. A listen error is returned at once.
func (c *Collector) Serve(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return c.ServeListener(ctx, l)
}

// ServeListener is Serve on a listener the caller opened (so that it can
// report a listen error before going on, or learn the port of ":0").
func (c *Collector) ServeListener(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		case <-done:
		}
	}()
	err := srv.Serve(l)
	close(done)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
