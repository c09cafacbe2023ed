// Package topotest wraps package topology for tests: every topology it starts
// is torn down by t.Cleanup. The backend is local redis-server processes.
package topotest

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/topology"
)

// Backend returns a process backend whose files live in a test temp dir.
func Backend(t testing.TB) topology.Backend {
	t.Helper()
	b, err := topology.NewProcessBackend(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// Standalone starts a standalone redis-server with extra args.
func Standalone(t testing.TB, args ...string) topology.Server {
	t.Helper()
	s, err := topology.Standalone(ctx(t), Backend(t), "standalone", args...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Cluster starts a 3-master Redis Cluster.
func Cluster(t testing.TB, args ...string) *topology.Cluster {
	t.Helper()
	c, err := topology.StartCluster(ctx(t), Backend(t), "cluster", 3, args...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Sentinel starts master + replica + 3 sentinels monitoring master "sessions".
func Sentinel(t testing.TB, args ...string) *topology.Sentinel {
	t.Helper()
	s, err := topology.StartSentinel(ctx(t), Backend(t), "sentinel", "sessions", args...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Client returns a client for addr, closed at cleanup.
func Client(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}
