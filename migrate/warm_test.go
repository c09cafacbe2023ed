package migrate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/topology/topotest"
)

// warmJSON is the part of migrate's and verify's JSON the warming tests read.
type warmJSON struct {
	Buckets []struct {
		Bucket string
		Status string
		Total  struct {
			Copied    int64
			NotWarmed int64 `json:"not_warmed"`
			Pending   int64
			Failed    int64
		}
		Warm *struct {
			Policy    string
			Metric    string
			Threshold int64
			Budget    int64 `json:"budget_bytes"`
			HotKeys   int64 `json:"hot_keys"`
			CacheKeys int64 `json:"cache_keys"`
		}
		Counts struct { // verify
			Compared  int64
			Missing   int64
			NotWarmed int64 `json:"not_warmed"`
		}
		OK bool
	}
}

func (w warmJSON) bucket(t *testing.T, name string) int {
	t.Helper()
	for i, b := range w.Buckets {
		if b.Bucket == name {
			return i
		}
	}
	t.Fatalf("no bucket %s", name)
	return -1
}

func parseWarm(t *testing.T, out string) warmJSON {
	t.Helper()
	var w warmJSON
	if err := json.Unmarshal([]byte(out), &w); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	return w
}

// clusterKeys returns every key on the cache cluster.
func clusterKeys(t *testing.T, c redis.UniversalClient) map[string]bool {
	t.Helper()
	ctx := ctxT(t)
	out := map[string]bool{}
	var n atomic.Int64
	keys := make(chan string, 1024)
	done := make(chan struct{})
	go func() {
		for k := range keys {
			out[k] = true
		}
		close(done)
	}()
	err := c.(*redis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		it := m.Scan(ctx, 0, "", 1000).Iterator()
		for it.Next(ctx) {
			n.Add(1)
			keys <- it.Val()
		}
		return it.Err()
	})
	close(keys)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// warmKeyspace writes cold cache keys, waits until legacy sees them idle,
// then touches every tenth of them (a GET: real use), and writes sessions,
// queues and counters. It returns the touched keys.
func warmKeyspace(t *testing.T, lc *redis.Client, cold int, idle time.Duration) map[string]bool {
	t.Helper()
	ctx := ctxT(t)
	pl := lc.Pipeline()
	for i := 0; i < cold; i++ {
		pl.Set(ctx, fmt.Sprintf("cache:page:%d", i), strings.Repeat("v", 4000), 0)
	}
	for i := 0; i < 20; i++ {
		pl.HSet(ctx, fmt.Sprintf("sess:%d", i), "user", i)
		pl.RPush(ctx, fmt.Sprintf("queue:jobs:%d", i), "a", "b")
		pl.Set(ctx, fmt.Sprintf("rl:ip:%d", i), i, time.Hour)
	}
	if _, err := pl.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(idle) // OBJECT IDLETIME counts whole seconds
	hot := touch(t, lc, cold, 10, 0)
	return hot
}

// touch GETs every step-th cache key from off and returns them.
func touch(t *testing.T, lc *redis.Client, n, step, off int) map[string]bool {
	t.Helper()
	ctx := ctxT(t)
	hot := map[string]bool{}
	for i := off; i < n; i += step {
		k := fmt.Sprintf("cache:page:%d", i)
		if err := lc.Get(ctx, k).Err(); err != nil {
			t.Fatal(err)
		}
		hot[k] = true
	}
	return hot
}

func clusterTarget(extra string) string {
	return fmt.Sprintf("{kind: cluster, addrs: [%s]%s}", strings.Join(cluster.Addrs(), ", "), extra)
}

// tightenCluster sets every cache master's maxmemory to its used memory
// plus room bytes, and puts it back when the test ends.
func tightenCluster(t *testing.T, c redis.UniversalClient, room int64) {
	t.Helper()
	ctx := ctxT(t)
	err := c.(*redis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		return m.ConfigSet(ctx, "maxmemory", fmt.Sprint(usedMemory(t, m)+room)).Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.(*redis.ClusterClient).ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
			return m.ConfigSet(ctx, "maxmemory", "0").Err()
		})
	})
}

// copy: hot on a keyspace where one cache key in ten was used recently
// warms exactly those, with the default budget taken from the cache
// target's maxmemory (the room check asks room for them only); sessions,
// queues and counters are copied in full; the policy and threshold are
// in the state; verify exits 0 and counts the rest as not warmed — but a
// hot key lost on the target is missing.
func TestWarmHotCopiesOnlyRecentlyUsed(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	hot := warmKeyspace(t, lc, 2000, 4*time.Second)
	// room for a few times the hot keys (200 × ~4 KiB, 0.8 MiB) beside the
	// connections' buffers, far from the 2000 (8 MiB)
	tightenCluster(t, tg["cache"], 1536<<10)
	cfg, stateDir := writeConfig(t, leg.Addr(), "", map[string]string{"cache": clusterTarget(", copy: hot")})

	code, out, errs := run(t, "--config", cfg, "migrate", "--dry-run")
	if code != 0 || !strings.Contains(out, "cache: copy: hot: warming 200 of 2000 cache keys") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = run(t, "--config", cfg, "migrate", "--yes", "-o", "json")
	if code != 0 {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, out, errs)
	}
	m := parseWarm(t, out)
	c := m.Buckets[m.bucket(t, "cache")]
	if c.Warm == nil || c.Warm.Policy != "hot" || c.Warm.Metric != "idle" || c.Warm.HotKeys != 200 || c.Warm.CacheKeys != 2000 || c.Warm.Budget <= 0 {
		t.Fatalf("cache selection: %+v", c.Warm)
	}
	if c.Total.Copied != 200 || c.Total.NotWarmed != 1800 || c.Total.Pending != 0 || c.Status != "copied" {
		t.Errorf("cache totals: %+v (status %s)", c.Total, c.Status)
	}
	got := clusterKeys(t, tg["cache"])
	if len(got) != len(hot) {
		t.Errorf("the cache target holds %d keys, want the %d recently used", len(got), len(hot))
	}
	for k := range hot {
		if !got[k] {
			t.Errorf("hot key %q not copied", k)
		}
	}
	assertMigrated(t, lc, tg, "session", "queue", "ratelimit")

	sd, _ := state.Open(stateDir)
	st, _ := sd.Load()
	w := st.Buckets["cache"].Warm
	if w == nil || w.Policy != "hot" || w.Threshold < 0 || w.Threshold >= 3 || st.Buckets["cache"].KeysNotWarmed != 1800 {
		t.Fatalf("state's warm record: %+v, not warmed %d", w, st.Buckets["cache"].KeysNotWarmed)
	}
	if code, out, _ := run(t, "--config", cfg, "status"); code != 0 || !strings.Contains(out, "cache: 1800 keys not warmed") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	if b := st.Buckets["cache"]; b.WarmedBytes <= 0 || b.WarmedBytes > w.Budget {
		t.Errorf("warmed %d bytes for a budget of %d", b.WarmedBytes, w.Budget)
	}
	if st.Buckets["session"].Warm != nil {
		t.Errorf("session has a warm record: %+v", st.Buckets["session"].Warm)
	}

	code, out, errs = run(t, "--config", cfg, "verify", "--rounds", "1", "-o", "json")
	if code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errs)
	}
	v := parseWarm(t, out)
	vc := v.Buckets[v.bucket(t, "cache")]
	if vc.Counts.NotWarmed != 1800 || vc.Counts.Missing != 0 || !vc.OK {
		t.Errorf("verify cache: %+v", vc)
	}
	if code, out, _ := run(t, "--config", cfg, "verify", "--rounds", "1"); code != 0 || !strings.Contains(out, "NOT_WARMED") || !strings.Contains(out, "reported as not warmed, not missing") {
		t.Errorf("verify text: exit %d\n%s", code, out)
	}

	// a hot key lost on the target is a loss, not "not warmed"
	var lost string
	for k := range hot {
		lost = k
		break
	}
	if err := tg["cache"].Del(ctxT(t), lost).Err(); err != nil {
		t.Fatal(err)
	}
	code, out, _ = run(t, "--config", cfg, "verify", "--rounds", "1", "-o", "json")
	v = parseWarm(t, out)
	if vc := v.Buckets[v.bucket(t, "cache")]; code != 3 || vc.Counts.Missing != 1 || vc.Counts.NotWarmed != 1800 {
		t.Errorf("a hot key deleted on the target: exit %d, %+v", code, vc.Counts)
	}
}

// A smaller budget warms fewer keys: the most recently used first, whole
// histogram bins only, never more than the budget; no key fits a budget
// smaller than the hottest bin, and verify still exits 0.
func TestWarmBudgetRespected(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	ctx := ctxT(t)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	older := warmKeyspace(t, lc, 400, 4*time.Second) // keys 0, 10, 20, ...
	time.Sleep(4 * time.Second)                      // beyond the second the selection allows for its own clock
	newest := touch(t, lc, 400, 10, 5)               // keys 5, 15, 25, ...: the hottest
	var newBytes int64
	for k := range newest {
		newBytes += lc.MemoryUsage(ctx, k).Val()
	}
	budget := newBytes * 3 / 2 // the newest fit, the older do not on top
	cfg, _ := writeConfig(t, leg.Addr(), "", map[string]string{"cache": clusterTarget(fmt.Sprintf(", copy: hot, warm_bytes: %d", budget))})
	code, out, errs := run(t, "--config", cfg, "migrate", "--yes", "-o", "json")
	if code != 0 {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, out, errs)
	}
	got := clusterKeys(t, tg["cache"])
	var copiedBytes int64
	for k := range got {
		if !newest[k] {
			t.Errorf("%q copied: not among the most recently used (older: %v)", k, older[k])
		}
		copiedBytes += lc.MemoryUsage(ctx, k).Val()
	}
	if len(got) != len(newest) || copiedBytes > budget {
		t.Errorf("copied %d keys (%d bytes on legacy), want the %d newest within the budget of %d bytes", len(got), copiedBytes, len(newest), budget)
	}
	if code, out, errs := run(t, "--config", cfg, "verify", "--rounds", "1"); code != 0 {
		t.Errorf("verify: exit %d\n%s\n%s", code, out, errs)
	}

	// a budget below one key: the hottest keys are chosen, none fits, said so
	flush(t, tg)
	cfg, _ = writeConfig(t, leg.Addr(), "", map[string]string{"cache": clusterTarget(", copy: hot, warm_bytes: 100")})
	code, out, errs = run(t, "--config", cfg, "migrate", "--yes")
	if code != 0 || !strings.Contains(out, "fit the budget of 100B") {
		t.Fatalf("tiny budget: exit %d\n%s\n%s", code, out, errs)
	}
	if n := len(clusterKeys(t, tg["cache"])); n != 0 {
		t.Errorf("tiny budget: %d cache keys copied", n)
	}
	if code, out, errs := run(t, "--config", cfg, "verify", "--rounds", "1"); code != 0 || !strings.Contains(out, "NOT_WARMED") {
		t.Errorf("verify after a tiny budget: exit %d\n%s\n%s", code, out, errs)
	}
}

// copy: none starts the cache cold: no cache key is copied, the rest is
// copied in full, and verify exits 0 counting every cache key as not
// warmed.
func TestWarmNoneCopiesNoCacheKey(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	warmKeyspace(t, lc, 100, 0)
	cfg, _ := writeConfig(t, leg.Addr(), "", map[string]string{"cache": clusterTarget(", copy: none")})
	code, out, errs := run(t, "--config", cfg, "migrate", "--yes", "-o", "json")
	if code != 0 {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, out, errs)
	}
	m := parseWarm(t, out)
	if c := m.Buckets[m.bucket(t, "cache")]; c.Total.Copied != 0 || c.Total.NotWarmed != 100 || c.Status != "copied" {
		t.Errorf("cache: %+v", c)
	}
	if n := len(clusterKeys(t, tg["cache"])); n != 0 {
		t.Errorf("copy: none copied %d cache keys", n)
	}
	assertMigrated(t, lc, tg, "session", "queue", "ratelimit")
	code, out, errs = run(t, "--config", cfg, "verify", "--rounds", "1", "-o", "json")
	v := parseWarm(t, out)
	if vc := v.Buckets[v.bucket(t, "cache")]; code != 0 || vc.Counts.NotWarmed != 100 || vc.Counts.Missing != 0 {
		t.Errorf("verify: exit %d %+v\n%s", code, vc.Counts, errs)
	}
}

// Bad copy settings are one-line config errors (exit 2) naming the key,
// before anything is written.
func TestWarmBadConfig(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	leg := topotest.Standalone(t)
	for _, tc := range []struct {
		over map[string]string
		want string
	}{
		{map[string]string{"cache": clusterTarget(", copy: warm")}, `targets.cache.copy: "warm" is not one of all, hot, none`},
		{map[string]string{"session": fmt.Sprintf("{kind: sentinel, master: sessions, sentinels: [%s], copy: hot}", strings.Join(sent.SentinelAddrs(), ", "))}, "targets.session.copy: \"hot\": only the cache bucket"},
		{map[string]string{"cache": clusterTarget(", warm_bytes: 1000")}, "targets.cache.warm_bytes: is the budget of copy: hot"},
		{map[string]string{"cache": clusterTarget(", copy: hot, warm_bytes: -5")}, "targets.cache.warm_bytes: -5 is out of range"},
		// no maxmemory on the test cluster: no default budget
		{map[string]string{"cache": clusterTarget(", copy: hot")}, "targets.cache.warm_bytes: copy: hot needs a byte budget"},
	} {
		cfg, _ := writeConfig(t, leg.Addr(), "", tc.over)
		code, out, errs := run(t, "--config", cfg, "migrate", "--yes")
		if code != 2 || !strings.Contains(errs, tc.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%v: exit %d, want 2 and one line with %q:\n%s\n%s", tc.over, code, tc.want, out, errs)
		}
	}
	if n := dbsizes(t, tg); n != 0 {
		t.Errorf("wrote %d keys", n)
	}
}

// With --dual-write, live writes are mirrored whatever the policy: under
// copy: none a cache key written (or rewritten) during the live phase is
// copied, the others stay on legacy, and verify still exits 0.
func TestWarmNoneMirrorsLiveWrites(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	ctx := ctxT(t)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	warmKeyspace(t, lc, 100, 0)
	cfg, stateDir := writeConfig(t, leg.Addr(), "", map[string]string{"cache": clusterTarget(", copy: none")})
	e := &liveEnv{t: t, lc: lc, tg: tg, cfg: cfg, stateDir: stateDir}
	m := e.startMigrate()
	e.waitFor("the cache syncing", 60*time.Second, m, func(st *state.State) bool {
		sb := st.Buckets["cache"]
		return liveRunning(st) && sb != nil && sb.Phase == state.Syncing
	})
	live := map[string]string{"cache:page:7": "rewritten live", "cache:new": "written live"}
	for k, v := range live {
		if err := lc.Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := clusterKeys(t, tg["cache"])
		if len(got) == len(live) && got["cache:page:7"] && got["cache:new"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live cache writes not mirrored: the target holds %v", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := m.stop(t); r.code != 0 {
		t.Fatalf("migrate --dual-write: exit %d\n%s", r.code, r.errs)
	}
	for k, v := range live {
		if got := tg["cache"].Get(ctx, k).Val(); got != v {
			t.Errorf("target %s = %q, want %q", k, got, v)
		}
	}
	code, out, errs := run(t, "--config", cfg, "verify", "--rounds", "1", "-o", "json")
	v := parseWarm(t, out)
	if vc := v.Buckets[v.bucket(t, "cache")]; code != 0 || vc.Counts.NotWarmed != 99 || vc.Counts.Missing != 0 {
		t.Errorf("verify: exit %d %+v\n%s", code, vc.Counts, errs)
	}

	// the policy is the migration's: another one on the next run is refused
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(raw), "copy: none", "copy: all", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs = run(t, "--config", cfg, "migrate", "--dual-write", "--yes")
	if code != 2 || !strings.Contains(errs, "targets.cache.copy: all, but this migration of the cache started with copy: none") {
		t.Errorf("policy changed: exit %d\n%s", code, errs)
	}
}

// Under an LFU legacy (allkeys-lfu) the selection ranks keys by OBJECT
// FREQ: the keys used most often are warmed, those used once are not.
func TestWarmHotByLFUCounter(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	ctx := ctxT(t)
	// every access counts one (lfu-log-factor 0): deterministic counters
	leg := topotest.Standalone(t, "--maxmemory-policy", "allkeys-lfu", "--lfu-log-factor", "0")
	lc := topotest.Client(t, leg.Addr())
	warmKeyspace(t, lc, 200, 0) // one GET on every tenth key
	var hotBytes int64
	hot := map[string]bool{}
	for i := 0; i < 200; i += 20 { // ten more GETs on every twentieth
		k := fmt.Sprintf("cache:page:%d", i)
		for j := 0; j < 10; j++ {
			lc.Get(ctx, k)
		}
		hot[k] = true
		hotBytes += lc.MemoryUsage(ctx, k).Val()
	}
	cfg, _ := writeConfig(t, leg.Addr(), "", map[string]string{"cache": clusterTarget(fmt.Sprintf(", copy: hot, warm_bytes: %d", hotBytes*3/2))})
	code, out, errs := run(t, "--config", cfg, "migrate", "--yes", "-o", "json")
	if code != 0 {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, out, errs)
	}
	m := parseWarm(t, out)
	if c := m.Buckets[m.bucket(t, "cache")]; c.Warm == nil || c.Warm.Metric != "freq" || c.Warm.HotKeys != int64(len(hot)) {
		t.Fatalf("selection: %+v", c.Warm)
	}
	got := clusterKeys(t, tg["cache"])
	if len(got) != len(hot) {
		t.Errorf("copied %d cache keys, want the %d used most", len(got), len(hot))
	}
	for k := range got {
		if !hot[k] {
			t.Errorf("%q copied: not among the most used", k)
		}
	}
	if code, out, errs := run(t, "--config", cfg, "verify", "--rounds", "1"); code != 0 {
		t.Errorf("verify: exit %d\n%s\n%s", code, out, errs)
	}
}
