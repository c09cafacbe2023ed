package copier_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/copier"
	"github.com/redisplit/redisplit/store"
	"github.com/redisplit/redisplit/topology/topotest"
)

// BenchmarkCopierBackfill copies a 100k-key legacy (the mixed types of
// load) into two standalone targets: one SCAN producer marks every key,
// then the copier drains. Reported as keys/s (keys read from legacy per
// second of the whole pass: SCAN, marks, reads, writes).
//
//	go test ./copier -run '^$' -bench Backfill -benchtime 3x
func BenchmarkCopierBackfill(b *testing.B) {
	for _, workers := range []int{4, 8} {
		b.Run(fmt.Sprint("workers=", workers), func(b *testing.B) {
			ctx := ctxT(b)
			const n = 100000
			legacy := topotest.Client(b, topotest.Standalone(b).Addr())
			sSink, sRaw := target(b, "session", topotest.Standalone(b))
			cSink, cRaw := target(b, "cache", topotest.Standalone(b))
			load(b, legacy, n)
			sb, cb := bucket("session", sSink, &journal{}), bucket("cache", cSink, &journal{})
			var copies int64
			var elapsed time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				for _, c := range []*redis.Client{sRaw, cRaw} {
					c.FlushAll(ctx)
				}
				src := &store.RedisSource{Client: legacy}
				cp, err := copier.New(ctx, copier.Config{Source: src, Route: prefixRoute(sb, cb), Workers: workers})
				if err != nil {
					b.Fatal(err)
				}
				p := cp.Producer("backfill")
				b.StartTimer()
				t0 := time.Now()
				if err := scanAndMark(ctx, legacy, p); err != nil {
					b.Fatal(err)
				}
				if err := cp.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(t0)
				b.StopTimer()
				copies += cp.Stats().Copies
				cp.Close()
				src.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(copies)/elapsed.Seconds(), "keys/s")
		})
	}
}
