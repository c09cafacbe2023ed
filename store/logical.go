package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
)

// Logical copy: the fallback when a target cannot read legacy's DUMP payload
// (another Redis version or engine), and the path for keys above the size
// threshold. The value is read from legacy in pages (GETRANGE, HSCAN, SSCAN,
// ZSCAN, LRANGE, XRANGE) and appended to the target page by page, so at most
// one page is in memory. The copy is not atomic on legacy: a key written by
// the application while it is copied may land as a mix (the live mirror of
// dual-write re-copies it). Stream consumer groups are recreated with their
// last delivered ID and entries-read counter, their consumers, and their
// pending entries (owner, idle time, delivery count) through XCLAIM ... FORCE
// JUSTID, as Redis replicates them; a pending entry whose message was
// deleted from the stream cannot be recreated (the target drops it).

// ErrAbsent: the key no longer exists on legacy; nothing was written.
var ErrAbsent = errors.New("key no longer exists on legacy")

// LogicalPage is the number of elements (or KiB for strings) per page.
const LogicalPage = 1000

// CopyLogical copies key e.Key of type e.Type from src (legacy) to the
// target: it deletes the key on the target, appends the value page by page,
// then sets the absolute expiry e.ExpireAt. wait, when not nil, is called
// before every read from src with the number of commands about to be sent
// (the caller's ops budget). A retryable target error restarts the whole
// key (appends are not idempotent) under retry, which reports to the
// target's health. An error reading src is legacy's: it is returned at
// once as a *redisconn.Error of role "legacy" (redisconn.SideOf says
// SideLegacy), never retried or reported as the target's; the caller
// handles it as any legacy failure. It returns the bytes read.
func (r *Redis) CopyLogical(ctx context.Context, src *redis.Client, e *Entry, retry Retry, wait func(n int) error) (int64, error) {
	retry.Side = redisconn.SideTarget
	var n int64
	err := retry.Do(ctx, func() error {
		var err error
		n, err = r.copyLogicalOnce(ctx, src, e, wait)
		return err
	})
	return n, err
}

func (r *Redis) copyLogicalOnce(ctx context.Context, src *redis.Client, e *Entry, wait func(int) error) (int64, error) {
	// one connection, so that WAIT covers every write of the key
	var dst writer = r.Client
	if c, ok := r.Client.(*redis.Client); ok {
		conn := c.Conn()
		defer conn.Close()
		dst = conn
	}
	key := e.Key
	if err := dst.Del(ctx, key).Err(); err != nil {
		return 0, err
	}
	throttle := func() error {
		if wait != nil {
			return wait(1)
		}
		return nil
	}
	var bytes int64
	srcErr := legacyErr(src, key)
	if e.Type == "" {
		t, err := src.Type(ctx, key).Result()
		if err != nil {
			return 0, srcErr(err)
		}
		e.Type = t
	}
	if e.Type == "none" {
		return 0, ErrAbsent
	}
	switch e.Type {
	case "string":
		const chunk = LogicalPage * 1024
		for off := int64(0); ; off += chunk {
			if err := throttle(); err != nil {
				return bytes, err
			}
			s, err := src.GetRange(ctx, key, off, off+chunk-1).Result()
			if err != nil {
				return bytes, srcErr(err)
			}
			if off == 0 {
				err = dst.Set(ctx, key, s, 0).Err()
			} else if s != "" {
				err = dst.Append(ctx, key, s).Err()
			}
			if err != nil {
				return bytes, err
			}
			bytes += int64(len(s))
			if int64(len(s)) < chunk {
				break
			}
		}
	case "hash", "set", "zset":
		var cursor uint64
		for {
			if err := throttle(); err != nil {
				return bytes, err
			}
			var page []string
			var err error
			switch e.Type {
			case "hash":
				page, cursor, err = src.HScan(ctx, key, cursor, "", LogicalPage).Result()
			case "set":
				page, cursor, err = src.SScan(ctx, key, cursor, "", LogicalPage).Result()
			default:
				page, cursor, err = src.ZScan(ctx, key, cursor, "", LogicalPage).Result()
			}
			if err != nil {
				return bytes, srcErr(err)
			}
			if len(page) > 0 {
				args := make([]any, 0, len(page)+2)
				switch e.Type {
				case "hash":
					args = append(args, "hset", key)
				case "set":
					args = append(args, "sadd", key)
				default:
					args = append(args, "zadd", key)
				}
				if e.Type == "zset" { // ZSCAN answers member, score; ZADD wants score, member
					for i := 0; i+1 < len(page); i += 2 {
						args = append(args, page[i+1], page[i])
					}
				} else {
					for _, s := range page {
						args = append(args, s)
					}
				}
				for _, s := range page {
					bytes += int64(len(s))
				}
				if err := do(ctx, dst, args...).Err(); err != nil {
					return bytes, err
				}
			}
			if cursor == 0 {
				break
			}
		}
	case "list":
		for start := int64(0); ; start += LogicalPage {
			if err := throttle(); err != nil {
				return bytes, err
			}
			page, err := src.LRange(ctx, key, start, start+LogicalPage-1).Result()
			if err != nil {
				return bytes, srcErr(err)
			}
			if len(page) > 0 {
				args := make([]any, len(page))
				for i, s := range page {
					args[i] = s
					bytes += int64(len(s))
				}
				if err := dst.RPush(ctx, key, args...).Err(); err != nil {
					return bytes, err
				}
			}
			if len(page) < LogicalPage {
				break
			}
		}
	case "stream":
		b, err := copyStream(ctx, src, dst, key, throttle, srcErr)
		bytes += b
		if err != nil {
			return bytes, err
		}
	default:
		return 0, fmt.Errorf("key %q: type %s cannot be copied logically (module type?): the target must run the same module and accept its DUMP payload", key, e.Type)
	}
	if e.ExpireAt > 0 {
		if err := dst.PExpireAt(ctx, key, msTime(e.ExpireAt)).Err(); err != nil {
			return bytes, err
		}
	}
	if r.replicated() {
		if err := replicaAck(do(ctx, dst, "wait", 1, replicaWait.Milliseconds())); err != nil {
			return bytes, err
		}
	}
	return bytes, nil
}

// legacyErr returns the function that attributes an error reading key
// from src to legacy (see CopyLogical).
func legacyErr(src *redis.Client, key string) func(error) error {
	return func(err error) error {
		return redisconn.Attribute(fmt.Errorf("reading %q for a logical copy: %w", key, err), "legacy", src.Options().Addr)
	}
}

func copyStream(ctx context.Context, src *redis.Client, dst writer, key string, throttle func() error, srcErr func(error) error) (int64, error) {
	var bytes int64
	start := "-"
	for {
		if err := throttle(); err != nil {
			return bytes, err
		}
		// raw XRANGE keeps the field order of every entry (a map would not)
		raw, err := src.Do(ctx, "xrange", key, start, "+", "COUNT", LogicalPage).Slice()
		if err != nil {
			return bytes, srcErr(err)
		}
		last := ""
		if len(raw) > 0 {
			_, err := dst.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, m := range raw {
					ent, _ := m.([]any)
					if len(ent) != 2 {
						continue
					}
					id, _ := ent[0].(string)
					fv, _ := ent[1].([]any)
					args := append(make([]any, 0, 3+len(fv)), "xadd", key, id)
					for _, x := range fv {
						s, _ := x.(string)
						args = append(args, s)
						bytes += int64(len(s))
					}
					p.Do(ctx, args...)
					last = id
				}
				return nil
			})
			if err != nil {
				return bytes, err
			}
			start = "(" + last
		}
		if len(raw) < LogicalPage {
			break
		}
	}
	info, err := src.XInfoStream(ctx, key).Result()
	if err != nil {
		return bytes, srcErr(err)
	}
	if info.Length == 0 {
		// an empty stream exists only through XADD+XDEL or XGROUP MKSTREAM
		if err := do(ctx, dst, "xgroup", "create", key, "redisplit-mk", "$", "MKSTREAM").Err(); err != nil {
			return bytes, err
		}
		if err := do(ctx, dst, "xgroup", "destroy", key, "redisplit-mk").Err(); err != nil {
			return bytes, err
		}
	}
	if err := do(ctx, dst, "xsetid", key, info.LastGeneratedID).Err(); err != nil {
		return bytes, err
	}
	groups, err := src.XInfoGroups(ctx, key).Result()
	if err != nil {
		return bytes, srcErr(err)
	}
	for _, g := range groups {
		if err := copyGroup(ctx, src, dst, key, g, throttle, srcErr); err != nil {
			return bytes, err
		}
	}
	return bytes, nil
}

// copyGroup recreates consumer group g of stream key on dst: the group at
// its last delivered ID (with its entries-read counter where the target
// knows ENTRIESREAD, Redis 7.0+), every consumer, then the pending entries
// page by page.
func copyGroup(ctx context.Context, src *redis.Client, dst writer, key string, g redis.XInfoGroup, throttle func() error, srcErr func(error) error) error {
	err := do(ctx, dst, "xgroup", "create", key, g.Name, g.LastDeliveredID, "ENTRIESREAD", g.EntriesRead).Err()
	if err != nil && strings.Contains(strings.ToLower(err.Error()), "syntax") {
		err = dst.XGroupCreate(ctx, key, g.Name, g.LastDeliveredID).Err()
	}
	if err != nil {
		return err
	}
	if err := throttle(); err != nil {
		return err
	}
	consumers, err := src.XInfoConsumers(ctx, key, g.Name).Result()
	if err != nil {
		return srcErr(fmt.Errorf("the consumers of group %q: %w", g.Name, err))
	}
	if len(consumers) > 0 {
		if _, err := dst.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, c := range consumers {
				p.XGroupCreateConsumer(ctx, key, g.Name, c.Name)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	start := "-"
	for {
		if err := throttle(); err != nil {
			return err
		}
		pending, err := src.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: key, Group: g.Name, Start: start, End: "+", Count: LogicalPage}).Result()
		if err != nil {
			return srcErr(fmt.Errorf("the pending entries of group %q: %w", g.Name, err))
		}
		if len(pending) > 0 {
			if _, err := dst.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, e := range pending {
					p.Do(ctx, "xclaim", key, g.Name, e.Consumer, 0, e.ID,
						"IDLE", e.Idle.Milliseconds(), "RETRYCOUNT", e.RetryCount, "FORCE", "JUSTID")
				}
				return nil
			}); err != nil {
				return err
			}
			start = "(" + pending[len(pending)-1].ID
		}
		if len(pending) < LogicalPage {
			return nil
		}
	}
}

// writer is a target connection: a cluster client or one connection.
type writer interface {
	redis.Cmdable
	Process(ctx context.Context, cmd redis.Cmder) error
}

func do(ctx context.Context, w writer, args ...any) *redis.Cmd {
	c := redis.NewCmd(ctx, args...)
	_ = w.Process(ctx, c)
	return c
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms) }
