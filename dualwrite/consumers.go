package dualwrite

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
)

// Consumers is one job framework's workers that are alive on legacy: a
// queue bucket must not be cut over while they still take jobs there, or
// two consumer fleets run the same jobs (DESIGN.md §8).
type Consumers struct {
	Family string   `json:"family"` // "sidekiq", "asynq", "rq"
	Alive  int      `json:"alive"`  // workers whose heartbeat is recent
	Sample []string `json:"sample"` // up to 3 of their names
	How    string   `json:"how"`    // how liveness was judged
}

// HeartbeatMaxAge is how recent a worker's heartbeat must be to count it
// alive (Sidekiq beats every 10 s, RQ and asynq refresh within 15–60 s).
const HeartbeatMaxAge = 60 * time.Second

// LiveConsumers reads the worker registries the frameworks keep on legacy
// and returns the families with workers alive at now: Sidekiq (set
// "processes", each process hash's "beat" within HeartbeatMaxAge), asynq
// (sorted set "asynq:servers" scored by the expiry its servers refresh),
// RQ (set "rq:workers" whose worker keys still exist: RQ gives them a TTL
// its heartbeat renews). It only reads. Plain lists have no registry: their
// consumers cannot be seen this way.
func LiveConsumers(ctx context.Context, legacy *redis.Client, now time.Time) ([]Consumers, error) {
	var out []Consumers
	add := func(family, how string, names []string) {
		if len(names) > 0 {
			c := Consumers{Family: family, Alive: len(names), How: how}
			c.Sample = names[:min(3, len(names))]
			out = append(out, c)
		}
	}
	// Sidekiq
	procs, err := legacy.SMembers(ctx, "processes").Result()
	if err != nil && !isWrongType(err) {
		return nil, err
	}
	var alive []string
	for _, p := range procs {
		beat, err := legacy.HGet(ctx, p, "beat").Result()
		if errors.Is(err, redis.Nil) || isWrongType(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if f, perr := strconv.ParseFloat(beat, 64); perr == nil && now.Sub(time.Unix(0, int64(f*1e9))) < HeartbeatMaxAge {
			alive = append(alive, p)
		}
	}
	add("sidekiq", fmt.Sprintf("process heartbeat (HGET <process> beat) within %s", HeartbeatMaxAge), alive)
	// asynq
	servers, err := legacy.ZRangeByScore(ctx, "asynq:servers", &redis.ZRangeBy{Min: strconv.FormatInt(now.Unix(), 10), Max: "+inf"}).Result()
	if err != nil && !isWrongType(err) {
		return nil, err
	}
	add("asynq", "server entries of asynq:servers not expired", servers)
	// RQ
	workers, err := legacy.SMembers(ctx, "rq:workers").Result()
	if err != nil && !isWrongType(err) {
		return nil, err
	}
	alive = nil
	for _, w := range workers {
		k := w
		if !strings.HasPrefix(k, "rq:worker:") {
			k = "rq:worker:" + w
		}
		n, err := legacy.Exists(ctx, k).Result()
		if err != nil {
			return nil, err
		}
		if n == 1 {
			alive = append(alive, strings.TrimPrefix(k, "rq:worker:"))
		}
	}
	add("rq", "worker keys of rq:workers still present (their TTL is renewed by the heartbeat)", alive)
	return out, nil
}

// isWrongType: the registry key holds another type (an application's own
// key of that name): not a registry.
func isWrongType(err error) bool { return redisconn.ReplyCode(err) == "WRONGTYPE" }
