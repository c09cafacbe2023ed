package dualwrite

import (
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/redisplit/redisplit/copier"
)

// Belongs reports whether a key (with its type) is one of the bucket a
// reverse rescan or a purge is about: the plan's routing.
type Belongs func(key, typ string) bool

// ReverseRescan is the reverse direction's reconciliation after a gap (or
// before a rollback, when no mirror ran): it marks through p every key of
// the authoritative servers (the target's masters) that belongs to the
// bucket, then every key of legacy that belongs to it, and waits until
// every mark is applied. The reverse copier reads each key on the target:
// what the target has is written to legacy when it differs, and what it
// no longer has is deleted from legacy. Keys under ownPrefix are skipped.
// Marks run at most ahead keys in front of their copies.
func ReverseRescan(ctx context.Context, p *copier.Producer, target []*redis.Client, legacy *redis.Client, belongs Belongs, ownPrefix string, count int, ahead uint64) error {
	for _, c := range append(append([]*redis.Client(nil), target...), legacy) {
		err := scanBelonging(ctx, c, belongs, ownPrefix, count, func(keys []string) error {
			if m := p.Marked(); m > ahead {
				if err := p.Wait(ctx, m-ahead); err != nil {
					return err
				}
			}
			_, err := p.MarkAll(ctx, keys)
			return err
		})
		if err != nil {
			return err
		}
	}
	return p.Wait(ctx, p.Marked())
}

// scanBelonging SCANs c and calls fn with each page's keys that belong.
func scanBelonging(ctx context.Context, c *redis.Client, belongs Belongs, ownPrefix string, count int, fn func([]string) error) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, "", int64(count)).Result()
		if err != nil {
			return explainServer(err, c)
		}
		var page []string
		if len(keys) > 0 {
			cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range keys {
					p.Type(ctx, k)
				}
				return nil
			})
			if err != nil {
				return explainServer(err, c)
			}
			for i, k := range keys {
				typ := cmds[i].(*redis.StatusCmd).Val()
				if typ == "none" || strings.HasPrefix(k, ownPrefix) || !belongs(k, typ) {
					continue
				}
				page = append(page, k)
			}
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

func explainServer(err error, c *redis.Client) error {
	return &serverError{addr: c.Options().Addr, err: err}
}

type serverError struct {
	addr string
	err  error
}

func (e *serverError) Error() string { return e.addr + ": " + e.err.Error() }
func (e *serverError) Unwrap() error { return e.err }

// PurgeOptions pace a purge of legacy.
type PurgeOptions struct {
	OwnPrefix string
	MaxOps    int           // legacy commands a second (SCAN, TYPE and UNLINK count one each); 0: 2000
	Count     int           // SCAN COUNT; default 500
	Slow      time.Duration // an UNLINK batch slower than this pauses as long again; default 50ms
}

// PurgeResult counts a purge.
type PurgeResult struct {
	Scanned  int64         `json:"scanned"`  // legacy keys seen by SCAN
	Deleted  int64         `json:"deleted"`  // keys UNLINKed (UNLINK's count)
	Batches  int64         `json:"batches"`  // UNLINK pipelines
	BackOffs int64         `json:"backoffs"` // pauses because legacy answered slowly
	Elapsed  time.Duration `json:"elapsed_ns"`
}

// Purge deletes from legacy, in paced batches, every key that belongs
// (SCAN, TYPE, classify, UNLINK): the bucket's memory given back once it
// is completed. Every command takes the ops budget first, and a batch
// slower than Slow pauses the purge as long again (legacy is serving the
// application meanwhile). Keys under OwnPrefix are never deleted. It is
// idempotent: an interrupted purge is simply run again.
func Purge(ctx context.Context, legacy *redis.Client, belongs Belongs, o PurgeOptions) (PurgeResult, error) {
	if o.MaxOps <= 0 {
		o.MaxOps = 2000
	}
	if o.Count <= 0 {
		o.Count = 500
	}
	if o.Slow <= 0 {
		o.Slow = 50 * time.Millisecond
	}
	lim := rate.NewLimiter(rate.Limit(o.MaxOps), max(o.MaxOps, o.Count*2+1))
	start := time.Now()
	var res PurgeResult
	var cursor uint64
	for {
		if err := lim.WaitN(ctx, 1); err != nil {
			return res, err
		}
		keys, next, err := legacy.Scan(ctx, cursor, "", int64(o.Count)).Result()
		if err != nil {
			return res, explainServer(err, legacy)
		}
		res.Scanned += int64(len(keys))
		if len(keys) > 0 {
			if err := lim.WaitN(ctx, len(keys)); err != nil {
				return res, err
			}
			cmds, err := legacy.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range keys {
					p.Type(ctx, k)
				}
				return nil
			})
			if err != nil {
				return res, explainServer(err, legacy)
			}
			var del []string
			for i, k := range keys {
				typ := cmds[i].(*redis.StatusCmd).Val()
				if typ != "none" && !strings.HasPrefix(k, o.OwnPrefix) && belongs(k, typ) {
					del = append(del, k)
				}
			}
			if len(del) > 0 {
				if err := lim.WaitN(ctx, len(del)); err != nil {
					return res, err
				}
				t0 := time.Now()
				n, err := legacy.Unlink(ctx, del...).Result()
				if err != nil {
					return res, explainServer(err, legacy)
				}
				res.Deleted += n
				res.Batches++
				if lat := time.Since(t0); lat > o.Slow {
					res.BackOffs++
					select {
					case <-time.After(lat):
					case <-ctx.Done():
						return res, ctx.Err()
					}
				}
			}
		}
		if next == 0 {
			res.Elapsed = time.Since(start)
			return res, nil
		}
		cursor = next
	}
}
