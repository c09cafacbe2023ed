// Package storetest is the behavioural conformance suite of store.Sink:
// every implementation (standalone, cluster and sentinel Redis today; a
// reverse-sync or SQS sink later) must pass Run. It checks what the copier
// relies on, on a real store:
//
//   - every Redis type is restored with its value and its absolute expiry;
//   - the journal is called with every key of a call before anything is
//     written, and a journal failure writes nothing;
//   - an absent entry deletes the key (tombstone by absence), also when the
//     key is not there;
//   - an entry whose absolute expiry has passed is deleted, never written;
//   - applying the same entries again changes nothing (idempotent replay);
//   - a big batch (5,000 keys across slots) and binary key names work;
//   - a full noeviction store answers OOM for every key it did not write,
//     never a silent skip, and still applies deletes.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/store"
)

var retry = store.Retry{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond, For: 10 * time.Second}

// Run runs the suite. newSink returns the sink under test (closed at the end
// of each subtest if it is an io.Closer); raw returns a client of the same
// store, used to set up and check its contents. Every subtest starts from an
// empty store (FLUSHALL on every master).
func Run(t *testing.T, newSink func() store.Sink, raw func() redis.UniversalClient) {
	s := &suite{newSink: newSink, raw: raw()}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, sk store.Sink)
	}{
		{"RestoresEveryTypeWithAbsoluteTTL", s.everyType},
		{"JournalBeforeWriteAndFailureWritesNothing", s.journal},
		{"AbsentEntryDeletes", s.tombstone},
		{"ExpiredEntryDeletedNeverWritten", s.expired},
		{"IdempotentReplay", s.replay},
		{"BigBatch", s.bigBatch},
		{"BinaryKeyNames", s.binaryKeys},
		{"BigEntryRefused", s.bigEntry},
		{"OOMIsReportedNotSkipped", s.oom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.flush(t)
			sk := newSink()
			if c, ok := sk.(io.Closer); ok {
				t.Cleanup(func() { c.Close() })
			}
			tc.fn(t, sk)
		})
	}
}

type suite struct {
	newSink func() store.Sink
	raw     redis.UniversalClient
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// masters calls fn on every master of the store.
func (s *suite) masters(ctx context.Context, fn func(c *redis.Client) error) error {
	switch c := s.raw.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return fn(m) })
	case *redis.Client:
		return fn(c)
	}
	return fmt.Errorf("storetest: unsupported client %T", s.raw)
}

// node returns the client that serves key (for commands without key specs,
// e.g. DEBUG DIGEST-VALUE, that a cluster client cannot route).
func (s *suite) node(ctx context.Context, t *testing.T, key string) *redis.Client {
	switch c := s.raw.(type) {
	case *redis.ClusterClient:
		m, err := c.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return m
	case *redis.Client:
		return c
	}
	t.Fatalf("unsupported client %T", s.raw)
	return nil
}

func (s *suite) flush(t *testing.T) {
	if err := s.masters(ctxT(t), func(c *redis.Client) error { return c.FlushAll(context.Background()).Err() }); err != nil {
		t.Fatal(err)
	}
}

func (s *suite) dbsize(t *testing.T) int64 {
	var mu sync.Mutex
	var n int64
	if err := s.masters(ctxT(t), func(c *redis.Client) error {
		v, err := c.DBSize(context.Background()).Result()
		mu.Lock()
		n += v
		mu.Unlock()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// restoreCalls is the number of RESTORE commands the store has executed
// (INFO commandstats, summed over masters).
func (s *suite) restoreCalls(t *testing.T) int64 {
	var mu sync.Mutex
	var n int64
	if err := s.masters(ctxT(t), func(c *redis.Client) error {
		info, err := c.Info(context.Background(), "commandstats").Result()
		if err != nil {
			return err
		}
		for _, line := range strings.Split(info, "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_restore:calls="); ok {
				v, _ := strconv.ParseInt(rest[:strings.IndexByte(rest+",", ',')], 10, 64)
				mu.Lock()
				n += v
				mu.Unlock()
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// fixture builds a value under a scratch key with build, and returns its
// DUMP payload and logical digest; the scratch key is deleted.
func (s *suite) fixture(t *testing.T, build func(ctx context.Context, c redis.UniversalClient, k string) error) (payload, digest string) {
	return s.fixtureTTL(t, build, 0)
}

// fixtureTTL is fixture with the digest of the value holding an expiry
// (DEBUG DIGEST-VALUE tells a key with an expiry from one without) when
// expireAt is not 0.
func (s *suite) fixtureTTL(t *testing.T, build func(ctx context.Context, c redis.UniversalClient, k string) error, expireAt int64) (payload, digest string) {
	ctx := ctxT(t)
	k := "storetest:scratch"
	s.raw.Del(ctx, k)
	if err := build(ctx, s.raw, k); err != nil {
		t.Fatal(err)
	}
	p, err := s.raw.Dump(ctx, k).Result()
	if err != nil {
		t.Fatal(err)
	}
	if expireAt > 0 {
		s.raw.PExpireAt(ctx, k, time.UnixMilli(expireAt))
	}
	d := s.digest(t, k)
	s.raw.Del(ctx, k)
	return p, d
}

func (s *suite) digest(t *testing.T, key string) string {
	ctx := ctxT(t)
	d, err := s.node(ctx, t, key).Do(ctx, "debug", "digest-value", key).Slice()
	if err != nil || len(d) != 1 {
		t.Fatalf("DEBUG DIGEST-VALUE %q: %v %v", key, d, err)
	}
	return fmt.Sprint(d[0])
}

// apply calls Apply and fails the test on any key error.
func apply(t *testing.T, sk store.Sink, entries []*store.Entry, j store.Journal) {
	t.Helper()
	if errs := sk.Apply(ctxT(t), entries, j, retry); errs != nil {
		t.Fatalf("%s: %d key errors, first %v", sk.Describe(), len(errs), errs[0])
	}
}

type value struct {
	name  string
	build func(ctx context.Context, c redis.UniversalClient, k string) error
}

// values covers every type and the encodings a migration meets.
var values = []value{
	{"string", func(ctx context.Context, c redis.UniversalClient, k string) error {
		return c.Set(ctx, k, "hello\x00world\xff", 0).Err()
	}},
	{"string-int", func(ctx context.Context, c redis.UniversalClient, k string) error {
		return c.Set(ctx, k, 12345, 0).Err()
	}},
	{"string-long", func(ctx context.Context, c redis.UniversalClient, k string) error {
		return c.Set(ctx, k, strings.Repeat("x", 100<<10), 0).Err()
	}},
	{"hash-small", func(ctx context.Context, c redis.UniversalClient, k string) error {
		return c.HSet(ctx, k, "a", "1", "b", "2").Err()
	}},
	{"hash-large", func(ctx context.Context, c redis.UniversalClient, k string) error {
		return c.HSet(ctx, k, many(600)...).Err()
	}},
	{"list-small", func(ctx context.Context, c redis.UniversalClient, k string) error {
		return c.RPush(ctx, k, "a", "b", "c").Err()
	}},
	{"list-large", func(ctx context.Context, c redis.UniversalClient, k string) error {
		return c.RPush(ctx, k, many(3000)...).Err()
	}},
	{"set-int", func(ctx context.Context, c redis.UniversalClient, k string) error {
		return c.SAdd(ctx, k, 1, 2, 3).Err()
	}},
	{"set-large", func(ctx context.Context, c redis.UniversalClient, k string) error {
		return c.SAdd(ctx, k, many(600)...).Err()
	}},
	{"zset-small", func(ctx context.Context, c redis.UniversalClient, k string) error {
		return c.ZAdd(ctx, k, redis.Z{Score: 1, Member: "a"}, redis.Z{Score: 2.5, Member: "b"}).Err()
	}},
	{"zset-large", func(ctx context.Context, c redis.UniversalClient, k string) error {
		zs := make([]redis.Z, 300)
		for i := range zs {
			zs[i] = redis.Z{Score: float64(i) / 3, Member: fmt.Sprint("m", i)}
		}
		return c.ZAdd(ctx, k, zs...).Err()
	}},
	{"stream-with-group", func(ctx context.Context, c redis.UniversalClient, k string) error {
		for i := 0; i < 5; i++ {
			if err := c.XAdd(ctx, &redis.XAddArgs{Stream: k, Values: []any{"n", i}}).Err(); err != nil {
				return err
			}
		}
		if err := c.XGroupCreate(ctx, k, "g", "0").Err(); err != nil {
			return err
		}
		return c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c1", Streams: []string{k, ">"}, Count: 2}).Err()
	}},
}

func many(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprint("member-", i)
	}
	return out
}

func (s *suite) everyType(t *testing.T, sk store.Sink) {
	ctx := ctxT(t)
	exp := time.Now().Add(time.Hour).UnixMilli()
	var entries []*store.Entry
	digests := map[string]string{}
	types := map[string]string{}
	for i, v := range values {
		e := &store.Entry{Key: "storetest:" + v.name}
		if i%2 == 0 {
			e.ExpireAt = exp
		}
		p, d := s.fixtureTTL(t, v.build, e.ExpireAt)
		k := e.Key
		e.Payload, e.Type = p, store.PayloadType(p)
		entries = append(entries, e)
		digests[k] = d
		types[k] = strings.SplitN(v.name, "-", 2)[0]
	}
	apply(t, sk, entries, nil)
	for _, e := range entries {
		if got := s.raw.Type(ctx, e.Key).Val(); got != types[e.Key] {
			t.Errorf("%s: type %q, want %q", e.Key, got, types[e.Key])
		}
		if got := s.digest(t, e.Key); got != digests[e.Key] {
			t.Errorf("%s: value differs from the source's (digest %s, want %s)", e.Key, got, digests[e.Key])
		}
		want := int64(-1)
		if e.ExpireAt > 0 {
			want = e.ExpireAt
		}
		if got := s.raw.PExpireTime(ctx, e.Key).Val(); got.Milliseconds() != want && !(want == -1 && got == -1) {
			t.Errorf("%s: PEXPIRETIME %v, want %d", e.Key, got, want)
		}
	}
}

func (s *suite) journal(t *testing.T, sk store.Sink) {
	ctx := ctxT(t)
	p, _ := s.fixture(t, values[0].build)
	s.raw.Set(ctx, "storetest:gone", "x", 0)
	entries := []*store.Entry{{Key: "storetest:a", Payload: p}, {Key: "storetest:b", Payload: p}, store.Absent("storetest:gone")}
	var journaled []string
	j := func(keys []string) error {
		for _, k := range keys {
			// before any write: nothing new exists yet, the doomed key still does
			if n := s.raw.Exists(ctx, k).Val(); (n == 1) != (k == "storetest:gone") {
				t.Errorf("journal called after %q was written", k)
			}
		}
		journaled = append(journaled, keys...)
		return nil
	}
	apply(t, sk, entries, j)
	slices.Sort(journaled)
	if want := []string{"storetest:a", "storetest:b", "storetest:gone"}; !slices.Equal(journaled, want) {
		t.Fatalf("journaled %q, want %q", journaled, want)
	}
	// a failing journal: nothing written, every key reported
	s.raw.Set(ctx, "storetest:kept", "x", 0)
	before := s.restoreCalls(t)
	boom := errors.New("disk full")
	errs := sk.Apply(ctx, []*store.Entry{{Key: "storetest:c", Payload: p}, store.Absent("storetest:kept")}, func([]string) error { return boom }, retry)
	if len(errs) != 2 || !errors.Is(errs[0], boom) || !errors.Is(errs[1], boom) {
		t.Fatalf("journal failure: %v", errs)
	}
	if s.raw.Exists(ctx, "storetest:c").Val() != 0 || s.raw.Exists(ctx, "storetest:kept").Val() != 1 || s.restoreCalls(t) != before {
		t.Fatal("a call whose journal failed wrote to the store")
	}
}

func (s *suite) tombstone(t *testing.T, sk store.Sink) {
	ctx := ctxT(t)
	s.raw.Set(ctx, "storetest:s", "x", 0)
	s.raw.HSet(ctx, "storetest:h", "f", "v")
	apply(t, sk, []*store.Entry{store.Absent("storetest:s"), store.Absent("storetest:h"), store.Absent("storetest:never")}, nil)
	if n := s.dbsize(t); n != 0 {
		t.Fatalf("%d keys left after tombstones", n)
	}
}

func (s *suite) expired(t *testing.T, sk store.Sink) {
	ctx := ctxT(t)
	p, _ := s.fixture(t, values[0].build)
	s.raw.Set(ctx, "storetest:old", "stale", 0)
	past := time.Now().Add(-time.Second).UnixMilli()
	before := s.restoreCalls(t)
	apply(t, sk, []*store.Entry{{Key: "storetest:old", Payload: p, ExpireAt: past}, {Key: "storetest:new", Payload: p, ExpireAt: past}}, nil)
	if n := s.dbsize(t); n != 0 {
		t.Fatalf("%d keys left; an expired entry must delete the key", n)
	}
	if after := s.restoreCalls(t); after != before {
		t.Fatalf("%d RESTOREs for expired entries; they must never be written", after-before)
	}
}

func (s *suite) replay(t *testing.T, sk store.Sink) {
	ctx := ctxT(t)
	exp := time.Now().Add(time.Hour).UnixMilli()
	var entries []*store.Entry
	for _, v := range values {
		p, _ := s.fixture(t, v.build)
		entries = append(entries, &store.Entry{Key: "storetest:" + v.name, Payload: p, ExpireAt: exp})
	}
	entries = append(entries, store.Absent("storetest:absent"))
	apply(t, sk, entries, nil)
	first := map[string]string{}
	for _, e := range entries[:len(entries)-1] {
		first[e.Key] = s.digest(t, e.Key)
	}
	apply(t, sk, entries, nil)
	apply(t, sk, entries, nil)
	for k, d := range first {
		if got := s.digest(t, k); got != d {
			t.Errorf("%s changed on replay", k)
		}
		if got := s.raw.PExpireTime(ctx, k).Val().Milliseconds(); got != exp {
			t.Errorf("%s: expiry %d after replay, want %d", k, got, exp)
		}
	}
	if n := s.dbsize(t); n != int64(len(first)) {
		t.Fatalf("%d keys after replay, want %d", n, len(first))
	}
}

func (s *suite) bigBatch(t *testing.T, sk store.Sink) {
	ctx := ctxT(t)
	p, _ := s.fixture(t, values[3].build)
	const n, gone = 5000, 1000
	var entries []*store.Entry
	pipe := s.raw.Pipeline()
	for i := 0; i < n; i++ {
		k := fmt.Sprint("storetest:big:", i)
		if i < gone {
			pipe.Set(ctx, k, "doomed", 0)
			entries = append(entries, store.Absent(k))
		} else {
			entries = append(entries, &store.Entry{Key: k, Payload: p, ExpireAt: time.Now().Add(time.Hour).UnixMilli()})
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	var journaled int
	apply(t, sk, entries, func(keys []string) error { journaled += len(keys); return nil })
	if got := s.dbsize(t); got != n-gone || journaled != n {
		t.Fatalf("%d keys on the store, %d journaled; want %d and %d", got, journaled, n-gone, n)
	}
}

func (s *suite) binaryKeys(t *testing.T, sk store.Sink) {
	ctx := ctxT(t)
	p, d := s.fixture(t, func(ctx context.Context, c redis.UniversalClient, k string) error {
		return c.Set(ctx, k, "\x00\x01\xfe\xff\r\n", 0).Err()
	})
	keys := []string{"\x00", "\xff\xfe\xfd", "a\r\nb", "with space", "ключ", "{tag}\x00x", "*?[glob]", strings.Repeat("\x80", 300)}
	var entries []*store.Entry
	for _, k := range keys {
		entries = append(entries, &store.Entry{Key: k, Payload: p})
	}
	apply(t, sk, entries, nil)
	for _, k := range keys {
		if got := s.digest(t, k); got != d {
			t.Errorf("key %q: digest %s, want %s", k, got, d)
		}
	}
	var tomb []*store.Entry
	for _, k := range keys {
		tomb = append(tomb, store.Absent(k))
	}
	apply(t, sk, tomb, nil)
	for _, k := range keys {
		if s.raw.Exists(ctx, k).Val() != 0 {
			t.Errorf("key %q survived its tombstone", k)
		}
	}
}

func (s *suite) bigEntry(t *testing.T, sk store.Sink) {
	errs := sk.Apply(ctxT(t), []*store.Entry{{Key: "storetest:big", Big: true, Type: "hash"}}, nil, retry)
	if len(errs) != 1 || errs[0].Key != "storetest:big" {
		t.Fatalf("a Big entry (no payload) was accepted: %v", errs)
	}
	if n := s.dbsize(t); n != 0 {
		t.Fatalf("%d keys written", n)
	}
}

func (s *suite) oom(t *testing.T, sk store.Sink) {
	ctx := ctxT(t)
	p, _ := s.fixture(t, values[2].build)
	s.raw.Set(ctx, "storetest:doomed", "x", 0)
	type saved struct{ mem, policy string }
	var mu sync.Mutex
	old := map[*redis.Client]saved{}
	err := s.masters(ctx, func(c *redis.Client) error {
		m, err := c.ConfigGet(ctx, "maxmemory").Result()
		if err != nil {
			return err
		}
		pol, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
		if err != nil {
			return err
		}
		mu.Lock()
		old[c] = saved{m["maxmemory"], pol["maxmemory-policy"]}
		mu.Unlock()
		if err := c.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
			return err
		}
		return c.ConfigSet(ctx, "maxmemory", "1").Err()
	})
	t.Cleanup(func() {
		for c, o := range old {
			c.ConfigSet(context.Background(), "maxmemory", o.mem)
			c.ConfigSet(context.Background(), "maxmemory-policy", o.policy)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var entries []*store.Entry
	for i := 0; i < 20; i++ {
		entries = append(entries, &store.Entry{Key: fmt.Sprint("storetest:oom:", i), Payload: p})
	}
	entries = append(entries, store.Absent("storetest:doomed"))
	errs := sk.Apply(ctx, entries, nil, retry)
	failed := map[string]redisconn.Class{}
	for _, e := range errs {
		failed[e.Key] = e.Class
	}
	for _, e := range entries {
		if e.Absent() {
			if _, bad := failed[e.Key]; bad || s.raw.Exists(ctx, e.Key).Val() != 0 {
				t.Errorf("a delete on a full store failed (%v); deletes free memory and must apply", failed[e.Key])
			}
			continue
		}
		cl, bad := failed[e.Key]
		on := s.raw.Exists(ctx, e.Key).Val() == 1
		switch {
		case !bad && !on:
			t.Fatalf("%s: not written and no error: a silent skip", e.Key)
		case bad && cl != redisconn.OOM:
			t.Errorf("%s: error class %s, want OOM (%s)", e.Key, cl, redisconn.OOM)
		}
	}
	if len(errs) == 0 {
		t.Fatal("a full noeviction store accepted every write")
	}
}
