package rehearse

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/migrate"
	"github.com/redisplit/redisplit/store"
)

// These checks are the rehearsal's own postconditions, independent of the
// commands under test: they read legacy and targets directly, so that a
// rehearsal cannot pass because verify overlooked something.

// keyFacts is what a snapshot remembers of one legacy key.
type keyFacts struct {
	bucket   string
	digest   uint64    // FNV-64a of the DUMP payload
	expireAt time.Time // zero = no TTL
}

// Snapshot is the state of legacy before the migration: every key's bucket,
// payload digest and expiry.
type Snapshot struct {
	Taken    time.Time
	Keys     map[string]keyFacts
	ByBucket map[string]int // keys per bucket; "unknown" for keys no rule routes
	// Expiring counts, per bucket, the keys whose TTL was under 5 minutes:
	// a later count of the bucket may lack them.
	Expiring map[string]int
}

// ownKey reports whether k is one of redisplit's own keys on legacy (its
// lease and catch-up markers), which the legacy checks ignore.
func ownKey(k string) bool { return strings.HasPrefix(k, migrate.OwnPrefix) }

// scanDigests SCANs c and returns, for every key, its type, DUMP digest and
// expiry, with pipelined batches.
func scanDigests(ctx context.Context, c *redis.Client, fn func(k, typ string, digest uint64, expireAt time.Time)) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			p := c.Pipeline()
			types := make([]*redis.StatusCmd, len(keys))
			dumps := make([]*redis.StringCmd, len(keys))
			ttls := make([]*redis.DurationCmd, len(keys))
			for i, k := range keys {
				types[i] = p.Type(ctx, k)
				dumps[i] = p.Dump(ctx, k)
				ttls[i] = p.PTTL(ctx, k)
			}
			_, _ = p.Exec(ctx)
			now := time.Now()
			for i, k := range keys {
				d, err := dumps[i].Result()
				if err == redis.Nil {
					continue // expired or deleted meanwhile
				}
				if err != nil {
					return fmt.Errorf("DUMP %q: %w", k, err)
				}
				h := fnv.New64a()
				h.Write([]byte(d))
				var exp time.Time
				if ttl := ttls[i].Val(); ttl > 0 {
					exp = now.Add(ttl)
				}
				fn(k, types[i].Val(), h.Sum64(), exp)
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// TakeSnapshot records legacy's keys and routes each with router.
func TakeSnapshot(ctx context.Context, legacy *redis.Client, router *classify.Classifier) (*Snapshot, error) {
	s := &Snapshot{Taken: time.Now(), Keys: map[string]keyFacts{}, ByBucket: map[string]int{}, Expiring: map[string]int{}}
	err := scanDigests(ctx, legacy, func(k, typ string, digest uint64, exp time.Time) {
		if ownKey(k) {
			return
		}
		b := string(router.Classify(k, typ).Bucket)
		s.Keys[k] = keyFacts{bucket: b, digest: digest, expireAt: exp}
		s.ByBucket[b]++
		if !exp.IsZero() && exp.Before(s.Taken.Add(5*time.Minute)) {
			s.Expiring[b]++
		}
	})
	return s, err
}

// expired reports whether the key had a TTL that has passed by now (with a
// margin for clock granularity).
func (f keyFacts) expired(now time.Time) bool {
	return !f.expireAt.IsZero() && !f.expireAt.After(now.Add(time.Second))
}

// Check is the outcome of one postcondition for one bucket.
type Check struct {
	OK     bool
	Loss   bool // the failure means data was lost or changed (exit 3), not just a step that failed
	Detail string
	Keys   []string // up to a few offending keys, quoted
}

// sample is up to five of keys, sorted and quoted, and how many more.
func sample(keys []string) []string { return sampleN(keys, 5) }

// sampleN is up to n of xs, sorted and quoted, and how many more.
func sampleN(xs []string, n int) []string {
	sort.Strings(xs)
	var out []string
	for i, x := range xs {
		if i == n {
			out = append(out, fmt.Sprintf("... %d more", len(xs)-n))
			break
		}
		out = append(out, strconv.Quote(x))
	}
	return out
}

// Presence checks that every snapshot key of each bucket that has not
// expired is on the bucket's target (copied, or moved for queues). A key
// missing from the target after a migrate that reported success is lost
// (Loss); the caller decides, since after a failed migrate it is only not
// copied yet.
func Presence(ctx context.Context, snap *Snapshot, targets map[string]*store.Redis) (map[string]Check, error) {
	byBucket := map[string][]string{}
	for k, f := range snap.Keys {
		if targets[f.bucket] != nil {
			byBucket[f.bucket] = append(byBucket[f.bucket], k)
		}
	}
	out := map[string]Check{}
	for b, t := range targets {
		keys := byBucket[b]
		var lost []string
		expired := 0
		for i := 0; i < len(keys); i += 1000 {
			chunk := keys[i:min(len(keys), i+1000)]
			p := t.Client.Pipeline()
			cmds := make([]*redis.IntCmd, len(chunk))
			for j, k := range chunk {
				cmds[j] = p.Exists(ctx, k)
			}
			if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
				return nil, fmt.Errorf("%s target: %w", b, err)
			}
			now := time.Now()
			for j, k := range chunk {
				if cmds[j].Val() == 1 {
					continue
				}
				if snap.Keys[k].expired(now) {
					expired++
					continue
				}
				lost = append(lost, k)
			}
		}
		c := Check{OK: len(lost) == 0, Loss: len(lost) > 0, Keys: sample(lost)}
		c.Detail = fmt.Sprintf("%d of %d keys on the target", len(keys)-len(lost)-expired, len(keys))
		if expired > 0 {
			c.Detail += fmt.Sprintf(", %d expired by their TTL", expired)
		}
		if len(lost) > 0 {
			c.Detail += fmt.Sprintf(", %d MISSING from the target", len(lost))
		}
		out[b] = c
	}
	return out, nil
}

// Empty checks that every target holds no key at all: the rehearsal's
// targets start empty, so after rollback anything left is something
// redisplit wrote and did not remove.
func Empty(ctx context.Context, targets map[string]*store.Redis) (map[string]Check, error) {
	out := map[string]Check{}
	for b, t := range targets {
		var left []string
		var n int64
		err := t.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			k, err := c.DBSize(ctx).Result()
			n += k
			if err == nil && k > 0 {
				keys, _, _ := c.Scan(ctx, 0, "*", 10).Result()
				left = append(left, keys...)
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%s target: %w", b, err)
		}
		c := Check{OK: n == 0, Keys: sample(left)}
		if n == 0 {
			c.Detail = "target holds no key"
		} else {
			c.Detail = fmt.Sprintf("%d keys left on the target", n)
		}
		out[b] = c
	}
	return out, nil
}

// Unchanged compares legacy with the snapshot, per bucket: every key still
// there with the same payload, except keys that expired by their TTL; no new
// key except redisplit's own.
func Unchanged(ctx context.Context, snap *Snapshot, legacy *redis.Client, router *classify.Classifier) (map[string]Check, error) {
	type tally struct {
		same, expired int
		changed, gone []string
		added         []string
	}
	ts := map[string]*tally{}
	get := func(b string) *tally {
		if ts[b] == nil {
			ts[b] = &tally{}
		}
		return ts[b]
	}
	seen := map[string]bool{}
	err := scanDigests(ctx, legacy, func(k, typ string, digest uint64, _ time.Time) {
		if ownKey(k) {
			return
		}
		seen[k] = true
		f, ok := snap.Keys[k]
		if !ok {
			b := string(router.Classify(k, typ).Bucket)
			get(b).added = append(get(b).added, k)
			return
		}
		if f.digest != digest {
			get(f.bucket).changed = append(get(f.bucket).changed, k)
			return
		}
		get(f.bucket).same++
	})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for k, f := range snap.Keys {
		if seen[k] {
			continue
		}
		if f.expired(now) {
			get(f.bucket).expired++
			continue
		}
		get(f.bucket).gone = append(get(f.bucket).gone, k)
	}
	out := map[string]Check{}
	for b, t := range ts {
		bad := append(append(append([]string{}, t.gone...), t.changed...), t.added...)
		c := Check{OK: len(bad) == 0, Loss: len(bad) > 0, Keys: sample(bad)}
		c.Detail = fmt.Sprintf("%d keys unchanged", t.same)
		if t.expired > 0 {
			c.Detail += fmt.Sprintf(", %d expired by their TTL", t.expired)
		}
		if len(t.gone) > 0 {
			c.Detail += fmt.Sprintf(", %d GONE", len(t.gone))
		}
		if len(t.changed) > 0 {
			c.Detail += fmt.Sprintf(", %d CHANGED", len(t.changed))
		}
		if len(t.added) > 0 {
			c.Detail += fmt.Sprintf(", %d ADDED", len(t.added))
		}
		out[b] = c
	}
	return out, nil
}
