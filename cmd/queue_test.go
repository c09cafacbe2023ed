package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/migrate"
	"github.com/redisplit/redisplit/store/sqsstore"
	"github.com/redisplit/redisplit/store/sqsstore/sqsemu"
	"github.com/redisplit/redisplit/topology/topotest"
)

// The SQS emulators of this package (goaws keeps its queues in
// process-global state: each test uses its own queue names, sqsTestName).
// faithful corrects goaws's quirks; raw is goaws as it is (its
// SendMessageBatch answer is unreadable, so the SQS store sends again one
// by one: the standard queue then holds duplicates, as after a crash).
var (
	emuOnce        sync.Once
	emuFaithful    *sqsemu.Emulator
	emuRaw         *sqsemu.Emulator
	emuErr         error
	sqsTestQueues  atomic.Int64
	sqsTestRunSalt = strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
)

func emulators(t *testing.T) (faithful, raw *sqsemu.Emulator) {
	t.Helper()
	emuOnce.Do(func() {
		if emuFaithful, emuErr = sqsemu.Start(sqsemu.Options{Faithful: true}); emuErr != nil {
			return
		}
		emuRaw, emuErr = sqsemu.Start(sqsemu.Options{})
	})
	if emuErr != nil {
		t.Fatal(emuErr)
	}
	return emuFaithful, emuRaw
}

// sqsTestEnv gives the AWS default chain anonymous-looking credentials
// from the environment and nothing else to read (no files, no metadata
// service): the CLI takes its credentials from that chain, as in
// production.
func sqsTestEnv(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_SESSION_TOKEN": "",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
	} {
		t.Setenv(k, v)
	}
}

// sqsTestName returns a queue_name template no other test uses.
func sqsTestName() string {
	return "c" + sqsTestRunSalt + "-" + strconv.FormatInt(sqsTestQueues.Add(1), 10) + "-{key}"
}

type queueEnv struct {
	t        *testing.T
	legacy   *redis.Client
	emu      *sqsemu.Emulator
	cfg      string // config file
	queueTpl string
	fifo     bool
}

// newQueueEnv starts a legacy Redis and writes a config routing jobs:* to
// the queue bucket on SQS at emu; extra is appended to the queue target's
// settings.
func newQueueEnv(t *testing.T, emu *sqsemu.Emulator, fifo, create bool, extra string) *queueEnv {
	t.Helper()
	sqsTestEnv(t)
	leg := topotest.Standalone(t)
	e := &queueEnv{t: t, legacy: topotest.Client(t, leg.Addr()), emu: emu, queueTpl: sqsTestName(), fifo: fifo}
	e.cfg = filepath.Join(t.TempDir(), "redisplit.yaml")
	y := fmt.Sprintf(`legacy: {url: "redis://%s"}
state_dir: %q
unknown: skip
presets: {none: true}
rules:
  - {prefix: "jobs:", bucket: queue}
targets:
  queue: {kind: sqs, region: us-east-1, endpoint: %q, queue_name: %q, fifo: %v, create_queues: %v%s}
`, leg.Addr(), filepath.Join(t.TempDir(), "state"), emu.URL, e.queueTpl, fifo, create, extra)
	if err := os.WriteFile(e.cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *queueEnv) run(args ...string) (int, string, string) {
	e.t.Helper()
	return runCLI(e.t, append([]string{"--config", e.cfg}, args...)...)
}

// queue opens list's queue with the real SDK, as a consumer would.
func (e *queueEnv) queue(list string) sqsstore.Queue {
	e.t.Helper()
	svc, err := sqsstore.New(context.Background(), sqsstore.Options{Endpoint: e.emu.URL, Credentials: sqsemu.Credentials, CallTimeout: 5 * time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	name := strings.ReplaceAll(e.queueTpl, "{key}", strings.ReplaceAll(list, ":", "-"))
	if e.fifo {
		name += ".fifo"
	}
	q, err := svc.Queue(context.Background(), name, e.fifo, false)
	if err != nil {
		e.t.Fatal(err)
	}
	return q
}

// consume receives and deletes up to n messages of list's queue (all when
// n < 0), in receive order, as a consumer on SQS does.
func (e *queueEnv) consume(list string, n int) []string {
	e.t.Helper()
	q := e.queue(list)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var bodies []string
	for empty := 0; empty < 3 && (n < 0 || len(bodies) < n); {
		max := 10
		if n >= 0 {
			max = min(10, n-len(bodies))
		}
		msgs, err := q.Receive(ctx, max, 0, 30*time.Second)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(msgs) == 0 {
			empty++
			time.Sleep(50 * time.Millisecond)
			continue
		}
		var rs []string
		for _, m := range msgs {
			rs = append(rs, m.ReceiptHandle)
			bodies = append(bodies, m.Body)
		}
		if err := q.Delete(ctx, rs); err != nil {
			e.t.Fatal(err)
		}
	}
	return bodies
}

// popOrder is the list's items in the order consumers pop them (BRPOP:
// from the right).
func popOrder(t *testing.T, c *redis.Client, list string) []string {
	t.Helper()
	v, err := c.LRange(context.Background(), list, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(v))
	for i := range v {
		out[i] = v[len(v)-1-i]
	}
	return out
}

func job(i int) string { return fmt.Sprintf(`{"id":%d,"class":"SendMail"}`, i) }

// While producers keep pushing to a legacy list, migrate --dual-write
// moves it to SQS; stopped, it drains what is left. Afterwards every
// produced item is in SQS exactly once (FIFO) or at least once with the
// duplicates counted by migrate (standard, through goaws's unreadable
// batch answers), nothing remains on legacy, verify's conservation holds
// (exit 0) and status shows the queue's figures.
func TestQueueDualWriteToSQS(t *testing.T) {
	faithful, raw := emulators(t)
	for _, tc := range []struct {
		name string
		emu  *sqsemu.Emulator
		fifo bool
	}{{"standard", raw, false}, {"fifo", faithful, true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newQueueEnv(t, tc.emu, tc.fifo, true, "")
			ctx := context.Background()
			const initial, pushed = 100, 300
			for i := 0; i < initial; i++ {
				e.legacy.LPush(ctx, "jobs:mail", job(i))
			}
			m := startDualWrite(t, e.cfg, 2*time.Minute)
			out, errb, done, stop := &m.out, &m.errb, m.done, m.stop
			// the producer: keeps pushing while the mover runs
			for i := initial; i < initial+pushed; i++ {
				if err := e.legacy.LPush(ctx, "jobs:mail", job(i)).Err(); err != nil {
					t.Fatal(err)
				}
				if i%20 == 0 {
					select {
					case code := <-done:
						t.Fatalf("migrate exited %d while producing\n%s\n%s", code, out.String(), errb.String())
					case <-time.After(20 * time.Millisecond):
					}
				}
			}
			waitList(t, e.legacy, "jobs:mail", done, out, errb)
			// status while it runs: the figures the mover saves every second
			waitStatus(t, e, fmt.Sprintf(`"moved": %d`, initial+pushed))
			// the running migrate holds the lease: rollback refuses
			if code, rout, rerr := e.run("rollback", "--yes"); code != 4 || !strings.Contains(rerr, "migrate") {
				t.Fatalf("rollback while migrate runs: exit %d, want 4 naming the migrate\n%s\n%s", code, rout, rerr)
			}
			stop()
			if code := <-done; code != 0 {
				t.Fatalf("migrate stopped: exit %d\n%s\n%s", code, out.String(), errb.String())
			}
			var res migrate.Result
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			q := res.Queue
			if q == nil || q.Moved != initial+pushed || q.InFlight != 0 || q.Remaining != 0 || q.Parked != 0 || !q.Drained {
				t.Fatalf("queue result %+v, want %d moved, nothing left", q, initial+pushed)
			}
			if b := res.Bucket("queue"); b.Status != migrate.StatusSyncing {
				t.Errorf("queue bucket status %s, want %s", b.Status, migrate.StatusSyncing)
			}
			for _, k := range []string{"jobs:mail", "redisplit:inflight:jobs:mail", "redisplit:parked:jobs:mail"} {
				if n := e.legacy.LLen(ctx, k).Val(); n != 0 {
					t.Errorf("%s holds %d items on legacy", k, n)
				}
			}
			code, vout, verr := e.run("verify", "--queue-settle", "5s")
			if code != 0 || !strings.Contains(vout, "result: CONSERVED") {
				t.Fatalf("verify: exit %d\n%s\n%s", code, vout, verr)
			}
			code, sout, serr := e.run("status")
			if code != 0 || !strings.Contains(sout, "queue moved to SQS") || !strings.Contains(sout, "jobs:mail") {
				t.Fatalf("status: exit %d\n%s\n%s", code, sout, serr)
			}
			bodies := e.consume("jobs:mail", -1)
			seen := map[string]int{}
			for _, b := range bodies {
				seen[b]++
			}
			for i := 0; i < initial+pushed; i++ {
				if seen[job(i)] == 0 {
					t.Fatalf("job %d is not in SQS (%d messages)", i, len(bodies))
				}
			}
			dups := int64(len(bodies) - (initial + pushed))
			if len(seen) != initial+pushed {
				t.Errorf("%d distinct messages, want %d", len(seen), initial+pushed)
			}
			if tc.fifo && dups != 0 {
				t.Errorf("FIFO queue holds %d duplicates", dups)
			}
			if dups > q.Duplicates {
				t.Errorf("SQS holds %d duplicates, migrate counted %d", dups, q.Duplicates)
			}
			t.Logf("%s: %d items moved while %d were pushed; %d duplicates in SQS, %d counted by migrate", tc.name, initial+pushed, pushed, dups, q.Duplicates)
		})
	}
}

// waitList waits until list is empty on legacy (the mover took
// everything), failing when migrate exits first.
// dualWriteRun is an in-process `redisplit migrate --dual-write --yes -o
// json`, the way the queue tests run the live phase: done receives its
// exit code, out and errb hold its output, stop cancels it (it is also
// cancelled when the test ends).
type dualWriteRun struct {
	out, errb bytes.Buffer
	done      chan int
	stop      context.CancelFunc
}

// startDualWrite starts it on cfg, for at most timeout.
func startDualWrite(t *testing.T, cfg string, timeout time.Duration) *dualWriteRun {
	t.Helper()
	r := &dualWriteRun{done: make(chan int, 1)}
	app := &App{In: strings.NewReader(""), Out: &r.out, Err: &r.errb}
	ctx, stop := context.WithTimeout(context.Background(), timeout)
	r.stop = stop
	t.Cleanup(stop)
	go func() {
		r.done <- Run(ctx, app, []string{"--no-progress", "--config", cfg, "-o", "json", "migrate", "--dual-write", "--yes"})
	}()
	return r
}

func waitList(t *testing.T, c *redis.Client, list string, done chan int, out, errb *bytes.Buffer) {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); c.LLen(context.Background(), list).Val() > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%s still holds %d items after 90s", list, c.LLen(context.Background(), list).Val())
		}
		select {
		case code := <-done:
			t.Fatalf("migrate exited %d\n%s\n%s", code, out.String(), errb.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitStatus waits until status -o json shows want.
func waitStatus(t *testing.T, e *queueEnv, want string) {
	t.Helper()
	var sout string
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(sout, want); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("status never showed %s:\n%s", want, sout)
		}
		_, sout, _ = e.run("status", "-o", "json")
	}
}

// A one-pass migrate moves every item and ends; consumers on SQS take a
// few; verify then finds them missing (exit 3) unless told consumers
// started (exit 0); rollback returns every unconsumed item to the list in
// its original order and reports the consumed ones as consumed.
func TestQueueMigrateThenRollback(t *testing.T) {
	faithful, _ := emulators(t)
	e := newQueueEnv(t, faithful, true, true, "")
	ctx := context.Background()
	const n, consumed = 60, 7
	var want []string // pop order
	for i := 0; i < n; i++ {
		e.legacy.LPush(ctx, "jobs:reports", job(i))
		want = append(want, job(i))
	}
	code, out, errs := e.run("migrate", "--dry-run")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("would move %d items of 1 lists", n)) || !strings.Contains(out, "(created: create_queues)") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errs)
	}
	if l := e.legacy.LLen(ctx, "jobs:reports").Val(); l != n {
		t.Fatalf("the dry run moved items: %d left of %d", l, n)
	}
	code, out, errs = e.run("migrate", "--yes")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("queue: moved %d, parked 0, in flight 0, remaining on legacy 0, duplicates 0", n)) {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, out, errs)
	}
	if l := e.legacy.LLen(ctx, "jobs:reports").Val(); l != 0 {
		t.Fatalf("%d items left on legacy", l)
	}
	code, out, errs = e.run("status")
	if code != 0 || !strings.Contains(out, "queue moved to SQS") || !strings.Contains(out, "copying (backfill done)") {
		t.Fatalf("status: exit %d\n%s\n%s", code, out, errs)
	}
	taken := e.consume("jobs:reports", consumed)
	if len(taken) != consumed {
		t.Fatalf("consumed %d, want %d", len(taken), consumed)
	}
	code, out, errs = e.run("verify", "--queue-settle", "1s")
	if code != 3 || !strings.Contains(out, fmt.Sprintf("%d missing", consumed)) {
		t.Fatalf("verify with consumed messages: exit %d, want 3 naming %d missing\n%s\n%s", code, consumed, out, errs)
	}
	code, out, errs = e.run("verify", "--consumers-started", "-o", "json")
	if code != 0 || !strings.Contains(out, `"conserved": true`) {
		t.Fatalf("verify --consumers-started: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = e.run("rollback", "--dry-run")
	if code != 0 || !strings.Contains(out, "would move back") {
		t.Fatalf("rollback --dry-run: exit %d\n%s\n%s", code, out, errs)
	}
	if l := e.legacy.LLen(ctx, "jobs:reports").Val(); l != 0 {
		t.Fatalf("the dry run moved %d items back", l)
	}
	code, out, errs = e.run("rollback", "--yes", "-o", "json")
	if code != 0 {
		t.Fatalf("rollback: exit %d\n%s\n%s", code, out, errs)
	}
	var rb struct {
		Queues []struct {
			Rollback struct {
				Complete bool `json:"complete"`
				Lists    []struct {
					Pushed   int64 `json:"pushed"`
					Consumed int64 `json:"consumed"`
				} `json:"lists"`
			} `json:"rollback"`
		} `json:"queues"`
	}
	if err := json.Unmarshal([]byte(out), &rb); err != nil || len(rb.Queues) != 1 || len(rb.Queues[0].Rollback.Lists) != 1 {
		t.Fatalf("rollback JSON: %v\n%s", err, out)
	}
	if r := rb.Queues[0].Rollback; !r.Complete || r.Lists[0].Pushed != n-consumed || r.Lists[0].Consumed != consumed {
		t.Fatalf("rollback %+v, want %d pushed back and %d consumed", r, n-consumed, consumed)
	}
	gone := map[string]bool{}
	for _, b := range taken {
		gone[b] = true
	}
	var rest []string
	for _, j := range want {
		if !gone[j] {
			rest = append(rest, j)
		}
	}
	if got := popOrder(t, e.legacy, "jobs:reports"); strings.Join(got, "\n") != strings.Join(rest, "\n") {
		t.Fatalf("after rollback the list pops\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(rest, "\n"))
	}
	if left := e.consume("jobs:reports", -1); len(left) != 0 {
		t.Errorf("SQS still holds %d messages", len(left))
	}
	code, out, errs = e.run("status", "-o", "json")
	if code != 0 || !strings.Contains(out, `"phase": "rolled-back"`) {
		t.Fatalf("status after rollback: exit %d\n%s\n%s", code, out, errs)
	}
}

// Keys of the queue bucket SQS cannot carry (not lists) and a missing
// queue without create_queues are refused before anything moves: exit 4,
// one line naming the bucket and the endpoint.
func TestQueueMigrateRefusals(t *testing.T) {
	faithful, _ := emulators(t)
	ctx := context.Background()
	e := newQueueEnv(t, faithful, false, true, "")
	e.legacy.LPush(ctx, "jobs:a", "x")
	e.legacy.HSet(ctx, "jobs:stats", "done", 1)
	code, out, errs := e.run("migrate", "--yes")
	if code != 4 || !strings.Contains(errs, "bucket queue") || !strings.Contains(errs, faithful.URL) || !strings.Contains(errs, "jobs:stats") ||
		strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("non-list key: exit %d, want 4 with one line naming the bucket, the endpoint and the key\n%s\n%s", code, out, errs)
	}
	if l := e.legacy.LLen(ctx, "jobs:a").Val(); l != 1 {
		t.Fatalf("items moved despite the refusal")
	}

	// a queue that already holds messages redisplit did not move
	e = newQueueEnv(t, faithful, false, true, "")
	e.legacy.LPush(ctx, "jobs:c", "x")
	if code, out, errs = e.run("migrate", "--dry-run"); code != 0 { // creates nothing, refuses nothing: the queue does not exist
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errs)
	}
	svc, err := sqsstore.New(ctx, sqsstore.Options{Endpoint: faithful.URL, Credentials: sqsemu.Credentials})
	if err != nil {
		t.Fatal(err)
	}
	sq, err := svc.Queue(ctx, strings.ReplaceAll(e.queueTpl, "{key}", "jobs-c"), false, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sq.SendBatch(ctx, []sqsstore.Entry{{ID: "1", Body: "sent by a producer"}}); err != nil {
		t.Fatal(err)
	}
	code, out, errs = e.run("migrate", "--yes")
	if code != 4 || !strings.Contains(errs, "already hold messages") || !strings.Contains(errs, faithful.URL) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("non-empty queue: exit %d, want 4 with one line\n%s\n%s", code, out, errs)
	}
	if code, out, errs = e.run("migrate", "--yes", "--allow-nonempty"); code != 0 || e.legacy.LLen(ctx, "jobs:c").Val() != 0 {
		t.Fatalf("--allow-nonempty: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs = e.run("verify", "--producers-switched", "--queue-settle", "1s"); code != 0 {
		t.Fatalf("verify --producers-switched: exit %d\n%s\n%s", code, out, errs)
	}

	// SQS unreachable before anything moved: exit 1, one line naming the
	// bucket and the endpoint
	down := &sqsemu.Emulator{URL: "http://" + freeAddr(t)}
	e = newQueueEnv(t, down, false, true, "")
	e.legacy.LPush(ctx, "jobs:d", "x")
	code, out, errs = e.run("migrate", "--yes")
	if code != 1 || !strings.Contains(errs, "bucket queue") || !strings.Contains(errs, down.URL) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("SQS unreachable: exit %d, want 1 with one line naming the bucket and %s\n%s\n%s", code, down.URL, out, errs)
	}
	if l := e.legacy.LLen(ctx, "jobs:d").Val(); l != 1 {
		t.Fatalf("items moved while SQS was unreachable")
	}

	e = newQueueEnv(t, faithful, false, false, "")
	e.legacy.LPush(ctx, "jobs:b", "x")
	code, out, errs = e.run("migrate", "--yes")
	if code != 4 || !strings.Contains(errs, "bucket queue") || !strings.Contains(errs, faithful.URL) || !strings.Contains(errs, "do not exist") ||
		strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("missing queue: exit %d, want 4 with one line\n%s\n%s", code, out, errs)
	}
}

// SQS unreachable mid-move (its port closed while producers push and the
// mover moves): the list waits with back-off, migrate says so, and
// resumes when SQS answers again; nothing is lost and verify's
// conservation holds.
func TestQueueSQSUnreachable(t *testing.T) {
	emulators(t) // the shared ones first: this test's own is the one taken down
	flaky, err := sqsemu.Start(sqsemu.Options{Faithful: true})
	if err != nil {
		t.Fatal(err)
	}
	defer flaky.Close()
	e := newQueueEnv(t, flaky, true, true, "")
	ctx := context.Background()
	const initial = 200
	for i := 0; i < initial; i++ {
		e.legacy.LPush(ctx, "jobs:mail", job(i))
	}
	m := startDualWrite(t, e.cfg, 2*time.Minute)
	out, errb, done, stop := &m.out, &m.errb, m.done, m.stop
	var produced atomic.Int64
	produced.Store(initial)
	pctx, stopProducer := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() { // the producer, pushing all along
		defer pwg.Done()
		for pctx.Err() == nil {
			if e.legacy.LPush(ctx, "jobs:mail", job(int(produced.Load()))).Err() == nil {
				produced.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	for deadline := time.Now().Add(30 * time.Second); e.legacy.Exists(ctx, "redisplit:moved:jobs:mail").Val() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("nothing moved after 30s\n%s\n%s", out.String(), errb.String())
		}
	}
	flaky.Down()
	time.Sleep(3 * time.Second) // unreachable for a while; no timing is asserted
	if err := flaky.Up(); err != nil {
		t.Fatal(err)
	}
	stopProducer()
	pwg.Wait()
	waitList(t, e.legacy, "jobs:mail", done, out, errb)
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("migrate stopped: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	var res migrate.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	n := produced.Load()
	if q := res.Queue; q == nil || q.Moved != n || q.InFlight != 0 || q.Remaining != 0 || q.Waits == 0 {
		t.Fatalf("queue result %+v, want %d moved, nothing left, waits counted", q, n)
	}
	if !strings.Contains(errb.String(), "is failing") || !strings.Contains(errb.String(), "answers again") {
		t.Errorf("migrate did not report the outage and the recovery:\n%s", errb.String())
	}
	code, vout, verr := e.run("verify", "--queue-settle", "5s")
	if code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", code, vout, verr)
	}
	seen := map[string]bool{}
	for _, b := range e.consume("jobs:mail", -1) {
		seen[b] = true
	}
	for i := 0; i < int(n); i++ {
		if !seen[job(i)] {
			t.Fatalf("job %d of %d is not in SQS", i, n)
		}
	}
	t.Logf("%d items moved across an SQS outage; %d waits (%s waited)", n, res.Queue.Waits, res.Queue.Waited)
}

// The queue bucket moves to SQS beside the copier of the other buckets in
// one migrate; verify reports the cache's parity and the queue's
// conservation in one report (text and JSON) and exits 0.
func TestQueueBesideCopier(t *testing.T) {
	faithful, _ := emulators(t)
	e := newQueueEnv(t, faithful, false, true, "")
	tgt := topotest.Standalone(t)
	b, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), "rules:\n", "rules:\n  - {prefix: \"cache:\", bucket: cache}\n", 1) +
		fmt.Sprintf("  cache: {kind: standalone, url: \"redis://%s\"}\n", tgt.Addr())
	if err := os.WriteFile(e.cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		e.legacy.Set(ctx, fmt.Sprintf("cache:%d", i), "v", 0)
		e.legacy.LPush(ctx, "jobs:a", job(i))
	}
	code, out, errs := e.run("migrate", "--yes", "-o", "json")
	if code != 0 {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, out, errs)
	}
	var res migrate.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if c := res.Bucket("cache"); c.Status != migrate.StatusCopied || c.Total.Copied != 50 {
		t.Errorf("cache: %s, %d copied", c.Status, c.Total.Copied)
	}
	if q := res.Queue; q == nil || q.Moved != 50 || res.Bucket("queue").Status != migrate.StatusCopied {
		t.Errorf("queue: %+v", res.Queue)
	}
	code, out, errs = e.run("verify", "--queue-settle", "5s")
	if code != 0 || !strings.Contains(out, "result: PARITY") || !strings.Contains(out, "conservation") || !strings.Contains(out, "jobs:a") {
		t.Fatalf("verify: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = e.run("verify", "--queue-settle", "5s", "-o", "json")
	var vj struct {
		OK     bool `json:"ok"`
		Queues []struct {
			Bucket    string `json:"bucket"`
			Conserved bool   `json:"conserved"`
		} `json:"queues"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &vj) != nil || !vj.OK || len(vj.Queues) != 1 || !vj.Queues[0].Conserved {
		t.Fatalf("verify -o json: exit %d\n%s\n%s", code, out, errs)
	}
	// both proven: both verified
	if _, out, _ = e.run("status", "-o", "json"); strings.Count(out, `"phase": "verified"`) != 2 {
		t.Fatalf("after verify, want cache and queue verified:\n%s", out)
	}
	// consumers take a message: the queue's conservation fails, the exit is
	// 3, and the queue is no longer verified
	e.consume("jobs:a", 1)
	if code, out, errs = e.run("verify", "--queue-settle", "1s"); code != 3 || !strings.Contains(out, "queue: NOT CONSERVED (exit 3)") {
		t.Fatalf("verify after a consumer took a message: exit %d, want 3\n%s\n%s", code, out, errs)
	}
	if _, out, _ = e.run("status", "-o", "json"); strings.Count(out, `"phase": "verified"`) != 1 || !strings.Contains(out, `"phase": "syncing"`) {
		t.Fatalf("after a failed verify, want the queue back to syncing:\n%s", out)
	}
}

// migrate --dual-write (the built binary) killed with SIGKILL while a
// batch is in flight (SQS unreachable, so the batch cannot leave legacy's
// in-flight list), then a one-pass migrate: the batch is sent first,
// nothing is lost, and the FIFO queue holds every item exactly once.
func TestQueueKilledAndRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	emulators(t)
	flaky, err := sqsemu.Start(sqsemu.Options{Faithful: true})
	if err != nil {
		t.Fatal(err)
	}
	defer flaky.Close()
	e := newQueueEnv(t, flaky, true, true, "")
	bin := filepath.Join(t.TempDir(), "redisplit")
	build := exec.Command("go", "build", "-o", bin, "github.com/redisplit/redisplit")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx := context.Background()
	const n = 300
	for i := 0; i < n; i++ {
		e.legacy.LPush(ctx, "jobs:k", job(i))
	}
	var out bytes.Buffer
	c := exec.Command(bin, "--no-progress", "--config", e.cfg, "migrate", "--dual-write", "--yes")
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill() //nolint:errcheck
	for deadline := time.Now().Add(30 * time.Second); e.legacy.Exists(ctx, "redisplit:moved:jobs:k").Val() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("nothing moved after 30s\n%s", out.String())
		}
	}
	flaky.Down()
	for deadline := time.Now().Add(30 * time.Second); e.legacy.LLen(ctx, "redisplit:inflight:jobs:k").Val() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no batch in flight while SQS is down (list: %d)\n%s", e.legacy.LLen(ctx, "jobs:k").Val(), out.String())
		}
	}
	if err := c.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = c.Wait()
	inflight := e.legacy.LLen(ctx, "redisplit:inflight:jobs:k").Val()
	if err := flaky.Up(); err != nil {
		t.Fatal(err)
	}
	code, mout, merr := e.run("migrate", "--yes", "-o", "json")
	if code != 0 {
		t.Fatalf("rerun: exit %d\n%s\n%s", code, mout, merr)
	}
	for _, k := range []string{"jobs:k", "redisplit:inflight:jobs:k"} {
		if l := e.legacy.LLen(ctx, k).Val(); l != 0 {
			t.Fatalf("%s holds %d items after the rerun", k, l)
		}
	}
	if code, vout, verr := e.run("verify", "--queue-settle", "5s"); code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", code, vout, verr)
	}
	seen := map[string]int{}
	for _, b := range e.consume("jobs:k", -1) {
		seen[b]++
	}
	for i := 0; i < n; i++ {
		if seen[job(i)] != 1 {
			t.Fatalf("job %d is %d times in the FIFO queue", i, seen[job(i)])
		}
	}
	t.Logf("killed with %d items in flight; after the rerun every one of %d items is in SQS once", inflight, n)
}
