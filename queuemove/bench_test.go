package queuemove

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redisplit/redisplit/store/sqsstore/sqsemu"
)

// BenchmarkMove measures items/s moved from a legacy list into the
// in-process emulator (go test -bench Move -run '^$' ./queuemove/): each
// iteration pushes 2,000 items of 200 bytes and drains them with Run. The
// emulator shares the machine's cores with redis-server and the mover, so
// this is a floor for the mover's own cost, not SQS's throughput.
func BenchmarkMove(b *testing.B) {
	for _, c := range []struct {
		name string
		emu  **sqsemu.Emulator
		fifo bool
	}{{"batch-standard", &faithful, false}, {"batch-fifo", &faithful, true}, {"per-item-standard", &raw, false}} {
		b.Run(c.name, func(b *testing.B) {
			list := "bench:" + c.name
			e := newEnv(b, *c.emu, c.fifo, list)
			ctx := context.Background()
			body := fmt.Sprintf("%0200d", 0)
			const n = 2000
			var moved int64
			var elapsed time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				p := e.rdb.Pipeline()
				for range n {
					p.LPush(ctx, list, body)
				}
				if _, err := p.Exec(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				o := e.opts()
				o.Drain = true
				start := time.Now()
				res, err := Run(ctx, o)
				if err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
				moved += res.Queues[0].MovedRun
				b.StopTimer()
				e.drainSQS(list)
			}
			b.ReportMetric(float64(moved)/elapsed.Seconds(), "items/s")
		})
	}
}
