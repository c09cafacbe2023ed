package verify

import (
	"context"
	"sync"
	"time"
)

// budget spreads legacy commands so that at most rate of them are sent per
// second (0 = unlimited). It is a token bucket holding at most one second of
// tokens; a request larger than that waits for its whole cost.
type budget struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func newBudget(rate int) *budget {
	return &budget{rate: float64(rate), tokens: float64(rate), last: time.Now()}
}

// wait blocks until n commands may be sent, or ctx ends.
func (b *budget) wait(ctx context.Context, n int) error {
	if b == nil || b.rate <= 0 {
		return ctx.Err()
	}
	b.mu.Lock()
	now := time.Now()
	b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens -= float64(n)
	var d time.Duration
	if b.tokens < 0 {
		d = time.Duration(-b.tokens / b.rate * float64(time.Second))
	}
	b.mu.Unlock()
	if d == 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
