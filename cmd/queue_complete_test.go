package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redisplit/redisplit/migrate"
	"github.com/redisplit/redisplit/topology/topotest"
)

// The end of the live move to SQS, through the running migrate's control
// channel (the queue bucket alone: the mover serves it): complete refuses
// before cutover; cutover records that producers switched; complete
// refuses while items keep reaching legacy, then drains the rest and ends
// the mover, and migrate --dual-write ends by itself with exit 0; status
// shows the bucket completed; verify's conservation holds; every item is
// in SQS.
func TestQueueCutoverCompleteSQS(t *testing.T) {
	faithful, _ := emulators(t)
	e := newQueueEnv(t, faithful, false, true, "")
	ctx := context.Background()
	const initial = 80
	for i := 0; i < initial; i++ {
		e.legacy.LPush(ctx, "jobs:billing", job(i))
	}
	m := startDualWrite(t, e.cfg, 3*time.Minute)
	out, errb, done := &m.out, &m.errb, m.done
	waitList(t, e.legacy, "jobs:billing", done, out, errb)
	waitStatus(t, e, `"phase": "syncing"`)

	if code, o, er := e.run("complete", "--bucket", "queue", "--yes"); code != 4 || !strings.Contains(er, "cutover --bucket queue") {
		t.Fatalf("complete before cutover: exit %d, want 4 asking for cutover first\n%s\n%s", code, o, er)
	}
	// a Sidekiq process still beating on legacy: on SQS the cutover does
	// not refuse for it (the mover takes each item once; that worker runs
	// what it pops first, once)
	e.legacy.SAdd(ctx, "processes", "web-1:7:def")
	e.legacy.HSet(ctx, "web-1:7:def", "beat", strconv.FormatFloat(float64(time.Now().UnixNano())/1e9, 'f', 3, 64))
	if code, o, er := e.run("cutover", "--bucket", "queue", "--yes"); code != 0 || !strings.Contains(o, "producers switched") {
		t.Fatalf("cutover with a legacy worker alive: exit %d\n%s\n%s", code, o, er)
	}
	waitStatus(t, e, `"phase": "cutover"`)

	// a producer not switched yet keeps pushing to legacy: complete refuses
	var pushed atomic.Int64
	pushed.Store(initial)
	pctx, stopProducer := context.WithCancel(ctx)
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for pctx.Err() == nil {
			e.legacy.LPush(ctx, "jobs:billing", job(int(pushed.Add(1)-1)))
			time.Sleep(100 * time.Millisecond)
		}
	}()
	code, o, er := e.run("complete", "--bucket", "queue", "--quiet", "700ms", "--timeout", "3s", "--yes")
	stopProducer()
	<-produced
	if code != 4 || !strings.Contains(er, "keep reaching legacy") {
		t.Fatalf("complete while a producer pushes to legacy: exit %d, want 4\n%s\n%s", code, o, er)
	}
	select {
	case c := <-done:
		t.Fatalf("migrate exited %d after a refused complete\n%s\n%s", c, out.String(), errb.String())
	default:
	}

	code, o, er = e.run("complete", "--bucket", "queue", "--quiet", "700ms", "--yes", "-o", "json")
	if code != 0 {
		t.Fatalf("complete: exit %d\n%s\n%s", code, o, er)
	}
	var resp migrate.ControlResponse
	var d migrate.QueueDetails
	if err := json.Unmarshal([]byte(o), &resp); err != nil || json.Unmarshal(resp.Details, &d) != nil {
		t.Fatalf("complete's answer: %v\n%s", err, o)
	}
	total := pushed.Load()
	if !d.Drained || d.Moved != total || d.Remaining != 0 || d.InFlight != 0 {
		t.Fatalf("complete's figures %+v, want %d moved, drained", d, total)
	}
	select {
	case c := <-done:
		if c != 0 {
			t.Fatalf("migrate ended with exit %d after complete\n%s\n%s", c, out.String(), errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("migrate --dual-write still runs 15 s after complete of its only bucket\n%s", errb.String())
	}
	var res migrate.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if b := res.Bucket("queue"); b.Status != "completed" || res.Queue.Moved != total {
		t.Errorf("migrate's result: queue %s, %d moved; want completed, %d", b.Status, res.Queue.Moved, total)
	}
	code, so, se := e.run("status")
	if code != 0 || !strings.Contains(so, "completed") {
		t.Fatalf("status after complete: exit %d, want the bucket completed\n%s\n%s", code, so, se)
	}
	if code, vo, ve := e.run("verify", "--queue-settle", "5s"); code != 0 || !strings.Contains(vo, "result: CONSERVED") {
		t.Fatalf("verify after complete: exit %d\n%s\n%s", code, vo, ve)
	}
	seen := map[string]bool{}
	for _, b := range e.consume("jobs:billing", -1) {
		seen[b] = true
	}
	for i := 0; i < int(total); i++ {
		if !seen[job(i)] {
			t.Fatalf("job %d of %d is not in SQS", i, total)
		}
	}
}

// With a mirrored Redis bucket beside the queue on SQS, the live phase
// serves the control channel: completing the Redis bucket does not end
// migrate --dual-write while the queue's mover still runs; completing the
// queue then ends it by itself, with exit 0.
func TestQueueCompleteEndsTheLivePhaseLast(t *testing.T) {
	faithful, _ := emulators(t)
	sqsTestEnv(t)
	leg := topotest.Standalone(t)
	tgt := topotest.Standalone(t, "--maxmemory-policy", "allkeys-lru")
	legacy := topotest.Client(t, leg.Addr())
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		legacy.Set(ctx, fmt.Sprintf("cache:item:%d", i), i, 0)
		legacy.LPush(ctx, "jobs:resize", job(i))
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "redisplit.yaml")
	y := fmt.Sprintf(`legacy: {url: "redis://%s"}
state_dir: %q
unknown: skip
presets: {none: true}
rules:
  - {prefix: "jobs:", bucket: queue}
  - {prefix: "cache:", bucket: cache}
targets:
  cache: {kind: standalone, url: "redis://%s/0"}
  queue: {kind: sqs, region: us-east-1, endpoint: %q, queue_name: %q, create_queues: true}
`, leg.Addr(), filepath.Join(dir, "state"), tgt.Addr(), faithful.URL, sqsTestName())
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, append([]string{"--config", cfg}, args...)...)
	}
	m := startDualWrite(t, cfg, 3*time.Minute)
	out, errb, done := &m.out, &m.errb, m.done
	waitList(t, legacy, "jobs:resize", done, out, errb)
	if code, o, e := run("status", "--wait-caught-up", "--timeout", "60s"); code != 0 {
		t.Fatalf("status --wait-caught-up: exit %d\n%s\n%s", code, o, e)
	}
	if code, o, e := run("verify", "--bucket", "cache"); code != 0 {
		t.Fatalf("verify cache: exit %d\n%s\n%s", code, o, e)
	}
	for _, args := range [][]string{
		{"cutover", "--bucket", "cache", "--yes"},
		{"complete", "--bucket", "cache", "--quiet", "300ms", "--yes"},
	} {
		if code, o, e := run(args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, o, e)
		}
	}
	select {
	case c := <-done:
		t.Fatalf("migrate ended (exit %d) with the queue's move still running\n%s", c, errb.String())
	case <-time.After(2 * time.Second):
	}
	for _, args := range [][]string{
		{"cutover", "--bucket", "queue", "--yes"},
		{"complete", "--bucket", "queue", "--quiet", "300ms", "--yes"},
	} {
		if code, o, e := run(args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, o, e)
		}
	}
	select {
	case c := <-done:
		if c != 0 {
			t.Fatalf("migrate ended with exit %d\n%s\n%s", c, out.String(), errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("migrate --dual-write still runs 15 s after every bucket completed\n%s", errb.String())
	}
	var res migrate.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if q := res.Bucket("queue"); q.Status != "completed" || res.Queue.Moved != 50 {
		t.Errorf("queue: %s, %d moved; want completed, 50", q.Status, res.Queue.Moved)
	}
	if code, so, _ := run("status"); code != 0 || strings.Count(so, "completed") < 2 {
		t.Errorf("status after both completes: exit %d\n%s", code, so)
	}
}
