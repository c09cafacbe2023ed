package store

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
)

// CLIENT NO-TOUCH: a connection with it on reads keys without updating their
// LRU/LFU clock (Redis ≥ 7.2, Valkey ≥ 7.2), so that the copier reading
// every key does not reorder legacy's eviction: RedisSource.NoTouch for its
// raw connections, NoTouchOnConnect for the client its logical copies page
// through. TOUCH still touches (OBJECT never does, with or without it).

// SupportsNoTouch reports whether the server behind c accepts CLIENT
// NO-TOUCH. It asks on a connection of its own, closed afterwards, with
// CLIENT NO-TOUCH OFF (the default: nothing changes), so that c's pool is
// left alone. A server without it answers "unknown subcommand": (false,
// nil). An ACL refusal means the server has it but the user may not use it:
// (true, the explained error).
func SupportsNoTouch(ctx context.Context, c *redis.Client) (bool, error) {
	opt := *c.Options()
	opt.PoolSize, opt.MinIdleConns, opt.MaxIdleConns = 1, 0, 0
	opt.OnConnect = nil
	one := redis.NewClient(&opt)
	defer one.Close()
	err := one.Do(ctx, "client", "no-touch", "off").Err()
	switch {
	case err == nil:
		return true, nil
	case strings.Contains(err.Error(), "unknown subcommand") || strings.Contains(err.Error(), "unknown command"):
		return false, nil
	case redisconn.Classify(err) == redisconn.NoPerm:
		return true, redisconn.Explain(err, "legacy", opt.Addr)
	}
	return false, redisconn.Explain(err, "legacy", opt.Addr)
}

// NoTouchOnConnect returns a go-redis OnConnect hook that turns CLIENT
// NO-TOUCH on for every new connection, then runs next (if any). Install it
// (opt.OnConnect = NoTouchOnConnect(opt.OnConnect)) only where
// SupportsNoTouch said yes: on a server without the command every
// connection would fail.
func NoTouchOnConnect(next func(ctx context.Context, cn *redis.Conn) error) func(ctx context.Context, cn *redis.Conn) error {
	return func(ctx context.Context, cn *redis.Conn) error {
		if err := cn.Do(ctx, "client", "no-touch", "on").Err(); err != nil {
			return err
		}
		if next != nil {
			return next(ctx, cn)
		}
		return nil
	}
}
