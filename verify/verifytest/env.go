// Package verifytest is the shared test environment of the verify and
// rollback tests: one legacy server and the four targets of the reference
// layout (cache → 3-master cluster, session → master+replica behind three
// sentinels, queue and ratelimit → standalone servers), started once per
// test binary, plus helpers to seed legacy, run the CLI in-process and take
// full snapshots of a server's content.
package verifytest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/cmd"
	"github.com/redisplit/redisplit/topology"
)

// Env is the running topology.
type Env struct {
	backend   *topology.ProcessBackend
	dir       string
	Legacy    topology.Server
	Cluster   *topology.Cluster
	Sentinel  *topology.Sentinel
	Queue     topology.Server
	RateLimit topology.Server
}

// Start starts the topology (about 15 s: the sentinels need quorum).
func Start(ctx context.Context) (*Env, error) {
	dir, err := os.MkdirTemp("", "redisplit-verifytest-")
	if err != nil {
		return nil, err
	}
	b, err := topology.NewProcessBackend(dir)
	if err != nil {
		return nil, err
	}
	e := &Env{backend: b, dir: dir}
	fail := func(err error) (*Env, error) { e.Close(); return nil, err }
	var wg sync.WaitGroup
	var errs [3]error
	wg.Add(2)
	go func() { defer wg.Done(); e.Cluster, errs[0] = topology.StartCluster(ctx, b, "cache", 3) }()
	go func() { defer wg.Done(); e.Sentinel, errs[1] = topology.StartSentinel(ctx, b, "session", "sessions") }()
	if e.Legacy, errs[2] = topology.Standalone(ctx, b, "legacy"); errs[2] == nil {
		if e.Queue, errs[2] = topology.Standalone(ctx, b, "queue"); errs[2] == nil {
			e.RateLimit, errs[2] = topology.Standalone(ctx, b, "ratelimit")
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fail(err)
		}
	}
	return e, nil
}

// Close stops every server.
func (e *Env) Close() {
	if e.backend != nil {
		e.backend.Close()
	}
	os.RemoveAll(e.dir)
}

// StartExtra starts one more standalone server (closed with the Env).
func (e *Env) StartExtra(ctx context.Context, name string, args ...string) (topology.Server, error) {
	return topology.Standalone(ctx, e.backend, name, args...)
}

// Masters returns a client per data master: legacy first, then the targets.
func (e *Env) Masters(t testing.TB) []*redis.Client {
	var out []*redis.Client
	for _, a := range append([]string{e.Legacy.Addr(), e.Sentinel.Master.Addr(), e.Queue.Addr(), e.RateLimit.Addr()}, e.Cluster.Addrs()...) {
		out = append(out, Client(t, a))
	}
	return out
}

// Flush empties legacy and every target.
func (e *Env) Flush(t testing.TB) {
	t.Helper()
	for _, c := range e.Masters(t) {
		if err := c.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// Client returns a client for addr, closed at cleanup.
func Client(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// LegacyClient returns a client of legacy.
func (e *Env) LegacyClient(t testing.TB) *redis.Client { return Client(t, e.Legacy.Addr()) }

// Target returns a client of bucket's target.
func (e *Env) Target(t testing.TB, bucket string) redis.UniversalClient {
	var c redis.UniversalClient
	switch bucket {
	case "cache":
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: e.Cluster.Addrs(), DisableIdentity: true})
	case "session":
		c = redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "sessions", SentinelAddrs: e.Sentinel.SentinelAddrs(), DisableIdentity: true})
	case "queue":
		c = redis.NewClient(&redis.Options{Addr: e.Queue.Addr(), DisableIdentity: true})
	case "ratelimit":
		c = redis.NewClient(&redis.Options{Addr: e.RateLimit.Addr(), DisableIdentity: true})
	default:
		t.Fatalf("no bucket %s", bucket)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Rules route cache:* → cache, sess:* → session, queue:* → queue,
// rl:* → ratelimit; every preset is off and unmatched keys are skipped.
const Rules = `unknown: skip
presets: {none: true}
rules:
  - {prefix: "cache:", bucket: cache}
  - {prefix: "sess:", bucket: session}
  - {prefix: "queue:", bucket: queue}
  - {prefix: "rl:", bucket: ratelimit}
`

// Config writes a configuration file for the Env into a temp dir and
// returns its path. cacheURL, when set, makes the cache target that
// standalone server instead of the cluster.
func (e *Env) Config(t testing.TB, cacheURL string) string {
	t.Helper()
	dir := t.TempDir()
	cache := fmt.Sprintf("{kind: cluster, addrs: [%s]}", strings.Join(e.Cluster.Addrs(), ", "))
	if cacheURL != "" {
		cache = fmt.Sprintf("{kind: standalone, url: %q}", cacheURL)
	}
	y := fmt.Sprintf(`legacy: {url: "redis://%s"}
state_dir: %q
%stargets:
  cache: %s
  session: {kind: sentinel, master: sessions, sentinels: [%s]}
  queue: {kind: standalone, url: "redis://%s"}
  ratelimit: {kind: standalone, url: "redis://%s"}
`, e.Legacy.Addr(), filepath.Join(dir, "state"), Rules, cache, strings.Join(e.Sentinel.SentinelAddrs(), ", "), e.Queue.Addr(), e.RateLimit.Addr())
	p := filepath.Join(dir, "redisplit.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// StateDir is the state directory of a configuration written by Config.
func StateDir(cfgPath string) string { return filepath.Join(filepath.Dir(cfgPath), "state") }

// Run runs the redisplit CLI in-process and returns its exit code and output.
func Run(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return RunInteractive(t, "", false, args...)
}

// RunInteractive is Run with stdin and, when terminal is true, as if stderr
// were a terminal (so commands ask for confirmation on stdin).
func RunInteractive(t testing.TB, stdin string, terminal bool, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	app := &cmd.App{In: strings.NewReader(stdin), Out: &out, Err: &errb, IsTerminal: terminal}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code = cmd.Run(ctx, app, append([]string{"--no-progress"}, args...))
	return code, out.String(), errb.String()
}

// Migrate runs `redisplit migrate --yes` with cfg (and extra args) and
// fails the test unless it exits 0.
func Migrate(t testing.TB, cfg string, extra ...string) {
	t.Helper()
	code, out, errs := Run(t, append([]string{"migrate", "--yes", "--config", cfg}, extra...)...)
	if code != 0 {
		t.Fatalf("migrate exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}

// Seed writes the fixture: per bucket keys of every type, some with TTLs,
// plus n extra cache strings, and returns the fixture's key names.
func Seed(t testing.TB, c *redis.Client, n int) []string {
	t.Helper()
	ctx := context.Background()
	p := c.Pipeline()
	var keys []string
	add := func(k string) { keys = append(keys, k) }
	for _, b := range []string{"cache:", "sess:", "queue:", "rl:"} {
		for i := 0; i < 5; i++ {
			k := fmt.Sprintf("%sstr:%d", b, i)
			p.Set(ctx, k, fmt.Sprintf("value-%s-%d", b, i), time.Duration(i)*time.Hour) // i=0: no TTL
			add(k)
			k = fmt.Sprintf("%shash:%d", b, i)
			p.HSet(ctx, k, "a", "1", "b", "2", "c", fmt.Sprint(i))
			add(k)
			k = fmt.Sprintf("%slist:%d", b, i)
			p.RPush(ctx, k, "x", "y", "z", i)
			add(k)
			k = fmt.Sprintf("%sset:%d", b, i)
			p.SAdd(ctx, k, "m1", "m2", "m3", fmt.Sprint("m", i+10))
			add(k)
			k = fmt.Sprintf("%szset:%d", b, i)
			p.ZAdd(ctx, k, redis.Z{Score: 1, Member: "p1"}, redis.Z{Score: 2.5, Member: "p2"}, redis.Z{Score: float64(i), Member: "p3"})
			add(k)
			k = fmt.Sprintf("%sstream:%d", b, i)
			p.XAdd(ctx, &redis.XAddArgs{Stream: k, ID: "1-1", Values: []any{"f", "v1"}})
			p.XAdd(ctx, &redis.XAddArgs{Stream: k, ID: "2-1", Values: []any{"f", "v2", "g", fmt.Sprint(i)}})
			add(k)
		}
	}
	bin := "cache:bin:\xff\xfe\x00k"
	p.Set(ctx, bin, "binary name", 0)
	add(bin)
	p.Set(ctx, "other:unrouted", "skip me", 0) // matches no rule: skipped
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("cache:bulk:%d", i)
		p.Set(ctx, k, strings.Repeat("v", 50+i%200), time.Hour)
		add(k)
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	return keys
}

// Entry is one key in a Snapshot: type, DUMP payload and expiry (rounded
// to 10 s, so snapshots taken seconds apart compare equal).
type Entry struct {
	Type   string
	Dump   string
	Expiry int64 // unix seconds / 10; 0 = none
}

// Snapshot returns the whole content of c (every master of a cluster).
func Snapshot(t testing.TB, c redis.UniversalClient) map[string]Entry {
	t.Helper()
	ctx := context.Background()
	out := map[string]Entry{}
	var mu sync.Mutex
	one := func(ctx context.Context, m *redis.Client) error {
		var cursor uint64
		for {
			keys, next, err := m.Scan(ctx, cursor, "", 1000).Result()
			if err != nil {
				return err
			}
			for _, k := range keys {
				typ, _ := m.Type(ctx, k).Result()
				d, _ := m.Dump(ctx, k).Result()
				et, _ := m.Do(ctx, "pexpiretime", k).Int64()
				e := Entry{Type: typ, Dump: d}
				if et > 0 {
					e.Expiry = et / 10_000
				}
				mu.Lock()
				out[k] = e
				mu.Unlock()
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	var err error
	switch x := c.(type) {
	case *redis.ClusterClient:
		err = x.ForEachMaster(ctx, one)
	case *redis.Client:
		err = one(ctx, x)
	default:
		t.Fatalf("snapshot: unsupported client %T", c)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// DiffSnapshots describes how b differs from a ("" when equal).
func DiffSnapshots(a, b map[string]Entry) string {
	var sb strings.Builder
	n := 0
	for k, ea := range a {
		eb, ok := b[k]
		switch {
		case !ok:
			fmt.Fprintf(&sb, "gone: %q\n", k)
		case ea != eb:
			fmt.Fprintf(&sb, "changed: %q (%s→%s)\n", k, ea.Type, eb.Type)
		default:
			continue
		}
		if n++; n > 20 {
			return sb.String() + "...\n"
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			fmt.Fprintf(&sb, "new: %q\n", k)
			if n++; n > 20 {
				return sb.String() + "...\n"
			}
		}
	}
	return sb.String()
}
