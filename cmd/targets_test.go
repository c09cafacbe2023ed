package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/layout"
	"github.com/redisplit/redisplit/layout/skew"
	"github.com/redisplit/redisplit/scan"
	"github.com/redisplit/redisplit/topology"
	"github.com/redisplit/redisplit/topology/topotest"
)

// freeBase returns a port P such that P..P+n-1 and, for the first cluster
// ports, their bus ports (+10000) are free on 127.0.0.1 right now.
func freeBase(t *testing.T, n, cluster int) int {
	t.Helper()
	free := func(p int) bool {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		l.Close()
		return true
	}
	for attempt := 0; attempt < 200; attempt++ {
		p, err := topology.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if p < 20000 || p+n+10000 > 55000 { // bus ports stay below 65536
			continue
		}
		ok := true
		for i := 0; i < n && ok; i++ {
			ok = free(p+i) && (i >= cluster || free(p+i+10000))
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free port range")
	return 0
}

// liveLayout runs the servers of a generated layout exactly as an operator
// would: redis-server FILE --dir D --daemonize yes (sentinels with
// --sentinel), one data directory per server.
type liveLayout struct {
	t       *testing.T
	dir     string
	data    string
	bin     string
	servers []layout.Server
	env     []string
}

func newLiveLayout(t *testing.T, dir string, servers []layout.Server) *liveLayout {
	b, err := topology.NewProcessBackend(t.TempDir()) // the shared redis-server lookup ($REDIS_SERVER or PATH)
	if err != nil {
		t.Skip(err)
	}
	l := &liveLayout{t: t, dir: dir, data: t.TempDir(), bin: b.Binary, servers: servers}
	t.Cleanup(func() {
		for _, s := range servers {
			l.kill(s)
		}
	})
	return l
}

func (l *liveLayout) dataDir(s layout.Server) string { return filepath.Join(l.data, s.Name) }

func (l *liveLayout) server(name string) layout.Server {
	for _, s := range l.servers {
		if s.Name == name {
			return s
		}
	}
	l.t.Fatalf("no server %s", name)
	return layout.Server{}
}

func (l *liveLayout) start(s layout.Server) {
	l.t.Helper()
	d := l.dataDir(s)
	if err := os.MkdirAll(d, 0o755); err != nil {
		l.t.Fatal(err)
	}
	args := []string{filepath.Join(l.dir, s.Conf)}
	if s.Sentinel() {
		args = append(args, "--sentinel")
	}
	args = append(args, "--dir", d, "--daemonize", "yes")
	out, err := exec.Command(l.bin, args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("redis-server %s: %v: %s", strings.Join(args, " "), err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := topology.WaitPing(ctx, s.Addr(), ""); err != nil {
		log, _ := os.ReadFile(filepath.Join(d, "redis.log"))
		l.t.Fatalf("%s: %v; log: %s", s.Name, err, log)
	}
}

// pid reads the server's pidfile (redis.pid in its data directory).
func (l *liveLayout) pid(s layout.Server) int {
	b, err := os.ReadFile(filepath.Join(l.dataDir(s), "redis.pid"))
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}

// stop ends the server with SIGTERM (by its own pid) and waits until its
// port is closed.
func (l *liveLayout) stop(s layout.Server) {
	l.t.Helper()
	p := l.pid(s)
	if p == 0 {
		l.t.Fatalf("%s: no pid file", s.Name)
	}
	_ = syscall.Kill(p, syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
	l.t.Fatalf("%s still answers 15 s after SIGTERM", s.Name)
}

func (l *liveLayout) kill(s layout.Server) {
	if p := l.pid(s); p > 0 {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}

func (l *liveLayout) startAll() {
	for _, s := range l.servers {
		if !s.Sentinel() {
			l.start(s)
		}
	}
	for _, s := range l.servers {
		if s.Sentinel() {
			l.start(s)
		}
	}
	cmd := exec.Command("sh", filepath.Join(l.dir, "cache", "create-cluster.sh"))
	cmd.Env = append(os.Environ(), l.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("create-cluster.sh: %v: %s", err, out)
	}
}

func (l *liveLayout) client(name string) *redis.Client {
	return topotest.Client(l.t, l.server(name).Addr())
}

// checkResult runs targets check -o json and returns its exit code and the
// set of failed "bucket check" pairs.
func checkResult(t *testing.T, args ...string) (int, []string, targetsCheckResult) {
	t.Helper()
	code, out, errs := cli(t, append([]string{"targets", "check", "-o", "json"}, args...)...)
	var r targetsCheckResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("targets check -o json (exit %d): %v\n%s\n%s", code, err, out, errs)
	}
	var failed []string
	for _, v := range r.Verdicts {
		if v.Status == layout.StatusFail {
			failed = append(failed, v.Bucket+" "+v.Check)
		}
	}
	sort.Strings(failed)
	return code, dedup(failed), r
}

// waitCheck polls targets check until its failures are exactly want (none:
// it passes with exit 0), or fails the test at the deadline.
func waitCheck(t *testing.T, timeout time.Duration, want []string, args ...string) targetsCheckResult {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, failed, r := checkResult(t, args...)
		wantCode := ExitOK
		if len(want) > 0 {
			wantCode = ExitProfile
		}
		if code == wantCode && fmt.Sprint(failed) == fmt.Sprint(want) {
			return r
		}
		if time.Now().After(deadline) {
			var lines []string
			for _, v := range r.Verdicts {
				if v.Status != layout.StatusOK {
					lines = append(lines, v.String())
				}
			}
			t.Fatalf("targets check: exit %d, failed %q; want exit %d, failed %q:\n%s", code, failed, wantCode, want, strings.Join(lines, "\n"))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// loadLegacy writes a keyspace of every bucket: plain cache entries, a
// hash-tagged cache family with bigger values, binary cache names,
// sessions, queues, and enough rate-limit counters to size against.
func loadLegacy(t *testing.T, c *redis.Client) {
	t.Helper()
	ctx := context.Background()
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := 0; i < 6000; i++ {
			p.Set(ctx, fmt.Sprintf("cache:item:%d", i), strings.Repeat("v", 100), time.Hour)
		}
		for i := 0; i < 1500; i++ {
			p.Set(ctx, fmt.Sprintf("cache:{tenant:big}:row:%d", i), strings.Repeat("w", 300), time.Hour)
		}
		for i := 0; i < 50; i++ {
			p.Set(ctx, fmt.Sprintf("cache:\xff\x00bin:%d", i), "x", 0)
		}
		for i := 0; i < 500; i++ {
			k := fmt.Sprintf("sess:%08dabcdefabcdefabcdef", i)
			p.HSet(ctx, k, "user", i, "csrf", "t")
			p.Expire(ctx, k, 30*time.Minute)
		}
		for i := 0; i < 20; i++ {
			p.RPush(ctx, fmt.Sprintf("queue:jobs:%d", i), `{"class":"Mail","args":[1]}`)
		}
		for i := 0; i < 20000; i++ {
			p.Set(ctx, fmt.Sprintf("rl:ip:10.0.%d.%d", i/250, i%250), i, 10*time.Minute)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

const targetsRules = `rules:
  - {prefix: "cache:", bucket: cache}
  - {prefix: "sess:", bucket: session}
  - {prefix: "queue:", bucket: queue}
  - {prefix: "rl:", bucket: ratelimit}
`

// scanFixture starts a loaded legacy, scans it, and returns the report and
// key export paths.
func scanFixture(t *testing.T) (legacy *redis.Client, report, keys string) {
	t.Helper()
	srv := topotest.Standalone(t)
	legacy = topotest.Client(t, srv.Addr())
	loadLegacy(t, legacy)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "scan.yaml")
	if err := os.WriteFile(cfg, []byte("legacy: {url: \"redis://"+srv.Addr()+"\"}\n"+targetsRules), 0o600); err != nil {
		t.Fatal(err)
	}
	report, keys = filepath.Join(dir, "report.json"), filepath.Join(dir, "keys.jsonl")
	code, out, errs := cli(t, "--config", cfg, "scan", "-o", "json", "--no-progress", "--keys-out", keys)
	if code != 0 {
		t.Fatalf("scan: exit %d: %s", code, errs)
	}
	if err := os.WriteFile(report, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return legacy, report, keys
}

func initLayout(t *testing.T, args ...string) (string, targetsInitResultJSON) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	code, out, errs := cli(t, append([]string{"targets", "init", "--out", dir, "-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("targets init: exit %d: %s", code, errs)
	}
	var r targetsInitResultJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return dir, r
}

// targetsInitResultJSON is targets init's JSON output as a script reads it.
type targetsInitResultJSON struct {
	Out      string          `json:"out"`
	Servers  []layout.Server `json:"servers"`
	Stores   []layout.Store  `json:"stores"`
	Files    []layout.File   `json:"files"`
	Warnings []string        `json:"warnings"`
	Forecast *skew.Forecast  `json:"cache_forecast"`
}

// The generated layout starts from its own files, forms the cluster and the
// sentinel quorum and passes targets check; the forecast matches where the
// keys land; then each profile property broken on the live servers makes
// targets check name exactly that failure (exit 5), and passing again once
// restored.
func TestTargetsLayoutLive(t *testing.T) {
	legacy, report, keys := scanFixture(t)
	base := freeBase(t, 13, 6)
	dir, res := initLayout(t, "--scan", report, "--keys", keys, "--no-auth", "--bind", "127.0.0.1", "--base-port", strconv.Itoa(base))
	for _, name := range []string{"redisplit.yaml", "cache/node-1.conf", "cache/node-6.conf", "cache/create-cluster.sh", "session/master.conf",
		"session/replica-1.conf", "session/sentinel-1.conf", "session/sentinel-3.conf", "queue/queue.conf", "ratelimit/ratelimit.conf", "compose.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("missing %s", name)
		}
	}
	l := newLiveLayout(t, dir, res.Servers)
	l.startAll()
	conf := filepath.Join(dir, "redisplit.yaml")
	waitCheck(t, 90*time.Second, nil, "--config", conf, "--scan", report)

	t.Run("forecast matches the cluster", func(t *testing.T) { forecastMatches(t, legacy, keys, res.Forecast, l) })

	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check := func(want ...string) targetsCheckResult {
		t.Helper()
		return waitCheck(t, 30*time.Second, want, "--config", conf, "--scan", report)
	}
	passes := func() { t.Helper(); waitCheck(t, 90*time.Second, nil, "--config", conf, "--scan", report) }

	master := l.client("session-master")
	must(master.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err())
	check("session maxmemory-policy")
	must(master.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err())
	passes()

	queue := l.client("queue")
	must(queue.ConfigSet(ctx, "appendonly", "no").Err())
	check("queue persistence")
	must(queue.ConfigSet(ctx, "appendonly", "yes").Err())
	passes()

	l.stop(l.server("session-replica-1"))
	check("session replication")
	l.start(l.server("session-replica-1"))
	passes()

	l.stop(l.server("session-sentinel-2"))
	check("session sentinel-count")
	l.start(l.server("session-sentinel-2"))
	passes()

	node1 := l.client("cache-1") // a master: create-cluster.sh gives it slots 0-5460
	must(node1.Do(ctx, "cluster", "delslots", 0).Err())
	r := check("cache cluster-slots")
	for _, v := range r.Verdicts {
		if v.Check == layout.CheckClusterSlots && v.Status == layout.StatusFail && !strings.Contains(v.Found, "not covered: 0") {
			t.Errorf("cluster-slots verdict does not name slot 0: %s", v)
		}
	}
	must(node1.Do(ctx, "cluster", "addslots", 0).Err())
	passes()

	rl := l.client("ratelimit")
	orig := rl.ConfigGet(ctx, "maxmemory").Val()["maxmemory"]
	var dataBytes int64
	for _, s := range res.Stores {
		if s.Bucket == "ratelimit" {
			dataBytes = s.DataBytes
		}
	}
	must(rl.ConfigSet(ctx, "maxmemory", strconv.FormatInt(dataBytes, 10)).Err()) // x1.0 of the bucket: does not fit
	check("ratelimit maxmemory")
	must(rl.ConfigSet(ctx, "maxmemory", "0").Err())
	r = check("ratelimit maxmemory")
	for _, v := range r.Verdicts {
		if v.Check == layout.CheckMaxMemory && v.Status == layout.StatusFail && !strings.Contains(v.Found, "maxmemory 0") {
			t.Errorf("unset maxmemory not named: %s", v)
		}
	}
	must(rl.ConfigSet(ctx, "maxmemory", orig).Err())
	passes()
}

// forecastMatches copies the cache keys into the cluster (DUMP/RESTORE, as
// migrate does) and compares the forecast per node with each master's
// DBSIZE and MEMORY USAGE; the hash-tagged family must be flagged on the
// node that holds it.
func forecastMatches(t *testing.T, legacy *redis.Client, keysPath string, fc *skew.Forecast, l *liveLayout) {
	ctx := context.Background()
	if fc == nil {
		t.Fatal("targets init --keys gave no forecast")
	}
	var addrs []string
	for _, s := range l.servers {
		if s.Bucket == "cache" {
			addrs = append(addrs, s.Addr())
		}
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer cc.Close()
	f, err := os.Open(keysPath)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	dec := json.NewDecoder(f)
	for dec.More() {
		var kl scan.KeyLine
		if err := dec.Decode(&kl); err != nil {
			t.Fatal(err)
		}
		if kl.Bucket == "cache" {
			names = append(names, lineName(kl))
		}
	}
	f.Close()
	dumps, err := legacy.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range names {
			p.Dump(ctx, k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range names {
			p.RestoreReplace(ctx, k, 0, dumps[i].(*redis.StringCmd).Val())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slots, err := cc.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	owner := func(slot int) string {
		for _, s := range slots {
			if slot >= int(s.Start) && slot <= int(s.End) {
				return s.Nodes[0].Addr
			}
		}
		return ""
	}
	actual := func(addr string) (keys, bytes int64) {
		c := redis.NewClient(&redis.Options{Addr: addr})
		defer c.Close()
		keys = c.DBSize(ctx).Val()
		iter := c.Scan(ctx, 0, "", 1000).Iterator()
		for iter.Next(ctx) {
			bytes += c.MemoryUsage(ctx, iter.Val(), 0).Val()
		}
		return
	}
	ranges := skew.Ranges(fc.Masters)
	tagNode := 0
	for _, tg := range fc.HashTags {
		if tg.Tag == "tenant:big" {
			tagNode = tg.Node
		}
	}
	if tagNode == 0 {
		t.Fatalf("the {tenant:big} family is not flagged: %+v", fc.HashTags)
	}
	fullest, most := "", int64(-1)
	for i, n := range fc.Nodes {
		addr := owner(ranges[i].First)
		k, b := actual(addr)
		t.Logf("node %d (%s, slots %s): forecast %d keys %d bytes, actual %d keys %d bytes", n.Node, addr, n.Slots, n.Keys, n.Bytes, k, b)
		if math.Abs(float64(n.Keys-k)) > 0.02*float64(k) {
			t.Errorf("node %d: forecast %d keys, DBSIZE %d", n.Node, n.Keys, k)
		}
		if math.Abs(float64(n.Bytes-b)) > 0.05*float64(b) {
			t.Errorf("node %d: forecast %d bytes, MEMORY USAGE sum %d", n.Node, n.Bytes, b)
		}
		if k > most {
			fullest, most = strconv.Itoa(n.Node), k
		}
	}
	if fullest != strconv.Itoa(tagNode) {
		t.Errorf("the family's node %d is not the fullest (node %s is)", tagNode, fullest)
	}
	var warned bool
	for _, w := range fc.Warnings {
		warned = warned || strings.HasPrefix(w, fmt.Sprintf("node %d ", tagNode)) && strings.Contains(w, "{tenant:big}")
	}
	if !warned {
		t.Errorf("no warning that node %d holds more than its share because of {tenant:big}: %q", tagNode, fc.Warnings)
	}
	// The copy does not belong to the later checks' data.
	must := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.FlushAll(ctx).Err() })
	if must != nil {
		t.Fatal(must)
	}
}

// With passwords: the ACL files hold hashes, the configs include the
// snippets install-secrets.sh writes, no generated file holds a password,
// replicas and sentinels authenticate, and redisplit's own user passes
// targets check, can copy into the targets and cannot do more.
func TestTargetsLayoutAuth(t *testing.T) {
	_, report, _ := scanFixture(t)
	secrets := t.TempDir()
	pw := map[string]string{}
	for _, b := range []string{"cache", "session", "queue", "ratelimit"} {
		for _, u := range []string{"default", "redisplit", "replication"} {
			p := fmt.Sprintf("%s-%s.password", b, u)
			pw[p] = fmt.Sprintf("S3cret-%s-%s-%d", b, u, time.Now().UnixNano())
			if err := os.WriteFile(filepath.Join(secrets, p), []byte(pw[p]+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	base := freeBase(t, 13, 6)
	dir, res := initLayout(t, "--scan", report, "--secrets", secrets, "--bind", "127.0.0.1", "--base-port", strconv.Itoa(base))
	if len(res.Warnings) != 0 {
		t.Errorf("warnings: %q", res.Warnings)
	}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for name, v := range pw {
			if strings.Contains(string(b), v) {
				t.Errorf("%s holds the password of %s", p, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", filepath.Join(dir, "install-secrets.sh")).CombinedOutput(); err != nil {
		t.Fatalf("install-secrets.sh: %v: %s", err, out)
	}
	l := newLiveLayout(t, dir, res.Servers)
	l.startAll()
	conf := filepath.Join(dir, "redisplit.yaml")
	waitCheck(t, 90*time.Second, nil, "--config", conf, "--scan", report)

	ctx := context.Background()
	var cache []string
	for _, s := range res.Servers {
		if s.Bucket == "cache" {
			cache = append(cache, s.Addr())
		}
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cache, Username: "redisplit", Password: pw["cache-redisplit.password"]})
	defer cc.Close()
	src := redis.NewClient(&redis.Options{Addr: l.server("queue").Addr(), Password: pw["queue-default.password"]})
	defer src.Close()
	if err := src.Set(ctx, "probe", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	payload := src.Dump(ctx, "probe").Val()
	for i := 0; i < 50; i++ {
		if err := cc.RestoreReplace(ctx, fmt.Sprintf("cache:copy:%d", i), 0, payload).Err(); err != nil {
			t.Fatalf("redisplit cannot RESTORE on the cluster: %v", err)
		}
	}
	if err := cc.Do(ctx, "flushall").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("redisplit may FLUSHALL the cache: %v", err)
	}
	var sentinels []string
	for _, s := range res.Servers {
		if s.Role == "sentinel" {
			sentinels = append(sentinels, s.Addr())
		}
	}
	fc := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "session", SentinelAddrs: sentinels, Username: "redisplit", Password: pw["session-redisplit.password"]})
	defer fc.Close()
	if err := fc.RestoreReplace(ctx, "sess:copy", 0, payload).Err(); err != nil {
		t.Fatalf("redisplit cannot RESTORE on the session master: %v", err)
	}
	if n, err := fc.Do(ctx, "wait", 1, 5000).Int(); err != nil || n != 1 {
		t.Errorf("WAIT as redisplit: %d replicas, %v", n, err)
	}
	if err := fc.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("redisplit may CONFIG SET: %v", err)
	}
}

func TestTargetsCommandErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := cli(t, "--config", empty, "targets", "init", "--out", dir); code != ExitUsage || !strings.Contains(errs, "--scan") {
		t.Errorf("init without --scan: exit %d %s", code, errs)
	}
	report := filepath.Join(dir, "report.json")
	if err := os.WriteFile(report, []byte(`{"schema_version":1,"legacy":{"version":"7.0.15"},"buckets":[],"sizing":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := cli(t, "--config", empty, "targets", "init", "--scan", report, "--out", dir, "--no-auth"); code != ExitRefused || !strings.Contains(errs, "--force") {
		t.Errorf("init into a non-empty directory: exit %d %s", code, errs)
	}
	if code, _, errs := cli(t, "--config", empty, "targets", "init", "--scan", report, "--out", filepath.Join(dir, "l"), "--cache-masters", "2"); code != ExitUsage {
		t.Errorf("init --cache-masters 2: exit %d %s", code, errs)
	}
	if code, _, errs := cli(t, "--config", empty, "targets", "check"); code != ExitUsage || !strings.Contains(errs, "no target") {
		t.Errorf("check without targets: exit %d %s", code, errs)
	}
	port, _ := topology.FreePort()
	cfg := filepath.Join(dir, "down.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("targets:\n  ratelimit: {kind: standalone, url: \"redis://127.0.0.1:%d/0\"}\n", port)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, failed, _ := checkResult(t, "--config", cfg)
	if code != ExitProfile || fmt.Sprint(failed) != "[ratelimit reachable]" {
		t.Errorf("check of a stopped target: exit %d, failed %q", code, failed)
	}
}
