package store

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
)

// Delete removes keys from the target with pipelined UNLINKs, one key per
// command (a cluster routes each to the master of its slot), and returns
// how many of them existed. It is the one delete of a target outside the
// copier's Apply, and runs the same write loop (pipelineOps): it returns
// only once the deletes are durable as far as the target can tell (on a
// Sentinel target the batch ends with WAIT 1 on the same connection, so
// that a failover after Delete returned cannot bring the keys back from a
// replica that had not seen the deletes).
//
// Transient errors (failover, LOADING, READONLY, connection reset, ...) are
// retried with retry's back-off for the keys that failed, and a missing
// replica acknowledgement by sending the batch again: UNLINK is idempotent.
// Any other error, or a transient one that outlasts the policy, is
// returned (the first key's); the caller must then assume none of the keys
// is durably gone.
func (r *Redis) Delete(ctx context.Context, keys []string, retry Retry) (int64, error) {
	retry.Side = redisconn.SideTarget
	if len(keys) == 0 {
		return 0, nil
	}
	existed := make([]bool, len(keys)) // a retried batch finds the keys of an earlier try gone
	ops := make([]op, len(keys))
	for i, k := range keys {
		ops[i] = op{key: k, args: []any{"unlink", k}, ok: func(c redis.Cmder) {
			if n, err := c.(*redis.Cmd).Int64(); err == nil && n > 0 {
				existed[i] = true
			}
		}}
	}
	failed := r.pipelineOps(ctx, ops, retry)
	var n int64
	for _, e := range existed {
		if e {
			n++
		}
	}
	if len(failed) > 0 {
		return n, failed[0]
	}
	return n, nil
}
