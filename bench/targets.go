package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/topology"
)

// benchRules route the benchmark keyspace: cache strings, tag sets and
// leaderboards → cache; sessions → session; job lists → queue; login
// counters → ratelimit.
var benchRules = []classify.Rule{
	{Prefix: "cache:", Bucket: classify.Cache},
	{Prefix: "sess:", Bucket: classify.Session},
	{Prefix: "queue:", Bucket: classify.Queue},
	{Prefix: "rl:", Bucket: classify.RateLimit},
	{Glob: "user:*:tags", Bucket: classify.Cache},
	{Prefix: "lb:", Bucket: classify.Cache},
}

// benchTargets is the reference layout the migrate and verify benchmarks
// copy into: cache → 3-master cluster (allkeys-lru), session → master +
// replica + 3 sentinels, ratelimit and queue → standalones (noeviction),
// all local redis-server processes.
type benchTargets struct {
	Dir       string
	Cluster   *topology.Cluster
	Sentinel  *topology.Sentinel
	RateLimit topology.Server
	Queue     topology.Server
}

// startTargets starts the layout in a temp dir; stop removes it.
func startTargets(ctx context.Context) (t *benchTargets, stop func(), err error) {
	dir, err := os.MkdirTemp("", "redisplit-bench-targets-")
	if err != nil {
		return nil, nil, err
	}
	b, err := topology.NewProcessBackend(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	stop = func() { b.Close(); os.RemoveAll(dir) }
	defer func() {
		if err != nil {
			stop()
		}
	}()
	t = &benchTargets{Dir: dir}
	if t.Cluster, err = topology.StartCluster(ctx, b, "cache", 3, "--maxmemory-policy", "allkeys-lru"); err != nil {
		return nil, nil, err
	}
	if t.Sentinel, err = topology.StartSentinel(ctx, b, "session", "sessions", "--maxmemory-policy", "noeviction"); err != nil {
		return nil, nil, err
	}
	if t.RateLimit, err = topology.Standalone(ctx, b, "ratelimit", "--maxmemory-policy", "noeviction"); err != nil {
		return nil, nil, err
	}
	if t.Queue, err = topology.Standalone(ctx, b, "queue", "--maxmemory-policy", "noeviction"); err != nil {
		return nil, nil, err
	}
	return t, stop, nil
}

// Config is the targets section of the configuration.
func (t *benchTargets) Config() map[string]config.Target {
	return map[string]config.Target{
		"cache":     {Kind: config.KindCluster, Addrs: t.Cluster.Addrs()},
		"session":   {Kind: config.KindSentinel, Master: t.Sentinel.MasterName, Sentinels: t.Sentinel.SentinelAddrs()},
		"ratelimit": {Kind: config.KindStandalone, Endpoint: config.Endpoint{URL: "redis://" + t.RateLimit.Addr() + "/0"}},
		"queue":     {Kind: config.KindStandalone, Endpoint: config.Endpoint{URL: "redis://" + t.Queue.Addr() + "/0"}},
	}
}

// DataAddrs lists every data server (not the sentinels), to sum their CPU.
func (t *benchTargets) DataAddrs() []string {
	return append(append(t.Cluster.Addrs(), t.Sentinel.Master.Addr(), t.Sentinel.Replica.Addr()), t.RateLimit.Addr(), t.Queue.Addr())
}

// WriteConfig writes a redisplit.yaml routing the benchmark keyspace from
// legacyAddr into the layout (presets off, benchRules) and returns its path.
func (t *benchTargets) WriteConfig(legacyAddr string) (string, error) {
	return t.writeConfig(legacyAddr, map[string]bool{"none": true})
}

// WriteLiveConfig is WriteConfig with the built-in presets on (benchRules
// first): they route the live load's key families (package loadgen).
func (t *benchTargets) WriteLiveConfig(legacyAddr string) (string, error) {
	return t.writeConfig(legacyAddr, map[string]bool{})
}

func (t *benchTargets) writeConfig(legacyAddr string, presets map[string]bool) (string, error) {
	doc := map[string]any{
		"legacy":    map[string]string{"url": fmt.Sprintf("redis://%s/0", legacyAddr)},
		"targets":   t.Config(),
		"presets":   presets,
		"rules":     benchRules,
		"state_dir": filepath.Join(t.Dir, "state"),
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return "", err
	}
	path := filepath.Join(t.Dir, "redisplit.yaml")
	return path, os.WriteFile(path, b, 0o600)
}

// masters are the addresses of the layout's masters (the sentinel's as it
// is now).
func (t *benchTargets) masters(ctx context.Context) []string {
	return append(t.Cluster.Addrs(), mustMaster(ctx, t.Sentinel), t.RateLimit.Addr(), t.Queue.Addr())
}

// Keys counts the keys on every master of the layout.
func (t *benchTargets) Keys(ctx context.Context) int64 {
	var n int64
	for _, addr := range t.masters(ctx) {
		c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
		k, _ := c.DBSize(ctx).Result()
		c.Close()
		n += k
	}
	return n
}

// Reset empties every master of the layout (replicas follow) and removes
// the migration state, so that the next run starts from scratch.
func (t *benchTargets) Reset(ctx context.Context) error {
	for _, addr := range t.masters(ctx) {
		c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, ReadTimeout: time.Minute}) // 1M keys on a loaded machine
		err := c.FlushAll(ctx).Err()
		c.Close()
		if err != nil {
			return fmt.Errorf("emptying %s: %w", addr, err)
		}
	}
	return os.RemoveAll(filepath.Join(t.Dir, "state"))
}
