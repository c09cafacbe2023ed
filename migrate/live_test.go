package migrate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	scsredis "github.com/alexedwards/scs/redisstore"
	"github.com/boj/redistore"
	"github.com/go-redis/cache/v9"
	"github.com/go-redis/redis_rate/v10"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/gorilla/sessions"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/cmd"
	"github.com/redisplit/redisplit/config/configfile"
	"github.com/redisplit/redisplit/converge"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/topology"
	"github.com/redisplit/redisplit/topology/topotest"
)

// The live phase end to end: migrate --dual-write backfills and mirrors
// while a load writes to legacy (plain commands of every type, deletes,
// short TTLs, renames across buckets, and real libraries writing their own
// keys); after the load stops, status --wait-caught-up returns, verify
// exits 0 and an independent comparison of every key of every bucket, both
// ways, finds no difference; SIGINT then stops migrate with exit 0 and
// legacy's notify-keyspace-events back to its old value. The fault tests
// inject one fault each mid-run.

// liveRules route the load's plain keys; the presets (on) route the
// libraries' keys (asynq: queue, scs: session, redis_rate: ratelimit);
// go-redis/cache keys are the application's: gc: → cache.
const liveRules = `rules:
  - {prefix: "cache:", bucket: cache}
  - {prefix: "gc:", bucket: cache}
  - {prefix: "sess:", bucket: session}
  - {prefix: "queue:", bucket: queue}
  - {prefix: "rl:", bucket: ratelimit}
unknown: cache
`

type liveEnv struct {
	t        *testing.T
	leg      topology.Server
	lc       *redis.Client
	tg       map[string]redis.UniversalClient
	cfg      string
	stateDir string
	cl       *classify.Classifier
}

// newLiveEnv starts a legacy (with args) filled with every type, and
// flushes the shared targets.
func newLiveEnv(t *testing.T, args ...string) *liveEnv {
	t.Helper()
	tg := targets(t)
	flush(t, tg)
	leg := topotest.Standalone(t, args...)
	e := &liveEnv{t: t, leg: leg, lc: topotest.Client(t, leg.Addr()), tg: tg}
	dir := t.TempDir()
	e.stateDir = filepath.Join(dir, "state")
	var sb strings.Builder
	fmt.Fprintf(&sb, "legacy: {url: \"redis://%s/0\"}\nstate_dir: %s\ntargets:\n", leg.Addr(), e.stateDir)
	fmt.Fprintf(&sb, "  cache: {kind: cluster, addrs: [%s]}\n", strings.Join(cluster.Addrs(), ", "))
	fmt.Fprintf(&sb, "  session: {kind: sentinel, master: sessions, sentinels: [%s]}\n", strings.Join(sent.SentinelAddrs(), ", "))
	fmt.Fprintf(&sb, "  queue: {kind: standalone, url: \"redis://%s/0\"}\n", queue.Addr())
	fmt.Fprintf(&sb, "  ratelimit: {kind: standalone, url: \"redis://%s/0\"}\n", rlSrv.Addr())
	sb.WriteString(liveRules)
	e.cfg = filepath.Join(dir, "redisplit.yaml")
	if err := os.WriteFile(e.cfg, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := configfile.Load(configfile.NewViper(), e.cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	if e.cl, _, err = classify.Router(c); err != nil {
		t.Fatal(err)
	}
	fill(t, e.lc, 300)
	return e
}

// bucketOf routes a legacy key as the migration does (its plan).
func (e *liveEnv) bucketOf(k, typ string) string {
	m := e.cl.Classify(k, typ)
	if m.Bucket == classify.Unknown || m.Bucket == "" {
		return "cache"
	}
	return string(m.Bucket)
}

type runResult struct {
	code      int
	out, errs string
}

// runningMigrate is migrate --dual-write running in this process.
type runningMigrate struct {
	cancel context.CancelFunc
	done   chan runResult
	errb   *lockedBuf
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (e *liveEnv) startMigrate(args ...string) *runningMigrate {
	ctx, cancel := context.WithCancel(ctxT(e.t))
	m := &runningMigrate{cancel: cancel, done: make(chan runResult, 1), errb: &lockedBuf{}}
	go func() {
		var out bytes.Buffer
		app := &cmd.App{In: strings.NewReader(""), Out: &out, Err: m.errb}
		code := cmd.Run(ctx, app, append([]string{"--config", e.cfg, "migrate", "--dual-write", "--yes", "-o", "json"}, args...))
		m.done <- runResult{code, out.String(), m.errb.String()}
	}()
	return m
}

// stop is SIGINT: it cancels the run and waits for its result.
func (m *runningMigrate) stop(t *testing.T) runResult {
	t.Helper()
	m.cancel()
	select {
	case r := <-m.done:
		return r
	case <-time.After(90 * time.Second):
		t.Fatalf("migrate did not stop after SIGINT:\n%s", m.errb.String())
	}
	return runResult{}
}

// liveState reads the state file (as status does).
func (e *liveEnv) liveState() *state.State {
	sd, err := state.OpenReadOnly(e.stateDir)
	if err != nil {
		e.t.Fatal(err)
	}
	st, err := sd.Load()
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// waitFor polls the state until cond holds.
func (e *liveEnv) waitFor(what string, d time.Duration, m *runningMigrate, cond func(*state.State) bool) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond(e.liveState()) {
			return
		}
		if m != nil {
			select {
			case r := <-m.done:
				e.t.Fatalf("migrate ended while waiting for %s: exit %d\n%s\n%s", what, r.code, r.out, r.errs)
			default:
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	stderr := ""
	if m != nil {
		stderr = m.errb.String()
	}
	e.t.Fatalf("timed out waiting for %s\n%s", what, stderr)
}

func liveRunning(st *state.State) bool {
	return st.Live != nil && st.Live.Running && len(st.Live.Buckets) == 4
}

func allSyncing(st *state.State) bool {
	if !liveRunning(st) {
		return false
	}
	for _, b := range []string{"cache", "session", "queue", "ratelimit"} {
		if sb := st.Buckets[b]; sb == nil || sb.Phase != state.Syncing {
			return false
		}
	}
	return true
}

// figures records the live figures migrate saves while the load runs.
type figures struct {
	mu                 sync.Mutex
	maxLag, samples    int64
	maxBacklog         int
	maxCopies, maxEvts float64
	lagSum             int64
}

func (e *liveEnv) watchFigures(ctx context.Context) *figures {
	f := &figures{}
	go func() {
		for ctx.Err() == nil {
			time.Sleep(500 * time.Millisecond)
			st := e.liveState()
			if st.Live == nil || !st.Live.Running {
				continue
			}
			f.mu.Lock()
			f.maxBacklog = max(f.maxBacklog, st.Live.Backlog)
			f.maxCopies = max(f.maxCopies, st.Live.CopiesPerSec)
			f.maxEvts = max(f.maxEvts, st.Live.EventsPerSec)
			for _, lb := range st.Live.Buckets {
				f.maxLag = max(f.maxLag, lb.LagMs)
				f.lagSum += lb.LagMs
				f.samples++
			}
			f.mu.Unlock()
		}
	}()
	return f
}

func (f *figures) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	avg := int64(0)
	if f.samples > 0 {
		avg = f.lagSum / f.samples
	}
	return fmt.Sprintf("lag max %d ms, mean %d ms (marker round trip, %d samples); backlog max %d keys; copies/s max %.0f; events/s max %.0f",
		f.maxLag, avg, f.samples, f.maxBacklog, f.maxCopies, f.maxEvts)
}

// load writes to legacy until stopped: plain commands of every type from
// a few goroutines, and four libraries writing their own keys.
type load struct {
	tolerant bool // errors are expected (legacy restarts): not reported
	start    time.Time
	stopped  time.Time
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	ops      atomic.Int64
	mu       sync.Mutex
	errs     []string
	stopFn   []func()
}

func (l *load) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, err.Error())
	}
}

// startLoad starts the load against addr at about perSec plain commands
// a second (the libraries add a few hundred).
func startLoad(t *testing.T, addr string, perSec int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, start: time.Now()}
	const writers = 4
	for w := 0; w < writers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.plain(ctx, addr, w, perSec/writers)
		}()
	}
	l.libraries(ctx, t, addr)
	return l
}

// plain writes pipelines of every type: strings, counters, hashes, lists
// pushed and popped, sets, sorted sets, streams, deletes, short TTLs and
// renames across buckets.
func (l *load) plain(ctx context.Context, addr string, w, perSec int) {
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer c.Close()
	rnd := rand.New(rand.NewPCG(uint64(w), 7))
	const per = 20 // commands per pipeline
	every := time.Duration(float64(time.Second) * per / float64(max(perSec, 1)))
	t := time.NewTicker(every)
	defer t.Stop()
	seq := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p := c.Pipeline()
		for i := 0; i < per/10; i++ {
			seq++
			n := rnd.IntN(500)
			p.Set(ctx, fmt.Sprintf("cache:k:%d", n), fmt.Sprintf("w%d-%d", w, seq), 0)
			p.Incr(ctx, fmt.Sprintf("rl:c:%d", rnd.IntN(300)))
			p.HSet(ctx, fmt.Sprintf("sess:h:%d", rnd.IntN(300)), "f"+fmt.Sprint(rnd.IntN(5)), seq)
			p.LPush(ctx, fmt.Sprintf("queue:l:%d", rnd.IntN(50)), seq)
			p.RPop(ctx, fmt.Sprintf("queue:l:%d", rnd.IntN(50)))
			p.SAdd(ctx, fmt.Sprintf("cache:s:%d", rnd.IntN(200)), rnd.IntN(20))
			p.ZIncrBy(ctx, fmt.Sprintf("rl:z:%d", rnd.IntN(100)), 1, fmt.Sprint(rnd.IntN(10)))
			p.XAdd(ctx, &redis.XAddArgs{Stream: fmt.Sprintf("queue:x:%d", rnd.IntN(20)), MaxLen: 50, Approx: false, Values: []any{"n", seq}})
			switch seq % 4 {
			case 0:
				p.Del(ctx, fmt.Sprintf("cache:k:%d", rnd.IntN(500)))
			case 1:
				p.Expire(ctx, fmt.Sprintf("sess:h:%d", rnd.IntN(300)), time.Duration(1+rnd.IntN(3))*time.Second)
			case 2:
				p.Set(ctx, fmt.Sprintf("cache:t:%d", rnd.IntN(300)), seq, time.Duration(300+rnd.IntN(2000))*time.Millisecond)
			case 3: // a session becomes a cache entry: two buckets
				k := fmt.Sprintf("sess:r:%d-%d", w, seq)
				p.Set(ctx, k, seq, 0)
				p.Rename(ctx, k, fmt.Sprintf("cache:r:%d", rnd.IntN(200)))
			}
		}
		if _, err := p.Exec(ctx); err != nil && ctx.Err() == nil && err != redis.Nil {
			l.fail(err)
		}
		l.ops.Add(per)
	}
}

// libraries: asynq (a client enqueueing and a server processing), scs
// sessions committed and deleted, gorilla sessions saved, updated and
// deleted through boj/redistore, redis_rate limiting, go-redis/cache.
func (l *load) libraries(ctx context.Context, t *testing.T, addr string) {
	opt := asynq.RedisClientOpt{Addr: addr}
	client := asynq.NewClient(opt)
	mux := asynq.NewServeMux()
	mux.HandleFunc("email:send", func(context.Context, *asynq.Task) error { return nil })
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: 2, LogLevel: asynq.FatalLevel,
		HealthCheckInterval: time.Hour, DelayedTaskCheckInterval: 200 * time.Millisecond})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	limiter := redis_rate.NewLimiter(rdb)
	gc := cache.New(&cache.Options{Redis: rdb})
	pool := &redigo.Pool{Dial: func() (redigo.Conn, error) { return redigo.Dial("tcp", addr) }}
	scs := scsredis.New(pool)
	rs, err := redistore.NewRediStore(4, "tcp", addr, "", "", []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	var gorilla []*http.Cookie // cookies of sessions saved through redistore, to update and delete them
	l.stopFn = append(l.stopFn, func() {
		rs.Close()
		srv.Shutdown()
		client.Close()
		pool.Close()
		rdb.Close()
	})
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		rnd := rand.New(rand.NewPCG(99, 1))
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			var err error
			switch i % 6 {
			case 5: // gorilla sessions through boj/redistore: saved, updated, deleted
				req := httptest.NewRequest("GET", "/", nil)
				if len(gorilla) > 20 {
					req.AddCookie(gorilla[rnd.IntN(len(gorilla))])
				}
				rec := httptest.NewRecorder()
				var sess *sessions.Session
				if sess, err = rs.Get(req, "app"); err == nil {
					sess.Values["n"] = i
					if i%11 == 0 && !sess.IsNew {
						sess.Options.MaxAge = -1 // logout: redistore deletes the key
					}
					if err = rs.Save(req, rec, sess); err == nil && sess.IsNew {
						gorilla = append(gorilla, rec.Result().Cookies()...)
					}
				}
			case 0:
				var o []asynq.Option
				if i%3 == 0 {
					o = append(o, asynq.ProcessIn(time.Duration(rnd.IntN(500))*time.Millisecond))
				}
				_, err = client.Enqueue(asynq.NewTask("email:send", []byte(fmt.Sprintf(`{"n":%d}`, i))), o...)
			case 1:
				token := fmt.Sprintf("tok%040d", rnd.IntN(200))
				if i%7 == 0 {
					err = scs.Delete(token)
				} else {
					err = scs.Commit(token, []byte(fmt.Sprintf("session %d", i)), time.Now().Add(time.Hour))
				}
			case 2, 3:
				_, err = limiter.Allow(ctx, fmt.Sprintf("user:%d", rnd.IntN(100)), redis_rate.PerSecond(50))
			case 4:
				ttl := time.Hour
				if i%2 == 0 {
					ttl = 2 * time.Second
				}
				err = gc.Set(&cache.Item{Ctx: ctx, Key: fmt.Sprintf("gc:user:%d", rnd.IntN(200)), Value: map[string]int{"n": i}, TTL: ttl})
			}
			if err != nil && ctx.Err() == nil {
				l.fail(err)
			}
			l.ops.Add(1)
		}
	}()
}

// rate is the load's writes per second, from its start until stop.
func (l *load) rate() float64 {
	return float64(l.ops.Load()) / l.stopped.Sub(l.start).Seconds()
}

// stop stops every writer and the libraries' background work.
func (l *load) stop(t *testing.T) {
	t.Helper()
	l.cancel()
	l.wg.Wait()
	l.stopped = time.Now()
	for _, f := range l.stopFn {
		f()
	}
	if len(l.errs) > 0 && !l.tolerant {
		t.Errorf("load errors: %q", l.errs)
	}
}

// differences compares every key of legacy with its bucket's target and
// every key of every target with legacy (package converge: type, value
// digest, absolute expiry within 1 s; a key on a target whose bucket is not
// the key's is a difference too; a difference must hold for five rounds a
// second apart).
func (e *liveEnv) differences() []string {
	t := e.t
	res, err := converge.Compare(ctxT(t), converge.Options{Legacy: e.lc, Targets: e.tg, Route: e.bucketOf,
		Skip: func(k string) bool { return strings.HasPrefix(k, "redisplit:") }})
	if err != nil {
		t.Fatal(err)
	}
	out := res.Strings()
	t.Logf("compared %d legacy and %d target keys (both ways): %d differences", res.LegacyKeys, res.TargetKeys, len(out))
	return out
}

// converged: after the load stopped, status --wait-caught-up returns 0,
// verify exits 0, and the independent comparison finds nothing.
func (e *liveEnv) converged(m *runningMigrate) {
	t := e.t
	t.Helper()
	code, out, errs := run(t, "--config", e.cfg, "status", "--wait-caught-up", "--timeout", "60s", "-o", "json")
	if code != 0 {
		t.Fatalf("status --wait-caught-up: exit %d\n%s\n%s\nmigrate:\n%s", code, out, errs, m.errb.String())
	}
	var rep struct {
		LiveState string `json:"live_state"`
		Live      struct {
			Buckets map[string]struct {
				CaughtUp        bool      `json:"caught_up"`
				LagMs           int64     `json:"lag_ms"`
				MarkerWrittenAt time.Time `json:"marker_written_at"`
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.LiveState != "running" || len(rep.Live.Buckets) != 4 {
		t.Fatalf("status after --wait-caught-up: %v\n%s", err, out)
	}
	for b, lb := range rep.Live.Buckets {
		if !lb.CaughtUp {
			t.Errorf("%s not caught up in status: %+v", b, lb)
		}
	}
	if code, out, errs := run(t, "--config", e.cfg, "verify"); code != 0 {
		t.Fatalf("verify after catch-up: exit %d\n%s\n%s", code, out, errs)
	}
	if d := e.differences(); len(d) > 0 {
		t.Fatalf("%d differences after catch-up, e.g.:\n%s", len(d), strings.Join(d[:min(len(d), 20)], "\n"))
	}
}

// stopped: SIGINT → exit 0, notifications back to their old value, the
// lease released, the live phase recorded as stopped.
func (e *liveEnv) stopped(m *runningMigrate, oldNotify string) runResult {
	t := e.t
	t.Helper()
	r := m.stop(t)
	if r.code != 0 {
		t.Fatalf("SIGINT: exit %d\n%s\n%s", r.code, r.out, r.errs)
	}
	ctx := ctxT(t)
	if v := e.lc.ConfigGet(ctx, "notify-keyspace-events").Val()["notify-keyspace-events"]; v != oldNotify {
		t.Errorf("notify-keyspace-events is %q after the live phase, want the old %q", v, oldNotify)
	}
	if e.lc.Exists(ctx, "redisplit:lock").Val() != 0 {
		t.Error("the lease was not released")
	}
	st := e.liveState()
	if st.Live == nil || st.Live.Running || st.Notify != nil {
		t.Errorf("state after the stop: live %+v, notify %+v", st.Live, st.Notify)
	}
	var res struct {
		Buckets []struct{ Bucket, Status string }
		Live    *struct {
			Events, Copies int64
			Notify         string
			Warnings       []string
		}
	}
	if err := json.Unmarshal([]byte(r.out), &res); err != nil || res.Live == nil {
		t.Fatalf("migrate --dual-write JSON: %v\n%s", err, r.out)
	}
	for _, b := range res.Buckets {
		if b.Status != "syncing" {
			t.Errorf("%s: status %s at the end, want syncing", b.Bucket, b.Status)
		}
	}
	if res.Live.Events == 0 || !strings.Contains(res.Live.Notify, "restored") {
		t.Errorf("live summary: %+v", res.Live)
	}
	// Redis 7.0 has no CLIENT NO-TOUCH: the summary says so
	if !strings.Contains(strings.Join(res.Live.Warnings, "\n"), "no CLIENT NO-TOUCH") {
		t.Errorf("no NO-TOUCH warning in the summary: %q", res.Live.Warnings)
	}
	// nothing runs any more: waiting for catch-up times out with exit 1
	if code, _, errs := run(t, "--config", e.cfg, "status", "--wait-caught-up", "--timeout", "500ms"); code != 1 || !strings.Contains(errs, "no migrate --dual-write is running") {
		t.Errorf("status --wait-caught-up after the stop: exit %d: %s", code, errs)
	}
	return r
}

func TestDualWriteConvergesUnderLiveLoad(t *testing.T) {
	e := newLiveEnv(t)
	ctx, stopWatch := context.WithCancel(ctxT(t))
	defer stopWatch()
	l := startLoad(t, e.leg.Addr(), 5000)
	m := e.startMigrate()
	f := e.watchFigures(ctx)
	e.waitFor("every bucket syncing", 60*time.Second, m, allSyncing)
	time.Sleep(10 * time.Second)
	l.stop(t)
	stopWatch()
	t.Logf("load: %d writes in all, %.0f writes/s; live figures under it: %s", l.ops.Load(), l.rate(), f)
	e.converged(m) // verify marks every bucket verified
	if code, out, _ := run(t, "--config", e.cfg, "status"); code != 0 || !strings.Contains(out, "live phase: running") ||
		!strings.Contains(out, "CAUGHT UP") || !strings.Contains(out, "verified") {
		t.Errorf("status text during the live phase:\n%s", out)
	}
	st := e.liveState()
	for b, lb := range st.Live.Buckets {
		if lb.Events == 0 || lb.Copies == 0 {
			t.Errorf("%s: no events or copies counted: %+v", b, lb)
		}
		if lb.Gaps != 0 {
			t.Errorf("%s: %d gaps without a fault", b, lb.Gaps)
		}
	}
	r := e.stopped(m, "")
	if !strings.Contains(r.errs, "caught up") {
		t.Errorf("no catch-up note on stderr:\n%s", r.errs)
	}
}

// liveFault runs the live phase under load with fault injected after
// every bucket is syncing, then checks convergence and the gap.
func liveFault(t *testing.T, fault func(e *liveEnv, m *runningMigrate), legacyArgs ...string) *liveEnv {
	return liveFaultGap(t, true, fault, legacyArgs...)
}

// liveFaultGap is liveFault; gap says whether the fault is a gap in the
// change feed (a target's fault is not: its writes are retried).
func liveFaultGap(t *testing.T, gap bool, fault func(e *liveEnv, m *runningMigrate), legacyArgs ...string) *liveEnv {
	if testing.Short() {
		t.Skip("a live phase under load with a fault takes 10-25 s")
	}
	e := newLiveEnv(t, legacyArgs...)
	l := startLoad(t, e.leg.Addr(), 2000)
	l.tolerant = len(legacyArgs) > 0 // the restart test: writes fail while legacy is down
	m := e.startMigrate()
	e.waitFor("every bucket syncing", 60*time.Second, m, allSyncing)
	time.Sleep(2 * time.Second)
	fault(e, m)
	time.Sleep(3 * time.Second)
	l.stop(t)
	e.converged(m)
	st := e.liveState()
	for b, lb := range st.Live.Buckets {
		if gap != (lb.Gaps > 0 && lb.Rescans > 0) {
			t.Errorf("%s: gaps %d, rescans %d (a gap expected: %v)", b, lb.Gaps, lb.Rescans, gap)
		}
	}
	e.stopped(m, "")
	return e
}

func TestDualWriteSubscriberKilledTwice(t *testing.T) {
	liveFault(t, func(e *liveEnv, m *runningMigrate) {
		ctx := ctxT(t)
		for i := 0; i < 2; i++ {
			if n, err := e.lc.ClientKillByFilter(ctx, "TYPE", "pubsub").Result(); err != nil || n == 0 {
				t.Fatalf("CLIENT KILL TYPE pubsub: %d, %v", n, err)
			}
			time.Sleep(1500 * time.Millisecond)
		}
	})
}

// FLUSHDB publishes no per-key event: the rescan's journal pass deletes
// from the targets every key redisplit wrote that legacy no longer has.
func TestDualWriteFlushDB(t *testing.T) {
	var before int64
	liveFault(t, func(e *liveEnv, m *runningMigrate) {
		before = dbsizes(t, e.tg)
		if err := e.lc.FlushDB(ctxT(t)).Err(); err != nil {
			t.Fatal(err)
		}
	})
	if before < 1000 {
		t.Errorf("only %d keys on the targets before the flush", before)
	}
}

// Notifications switched off on legacy for 3 s (someone keeps setting
// them off): a gap, healed once they are back.
func TestDualWriteNotificationsOff(t *testing.T) {
	liveFault(t, func(e *liveEnv, m *runningMigrate) {
		ctx := ctxT(t)
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			e.lc.ConfigSet(ctx, "notify-keyspace-events", "")
		}
		// back on: redisplit sets its value again by itself; make sure
		e.waitFor("notifications back", 10*time.Second, m, func(*state.State) bool {
			return e.lc.ConfigGet(ctx, "notify-keyspace-events").Val()["notify-keyspace-events"] != ""
		})
	})
}

// Legacy restarted (with persistence) under the live phase: the capture
// resubscribes, sets notifications again (a restart forgets CONFIG SET),
// the restart is a gap (run_id changed), and everything converges.
func TestDualWriteLegacyRestarted(t *testing.T) {
	liveFault(t, func(e *liveEnv, m *runningMigrate) {
		ctx := ctxT(t)
		if err := e.leg.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if err := e.leg.Start(ctx); err != nil {
			t.Fatal(err)
		}
		e.waitFor("notifications set again after the restart", 15*time.Second, m, func(*state.State) bool {
			return e.lc.ConfigGet(ctx, "notify-keyspace-events").Val()["notify-keyspace-events"] != ""
		})
	}, "--appendonly", "yes", "--appendfsync", "always")
}

// migrate killed with -9 mid-run and run again: the rerun says the live
// phase did not stop cleanly, rescans, and converges; notifications end
// at their value from before the migration (never the one redisplit set).
func TestDualWriteKill9AndRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("a live phase under load, killed and rerun, takes about 15 s")
	}
	e := newLiveEnv(t)
	ctx := ctxT(t)
	e.lc.ConfigSet(ctx, "notify-keyspace-events", "Kl")                                  // an application's own: kept, and put back
	old := e.lc.ConfigGet(ctx, "notify-keyspace-events").Val()["notify-keyspace-events"] // as Redis spells it
	l := startLoad(t, e.leg.Addr(), 2000)
	c := exec.Command(bin, "--config", e.cfg, "migrate", "--dual-write", "--yes", "--no-progress")
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	e.waitFor("every bucket syncing", 60*time.Second, nil, allSyncing)
	time.Sleep(time.Second)
	if err := c.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	st := e.liveState()
	if st.Notify == nil || st.Notify.Old != old || !st.Live.Running {
		t.Fatalf("after kill -9: notify %+v, live %+v\n%s", st.Notify, st.Live, out.String())
	}
	time.Sleep(2 * time.Second) // writes nobody follows
	m := e.startMigrate()
	e.waitFor("the rerun's live phase", 60*time.Second, m, func(st *state.State) bool {
		return liveRunning(st) && st.Live.PID == os.Getpid()
	})
	time.Sleep(3 * time.Second)
	l.stop(t)
	e.converged(m)
	if s := m.errb.String(); !strings.Contains(s, "did not stop cleanly") || !strings.Contains(s, "rescanning") {
		t.Errorf("the rerun did not say it rescans after the kill:\n%s", s)
	}
	for b, lb := range e.liveState().Live.Buckets {
		if lb.Rescans == 0 {
			t.Errorf("%s: not rescanned after the kill", b)
		}
	}
	e.stopped(m, old)
}

// Legacy's own evictions of keys that must not be lost (here sessions,
// legacy being full with allkeys-lru) during the live phase are reported:
// a note while it runs, a warning in the summary.
func TestDualWriteReportsLegacyEvictions(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	ctx := ctxT(t)
	leg := topotest.Standalone(t, "--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru")
	lc := topotest.Client(t, leg.Addr())
	lc.Set(ctx, "sess:first", "v", 0)
	cfg, _ := writeConfig(t, leg.Addr(), "", nil)
	e := &liveEnv{t: t, leg: leg, lc: lc, tg: tg, cfg: cfg}
	m := e.startMigrate()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(m.errb.String(), "caught up") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	val := strings.Repeat("s", 8<<10)
	for i := 0; time.Now().Before(deadline); i++ {
		lc.Set(ctx, fmt.Sprint("sess:big:", i), val, 0)
		if i%100 == 99 && !strings.Contains(lc.Info(ctx, "stats").Val(), "evicted_keys:0\r") {
			break
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(m.errb.String(), "legacy evicted session key") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	r := m.stop(t)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.out, r.errs)
	}
	if !strings.Contains(r.errs, "WARNING") || !strings.Contains(r.errs, "legacy evicted session key") {
		t.Errorf("no eviction note while it ran:\n%s", r.errs)
	}
	var res struct{ Live struct{ Warnings []string } }
	if err := json.Unmarshal([]byte(r.out), &res); err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(res.Live.Warnings, "\n"); !strings.Contains(w, "session keys during the live phase") {
		t.Errorf("no eviction warning in the summary: %q", res.Live.Warnings)
	}
}

// A Sentinel failover of the session target under the live phase: writes
// wait for the replica (WAIT 1) and are retried through the failover;
// nothing is lost, and it is no gap in the feed.
func TestDualWriteSessionFailover(t *testing.T) {
	liveFaultGap(t, false, func(e *liveEnv, m *runningMigrate) {
		old, _ := sent.CurrentMaster(ctxT(t))
		nm, err := sent.Failover(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("failover %s -> %s", old, nm)
	})
}

// A cache node restarted (AOF on) under the live phase: the copier's
// writes to it are retried until it is back.
func TestDualWriteCacheNodeRestarted(t *testing.T) {
	liveFaultGap(t, false, func(e *liveEnv, m *runningMigrate) {
		n := cluster.Nodes[1]
		if err := n.Stop(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		if err := n.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if err := cluster.WaitOK(ctxT(t), 30*time.Second); err != nil {
			t.Fatal(err)
		}
	})
}
