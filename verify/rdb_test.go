package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/topology"
)

// standalone starts a real redis-server for this package's internal tests.
func standalone(t *testing.T) *redis.Client {
	t.Helper()
	b, err := topology.NewProcessBackend(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	s, err := topology.Standalone(context.Background(), b, "rdb")
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// payloadCanonical must read a real server's DUMP payloads of every
// encoding it claims into exactly what the commands give (canonical of
// SMEMBERS, HGETALL, ZRANGE WITHSCORES), and refuse the others.
func TestPayloadCanonicalMatchesCommands(t *testing.T) {
	ctx := context.Background()
	c := standalone(t)
	long := strings.Repeat("abcabcabc", 20) // compressible: LZF-encoded in the payload
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Small sets of strings: hash table (Redis < 7.2) or listpack (7.2+,
	// refused); integers: intset; more than 128 members: hash table.
	must(c.SAdd(ctx, "s:small", "tag0", "tag1", "x", long, "12", "-7", "70000", "4294967296").Err())
	must(c.SAdd(ctx, "s:int", 1, -2, 300, 70000, -5000000000).Err())
	var many []any
	for i := 0; i < 300; i++ {
		many = append(many, fmt.Sprintf("m%d", i), i)
	}
	must(c.SAdd(ctx, "s:big", many...).Err())
	// Hashes: a value over 64 bytes makes a hash table; small ones are
	// listpacks (refused).
	must(c.HSet(ctx, "h:table", "f1", long, "n", "42", "neg", "-1", "e", "").Err())
	must(c.HSet(ctx, "h:small", "a", "1").Err())
	// Sorted sets: over 128 members, a skiplist with binary scores.
	var zs []redis.Z
	for i := 0; i < 200; i++ {
		zs = append(zs, redis.Z{Score: float64(i%7) * 1.5, Member: fmt.Sprintf("p%03d", i)})
	}
	zs = append(zs, redis.Z{Score: -0.25, Member: long})
	must(c.ZAdd(ctx, "z:big", zs...).Err())
	must(c.RPush(ctx, "l", "a").Err())
	must(c.Set(ctx, "str", "v", 0).Err())

	read := map[string]string{"set": "smembers", "hash": "hgetall", "zset": "zrange"}
	claimed := 0
	for _, k := range []string{"s:small", "s:int", "s:big", "h:table", "h:small", "z:big", "l", "str"} {
		p, err := c.Dump(ctx, k).Result()
		must(err)
		typ, got, ok := payloadCanonical(p)
		enc := c.ObjectEncoding(ctx, k).Val()
		want := map[string]bool{"hashtable": true, "intset": true, "skiplist": true}[enc]
		if ok != want {
			t.Errorf("%s (%s): payloadCanonical ok %v, want %v", k, enc, ok, want)
			continue
		}
		if !ok {
			continue
		}
		claimed++
		if real := c.Type(ctx, k).Val(); typ != real {
			t.Errorf("%s: type %s, want %s", k, typ, real)
		}
		args := []any{read[typ], k}
		if typ == "zset" {
			args = []any{"zrange", k, 0, -1, "withscores"}
		}
		if w := canonical(typ, c.Do(ctx, args...)); !slices.Equal(got, w) {
			t.Errorf("%s (%s): from the payload %.200q\nfrom %s: %.200q", k, enc, got, args[0], w)
		}
	}
	if claimed < 4 {
		t.Errorf("only %d keys read from their payloads: the test covers nothing", claimed)
	}
	// A payload cut short or with trailing bytes is refused, never misread.
	p := c.Dump(ctx, "s:big").Val()
	for _, bad := range []string{p[:len(p)/2] + p[len(p)-10:], p[:len(p)-10] + "x" + p[len(p)-10:]} {
		if _, _, ok := payloadCanonical(bad); ok {
			t.Error("a damaged payload was read")
		}
	}
}

func TestLZF(t *testing.T) {
	// A literal run, then a back reference overlapping what it copies
	// ("ab", then 6 bytes copied from 2 back): "abababab".
	got, err := lzfDecompress("\x01ab\x80\x01", 8)
	if err != nil || got != "abababab" {
		t.Errorf("lzf: %q %v", got, err)
	}
	for _, bad := range []string{"\x05ab", "\xe0", "\x01ab\xc0\x05"} {
		if _, err := lzfDecompress(bad, 8); err == nil {
			t.Errorf("lzf accepted %q", bad)
		}
	}
}
