package client

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/state"
)

// ownPrefix is the prefix of redisplit's own keys on legacy (the lease, the
// markers, the control key): they are never migrated, so they always route
// to legacy, as the pseudo-bucket ownBucket.
const (
	ownPrefix = "redisplit:"
	ownBucket = "redisplit"
)

// store is one Redis deployment the client routes to.
type store struct {
	name     string // "legacy", "session target"
	c        redis.UniversalClient
	commands atomic.Uint64
}

// bucketState is what one routing snapshot says about one bucket.
type bucketState struct {
	ControlValue
	st     *store // where its commands go; nil with err
	shadow *store // target to shadow reads on (syncing, shadow reads on)
	err    error  // *NoTargetError
}

// routing is an immutable snapshot of where every bucket goes. A command
// loads the current snapshot once, before it is sent: a switch published
// while it is in flight does not move it (it completes on the store it was
// sent to); every command loaded after the switch goes to the new store.
type routing struct {
	buckets map[string]bucketState
	read    time.Time // when the control key was read
}

// storeOf returns where bucket's commands go.
func (r *routing) storeOf(c *Client, bucket string) (st, shadow *store, err error) {
	if bucket == ownBucket || bucket == unknownBucket {
		return c.legacy, nil, nil
	}
	s, ok := r.buckets[bucket]
	if !ok {
		return c.legacy, nil, nil
	}
	return s.st, s.shadow, s.err
}

// newState computes a bucket's routing from its control value.
func (c *Client) newState(bucket string, v ControlValue) bucketState {
	s := bucketState{ControlValue: v, st: c.legacy}
	t := c.targets[bucket]
	switch {
	case OnTarget(v.Phase) && t == nil:
		s.st, s.err = nil, &NoTargetError{Bucket: bucket, Phase: v.Phase}
	case OnTarget(v.Phase):
		s.st = t
	case v.Phase == state.Syncing && c.opts.ShadowReads && t != nil:
		s.shadow = t
	}
	return s
}

// keyUse is one key a command names and the type the command implies for it.
type keyUse struct {
	key, typ string
}

// classify returns the bucket of key used with implied type typ; ok is
// false when typ is "" and the bucket depends on the key's type.
func (c *Client) classify(key, typ string) (bucket string, ok bool) {
	if strings.HasPrefix(key, ownPrefix) {
		return ownBucket, true
	}
	if typ != "" {
		bucket = c.plan.Classify(key, typ)
	} else if bucket, ok = c.plan.ClassifyName(key); !ok {
		return "", false
	}
	return c.unknownTo(bucket), true
}

func (c *Client) unknownTo(b string) string {
	if b == unknownBucket && c.unknown != "" {
		return c.unknown
	}
	return b
}

// possible returns the buckets key may belong to whatever its type.
func (c *Client) possible(key string) []string {
	var out []string
	for _, b := range c.plan.PossibleBuckets(key) {
		if b = c.unknownTo(b); !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}

// resolve returns the one store the keys route to, and the bucket they
// belong to ("" when a single key's bucket depends on a type nobody needs to
// know because every possible bucket is on the same store).
//
// The rule for a key whose bucket depends on its type (a plan rule names a
// type): a command that implies a type (SET: string, HSET: hash, LPUSH:
// list... the table in commands.go) routes the key as a key of that type,
// which is where the tool puts such a key. A generic command (DEL, EXPIRE,
// TTL, RENAME...) on such a key asks the stores its possible buckets are on
// for the key's TYPE (a round trip each, counted in Stats.TypeLookups): the
// key routes by its actual type. A key found nowhere routes to a bucket
// every such key of the command may belong to.
func (c *Client) resolve(ctx context.Context, snap *routing, cmdName string, uses []keyUse) (bucket string, st, shadow *store, err error) {
	var buckets, firstKeys []string
	add := func(b, key string) {
		if !slices.Contains(buckets, b) {
			buckets = append(buckets, b)
			firstKeys = append(firstKeys, key)
		}
	}
	var pending []string
	typed := map[string]string{}
	for _, u := range uses {
		if b, ok := c.classify(u.key, u.typ); ok {
			add(b, u.key)
			if u.typ != "" {
				typed[u.key] = b
			}
		} else if !slices.Contains(pending, u.key) {
			pending = append(pending, u.key)
		}
	}
	// One key whose every possible bucket is on one store: no need to know.
	if len(uses) == 1 && len(pending) == 1 {
		if st, ok := sameStore(c, snap, c.possible(pending[0])); ok {
			return "", st, nil, nil
		}
	}
	var unresolved []string
	for _, k := range pending {
		if b, ok := typed[k]; ok { // the same key is typed elsewhere in the command
			add(b, k)
			continue
		}
		typ, err := c.typeOf(ctx, snap, k)
		if err != nil {
			return "", nil, nil, err
		}
		if typ == "" {
			unresolved = append(unresolved, k)
			continue
		}
		b, _ := c.classify(k, typ)
		add(b, k)
	}
	if len(buckets) > 1 {
		c.stats.crossBucket.Add(1)
		return "", nil, nil, &CrossBucketError{Command: cmdName, Buckets: buckets, Keys: firstKeys}
	}
	for _, k := range unresolved {
		p := c.possible(k)
		if len(buckets) == 0 {
			buckets, firstKeys = p, slices.Repeat([]string{k}, len(p))
			continue
		}
		var keep, keepKeys []string
		for i, b := range buckets {
			if slices.Contains(p, b) {
				keep, keepKeys = append(keep, b), append(keepKeys, firstKeys[i])
			}
		}
		if len(keep) == 0 {
			c.stats.crossBucket.Add(1)
			return "", nil, nil, &CrossBucketError{Command: cmdName, Buckets: []string{buckets[0], p[0]}, Keys: []string{firstKeys[0], k}}
		}
		buckets, firstKeys = keep, keepKeys
	}
	if len(buckets) == 0 {
		return "", c.legacy, nil, nil // keyless commands of a transaction
	}
	st, shadow, err = snap.storeOf(c, buckets[0])
	return buckets[0], st, shadow, err
}

// sameStore returns the store every one of buckets routes to, if there is one.
func sameStore(c *Client, snap *routing, buckets []string) (*store, bool) {
	var st *store
	for _, b := range buckets {
		s, _, err := snap.storeOf(c, b)
		if err != nil || st != nil && s != st {
			return nil, false
		}
		st = s
	}
	return st, st != nil
}

// typeOf returns key's Redis type ("" when no store holds it), asking the
// stores its possible buckets route to, in bucket order.
func (c *Client) typeOf(ctx context.Context, snap *routing, key string) (string, error) {
	var asked []*store
	for _, b := range c.possible(key) {
		st, _, err := snap.storeOf(c, b)
		if err != nil {
			return "", err
		}
		if slices.Contains(asked, st) {
			continue
		}
		asked = append(asked, st)
		c.stats.typeLookups.Add(1)
		t, err := st.c.Type(ctx, key).Result()
		if err != nil {
			return "", err
		}
		if t != "none" {
			return t, nil
		}
	}
	return "", nil
}

// unknownBucket is the bucket of a key no rule of the plan matches.
const unknownBucket = string(classify.Unknown)

// planRouter is the plan the client routes with: package classify's
// classifier itself (the tool's routing, not a copy) and the plan's hash,
// which the control key's Plan field is compared with.
type planRouter struct {
	c    *classify.Classifier
	hash string
}

// loadPlan compiles a plan loaded or parsed by package classify.
func loadPlan(p *classify.Plan, err error) (*planRouter, error) {
	if err != nil {
		return nil, err
	}
	c, err := p.Classifier()
	if err != nil {
		return nil, err
	}
	return &planRouter{c: c, hash: p.Hash()}, nil
}

// Hash is the plan's hash (classify.Plan.Hash).
func (r *planRouter) Hash() string { return r.hash }

// Classify returns the bucket of key with Redis type typ.
func (r *planRouter) Classify(key, typ string) string { return string(r.c.Classify(key, typ).Bucket) }

// ClassifyName returns the bucket of key by its name alone; ok is false
// when a typed rule could match, i.e. the bucket depends on the type.
func (r *planRouter) ClassifyName(key string) (string, bool) {
	m, ok := r.c.ClassifyName(key)
	return string(m.Bucket), ok
}

// PossibleBuckets returns every bucket key may belong to, whatever its type.
func (r *planRouter) PossibleBuckets(key string) []string {
	var out []string
	for _, b := range r.c.PossibleBuckets(key) {
		out = append(out, string(b))
	}
	return out
}
