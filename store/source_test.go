package store

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/topology"
	"github.com/redisplit/redisplit/topology/topotest"
)

func readAll(t *testing.T, s *RedisSource, keys []string) (map[string]*Entry, int) {
	t.Helper()
	return readAllIn(t, s, keys, len(keys))
}

// readAllIn reads keys in Read calls of per keys.
func readAllIn(t *testing.T, s *RedisSource, keys []string, per int) (map[string]*Entry, int) {
	t.Helper()
	got := map[string]*Entry{}
	chunks := 0
	for i := 0; i < len(keys); i += per {
		err := s.Read(context.Background(), keys[i:min(i+per, len(keys))], func(es []*Entry) error {
			chunks++
			for _, e := range es {
				if got[e.Key] != nil {
					t.Errorf("%q read twice", e.Key)
				}
				got[e.Key] = e
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(keys) {
		t.Fatalf("read %d entries for %d keys", len(got), len(keys))
	}
	return got, chunks
}

// The source's read against a real server: payloads with absolute expiry,
// absence (also of a key expired but not yet reclaimed), big keys without
// payload, chunks bounded by ChunkBytes, every key exactly once.
func TestRedisSourceReadsStateAndAbsence(t *testing.T) {
	ctx := context.Background()
	c := topotest.Client(t, topotest.Standalone(t).Addr())
	c.Do(ctx, "debug", "set-active-expire", "0") // keep the expired key in the dictionary
	c.Set(ctx, "plain", "v", 0)
	c.Set(ctx, "ttl", "v", 100*time.Second)
	for i := 0; i < 200; i++ {
		c.HSet(ctx, "big", fmt.Sprint("field-", i), strings.Repeat("y", 50+i))
	}
	var keys []string
	for i := 0; i < 50; i++ {
		k := "k" + strings.Repeat("z", i)
		c.Set(ctx, k, strings.Repeat("p", 100), 0)
		keys = append(keys, k)
	}
	keys = append(keys, "plain", "ttl", "big", "expired", "gone")
	// the three reads: the script (reads of a few keys, as the live phase
	// makes, on Redis 7.0 here), MULTI with PEXPIRETIME (a batch, as the
	// backfill reads), and the PTTL + TIME of older servers
	for _, tc := range []struct {
		name     string
		abs, lua bool
		per      int
	}{{"script", true, true, ScriptMaxKeys}, {"multi-pexpiretime", true, false, len(keys)}, {"multi-pttl", false, false, ScriptMaxKeys}} {
		t.Run(tc.name, func(t *testing.T) {
			c.Set(ctx, "expired", "v", time.Millisecond) // each read reclaims it
			time.Sleep(5 * time.Millisecond)
			if n := c.Do(ctx, "debug", "object", "expired").Err(); n != nil {
				t.Fatalf("the expired key is no longer in the dictionary: %v", n)
			}
			s := &RedisSource{Client: c, BigBytes: 4096, ChunkBytes: 1000}
			defer s.Close()
			if !tc.abs {
				s.absOnce.Do(func() {}) // as on a server without PEXPIRETIME
			}
			c.ConfigResetStat(ctx)
			checkRead(t, c, s, keys, tc.per)
			if s.abs.Load() != tc.abs {
				t.Fatalf("read with PEXPIRETIME %v, want %v (Redis 7.0 has it)", s.abs.Load(), tc.abs)
			}
			if got := s.Scripted(ctx); got != tc.abs {
				t.Fatalf("scripted %v after the read, want %v", got, tc.abs)
			}
			cs := c.Info(ctx, "commandstats").Val()
			if evals := strings.Contains(cs, "cmdstat_evalsha:"); evals != tc.lua {
				t.Fatalf("EVALSHA sent: %v, want %v", evals, tc.lua)
			}
			if multi := strings.Contains(cs, "cmdstat_multi:"); multi == tc.lua {
				t.Fatalf("MULTI sent: %v, want %v", multi, !tc.lua)
			}
			if tc.lua {
				// the 50 keys of 100 bytes overflow ChunkBytes within one
				// Read of 8: the script stops there and is called again
				_, rest, _ := strings.Cut(cs, "cmdstat_evalsha:calls=")
				calls, _ := strconv.Atoi(strings.Split(rest, ",")[0])
				if reads := (len(keys) + tc.per - 1) / tc.per; calls <= reads {
					t.Fatalf("%d EVALSHA calls for %d Reads: the script never stopped at ChunkBytes", calls, reads)
				}
			}
		})
	}
}

func checkRead(t *testing.T, c *redis.Client, s *RedisSource, keys []string, per int) {
	ctx := context.Background()
	before := time.Now().UnixMilli()
	got, chunks := readAllIn(t, s, keys, per)
	if chunks < 5 {
		t.Errorf("%d chunks for ~7 KB of payloads at ChunkBytes 1000", chunks)
	}
	want, _ := c.Dump(ctx, "plain").Result()
	if e := got["plain"]; e.Payload != want || e.ExpireAt != 0 || e.Type != "string" || e.Absent() || e.Big {
		t.Errorf("plain: %+v", e)
	}
	if e := got["ttl"]; e.ExpireAt < before+99_000 || e.ExpireAt > before+101_000 {
		t.Errorf("ttl: absolute expiry %d, want about %d", e.ExpireAt, before+100_000)
	}
	if e := got["big"]; !e.Big || e.Type != "hash" || e.Payload != "" {
		t.Errorf("big: %+v", e)
	}
	for _, k := range []string{"expired", "gone"} {
		if !got[k].Absent() {
			t.Errorf("%s: %+v, want absent", k, got[k])
		}
	}
}

// CLIENT NO-TOUCH: on a server that has it (Valkey 8) a read leaves the
// key's LFU counter alone; without it the read bumps it; a server without
// it (Redis 7.0) fails a NoTouch read instead of touching silently.
func TestRedisSourceNoTouch(t *testing.T) {
	ctx := context.Background()
	vk, err := exec.LookPath("valkey-server")
	if err != nil {
		t.Fatalf("valkey-server is not installed (scripts/deps.sh installs it): %v", err)
	}
	b := topotest.Backend(t).(*topology.ProcessBackend)
	b.Binary = vk
	srv, err := topology.Standalone(ctx, b, "valkey", "--maxmemory-policy", "allkeys-lfu")
	if err != nil {
		t.Fatal(err)
	}
	c := topotest.Client(t, srv.Addr())
	c.Set(ctx, "k", "v", 0)
	freq := func() int64 { return c.ObjectFreq(ctx, "k").Val() }
	f0 := freq()
	if ok, err := SupportsNoTouch(ctx, c); !ok || err != nil {
		t.Fatalf("SupportsNoTouch on Valkey: %v %v", ok, err)
	}
	s := &RedisSource{Client: c, NoTouch: true}
	defer s.Close()
	readAll(t, s, []string{"k"})
	if f := freq(); f != f0 {
		t.Fatalf("LFU counter %d → %d through a no-touch read", f0, f)
	}
	s2 := &RedisSource{Client: c}
	defer s2.Close()
	readAll(t, s2, []string{"k"})
	if f := freq(); f <= f0 {
		t.Fatalf("LFU counter %d → %d through a plain read: the check cannot see touches", f0, f)
	}

	old := topotest.Client(t, topotest.Standalone(t).Addr())
	old.Set(ctx, "k", "v", 0)
	if ok, err := SupportsNoTouch(ctx, old); ok || err != nil {
		t.Fatalf("SupportsNoTouch on Redis 7.0: %v %v", ok, err)
	}
	s3 := &RedisSource{Client: old, NoTouch: true}
	defer s3.Close()
	err = s3.Read(ctx, []string{"k"}, func([]*Entry) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "NO-TOUCH") {
		t.Fatalf("no-touch read on a server without it: %v", err)
	}
}

// NoTouchOnConnect: a client whose connections turn CLIENT NO-TOUCH on
// (the pages of logical copies) reads without resetting a key's idle time.
func TestNoTouchOnConnect(t *testing.T) {
	ctx := context.Background()
	vk, err := exec.LookPath("valkey-server")
	if err != nil {
		t.Fatalf("valkey-server is not installed (scripts/deps.sh installs it): %v", err)
	}
	b := topotest.Backend(t).(*topology.ProcessBackend)
	b.Binary = vk
	srv, err := topology.Standalone(ctx, b, "valkey")
	if err != nil {
		t.Fatal(err)
	}
	vc := topotest.Client(t, srv.Addr())
	opt := *vc.Options()
	opt.OnConnect = NoTouchOnConnect(nil)
	nt := redis.NewClient(&opt)
	defer nt.Close()
	raw, err := nt.Do(ctx, "client", "info").Text()
	if err != nil {
		t.Fatal(err)
	}
	if _, rest, _ := strings.Cut(raw, " flags="); !strings.Contains(strings.Fields(rest)[0], "T") {
		t.Fatalf("no T flag: %s", raw)
	}
	vc.Set(ctx, "k", "v", 0)
	time.Sleep(1100 * time.Millisecond)
	nt.Get(ctx, "k")
	if idle := vc.ObjectIdleTime(ctx, "k").Val(); idle < time.Second {
		t.Fatalf("idle time reset to %v by a no-touch read", idle)
	}
	vc.Get(ctx, "k")
	if idle := vc.ObjectIdleTime(ctx, "k").Val(); idle >= time.Second {
		t.Fatalf("a plain read did not touch: idle %v", idle)
	}
}

// A legacy user whose ACL lacks +pexpiretime (docs/permissions.md listed
// PTTL and TIME before) still reads: the source falls back to PTTL + TIME
// for good, with the same absolute expiry.
func TestRedisSourceWithoutPexpiretimePermission(t *testing.T) {
	ctx := context.Background()
	srv := topotest.Standalone(t)
	admin := topotest.Client(t, srv.Addr())
	admin.Set(ctx, "ttl", "v", 100*time.Second)
	if err := admin.Do(ctx, "acl", "setuser", "old", "on", ">pw", "~*", "resetchannels", "-@all",
		"+memory|usage", "+multi", "+exec", "+pttl", "+dump", "+time", "+type", "+info", "+ping", "+hello", "+auth").Err(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "old", Password: "pw", DisableIdentity: true})
	defer c.Close()
	s := &RedisSource{Client: c}
	defer s.Close()
	before := time.Now().UnixMilli()
	got, _ := readAll(t, s, []string{"ttl"})
	if e := got["ttl"]; e.Absent() || e.ExpireAt < before+99_000 || e.ExpireAt > before+101_000 {
		t.Fatalf("ttl read without +pexpiretime: %+v", e)
	}
	if s.abs.Load() {
		t.Fatal("still reading with PEXPIRETIME after NOPERM")
	}
}

// The read script refused (an ACL without +evalsha, as a managed user may
// have) or forgotten (SCRIPT FLUSH): the source reads the same entries,
// through MULTI for good after a refusal, through EVAL after a flush. And
// legacy full (maxmemory reached, noeviction) still answers the script: it
// writes nothing.
func TestRedisSourceScriptRefusedFlushedOrOOM(t *testing.T) {
	ctx := context.Background()
	srv := topotest.Standalone(t)
	admin := topotest.Client(t, srv.Addr())
	admin.Set(ctx, "ttl", "v", 100*time.Second)
	for i := 0; i < 100; i++ {
		admin.HSet(ctx, "big", fmt.Sprint("field-", i), strings.Repeat("y", 100))
	}
	check := func(t *testing.T, s *RedisSource) {
		t.Helper()
		before := time.Now().UnixMilli()
		got, _ := readAll(t, s, []string{"ttl", "big", "gone"})
		if e := got["ttl"]; e.Absent() || e.Type != "string" || e.ExpireAt < before+90_000 || e.ExpireAt > before+101_000 {
			t.Fatalf("ttl: %+v", e)
		}
		if e := got["big"]; !e.Big || e.Type != "hash" {
			t.Fatalf("big: %+v", e)
		}
		if !got["gone"].Absent() {
			t.Fatalf("gone: %+v", got["gone"])
		}
	}
	t.Run("acl-without-evalsha", func(t *testing.T) {
		if err := admin.Do(ctx, "acl", "setuser", "noscript", "on", ">pw", "~*", "resetchannels", "-@all",
			"+memory|usage", "+multi", "+exec", "+pexpiretime", "+dump", "+type", "+info", "+ping", "+hello", "+auth").Err(); err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "noscript", Password: "pw", DisableIdentity: true})
		defer c.Close()
		s := &RedisSource{Client: c, BigBytes: 4096}
		defer s.Close()
		check(t, s)
		if s.Scripted(ctx) {
			t.Fatal("still scripted after NOPERM")
		}
	})
	t.Run("script-flushed", func(t *testing.T) {
		s := &RedisSource{Client: admin, BigBytes: 4096}
		defer s.Close()
		check(t, s)
		if err := admin.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		check(t, s)
		if !s.Scripted(ctx) {
			t.Fatal("the read fell back to MULTI after SCRIPT FLUSH; EVAL should have cached the script again")
		}
		if ok, _ := admin.ScriptExists(ctx, readScriptSHA).Result(); len(ok) != 1 || !ok[0] {
			t.Fatal("the read script is not cached again after the flush")
		}
	})
	t.Run("legacy-full", func(t *testing.T) {
		used := ParseInfo(admin.Info(ctx, "memory").Val())["used_memory"]
		admin.ConfigSet(ctx, "maxmemory-policy", "noeviction")
		admin.ConfigSet(ctx, "maxmemory", used)
		defer admin.ConfigSet(ctx, "maxmemory", "0")
		if err := admin.Set(ctx, "more", strings.Repeat("x", 1<<20), 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "OOM") {
			t.Fatalf("legacy is not full: SET answered %v", err)
		}
		if err := admin.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		s := &RedisSource{Client: admin, BigBytes: 4096}
		defer s.Close()
		check(t, s)
		if !s.Scripted(ctx) {
			t.Fatal("the read script was refused on a full legacy")
		}
	})
}
