package verify_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/verify/verifytest"
)

var env *verifytest.Env

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	e, err := verifytest.Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "verify tests: cannot start the topology:", err)
		os.Exit(1)
	}
	env = e
	code := m.Run()
	e.Close()
	os.Exit(code)
}

type jsonDiff struct {
	Key      string `json:"key"`
	KeyB64   string `json:"key_b64"`
	Bucket   string `json:"bucket"`
	Category string `json:"category"`
	Detail   string `json:"detail"`
}

type jsonResult struct {
	Parity  bool `json:"parity"`
	Buckets []struct {
		Bucket string         `json:"bucket"`
		Counts map[string]int `json:"counts"`
		Sample *struct {
			Statement string `json:"statement"`
		} `json:"sample"`
	} `json:"buckets"`
	Differences []jsonDiff `json:"differences"`
}

func (d jsonDiff) name() string {
	if d.KeyB64 != "" {
		b, _ := base64.StdEncoding.DecodeString(d.KeyB64)
		return string(b)
	}
	return d.Key
}

// runVerify runs verify -o json and decodes its report.
func runVerify(t *testing.T, cfg string, args ...string) (int, jsonResult) {
	t.Helper()
	code, out, errs := verifytest.Run(t, append([]string{"verify", "--config", cfg, "-o", "json"}, args...)...)
	var r jsonResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("verify exited %d with no JSON report: %v\nstdout:\n%s\nstderr:\n%s", code, err, out, errs)
	}
	return code, r
}

func compared(r jsonResult) map[string]int {
	out := map[string]int{}
	for _, b := range r.Buckets {
		out[b.Bucket] = b.Counts["compared"]
	}
	return out
}

func TestCleanMigrateIsParity(t *testing.T) {
	env.Flush(t)
	keys := verifytest.Seed(t, env.LegacyClient(t), 200)
	cfg := env.Config(t, "")
	verifytest.Migrate(t, cfg)

	code, r := runVerify(t, cfg, "--rounds", "2", "--interval", "100ms")
	if code != 0 || !r.Parity || len(r.Differences) != 0 {
		t.Fatalf("after a clean migrate: exit %d parity %v differences %+v", code, r.Parity, r.Differences)
	}
	want := map[string]int{}
	for _, k := range keys {
		want[map[string]string{"cache": "cache", "sess": "session", "queue": "queue", "rl": "ratelimit"}[strings.SplitN(k, ":", 2)[0]]]++
	}
	if got := compared(r); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("compared per bucket = %v, want %v", got, want)
	}

	// The result is recorded for status.
	st, err := mustState(t, cfg).Load()
	if err != nil {
		t.Fatal(err)
	}
	if st.LastVerify == nil || !st.LastVerify.Parity || st.LastVerify.Buckets["session"].Compared != int64(want["session"]) {
		t.Errorf("state last verify = %+v", st.LastVerify)
	}

	// Text output and JUnit.
	junit := filepath.Join(t.TempDir(), "verify.xml")
	code, out, _ := verifytest.Run(t, "verify", "--config", cfg, "--rounds", "1", "--junit", junit)
	if code != 0 || !strings.Contains(out, "result: PARITY") {
		t.Errorf("text verify exit %d:\n%s", code, out)
	}
	x, err := os.ReadFile(junit)
	if err != nil || !strings.Contains(string(x), `failures="0"`) || !strings.Contains(string(x), "parity session") {
		t.Errorf("junit: %v\n%s", err, x)
	}

	// A sample compares about that share of keys and states its confidence.
	code, r = runVerify(t, cfg, "--sample", "50", "--rounds", "1")
	if code != 0 {
		t.Fatalf("sampled verify exit %d", code)
	}
	for _, b := range r.Buckets {
		if b.Sample == nil || !strings.Contains(b.Sample.Statement, "95% confidence") {
			t.Errorf("bucket %s: no confidence statement: %+v", b.Bucket, b.Sample)
		}
	}
	if c := compared(r)["cache"]; c < want["cache"]/4 || c > want["cache"]*3/4 {
		t.Errorf("50%% sample compared %d of %d cache keys", c, want["cache"])
	}
}

func TestInjectedDifferences(t *testing.T) {
	env.Flush(t)
	verifytest.Seed(t, env.LegacyClient(t), 50)
	cfg := env.Config(t, "")
	verifytest.Migrate(t, cfg)
	ctx := context.Background()
	cache, sess, queue, rl := env.Target(t, "cache"), env.Target(t, "session"), env.Target(t, "queue"), env.Target(t, "ratelimit")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{}
	// deleted keys
	must(cache.Del(ctx, "cache:str:1").Err())
	must(sess.Del(ctx, "sess:hash:1").Err())
	must(cache.Del(ctx, "cache:bin:\xff\xfe\x00k").Err())
	want["cache:str:1"], want["sess:hash:1"], want["cache:bin:\xff\xfe\x00k"] = "missing", "missing", "missing"
	// changed values of every type (TTL kept)
	must(cache.Do(ctx, "set", "cache:str:2", "changed", "keepttl").Err())
	must(sess.HSet(ctx, "sess:hash:2", "b", "changed").Err())
	must(queue.LSet(ctx, "queue:list:2", 1, "changed").Err())
	must(rl.SAdd(ctx, "rl:set:2", "intruder").Err())
	must(rl.SRem(ctx, "rl:set:3", "m1").Err())
	must(rl.SAdd(ctx, "rl:set:3", "m1x").Err()) // same size, other member
	must(sess.ZAdd(ctx, "sess:zset:2", redis.Z{Score: 99, Member: "p1"}).Err())
	must(queue.XAdd(ctx, &redis.XAddArgs{Stream: "queue:stream:2", ID: "3-1", Values: []any{"f", "new"}}).Err())
	for _, k := range []string{"cache:str:2", "sess:hash:2", "queue:list:2", "rl:set:2", "rl:set:3", "sess:zset:2", "queue:stream:2"} {
		want[k] = "value"
	}
	// changed TTLs
	must(cache.Expire(ctx, "cache:hash:3", 5*time.Minute).Err())
	must(sess.Persist(ctx, "sess:str:4").Err())
	must(rl.Expire(ctx, "rl:str:0", time.Hour).Err())
	want["cache:hash:3"], want["sess:str:4"], want["rl:str:0"] = "ttl", "ttl", "ttl"
	// extra keys, and a key the plan routes elsewhere (not this bucket's business)
	must(cache.Set(ctx, "cache:extra:1", "x", 0).Err())
	must(sess.HSet(ctx, "sess:extra:1", "f", "v").Err())
	must(sess.Set(ctx, "rl:foreign", "routed to ratelimit, not session", 0).Err())
	must(queue.Set(ctx, "unrouted:foreign", "no rule", 0).Err())
	want["cache:extra:1"], want["sess:extra:1"] = "extra", "extra"
	// a type change
	must(sess.Del(ctx, "sess:str:3").Err())
	must(sess.HSet(ctx, "sess:str:3", "f", "v").Err())
	want["sess:str:3"] = "type"
	// logically equal content whose DUMP differs (other insertion order):
	// not a difference
	must(sess.Del(ctx, "sess:hash:3").Err())
	must(sess.HSet(ctx, "sess:hash:3", "c", "3", "b", "2", "a", "1").Err())
	must(rl.Del(ctx, "rl:set:4").Err())
	must(rl.SAdd(ctx, "rl:set:4", "m14", "m3", "m2", "m1").Err())
	if a, b := env.LegacyClient(t).Dump(ctx, "rl:set:4").Val(), rl.Dump(ctx, "rl:set:4").Val(); a == b {
		t.Fatal("fixture: rl:set:4 payloads should differ")
	}

	code, r := runVerify(t, cfg, "--rounds", "2", "--interval", "100ms")
	if code != 3 || r.Parity {
		t.Fatalf("exit %d parity %v, want 3 false", code, r.Parity)
	}
	got := map[string]string{}
	for _, d := range r.Differences {
		got[d.name()] = d.Category
	}
	if fmt.Sprint(sortedPairs(got)) != fmt.Sprint(sortedPairs(want)) {
		t.Errorf("differences:\n got %v\nwant %v\nfull: %+v", sortedPairs(got), sortedPairs(want), r.Differences)
	}
	for _, d := range r.Differences {
		if d.KeyB64 != "" && d.Key != "" {
			t.Errorf("key and key_b64 both set: %+v", d)
		}
		if strings.HasPrefix(d.name(), "cache:bin:") && d.KeyB64 == "" {
			t.Errorf("non-UTF-8 key not base64: %+v", d)
		}
	}
	st, _ := mustState(t, cfg).Load()
	if st.LastVerify == nil || st.LastVerify.Parity || st.LastVerify.Buckets["session"].Extra != 1 {
		t.Errorf("state last verify = %+v", st.LastVerify)
	}
}

// With a type-restricted rule, an extra key on a target is attributed by
// its type where the type decides (verify asks TYPE only for those keys):
// a list jobs:* belongs to the queue target, any other jobs:* key to cache.
func TestExtraKeysRoutedByType(t *testing.T) {
	env.Flush(t)
	verifytest.Seed(t, env.LegacyClient(t), 10)
	cfg := env.Config(t, "")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	typed := strings.Replace(string(b), "rules:\n", "rules:\n  - {glob: \"jobs:*\", type: list, bucket: queue}\n  - {prefix: \"jobs:\", bucket: cache}\n", 1)
	if typed == string(b) {
		t.Fatal("fixture: no rules section in the config")
	}
	if err := os.WriteFile(cfg, []byte(typed), 0o600); err != nil {
		t.Fatal(err)
	}
	verifytest.Migrate(t, cfg)
	ctx := context.Background()
	cache, queue := env.Target(t, "cache"), env.Target(t, "queue")
	for _, err := range []error{
		queue.RPush(ctx, "jobs:list", "j").Err(),              // queue's: extra
		cache.Set(ctx, "jobs:string", "s", 0).Err(),           // cache's: extra
		cache.RPush(ctx, "jobs:misplaced", "j").Err(),         // a list: queue's business, not cache's
		queue.Set(ctx, "jobs:misplaced-string", "s", 0).Err(), // a string: cache's business
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	code, r := runVerify(t, cfg)
	if code != 3 {
		t.Fatalf("exit %d, want 3", code)
	}
	got := map[string]string{}
	for _, d := range r.Differences {
		got[d.name()] = d.Bucket + " " + d.Category
	}
	want := map[string]string{"jobs:list": "queue extra", "jobs:string": "cache extra"}
	if fmt.Sprint(sortedPairs(got)) != fmt.Sprint(sortedPairs(want)) {
		t.Errorf("differences:\n got %v\nwant %v", sortedPairs(got), sortedPairs(want))
	}
}

func sortedPairs(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%q=%s", k, v))
	}
	sort.Strings(out)
	return out
}

func mustState(t *testing.T, cfg string) *state.Dir {
	d, err := state.Open(verifytest.StateDir(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Under a steady write load on legacy, the rewritten keys are in flux, never
// differences, and the others are still compared: a real difference among
// them is found.
func TestWriteLoadInFlux(t *testing.T) {
	env.Flush(t)
	lc := env.LegacyClient(t)
	keys := verifytest.Seed(t, lc, 2000)
	cfg := env.Config(t, "")
	verifytest.Migrate(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(env.Target(t, "cache").Del(context.Background(), "cache:bulk:1500").Err()) // untouched by the load

	var rewritten []string
	for i := 0; i < 100; i++ {
		rewritten = append(rewritten, fmt.Sprintf("cache:bulk:%d", i*7))
	}
	rewritten = append(rewritten, "sess:hash:0", "queue:list:1", "rl:str:2")
	var wg sync.WaitGroup
	var writes atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ctx.Err() == nil; n++ {
			p := lc.Pipeline()
			for _, k := range rewritten {
				switch {
				case strings.HasPrefix(k, "sess:hash"):
					p.HSet(ctx, k, "n", n)
				case strings.HasPrefix(k, "queue:list"):
					p.RPush(ctx, k, n)
				default:
					p.Set(ctx, k, fmt.Sprint("load-", n), 0)
				}
			}
			if _, err := p.Exec(ctx); err == nil {
				writes.Add(1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	time.Sleep(50 * time.Millisecond)
	code, r := runVerify(t, cfg, "--rounds", "3", "--interval", "300ms")
	cancel()
	wg.Wait()
	if writes.Load() < 10 {
		t.Fatalf("the load wrote only %d batches", writes.Load())
	}
	isRewritten := map[string]bool{}
	for _, k := range rewritten {
		isRewritten[k] = true
	}
	inFlux := 0
	for _, d := range r.Differences {
		switch {
		case d.Key == "cache:bulk:1500":
			if d.Category != "missing" {
				t.Errorf("untouched deleted key: %+v", d)
			}
		case isRewritten[d.Key] && d.Category == "in_flux":
			inFlux++
		default:
			t.Errorf("false difference: %+v", d)
		}
	}
	if inFlux != len(rewritten) {
		t.Errorf("%d of %d rewritten keys in flux", inFlux, len(rewritten))
	}
	if code != 3 || r.Parity {
		t.Errorf("exit %d parity %v, want 3 false (one key missing)", code, r.Parity)
	}
	total := 0
	for _, c := range compared(r) {
		total += c
	}
	if total != len(keys) {
		t.Errorf("compared %d keys, want %d", total, len(keys))
	}
}

// A cache target with a small maxmemory and allkeys-lru evicts keys during
// migrate; verify reports them as evicted, not missing, and keeps parity.
func TestEvictedCacheKeys(t *testing.T) {
	env.Flush(t)
	small, err := env.StartExtra(context.Background(), "cache-small", "--maxmemory", "3mb", "--maxmemory-policy", "allkeys-lru")
	if err != nil {
		t.Fatal(err)
	}
	lc := env.LegacyClient(t)
	verifytest.Seed(t, lc, 0)
	ctx := context.Background()
	p := lc.Pipeline()
	big := strings.Repeat("x", 2000)
	for i := 0; i < 3000; i++ { // about 6 MB: twice the target's memory
		p.Set(ctx, fmt.Sprintf("cache:big:%d", i), big, 0)
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := env.Config(t, "redis://"+small.Addr())
	verifytest.Migrate(t, cfg)

	code, r := runVerify(t, cfg, "--rounds", "2", "--interval", "100ms")
	evicted := 0
	for _, d := range r.Differences {
		if d.Bucket != "cache" || d.Category != "evicted" {
			t.Errorf("unexpected difference %+v", d)
			continue
		}
		evicted++
	}
	if evicted == 0 {
		t.Fatal("no key reported evicted; the fixture did not overflow the target")
	}
	if code != 0 || !r.Parity {
		t.Errorf("exit %d parity %v: evictions of a cache are not a loss", code, r.Parity)
	}
	// The same missing keys on a target that evicted nothing are losses.
	env.Flush(t)
	verifytest.Seed(t, lc, 0)
	cfg2 := env.Config(t, "")
	verifytest.Migrate(t, cfg2)
	if err := env.Target(t, "cache").Del(ctx, "cache:str:0").Err(); err != nil {
		t.Fatal(err)
	}
	code, r = runVerify(t, cfg2, "--rounds", "1")
	if code != 3 || len(r.Differences) != 1 || r.Differences[0].Category != "missing" {
		t.Errorf("exit %d differences %+v, want one missing", code, r.Differences)
	}
}

// Keys that expire between rounds are no difference; keys missing on the
// target whose legacy TTL is long are.
func TestExpiredBetweenRoundsIsNoDifference(t *testing.T) {
	env.Flush(t)
	lc := env.LegacyClient(t)
	verifytest.Seed(t, lc, 0)
	cfg := env.Config(t, "")
	verifytest.Migrate(t, cfg)
	ctx := context.Background()
	for _, k := range []string{"sess:short:1", "sess:short:2"} {
		// only on legacy, expiring after the first round
		if err := lc.Set(ctx, k, "expires soon", 2500*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.Target(t, "session").Del(ctx, "sess:str:2").Err(); err != nil {
		t.Fatal(err)
	}
	code, r := runVerify(t, cfg, "--rounds", "2", "--interval", "3s")
	if code != 3 || len(r.Differences) != 1 || r.Differences[0].Key != "sess:str:2" || r.Differences[0].Category != "missing" {
		t.Errorf("exit %d, differences %+v; want only sess:str:2 missing", code, r.Differences)
	}
}

func TestUsageErrors(t *testing.T) {
	cfg := env.Config(t, "")
	for _, args := range [][]string{
		{"--bucket", "nope"},
		{"--sample", "0"},
		{"--sample", "101"},
		{"--rounds", "0"},
	} {
		code, _, errs := verifytest.Run(t, append([]string{"verify", "--config", cfg}, args...)...)
		if code != 2 {
			t.Errorf("verify %v: exit %d, want 2 (%s)", args, code, errs)
		}
	}
	// A plan other than the migration's: refused.
	// (a bucket in flight: the plan may change once every bucket is rolled
	// back, and earlier tests of this package may have rolled back)
	var saved state.State
	if err := mustState(t, cfg).Update(func(s *state.State) error {
		saved = *s
		saved.Buckets = map[string]*state.Bucket{}
		for n, b := range s.Buckets {
			c := *b
			saved.Buckets[n] = &c
		}
		s.PlanHash = "another-plan"
		if s.Buckets["session"] == nil {
			s.Buckets["session"] = &state.Bucket{}
		}
		s.Buckets["session"].Phase = state.Copying
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer mustState(t, cfg).Update(func(s *state.State) error { *s = saved; return nil })
	if code, _, errs := verifytest.Run(t, "verify", "--config", cfg); code != 4 || !strings.Contains(errs, "plan changed") {
		t.Errorf("changed plan: exit %d (%s), want 4", code, errs)
	}
}

// A legacy user whose ACL grants GET but not MGET (what the permissions
// page asked for before verify used MGET) still gets a full verify: the
// strings are read with GET, and a difference is still found.
func TestLegacyWithoutMGET(t *testing.T) {
	env.Flush(t)
	ctx := context.Background()
	lc := env.LegacyClient(t)
	verifytest.Seed(t, lc, 50)
	cfg := env.Config(t, "")
	verifytest.Migrate(t, cfg)
	if err := lc.Do(ctx, "acl", "setuser", "nomget", "on", ">pw", "~*", "&*", "+@all", "-mget").Err(); err != nil {
		t.Fatal(err)
	}
	defer lc.Do(ctx, "acl", "deluser", "nomget")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := env.Legacy.Addr()
	y := strings.Replace(string(b), `"redis://`+addr+`"`, `"redis://nomget:pw@`+addr+`"`, 1)
	if y == string(b) {
		t.Fatal("legacy URL not found in the configuration")
	}
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, r := runVerify(t, cfg, "--rounds", "1"); code != 0 || !r.Parity {
		t.Fatalf("without MGET: exit %d, parity %v, differences %+v", code, r.Parity, r.Differences)
	}
	if err := env.Target(t, "ratelimit").Set(ctx, "rl:str:0", "changed", 0).Err(); err != nil {
		t.Fatal(err)
	}
	code, r := runVerify(t, cfg, "--rounds", "1")
	if code != 3 || len(r.Differences) != 1 || r.Differences[0].Key != "rl:str:0" || r.Differences[0].Category != "value" {
		t.Errorf("without MGET, one changed value: exit %d, differences %+v", code, r.Differences)
	}
}

// Extras are found through the two passes' key digests: on an exact copy
// no partition disagrees (nothing is looked up on legacy key by key); with
// a few keys only on the targets, exactly those keys are reported, and only
// their partitions were resolved.
func TestExtrasThroughDigests(t *testing.T) {
	env.Flush(t)
	ctx := context.Background()
	verifytest.Seed(t, env.LegacyClient(t), 3000)
	cfg := env.Config(t, "")
	verifytest.Migrate(t, cfg)
	resolved := func() (int, jsonResult) {
		t.Helper()
		code, out, errs := verifytest.Run(t, "verify", "--config", cfg, "-o", "json", "--rounds", "1")
		var r jsonResult
		var extra struct {
			Resolved *int `json:"resolved_partitions"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil || json.Unmarshal([]byte(out), &extra) != nil || extra.Resolved == nil {
			t.Fatalf("verify exited %d with no resolved_partitions in its report: %v\n%s\n%s", code, err, out, errs)
		}
		return *extra.Resolved, r
	}
	if n, r := resolved(); n != 0 || !r.Parity {
		t.Fatalf("exact copy: %d partitions resolved, parity %v, differences %+v", n, r.Parity, r.Differences)
	}
	extras := []string{"cache:extra:a", "cache:extra:b", "sess:extra:z"}
	for _, k := range extras {
		b := map[bool]string{true: "cache", false: "session"}[strings.HasPrefix(k, "cache:")]
		if err := env.Target(t, b).Set(ctx, k, "only here", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	n, r := resolved()
	var got []string
	for _, d := range r.Differences {
		if d.Category != "extra" {
			t.Errorf("unexpected difference %+v", d)
		}
		got = append(got, d.Key)
	}
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(extras, " ") || n < 1 || n > len(extras) {
		t.Errorf("extras %v with %d partitions resolved; want %v in 1..%d partitions", got, n, extras, len(extras))
	}
}

// The legacy pass SCANs legacy in steps of several batches (a chain of
// SCAN round trips, each waiting behind the workers' pipelines on the
// single-threaded legacy, bounded the pass), except under --max-ops, where
// one SCAN counts one command and stays one batch.
func TestLegacyScanSteps(t *testing.T) {
	env.Flush(t)
	ctx := context.Background()
	lc := env.LegacyClient(t)
	verifytest.Seed(t, lc, 3000)
	cfg := env.Config(t, "")
	verifytest.Migrate(t, cfg)
	scans := func(args ...string) int {
		t.Helper()
		if err := lc.ConfigResetStat(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if code, r := runVerify(t, cfg, append([]string{"--rounds", "1", "--batch", "100"}, args...)...); code != 0 || !r.Parity {
			t.Fatalf("verify %v: exit %d, parity %v, differences %+v", args, code, r.Parity, r.Differences)
		}
		info, err := lc.Info(ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		var n int
		for _, line := range strings.Split(info, "\n") {
			if strings.HasPrefix(line, "cmdstat_scan:") {
				fmt.Sscanf(strings.TrimPrefix(line, "cmdstat_scan:"), "calls=%d", &n)
			}
		}
		return n
	}
	// 3000 keys in steps of 100 keys: about 40 SCANs; in steps of 4 batches
	// about 10.
	if n := scans(); n == 0 || n > 18 {
		t.Errorf("legacy pass without --max-ops: %d SCANs of legacy for 3000 keys in batches of 100; want at most 18 (steps of 4 batches)", n)
	}
	if n := scans("--max-ops", "1000000"); n < 25 {
		t.Errorf("legacy pass under --max-ops: %d SCANs of legacy for 3000 keys in batches of 100; want at least 25 (steps of one batch)", n)
	}
}
