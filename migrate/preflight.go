package migrate

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/layout"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/safety"
	"github.com/redisplit/redisplit/scan"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
)

// maxPatterns bounds the unknown-pattern table of the pre-pass.
const maxPatterns = 1000

// prepass SCANs legacy once before anything is written: it counts the keys
// and bytes of every bucket (the summary, the progress total) and finds the
// keys no rule routes. It returns a refusal (unknown: block with unknown
// keys) as its first result so the caller can complete the summary first;
// the last result is a runtime error. Outside --dry-run and --dual-write it
// also keeps its pages in a spill (scanpages.go) for the backfill from
// cursor 0 to copy from, so that the run SCANs legacy once; the caller
// removes it (nil when there is none).
func prepass(ctx context.Context, legacy *redis.Client, o Options, targets map[string]*store.Redis, res *Result) (refusal error, sp *spill, err error) {
	rt := router{c: o.Classifier, unknown: o.Config.Unknown}
	lim := o.limiter()
	pats := map[string]*Pattern{}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if !o.DryRun && !o.DualWrite && o.State != nil && len(targets) > 0 {
		if sp, err = newSpill(o.State.Path()); err != nil {
			return nil, nil, err
		}
	}
	defer func() {
		if err != nil {
			sp.remove()
			sp = nil
		}
	}()
	pages, scanErr := scanPages(ctx, legacy, 0, o)
	for pg := range pages {
		keys := pg.keys
		types, err := legacyTypes(ctx, legacy, o, keys)
		if err != nil {
			return nil, nil, err
		}
		if o.Classifier.NeedsType() {
			sp.add(keys, types, pg.next)
		} else {
			sp.add(keys, nil, pg.next)
		}
		var sized []string
		var sizedB []*BucketResult
		for i, k := range keys {
			b, unknown := rt.route(k, types[i])
			res.LegacyKeys++
			if unknown {
				res.UnknownKeys++
				p := scan.Normalize(k).Text
				if pp := pats[p]; pp != nil {
					pp.Keys++
				} else if len(pats) < maxPatterns {
					pats[p] = &Pattern{Pattern: p, Keys: 1, Sample: k}
				}
			}
			if b == "" {
				continue
			}
			br := res.Bucket(b)
			br.PlannedKeys++
			res.Queue.collect(b, k, types[i])
			if targets[b] != nil && (o.DryRun || sampled(k)) {
				sized = append(sized, k)
				sizedB = append(sizedB, br)
			}
		}
		if err := res.Queue.flush(ctx, legacy); err != nil {
			return nil, nil, err
		}
		if len(sized) > 0 {
			if err := waitN(ctx, lim, len(sized)); err != nil {
				return nil, nil, err
			}
			cmds, err := legacy.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range sized {
					p.MemoryUsage(ctx, k, 0) // SAMPLES 0: exact, the measure scan reports
				}
				return nil
			})
			if err != nil && err != redis.Nil {
				return nil, nil, redisconn.Explain(err, "legacy", legacy.Options().Addr)
			}
			w := int64(1)
			if !o.DryRun {
				w = sampleEvery
			}
			for i, c := range cmds {
				sizedB[i].PlannedBytes += w * c.(*redis.IntCmd).Val()
			}
		}
	}
	if err := scanErr(); err != nil {
		return nil, nil, err
	}
	if err := sp.finish(); err != nil {
		sp.remove() // the backfill SCANs legacy instead
		sp = nil
	}
	for _, p := range pats {
		res.UnknownPats = append(res.UnknownPats, *p)
	}
	sort.Slice(res.UnknownPats, func(i, j int) bool {
		a, b := res.UnknownPats[i], res.UnknownPats[j]
		return a.Keys > b.Keys || a.Keys == b.Keys && a.Pattern < b.Pattern
	})
	if res.UnknownKeys > 0 && (o.Config.Unknown == "" || o.Config.Unknown == "block") {
		var list []string
		for i, p := range res.UnknownPats {
			if i == 10 {
				list = append(list, fmt.Sprintf("... %d more patterns", len(res.UnknownPats)-10))
				break
			}
			list = append(list, fmt.Sprintf("%s (%d keys, e.g. %q)", p.Pattern, p.Keys, p.Sample))
		}
		return safety.Refusef("add rules for them to the plan (redisplit scan proposes some), or set unknown: skip or unknown: <bucket>",
			"%d keys match no rule and unknown is block: %s", res.UnknownKeys, strings.Join(list, "; ")), sp, nil
	}
	return nil, sp, nil
}

// sampleEvery: outside --dry-run, the pre-pass measures MEMORY USAGE of one
// key in sampleEvery (chosen by a hash of the name) and extrapolates, to
// spare legacy; --dry-run measures every key.
const sampleEvery = 32

func sampled(key string) bool {
	h := fnv.New32a()
	h.Write([]byte(key))
	return h.Sum32()%sampleEvery == 0
}

// TypeRouter is what TypesOf needs of the plan; *classify.Classifier is one.
type TypeRouter interface {
	NeedsType() bool
	ClassifyName(key string) (classify.Match, bool)
}

// TypesOf returns the types of the keys whose route depends on their type
// (a type-restricted rule may match the name before any other rule does),
// with one pipelined TYPE on c for those keys only ("none" for a key gone
// meanwhile); the others get "" and route by name exactly as they would
// with their type (classify.ClassifyName). wait, when not nil, takes the
// ops budget for the TYPE commands first. An error is c's, for the caller
// to explain with c's role.
func TypesOf(ctx context.Context, c *redis.Client, r TypeRouter, keys []string, wait func(n int) error) ([]string, error) {
	out := make([]string, len(keys))
	if !r.NeedsType() || len(keys) == 0 {
		return out, nil
	}
	var need []int
	for i, k := range keys {
		if _, ok := r.ClassifyName(k); !ok {
			need = append(need, i)
		}
	}
	if len(need) == 0 {
		return out, nil
	}
	if wait != nil {
		if err := wait(len(need)); err != nil {
			return nil, err
		}
	}
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, i := range need {
			p.Type(ctx, keys[i])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for j, i := range need {
		out[i] = cmds[j].(*redis.StatusCmd).Val()
	}
	return out, nil
}

// legacyTypes is TypesOf on legacy, under the run's ops budget.
func legacyTypes(ctx context.Context, legacy *redis.Client, o Options, keys []string) ([]string, error) {
	types, err := TypesOf(ctx, legacy, o.Classifier, keys, func(n int) error { return waitN(ctx, o.limiter(), n) })
	if err != nil {
		return nil, redisconn.Explain(err, "legacy", legacy.Options().Addr)
	}
	return types, nil
}

func dropOwn(keys []string) []string {
	out := keys[:0]
	for _, k := range keys {
		if !strings.HasPrefix(k, OwnPrefix) {
			out = append(out, k)
		}
	}
	return out
}

// cacheWarning is migrate's warning, if any, for a cache target with the
// given maxmemory-policy: layout's policy rule (layout.Policy) as judge
// words it for any bucket.
func cacheWarning(policy string) string {
	if v := layout.Policy("cache", policy); v.Status == layout.StatusFail || v.Status == layout.StatusWarn {
		return warningOf(v, "")
	}
	return ""
}

// maxForeignSamples bounds the non-empty check's sample list; maxForeign
// bounds its count (the message then says "at least").
const (
	maxForeignSamples = 5
	maxForeign        = 10000
)

// refusal is one reason to refuse, with its fix.
type refusal struct{ reason, fix string }

// checkTargets reads every target's facts (version, policy) into the result
// and runs the bucket's profile checks on it (layout.Check: the same
// implementation as `redisplit targets check`), with the bucket's bytes
// (headroom) and the bytes still to copy (room). It refuses (every reason
// at once, each with its fix) on every verdict that blocks:
//   - a bucket other than cache has a target that evicts, unless
//     o.AllowEvicting names it (then a warning, and the state records it);
//   - a target whose policy does not evict every key (anything but
//     allkeys-*) has less room (maxmemory − used_memory on each master)
//     than its share of the bucket's remaining bytes × layout.RoomMargin;
//
// and when a bucket that has not started yet has a target already holding
// keys the plan routes to it (unless o.AllowNonEmpty). Every other failed
// or warned check (persistence, maxmemory unset, replicas, sentinels,
// cluster coverage, version, keyspace notifications...) is a warning of the
// bucket: `targets check` fails on them, migrate goes on.
func checkTargets(ctx context.Context, o Options, st *state.State, targets map[string]*store.Redis, res *Result) error {
	rt := router{c: o.Classifier, unknown: o.Config.Unknown}
	allowEvicting := map[string]bool{}
	for _, b := range o.AllowEvicting {
		allowEvicting[b] = true
	}
	legacyVersion := legacyVersionOf(ctx, o.Config.Legacy)
	var refusals []refusal
	for _, b := range sortedKeys(targets) {
		t := targets[b]
		br := res.Bucket(b)
		info, err := t.Info(ctx)
		if err != nil {
			return err
		}
		br.Version, br.Policy = info.Version, info.MaxMemoryPolicy
		sb := st.Buckets[b]
		resumed := sb != nil && !sb.StartedAt.IsZero() && sb.Phase != state.RolledBack
		p := layout.Profile{Bucket: b, DataBytes: br.PlannedBytes, LegacyVersion: legacyVersion, Writing: toWrite(br, sb, resumed)}
		vs := withFacts(layout.Check(ctx, t, o.Config.Targets[b], p), p, info)
		j := judge(b, t, o.Config.Targets[b], info.MaxMemoryPolicy, vs, allowEvicting[b])
		refusals = append(refusals, j.refusals...)
		br.Warnings = append(br.Warnings, j.warnings...)
		br.AllowEvicting = j.acceptedEvicting
		if resumed {
			br.Resumed = true
			continue // its own keys are there: resuming
		}
		// With --allow-nonempty every routed key on the target now is
		// foreign (nothing of this bucket was written yet): all of them go
		// on the refusal list before the first write, so the copy never
		// overwrites them, verify reports them as foreign (also those
		// legacy does not have) and rollback leaves them.
		var foreign func(keys []string) error
		if o.AllowNonEmpty && !o.DryRun {
			j, err := o.State.OpenRefused(b)
			if err != nil {
				return err
			}
			defer j.Close()
			foreign = func(keys []string) error { _, err := j.Append(keys...); return err }
		}
		n, samples, err := routedOnTarget(ctx, t, rt, o, b, foreign)
		if err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		atLeast := ""
		if n >= maxForeign {
			atLeast = "at least "
		}
		if o.AllowNonEmpty {
			br.Warnings = append(br.Warnings, fmt.Sprintf("target already holds %s%d keys the plan routes to %s (e.g. %s); --allow-nonempty: they will not be overwritten and are counted as refused", atLeast, n, b, quoteList(samples)))
			continue
		}
		refusals = append(refusals, refusal{
			reason: fmt.Sprintf("target %s (%s) already holds %s%d keys the plan routes to it (e.g. %s)", b, t.Describe(), atLeast, n, quoteList(samples)),
			fix:    "point the bucket at an empty target, or pass --allow-nonempty to copy around those keys (redisplit never overwrites a key it did not write)",
		})
	}
	if len(refusals) > 0 {
		parts := make([]string, len(refusals))
		for i, r := range refusals {
			parts[i] = r.reason + " (" + r.fix + ")"
		}
		return &safety.Refusal{Reason: strings.Join(parts, "; ")}
	}
	return nil
}

// toWrite is the bytes the bucket still has to copy: its bytes on legacy,
// scaled by the share of keys not yet counted when resuming.
func toWrite(br *BucketResult, sb *state.Bucket, resumed bool) int64 {
	need := float64(br.PlannedBytes)
	if br.Warm != nil { // the cache is warmed: room for its hot keys only (warm.go)
		need = min(need, float64(br.Warm.HotBytes))
	}
	if resumed && br.PlannedKeys > 0 {
		done := sb.KeysCopied + sb.KeysExpired + sb.KeysGone + sb.KeysRefused
		need *= float64(max(0, br.PlannedKeys-done)) / float64(br.PlannedKeys)
	}
	return int64(need)
}

// withFacts adds the two blocking checks, judged on store.Info's facts
// (INFO of every master, which migrate needs anyway), when layout.Check
// could not run them on the servers one by one (a server it could not
// read, CLUSTER NODES refused to redisplit's user): a refusal never
// depends on the extra permissions of `targets check`.
func withFacts(vs []layout.Verdict, p layout.Profile, info store.Info) []layout.Verdict {
	var policy, room bool
	for _, v := range vs {
		policy = policy || v.Check == layout.CheckPolicy
		room = room || v.Check == layout.CheckRoom
	}
	if !policy {
		vs = append(vs, layout.Policy(p.Bucket, info.MaxMemoryPolicy))
	}
	if r, ok := layout.Room(p.Bucket, info.MaxMemoryPolicy, info.MaxMemory, info.UsedMemory, p.Writing); ok && !room {
		vs = append(vs, r)
	}
	return vs
}

// judgement is what migrate makes of one target's verdicts.
type judgement struct {
	refusals []refusal
	warnings []string
	// acceptedEvicting: the policy blocked and --allow-evicting-target let
	// the bucket through.
	acceptedEvicting bool
}

// judge turns one target's verdicts (policy: its maxmemory-policy, for the
// messages) into migrate's refusals (the verdicts that block; an evicting
// policy not when allowEvicting) and warnings (every other failure or
// warning). A check blocking on several servers of the target is one
// refusal naming them; one finding on several servers is one warning
// naming them.
func judge(b string, t *store.Redis, cfg config.Target, policy string, vs []layout.Verdict, allowEvicting bool) judgement {
	var j judgement
	blocked := map[string]int{} // check -> index in j.refusals
	type warned struct {
		v     layout.Verdict
		nodes []string
	}
	var ws []*warned
	byFinding := map[[3]string]*warned{}
	for _, v := range vs {
		where := ""
		if v.Node != "" && cfg.Kind != config.KindStandalone {
			where = " (" + v.Node + ")"
		}
		switch {
		case v.Blocks && v.Check == layout.CheckPolicy && allowEvicting:
			if !j.acceptedEvicting {
				j.acceptedEvicting = true
				j.warnings = append(j.warnings, fmt.Sprintf("%s target has maxmemory-policy %s: it may evict %s keys when full (--allow-evicting-target %s: accepted, recorded in the state)", b, policy, b, b))
			}
		case v.Blocks:
			if i, seen := blocked[v.Check]; seen {
				j.refusals[i].reason += ", also on " + v.Node
				continue
			}
			r := refusal{reason: fmt.Sprintf("target %s (%s)%s has %s", b, t.Describe(), where, v.Found), fix: v.Fix}
			if v.Check == layout.CheckPolicy {
				r.reason = fmt.Sprintf("target %s (%s)%s has maxmemory-policy %s: it evicts %s keys when full", b, t.Describe(), where, policy, b)
				r.fix += fmt.Sprintf("; or pass --allow-evicting-target %s to accept losing keys", b)
			}
			blocked[v.Check] = len(j.refusals)
			j.refusals = append(j.refusals, r)
		case v.Status == layout.StatusFail || v.Status == layout.StatusWarn:
			k := [3]string{v.Check, v.Found, v.Fix}
			if w := byFinding[k]; w != nil {
				w.nodes = append(w.nodes, v.Node)
				continue
			}
			w := &warned{v: v}
			if where != "" {
				w.nodes = []string{v.Node}
			}
			byFinding[k] = w
			ws = append(ws, w)
		}
	}
	for _, w := range ws {
		where := ""
		if len(w.nodes) > 0 {
			where = " (" + strings.Join(w.nodes, ", ") + ")"
		}
		j.warnings = append(j.warnings, warningOf(w.v, where))
	}
	return j
}

// warningOf is a verdict as one of migrate's warnings: the check, where,
// the finding and the fix.
func warningOf(v layout.Verdict, where string) string {
	w := v.Check + where + ": " + v.Found
	if v.Fix != "" {
		w += " -> " + v.Fix
	}
	return w
}

// legacyVersionOf reads legacy's redis_version for the version check ("" when
// it cannot: the check then says so, and the copy falls back by itself).
func legacyVersionOf(ctx context.Context, e config.Endpoint) string {
	c, err := redisconn.Legacy(ctx, e)
	if err != nil {
		return ""
	}
	defer c.Close()
	s, err := c.Info(ctx, "server").Result()
	if err != nil {
		return ""
	}
	return store.ParseInfo(s)["redis_version"]
}

// routedOnTarget counts the keys on t that the plan routes to bucket (up to
// maxForeign). With foreign set it scans the whole target and passes every
// routed key to it, one page at a time.
func routedOnTarget(ctx context.Context, t *store.Redis, rt router, o Options, bucket string, foreign func(keys []string) error) (int64, []string, error) {
	var n int64
	var samples []string
	var mu sync.Mutex // masters are scanned concurrently
	err := t.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, "", 1000).Result()
			if err != nil {
				return redisconn.Explain(err, "target "+bucket, c.Options().Addr)
			}
			keys = dropOwn(keys)
			types, err := TypesOf(ctx, c, o.Classifier, keys, nil)
			if err != nil {
				return redisconn.Explain(err, "target "+bucket, c.Options().Addr)
			}
			mu.Lock()
			var routed []string
			for i, k := range keys {
				if b, _ := rt.route(k, types[i]); b == bucket {
					n++
					routed = append(routed, k)
					if len(samples) < maxForeignSamples {
						samples = append(samples, k)
					}
				}
			}
			enough := n >= maxForeign && foreign == nil
			var ferr error
			if foreign != nil && len(routed) > 0 {
				ferr = foreign(routed)
			}
			mu.Unlock()
			if ferr != nil {
				return ferr
			}
			cursor = next
			if cursor == 0 || enough {
				break
			}
		}
		return nil
	})
	return n, samples, err
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// limiter returns the run's legacy ops limiter (nil = unlimited).
func (o *Options) limiter() *rate.Limiter {
	if o.lim == nil && o.MaxOps > 0 {
		o.lim = rate.NewLimiter(rate.Limit(o.MaxOps), max(o.MaxOps/10, o.ScanCount, o.Batch, 1))
	}
	return o.lim
}

func waitN(ctx context.Context, l *rate.Limiter, n int) error {
	if l == nil {
		return ctx.Err()
	}
	for n > 0 {
		k := min(n, l.Burst())
		if err := l.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
