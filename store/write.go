package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/redisconn"
)

// Entry is one key's state as read atomically from legacy: its type, its
// absolute expiry and its DUMP payload. Big entries carry no payload; they
// are copied logically, in chunks (CopyLogical).
type Entry struct {
	Key      string
	Type     string // string, hash, list, set, zset, stream (or a module type)
	ExpireAt int64  // absolute expiry in Unix milliseconds; 0 = none
	Payload  string // DUMP payload (binary); empty for Big entries
	Big      bool   // above the size threshold: copy in chunks
}

// Retry is the back-off policy for errors redisconn.Classify calls
// retryable (failover, resharding, loading, connection reset, timeouts).
type Retry struct {
	Initial time.Duration // first wait; default 50ms
	Max     time.Duration // longest wait; default 2s
	For     time.Duration // give up after this long; default 2m
	// Side is the server this policy retries. An error attributed to
	// another side (redisconn.SideOf) is returned at once: neither retried
	// nor reported to OnRetry, so that a legacy failure met while writing
	// a target never counts as the target's. Unattributed errors are the
	// policy's own. The write methods of Redis set SideTarget.
	Side redisconn.Side
	// OnRetry, when set, is called with each transient error before its
	// back-off wait, so that a degraded server can be reported while it
	// is retried. It must not block.
	OnRetry func(err error)
}

func (r Retry) withDefaults() Retry {
	if r.Initial <= 0 {
		r.Initial = 50 * time.Millisecond
	}
	if r.Max <= 0 {
		r.Max = 2 * time.Second
	}
	if r.For <= 0 {
		r.For = 2 * time.Minute
	}
	return r
}

// Do calls fn until it succeeds, fails with an error that is not
// retryable or not of the policy's side, the policy's time is up, or ctx
// ends. It returns fn's last error.
func (r Retry) Do(ctx context.Context, fn func() error) error {
	r = r.withDefaults()
	deadline := time.Now().Add(r.For)
	wait := r.Initial
	for {
		err := fn()
		if err == nil || ctx.Err() != nil || !r.retries(err) || time.Now().After(deadline) {
			return err
		}
		if r.OnRetry != nil {
			r.OnRetry(err)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(wait*2, r.Max)
	}
}

// retries reports whether err is the policy's to retry.
func (r Retry) retries(err error) bool {
	if side := redisconn.SideOf(err); r.Side != redisconn.SideUnknown && side != redisconn.SideUnknown && side != r.Side {
		return false
	}
	return redisconn.Classify(err).Retryable()
}

// KeyError is the failure of one key on a target.
type KeyError struct {
	Key   string
	Class redisconn.Class
	Err   error
}

func (e *KeyError) Error() string { return fmt.Sprintf("key %q: %v", e.Key, e.Err) }
func (e *KeyError) Unwrap() error { return e.Err }

// replicaWait bounds how long a write to a Sentinel-managed master waits
// for its replica.
const replicaWait = 5 * time.Second

// errNotReplicated is transient: the batch is written again.
var errNotReplicated = errors.New("NOREPLICAS the replica did not acknowledge the batch in time (WAIT)")

// replicated reports whether writes must be acknowledged by a replica
// (Sentinel targets: a failover promotes the replica, and a write only the
// old master had would be lost).
func (r *Redis) replicated() bool { return r.Kind == config.KindSentinel }

// addWait ends pipeline p, on a replicated target, with WAIT 1: sent on the
// pipeline's one connection, it acknowledges every write before it. Its
// reply is the pipeline's last; replicaAck reads it.
func (r *Redis) addWait(ctx context.Context, p redis.Pipeliner) {
	if r.replicated() {
		p.Do(ctx, "wait", 1, replicaWait.Milliseconds())
	}
}

func replicaAck(c redis.Cmder) error {
	if c.Err() != nil {
		return c.Err()
	}
	if n, ok := c.(*redis.Cmd).Val().(int64); !ok || n < 1 {
		return errNotReplicated
	}
	return nil
}

// Existing returns, for each key, whether it exists on the target
// (pipelined EXISTS, retried on transient errors).
func (r *Redis) Existing(ctx context.Context, keys []string, retry Retry) ([]bool, error) {
	retry.Side = redisconn.SideTarget
	out := make([]bool, len(keys))
	err := retry.Do(ctx, func() error {
		cmds, err := r.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Exists(ctx, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, c := range cmds {
			out[i] = c.(*redis.IntCmd).Val() > 0
		}
		return nil
	})
	return out, err
}

// PayloadType returns the Redis type of a DUMP payload from its RDB object
// type byte ("" when unknown, e.g. a module type).
func PayloadType(payload string) string {
	if len(payload) == 0 {
		return ""
	}
	switch payload[0] {
	case 0:
		return "string"
	case 1, 10, 14, 18:
		return "list"
	case 2, 11, 20:
		return "set"
	case 3, 5, 12, 17:
		return "zset"
	case 4, 9, 13, 16:
		return "hash"
	case 15, 19, 21:
		return "stream"
	}
	return ""
}
