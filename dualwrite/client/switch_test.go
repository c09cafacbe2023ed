package client_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/redisplit/redisplit/dualwrite/client"
	"github.com/redisplit/redisplit/state"
)

// issuedKey marks an application request's context with the phase its
// instance had observed for the session bucket when it issued the request.
type issuedKey struct{}

// landing is a hook on one instance's store client: it counts the session
// writes that reach the store, and the violations — a write issued after
// the instance had observed a phase that routes it elsewhere.
type landing struct {
	store      string // "legacy" or "target"
	writes     atomic.Int64
	violations atomic.Int64
	mu         sync.Mutex
	examples   []string
}

var sessionWrites = map[string]bool{"set": true, "expire": true, "del": true}

func (l *landing) DialHook(next redis.DialHook) redis.DialHook { return next }
func (l *landing) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (l *landing) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if sessionWrites[cmd.Name()] && len(args) > 1 && strings.HasPrefix(fmt.Sprint(args[1]), "session:") {
			l.writes.Add(1)
			issued, _ := ctx.Value(issuedKey{}).(state.Phase)
			if client.OnTarget(issued) != (l.store == "target") {
				l.violations.Add(1)
				l.mu.Lock()
				if len(l.examples) < 5 {
					l.examples = append(l.examples, fmt.Sprintf("%v issued at phase %q reached %s", args, issued, l.store))
				}
				l.mu.Unlock()
			}
		}
		return next(ctx, cmd)
	}
}

// TestLiveSwitch drives an application's session traffic through three
// client instances (two workers each, a few thousand commands a second:
// SET, GET, EXPIRE) while the test cuts the session bucket over to its
// sentinel-backed target and then rolls it back. The test keeps both stores
// equal itself (each worker writes the same value to both directly, as the
// mirrors would). Asserted: no request fails, every GET reads the worker's
// last write across both switches, every instance observes each switch, and
// no write issued after an instance observed a switch lands on the old
// store (in-flight writes issued before may: that is the contract).
func TestLiveSwitch(t *testing.T) {
	flush(t)
	setPhase(t, "session", state.Syncing)
	ctx := context.Background()
	lctx, stop := context.WithCancel(ctx) // ends the workers' loop, never a request
	begin := time.Now()
	defer stop()

	type instance struct {
		c              *client.Client
		legacy, target *landing
	}
	var insts []instance
	for i := 0; i < 3; i++ {
		s := newStores(t)
		in := instance{legacy: &landing{store: "legacy"}, target: &landing{store: "target"}}
		s.legacy.AddHook(in.legacy)
		s.targets["session"].AddHook(in.target)
		in.c = newClient(t, s, func(o *client.Options) { o.ShadowReads = i == 0 })
		insts = append(insts, in)
	}
	all := func() []*client.Client {
		var out []*client.Client
		for _, in := range insts {
			out = append(out, in.c)
		}
		return out
	}
	mirror := newStores(t) // the test's stand-in for the mirrors
	mirrorTarget := mirror.targets["session"]

	limit := rate.NewLimiter(1000, 10) // worker iterations/s, 3 client commands each
	var ops, failures atomic.Int64
	var failMu sync.Mutex
	var failed []string
	fail := func(format string, args ...any) {
		failures.Add(1)
		failMu.Lock()
		if len(failed) < 10 {
			failed = append(failed, fmt.Sprintf(format, args...))
		}
		failMu.Unlock()
	}
	last := make([]map[string]string, 6) // per worker: key → last value written
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		last[w] = map[string]string{}
		in := insts[w/2]
		wg.Go(func() {
			for seq := 0; ; seq++ {
				if err := limit.Wait(lctx); err != nil {
					return
				}
				key := fmt.Sprintf("session:w%d:%d", w, seq%20)
				val := fmt.Sprintf("w%d-%d", w, seq)
				rctx := context.WithValue(ctx, issuedKey{}, in.c.Phase("session").Phase)
				if err := in.c.Set(rctx, key, val, time.Hour).Err(); err != nil {
					fail("SET %s: %v", key, err)
					continue
				}
				// The mirrors' job, done by the test: both stores hold it.
				if err := mirror.legacy.Set(ctx, key, val, time.Hour).Err(); err != nil {
					fail("mirror: %v", err)
				}
				if err := mirrorTarget.Set(ctx, key, val, time.Hour).Err(); err != nil {
					fail("mirror: %v", err)
				}
				last[w][key] = val
				rctx = context.WithValue(ctx, issuedKey{}, in.c.Phase("session").Phase)
				if got, err := in.c.Get(rctx, key).Result(); err != nil || got != val {
					fail("GET %s = %q, %v; want %q", key, got, err, val)
				}
				rctx = context.WithValue(ctx, issuedKey{}, in.c.Phase("session").Phase)
				if err := in.c.Expire(rctx, key, 2*time.Hour).Err(); err != nil {
					fail("EXPIRE %s: %v", key, err)
				}
				ops.Add(3)
			}
		})
	}
	waitOps := func(n int64) {
		t.Helper()
		target := ops.Load() + n
		eventually(t, fmt.Sprintf("%d more commands", n), func() bool { return ops.Load() >= target || failures.Load() > 0 })
	}
	targetWrites := func() (n int64) {
		for _, in := range insts {
			n += in.target.writes.Load()
		}
		return n
	}

	waitOps(1500)
	if n := targetWrites(); n != 0 {
		t.Errorf("syncing: %d session writes reached the target", n)
	}

	setPhase(t, "session", state.Cutover)
	waitPhase(t, state.Cutover, "session", all()...)
	onTarget := targetWrites()
	waitOps(1500)
	if targetWrites()-onTarget < 500 {
		t.Errorf("after the cutover only %d session writes reached the target", targetWrites()-onTarget)
	}

	setPhase(t, "session", state.RolledBack)
	waitPhase(t, state.RolledBack, "session", all()...)
	afterRollback := targetWrites()
	waitOps(1500)
	stop()
	wg.Wait()
	perSec := float64(ops.Load()) / time.Since(begin).Seconds() // rough, for the log only
	t.Logf("%d commands, about %.0f/s; target writes during cutover %d", ops.Load(), perSec, afterRollback-onTarget)

	if failures.Load() > 0 {
		t.Errorf("%d requests failed: %s", failures.Load(), strings.Join(failed, "; "))
	}
	for i, in := range insts {
		for _, l := range []*landing{in.legacy, in.target} {
			if l.violations.Load() > 0 {
				t.Errorf("instance %d: %d writes landed on %s against the phase observed: %s", i, l.violations.Load(), l.store, strings.Join(l.examples, "; "))
			}
		}
		if st := in.c.Stats(); st.Buckets["session"].Switches != 2 || st.Buckets["session"].Store != "legacy" {
			t.Errorf("instance %d: %+v", i, st.Buckets["session"])
		}
	}
	// No write lost: the last value of every key is on legacy, which is
	// authoritative again.
	for w := range last {
		for k, v := range last[w] {
			if got := get(t, mirror.legacy, k); got != v {
				t.Errorf("%s on legacy = %q, want %q", k, got, v)
			}
		}
	}
	if st := insts[0].c.Stats(); st.ShadowReads == 0 {
		t.Errorf("the shadowing instance compared no read while syncing: %+v", st)
	}
}
