package migrate

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/target"
)

// readBatch reads keys from legacy atomically: one MULTI/EXEC holding, per
// key, PTTL and DUMP (TYPE instead of DUMP for big keys, which are copied
// in chunks), then TIME, so no write of the application interleaves and
// the absolute expiry is TIME + PTTL at the same instant. It returns
// legacy's clock (Unix ms) and one entry per key; nil for keys absent at
// read time. A key's type comes from its payload's RDB type byte.
//
// (A Lua script could decide "big" per key inside the transaction, but
// costs legacy about twice the CPU per key; the size check is done just
// before, by the scanner, with MEMORY USAGE.)
func readBatch(ctx context.Context, c *redis.Client, keys []string, big []bool) (int64, []*target.Entry, error) {
	cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			p.PTTL(ctx, k)
			if big[i] {
				p.Type(ctx, k)
			} else {
				p.Dump(ctx, k)
			}
		}
		p.Time(ctx)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, nil, err
	}
	if len(cmds) != 2*len(keys)+1 {
		return 0, nil, fmt.Errorf("legacy: MULTI answered %d replies for %d keys", len(cmds), len(keys))
	}
	now := cmds[len(cmds)-1].(*redis.TimeCmd).Val().UnixMilli()
	out := make([]*target.Entry, len(keys))
	for i, k := range keys {
		pttl := cmds[2*i].(*redis.DurationCmd)
		if pttl.Err() != nil {
			return 0, nil, pttl.Err()
		}
		d := pttl.Val()
		if d == -2 { // absent (go-redis keeps -1/-2 as raw durations)
			continue
		}
		e := &target.Entry{Key: k, Big: big[i]}
		if d >= 0 {
			e.ExpireAt = now + d.Milliseconds()
		}
		switch c := cmds[2*i+1].(type) {
		case *redis.StatusCmd:
			e.Type = c.Val()
			if e.Type == "none" {
				continue
			}
		case *redis.StringCmd:
			if errors.Is(c.Err(), redis.Nil) {
				continue
			}
			if c.Err() != nil {
				return 0, nil, c.Err()
			}
			e.Payload = c.Val() // no copy: strings are immutable
			e.Type = target.PayloadType(e.Payload)
		}
		out[i] = e
	}
	return now, out, nil
}
