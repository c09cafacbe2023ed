// Package store is the one place that knows how to reach the store of a
// bucket: a standalone Redis, a Redis Cluster or a Sentinel-managed master
// (and, later, SQS for queues). Writes to targets during migrate live here
// too, so "where do writes to a target happen" has one answer.
package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/redisconn"
)

// Redis is the Redis store of one bucket.
type Redis struct {
	Bucket string
	Kind   string // config.KindStandalone, KindCluster, KindSentinel
	Client redis.UniversalClient
	desc   string
}

// Open connects to the target of bucket and checks it answers.
func Open(ctx context.Context, bucket string, t config.Target) (*Redis, error) {
	c, err := redisconn.Target(ctx, bucket, t)
	if err != nil {
		return nil, err
	}
	var d string
	switch t.Kind {
	case config.KindCluster:
		d = "cluster " + strings.Join(t.Addrs, ",")
	case config.KindSentinel:
		d = "sentinel " + t.Master + "@" + strings.Join(t.Sentinels, ",")
	default:
		d = "standalone " + redisconn.RedactURL(t.URL)
	}
	return &Redis{Bucket: bucket, Kind: t.Kind, Client: c, desc: d}, nil
}

// Describe names the store for humans; it never includes a password.
func (r *Redis) Describe() string { return r.desc }

// Close closes the connections.
func (r *Redis) Close() error { return r.Client.Close() }

// ForEachMaster calls fn for every master: all masters of a cluster
// (concurrently, one goroutine per master), the one master otherwise. Use it to scan the whole keyspace of the target.
func (r *Redis) ForEachMaster(ctx context.Context, fn func(ctx context.Context, c *redis.Client) error) error {
	switch c := r.Client.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, fn)
	case *redis.Client:
		return fn(ctx, c)
	default:
		return fmt.Errorf("target %s: unsupported client %T", r.Bucket, r.Client)
	}
}

// Info is what preflight checks need to know about a target server.
type Info struct {
	Version         string
	MaxMemory       int64
	MaxMemoryPolicy string
	UsedMemory      int64
	EvictedKeys     int64 // summed over masters
	Keys            int64 // summed over masters (DBSIZE)
	AOF             bool
}

// Info reads INFO and CONFIG-free facts from every master and sums them.
// Masters are asked concurrently.
func (r *Redis) Info(ctx context.Context) (Info, error) {
	var out Info
	var mu sync.Mutex
	err := r.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		s, err := c.Info(ctx, "server", "memory", "stats", "persistence").Result()
		if err != nil {
			return redisconn.Explain(err, "target "+r.Bucket, c.Options().Addr)
		}
		n, err := c.DBSize(ctx).Result()
		if err != nil {
			return redisconn.Explain(err, "target "+r.Bucket, c.Options().Addr)
		}
		mu.Lock()
		defer mu.Unlock()
		out.Keys += n
		f := ParseInfo(s)
		out.Version = f["redis_version"]
		mm, _ := strconv.ParseInt(f["maxmemory"], 10, 64)
		out.MaxMemory += mm
		out.MaxMemoryPolicy = f["maxmemory_policy"]
		um, _ := strconv.ParseInt(f["used_memory"], 10, 64)
		out.UsedMemory += um
		ev, _ := strconv.ParseInt(f["evicted_keys"], 10, 64)
		out.EvictedKeys += ev
		out.AOF = out.AOF || f["aof_enabled"] == "1"
		return nil
	})
	return out, err
}

// ParseInfo turns an INFO reply into a field map.
func ParseInfo(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m
}

// Set is the opened targets of several buckets, keyed by bucket.
type Set map[string]*Redis

// OpenSet opens the target of every bucket in buckets from cfgs. On error the
// targets already opened are closed and the error names the failing one.
func OpenSet(ctx context.Context, buckets []string, cfgs map[string]config.Target) (Set, error) {
	s := Set{}
	for _, b := range buckets {
		t, err := Open(ctx, b, cfgs[b])
		if err != nil {
			s.Close()
			return nil, err
		}
		s[b] = t
	}
	return s, nil
}

// Close closes every target of the set.
func (s Set) Close() {
	for _, t := range s {
		t.Close()
	}
}
