package rehearse_test

import (
	"context"
	"testing"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/rehearse"
	"github.com/redisplit/redisplit/topology/topotest"
)

// The synthetic keyspace must be routable with zero configuration: the
// built-in presets put every key in the bucket Generate says it is in.
func TestSyntheticIsRoutedByPresets(t *testing.T) {
	ctx := context.Background()
	s := topotest.Standalone(t)
	c := topotest.Client(t, s.Addr())
	gen, err := rehearse.Synthetic{Keys: 5000, Seed: 7, ShortTTL: -1}.Generate(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := c.DBSize(ctx).Result(); int(n) != gen.Total {
		t.Fatalf("DBSIZE %d, Generate says %d keys (duplicate names?)", n, gen.Total)
	}
	router, _, err := classify.Router(nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	types := map[string]bool{}
	binary := 0
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		typ, err := c.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		types[typ] = true
		if !utf8.ValidString(k) {
			binary++
		}
		m := router.Classify(k, typ)
		if m.Bucket == classify.Unknown {
			t.Errorf("no preset routes %q (%s)", k, typ)
		}
		got[string(m.Bucket)]++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"cache", "session", "queue", "ratelimit"} {
		if got[b] != gen.ByBucket[b] || got[b] == 0 {
			t.Errorf("bucket %s: presets route %d keys, Generate wrote %d", b, got[b], gen.ByBucket[b])
		}
	}
	for _, typ := range []string{"string", "hash", "list", "set", "zset", "stream"} {
		if !types[typ] {
			t.Errorf("no key of type %s", typ)
		}
	}
	if binary == 0 || gen.Binary == 0 {
		t.Errorf("no binary key names (scan saw %d, Generate says %d)", binary, gen.Binary)
	}
	if len(gen.Big) != 5 {
		t.Errorf("big keys: %v", gen.Big)
	}
	// Deterministic: the same seed gives the same keyspace.
	s2 := topotest.Standalone(t)
	c2 := redis.NewClient(&redis.Options{Addr: s2.Addr(), DisableIdentity: true})
	defer c2.Close()
	if _, err := (rehearse.Synthetic{Keys: 5000, Seed: 7, ShortTTL: -1, NoBig: true}).Generate(ctx, c2); err != nil {
		t.Fatal(err)
	}
	keys, _, err := c2.Scan(ctx, 0, "*", 200).Result()
	if err != nil || len(keys) < 50 {
		t.Fatalf("scan: %d keys, %v", len(keys), err)
	}
	for _, k := range keys {
		if k == "queues" { // holds "bulk" only with the big keys
			continue
		}
		a, err1 := c.Dump(ctx, k).Result()
		b, err2 := c2.Dump(ctx, k).Result()
		if err1 != nil || err2 != nil || a != b {
			t.Errorf("%q differs between two runs with the same seed (%v %v)", k, err1, err2)
		}
	}
}
