package containers_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/topology"
	"github.com/redisplit/redisplit/topology/containers"
)

// One backend and one full topology for the package (2-core machines).
var (
	backend  *containers.Backend
	single   topology.Server
	cluster  *topology.Cluster
	sentinel *topology.Sentinel
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t0 := time.Now()
	var err error
	backend, err = containers.New(ctx, containers.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "container backend:", err)
		return 1
	}
	defer backend.Close()
	tImage := time.Since(t0)
	single, err = topology.Standalone(ctx, backend, "standalone")
	if err == nil {
		cluster, err = topology.StartCluster(ctx, backend, "cache", 3)
	}
	if err == nil {
		sentinel, err = topology.StartSentinel(ctx, backend, "sessions", "sessions")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "topology:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "containers: image %s (%s) in %v; standalone + 3-master cluster + sentinel set ready in %v\n",
		backend.Image, backend.How, tImage.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	return m.Run()
}

func TestStandaloneKillStartKeepsPortAndData(t *testing.T) {
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: single.Addr(), DisableIdentity: true})
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// SAVE writes the RDB to the bind-mounted data dir; it must survive a kill.
	if err := c.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(containers.DataDir(single) + "/dump.rdb"); err != nil {
		t.Fatalf("RDB not in the host data dir: %v", err)
	}
	if err := single.Kill(); err != nil {
		t.Fatal(err)
	}
	if c.Ping(ctx).Err() == nil {
		t.Fatal("killed server still answers")
	}
	if err := single.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("after restart: %q %v", v, err)
	}
	if err := single.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Ping(ctx).Err() == nil {
		t.Fatal("stopped server still answers")
	}
	if err := single.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestClusterInContainers(t *testing.T) {
	ctx := context.Background()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs()})
	defer c.Close()
	for i := 0; i < 300; i++ {
		if err := c.Set(ctx, fmt.Sprintf("key:%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var n int64
	err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		k, err := m.DBSize(ctx).Result()
		if k == 0 {
			t.Errorf("master %s holds no key", m.Options().Addr)
		}
		n += k
		return err
	})
	if err != nil || n != 300 {
		t.Fatalf("keys=%d err=%v", n, err)
	}
	// Nodes announce loopback addresses, never container bridge addresses.
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		for _, n := range s.Nodes {
			if n.Addr[:10] != "127.0.0.1:" {
				t.Errorf("node announces %s", n.Addr)
			}
		}
	}
}

func TestSentinelFailoverInContainers(t *testing.T) {
	ctx := context.Background()
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: sentinel.MasterName, SentinelAddrs: sentinel.SentinelAddrs()})
	defer c.Close()
	if err := c.Set(ctx, "before", 1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	old, err := sentinel.CurrentMaster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nm, err := sentinel.Failover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if nm == old {
		t.Fatalf("master did not change: %s", nm)
	}
	if err := c.Set(ctx, "after", 1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	// The sentinel rewrote its config file in the bind-mounted dir.
	b, err := os.ReadFile(containers.DataDir(sentinel.Sentinels[0]) + "/sentinel.conf")
	if err != nil || len(b) == 0 {
		t.Fatalf("sentinel.conf: %v", err)
	}
}

func TestCloseRemovesContainers(t *testing.T) {
	ctx := context.Background()
	b, err := containers.New(ctx, containers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topology.Standalone(ctx, b, "tmp"); err != nil {
		b.Close()
		t.Fatal(err)
	}
	ids, err := b.Containers(ctx)
	if err != nil || len(ids) != 1 {
		b.Close()
		t.Fatalf("containers before close: %v %v", ids, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	left, err := b.Containers(ctx)
	if err != nil || len(left) != 0 {
		t.Fatalf("containers left after Close: %v %v", left, err)
	}
}

func TestStartFailureIsReportedAndRemoved(t *testing.T) {
	ctx := context.Background()
	// The standalone's port is taken: the new server must fail with its log.
	_, err := backend.StartServer(ctx, topology.ServerSpec{Name: "clash", Port: single.Port(),
		Args: []string{"--port", fmt.Sprint(single.Port()), "--bind", "127.0.0.1", "--save", ""}})
	if err == nil {
		t.Fatal("a server on a taken port started")
	}
	t.Log(err)
	ids, _ := backend.Containers(ctx)
	if len(ids) != 1+3+5 {
		t.Fatalf("%d containers, want 9 (the failed one removed)", len(ids))
	}
}

func TestImagePolicy(t *testing.T) {
	ctx := context.Background()
	// An image that is neither present nor pullable, with the fallback off.
	_, err := containers.New(ctx, containers.Options{Image: "redisplit.invalid/absent:1", Build: containers.BuildNever})
	if err == nil || !strings.Contains(err.Error(), "redisplit.invalid/absent:1") || !strings.Contains(err.Error(), "cannot be pulled") {
		t.Fatalf("build never with an absent image: %v", err)
	}
	// With the fallback on, the host-built image is used.
	b, err := containers.New(ctx, containers.Options{Image: "redisplit.invalid/absent:1"})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if !strings.HasPrefix(b.Image, containers.LocalRepo+":") || !strings.HasPrefix(b.How, containers.HowHostImage) {
		t.Errorf("auto fallback: image %s (%s)", b.Image, b.How)
	}
	// A present image is used as is.
	b, err = containers.New(ctx, containers.Options{Image: backend.Image, Build: containers.BuildNever})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if b.Image != backend.Image || b.How != "present" {
		t.Errorf("present image: %s (%s)", b.Image, b.How)
	}
	if _, err := containers.New(ctx, containers.Options{Build: "sometimes"}); err == nil {
		t.Error("an unknown build policy was accepted")
	}
}
