package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config/configfile"
	"github.com/redisplit/redisplit/dualwrite/client"
	"github.com/redisplit/redisplit/state"
)

// An application built on dualwrite/client, switched by the real
// `redisplit cutover` and `redisplit rollback`: its instances never restart,
// follow the control key the tool writes, and no request fails and no write
// is lost across either switch.

// appInstance is one instance of the application: its own go-redis clients
// (legacy, the session target through Sentinel, the cache cluster, the
// others standalone) behind one dualwrite/client.Client.
type appInstance struct{ c *client.Client }

func (e *liveEnv) newAppInstance(plan string) *appInstance {
	t := e.t
	c, err := client.New(ctxT(t), client.Options{
		Plan:    plan,
		Unknown: "cache", // liveRules' unknown:
		Legacy:  redis.NewClient(&redis.Options{Addr: e.leg.Addr(), DisableIdentity: true}),
		Targets: map[string]redis.UniversalClient{
			"session":   redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "sessions", SentinelAddrs: sent.SentinelAddrs(), DisableIdentity: true}),
			"cache":     redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs(), DisableIdentity: true}),
			"queue":     redis.NewClient(&redis.Options{Addr: queue.Addr(), DisableIdentity: true}),
			"ratelimit": redis.NewClient(&redis.Options{Addr: rlSrv.Addr(), DisableIdentity: true}),
		},
		CloseStores: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &appInstance{c: c}
}

// writePlan writes the plan the tool routes with (the config's rules and
// presets, classify.PlanFromConfig, as Router uses them) to a file.
func (e *liveEnv) writePlan() string {
	t := e.t
	cfg, err := configfile.Load(configfile.NewViper(), e.cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	p, err := classify.PlanFromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(filepath.Dir(e.cfg), "plan.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := classify.WritePlan(f, p, "the plan of the test's redisplit.yaml"); err != nil {
		t.Fatal(err)
	}
	return path
}

// appTraffic is the application's traffic through its instances: session
// workers, each owning its keys (create, read-modify-write, TTL touch,
// delete) and recording each key's expected final value; cache workers
// (a miss is no error). Every request error is recorded.
type appTraffic struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	requests, sessionOps, staleReads atomic.Int64
	mu                               sync.Mutex
	failures                         []string
	nfail                            int
	want                             []map[string]string // per session worker: key → field v ("" = deleted)
}

const sessionWorkers = 4

func (a *appTraffic) fail(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nfail++
	if len(a.failures) < 10 {
		a.failures = append(a.failures, time.Now().UTC().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
	}
}

func newAppTraffic() *appTraffic {
	a := &appTraffic{want: make([]map[string]string, sessionWorkers)}
	for w := range a.want {
		a.want[w] = map[string]string{}
	}
	return a
}

// start runs the workers until stop; seq continues from the last run, so
// a restarted traffic writes new values.
func (a *appTraffic) start(apps []*appInstance, round int) {
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	rctx := context.Background() // requests are never cancelled: the loop ends between them
	for w := 0; w < sessionWorkers; w++ {
		c := apps[w%len(apps)].c
		want := a.want[w]
		a.wg.Go(func() {
			for seq := 0; ctx.Err() == nil; seq++ {
				key := fmt.Sprintf("sess:app:w%d:%d", w, seq%25)
				val := fmt.Sprintf("r%d-%d", round, seq)
				a.requests.Add(1)
				switch seq % 7 {
				case 0, 1, 2: // create or update, with a TTL
					if err := c.HSet(rctx, key, "user", w, "v", val).Err(); err != nil {
						a.fail("HSET %s: %v", key, err)
						continue
					}
					want[key] = val
					a.requests.Add(1)
					if err := c.Expire(rctx, key, time.Hour).Err(); err != nil {
						a.fail("EXPIRE %s: %v", key, err)
					}
				case 3, 4: // read-modify-write
					got, err := c.HGet(rctx, key, "v").Result()
					switch {
					case errors.Is(err, redis.Nil):
						got = ""
					case err != nil:
						a.fail("HGET %s: %v", key, err)
						continue
					}
					if got != want[key] {
						a.staleReads.Add(1) // a forward copy not yet on the target just after the switch
					}
					a.requests.Add(1)
					if err := c.HSet(rctx, key, "v", val, "prev", got, "user", w).Err(); err != nil {
						a.fail("HSET %s: %v", key, err)
						continue
					}
					want[key] = val
				case 5: // touch the TTL
					if err := c.Expire(rctx, key, 2*time.Hour).Err(); err != nil {
						a.fail("EXPIRE %s: %v", key, err)
					}
				case 6: // log out
					if err := c.Del(rctx, key).Err(); err != nil {
						a.fail("DEL %s: %v", key, err)
						continue
					}
					want[key] = ""
				}
				a.sessionOps.Add(1)
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	for w := 0; w < 2; w++ {
		c := apps[w%len(apps)].c
		a.wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("cache:app:%d", i%200)
				a.requests.Add(2)
				if err := c.Get(rctx, key).Err(); err != nil && !errors.Is(err, redis.Nil) {
					a.fail("GET %s: %v", key, err)
				}
				if err := c.Set(rctx, key, i, time.Hour).Err(); err != nil {
					a.fail("SET %s: %v", key, err)
				}
				time.Sleep(3 * time.Millisecond)
			}
		})
	}
}

func (a *appTraffic) stop() {
	a.cancel()
	a.wg.Wait()
}

func (a *appTraffic) failed() (int, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nfail, strings.Join(a.failures, "\n")
}

// missing are the session writes c does not hold with their final value.
func (a *appTraffic) missing(ctx context.Context, c redis.UniversalClient) ([]string, int) {
	var bad []string
	n := 0
	for _, want := range a.want {
		for k, v := range want {
			n++
			got, err := c.HGet(ctx, k, "v").Result()
			if errors.Is(err, redis.Nil) {
				got, err = "", nil
			}
			if err != nil || got != v {
				bad = append(bad, fmt.Sprintf("%s: %q (%v), want %q", k, got, err, v))
			}
		}
	}
	return bad, n
}

// holds waits until c holds every session write's final value.
func (a *appTraffic) holds(t *testing.T, where string, c redis.UniversalClient, d time.Duration) {
	t.Helper()
	ctx := ctxT(t)
	var bad []string
	var n int
	for end := time.Now().Add(d); ; time.Sleep(200 * time.Millisecond) {
		if bad, n = a.missing(ctx, c); len(bad) == 0 || time.Now().After(end) {
			break
		}
	}
	if len(bad) > 0 {
		t.Errorf("%s lacks %d of %d session writes, e.g.:\n%s", where, len(bad), n, strings.Join(bad[:min(5, len(bad))], "\n"))
	} else {
		t.Logf("%s holds the final value of all %d session keys", where, n)
	}
}

// ttlsAgree: every present session key has the same expiry on both
// stores (the TTL touches were mirrored), within a second.
func (a *appTraffic) ttlsAgree(t *testing.T, x, y redis.UniversalClient) {
	t.Helper()
	ctx := ctxT(t)
	var bad []string
	withTTL := 0
	for _, want := range a.want {
		for k, v := range want {
			if v == "" {
				continue
			}
			tx, ty := x.PTTL(ctx, k).Val(), y.PTTL(ctx, k).Val()
			if tx > 0 {
				withTTL++
			}
			if (tx > 0) != (ty > 0) || tx-ty > time.Second || ty-tx > time.Second {
				bad = append(bad, fmt.Sprintf("%s: %s and %s", k, tx, ty))
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d session keys with different expiries on the target and legacy, e.g. %q", len(bad), bad[:min(5, len(bad))])
	}
	if withTTL == 0 {
		t.Error("no session key with a TTL")
	}
}

// waitSwitched waits until every instance routes the session bucket as
// phase p says, with switches switches observed, and returns how long it
// took.
func waitSwitched(t *testing.T, apps []*appInstance, p state.Phase, store string, switches uint64) time.Duration {
	t.Helper()
	begin := time.Now()
	bound := client.DefaultPollInterval + 5*time.Second // the documented bound, with room for a loaded machine
	for {
		ok := true
		for _, a := range apps {
			bs := a.c.Stats().Buckets["session"]
			ok = ok && bs.Phase == p && bs.Store == store && bs.Switches == switches
		}
		if ok {
			return time.Since(begin)
		}
		if time.Since(begin) > bound {
			for i, a := range apps {
				t.Errorf("instance %d: %+v", i, a.c.Stats().Buckets["session"])
			}
			t.Fatalf("the instances did not switch the session bucket to %s (%s) within %s of the command's return", store, p, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClientSwitchesAtCutoverAndRollback: two application instances on
// dualwrite/client drive session traffic (create, read-modify-write, TTL
// touch, delete; each key's final value recorded) and cache traffic
// through migrate --dual-write, verify, cutover --bucket session and then
// rollback --bucket session. Asserted: no request fails; every instance
// routes the session bucket to the target (then back to legacy) within
// the client's documented bound after the command returns, with one (then
// two) switches counted; every final value is on the target and, through
// the reverse mirror, on legacy, with the same expiries; after rollback,
// legacy holds every write and the target none of the application's keys;
// MGET and MULTI across session and cache fail with ErrCrossBucket and
// write nothing.
func TestClientSwitchesAtCutoverAndRollback(t *testing.T) {
	if testing.Short() {
		t.Skip("a live phase with an application switched by cutover and rollback takes about a minute")
	}
	e := newLiveEnv(t)
	ctx := ctxT(t)
	plan := e.writePlan()
	apps := []*appInstance{e.newAppInstance(plan), e.newAppInstance(plan)}
	for i, a := range apps {
		if bs := a.c.Stats().Buckets["session"]; bs.Store != "legacy" {
			t.Fatalf("instance %d before the migration: %+v", i, bs)
		}
	}
	tr := newAppTraffic()
	tr.start(apps, 1)
	m := e.startMigrate()
	e.waitFor("every bucket syncing", 60*time.Second, m, allSyncing)
	if code, out, errs := run(t, "--config", e.cfg, "status", "--wait-caught-up", "--timeout", "60s"); code != 0 {
		t.Fatalf("status --wait-caught-up: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := run(t, "--config", e.cfg, "verify"); code != 0 {
		t.Fatalf("verify under the application's traffic: exit %d\n%s\n%s", code, out, errs)
	}
	if n := tr.requests.Load(); n < 1000 {
		t.Fatalf("only %d requests before the cutover", n)
	}
	for i, a := range apps {
		if bs := a.c.Stats().Buckets["session"]; bs.Store != "legacy" || bs.Switches != 0 {
			t.Fatalf("instance %d switched before the cutover: %+v", i, bs)
		}
	}
	before := apps[0].c.Stats().Commands["session target"]

	code, out, errs := run(t, "--config", e.cfg, "cutover", "--bucket", "session", "--yes")
	if code != 0 {
		t.Fatalf("cutover: exit %d\n%s\n%s\n%s", code, out, errs, m.errb.String())
	}
	took := waitSwitched(t, apps, state.Cutover, "session target", 1)
	t.Logf("every instance routed the session bucket to its target %s after cutover returned", took)
	atCutover := tr.sessionOps.Load()
	time.Sleep(4 * time.Second) // the application runs on the target
	tr.stop()
	if n := tr.sessionOps.Load() - atCutover; n < 500 {
		t.Errorf("only %d session operations after the cutover", n)
	}
	if n := apps[0].c.Stats().Commands["session target"] - before; n < 200 {
		t.Errorf("only %d commands reached the session target after the cutover", n)
	}
	if n, f := tr.failed(); n > 0 {
		t.Fatalf("%d requests failed across the cutover:\n%s", n, f)
	}
	t.Logf("%d requests, %d session operations (%d read-modify-writes read a value not yet copied)", tr.requests.Load(), tr.sessionOps.Load(), tr.staleReads.Load())
	tr.holds(t, "the session target", e.tg["session"], 5*time.Second)
	// legacy through the reverse mirror
	tr.holds(t, "legacy (reverse mirror)", e.lc, 30*time.Second)
	tr.ttlsAgree(t, e.tg["session"], e.lc)
	if w := e.window("session"); w == nil || w.ReverseCopies == 0 {
		t.Errorf("no reverse copy in the window: %+v", w)
	} else {
		t.Logf("window: %+v", *w)
	}
	for i, a := range apps {
		if a.c.Stats().PlanMismatch {
			t.Errorf("instance %d: the control key names another plan than the tool's", i)
		}
	}

	// cross-bucket commands are refused, and nothing is sent
	c := apps[0].c
	if err := c.MGet(ctx, "sess:app:w0:0", "cache:app:0").Err(); !errors.Is(err, client.ErrCrossBucket) || !strings.Contains(err.Error(), "session") || !strings.Contains(err.Error(), "cache") {
		t.Errorf("MGET across session and cache: %v", err)
	}
	_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, "sess:app:tx", "v", 1)
		p.Set(ctx, "cache:app:tx", 1, 0)
		return nil
	})
	if !errors.Is(err, client.ErrCrossBucket) {
		t.Errorf("MULTI across session and cache: %v", err)
	}
	if e.tg["session"].Exists(ctx, "sess:app:tx").Val()+e.tg["cache"].Exists(ctx, "cache:app:tx").Val()+e.lc.Exists(ctx, "sess:app:tx", "cache:app:tx").Val() != 0 {
		t.Error("a refused transaction wrote a key")
	}
	if st := c.Stats(); st.CrossBucket < 2 {
		t.Errorf("Stats.CrossBucket %d", st.CrossBucket)
	}

	// rollback after cutover, under traffic: the instances go back to
	// legacy, and legacy holds every write (the target's, drained by the
	// reverse mirror, and those made since)
	tr.start(apps, 2)
	time.Sleep(time.Second)
	code, out, errs = run(t, "--config", e.cfg, "rollback", "--bucket", "session", "--yes")
	if code != 0 {
		t.Fatalf("rollback after cutover: exit %d\n%s\n%s\n%s", code, out, errs, m.errb.String())
	}
	took = waitSwitched(t, apps, state.RolledBack, "legacy", 2)
	t.Logf("every instance routed the session bucket to legacy %s after rollback returned", took)
	atRollback := tr.sessionOps.Load()
	time.Sleep(3 * time.Second)
	tr.stop()
	if n := tr.sessionOps.Load() - atRollback; n < 300 {
		t.Errorf("only %d session operations after the rollback", n)
	}
	if n, f := tr.failed(); n > 0 {
		t.Fatalf("%d requests failed across the rollback:\n%s", n, f)
	}
	tr.holds(t, "legacy after rollback", e.lc, time.Second)
	if k := userKeys(ctx, e.tg["session"]); len(k) > 0 {
		t.Errorf("%d keys on the session target after the rollback (writes after it landed there?), e.g. %q", len(k), k[:min(5, len(k))])
	}
	if p := e.controlPhase("session"); p != state.RolledBack {
		t.Errorf("control key %s after rollback", p)
	}
	t.Logf("%d requests in all, none failed", tr.requests.Load())
	if r := m.stop(t); r.code != 0 {
		t.Fatalf("migrate: exit %d\n%s", r.code, r.errs)
	}
}
