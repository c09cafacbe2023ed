package migrate

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
)

type page struct {
	keys []string // redisplit's own keys removed
	next uint64   // cursor after this page; 0 = last page
}

// scanPages SCANs c from cursor in a goroutine, one page ahead of the
// consumer (the next SCAN overlaps the classification of the current
// page), under the ops budget and the retry policy. The channel closes
// after the last page, on error or when ctx ends; then errFn tells why.
func scanPages(ctx context.Context, c *redis.Client, cursor uint64, o Options) (<-chan page, func() error) {
	ch := make(chan page, 2)
	var err error
	go func() {
		defer close(ch)
		lim := o.limiter()
		for {
			if err = waitN(ctx, lim, 1); err != nil {
				return
			}
			var keys []string
			var next uint64
			err = o.Retry.Do(ctx, func() error {
				var e error
				keys, next, e = c.Scan(ctx, cursor, "", int64(o.ScanCount)).Result()
				return e
			})
			if err != nil {
				err = redisconn.Explain(err, "legacy", c.Options().Addr)
				return
			}
			select {
			case ch <- page{keys: dropOwn(keys), next: next}:
			case <-ctx.Done():
				err = context.Cause(ctx)
				return
			}
			if next == 0 {
				return
			}
			cursor = next
		}
	}()
	// err is written before close(ch) and read after the range over ch ends
	return ch, func() error { return err }
}
