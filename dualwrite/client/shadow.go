package client

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// shadowTimeout bounds one shadow read.
const shadowTimeout = 2 * time.Second

// shadowRead sends a copy of the read cmd (already answered by legacy) to a
// syncing bucket's target, in the background, and counts whether the
// replies agree. The mirror is asynchronous, so a mismatch may be a write
// not yet copied: the counter is a measure, not a verdict (verify is the
// verdict). It never fails or delays the caller.
func (c *Client) shadowRead(ctx context.Context, cmd redis.Cmder, cm command, t *store) {
	if !cm.read || cm.noShadow {
		return
	}
	if err := cmd.Err(); err != nil && err != redis.Nil {
		return // legacy failed: nothing to compare
	}
	clone := cloneCmd(ctx, cmd)
	if clone == nil {
		c.stats.shadowSkip.Add(1)
		return
	}
	want := valueOf(cmd, cm.unordered)
	select {
	case c.shadowSem <- struct{}{}:
	default:
		c.stats.shadowSkip.Add(1)
		return
	}
	c.shadowWG.Add(1)
	go func() {
		defer c.shadowWG.Done()
		defer func() { <-c.shadowSem }()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shadowTimeout)
		defer cancel()
		if err := t.c.Process(sctx, clone); err != nil && err != redis.Nil {
			c.stats.shadowErrs.Add(1)
			return
		}
		c.stats.shadowReads.Add(1)
		if !reflect.DeepEqual(want, valueOf(clone, cm.unordered)) {
			c.stats.shadowMismatches.Add(1)
		}
	}()
}

// cloneCmd returns a fresh command of cmd's type and arguments, or nil for a
// reply type the client does not compare.
func cloneCmd(ctx context.Context, cmd redis.Cmder) redis.Cmder {
	a := cmd.Args()
	switch cmd.(type) {
	case *redis.StringCmd:
		return redis.NewStringCmd(ctx, a...)
	case *redis.IntCmd:
		return redis.NewIntCmd(ctx, a...)
	case *redis.BoolCmd:
		return redis.NewBoolCmd(ctx, a...)
	case *redis.FloatCmd:
		return redis.NewFloatCmd(ctx, a...)
	case *redis.StatusCmd:
		return redis.NewStatusCmd(ctx, a...)
	case *redis.StringSliceCmd:
		return redis.NewStringSliceCmd(ctx, a...)
	case *redis.IntSliceCmd:
		return redis.NewIntSliceCmd(ctx, a...)
	case *redis.BoolSliceCmd:
		return redis.NewBoolSliceCmd(ctx, a...)
	case *redis.FloatSliceCmd:
		return redis.NewFloatSliceCmd(ctx, a...)
	case *redis.SliceCmd:
		return redis.NewSliceCmd(ctx, a...)
	case *redis.MapStringStringCmd:
		return redis.NewMapStringStringCmd(ctx, a...)
	case *redis.ZSliceCmd:
		return redis.NewZSliceCmd(ctx, a...)
	case *redis.XMessageSliceCmd:
		return redis.NewXMessageSliceCmd(ctx, a...)
	case *redis.Cmd:
		return redis.NewCmd(ctx, a...)
	}
	return nil
}

// reply is a command's answer in comparable form.
type reply struct {
	missing bool // redis.Nil
	val     any
}

func valueOf(cmd redis.Cmder, unordered bool) reply {
	if cmd.Err() == redis.Nil {
		return reply{missing: true}
	}
	var v any
	switch x := cmd.(type) {
	case *redis.StringCmd:
		v = x.Val()
	case *redis.IntCmd:
		v = x.Val()
	case *redis.BoolCmd:
		v = x.Val()
	case *redis.FloatCmd:
		v = x.Val()
	case *redis.StatusCmd:
		v = x.Val()
	case *redis.StringSliceCmd:
		s := slices.Clone(x.Val())
		if unordered {
			slices.Sort(s)
		}
		v = s
	case *redis.IntSliceCmd:
		v = slices.Clone(x.Val())
	case *redis.BoolSliceCmd:
		v = slices.Clone(x.Val())
	case *redis.FloatSliceCmd:
		v = slices.Clone(x.Val())
	case *redis.SliceCmd:
		v = slices.Clone(x.Val())
	case *redis.MapStringStringCmd:
		v = maps.Clone(x.Val())
	case *redis.ZSliceCmd:
		v = slices.Clone(x.Val())
	case *redis.XMessageSliceCmd:
		v = slices.Clone(x.Val())
	case *redis.Cmd:
		v = x.Val()
		if l, ok := v.([]any); ok {
			l = slices.Clone(l)
			if unordered {
				slices.SortFunc(l, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
			}
			v = l
		}
	}
	return reply{val: v}
}
