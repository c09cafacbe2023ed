package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/dualwrite/client"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/topology"
)

// The topology of every test in this package, started once: a standalone
// legacy and the reference layout's targets (cache → 3-master cluster,
// session → master+replica behind three sentinels, queue and ratelimit →
// standalone).
var env struct {
	backend          *topology.ProcessBackend
	legacy           topology.Server
	cluster          *topology.Cluster
	sentinel         *topology.Sentinel
	queue, ratelimit topology.Server
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{}) // servers are killed on purpose
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "redisplit-client-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	b, err := topology.NewProcessBackend(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env.backend = b
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var errs [3]error
	wg.Add(2)
	go func() { defer wg.Done(); env.cluster, errs[0] = topology.StartCluster(ctx, b, "cache", 3) }()
	go func() { defer wg.Done(); env.sentinel, errs[1] = topology.StartSentinel(ctx, b, "session", "sessions") }()
	if env.legacy, errs[2] = topology.Standalone(ctx, b, "legacy"); errs[2] == nil {
		if env.queue, errs[2] = topology.Standalone(ctx, b, "queue"); errs[2] == nil {
			env.ratelimit, errs[2] = topology.Standalone(ctx, b, "ratelimit")
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, "client tests: cannot start the topology:", err)
			return 1
		}
	}
	return m.Run()
}

// testPlan routes by prefix and glob, with a typed rule in front: "sess:*"
// strings are sessions, other "sess:*" keys match no rule (legacy).
const testPlan = `version: 1
rules:
  - {glob: "cache:*", bucket: cache}
  - {glob: "sess:*", type: string, bucket: session}
  - {prefix: "session:", bucket: session}
  - {glob: "q:*", bucket: queue}
  - {glob: "rl:*", bucket: ratelimit}
`

// stores are one application instance's go-redis clients.
type stores struct {
	legacy  *redis.Client
	targets map[string]redis.UniversalClient
}

func newStores(t testing.TB) stores {
	t.Helper()
	s := stores{
		legacy: redis.NewClient(&redis.Options{Addr: env.legacy.Addr(), DisableIdentity: true}),
		targets: map[string]redis.UniversalClient{
			"cache":     redis.NewClusterClient(&redis.ClusterOptions{Addrs: env.cluster.Addrs(), DisableIdentity: true}),
			"session":   redis.NewFailoverClient(&redis.FailoverOptions{MasterName: env.sentinel.MasterName, SentinelAddrs: env.sentinel.SentinelAddrs(), DisableIdentity: true}),
			"queue":     redis.NewClient(&redis.Options{Addr: env.queue.Addr(), DisableIdentity: true}),
			"ratelimit": redis.NewClient(&redis.Options{Addr: env.ratelimit.Addr(), DisableIdentity: true}),
		},
	}
	t.Cleanup(func() {
		s.legacy.Close()
		for _, c := range s.targets {
			c.Close()
		}
	})
	return s
}

// flush empties legacy and every target master.
func flush(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	s := newStores(t)
	if err := s.legacy.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for b, c := range s.targets {
		var err error
		if cc, ok := c.(*redis.ClusterClient); ok {
			err = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return n.FlushAll(ctx).Err() })
		} else {
			err = c.FlushAll(ctx).Err()
		}
		if err != nil {
			t.Fatalf("flush %s: %v", b, err)
		}
	}
}

func newClient(t testing.TB, s stores, mod func(*client.Options)) *client.Client {
	t.Helper()
	o := client.Options{PlanYAML: []byte(testPlan), Legacy: s.legacy, Targets: s.targets, PollInterval: 200 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&o)
	}
	c, err := client.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func setPhase(t testing.TB, bucket string, p state.Phase) client.ControlValue {
	t.Helper()
	l := redis.NewClient(&redis.Options{Addr: env.legacy.Addr(), DisableIdentity: true})
	defer l.Close()
	v, err := client.SetPhase(context.Background(), l, bucket, p, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitPhase waits until every client routes bucket by phase p.
func waitPhase(t testing.TB, p state.Phase, bucket string, cs ...*client.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, c := range cs {
		for c.Phase(bucket).Phase != p {
			if time.Now().After(deadline) {
				t.Fatalf("bucket %s: client still at phase %q, want %q", bucket, c.Phase(bucket).Phase, p)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// get reads key on a store directly ("" when absent).
func get(t testing.TB, c redis.Cmdable, key string) string {
	t.Helper()
	v, err := c.Get(context.Background(), key).Result()
	if err == redis.Nil {
		return ""
	}
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	return v
}

func exists(t testing.TB, c redis.Cmdable, key string) bool {
	t.Helper()
	n, err := c.Exists(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("EXISTS %s: %v", key, err)
	}
	return n == 1
}

func writePlanFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(p, []byte(testPlan), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
