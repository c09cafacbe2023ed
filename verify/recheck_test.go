package verify

import (
	"strings"
	"testing"
	"time"

	"github.com/redisplit/redisplit/state"
)

func TestRecheckIntervalFollowsTheMeasuredLag(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	live := func(running bool, age time.Duration, lags map[string]int64) *state.Live {
		l := &state.Live{Running: running, UpdatedAt: now.Add(-age), Buckets: map[string]*state.LiveBucket{}}
		for b, ms := range lags {
			l.Buckets[b] = &state.LiveBucket{LagMs: ms}
		}
		return l
	}
	lags := map[string]int64{"cache": 40, "session": 700, "queue": 5}
	for _, c := range []struct {
		name      string
		requested time.Duration
		live      *state.Live
		buckets   []string
		want      time.Duration
		raised    bool
		bucket    string
		says      string
	}{
		{"no live phase", time.Second, nil, []string{"cache"}, time.Second, false, "", ""},
		{"stopped", time.Millisecond, live(false, 0, lags), []string{"session"}, time.Millisecond, false, "", ""},
		{"stale: killed", time.Millisecond, live(true, state.LiveStale+time.Second, lags), []string{"session"}, time.Millisecond, false, "", ""},
		{"worst lag of the buckets verified", 10 * time.Millisecond, live(true, time.Second, lags), []string{"cache", "session"},
			2*700*time.Millisecond + LagMargin, true, "session", "re-checking after 2× the measured lag of 700 ms (session)"},
		{"only the buckets verified", 10 * time.Millisecond, live(true, time.Second, lags), []string{"cache", "queue"},
			2*40*time.Millisecond + LagMargin, true, "cache", "re-checking after 2× the measured lag of 40 ms (cache)"},
		{"a longer --interval stands", 5 * time.Second, live(true, time.Second, lags), []string{"session"},
			5 * time.Second, false, "session", "re-checking after --interval 5s (at least 2× the measured lag of 700 ms"},
		{"a bucket not mirrored", 10 * time.Millisecond, live(true, time.Second, lags), []string{"ratelimit"}, 10 * time.Millisecond, false, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := RecheckInterval(c.requested, c.live, c.buckets, now)
			if r.Interval != c.want || r.Raised != c.raised || r.Bucket != c.bucket || r.Requested != c.requested ||
				r.IntervalMs != c.want.Milliseconds() {
				t.Errorf("got %+v, want interval %s raised %v bucket %q", r, c.want, c.raised, c.bucket)
			}
			if s := r.String(); (c.says == "") != (s == "") || !strings.Contains(s, c.says) {
				t.Errorf("report %q, want it to say %q", s, c.says)
			}
		})
	}
}
