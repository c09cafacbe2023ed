package store

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
)

// Delete removes keys from the target with pipelined UNLINKs, one key per
// command (a cluster routes each to the master of its slot), and returns
// how many of them existed. It returns only once the deletes are durable as
// far as the target can tell: on a Sentinel target the batch ends with
// WAIT 1 on the same connection (exactly as Restore), so that a failover
// after Delete returned cannot bring the keys back from a replica that had
// not seen the deletes.
//
// Transient errors (failover, LOADING, READONLY, connection reset, ...) and
// a missing replica acknowledgement are retried with retry's back-off by
// sending the whole batch again: UNLINK is idempotent. Any other error, or a
// transient one that outlasts the policy, is returned; the caller must then
// assume none of the keys is durably gone.
func (r *Redis) Delete(ctx context.Context, keys []string, retry Retry) (int64, error) {
	retry.Side = redisconn.SideTarget
	if len(keys) == 0 {
		return 0, nil
	}
	existed := make([]bool, len(keys)) // a retried batch finds the keys of an earlier try gone
	err := retry.Do(ctx, func() error {
		cmds, perr := r.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Unlink(ctx, k)
			}
			r.addWait(ctx, p)
			return nil
		})
		if len(cmds) < len(keys) { // the pipeline did not even start
			if perr == nil {
				perr = errors.New("pipeline returned no replies")
			}
			return perr
		}
		var first error
		for i := range keys {
			c := cmds[i].(*redis.IntCmd)
			if c.Err() != nil {
				if first == nil || redisconn.Classify(first).Retryable() && !redisconn.Classify(c.Err()).Retryable() {
					first = c.Err() // a permanent error wins: retrying cannot help
				}
				continue
			}
			existed[i] = existed[i] || c.Val() > 0
		}
		if first != nil {
			return first
		}
		if r.replicated() {
			return replicaAck(cmds[len(keys)])
		}
		return nil
	})
	var n int64
	for _, e := range existed {
		if e {
			n++
		}
	}
	return n, err
}
