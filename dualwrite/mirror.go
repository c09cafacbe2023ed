package dualwrite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/store"
)

// The two-way mirror of the switch window (cutover → complete or
// rollback). Its pieces, used by migrate and rollback:
//
//   - ServerSource reads keys from any go-redis client (a cluster, a
//     Sentinel failover client that follows failovers, a standalone
//     server): the reverse direction's copier reads the target with it.
//   - Suppressor is a copier Admit filter: a copy that would not change
//     the destination is not written (loop suppression), so that the echo
//     of a mirrored write (the destination's own keyspace event) dies after
//     one hop. Paired (Pair), each direction also remembers what it wrote
//     last per key (Echoes): an entry that is exactly what the other
//     direction just wrote there is that write's echo and is dropped even
//     when the other side has changed again meanwhile, so an echo never
//     carries an older value back over a newer one. Equal means: both absent, or the same type, absolute expiries
//     within ExpirySlack, and the same DUMP body (the payload without its
//     RDB version and CRC trailer); where the bodies differ, hashes, sets,
//     sorted sets and lists up to LogicalCompareBytes are compared by their
//     elements (a hashtable's DUMP order depends on the server's hash seed,
//     so two servers holding the same hash may DUMP it differently).
//   - KeyLocks serialise the read-compare-write of one key across the two
//     directions' copiers: while a key is read from one side, compared with
//     the other and written there, the other direction cannot do the same
//     for that key. So two concurrent writes of one key on both sides end
//     with one value on both (the one the later mirror copy read), never a
//     swap that echoes on.
//
// Conflict rule (docs/runbook.md): for a key written on both sides within
// the mirror's lag, the most recent write observed by a mirror wins.

// readScript reads one key atomically: its type, then (when present) its
// absolute expiry in ms (-1: none; PTTL plus the server's TIME, so that it
// runs on Redis before 7.0, where PEXPIRETIME is missing) and its DUMP
// payload.
var readScript = redis.NewScript(`
local t = redis.call('TYPE', KEYS[1]).ok
if t == 'none' then return {t} end
local exp = redis.call('PTTL', KEYS[1])
if exp >= 0 then
  local now = redis.call('TIME')
  exp = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + exp
end
return {t, exp, redis.call('DUMP', KEYS[1])}
`)

// ReadEntries reads keys from c (any client: cluster commands are routed
// by key) with one script call per key, in one pipeline: each entry is
// read atomically.
func ReadEntries(ctx context.Context, c redis.UniversalClient, keys []string) ([]*store.Entry, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			readScript.Eval(ctx, p, []string{k})
		}
		return nil
	})
	if err != nil && err != redis.Nil {
		// a NOSCRIPT cannot happen (EVAL); any other error is the server's
		for _, cmd := range cmds {
			if e := cmd.Err(); e != nil && e != redis.Nil {
				return nil, e
			}
		}
		return nil, err
	}
	out := make([]*store.Entry, len(keys))
	for i, cmd := range cmds {
		vals, err := cmd.(*redis.Cmd).Slice()
		if err != nil {
			return nil, err
		}
		typ, _ := vals[0].(string)
		if typ == "none" || len(vals) < 3 {
			out[i] = store.Absent(keys[i])
			continue
		}
		exp, _ := vals[1].(int64)
		payload, _ := vals[2].(string)
		e := &store.Entry{Key: keys[i], Type: typ, Payload: payload}
		if exp > 0 {
			e.ExpireAt = exp
		}
		out[i] = e
	}
	return out, nil
}

// ServerSource is a store.Source over a go-redis client: the reverse
// direction reads the target with it (a ClusterClient routes every key to
// its master, a FailoverClient to the current master). Entries are never
// Big: every key's payload is read whole, so keep the copier's batches
// small. Locks, when set, are held for each key from its read to the end
// of fn (its write on the destination).
type ServerSource struct {
	Client redis.UniversalClient
	Name   string // for Describe, e.g. "target session (sentinel ...)"
	Retry  store.Retry
	Locks  *KeyLocks
}

// Describe implements store.Source.
func (s *ServerSource) Describe() string { return s.Name }

// Read implements store.Source.
func (s *ServerSource) Read(ctx context.Context, keys []string, fn func([]*store.Entry) error) error {
	if s.Locks != nil {
		unlock := s.Locks.Lock(keys)
		defer unlock()
	}
	var es []*store.Entry
	err := s.Retry.Do(ctx, func() error {
		var err error
		es, err = ReadEntries(ctx, s.Client, keys)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	return fn(es)
}

// ExpirySlack is how far two absolute expiries may differ and still be the
// same (a source that reads PTTL and TIME computes the absolute expiry to
// a millisecond or two).
const ExpirySlack = 20

// Suppressor is loop suppression for one destination: its Admit keeps out
// the entries the destination already holds. Src is the side the entries
// were read from (for the element-by-element comparison), Dst the side
// they would be written to.
type Suppressor struct {
	Src, Dst redis.UniversalClient
	// Written, when set, is called with the entries that pass (they will be
	// written or deleted): for the figures.
	Written func(entries []*store.Entry)
	// Mine records what this direction writes; Theirs is what the other
	// direction wrote to Src (Pair sets both).
	Mine, Theirs *Echoes

	suppressed, passed atomic.Int64
}

// Pair returns the Suppressors of the two directions between legacy and a
// target, each knowing the other's writes.
func Pair(legacy, target redis.UniversalClient) (fwd, rev *Suppressor) {
	a, b := NewEchoes(echoMax), NewEchoes(echoMax)
	return &Suppressor{Src: legacy, Dst: target, Mine: a, Theirs: b}, &Suppressor{Src: target, Dst: legacy, Mine: b, Theirs: a}
}

// echoMax bounds the keys an Echoes remembers (about 100 bytes each).
const echoMax = 1 << 20

// Echoes remembers, per key, the fingerprint of the last entry a direction
// wrote (bounded: when full it forgets everything, and the comparison with
// the destination is the only suppression until it fills again). Safe for
// concurrent use.
type Echoes struct {
	mu  sync.Mutex
	max int
	m   map[string]fingerprint
}

type fingerprint struct {
	sum      [32]byte
	expireAt int64
	absent   bool
}

// NewEchoes returns an Echoes of at most max keys.
func NewEchoes(max int) *Echoes { return &Echoes{max: max, m: map[string]fingerprint{}} }

func fingerprintOf(e *store.Entry) fingerprint {
	if e.Absent() {
		return fingerprint{absent: true}
	}
	return fingerprint{sum: sha256.Sum256(append([]byte(e.Type+"\x00"), body(e.Payload)...)), expireAt: e.ExpireAt}
}

func (s *Echoes) put(e *store.Entry) {
	if s == nil || e.Big {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		clear(s.m)
	}
	s.m[e.Key] = fingerprintOf(e)
}

// take reports whether e is exactly what was written last for its key.
// The record stays until the direction writes the key again, or the
// other direction reads something else there (forget): one write
// may be read back more than once (a key marked again while its copy is
// in flight is copied again), and each of those reads is its echo. (The
// price: an application write on the other side that sets the very value
// this direction wrote last, while the source has changed since, is taken
// for the echo; the authoritative side's value stands.)
func (s *Echoes) take(e *store.Entry) bool {
	if s == nil || e.Big {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.m[e.Key]
	if !ok {
		return false
	}
	g := fingerprintOf(e)
	return f.absent == g.absent && f.sum == g.sum && (f.expireAt == 0) == (g.expireAt == 0) &&
		f.expireAt-g.expireAt <= ExpirySlack && g.expireAt-f.expireAt <= ExpirySlack
}

// forget drops key's record: what was written there is gone.
func (s *Echoes) forget(key string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// Suppressed is the number of copies not written because the destination
// already held them (or they were the echo of the other direction's
// write).
func (s *Suppressor) Suppressed() int64 { return s.suppressed.Load() }

// Passed is the number of entries let through.
func (s *Suppressor) Passed() int64 { return s.passed.Load() }

// Admit is a copier.Bucket Admit filter.
func (s *Suppressor) Admit(ctx context.Context, entries []*store.Entry) ([]*store.Entry, error) {
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = e.Key
	}
	cur, err := ReadEntries(ctx, s.Dst, keys)
	if err != nil {
		return nil, err
	}
	keep := entries[:0:0]
	for i, e := range entries {
		if s.Theirs.take(e) { // the echo of the other direction's write
			s.suppressed.Add(1)
			continue
		}
		// Src holds something else than the other direction wrote there
		// last (under the key lock: the application overwrote it), so that
		// record can no longer be read back: forget it, or a later write
		// that happens to restore its value (a delete after a delete) is
		// taken for its echo and never copied.
		s.Theirs.forget(e.Key)
		same, err := s.same(ctx, e, cur[i])
		if err != nil {
			return nil, err
		}
		if same {
			s.suppressed.Add(1)
			continue
		}
		keep = append(keep, e)
	}
	for _, e := range keep {
		s.Mine.put(e)
	}
	s.passed.Add(int64(len(keep)))
	if s.Written != nil && len(keep) > 0 {
		s.Written(keep)
	}
	return keep, nil
}

func (s *Suppressor) same(ctx context.Context, src, dst *store.Entry) (bool, error) {
	if src.Absent() || dst.Absent() {
		return src.Absent() && dst.Absent(), nil
	}
	if src.Type != dst.Type || (src.ExpireAt == 0) != (dst.ExpireAt == 0) ||
		src.ExpireAt-dst.ExpireAt > ExpirySlack || dst.ExpireAt-src.ExpireAt > ExpirySlack {
		return false, nil
	}
	if !src.Big && bytes.Equal(body(src.Payload), body(dst.Payload)) {
		return true, nil
	}
	switch src.Type {
	case "string", "list", "hash", "set", "zset", "stream":
	default:
		return false, nil // a module type: copied
	}
	a, err := elements(ctx, s.Src, src.Key, src.Type)
	if err != nil {
		return false, err
	}
	b, err := elements(ctx, s.Dst, src.Key, src.Type)
	if err != nil {
		return false, err
	}
	return a == b, nil
}

// body is a DUMP payload without its trailer (2 bytes RDB version, 8
// bytes CRC64).
func body(p string) []byte {
	if len(p) < 10 {
		return []byte(p)
	}
	return []byte(p[:len(p)-10])
}

// elements is a digest of a key's value, independent of its encoding and
// of the server's iteration order, read page by page (memory bounded by a
// page): strings by GETRANGE chunks and lists by LRANGE pages, in order;
// hashes, sets and sorted sets by HSCAN, SSCAN, ZSCAN pages as a count
// and an order-independent sum of per-element hashes, with HLEN, SCARD,
// ZCARD. (A SCAN may return an element twice while the table is resized:
// the digests then differ, which costs one more copy, never a wrong
// suppression.) Streams compare their entries by XRANGE pages, in order.
func elements(ctx context.Context, c redis.UniversalClient, key, typ string) (string, error) {
	const page = 1000
	h := sha256.New()
	var n, sumA, sumB uint64
	add := func(parts ...string) {
		e := sha256.New()
		for _, p := range parts {
			fmt.Fprintf(e, "%d:%s,", len(p), p)
		}
		d := e.Sum(nil)
		n++
		sumA += binary.LittleEndian.Uint64(d[0:8])
		sumB += binary.LittleEndian.Uint64(d[8:16])
	}
	switch typ {
	case "string":
		for off := int64(0); ; off += 1 << 20 {
			v, err := c.GetRange(ctx, key, off, off+1<<20-1).Result()
			if err != nil {
				return "", err
			}
			h.Write([]byte(v))
			if len(v) < 1<<20 {
				break
			}
		}
	case "list":
		for start := int64(0); ; start += page {
			vs, err := c.LRange(ctx, key, start, start+page-1).Result()
			if err != nil {
				return "", err
			}
			for _, v := range vs {
				fmt.Fprintf(h, "%d:%s,", len(v), v)
			}
			if len(vs) < page {
				break
			}
		}
	case "hash", "set", "zset":
		var cursor uint64
		for {
			var vs []string
			var err error
			switch typ {
			case "hash":
				vs, cursor, err = c.HScan(ctx, key, cursor, "", page).Result()
			case "set":
				vs, cursor, err = c.SScan(ctx, key, cursor, "", page).Result()
			default:
				vs, cursor, err = c.ZScan(ctx, key, cursor, "", page).Result()
			}
			if err != nil {
				return "", err
			}
			if typ == "set" {
				for _, v := range vs {
					add(v)
				}
			} else {
				for i := 0; i+1 < len(vs); i += 2 {
					add(vs[i], vs[i+1])
				}
			}
			if cursor == 0 {
				break
			}
		}
		var card int64
		var err error
		switch typ {
		case "hash":
			card, err = c.HLen(ctx, key).Result()
		case "set":
			card, err = c.SCard(ctx, key).Result()
		default:
			card, err = c.ZCard(ctx, key).Result()
		}
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "n=%d card=%d a=%d b=%d", n, card, sumA, sumB)
	case "stream":
		start := "-"
		for {
			ms, err := c.XRangeN(ctx, key, start, "+", page).Result()
			if err != nil {
				return "", err
			}
			for _, m := range ms {
				fmt.Fprintf(h, "%s:%v,", m.ID, m.Values)
			}
			if len(ms) < page {
				break
			}
			start = "(" + ms[len(ms)-1].ID
		}
		info, err := c.XInfoStream(ctx, key).Result()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "len=%d last=%s groups=%d", info.Length, info.LastGeneratedID, info.Groups)
	default:
		return "", fmt.Errorf("no element comparison for type %s", typ)
	}
	return string(h.Sum(nil)), nil
}

// KeyLocks are striped locks over key names (see the contracts above).
// Lock takes the stripes of a batch in ascending order, so that two
// batches never wait for each other in a cycle.
type KeyLocks struct {
	stripes [4096]sync.Mutex
}

// Lock locks the stripes of keys and returns their unlock.
func (l *KeyLocks) Lock(keys []string) (unlock func()) {
	idx := make([]int, 0, len(keys))
	for _, k := range keys {
		idx = append(idx, stripe(k, len(l.stripes)))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		l.stripes[i].Lock()
	}
	return func() {
		for _, i := range idx {
			l.stripes[i].Unlock()
		}
	}
}

func stripe(key string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}
