package verify

import (
	"fmt"
	"time"

	"github.com/redisplit/redisplit/state"
)

// The re-check rule during the live phase. While a migrate --dual-write
// mirrors legacy, a key written on legacy reaches its target about one
// measured lag later (the catch-up marker's round trip, LiveBucket.LagMs):
// re-checking a differing key sooner would see the mirror's delay, not a
// difference. So the interval between rounds is at least LagFactor times
// the worst measured lag of the buckets verified, plus LagMargin; an
// --interval already longer stands.

// LagFactor and LagMargin are the rule: interval ≥ LagFactor × lag + LagMargin.
const (
	LagFactor = 2
	LagMargin = 100 * time.Millisecond
)

// Recheck is the interval between verify's rounds and why.
type Recheck struct {
	Interval  time.Duration `json:"-"`
	Requested time.Duration `json:"-"` // --interval
	// Live: a migrate --dual-write is running (its figures are fresh,
	// state.Live.Fresh); LagMs is the worst measured lag of the buckets
	// verified, of Bucket.
	Live   bool   `json:"live"`
	LagMs  int64  `json:"lag_ms,omitempty"`
	Bucket string `json:"lag_bucket,omitempty"`
	// Raised: the lag rule made Interval longer than Requested.
	Raised bool `json:"raised,omitempty"`

	IntervalMs  int64 `json:"interval_ms"`
	RequestedMs int64 `json:"requested_ms"`
}

// RecheckInterval applies the rule to the requested interval, the live
// figures in the state (nil: none) and the buckets verified, at now.
func RecheckInterval(requested time.Duration, live *state.Live, buckets []string, now time.Time) Recheck {
	r := Recheck{Interval: requested, Requested: requested}
	if live.Fresh(now) {
		r.Live = true
		for _, b := range buckets {
			if lb := live.Buckets[b]; lb != nil && (r.Bucket == "" || lb.LagMs > r.LagMs) {
				r.LagMs, r.Bucket = lb.LagMs, b
			}
		}
		if r.Bucket != "" {
			if floor := LagFactor*time.Duration(r.LagMs)*time.Millisecond + LagMargin; floor > requested {
				r.Interval, r.Raised = floor, true
			}
		}
	}
	r.IntervalMs, r.RequestedMs = r.Interval.Milliseconds(), requested.Milliseconds()
	return r
}

// String says what the rule decided, for the report ("" when no live
// phase runs).
func (r Recheck) String() string {
	switch {
	case !r.Live || r.Bucket == "":
		return ""
	case r.Raised:
		return fmt.Sprintf("live phase running: re-checking after %d× the measured lag of %d ms (%s) + %s = %s (--interval %s is shorter)",
			LagFactor, r.LagMs, r.Bucket, LagMargin, r.Interval, r.Requested)
	default:
		return fmt.Sprintf("live phase running: re-checking after --interval %s (at least %d× the measured lag of %d ms (%s) + %s)",
			r.Interval, LagFactor, r.LagMs, r.Bucket, LagMargin)
	}
}
