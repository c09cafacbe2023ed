package migrate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/converge"
	"github.com/redisplit/redisplit/dualwrite/client"
	"github.com/redisplit/redisplit/migrate"
	"github.com/redisplit/redisplit/state"
)

// Cutover, the switch window, rollback after cutover and complete, driven
// through the running migrate --dual-write (its control socket), on real
// servers: legacy standalone, cache on a cluster, sessions on Sentinel.

// controlPhase is bucket's phase in the control key on legacy.
func (e *liveEnv) controlPhase(b string) state.Phase {
	vals, _, err := client.ReadControl(ctxT(e.t), e.lc)
	if err != nil {
		e.t.Fatal(err)
	}
	return vals[b].Phase
}

// window is bucket's switch-window figures as migrate last saved them.
func (e *liveEnv) window(b string) *state.Window {
	st := e.liveState()
	if st.Live == nil || st.Live.Buckets[b] == nil {
		return nil
	}
	return st.Live.Buckets[b].Window
}

// readyForCutover: every bucket syncing under a load, the load stopped,
// caught up, verify in parity.
func (e *liveEnv) readyForCutover(m *runningMigrate, l *load) {
	t := e.t
	e.waitFor("every bucket syncing", 60*time.Second, m, allSyncing)
	time.Sleep(2 * time.Second)
	l.stop(t)
	if code, out, errs := run(t, "--config", e.cfg, "status", "--wait-caught-up", "--timeout", "60s"); code != 0 {
		t.Fatalf("status --wait-caught-up: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := run(t, "--config", e.cfg, "verify"); code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errs)
	}
}

// bucketDiff compares every key of bucket b on legacy and on its target
// (both ways; redisplit's own keys excepted), five rounds a second apart.
func (e *liveEnv) bucketDiff(b string) []string {
	res, err := converge.Compare(ctxT(e.t), converge.Options{Legacy: e.lc,
		Targets: map[string]redis.UniversalClient{b: e.tg[b]},
		Route: func(k, typ string) string {
			if e.bucketOf(k, typ) == b {
				return b
			}
			return "" // another bucket's key: only bucket b's target is compared
		},
		Skip: func(k string) bool { return strings.HasPrefix(k, "redisplit:") }})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Strings()
}

// userKeys are the keys of c outside redisplit's namespace.
func userKeys(ctx context.Context, c redis.UniversalClient) []string {
	var out []string
	for _, k := range scanAll(ctx, c) {
		if !strings.HasPrefix(k, "redisplit:") {
			out = append(out, k)
		}
	}
	return out
}

// targetWrites writes sessions on the session target as the application
// does after cutover: hashes updated, counters incremented, new keys with
// TTLs, deletes. It returns what legacy must hold afterwards.
func targetWrites(t *testing.T, c redis.UniversalClient, round int) map[string]string {
	ctx := ctxT(t)
	want := map[string]string{}
	for i := 0; i < 50; i++ {
		k := fmt.Sprintf("sess:tgt:%d", i)
		if err := c.HSet(ctx, k, "user", fmt.Sprint(i), "round", fmt.Sprint(round)).Err(); err != nil {
			t.Fatal(err)
		}
		want[k] = fmt.Sprint(round)
		n := fmt.Sprintf("sess:cnt:%d", i%10)
		v, err := c.Incr(ctx, n).Result()
		if err != nil {
			t.Fatal(err)
		}
		want[n] = fmt.Sprint(v)
		if err := c.Set(ctx, fmt.Sprintf("sess:ttl:%d", i), round, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		want[fmt.Sprintf("sess:ttl:%d", i)] = fmt.Sprint(round)
	}
	for _, k := range []string{"sess:str", "sess:hash", "sess:list"} { // fill's keys: deleted on the target
		if err := c.Del(ctx, k).Err(); err != nil {
			t.Fatal(err)
		}
		want[k] = ""
	}
	return want
}

// legacyHolds waits until legacy holds want (targetWrites' values).
func (e *liveEnv) legacyHolds(want map[string]string, d time.Duration) {
	t := e.t
	ctx := ctxT(t)
	var bad []string
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		bad = bad[:0]
		for k, v := range want {
			var got string
			switch {
			case strings.HasPrefix(k, "sess:tgt:"):
				got = e.lc.HGet(ctx, k, "round").Val()
			case v == "":
				if e.lc.Exists(ctx, k).Val() != 0 {
					got = "present"
				}
			default:
				got = e.lc.Get(ctx, k).Val()
			}
			if got != v {
				bad = append(bad, fmt.Sprintf("%s: legacy %q, want %q", k, got, v))
			}
		}
		if len(bad) == 0 {
			return
		}
	}
	t.Fatalf("legacy does not hold %d of the target's writes, e.g. %q", len(bad), bad[:min(5, len(bad))])
}

func TestCutoverSwitchWindowAndRollback(t *testing.T) {
	if testing.Short() {
		t.Skip("a live phase with cutover and rollback takes about a minute")
	}
	e := newLiveEnv(t)
	ctx := ctxT(t)
	// no migrate running: refused, nothing changed
	code, _, errs := run(t, "--config", e.cfg, "cutover", "--bucket", "session", "--yes")
	if code != 4 || !strings.Contains(errs, "no migrate --dual-write is running for "+e.stateDir) || !strings.Contains(errs, "start it first") {
		t.Fatalf("cutover without migrate: exit %d: %s", code, errs)
	}
	l := startLoad(t, e.leg.Addr(), 500)
	m := e.startMigrate()
	e.waitFor("every bucket syncing", 60*time.Second, m, allSyncing)
	// no verify yet: refused, naming the precondition
	if code, _, errs := run(t, "--config", e.cfg, "cutover", "--bucket", "session", "--yes"); code != 4 || !strings.Contains(errs, "verify") {
		t.Fatalf("cutover without a verify: exit %d: %s", code, errs)
	}
	e.readyForCutover(m, l)
	// the dry run prints the steps and the settings, and changes nothing
	code, out, errs := run(t, "--config", e.cfg, "cutover", "--bucket", "session", "--dry-run")
	if code != 0 || !strings.Contains(out, "steps, in order") || !strings.Contains(out, `master name "sessions"`) || !strings.Contains(out, "nothing to change") {
		t.Fatalf("cutover --dry-run: exit %d\n%s\n%s", code, out, errs)
	}
	if p := e.liveState().Buckets["session"].Phase; p != state.Verified {
		t.Fatalf("phase %s after the dry run", p)
	}
	// the application keeps writing legacy during the switch window
	l = startLoad(t, e.leg.Addr(), 500)
	code, out, errs = run(t, "--config", e.cfg, "cutover", "--bucket", "session", "--yes")
	if code != 0 {
		t.Fatalf("cutover: exit %d\n%s\n%s\n%s", code, out, errs, m.errb.String())
	}
	if p := e.liveState().Buckets["session"].Phase; p != state.Cutover {
		t.Fatalf("phase %s after cutover", p)
	}
	if p := e.controlPhase("session"); p != state.Cutover {
		t.Fatalf("control key: %s after cutover", p)
	}
	// writes made on the target reach legacy
	sess := e.tg["session"]
	want := targetWrites(t, sess, 1)
	e.legacyHolds(want, 20*time.Second)

	// hot counters on the target: every increment survives (an echo never
	// carries an older value back over the target), and legacy ends with
	// the target's count
	var hot sync.WaitGroup
	for g := 0; g < 4; g++ {
		hot.Add(1)
		go func() {
			defer hot.Done()
			for i := 0; i < 500; i++ {
				sess.Incr(ctx, fmt.Sprintf("sess:hot:%d", i%3))
			}
		}()
	}
	hot.Wait()
	hotWant := map[string]string{}
	for i := 0; i < 3; i++ {
		k := fmt.Sprintf("sess:hot:%d", i)
		want := 0 // 4 writers, each incrementing key i%3 for i in [0, 500)
		for j := 0; j < 500; j++ {
			if j%3 == i {
				want += 4
			}
		}
		time.Sleep(500 * time.Millisecond)
		if got := sess.Get(ctx, k).Val(); got != fmt.Sprint(want) {
			t.Errorf("%s on the target is %s after %d increments there: an echo overwrote it", k, got, want)
		}
		hotWant[k] = fmt.Sprint(want)
	}
	e.legacyHolds(hotWant, 20*time.Second)

	// both sides write the same keys at once: they converge, and no key
	// ping-pongs (no copy at all once the writes stopped)
	var wg sync.WaitGroup
	var writes atomic.Int64
	both := func(c redis.UniversalClient, side string) {
		defer wg.Done()
		for i := 0; i < 300; i++ {
			k := fmt.Sprintf("sess:both:%d", i%20)
			c.HSet(ctx, k, "by", side, "i", i)
			c.Incr(ctx, fmt.Sprintf("sess:bothcnt:%d", i%5))
			writes.Add(2)
			time.Sleep(5 * time.Millisecond)
		}
	}
	wg.Add(2)
	go both(e.lc, "legacy")
	go both(sess, "target")
	wg.Wait()
	l.stop(t)
	time.Sleep(3 * time.Second)
	w1 := e.window("session")
	time.Sleep(3 * time.Second)
	w2 := e.window("session")
	if w1 == nil || w2 == nil {
		t.Fatalf("no window figures in the state")
	}
	t.Logf("window after the writes stopped (%d writes on both sides): %+v", writes.Load(), *w2)
	if w2.ReverseCopies != w1.ReverseCopies || w2.AppWrites != w1.AppWrites {
		t.Errorf("copies go on after the writes stopped (ping-pong): %+v then %+v", *w1, *w2)
	}
	if w2.Suppressed == 0 || w2.ReverseCopies == 0 {
		t.Errorf("no echo suppressed or no reverse copy: %+v", *w2)
	}
	if w2.ReverseCopies+w2.AppWrites > 4*writes.Load()+10000 {
		t.Errorf("%d copies for %d writes", w2.ReverseCopies+w2.AppWrites, writes.Load())
	}
	if d := e.bucketDiff("session"); len(d) > 0 {
		t.Fatalf("%d differences between legacy and the session target in the window, e.g.:\n%s", len(d), strings.Join(d[:min(10, len(d))], "\n"))
	}
	code, out, _ = run(t, "--config", e.cfg, "status")
	if code != 0 || !strings.Contains(out, "session: mirrored forward+reverse; switch window open for") || !strings.Contains(out, "last application write on legacy") {
		t.Errorf("status in the window:\n%s", out)
	}
	code, out, _ = run(t, "--config", e.cfg, "status", "-o", "json")
	var rep struct {
		Buckets []struct {
			Bucket     string  `json:"bucket"`
			Directions string  `json:"directions"`
			Age        float64 `json:"window_age_seconds"`
			Last       string  `json:"last_write_non_authoritative"`
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	for _, b := range rep.Buckets {
		switch {
		case b.Bucket == "session" && (b.Directions != "forward+reverse" || b.Age <= 0 || b.Last == ""):
			t.Errorf("status JSON, session in its window: %+v", b)
		case b.Bucket != "session" && (b.Directions != "forward" || b.Age != 0):
			t.Errorf("status JSON, %s: %+v", b.Bucket, b)
		}
	}

	// more writes on the target, then rollback: legacy holds them all, the
	// target holds nothing (it was empty before the migration)
	want = targetWrites(t, sess, 2)
	code, out, errs = run(t, "--config", e.cfg, "rollback", "--bucket", "session", "--yes")
	if code != 0 {
		t.Fatalf("rollback after cutover: exit %d\n%s\n%s\n%s", code, out, errs, m.errb.String())
	}
	t.Logf("rollback: %s", out)
	e.legacyHolds(want, time.Second)
	if p := e.controlPhase("session"); p != state.RolledBack {
		t.Errorf("control key: %s after rollback", p)
	}
	if p := e.liveState().Buckets["session"].Phase; p != state.RolledBack {
		t.Errorf("phase %s after rollback", p)
	}
	if k := userKeys(ctx, sess); len(k) > 0 {
		t.Errorf("%d keys left on the session target after rollback, e.g. %q", len(k), k[:min(5, len(k))])
	}
	// legacy's sessions stay written by the application only: nothing
	// more arrives on the target
	e.lc.Set(ctx, "sess:after-rollback", 1, 0)
	time.Sleep(2 * time.Second)
	if sess.Exists(ctx, "sess:after-rollback").Val() != 0 {
		t.Error("the forward mirror still writes the rolled-back bucket's target")
	}
	r := m.stop(t)
	if r.code != 0 {
		t.Fatalf("migrate: exit %d\n%s", r.code, r.errs)
	}
}

// complete refuses while application writes still reach legacy; once they
// stop it ends the window, and --purge-legacy frees the bucket's keys on
// legacy (the target keeps them).
func TestCompleteRefusesWhileWritesArriveAndPurges(t *testing.T) {
	if testing.Short() {
		t.Skip("a live phase with cutover and complete takes about a minute")
	}
	e := newLiveEnv(t)
	ctx := ctxT(t)
	l := startLoad(t, e.leg.Addr(), 500)
	m := e.startMigrate()
	e.readyForCutover(m, l)
	if code, out, errs := run(t, "--config", e.cfg, "complete", "--bucket", "cache"); code != 4 || !strings.Contains(errs, "cutover") {
		t.Fatalf("complete before cutover: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := run(t, "--config", e.cfg, "cutover", "--bucket", "cache", "--yes"); code != 0 {
		t.Fatalf("cutover: exit %d\n%s\n%s\n%s", code, out, errs, m.errb.String())
	}
	// an instance not switched yet keeps writing legacy
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; wctx.Err() == nil; i++ {
			e.lc.Set(wctx, fmt.Sprintf("cache:straggler:%d", i%50), i, 0)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	code, out, errs := run(t, "--config", e.cfg, "complete", "--bucket", "cache", "--quiet", "2s", "--timeout", "5s")
	if code != 4 || !strings.Contains(errs, "keep reaching legacy") {
		t.Fatalf("complete while writes arrive: exit %d\n%s\n%s", code, out, errs)
	}
	stop()
	<-done
	if p := e.liveState().Buckets["cache"].Phase; p != state.Cutover {
		t.Fatalf("phase %s after the refused complete", p)
	}
	before := 0
	for _, k := range userKeys(ctx, e.lc) {
		if strings.HasPrefix(k, "cache:") {
			before++
		}
	}
	code, out, errs = run(t, "--config", e.cfg, "complete", "--bucket", "cache", "--quiet", "2s", "--purge-legacy", "--yes")
	if code != 0 || !strings.Contains(out, "purged legacy") {
		t.Fatalf("complete --purge-legacy: exit %d\n%s\n%s\n%s", code, out, errs, m.errb.String())
	}
	t.Logf("complete: %s", out)
	for _, k := range userKeys(ctx, e.lc) {
		typ := e.lc.Type(ctx, k).Val()
		if e.bucketOf(k, typ) == "cache" {
			t.Fatalf("cache key %q left on legacy after the purge", k)
		}
	}
	if n := e.tg["cache"].Exists(ctx, "cache:straggler:1").Val(); n != 1 || before < 100 {
		t.Errorf("target lost the cache keys (%d), or legacy had few (%d)", n, before)
	}
	if p := e.controlPhase("cache"); p != state.Completed {
		t.Errorf("control key %s after complete", p)
	}
	st := e.liveState()
	if st.Buckets["cache"].Phase != state.Completed || st.Buckets["cache"].TargetNotify != nil {
		t.Errorf("state after complete: %+v", st.Buckets["cache"])
	}
	if v := cluster.Nodes[0]; v != nil {
		if got := topoNotify(t, v.Addr()); got != "" {
			t.Errorf("notify-keyspace-events on a cache master after complete: %q", got)
		}
	}
	if r := m.stop(t); r.code != 0 || !strings.Contains(r.out, `"completed"`) {
		t.Fatalf("migrate: exit %d\n%s\n%s", r.code, r.out, r.errs)
	}
	// a later migrate --dual-write leaves the completed bucket alone: its
	// target is the application's only store now (legacy was purged)
	keys := len(userKeys(ctx, e.tg["cache"]))
	m = e.startMigrate()
	e.waitFor("the rerun's live phase", 60*time.Second, m, func(st *state.State) bool {
		return st.Live != nil && st.Live.Running && st.Live.PID == os.Getpid() && len(st.Live.Buckets) == 3 && st.Live.Buckets["cache"] == nil
	})
	time.Sleep(3 * time.Second)
	if n := len(userKeys(ctx, e.tg["cache"])); n != keys || n < 100 {
		t.Errorf("the cache target went from %d to %d keys under the rerun", keys, n)
	}
	if p := e.liveState().Buckets["cache"].Phase; p != state.Completed {
		t.Errorf("phase %s after the rerun", p)
	}
	m.stop(t)
}

func topoNotify(t *testing.T, addr string) string {
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer c.Close()
	return c.ConfigGet(ctxT(t), "notify-keyspace-events").Val()["notify-keyspace-events"]
}

// kill -9 of migrate while a cutover is under way (held after its intent
// is recorded): cutover fails saying so, and the rerun finishes it.
func TestCutoverKill9AndRerunFinishes(t *testing.T) {
	if testing.Short() {
		t.Skip("a live phase killed during cutover and rerun takes about a minute")
	}
	e := newLiveEnv(t)
	l := startLoad(t, e.leg.Addr(), 500)
	c := exec.Command(bin, "--config", e.cfg, "migrate", "--dual-write", "--yes", "--no-progress")
	c.Env = append(os.Environ(), "REDISPLIT_TEST_TRANSITION_HOLD=2m")
	var out lockedBuf
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	e.readyForCutover(nil, l)
	res := make(chan runResult, 1)
	go func() {
		code, o, errs := run(t, "--config", e.cfg, "cutover", "--bucket", "ratelimit", "--yes")
		res <- runResult{code, o, errs}
	}()
	e.waitFor("the cutover's intent", 30*time.Second, nil, func(st *state.State) bool {
		return st.Buckets["ratelimit"].Transition != nil
	})
	if err := c.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	r := <-res
	if r.code != 1 || !strings.Contains(r.errs, "rerun migrate --dual-write and it finishes it") {
		t.Fatalf("cutover when migrate was killed: exit %d: %s", r.code, r.errs)
	}
	m := e.startMigrate()
	e.waitFor("the cutover finished by the rerun", 90*time.Second, m, func(st *state.State) bool {
		sb := st.Buckets["ratelimit"]
		return sb.Phase == state.Cutover && sb.Transition == nil
	})
	if p := e.controlPhase("ratelimit"); p != state.Cutover {
		t.Errorf("control key %s after the rerun", p)
	}
	// the window runs: a write on the target reaches legacy
	rl := e.tg["ratelimit"]
	rl.Set(ctxT(t), "rl:after-rerun", "x", 0)
	e.legacyHolds(map[string]string{"rl:after-rerun": "x"}, 20*time.Second)
	m.stop(t)
}

// A Sentinel failover of the session target while the reverse mirror
// runs loses nothing: the failover is a gap of the reverse feed (run_id
// changed), healed by a reverse rescan.
func TestCutoverSessionFailoverDuringReverseMirror(t *testing.T) {
	if testing.Short() {
		t.Skip("a live phase with a failover in the window takes about a minute")
	}
	e := newLiveEnv(t)
	l := startLoad(t, e.leg.Addr(), 500)
	m := e.startMigrate()
	e.readyForCutover(m, l)
	if code, out, errs := run(t, "--config", e.cfg, "cutover", "--bucket", "session", "--yes"); code != 0 {
		t.Fatalf("cutover: exit %d\n%s\n%s\n%s", code, out, errs, m.errb.String())
	}
	ctx := ctxT(t)
	sess := e.tg["session"]
	wctx, stop := context.WithCancel(ctx)
	var last atomic.Int64
	done := make(chan struct{})
	go func() { // the application's writes on the target, across the failover
		defer close(done)
		for i := int64(1); wctx.Err() == nil; i++ {
			if err := sess.Set(wctx, fmt.Sprintf("sess:fo:%d", i%100), i, 0).Err(); err == nil {
				last.Store(i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(2 * time.Second)
	if _, err := sent.Failover(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	stop()
	<-done
	if last.Load() < 100 {
		t.Fatalf("only %d writes on the target", last.Load())
	}
	// the forward writes to the new master wait for its replica (WAIT 1)
	// until the old master has resynced; the reverse copies of those keys
	// wait for them (key locks): converged within a minute
	var d []string
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); {
		if d = e.bucketDiff("session"); len(d) == 0 {
			break
		}
	}
	if len(d) > 0 {
		t.Fatalf("%d differences after the failover, e.g.:\n%s\nwindow %+v\nmigrate:\n%s", len(d), strings.Join(d[:min(10, len(d))], "\n"), e.window("session"), m.errb.String())
	}
	w := e.window("session")
	t.Logf("window after the failover: %+v", w)
	if w == nil || w.ReverseGaps == 0 || w.ReverseRescans == 0 {
		t.Errorf("the failover was no gap of the reverse feed: %+v", w)
	}
	m.stop(t)
}

// Rollback after cutover with no migrate running: rollback switches the
// control key, syncs target → legacy itself (the writes made on the
// target while nothing mirrored them too), then deletes from the target.
func TestRollbackAfterCutoverWithoutMigrate(t *testing.T) {
	if testing.Short() {
		t.Skip("a live phase with cutover, then an offline rollback, takes about a minute")
	}
	e := newLiveEnv(t)
	ctx := ctxT(t)
	l := startLoad(t, e.leg.Addr(), 500)
	m := e.startMigrate()
	e.readyForCutover(m, l)
	if fi, err := os.Stat(migrateSocket(e)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket: %v, %v", fi, err)
	}
	if code, out, errs := run(t, "--config", e.cfg, "cutover", "--bucket", "session", "--yes"); code != 0 {
		t.Fatalf("cutover: exit %d\n%s\n%s\n%s", code, out, errs, m.errb.String())
	}
	sess := e.tg["session"]
	want := targetWrites(t, sess, 1)
	e.legacyHolds(want, 20*time.Second)
	if r := m.stop(t); r.code != 0 {
		t.Fatalf("migrate: exit %d\n%s", r.code, r.errs)
	}
	if _, err := os.Stat(migrateSocket(e)); !os.IsNotExist(err) {
		t.Errorf("control socket left behind: %v", err)
	}
	if st := e.liveState(); st.Buckets["session"].TargetNotify != nil {
		t.Errorf("the target's notifications not put back when migrate stopped: %+v", st.Buckets["session"].TargetNotify)
	}
	// nothing mirrors these
	want = targetWrites(t, sess, 2)
	// as a migrate killed in the window leaves them: the target's
	// notifications set, the old value in the state
	if err := sess.ConfigSet(ctx, "notify-keyspace-events", "AE").Err(); err != nil {
		t.Fatal(err)
	}
	sd, err := state.Open(e.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.Update(func(s *state.State) error {
		s.Buckets["session"].TargetNotify = map[string]*state.Notify{"sentinel-master": {Old: "", Known: true, Set: "AE"}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := run(t, "--config", e.cfg, "complete", "--bucket", "session"); code != 4 || !strings.Contains(errs, "no migrate --dual-write is running") {
		t.Errorf("complete without migrate: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs := run(t, "--config", e.cfg, "rollback", "--bucket", "session", "--yes")
	if code != 0 || !strings.Contains(errs, "synced target → legacy first") {
		t.Fatalf("offline rollback after cutover: exit %d\n%s\n%s", code, out, errs)
	}
	e.legacyHolds(want, time.Second)
	if k := userKeys(ctx, sess); len(k) > 0 {
		t.Errorf("%d keys left on the session target, e.g. %q", len(k), k[:min(5, len(k))])
	}
	if p := e.controlPhase("session"); p != state.RolledBack {
		t.Errorf("control key %s", p)
	}
	if v := sess.ConfigGet(ctx, "notify-keyspace-events").Val()["notify-keyspace-events"]; v != "" {
		t.Errorf("the session target's notify-keyspace-events is %q after the rollback, want the old \"\"", v)
	}
	if p := e.liveState().Buckets["session"].Phase; p != state.RolledBack {
		t.Errorf("phase %s", p)
	}
}

func migrateSocket(e *liveEnv) string { return migrate.ControlSocket(e.stateDir) }
