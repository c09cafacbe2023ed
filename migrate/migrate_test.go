package migrate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/cmd"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/topology"
	"github.com/redisplit/redisplit/topology/topotest"
)

// Shared targets for the package (2 cores: one topology, flushed per test):
// a 3-master cluster for cache (AOF on, so a restarted node keeps its data),
// master+replica+3 sentinels for session, standalones for queue and
// ratelimit. Every test gets its own legacy server.
var (
	cluster *topology.Cluster
	sent    *topology.Sentinel
	rlSrv   topology.Server
	queue   topology.Server
	bin     string // the redisplit binary, for kill -9
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "redisplit-migrate-test-")
	if err != nil {
		panic(err)
	}
	code := func() int {
		b, err := topology.NewProcessBackend(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer b.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if cluster, err = topology.StartCluster(ctx, b, "cache", 3, "--appendonly", "yes"); err == nil {
			if sent, err = topology.StartSentinel(ctx, b, "session", "sessions"); err == nil {
				if rlSrv, err = topology.Standalone(ctx, b, "ratelimit"); err == nil {
					queue, err = topology.Standalone(ctx, b, "queue")
				}
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "topology:", err)
			return 1
		}
		bin = filepath.Join(dir, "redisplit")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/redisplit/redisplit").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.RemoveAll(dir)
	os.Exit(code)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// targets are clients for the four targets, keyed by bucket.
func targets(t *testing.T) map[string]redis.UniversalClient {
	t.Helper()
	m := map[string]redis.UniversalClient{
		"cache":     redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs(), DisableIdentity: true}),
		"session":   redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "sessions", SentinelAddrs: sent.SentinelAddrs(), DisableIdentity: true}),
		"ratelimit": redis.NewClient(&redis.Options{Addr: rlSrv.Addr(), DisableIdentity: true}),
		"queue":     redis.NewClient(&redis.Options{Addr: queue.Addr(), DisableIdentity: true}),
	}
	t.Cleanup(func() {
		for _, c := range m {
			c.Close()
		}
	})
	return m
}

// flush empties every target.
func flush(t *testing.T, tg map[string]redis.UniversalClient) {
	t.Helper()
	ctx := ctxT(t)
	for b, c := range tg {
		var err error
		if cc, ok := c.(*redis.ClusterClient); ok {
			err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.FlushAll(ctx).Err() })
		} else {
			err = c.FlushAll(ctx).Err()
		}
		if err != nil {
			t.Fatalf("flush %s: %v", b, err)
		}
	}
}

const rules = `presets: {none: true}
rules:
  - {prefix: "cache:", bucket: cache}
  - {prefix: "sess:", bucket: session}
  - {prefix: "queue:", bucket: queue}
  - {prefix: "rl:", bucket: ratelimit}
`

// writeConfig writes a config with the four targets (override some with
// over: bucket → YAML flow mapping) and returns its path and state dir.
func writeConfig(t *testing.T, legacy string, extra string, over map[string]string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	tg := map[string]string{
		"cache":     fmt.Sprintf("{kind: cluster, addrs: [%s]}", strings.Join(cluster.Addrs(), ", ")),
		"session":   fmt.Sprintf("{kind: sentinel, master: sessions, sentinels: [%s]}", strings.Join(sent.SentinelAddrs(), ", ")),
		"ratelimit": fmt.Sprintf("{kind: standalone, url: \"redis://%s/0\"}", rlSrv.Addr()),
		"queue":     fmt.Sprintf("{kind: standalone, url: \"redis://%s/0\"}", queue.Addr()),
	}
	for b, v := range over {
		if v == "" {
			delete(tg, b)
		} else {
			tg[b] = v
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "legacy: {url: \"redis://%s/0\"}\nstate_dir: %s\ntargets:\n", legacy, filepath.Join(dir, "state"))
	for _, b := range []string{"cache", "session", "queue", "ratelimit"} {
		if v, ok := tg[b]; ok {
			fmt.Fprintf(&sb, "  %s: %s\n", b, v)
		}
	}
	sb.WriteString(rules + extra)
	p := filepath.Join(dir, "redisplit.yaml")
	if err := os.WriteFile(p, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, filepath.Join(dir, "state")
}

// run runs the CLI in-process (no terminal).
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	app := &cmd.App{In: strings.NewReader(""), Out: &out, Err: &errb}
	code := cmd.Run(ctxT(t), app, args)
	return code, out.String(), errb.String()
}

var buckets = map[string]string{"cache:": "cache", "sess:": "session", "queue:": "queue", "rl:": "ratelimit"}

func bucketOf(k string) string {
	for p, b := range buckets {
		if strings.HasPrefix(k, p) {
			return b
		}
	}
	return ""
}

// fill writes every Redis type, binary names and values, TTLs, big keys
// (above 16 KiB) and n small keys per bucket.
func fill(t *testing.T, c *redis.Client, n int) {
	t.Helper()
	ctx := ctxT(t)
	bin := "\x00\xff\xfe binary \r\n value \x01"
	for p := range buckets {
		pl := c.Pipeline()
		pl.Set(ctx, p+"str", "hello", 0)
		pl.Set(ctx, p+"int", 12345, 0)
		pl.Set(ctx, p+"bin\x00\xff\n\x7fkey", bin, 0)
		pl.Set(ctx, p+"ttl", "expires", time.Hour)
		pl.HSet(ctx, p+"hash", "f1", "v1", "f\x002", bin, "n", 3)
		pl.PExpire(ctx, p+"hash", 90*time.Minute)
		pl.RPush(ctx, p+"list", "a", "b", bin, "a")
		pl.SAdd(ctx, p+"set", "x", "y", bin)
		pl.SAdd(ctx, p+"intset", 1, 2, 3)
		pl.ZAdd(ctx, p+"zset", redis.Z{Score: 1.5, Member: "one"}, redis.Z{Score: -2, Member: bin})
		pl.XAdd(ctx, &redis.XAddArgs{Stream: p + "stream", ID: "1-1", Values: []any{"b", "2", "a", "1"}})
		pl.XAdd(ctx, &redis.XAddArgs{Stream: p + "stream", ID: "2-1", Values: []any{"z", bin}})
		pl.XGroupCreate(ctx, p+"stream", "workers", "0")
		// a pending entry (delivered to alice, not acknowledged), an idle
		// consumer, a second group that acknowledged what it read
		pl.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "workers", Consumer: "alice", Streams: []string{p + "stream", ">"}, Count: 1})
		pl.XGroupCreateConsumer(ctx, p+"stream", "workers", "bob")
		pl.XGroupCreate(ctx, p+"stream", "audit", "0")
		pl.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "audit", Consumer: "eve", Streams: []string{p + "stream", ">"}})
		pl.XAck(ctx, p+"stream", "audit", "1-1", "2-1")
		// big keys (chunked path with --big-bytes 16384)
		big := strings.Repeat("0123456789abcdef", 4096) // 64 KiB
		pl.Set(ctx, p+"bigstr", big, 2*time.Hour)
		for i := 0; i < 3000; i += 500 {
			var h, l, s []any
			var z []redis.Z
			for j := i; j < i+500; j++ {
				h = append(h, fmt.Sprintf("field:%d", j), fmt.Sprintf("value-%d-%s", j, bin))
				l = append(l, fmt.Sprintf("item-%d", j))
				s = append(s, fmt.Sprintf("member-%d", j))
				z = append(z, redis.Z{Score: float64(j) / 3, Member: fmt.Sprintf("m%d", j)})
			}
			pl.HSet(ctx, p+"bighash", h...)
			pl.RPush(ctx, p+"biglist", l...)
			pl.SAdd(ctx, p+"bigset", s...)
			pl.ZAdd(ctx, p+"bigzset", z...)
		}
		for i := 1; i <= 1500; i++ {
			pl.XAdd(ctx, &redis.XAddArgs{Stream: p + "bigstream", ID: fmt.Sprintf("%d-0", i), Values: []any{"n", i, "pad", strings.Repeat("x", 20)}})
		}
		pl.XGroupCreate(ctx, p+"bigstream", "g", "700-0")
		// 1200 pending entries (more than one page), some delivered twice
		pl.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "carol", Streams: []string{p + "bigstream", ">"}, Count: 1200})
		pl.XClaim(ctx, &redis.XClaimArgs{Stream: p + "bigstream", Group: "g", Consumer: "dave", Messages: []string{"701-0", "702-0", "1500-0"}})
		for i := 0; i < n; i++ {
			pl.Set(ctx, fmt.Sprintf("%sn:%d", p, i), strings.Repeat("v", 50+i%200), time.Duration(1+i%5)*time.Hour)
		}
		if _, err := pl.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// canon is the logical value of a key: type and content, order-independent
// where Redis is.
func canon(ctx context.Context, c redis.UniversalClient, k string) string {
	typ := c.Type(ctx, k).Val()
	var v any
	switch typ {
	case "string":
		v = c.Get(ctx, k).Val()
	case "hash":
		m := c.HGetAll(ctx, k).Val()
		var s []string
		for f, x := range m {
			s = append(s, f+"="+x)
		}
		sort.Strings(s)
		v = s
	case "list":
		v = c.LRange(ctx, k, 0, -1).Val()
	case "set":
		s := c.SMembers(ctx, k).Val()
		sort.Strings(s)
		v = s
	case "zset":
		v = c.ZRangeWithScores(ctx, k, 0, -1).Val()
	case "stream":
		// groups with their position, consumers and pending entries (idle
		// times aside: they move)
		var gs []string
		for _, g := range c.XInfoGroups(ctx, k).Val() {
			gs = append(gs, fmt.Sprintf("%s@%s read %d pending %d", g.Name, g.LastDeliveredID, g.EntriesRead, g.Pending))
			for _, cs := range c.XInfoConsumers(ctx, k, g.Name).Val() {
				gs = append(gs, fmt.Sprintf("  consumer %s pending %d", cs.Name, cs.Pending))
			}
			for _, e := range c.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: k, Group: g.Name, Start: "-", End: "+", Count: 100000}).Val() {
				gs = append(gs, fmt.Sprintf("  pending %s %s ×%d", e.ID, e.Consumer, e.RetryCount))
			}
		}
		v = []any{c.Do(ctx, "xrange", k, "-", "+").Val(), gs, c.XInfoStream(ctx, k).Val().LastGeneratedID}
	}
	return fmt.Sprintf("%s:%q", typ, fmt.Sprint(v))
}

// assertMigrated checks that every legacy key of a migrated bucket is on
// exactly its bucket's target, with the same logical value and an absolute
// expiry within 1 s, and that targets hold nothing else.
func assertMigrated(t *testing.T, legacy *redis.Client, tg map[string]redis.UniversalClient, migrated ...string) {
	t.Helper()
	ctx := ctxT(t)
	want := map[string]int64{}
	on := map[string]bool{}
	for _, b := range migrated {
		on[b] = true
	}
	iter := legacy.Scan(ctx, 0, "", 1000).Iterator()
	bad := 0
	for iter.Next(ctx) {
		k := iter.Val()
		b := bucketOf(k)
		if !on[b] {
			continue
		}
		want[b]++
		c := tg[b]
		if lv, tv := canon(ctx, legacy, k), canon(ctx, c, k); lv != tv {
			if bad++; bad < 5 {
				t.Errorf("%s key %q: legacy %.200s, target %.200s", b, k, lv, tv)
			}
			continue
		}
		le, te := legacy.PExpireTime(ctx, k).Val(), c.PExpireTime(ctx, k).Val()
		if d := le - te; d > time.Second || d < -time.Second {
			t.Errorf("%s key %q: expiry legacy %v target %v", b, k, le, te)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	for _, b := range migrated {
		var n int64
		if cc, ok := tg[b].(*redis.ClusterClient); ok {
			_ = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
				atomic.AddInt64(&n, c.DBSize(ctx).Val())
				return nil
			})
		} else {
			n = tg[b].DBSize(ctx).Val()
		}
		if n != want[b] {
			t.Errorf("target %s holds %d keys, legacy has %d of that bucket", b, n, want[b])
		}
		if want[b] == 0 {
			t.Errorf("bucket %s: no keys in the test data", b)
		}
	}
}

func TestMigrateEveryTypeIntoClusterSentinelStandalone(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	fill(t, lc, 300)
	cfg, stateDir := writeConfig(t, leg.Addr(), "", nil)
	code, out, errs := run(t, "--config", cfg, "migrate", "--yes", "--big-bytes", "16384")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	assertMigrated(t, lc, tg, "cache", "session", "queue", "ratelimit")
	// progress (plain lines without a terminal): keys copied of planned, per bucket
	n := len(lc.Keys(ctxT(t), "cache:*").Val())
	if want := fmt.Sprintf("cache %d/%d", n, n); !strings.Contains(errs, want) {
		t.Errorf("progress lacks %q:\n%s", want, errs)
	}

	// the journal names every key written, per bucket
	sd, _ := state.Open(stateDir)
	for _, b := range []string{"cache", "session"} {
		seen := map[string]bool{}
		if err := sd.ReadJournal(b, func(k string) error { seen[k] = true; return nil }); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"bin\x00\xff\n\x7fkey", "bighash", "str"} {
			p := map[string]string{"cache": "cache:", "session": "sess:"}[b]
			if !seen[p+k] {
				t.Errorf("journal of %s lacks %q", b, p+k)
			}
		}
	}
	// big keys went the chunked path; the rest by RESTORE
	var res struct {
		Buckets []struct {
			Bucket      string `json:"bucket"`
			Phase       string `json:"phase"`
			Copied      bool   `json:"copied"`
			KeysCopied  int64  `json:"keys_copied"`
			CheckpointS *float64
		} `json:"buckets"`
	}
	code, out, errs = run(t, "--config", cfg, "status", "-o", "json")
	if code != 0 {
		t.Fatalf("status exit %d: %s", code, errs)
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(res.Buckets) != 4 {
		t.Fatalf("status buckets: %s", out)
	}
	for _, b := range res.Buckets {
		if b.Phase != "copying" || !b.Copied || b.KeysCopied < 300 {
			t.Errorf("status %s: %+v", b.Bucket, b)
		}
	}
	code, out, _ = run(t, "--config", cfg, "status")
	if code != 0 || !strings.Contains(out, "backfill done") || !strings.Contains(out, "last verify: never") {
		t.Errorf("status text:\n%s", out)
	}
}

func TestMigrateLogicalPath(t *testing.T) {
	// --logical forces the path a "DUMP payload version or checksum are
	// wrong" reply switches to (TestMigrateFromNewerServerFallsBackToLogical
	// gets that reply from a real version mismatch).
	tg := targets(t)
	flush(t, tg)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	migrateAllLogically(t, leg.Addr(), lc, tg, "--logical")
}

// A target of another version: legacy is Valkey 8, whose DUMP payloads
// (RDB 11) the Redis 7.0 targets reject with "DUMP payload version or
// checksum are wrong". Without --logical, migrate must switch to the
// logical copy by itself, and every key of every type must arrive with its
// value and expiry.
func TestMigrateFromNewerServerFallsBackToLogical(t *testing.T) {
	vk, err := exec.LookPath("valkey-server")
	if err != nil {
		t.Fatalf("valkey-server is not installed (scripts/deps.sh installs it): %v", err)
	}
	b, err := topology.NewProcessBackend(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b.Binary = vk
	t.Cleanup(func() { b.Close() })
	leg, err := topology.Standalone(ctxT(t), b, "legacy-valkey")
	if err != nil {
		t.Fatal(err)
	}
	tg := targets(t)
	flush(t, tg)
	lc := topotest.Client(t, leg.Addr())
	if info := lc.Info(ctxT(t), "server").Val(); !strings.Contains(info, "valkey_version:") {
		t.Fatalf("legacy is not a Valkey server (INFO server has no valkey_version)")
	}
	migrateAllLogically(t, leg.Addr(), lc, tg)
}

// migrateAllLogically fills legacy at addr, runs migrate with args, and
// checks that every copied key of every bucket went the logical way and
// arrived with its value and expiry.
func migrateAllLogically(t *testing.T, addr string, lc *redis.Client, tg map[string]redis.UniversalClient, args ...string) {
	t.Helper()
	fill(t, lc, 50)
	cfg, _ := writeConfig(t, addr, "", nil)
	code, out, errs := run(t, append([]string{"--config", cfg, "migrate", "--yes", "-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	res := parseMigrate(t, out)
	for _, b := range res.Buckets {
		if b.Total.Logical != b.Total.Copied || b.Total.Copied == 0 {
			t.Errorf("%s: %d copied, %d logically (every key must be copied logically)", b.Bucket, b.Total.Copied, b.Total.Logical)
		}
	}
	assertMigrated(t, lc, tg, "cache", "session", "queue", "ratelimit")
}

func dbsizes(t *testing.T, tg map[string]redis.UniversalClient) int64 {
	ctx := ctxT(t)
	var n int64
	for _, c := range tg {
		if cc, ok := c.(*redis.ClusterClient); ok {
			_ = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { atomic.AddInt64(&n, c.DBSize(ctx).Val()); return nil })
		} else {
			n += c.DBSize(ctx).Val()
		}
	}
	return n
}

func TestDryRunWritesNothing(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	fill(t, lc, 20)
	cfg, stateDir := writeConfig(t, leg.Addr(), "", map[string]string{"ratelimit": ""})
	code, out, errs := run(t, "--config", cfg, "migrate", "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"DRY RUN", "cache", "dry-run", "ratelimit: no target configured for this bucket: not migrated"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
	if n := dbsizes(t, tg); n != 0 {
		t.Errorf("dry-run wrote %d keys", n)
	}
	if n := lc.Exists(ctxT(t), "redisplit:lock").Val(); n != 0 {
		t.Error("dry-run took the lock")
	}
	if _, err := os.Stat(filepath.Join(stateDir, "state.json")); err == nil {
		t.Error("dry-run saved state")
	}
}

func TestRefusals(t *testing.T) {
	tg := targets(t)
	ctx := ctxT(t)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	fill(t, lc, 10)

	t.Run("no terminal without --yes", func(t *testing.T) {
		flush(t, tg)
		cfg, _ := writeConfig(t, leg.Addr(), "", nil)
		code, _, errs := run(t, "--config", cfg, "migrate")
		if code != 2 || !strings.Contains(errs, "--yes") {
			t.Fatalf("exit %d: %s", code, errs)
		}
	})
	t.Run("unknown keys block", func(t *testing.T) {
		flush(t, tg)
		lc.Set(ctx, "orphan:1:x", 1, 0)
		lc.Set(ctx, "orphan:2:x", 1, 0)
		defer lc.Del(ctx, "orphan:1:x", "orphan:2:x")
		cfg, _ := writeConfig(t, leg.Addr(), "", nil)
		code, out, errs := run(t, "--config", cfg, "migrate", "--yes")
		if code != 4 || !strings.Contains(errs, "orphan:{n}:x (2 keys") {
			t.Fatalf("exit %d: %s\n%s", code, errs, out)
		}
		if n := dbsizes(t, tg); n != 0 {
			t.Errorf("wrote %d keys before refusing", n)
		}
		// unknown: skip copies the rest and says how many were left
		cfg, _ = writeConfig(t, leg.Addr(), "unknown: skip\n", nil)
		code, out, errs = run(t, "--config", cfg, "migrate", "--yes")
		if code != 0 || !strings.Contains(out, "2 keys match no rule (unknown: skip): they are not migrated") {
			t.Fatalf("exit %d: %s\n%s", code, errs, out)
		}
	})
	t.Run("non-empty target", func(t *testing.T) {
		flush(t, tg)
		tg["queue"].Set(ctx, "queue:str", "theirs", 0)
		tg["queue"].Set(ctx, "unrelated", "x", 0) // not routed to queue: allowed
		cfg, _ := writeConfig(t, leg.Addr(), "", nil)
		code, _, errs := run(t, "--config", cfg, "migrate", "--yes")
		if code != 4 || !strings.Contains(errs, `target queue`) || !strings.Contains(errs, `"queue:str"`) {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if n := dbsizes(t, tg); n != 2 {
			t.Errorf("wrote before refusing: %d keys", n)
		}
		code, out, errs := run(t, "--config", cfg, "migrate", "--yes", "--allow-nonempty", "-o", "json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if v := tg["queue"].Get(ctx, "queue:str").Val(); v != "theirs" {
			t.Errorf("overwrote a key redisplit did not write: %q", v)
		}
		if q := parseMigrate(t, out).bucket("queue"); q.Total.Refused != 1 || q.ThisRun.Refused != 1 {
			t.Errorf("refusal not reported: %+v", q)
		}
	})
	t.Run("lock held", func(t *testing.T) {
		flush(t, tg)
		lc.Set(ctx, "redisplit:lock", `{"host":"elsewhere","pid":1,"state_dir":"/x"}`, time.Minute)
		defer lc.Del(ctx, "redisplit:lock")
		cfg, _ := writeConfig(t, leg.Addr(), "", nil)
		code, _, errs := run(t, "--config", cfg, "migrate", "--yes")
		if code != 4 || !strings.Contains(errs, "lease lock") || !strings.Contains(errs, "elsewhere") {
			t.Fatalf("exit %d: %s", code, errs)
		}
	})
	t.Run("plan changed", func(t *testing.T) {
		flush(t, tg)
		cfg, stateDir := writeConfig(t, leg.Addr(), "", nil)
		sd, _ := state.Open(stateDir)
		sd.Update(func(s *state.State) error {
			s.PlanHash = "another-plan"
			s.Buckets["cache"] = &state.Bucket{Phase: state.Copying, StartedAt: time.Now()}
			return nil
		})
		code, _, errs := run(t, "--config", cfg, "migrate", "--yes")
		if code != 4 || !strings.Contains(errs, "plan changed") {
			t.Fatalf("exit %d: %s", code, errs)
		}
	})
}

func TestBadTargets(t *testing.T) {
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	fill(t, lc, 5)
	port, _ := topology.FreePort()
	cfg, _ := writeConfig(t, leg.Addr(), "", map[string]string{"queue": fmt.Sprintf("{kind: standalone, url: \"redis://127.0.0.1:%d/0\"}", port)})
	code, _, errs := run(t, "--config", cfg, "migrate", "--yes")
	if code != 1 || !strings.Contains(errs, fmt.Sprintf("127.0.0.1:%d", port)) || !strings.Contains(errs, "unreachable") {
		t.Errorf("unreachable: exit %d: %s", code, errs)
	}
	locked := topotest.Standalone(t, "--requirepass", "s3cret")
	cfg, _ = writeConfig(t, leg.Addr(), "", map[string]string{"queue": fmt.Sprintf("{kind: standalone, url: \"redis://:wrong@%s/0\"}", locked.Addr())})
	code, _, errs = run(t, "--config", cfg, "migrate", "--yes")
	if code != 1 || !strings.Contains(errs, "authentication failed") || strings.Contains(errs, "wrong") {
		t.Errorf("wrong password: exit %d: %s", code, errs)
	}
}

// slowMigrate starts migrate with a small ops budget so that faults can be
// injected mid-copy; it returns a channel with the exit code and output.
func slowMigrate(t *testing.T, cfg string, maxOps int) chan string {
	ch := make(chan string, 1)
	go func() {
		code, out, errs := run(t, "--config", cfg, "migrate", "--yes", "--max-ops", fmt.Sprint(maxOps), "--batch", "64")
		ch <- fmt.Sprintf("%d\n%s\n%s", code, out, errs)
	}()
	return ch
}

func waitKeys(t *testing.T, c redis.UniversalClient, min int64) {
	t.Helper()
	ctx := ctxT(t)
	for i := 0; i < 300; i++ {
		var n int64
		if cc, ok := c.(*redis.ClusterClient); ok {
			_ = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { atomic.AddInt64(&n, c.DBSize(ctx).Val()); return nil })
		} else {
			n = c.DBSize(ctx).Val()
		}
		if n >= min {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the copy did not start")
}

func TestSentinelFailoverDuringCopy(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	fill(t, lc, 3000)
	cfg, _ := writeConfig(t, leg.Addr(), "", nil)
	done := slowMigrate(t, cfg, 6000)
	waitKeys(t, tg["session"], 200)
	old, _ := sent.CurrentMaster(ctxT(t))
	nm, err := sent.Failover(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failover %s -> %s", old, nm)
	if r := <-done; !strings.HasPrefix(r, "0\n") {
		t.Fatalf("migrate: %s", r)
	}
	assertMigrated(t, lc, tg, "cache", "session", "queue", "ratelimit")
}

func TestCacheNodeRestartDuringCopy(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	fill(t, lc, 3000)
	cfg, _ := writeConfig(t, leg.Addr(), "", nil)
	done := slowMigrate(t, cfg, 6000)
	waitKeys(t, tg["cache"], 200)
	n := cluster.Nodes[1]
	if err := n.Stop(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := n.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := cluster.WaitOK(ctxT(t), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if r := <-done; !strings.HasPrefix(r, "0\n") {
		t.Fatalf("migrate: %s", r)
	}
	assertMigrated(t, lc, tg, "cache", "session", "queue", "ratelimit")
}

func TestKill9AndResume(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	fill(t, lc, 4000)
	cfg, stateDir := writeConfig(t, leg.Addr(), "", nil)
	sd, _ := state.Open(stateDir)
	// kill -9 twice at different points: mid-way through the first run, and
	// early in the resumed run
	for round, after := range []int64{2000, 500} {
		c := exec.Command(bin, "--config", cfg, "migrate", "--yes", "--max-ops", "6000", "--batch", "64", "--no-progress")
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		waitKeys(t, tg["cache"], dbsizeOf(t, tg["cache"])+after)
		time.Sleep(300 * time.Millisecond)
		if err := c.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		c.Wait()
		st, _ := sd.Load()
		if st.Buckets["cache"] == nil || st.Buckets["cache"].Copied || (round == 0 && st.Buckets["cache"].Cursor == 0) {
			t.Fatalf("round %d: killed before a checkpoint or after the end: %+v\n%s", round, st.Buckets["cache"], out.String())
		}
	}
	before := dbsizes(t, tg)
	code, o, errs := run(t, "--config", cfg, "migrate", "--yes", "-o", "json")
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", code, o, errs)
	}
	t.Logf("killed with %d keys on the targets; resumed", before)
	assertMigrated(t, lc, tg, "cache", "session", "queue", "ratelimit")
	// the keys in flight at each kill were rewritten, and counted once
	assertReconciled(t, cfg, parseMigrate(t, o), lc, tg, nil)
	// the journal covers every key on the targets (rollback can delete them all)
	for b, c := range tg {
		seen := map[string]bool{}
		sd.ReadJournal(b, func(k string) error { seen[k] = true; return nil })
		iter := scanAll(ctxT(t), c)
		for _, k := range iter {
			if !seen[k] {
				t.Errorf("%s: key %q on the target is not in the journal", b, k)
				break
			}
		}
	}
}

func dbsizeOf(t *testing.T, c redis.UniversalClient) int64 {
	return dbsizes(t, map[string]redis.UniversalClient{"x": c})
}

func scanAll(ctx context.Context, c redis.UniversalClient) []string {
	var out []string
	var mu sync.Mutex
	f := func(ctx context.Context, c *redis.Client) error {
		it := c.Scan(ctx, 0, "", 1000).Iterator()
		for it.Next(ctx) {
			mu.Lock()
			out = append(out, it.Val())
			mu.Unlock()
		}
		return it.Err()
	}
	if cc, ok := c.(*redis.ClusterClient); ok {
		_ = cc.ForEachMaster(ctx, f)
	} else if rc, ok := c.(*redis.Client); ok {
		_ = f(ctx, rc)
	}
	return out
}

func TestConfirmationAndUnknownToBucket(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	ctx := ctxT(t)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	fill(t, lc, 10)
	lc.Set(ctx, "orphan:1", "o", 0)
	cfg, _ := writeConfig(t, leg.Addr(), "unknown: cache\n", nil)
	term := func(answer string) (int, string) {
		var out, errb bytes.Buffer
		app := &cmd.App{In: strings.NewReader(answer), Out: &out, Err: &errb, IsTerminal: true, NoProgress: true}
		return cmd.Run(ctx, app, []string{"--config", cfg, "migrate"}), errb.String()
	}
	code, errs := term("n\n")
	if code != 4 || !strings.Contains(errs, "[y/N]") || !strings.Contains(errs, "not confirmed") {
		t.Fatalf("declined: exit %d\n%s", code, errs)
	}
	if n := dbsizes(t, tg); n != 0 {
		t.Fatalf("wrote %d keys without confirmation", n)
	}
	if code, errs = term("y\n"); code != 0 {
		t.Fatalf("confirmed: exit %d\n%s", code, errs)
	}
	if v := tg["cache"].Get(ctx, "orphan:1").Val(); v != "o" {
		t.Errorf("unknown: cache did not send the unknown key to cache: %q", v)
	}
}

// Legacy pressure: --max-ops bounds the rate (a lower bound on the time,
// from the token bucket), and reads slower than 100 ms pause the workers.
func TestMaxOpsAndLatencyBackoff(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	fill(t, lc, 1500) // ~6100 keys: ~12200 legacy ops (size check + read)
	cfg, _ := writeConfig(t, leg.Addr(), "", nil)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		c := redis.NewClient(&redis.Options{Addr: leg.Addr(), DisableIdentity: true})
		defer c.Close()
		time.Sleep(500 * time.Millisecond)
		for i := 0; i < 3; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c.Do(context.Background(), "debug", "sleep", "0.3") // legacy stalls 300 ms
			time.Sleep(200 * time.Millisecond)
		}
	}()
	start := time.Now()
	code, out, errs := run(t, "--config", cfg, "migrate", "--yes", "--max-ops", "4000", "--batch", "64", "-o", "json")
	el := time.Since(start)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if el < 2500*time.Millisecond { // (12200 ops - 1000 burst) / 4000 ops/s
		t.Errorf("--max-ops 4000 not enforced: %s", el)
	}
	var res struct {
		Throttled int64 `json:"throttled"`
	}
	json.Unmarshal([]byte(out), &res)
	if res.Throttled == 0 {
		t.Errorf("no back-off while legacy stalled")
	}
	assertMigrated(t, lc, tg, "cache", "session", "queue", "ratelimit")
}
