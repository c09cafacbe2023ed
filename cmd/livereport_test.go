package cmd

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/redisplit/redisplit/keyname"
	"github.com/redisplit/redisplit/migrate"
	"github.com/redisplit/redisplit/state"
)

func liveFigures(now time.Time) *migrate.LiveStats {
	return &migrate.LiveStats{Running: true, PID: 7, Host: "h", StartedAt: now.Add(-time.Minute), UpdatedAt: now, Backlog: 5000,
		Buckets: map[string]*state.LiveBucket{
			"cache": {CaughtUp: true, BackfillDone: true, LagMs: 4, Backlog: 3900, BacklogEstimated: true, Marks: 2516, Reads: 563,
				HotKeys: []state.HotKey{
					{JSON: keyname.Of("cache:hot"), Copies: 47, PerSec: 25, Hot: true},
					{JSON: keyname.Of("cache:\xff"), Copies: 30, PerSec: 3, Hot: true},
					{JSON: keyname.Of("cache:cold"), Copies: 1, PerSec: 0.1},
				}},
			"session": {CaughtUp: true, BackfillDone: true, LagMs: 2, Backlog: 12,
				HotKeys: []state.HotKey{{JSON: keyname.Of("sess:a"), Copies: 2}}},
		}}
}

// status: the backlog per bucket ("~" when estimated) beside the whole,
// marks against reads, and a hot keys line only for a bucket with a hot
// key (binary names quoted).
func TestRenderLiveStatusHotKeysAndBacklog(t *testing.T) {
	now := time.Now()
	var b bytes.Buffer
	renderLiveStatus(&b, liveFigures(now), liveState(liveFigures(now), now))
	out := b.String()
	for _, want := range []string{
		"copier backlog: 5000 keys waiting (every bucket)",
		"~3900", "2516/563 (78% saved)",
		`hot keys cache: cache:hot (47 copies, 25.0/s), "cache:\xff" (30 copies, 3.0/s)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hot keys session") || strings.Contains(out, "cache:cold") {
		t.Errorf("a key that is not hot is named:\n%s", out)
	}
	b.Reset()
	renderLive(&b, &migrate.LiveResult{StartedAt: now.Add(-time.Minute), StoppedAt: now, Stats: liveFigures(now),
		Stages: &state.Stages{Keys: 900, Wait: state.Quantile{P50: 0.5, P90: 1, P99: 4.5, Max: 9}, Read: state.Quantile{P99: 2}, Write: state.Quantile{P99: 3}}})
	if out := b.String(); !strings.Contains(out, "  hot keys cache: cache:hot (47 copies") || !strings.Contains(out, "MARKS/READS") ||
		!strings.Contains(out, "copier stages per key, since the backfill (900 keys): wait p50 0.5ms p90 1.0ms p99 4.5ms max 9.0ms; read p50 0.0ms p90 0.0ms p99 2.0ms") {
		t.Errorf("summary:\n%s", out)
	}
}

// status and verify read the live phase by one rule (state.Live.Fresh).
func TestLiveStateIsFreshness(t *testing.T) {
	now := time.Now()
	l := liveFigures(now)
	l.UpdatedAt = now.Add(-state.LiveStale - time.Second)
	if liveState(l, now) != "not-running" || l.Fresh(now) {
		t.Error("stale figures read as running")
	}
	l.UpdatedAt = now
	if liveState(l, now) != "running" || !l.Fresh(now) {
		t.Error("fresh figures not running")
	}
}
