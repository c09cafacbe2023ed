package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redisplit/redisplit/migrate"
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
	var out, errb bytes.Buffer
	app := &App{In: strings.NewReader(""), Out: &out, Err: &errb}
	mctx, stop := context.WithTimeout(ctx, 3*time.Minute)
	defer stop()
	done := make(chan int, 1)
	go func() {
		done <- Run(mctx, app, []string{"--no-progress", "--config", e.cfg, "-o", "json", "migrate", "--dual-write", "--yes"})
	}()
	waitList(t, e.legacy, "jobs:billing", done, &out, &errb)
	waitStatus(t, e, `"phase": "syncing"`)

	if code, o, er := e.run("complete", "--bucket", "queue", "--yes"); code != 4 || !strings.Contains(er, "cutover --bucket queue") {
		t.Fatalf("complete before cutover: exit %d, want 4 asking for cutover first\n%s\n%s", code, o, er)
	}
	if code, o, er := e.run("cutover", "--bucket", "queue", "--consumers-stopped", "--yes"); code != 0 || !strings.Contains(o, "producers switched") {
		t.Fatalf("cutover: exit %d\n%s\n%s", code, o, er)
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
