package storetest_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/store"
	"github.com/redisplit/redisplit/store/storetest"
	"github.com/redisplit/redisplit/topology/topotest"
)

// Every Redis store kind passes the conformance suite on a real topology.

func open(t *testing.T, tg config.Target) func() store.Sink {
	return func() store.Sink {
		r, err := store.Open(context.Background(), "session", tg)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

func TestStandalone(t *testing.T) {
	s := topotest.Standalone(t)
	raw := topotest.Client(t, s.Addr())
	storetest.Run(t, open(t, config.Target{Kind: config.KindStandalone, Endpoint: config.Endpoint{URL: "redis://" + s.Addr() + "/0"}}),
		func() redis.UniversalClient { return raw })
}

func TestCluster(t *testing.T) {
	c := topotest.Cluster(t)
	raw := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), DisableIdentity: true})
	t.Cleanup(func() { raw.Close() })
	storetest.Run(t, open(t, config.Target{Kind: config.KindCluster, Addrs: c.Addrs()}),
		func() redis.UniversalClient { return raw })
}

func TestSentinel(t *testing.T) {
	s := topotest.Sentinel(t)
	raw := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.SentinelAddrs(), DisableIdentity: true})
	t.Cleanup(func() { raw.Close() })
	storetest.Run(t, open(t, config.Target{Kind: config.KindSentinel, Master: s.MasterName, Sentinels: s.SentinelAddrs()}),
		func() redis.UniversalClient { return raw })
}
