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
// the second result is a runtime error.
func prepass(ctx context.Context, legacy *redis.Client, o Options, targets map[string]*store.Redis, res *Result) (refusal error, err error) {
	rt := router{c: o.Classifier, unknown: o.Config.Unknown}
	lim := o.limiter()
	pats := map[string]*Pattern{}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	pages, scanErr := scanPages(ctx, legacy, 0, o)
	for pg := range pages {
		keys := pg.keys
		types, err := legacyTypes(ctx, legacy, o, keys)
		if err != nil {
			return nil, err
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
			if targets[b] != nil && (o.DryRun || sampled(k)) {
				sized = append(sized, k)
				sizedB = append(sizedB, br)
			}
		}
		if len(sized) > 0 {
			if err := waitN(ctx, lim, len(sized)); err != nil {
				return nil, err
			}
			cmds, err := legacy.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range sized {
					p.MemoryUsage(ctx, k, 0) // SAMPLES 0: exact, the measure scan reports
				}
				return nil
			})
			if err != nil && err != redis.Nil {
				return nil, redisconn.Explain(err, "legacy", legacy.Options().Addr)
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
		return nil, err
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
			"%d keys match no rule and unknown is block: %s", res.UnknownKeys, strings.Join(list, "; ")), nil
	}
	return nil, nil
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

// cacheWarning is the warning, if any, for a cache target with the given
// maxmemory-policy.
func cacheWarning(policy string) string {
	if policy == "noeviction" || strings.HasPrefix(policy, "volatile-") {
		return fmt.Sprintf("cache target has maxmemory-policy %s: when it is full, writes fail (OOM) instead of evicting; allkeys-lru is the usual setting", policy)
	}
	return ""
}

// roomMargin is the headroom asked of a target beyond the bucket's bytes
// (MEMORY USAGE on legacy): the copy's own allocations, fragmentation and
// the estimate's error (sampled outside --dry-run).
const roomMargin = 1.2

// maxForeignSamples bounds the non-empty check's sample list; maxForeign
// bounds its count (the message then says "at least").
const (
	maxForeignSamples = 5
	maxForeign        = 10000
)

// refusal is one reason to refuse, with its fix.
type refusal struct{ reason, fix string }

// checkTargets reads every target's facts (version, policy, memory) into
// the result with warnings, and refuses (every reason at once, each with
// its fix) when:
//   - a bucket other than cache has a target that evicts, unless
//     o.AllowEvicting names it;
//   - a target whose policy does not evict every key (anything but
//     allkeys-*) has less room (maxmemory − used_memory, summed over a
//     cluster's masters) than the bucket's remaining bytes × roomMargin;
//   - a bucket that has not started yet has a target already holding keys
//     the plan routes to it (unless o.AllowNonEmpty).
func checkTargets(ctx context.Context, o Options, st *state.State, targets map[string]*store.Redis, res *Result) error {
	rt := router{c: o.Classifier, unknown: o.Config.Unknown}
	allowEvicting := map[string]bool{}
	for _, b := range o.AllowEvicting {
		allowEvicting[b] = true
	}
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
		switch {
		case !config.MustNotEvict(b):
			if w := cacheWarning(info.MaxMemoryPolicy); w != "" {
				br.Warnings = append(br.Warnings, w)
			}
		case !config.EvictingPolicy(info.MaxMemoryPolicy):
		case allowEvicting[b]:
			br.AllowEvicting = true
			br.Warnings = append(br.Warnings, fmt.Sprintf("%s target has maxmemory-policy %s: it may evict %s keys when full (--allow-evicting-target %s: accepted, recorded in the state)", b, info.MaxMemoryPolicy, b, b))
		default:
			refusals = append(refusals, refusal{
				reason: fmt.Sprintf("target %s (%s) has maxmemory-policy %s: it evicts %s keys when full", b, t.Describe(), info.MaxMemoryPolicy, b),
				fix:    fmt.Sprintf("run CONFIG SET maxmemory-policy noeviction on it (and set it in its config file), or pass --allow-evicting-target %s to accept losing keys", b),
			})
		}
		if r, w := checkRoom(b, t, info, br, sb, resumed); r != nil {
			refusals = append(refusals, *r)
		} else if w != "" {
			br.Warnings = append(br.Warnings, w)
		}
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

// checkRoom compares a target's room with the bytes the bucket still has to
// copy: its bytes on legacy, scaled by the share of keys not yet counted
// when resuming, times roomMargin. A target that evicts every key when full
// (allkeys-*) is warned about; any other is refused.
func checkRoom(b string, t *store.Redis, info store.Info, br *BucketResult, sb *state.Bucket, resumed bool) (*refusal, string) {
	if info.MaxMemory <= 0 {
		return nil, ""
	}
	need := float64(br.PlannedBytes)
	if br.Warm != nil { // the cache is warmed: room for its hot keys only (warm.go)
		need = min(need, float64(br.Warm.HotBytes))
	}
	if resumed && br.PlannedKeys > 0 {
		done := sb.KeysCopied + sb.KeysExpired + sb.KeysGone + sb.KeysRefused
		need *= float64(max(0, br.PlannedKeys-done)) / float64(br.PlannedKeys)
	}
	need *= roomMargin
	left := info.MaxMemory - info.UsedMemory
	if float64(left) >= need {
		return nil, ""
	}
	have := fmt.Sprintf("%s left (maxmemory %s, used_memory %s)", mib(left), mib(info.MaxMemory), mib(info.UsedMemory))
	if left <= 0 {
		have = fmt.Sprintf("no room left (used_memory %s, maxmemory %s)", mib(info.UsedMemory), mib(info.MaxMemory))
	}
	if strings.HasPrefix(info.MaxMemoryPolicy, "allkeys-") {
		return nil, fmt.Sprintf("the bucket needs about %s (MEMORY USAGE on legacy × %.1f) but the target has %s: with maxmemory-policy %s it will evict %s keys from the start", mib(int64(need)), roomMargin, have, info.MaxMemoryPolicy, b)
	}
	return &refusal{
		reason: fmt.Sprintf("target %s (%s) has no room for the bucket: it needs about %s (MEMORY USAGE on legacy × %.1f) and has %s", b, t.Describe(), mib(int64(need)), roomMargin, have),
		fix:    "raise its maxmemory (CONFIG SET maxmemory) or add capacity, then rerun",
	}, ""
}

// mib formats bytes for messages.
func mib(n int64) string {
	if n < 0 {
		return fmt.Sprintf("-%s", mib(-n))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
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
