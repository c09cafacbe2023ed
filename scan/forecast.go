package scan

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/redisplit/redisplit/layout/skew"
)

// The cache cluster's skew forecast, computed while the scan streams.
//
// Every key the rules route to the cache bucket is given, with its measured
// bytes (MEMORY USAGE, or "not measured" under --sample), to the scan's one
// skew.Forecaster, a batch at a time under a mutex (one lock per SCAN batch,
// so the workers never wait on each other for long). No key list is kept:
// the forecaster is bounded by package skew (16384 slot counters, a capped
// hash-tag table, the ten biggest keys) whatever the keyspace size, and
// costs one CRC16 per cache key.
//
// Keys that only an accepted proposal routes to the cache are known to be
// cache keys once the scan ends, not while it streams: with --keys-out they
// are added while the export's second phase re-routes them (so the forecast
// equals what `targets init --keys` computes from that export for the same
// masters: one implementation, package skew); without it they are left out
// and counted in NotForecast.

// DefaultCacheMasters is the master count forecast when Options.CacheMasters
// is zero: the smallest Redis Cluster.
const DefaultCacheMasters = 3

// CacheForecast is the predicted spread of the cache bucket over a Redis
// Cluster of Masters masters (skew.Forecast, whose fields it carries), with
// what the forecast leaves out.
type CacheForecast struct {
	skew.Forecast
	// NotForecast counts cache keys routed by accepted proposals that the
	// forecast does not include (scan without --keys-out); 0 otherwise.
	NotForecast int64 `json:"keys_not_forecast"`
	// Overloaded lists the nodes holding more than skew.OverShare times
	// their fair share, each with the cause and the fix; empty when the
	// keyspace spreads evenly.
	Overloaded []Overload `json:"overloaded"`
}

// Overload is one node the forecast warns about.
type Overload struct {
	Node    int    `json:"node"`
	Message string `json:"message"` // the node, its share and what fills it
	Fix     string `json:"fix"`
}

// forecastCache adds the batch's cache keys (w.cache) to the forecast.
func (w *worker) forecastCache() {
	if len(w.cache) == 0 {
		return
	}
	w.s.fcMu.Lock()
	defer w.s.fcMu.Unlock()
	for _, i := range w.cache {
		w.s.fc.Add(w.info[i].Key, w.info[i].Bytes)
	}
}

// cacheForecast finishes the forecast: fc holds every forecast key;
// notForecast the cache keys it lacks.
func cacheForecast(fc *skew.Forecaster, notForecast int64) *CacheForecast {
	out := &CacheForecast{Forecast: fc.Forecast(), NotForecast: notForecast, Overloaded: []Overload{}}
	// skew's Warnings begin with one line per Overloaded node, in its order.
	for i, n := range out.Forecast.Overloaded() {
		out.Overloaded = append(out.Overloaded, Overload{Node: n.Node, Message: out.Warnings[i], Fix: skewFix(&out.Forecast, n.Node)})
	}
	return out
}

// skewFix says how to even out node n: vary or drop the hash tags that pin
// a family to one of its slots, split its big keys, else spread its slots.
func skewFix(fc *skew.Forecast, n int) string {
	var fix []string
	for _, t := range fc.HashTags {
		if t.Node == n {
			fix = append(fix, fmt.Sprintf("remove the hash tag {%s} from the family's key names, or vary it (a tag per item, not one per family), unless multi-key commands need those keys on one slot", skew.Text(t.Tag, t.TagB64)))
		}
	}
	for _, k := range fc.BigKeys {
		if k.Node == n {
			fix = append(fix, fmt.Sprintf("split the big key %s into several keys (e.g. by a hash of its fields) so that they land on different slots", strconv.Quote(skew.Text(k.Key, k.KeyB64))))
		}
	}
	if len(fix) == 0 {
		return fmt.Sprintf("no hash tag or big key explains it: give node %d fewer slots (redis-cli --cluster rebalance with --cluster-weight) or use more masters", n)
	}
	return strings.Join(fix, "; ")
}

// verdict is the forecast's preflight line: warn when a node would hold far
// more than its share (the first such node, its cause and fix), else ok.
func (c *CacheForecast) verdict() Verdict {
	v := Verdict{Check: "cache-skew", Status: StatusOK}
	switch {
	case len(c.Overloaded) > 0:
		o := c.Overloaded[0]
		v.Status = StatusWarn
		v.Message = fmt.Sprintf("before copying: %s; fix: %s", o.Message, o.Fix)
		if len(c.Overloaded) > 1 {
			v.Message += fmt.Sprintf(" (%d nodes over their share: see the cache forecast)", len(c.Overloaded))
		}
	case c.Keys == 0:
		v.Status = StatusInfo
		v.Message = "no cache keys to forecast"
	default:
		var top float64
		for _, n := range c.Nodes {
			top = max(top, n.KeyShare, n.ByteShare)
		}
		v.Message = fmt.Sprintf("the cache spreads evenly over %d masters (fullest node %.0f%%, share %.0f%%)", c.Masters, 100*top, 100/float64(max(c.Masters, 1)))
	}
	if c.NotForecast > 0 {
		v.Message += fmt.Sprintf("; %d cache keys routed by proposals are not forecast (scan with --keys-out to include them)", c.NotForecast)
	}
	return v
}
