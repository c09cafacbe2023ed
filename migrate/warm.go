package migrate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/layout"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
)

// Cache warming (targets.cache.copy): the cache bucket is copied whole
// (all, the default), or only its hot keys (hot), or not at all (none).
// Sessions, queues and rate limits are always copied in full. Contracts:
//
//  1. One selection per migration. For hot, before the first key is
//     copied, a selection pass SCANs legacy once and builds a histogram of
//     the cache keys' hotness — OBJECT IDLETIME (seconds idle) or, when
//     legacy's maxmemory-policy is LFU, OBJECT FREQ (the LFU counter) —
//     weighted by MEMORY USAGE: a fixed array of bins, whatever the number
//     of keys (memory bounded; no key is kept). The threshold is the
//     coldest bin such that every key at least that hot fits the budget
//     (whole bins only: a bin that would overflow the budget is left out
//     entirely, unless it is the hottest one: then the backfill copies as
//     many of its keys as fit, contract 2). The policy and the threshold
//     are saved in the bucket's state (state.Warm) before the first
//     write; a resumed run reuses them and never selects again.
//  2. The backfill asks each cache key's hotness again (one pipelined
//     OBJECT per key of the page, under the ops budget) and marks only the
//     hot ones (hotNow) while their MEMORY USAGE fits what is left of the
//     budget; the others are counted as not warmed, for the page, like
//     every other outcome (pipeline.go contract 4), and the bytes warmed
//     are saved with the checkpoint, so a resumed run has what is left.
//     An idle time is compared with the threshold plus the seconds since
//     the selection, so a key hot at the selection stays hot while the
//     backfill runs; a key the application used since is hot too, within
//     the budget.
//  3. OBJECT IDLETIME, OBJECT FREQ, MEMORY USAGE, TYPE and SCAN do not
//     touch keys: the selection never changes what it measures, nor
//     legacy's eviction order.
//  4. Only the backfill caps. Change capture marks every key it sees
//     written (live writes are mirrored whatever the policy); a rescan
//     after a gap filters the cache keys legacy has like the backfill
//     (none: no cache key; hot: the hot ones) and marks every key of the
//     journal, so what redisplit wrote is still reconciled.
//  5. Verify reads the record: with hot or none, a cache key missing on
//     the target that this migration never journaled (Warmed) was left on
//     legacy on purpose: "not warmed", not missing. A key it journaled —
//     warmed, or written live — and that is missing is a loss. The
//     journal, not the key's hotness now, decides: verify's own reads
//     (and the application's) touch keys and change their idle times.

// Metrics of a hot selection (state.Warm.Metric).
const (
	MetricIdle = "idle" // OBJECT IDLETIME, seconds: smaller is hotter
	MetricFreq = "freq" // OBJECT FREQ, the LFU counter: larger is hotter
)

// hotBins is the number of bins of the selection's histogram: ranks of
// hotness, 0 the hottest. An idle time of v seconds has an exact bin below
// 16 s and 8 bins per power of two above (bins ~9% wide); an LFU counter
// (0..255) has its own bin, 255-counter. Idle times stop at 2^28 s (the
// LRU clock wraps at 2^24 s, about 194 days): the last idle bin holds the
// rest.
const (
	idleBins = 16 + 8*24
	hotBins  = 256
)

// idleBin is the rank of an idle time (seconds).
func idleBin(v int64) int {
	if v < 16 {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) - 1 // 2^e <= v < 2^(e+1), e >= 4
	m := int(v>>(e-3)) & 7         // the 3 bits below the leading one
	return min(16+(e-4)*8+m, idleBins-1)
}

// idleBinMax is the largest idle time of bin b.
func idleBinMax(b int) int64 {
	if b < 16 {
		return int64(b)
	}
	e, m := (b-16)/8+4, int64((b-16)%8)
	return (int64(8)+m+1)<<(e-3) - 1
}

func freqBin(v int64) int { return int(255 - min(max(v, 0), 255)) }

// metricOf is the hotness metric for legacy's maxmemory-policy: an LFU
// policy tracks no idle time (OBJECT IDLETIME fails), any other no counter.
func metricOf(policy string) string {
	if strings.Contains(policy, "lfu") {
		return MetricFreq
	}
	return MetricIdle
}

// warmBudget is the default budget of a hot selection: the room the
// target has (maxmemory − used_memory, summed over a cluster's masters)
// divided by layout.RoomMargin, the headroom the room check asks of every target.
// 0 when the target has no maxmemory: no default.
func warmBudget(info store.Info) int64 {
	if info.MaxMemory <= 0 {
		return 0
	}
	return max(0, int64(float64(info.MaxMemory-info.UsedMemory)/layout.RoomMargin))
}

// WarmResult is what the selection chose, for migrate's summary.
type WarmResult struct {
	Policy     string `json:"policy"`
	Metric     string `json:"metric,omitempty"`
	Threshold  int64  `json:"threshold"`
	Budget     int64  `json:"budget_bytes,omitempty"`
	HotKeys    int64  `json:"hot_keys"`
	HotBytes   int64  `json:"hot_bytes"`
	CacheKeys  int64  `json:"cache_keys"`
	CacheBytes int64  `json:"cache_bytes"`
	Reused     bool   `json:"reused,omitempty"` // recorded by an earlier run of this migration
}

func warmResult(w *state.Warm, reused bool) *WarmResult {
	return &WarmResult{Policy: w.Policy, Metric: w.Metric, Threshold: w.Threshold, Budget: w.Budget, HotKeys: w.HotKeys,
		HotBytes: w.HotBytes, CacheKeys: w.CacheKeys, CacheBytes: w.CacheBytes, Reused: reused}
}

// warmBucket is the one bucket a copy policy applies to.
const warmBucket = "cache"

// prepareWarm returns the cache's copy policy for this run (nil: copy every
// key): the one recorded in the state when the bucket resumes, else a new
// selection (hot: the selection pass of contract 1). A policy in the
// config that is not the recorded one is a config error: a migration
// selects once.
func prepareWarm(ctx context.Context, legacy *redis.Client, o Options, targets map[string]*store.Redis, st *state.State, res *Result) (*state.Warm, error) {
	t := targets[warmBucket]
	if t == nil {
		return nil, nil
	}
	policy := o.Config.CopyPolicy(warmBucket)
	sb := st.Buckets[warmBucket]
	resumed := sb != nil && !sb.StartedAt.IsZero() && sb.Phase != state.RolledBack
	if resumed {
		was := config.CopyAll
		if sb.Warm != nil {
			was = sb.Warm.Policy
		}
		if was != policy {
			return nil, config.Errorf("targets.cache.copy", "%s, but this migration of the cache started with copy: %s (target %s): set it back, or roll the cache back (redisplit rollback --bucket cache) to start again with %s", policy, was, t.Describe(), policy)
		}
		if sb.Warm != nil {
			res.Bucket(warmBucket).Warm = warmResult(sb.Warm, true)
		}
		return sb.Warm, nil
	}
	switch policy {
	case config.CopyNone:
		w := &state.Warm{Policy: config.CopyNone, Threshold: -1, SelectedAt: time.Now().UTC()}
		res.Bucket(warmBucket).Warm = warmResult(w, false)
		return w, nil
	case config.CopyHot:
	default:
		return nil, nil
	}
	budget := o.Config.Targets[warmBucket].WarmBytes
	if budget == 0 {
		info, err := t.Info(ctx)
		if err != nil {
			return nil, err
		}
		if budget = warmBudget(info); budget == 0 {
			return nil, config.Errorf("targets.cache.warm_bytes", "copy: hot needs a byte budget and the cache target %s has no maxmemory to take it from: set warm_bytes, or maxmemory on the target", t.Describe())
		}
	}
	lpol, err := legacyPolicy(ctx, legacy)
	if err != nil {
		return nil, err
	}
	w := &state.Warm{Policy: config.CopyHot, Metric: metricOf(lpol), Budget: budget}
	if err := selectHot(ctx, legacy, o, w); err != nil {
		return nil, err
	}
	res.Bucket(warmBucket).Warm = warmResult(w, false)
	return w, nil
}

// legacyPolicy is legacy's maxmemory-policy, from INFO memory (no CONFIG
// needed).
func legacyPolicy(ctx context.Context, legacy *redis.Client) (string, error) {
	s, err := legacy.Info(ctx, "memory").Result()
	if err != nil {
		return "", redisconn.Explain(err, "legacy", legacy.Options().Addr)
	}
	return store.ParseInfo(s)["maxmemory_policy"], nil
}

// selectHot is the selection pass (contract 1): it fills w's threshold and
// figures.
func selectHot(ctx context.Context, legacy *redis.Client, o Options, w *state.Warm) error {
	rt := router{c: o.Classifier, unknown: o.Config.Unknown}
	var keys, bytes [hotBins]int64
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	w.SelectedAt = time.Now().UTC()
	pages, scanErr := scanPages(ctx, legacy, 0, o)
	for pg := range pages {
		types, err := legacyTypes(ctx, legacy, o, pg.keys)
		if err != nil {
			return err
		}
		var cache []string
		for i, k := range pg.keys {
			if b, _ := rt.route(k, types[i]); b == warmBucket {
				cache = append(cache, k)
			}
		}
		if len(cache) == 0 {
			continue
		}
		if err := waitN(ctx, o.limiter(), 2*len(cache)); err != nil {
			return err
		}
		hot := make([]*redis.Cmd, len(cache))
		size := make([]*redis.IntCmd, len(cache))
		err = o.Retry.Do(ctx, func() error {
			_, err := legacy.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, k := range cache {
					hot[i] = p.Do(ctx, hotnessCmd(w.Metric, k)...)
					size[i] = p.MemoryUsage(ctx, k)
				}
				return nil
			})
			if err != nil && !isNil(err) && !isReplyErr(err) {
				return err
			}
			return nil
		})
		if err != nil {
			return redisconn.Explain(err, "legacy", legacy.Options().Addr)
		}
		for i := range cache {
			v, err := hot[i].Int64()
			if err != nil {
				if isNil(err) {
					continue // gone since the SCAN
				}
				return explainObject(err, legacy, w.Metric)
			}
			b := binOf(w.Metric, v)
			keys[b]++
			bytes[b] += size[i].Val()
		}
	}
	if err := scanErr(); err != nil {
		return err
	}
	w.Threshold = -1
	var cumK, cumB int64
	over := false // a bin overflowed the budget: it and every colder one are cold
	for b := 0; b < hotBins; b++ {
		w.CacheKeys += keys[b]
		w.CacheBytes += bytes[b]
		if keys[b] == 0 || over {
			continue
		}
		if cumB+bytes[b] > w.Budget {
			over = true
			continue
		}
		cumK += keys[b]
		cumB += bytes[b]
		w.Threshold = binThreshold(w.Metric, b)
	}
	if w.Threshold < 0 { // not even the hottest bin fits: as many of its keys as fit (the cap)
		for b := 0; b < hotBins; b++ {
			if keys[b] > 0 {
				w.Threshold, cumK, cumB = binThreshold(w.Metric, b), keys[b], bytes[b]
				break
			}
		}
	}
	w.HotKeys, w.HotBytes = cumK, cumB
	return nil
}

func metricSuffix(m string) string {
	if m == MetricIdle {
		return "time" // OBJECT IDLETIME
	}
	return "" // OBJECT FREQ
}

// binOf is the histogram rank of a hotness value of metric.
func binOf(metric string, v int64) int {
	if metric == MetricFreq {
		return freqBin(v)
	}
	return idleBin(v)
}

// binThreshold is the threshold (state.Warm.Threshold) that makes bin b
// the coldest hot one.
func binThreshold(metric string, b int) int64 {
	if metric == MetricFreq {
		return int64(255 - b)
	}
	return idleBinMax(b)
}

// hotNow reports whether a cache key whose hotness reads v at time at is
// hot by w (contract 2).
func hotNow(w *state.Warm, v int64, at time.Time) bool {
	if w.Policy != config.CopyHot || w.Threshold < 0 {
		return false
	}
	if w.Metric == MetricFreq {
		return v >= w.Threshold
	}
	// whole seconds, rounded up: a key at the threshold at the selection
	// is never read colder than it (one bin-second colder may pass: the
	// budget's cap, warmFilter, keeps the total within the budget)
	return v <= w.Threshold+int64(math.Ceil(at.Sub(w.SelectedAt).Seconds()))
}

// Warmed returns the lookup verify judges a missing cache key by
// (contract 5): whether this migration journaled the key, i.e. wrote it
// (or deleted it) on the target — warmed by the backfill, or mirrored as a
// live write. A missing key it never journaled was left on legacy by the
// copy policy: not warmed. The journal is loaded into a set of 64-bit
// hashes (ownSet: 10 to 20 bytes a key), bounded by the keys warmed, not
// by the cache; a hash collision would report a not-warmed key as missing,
// never the reverse.
func Warmed(sd *state.Dir, bucket string) (func(key string) bool, error) {
	s := newOwnSet()
	if err := sd.ReadJournal(bucket, func(k string) error { s.add(k); return nil }); err != nil {
		return nil, err
	}
	return s.has, nil
}

// hotnessCmd is the command that reads a key's hotness by metric
// (OBJECT IDLETIME or OBJECT FREQ); it does not touch the key.
func hotnessCmd(metric, key string) []any {
	return []any{"object", metric + metricSuffix(metric), key}
}

// hotness reads the hotness of keys on legacy, under the ops budget, in
// one pipeline; ok[i] is false for a key gone since the SCAN.
func hotness(ctx context.Context, legacy *redis.Client, o Options, metric string, keys []string) (vals []int64, ok []bool, err error) {
	if err := waitN(ctx, o.limiter(), len(keys)); err != nil {
		return nil, nil, err
	}
	cmds := make([]*redis.Cmd, len(keys))
	err = o.Retry.Do(ctx, func() error {
		_, err := legacy.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				cmds[i] = p.Do(ctx, hotnessCmd(metric, k)...)
			}
			return nil
		})
		if err != nil && !isNil(err) && !isReplyErr(err) {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, nil, redisconn.Explain(err, "legacy", legacy.Options().Addr)
	}
	vals, ok = make([]int64, len(keys)), make([]bool, len(keys))
	for i, c := range cmds {
		v, err := c.Int64()
		switch {
		case isNil(err):
		case err != nil:
			return nil, nil, explainObject(err, legacy, metric)
		default:
			vals[i], ok[i] = v, true
		}
	}
	return vals, ok, nil
}

// warmFilter keeps the keys the backfill (or a rescan) marks: every key of
// another bucket, and the cache keys w warms (contract 2); buckets[i] is
// the bucket keys[i] routes to. It returns how many cache keys it left on
// legacy. With room (the backfill), a hot key is kept only while its
// MEMORY USAGE fits what is left of the budget, which it takes from room
// (one more pipelined command per hot key): keys used during the backfill,
// hot too, never take the warmed bytes beyond the budget.
func warmFilter(ctx context.Context, legacy *redis.Client, o Options, w *state.Warm, keys, buckets []string, room *int64) (keep []bool, left int64, err error) {
	keep = make([]bool, len(keys))
	var cache []string
	var idx []int
	for i := range keys {
		if buckets[i] != warmBucket {
			keep[i] = true
			continue
		}
		if w.Policy == config.CopyHot && w.Threshold >= 0 {
			cache = append(cache, keys[i])
			idx = append(idx, i)
		}
	}
	if len(cache) > 0 {
		vals, ok, err := hotness(ctx, legacy, o, w.Metric, cache)
		if err != nil {
			return nil, 0, err
		}
		now := time.Now()
		var hot []int // of idx
		for j, i := range idx {
			// a key gone since the SCAN is marked: the copier reads it
			// absent and counts it gone
			keep[i] = !ok[j]
			if ok[j] && hotNow(w, vals[j], now) {
				keep[i] = room == nil
				hot = append(hot, j)
			}
		}
		if room != nil && len(hot) > 0 {
			sizes, err := memoryUsage(ctx, legacy, o, cache, hot)
			if err != nil {
				return nil, 0, err
			}
			for n, j := range hot {
				if sizes[n] <= *room {
					*room -= sizes[n]
					keep[idx[j]] = true
				}
			}
		}
	}
	for i := range keys {
		if !keep[i] {
			left++
		}
	}
	return keep, left, nil
}

// memoryUsage is MEMORY USAGE of keys[at[i]] on legacy, under the ops
// budget, in one pipeline (0 for a key gone).
func memoryUsage(ctx context.Context, legacy *redis.Client, o Options, keys []string, at []int) ([]int64, error) {
	if err := waitN(ctx, o.limiter(), len(at)); err != nil {
		return nil, err
	}
	cmds := make([]*redis.IntCmd, len(at))
	err := o.Retry.Do(ctx, func() error {
		_, err := legacy.Pipelined(ctx, func(p redis.Pipeliner) error {
			for n, j := range at {
				cmds[n] = p.MemoryUsage(ctx, keys[j])
			}
			return nil
		})
		if err != nil && !isNil(err) && !isReplyErr(err) {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, redisconn.Explain(err, "legacy", legacy.Options().Addr)
	}
	out := make([]int64, len(at))
	for n, c := range cmds {
		if v, err := c.Result(); err == nil {
			out[n] = v
		} else if !isNil(err) {
			return nil, redisconn.Explain(err, "legacy", legacy.Options().Addr)
		}
	}
	return out, nil
}

func isNil(err error) bool { return errors.Is(err, redis.Nil) }

// isReplyErr reports whether err is a server's error reply (one command's,
// read from its own Cmd), not a connection failure.
func isReplyErr(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// explainObject explains an OBJECT error: an ACL refusal names the command
// to grant; an IDLETIME refused under an LFU policy (or FREQ under another)
// means legacy's maxmemory-policy changed since the selection.
func explainObject(err error, legacy *redis.Client, metric string) error {
	msg := err.Error()
	addr := legacy.Options().Addr
	if strings.Contains(msg, "maxmemory policy") || strings.Contains(msg, "LFU") {
		return fmt.Errorf("legacy %s: OBJECT %s%s: %s: legacy's maxmemory-policy changed since the cache's hot keys were selected (by %s); set it back, or roll the cache back and migrate again (targets.cache.copy: hot)",
			addr, strings.ToUpper(metric), strings.ToUpper(metricSuffix(metric)), msg, metric)
	}
	return redisconn.Explain(err, "legacy", addr)
}

// warmRescan is warmFilter for a rescan (contract 4): it returns the keys
// to mark, in place.
func (r *run) warmRescan(ctx context.Context, keys, buckets []string) ([]string, error) {
	if r.warm == nil || len(keys) == 0 {
		return keys, nil
	}
	keep, _, err := warmFilter(ctx, r.legacy, r.o, r.warm, keys, buckets, nil)
	if err != nil {
		return nil, err
	}
	out := keys[:0]
	for i, k := range keys {
		if keep[i] {
			out = append(out, k)
		}
	}
	return out, nil
}
