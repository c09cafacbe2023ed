package migrate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config/configfile"
	"github.com/redisplit/redisplit/topology/topotest"
)

// The queue bucket to a dedicated Redis, cut over in the order of
// docs/runbook.md (DESIGN.md §8) under live producers and consumers: a
// Sidekiq-like family (queue:<name> lists, the queues set, a process in
// the processes set with its beat, its :work hash) and plain lists
// (LPUSH/BRPOP and RPUSH/BLPOP) are mirrored by migrate --dual-write while
// producers push and a consumer fleet pops on legacy; cutover is refused
// while that fleet is alive; then the legacy fleet stops, the mirror
// catches up, cutover, a fleet starts on the target, the producers switch,
// and the reverse mirror keeps legacy current. Every job carries an id and
// every execution is counted: each produced job runs exactly once, none is
// lost, and no job runs on both fleets.

// queueRules route the plain lists to the queue bucket; the Sidekiq
// preset (presets are on) routes queues, processes and the process hashes.
const queueRules = `rules:
  - {prefix: "cache:", bucket: cache}
  - {prefix: "sess:", bucket: session}
  - {prefix: "queue:", bucket: queue}
  - {prefix: "job_queue", bucket: queue}
  - {prefix: "rl:", bucket: ratelimit}
unknown: cache
`

func newQueueEnv(t *testing.T) *liveEnv {
	t.Helper()
	tg := targets(t)
	flush(t, tg)
	leg := topotest.Standalone(t)
	e := &liveEnv{t: t, leg: leg, lc: topotest.Client(t, leg.Addr()), tg: tg}
	dir := t.TempDir()
	e.stateDir = filepath.Join(dir, "state")
	var sb strings.Builder
	fmt.Fprintf(&sb, "legacy: {url: \"redis://%s/0\"}\nstate_dir: %s\ntargets:\n", leg.Addr(), e.stateDir)
	fmt.Fprintf(&sb, "  cache: {kind: cluster, addrs: [%s]}\n", strings.Join(cluster.Addrs(), ", "))
	fmt.Fprintf(&sb, "  session: {kind: sentinel, master: sessions, sentinels: [%s]}\n", strings.Join(sent.SentinelAddrs(), ", "))
	fmt.Fprintf(&sb, "  queue: {kind: standalone, url: \"redis://%s/0\"}\n", queue.Addr())
	fmt.Fprintf(&sb, "  ratelimit: {kind: standalone, url: \"redis://%s/0\"}\n", rlSrv.Addr())
	sb.WriteString(queueRules)
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
	fill(t, e.lc, 20)
	return e
}

// A queue list and its producer's and consumer's ends: lpush producers and
// brpop consumers (Sidekiq, the seed's job_queue), or rpush and blpop (RQ).
type qlist struct {
	key      string
	lpush    bool
	sidekiq  string // the Sidekiq queue name ("" for a plain list)
	produced atomic.Int64
}

var qlists = []*qlist{
	{key: "queue:default", lpush: true, sidekiq: "default"},
	{key: "queue:mailers", lpush: true, sidekiq: "mailers"},
	{key: "job_queue", lpush: true},
	{key: "job_queue:low"},
}

// jobLedger counts every execution of every job, by id, and the fleet
// that ran it.
type jobLedger struct {
	mu       sync.Mutex
	produced map[string]bool
	ran      map[string][]string // id → fleets, one per execution
}

func newLedger() *jobLedger {
	return &jobLedger{produced: map[string]bool{}, ran: map[string][]string{}}
}

// producers push jobs with unique ids at about perSec each onto every list
// of qlists, on the client to() returns at each push (the switch).
type producers struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   atomic.Int64
	last   atomic.Value // error
	window atomic.Int64
}

// window counts the jobs pushed to legacy while window() says the switch
// window is open (after cutover, before the producers switched).
func startProducers(t *testing.T, led *jobLedger, to func() redis.UniversalClient, window func() bool, perSec int) *producers {
	ctx, cancel := context.WithCancel(ctxT(t))
	p := &producers{cancel: cancel}
	for _, q := range qlists {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			tick := time.NewTicker(time.Second / time.Duration(perSec))
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				id := fmt.Sprintf("%s-%d", q.key, n)
				var job string
				if q.sidekiq != "" {
					b, _ := json.Marshal(map[string]any{"class": "HardJob", "args": []any{n}, "jid": id, "queue": q.sidekiq,
						"retry": true, "created_at": float64(time.Now().UnixNano()) / 1e9, "enqueued_at": float64(time.Now().UnixNano()) / 1e9})
					job = string(b)
				} else {
					job = `{"id":"` + id + `","task":"send"}`
				}
				c := to()
				inWindow := window()
				var err error
				if q.sidekiq != "" { // Sidekiq's client: SADD queues, LPUSH queue:<name>
					_, err = c.Pipelined(ctx, func(pl redis.Pipeliner) error {
						pl.SAdd(ctx, "queues", q.sidekiq)
						pl.LPush(ctx, q.key, job)
						return nil
					})
				} else if q.lpush {
					err = c.LPush(ctx, q.key, job).Err()
				} else {
					err = c.RPush(ctx, q.key, job).Err()
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					p.errs.Add(1)
					p.last.Store(err)
					continue // not pushed: not produced
				}
				led.mu.Lock()
				led.produced[id] = true
				led.mu.Unlock()
				q.produced.Add(1)
				if inWindow {
					p.window.Add(1)
				}
			}
		}()
	}
	return p
}

func (p *producers) stop(t *testing.T) {
	p.cancel()
	p.wg.Wait()
	if n := p.errs.Load(); n > 0 {
		t.Errorf("%d pushes failed, the last: %v", n, p.last.Load())
	}
}

// fleet is one consumer fleet on one server: a Sidekiq-like process
// (identity in processes, its hash with a beat every second, BRPOP on its
// queues, the job in <identity>:work while it runs) and plain-list workers.
type fleet struct {
	name     string
	identity string
	c        *redis.Client
	led      *jobLedger
	stopping atomic.Bool
	wg       sync.WaitGroup
	popped   atomic.Int64
	first    atomic.Int64 // unix ns of its first execution
	lastRun  atomic.Int64 // unix ns of its last execution
	errs     atomic.Int64
}

func startFleet(t *testing.T, name, addr string, led *jobLedger) *fleet {
	f := &fleet{name: name, identity: fmt.Sprintf("%s-host:%d:%012x", name, 4000+len(name), time.Now().UnixNano()&0xffffffffffff),
		c: redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true}), led: led}
	t.Cleanup(func() { f.c.Close() })
	ctx := context.Background()
	beat := func() error {
		info, _ := json.Marshal(map[string]any{"hostname": name + "-host", "pid": 4000 + len(name), "identity": f.identity,
			"queues": []string{"default", "mailers"}, "concurrency": 1, "started_at": float64(time.Now().Unix())})
		_, err := f.c.Pipelined(ctx, func(pl redis.Pipeliner) error {
			pl.SAdd(ctx, "processes", f.identity)
			pl.HSet(ctx, f.identity, "info", string(info), "busy", 0, "beat", strconv.FormatFloat(float64(time.Now().UnixNano())/1e9, 'f', 6, 64), "quiet", "false", "rss", 51200, "rtt_us", 120)
			pl.Expire(ctx, f.identity, 60*time.Second)
			return nil
		})
		return err
	}
	if err := beat(); err != nil {
		t.Fatal(err)
	}
	f.wg.Add(1)
	go func() { // the heartbeat, as Sidekiq's launcher
		defer f.wg.Done()
		for !f.stopping.Load() {
			time.Sleep(time.Second)
			if !f.stopping.Load() {
				_ = beat()
			}
		}
		// Sidekiq's clean stop: out of processes, its work hash unlinked
		f.c.SRem(ctx, "processes", f.identity)
		f.c.Unlink(ctx, f.identity+":work")
	}()
	run := func(key, job string) {
		var id string
		var m map[string]any
		if json.Unmarshal([]byte(job), &m) == nil {
			if s, ok := m["jid"].(string); ok {
				id = s
			} else if s, ok := m["id"].(string); ok {
				id = s
			}
		}
		now := time.Now().UnixNano()
		f.first.CompareAndSwap(0, now)
		f.lastRun.Store(now)
		f.led.mu.Lock()
		f.led.ran[id] = append(f.led.ran[id], f.name)
		f.led.mu.Unlock()
		f.popped.Add(1)
	}
	worker := func(keys []string, left bool, sidekiq bool) {
		defer f.wg.Done()
		for !f.stopping.Load() {
			var kv []string
			var err error
			if left {
				kv, err = f.c.BLPop(ctx, 500*time.Millisecond, keys...).Result()
			} else {
				kv, err = f.c.BRPop(ctx, 500*time.Millisecond, keys...).Result()
			}
			if err == redis.Nil {
				continue
			}
			if err != nil {
				f.errs.Add(1)
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if sidekiq {
				tid := strconv.FormatInt(time.Now().UnixNano(), 36)
				f.c.HSet(ctx, f.identity+":work", tid, `{"queue":"`+strings.TrimPrefix(kv[0], "queue:")+`","payload":`+kv[1]+`}`)
				run(kv[0], kv[1])
				f.c.HDel(ctx, f.identity+":work", tid)
			} else {
				run(kv[0], kv[1]) // popped: it runs, even when the fleet is stopping
			}
		}
	}
	f.wg.Add(4)
	go worker([]string{"queue:default", "queue:mailers"}, false, true)
	go worker([]string{"queue:default", "queue:mailers"}, false, true)
	go worker([]string{"job_queue"}, false, false)
	go worker([]string{"job_queue:low"}, true, false)
	return f
}

func (f *fleet) stop() {
	f.stopping.Store(true)
	f.wg.Wait()
}

func TestQueueCutoverOrderNoJobTwiceNoneLost(t *testing.T) {
	if testing.Short() {
		t.Skip("a live queue migration with cutover takes about a minute")
	}
	e := newQueueEnv(t)
	ctx := ctxT(t)
	qt := e.tg["queue"]
	led := newLedger()
	var onTarget, cut atomic.Bool
	prod := startProducers(t, led, func() redis.UniversalClient {
		if onTarget.Load() {
			return qt
		}
		return e.lc
	}, func() bool { return cut.Load() && !onTarget.Load() }, 40)
	legacyFleet := startFleet(t, "legacy", e.leg.Addr(), led)
	m := e.startMigrate()
	defer m.stop(t)
	e.waitFor("every bucket syncing", 60*time.Second, m, allSyncing)
	time.Sleep(2 * time.Second)

	// the legacy fleet is alive: refused, naming it
	code, _, errs := run(t, "--config", e.cfg, "cutover", "--bucket", "queue", "--yes")
	if code != 4 || !strings.Contains(errs, "sidekiq: 1 alive ("+legacyFleet.identity) {
		t.Fatalf("cutover while the legacy fleet runs: exit %d: %s", code, errs)
	}

	// 1. the legacy consumers stop (the producers keep pushing to legacy)
	legacyFleet.stop()
	legacyStopped := time.Now()
	// 2. the mirror catches up; verify finds parity
	if code, out, errs := run(t, "--config", e.cfg, "status", "--wait-caught-up", "--timeout", "60s"); code != 0 {
		t.Fatalf("status --wait-caught-up: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := run(t, "--config", e.cfg, "verify"); code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errs)
	}
	// cutover: no consumer alive on legacy any more, no pop for --quiet
	if code, out, errs := run(t, "--config", e.cfg, "cutover", "--bucket", "queue", "--yes", "--quiet", "1s"); code != 0 {
		t.Fatalf("cutover: exit %d\n%s\n%s\n%s", code, out, errs, m.errb.String())
	}
	cut.Store(true)
	// 3. the consumers start on the target (the producers still push to
	// legacy: the forward mirror brings their jobs over)
	targetFleet := startFleet(t, "target", queue.Addr(), led)
	time.Sleep(4 * time.Second)
	// the reverse mirror keeps legacy current: the target's process is
	// registered there too
	deadline := time.Now().Add(10 * time.Second)
	for !e.lc.SIsMember(ctx, "processes", targetFleet.identity).Val() {
		if time.Now().After(deadline) {
			t.Fatalf("the target fleet's process %s never reached legacy's processes set", targetFleet.identity)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// 4. the producers switch
	onTarget.Store(true)
	time.Sleep(3 * time.Second)
	prod.stop(t)
	// every job produced runs: wait until the target's fleet has run them
	led.mu.Lock()
	total := len(led.produced)
	led.mu.Unlock()
	deadline = time.Now().Add(30 * time.Second)
	for {
		led.mu.Lock()
		n := 0
		for id := range led.produced {
			if len(led.ran[id]) > 0 {
				n++
			}
		}
		led.mu.Unlock()
		if n == total || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // a duplicate copy would be popped by now
	targetFleet.stop()

	// the ledger: every produced job ran exactly once, none lost, none
	// unknown, and no job ran on both fleets
	led.mu.Lock()
	var lost, twice, unknown []string
	for id := range led.produced {
		switch n := len(led.ran[id]); {
		case n == 0:
			lost = append(lost, id)
		case n > 1:
			twice = append(twice, fmt.Sprintf("%s ×%d %v", id, n, led.ran[id]))
		}
	}
	for id := range led.ran {
		if !led.produced[id] {
			unknown = append(unknown, id)
		}
	}
	led.mu.Unlock()
	sort.Strings(lost)
	sort.Strings(twice)
	t.Logf("%d jobs produced (%s; %d pushed to legacy in the switch window), legacy fleet ran %d, target fleet ran %d; legacy stopped %s before the target's first job",
		total, perList(), prod.window.Load(), legacyFleet.popped.Load(), targetFleet.popped.Load(),
		time.Unix(0, targetFleet.first.Load()).Sub(legacyStopped).Round(time.Millisecond))
	if len(lost) > 0 {
		t.Errorf("%d jobs lost, e.g. %q", len(lost), lost[:min(10, len(lost))])
	}
	if len(twice) > 0 {
		t.Errorf("%d jobs ran more than once, e.g. %q", len(twice), twice[:min(10, len(twice))])
	}
	if len(unknown) > 0 {
		t.Errorf("%d executions of jobs never produced: %q", len(unknown), unknown[:min(10, len(unknown))])
	}
	if n := prod.window.Load(); n < 100 {
		t.Errorf("only %d jobs were pushed to legacy during the switch window: the window was not exercised", n)
	}
	if legacyFleet.popped.Load() == 0 || targetFleet.popped.Load() == 0 {
		t.Errorf("a fleet ran nothing: legacy %d, target %d", legacyFleet.popped.Load(), targetFleet.popped.Load())
	}
	if l, f := legacyFleet.lastRun.Load(), targetFleet.first.Load(); l >= f {
		t.Errorf("the fleets overlapped: the legacy fleet's last job at %s, the target's first at %s", time.Unix(0, l), time.Unix(0, f))
	}
	// the reverse mirror kept legacy current: the queue bucket is the same
	// on both sides (every list drained on legacy too)
	var d []string
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if d = e.bucketDiff("queue"); len(d) == 0 {
			break
		}
	}
	if len(d) > 0 {
		t.Errorf("legacy and the queue target differ after the window, e.g. %q", d[:min(10, len(d))])
	}
	for _, q := range qlists {
		if n := e.lc.LLen(ctx, q.key).Val(); n != 0 {
			t.Errorf("%s still holds %d jobs on legacy", q.key, n)
		}
	}
}

func perList() string {
	var parts []string
	for _, q := range qlists {
		parts = append(parts, fmt.Sprintf("%s %d", q.key, q.produced.Load()))
	}
	return strings.Join(parts, ", ")
}

// cutover --bucket queue refuses while a plain list is still popped on
// legacy (the pops the running migrate's change feed saw within --quiet),
// naming the list and when it was last popped, in one line (it waits up
// to --quiet for the pops to stop first); and while a consumer waits
// blocked in BRPOP on an empty list. Once the consumers stopped it waits
// out the rest of --quiet and passes; --consumers-stopped skips the checks.
func TestCutoverQueueRefusedWhileListPopped(t *testing.T) {
	if testing.Short() {
		t.Skip("runs migrate --dual-write")
	}
	e := newQueueEnv(t)
	ctx := ctxT(t)
	m := e.startMigrate()
	defer m.stop(t)
	e.waitFor("every bucket syncing", 60*time.Second, m, allSyncing)
	if code, out, errs := run(t, "--config", e.cfg, "verify"); code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errs)
	}
	dry := func(extra ...string) (int, string) {
		code, _, errs := run(t, append([]string{"--config", e.cfg, "cutover", "--bucket", "queue", "--dry-run", "--quiet", "2s"}, extra...)...)
		return code, errs
	}
	// a consumer polling job_queue with RPOP (never blocked), a producer
	// feeding it
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var pops atomic.Int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; pctx.Err() == nil; i++ {
			e.lc.LPush(pctx, "job_queue", fmt.Sprintf(`{"id":"p-%d"}`, i))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		c := topotest.Client(t, e.leg.Addr())
		for pctx.Err() == nil {
			if c.RPop(pctx, "job_queue").Err() == nil {
				pops.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	code, errs := dry()
	if code != 4 || !strings.Contains(errs, "consumers still work on legacy for bucket queue: lists: 1 alive (job_queue last popped ") ||
		!strings.Contains(errs, "--consumers-stopped") {
		t.Fatalf("cutover while job_queue is popped (%d pops): exit %d: %s", pops.Load(), code, errs)
	}
	if n := strings.Count(strings.TrimSpace(errs), "\n"); n > 0 {
		t.Errorf("the refusal is not one line:\n%s", errs)
	}
	// --consumers-stopped skips the check (the operator's word)
	if code, errs := dry("--consumers-stopped"); code != 0 {
		t.Errorf("--consumers-stopped: exit %d: %s", code, errs)
	}
	stop()
	wg.Wait()
	// stopped: cutover waits for the rest of --quiet since the last pop,
	// and passes
	t0 := time.Now()
	if code, errs := dry(); code != 0 {
		t.Fatalf("cutover --dry-run once the consumer stopped: exit %d: %s", code, errs)
	}
	if d := time.Since(t0); d < time.Second {
		t.Errorf("cutover did not wait for --quiet 2s since the last pop (answered in %s)", d)
	}
	// an idle consumer blocked in BRPOP on an empty list pops nothing: the
	// blocked client is what shows it
	bc := redis.NewClient(&redis.Options{Addr: e.leg.Addr(), DisableIdentity: true, ReadTimeout: -1})
	defer bc.Close()
	bc.Do(ctx, "CLIENT", "SETNAME", "mailer-worker")
	go bc.BRPop(context.Background(), 0, "job_queue:idle")
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, errs = dry()
		if code == 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != 4 || !strings.Contains(errs, "blocked clients: 1 alive (") || !strings.Contains(errs, "(mailer-worker) in BRPOP") {
		t.Fatalf("cutover while a consumer waits in BRPOP: exit %d: %s", code, errs)
	}
	bc.LPush(ctx, "job_queue:idle", "wake") // the blocked pop returns
	e.lc.Del(ctx, "job_queue:idle")
}

// Rollback after a queue cutover: the target's consumers stop with jobs
// still queued there (the producers pushed to both sides during the
// window, then to the target), rollback --bucket queue drains the reverse
// mirror: legacy holds every job not run yet, exactly once, and the
// target none of the bucket's lists; every produced job either ran once or
// waits on legacy once.
func TestQueueRollbackAfterCutoverKeepsPendingJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("a live queue migration with cutover and rollback")
	}
	e := newQueueEnv(t)
	ctx := ctxT(t)
	qt := e.tg["queue"]
	led := newLedger()
	var onTarget atomic.Bool
	prod := startProducers(t, led, func() redis.UniversalClient {
		if onTarget.Load() {
			return qt
		}
		return e.lc
	}, func() bool { return false }, 40)
	legacyFleet := startFleet(t, "legacy", e.leg.Addr(), led)
	m := e.startMigrate()
	defer m.stop(t)
	e.waitFor("every bucket syncing", 60*time.Second, m, allSyncing)
	legacyFleet.stop()
	if code, out, errs := run(t, "--config", e.cfg, "status", "--wait-caught-up", "--timeout", "60s"); code != 0 {
		t.Fatalf("status --wait-caught-up: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := run(t, "--config", e.cfg, "verify"); code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := run(t, "--config", e.cfg, "cutover", "--bucket", "queue", "--yes", "--quiet", "1s"); code != 0 {
		t.Fatalf("cutover: exit %d\n%s\n%s", code, out, errs)
	}
	targetFleet := startFleet(t, "target", queue.Addr(), led)
	time.Sleep(2 * time.Second)
	onTarget.Store(true)
	time.Sleep(time.Second)
	targetFleet.stop() // jobs accumulate on the target from here on
	time.Sleep(2 * time.Second)
	prod.stop(t)
	code, out, errs := run(t, "--config", e.cfg, "rollback", "--bucket", "queue", "--yes")
	if code != 0 {
		t.Fatalf("rollback after cutover: exit %d\n%s\n%s\n%s", code, out, errs, m.errb.String())
	}
	pending := map[string]int{}
	for _, q := range qlists {
		for _, job := range e.lc.LRange(ctx, q.key, 0, -1).Val() {
			var m map[string]any
			if err := json.Unmarshal([]byte(job), &m); err != nil {
				continue // fill's own list values
			}
			id, _ := m["jid"].(string)
			if id == "" {
				id, _ = m["id"].(string)
			}
			pending[id]++
		}
		if n := qt.Exists(ctx, q.key).Val(); n != 0 {
			t.Errorf("%s is still on the target after the rollback", q.key)
		}
	}
	led.mu.Lock()
	defer led.mu.Unlock()
	var bad []string
	for id := range led.produced {
		if ran, p := len(led.ran[id]), pending[id]; ran+p != 1 {
			bad = append(bad, fmt.Sprintf("%s ran %d, pending %d", id, ran, p))
		}
	}
	sort.Strings(bad)
	t.Logf("%d jobs produced, %d pending on legacy after the rollback, target fleet ran %d", len(led.produced), len(pending), targetFleet.popped.Load())
	if len(pending) < 50 {
		t.Errorf("only %d jobs pending: the rollback was not exercised with queued jobs", len(pending))
	}
	if len(bad) > 0 {
		t.Errorf("%d jobs not exactly once (run or pending), e.g. %q", len(bad), bad[:min(10, len(bad))])
	}
}
