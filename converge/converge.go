// Package converge is an independent comparison of legacy with its targets,
// key by key and both ways, for the live phase's tests and for rehearse: it
// shares no code with verify or migrate, so that neither can pass because
// the other overlooked something.
//
// A key's state, as compared, is its type, DEBUG DIGEST-VALUE (independent
// of the encoding) and absolute expiry (PEXPIRETIME); a key whose PTTL is -2
// is absent (a key expired but not reclaimed still has a digest). Every
// server must allow DEBUG (enable-debug-command yes, as the topology helper
// and rehearse's servers do).
//
// Guarantees and ordering:
//   - Both ways: every legacy key (Skip apart) is checked against every
//     target, then every key of every target (every master of a cluster) is
//     checked the same way; so a key on a target that legacy does not have,
//     or routes elsewhere, is found as well as a key missing from its
//     target.
//   - A key is different when its bucket's target lacks it or holds another
//     type, value or expiry (beyond Slack), or when a target of another
//     bucket holds it.
//   - A difference must hold for Rounds checks, Interval apart, to be
//     reported: a key expiring at the comparison's instant converges. The
//     comparison is meant to run once the writes to legacy have stopped and
//     the mirror has caught up; under live writes it reports keys that kept
//     differing, not a snapshot.
//   - Memory: the keys are streamed (SCAN pages of Batch); only differing
//     keys are kept, at most MaxKept (the rest are counted in Dropped and
//     are differences too).
package converge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options configure Compare.
type Options struct {
	Legacy redis.UniversalClient // a standalone legacy (*redis.Client)
	// Targets are the targets by bucket (standalone, Sentinel failover or
	// cluster clients).
	Targets map[string]redis.UniversalClient
	// Route is the bucket of a legacy key of type typ, or "" when the key
	// is not migrated (it must then be on no target).
	Route func(key, typ string) string
	// Skip leaves keys out on both sides (redisplit's own keys: lease and
	// markers on legacy, the reverse mirror's markers on targets); nil
	// skips none.
	Skip func(key string) bool
	// Rounds is how many checks a difference must survive (default 5),
	// Interval apart (default 1 s).
	Rounds   int
	Interval time.Duration
	// Slack is the expiry difference tolerated (default 1 s).
	Slack time.Duration
	// Batch is the keys per SCAN page and pipeline (default 500).
	Batch int
	// MaxKept bounds the differing keys kept and re-checked (default
	// 10000).
	MaxKept int
}

// Difference is one key that kept differing.
type Difference struct {
	Key string `json:"key"`
	// Bucket is the target where the difference is: the key's bucket, or
	// the bucket of the target that holds a key it should not.
	Bucket string `json:"bucket"`
	Detail string `json:"detail"`
}

// String is `"key": detail`.
func (d Difference) String() string { return fmt.Sprintf("%q: %s", d.Key, d.Detail) }

// Result is the outcome of Compare.
type Result struct {
	LegacyKeys int64 `json:"legacy_keys"` // legacy keys checked (Skip apart)
	TargetKeys int64 `json:"target_keys"` // target keys checked
	// Routed counts, per bucket with a target, the legacy keys routed to
	// it; OnTarget the keys found on each target.
	Routed   map[string]int64 `json:"routed"`
	OnTarget map[string]int64 `json:"on_target"`
	// Differences are sorted by key.
	Differences []Difference `json:"differences,omitempty"`
	// Dropped differing keys were beyond MaxKept: not re-checked, not in
	// Differences, but differences all the same.
	Dropped int64 `json:"dropped,omitempty"`
}

// OK reports whether no difference was found.
func (r *Result) OK() bool { return len(r.Differences) == 0 && r.Dropped == 0 }

// Strings are the differences as `"key": detail`, sorted.
func (r *Result) Strings() []string {
	out := make([]string, len(r.Differences))
	for i, d := range r.Differences {
		out[i] = d.String()
	}
	sort.Strings(out)
	return out
}

// ByBucket counts the differences per bucket (Dropped apart).
func (r *Result) ByBucket() map[string]int {
	m := map[string]int{}
	for _, d := range r.Differences {
		m[d.Bucket]++
	}
	return m
}

// Compare compares legacy with its targets (see the package comment).
func Compare(ctx context.Context, o Options) (*Result, error) {
	if o.Legacy == nil || o.Route == nil {
		return nil, errors.New("converge: Legacy and Route are required")
	}
	if o.Rounds <= 0 {
		o.Rounds = 5
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Slack <= 0 {
		o.Slack = time.Second
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.MaxKept <= 0 {
		o.MaxKept = 10000
	}
	c := &comparer{o: o, res: &Result{Routed: map[string]int64{}, OnTarget: map[string]int64{}}, diff: map[string]Difference{}}
	for b := range o.Targets {
		c.buckets = append(c.buckets, b)
	}
	slices.Sort(c.buckets)

	// round 1, legacy → targets, then targets → legacy
	err := scanPages(ctx, o.Legacy, o.Batch, func(keys []string) error {
		keys = slices.DeleteFunc(keys, func(k string) bool { return o.Skip != nil && o.Skip(k) })
		c.res.LegacyKeys += int64(len(keys))
		return c.checkAll(ctx, keys, true)
	})
	if err != nil {
		return nil, fmt.Errorf("converge: legacy: %w", err)
	}
	for _, b := range c.buckets {
		err := scanPages(ctx, o.Targets[b], o.Batch, func(keys []string) error {
			keys = slices.DeleteFunc(keys, func(k string) bool { return o.Skip != nil && o.Skip(k) })
			c.res.TargetKeys += int64(len(keys))
			c.res.OnTarget[b] += int64(len(keys))
			return c.checkAll(ctx, keys, false)
		})
		if err != nil {
			return nil, fmt.Errorf("converge: target %s: %w", b, err)
		}
	}
	for round := 1; round < o.Rounds && len(c.diff) > 0; round++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(o.Interval):
		}
		keys := make([]string, 0, len(c.diff))
		for k := range c.diff {
			keys = append(keys, k)
		}
		for i := 0; i < len(keys); i += o.Batch {
			chunk := keys[i:min(len(keys), i+o.Batch)]
			found, _, err := c.check(ctx, chunk)
			if err != nil {
				return nil, err
			}
			for j, k := range chunk {
				if found[j] == nil {
					delete(c.diff, k)
				} else {
					c.diff[k] = *found[j]
				}
			}
		}
	}
	for _, d := range c.diff {
		c.res.Differences = append(c.res.Differences, d)
	}
	sort.Slice(c.res.Differences, func(i, j int) bool { return c.res.Differences[i].Key < c.res.Differences[j].Key })
	return c.res, nil
}

type comparer struct {
	o       Options
	buckets []string
	res     *Result
	diff    map[string]Difference
}

// checkAll checks keys in the first round and keeps the differences.
func (c *comparer) checkAll(ctx context.Context, keys []string, fromLegacy bool) error {
	found, wants, err := c.check(ctx, keys)
	if err != nil {
		return err
	}
	for i, d := range found {
		if _, ok := c.o.Targets[wants[i]]; ok && fromLegacy {
			c.res.Routed[wants[i]]++
		}
		if d == nil {
			continue
		}
		if _, kept := c.diff[keys[i]]; !kept && len(c.diff) >= c.o.MaxKept {
			c.res.Dropped++
			continue
		}
		c.diff[keys[i]] = *d
	}
	return nil
}

// keyState is a key as compared; val "" means absent.
type keyState struct {
	val string // "<type>:<digest>"
	exp int64  // PEXPIRETIME, ms (-1: none)
	err error
}

// check returns, per key, its difference or nil, and the bucket legacy
// routes it to ("" when legacy has none or migrates it nowhere).
func (c *comparer) check(ctx context.Context, keys []string) ([]*Difference, []string, error) {
	if len(keys) == 0 {
		return nil, nil, nil
	}
	leg, err := read(ctx, c.o.Legacy, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("converge: legacy: %w", err)
	}
	on := map[string][]keyState{}
	for _, b := range c.buckets {
		if on[b], err = read(ctx, c.o.Targets[b], keys); err != nil {
			return nil, nil, fmt.Errorf("converge: target %s: %w", b, err)
		}
	}
	out := make([]*Difference, len(keys))
	wants := make([]string, len(keys))
	for i, k := range keys {
		out[i], wants[i] = c.compare(k, leg[i], func(b string) keyState { return on[b][i] })
	}
	return out, wants, nil
}

// compare is the rule: k on legacy (l) against every target.
func (c *comparer) compare(k string, l keyState, on func(b string) keyState) (_ *Difference, want string) {
	if l.err != nil {
		return &Difference{Key: k, Detail: fmt.Sprintf("legacy: %v", l.err)}, ""
	}
	if l.val != "" {
		typ, _, _ := strings.Cut(l.val, ":")
		want = c.o.Route(k, typ)
	}
	diff := func(b, f string, args ...any) (*Difference, string) {
		return &Difference{Key: k, Bucket: b, Detail: fmt.Sprintf(f, args...)}, want
	}
	slack := c.o.Slack.Milliseconds()
	for _, b := range c.buckets {
		t := on(b)
		switch {
		case t.err != nil:
			return diff(b, "target %s: %v", b, t.err)
		case b != want && t.val != "":
			if want == "" {
				if l.val == "" {
					return diff(b, "on target %s, but legacy has none", b)
				}
				return diff(b, "on target %s, but legacy migrates it nowhere", b)
			}
			return diff(b, "on target %s, but legacy routes it to %s", b, want)
		case b != want:
		case t.val == "":
			return diff(b, "missing on target %s", b)
		case t.val != l.val:
			return diff(b, "value on %s: legacy %.80s, target %.80s", b, l.val, t.val)
		case l.exp-t.exp > slack || t.exp-l.exp > slack:
			return diff(b, "expiry on %s: legacy %d, target %d", b, l.exp, t.exp)
		}
	}
	return nil, want
}

// read reads keys' states from c, pipelined (per master on a cluster).
func read(ctx context.Context, c redis.UniversalClient, keys []string) ([]keyState, error) {
	out := make([]keyState, len(keys))
	byNode := map[*redis.Client][]int{}
	if cc, ok := c.(*redis.ClusterClient); ok {
		for i, k := range keys {
			n, err := cc.MasterForKey(ctx, k)
			if err != nil {
				return nil, err
			}
			byNode[n] = append(byNode[n], i)
		}
	} else {
		all := make([]int, len(keys))
		for i := range all {
			all[i] = i
		}
		return out, readOn(ctx, c, keys, all, out)
	}
	for n, idx := range byNode {
		if err := readOn(ctx, n, keys, idx, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readOn reads keys[idx...] from one server into out.
func readOn(ctx context.Context, c redis.Cmdable, keys []string, idx []int, out []keyState) error {
	type cmds struct {
		pttl *redis.DurationCmd
		typ  *redis.StatusCmd
		dig  *redis.Cmd
		exp  *redis.DurationCmd
	}
	p := c.Pipeline()
	cs := make([]cmds, len(idx))
	for j, i := range idx {
		k := keys[i]
		cs[j] = cmds{p.PTTL(ctx, k), p.Type(ctx, k), p.Do(ctx, "debug", "digest-value", k), p.PExpireTime(ctx, k)}
	}
	if _, err := p.Exec(ctx); err != nil && ctx.Err() != nil {
		return err
	}
	for j, i := range idx {
		x := cs[j]
		pttl, err := x.pttl.Result()
		if err != nil {
			out[i].err = err
			continue
		}
		if pttl == -2 { // go-redis passes the special values through as they are
			continue
		}
		typ, err := x.typ.Result()
		if err != nil {
			out[i].err = err
			continue
		}
		if typ == "none" {
			continue
		}
		d, err := x.dig.Slice()
		if err != nil {
			out[i].err = err
			continue
		}
		exp, err := x.exp.Result()
		if err != nil {
			out[i].err = err
			continue
		}
		out[i] = keyState{val: fmt.Sprintf("%s:%v", typ, d), exp: exp.Milliseconds()}
	}
	return nil
}

// scanPages SCANs every key of c (every master of a cluster) and calls fn
// with each page.
func scanPages(ctx context.Context, c redis.UniversalClient, batch int, fn func(keys []string) error) error {
	one := func(ctx context.Context, n *redis.Client) error {
		var cursor uint64
		for {
			keys, next, err := n.Scan(ctx, cursor, "*", int64(batch)).Result()
			if err != nil {
				return err
			}
			if err := fn(keys); err != nil {
				return err
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	switch x := c.(type) {
	case *redis.ClusterClient:
		var mu sync.Mutex
		var masters []*redis.Client
		if err := x.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			mu.Lock() // ForEachMaster runs in parallel: collect, then walk one by one
			defer mu.Unlock()
			masters = append(masters, n)
			return nil
		}); err != nil {
			return err
		}
		for _, n := range masters {
			if err := one(ctx, n); err != nil {
				return err
			}
		}
		return nil
	case *redis.Client:
		return one(ctx, x)
	}
	return fmt.Errorf("converge: cannot SCAN a %T", c)
}
