package topology_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/topology/topotest"
)

func TestStandaloneRestart(t *testing.T) {
	s := topotest.Standalone(t)
	c := topotest.Client(t, s.Addr())
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if c.Ping(ctx).Err() == nil {
		t.Fatal("killed server still answers")
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestClusterServesAllSlots(t *testing.T) {
	cl := topotest.Cluster(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	defer c.Close()
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		if err := c.Set(ctx, "key"+string(rune('a'+i%26))+string(rune(i)), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	n := int64(0)
	err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		k, err := m.DBSize(ctx).Result()
		if k == 0 {
			t.Errorf("master %s holds no key", m.Options().Addr)
		}
		n += k
		return err
	})
	if err != nil || n != 200 {
		t.Fatalf("keys=%d err=%v", n, err)
	}
}

func TestSentinelFailover(t *testing.T) {
	s := topotest.Sentinel(t)
	ctx := context.Background()
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.SentinelAddrs()})
	defer c.Close()
	if err := c.Set(ctx, "before", 1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	old, _ := s.CurrentMaster(ctx)
	nm, err := s.Failover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if nm == old {
		t.Fatalf("master did not change: %s", nm)
	}
	if err := c.Set(ctx, "after", 1, 0).Err(); err != nil {
		t.Fatal(err)
	}
}
