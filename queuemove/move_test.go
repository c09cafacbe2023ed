package queuemove

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redisplit/redisplit/store/sqsstore"
)

// A producer keeps pushing while the mover moves (the live phase), on a
// standard and a FIFO queue, through the SDK's SendMessageBatch path:
// every produced item ends up in SQS exactly once (nothing was re-sent),
// nothing remains on legacy, conservation holds; FIFO keeps the order.
func TestMoveUnderLoad(t *testing.T) {
	for _, fifo := range []bool{false, true} {
		t.Run(fmt.Sprintf("fifo=%v", fifo), func(t *testing.T) {
			ctx := ctxT(t)
			list := fmt.Sprintf("jobs:load:%v", fifo)
			e := newEnv(t, faithful, fifo, list)
			e.rdb.Del(ctx, list)
			const initial, pushed = 150, 250
			var produced []string
			for i := range initial {
				produced = append(produced, fmt.Sprintf(`{"job":%d}`, i))
				e.rdb.LPush(ctx, list, produced[i])
			}
			runCtx, stop := context.WithCancel(ctx)
			var res *Result
			var runErr error
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, runErr = Run(runCtx, e.opts())
			}()
			for i := initial; i < initial+pushed; i++ {
				produced = append(produced, fmt.Sprintf(`{"job":%d}`, i))
				if err := e.rdb.LPush(ctx, list, produced[i]).Err(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Millisecond)
			}
			waitFor(t, "the list and its in-flight list to empty", time.Minute, func() bool {
				n, _ := e.rdb.LLen(ctx, list).Result()
				f, _ := e.rdb.LLen(ctx, InflightPrefix+list).Result()
				return n == 0 && f == 0
			})
			stop()
			wg.Wait()
			if runErr != nil {
				t.Fatal(runErr)
			}
			q := res.Queues[0]
			if !res.Stopped || q.Moved != initial+pushed || q.MovedRun != initial+pushed || q.Parked != 0 || q.InFlight != 0 || q.Remaining != 0 || q.Resent != 0 {
				t.Fatalf("result %#v", res)
			}
			if q.Rate <= 0 {
				t.Errorf("rate %v", q.Rate)
			}
			// status reads what the mover last wrote
			snap, ok, err := ReadStatus(e.cfg.State, "queue")
			if err != nil || !ok || len(snap.Queues) != 1 || snap.Queues[0].Moved != initial+pushed || snap.Queues[0].Key != list || snap.Epoch != res.Epoch {
				t.Fatalf("status %#v %v %v", snap, ok, err)
			}
			v, err := Verify(ctx, VerifyOptions{Config: e.cfg, Settle: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			lc, qc := v.Lists[0], v.Queues[0]
			// Initial is the length when Run started: the producer was already pushing
			if !v.Conserved || lc.Initial < initial || lc.Initial+lc.Pushed != initial+pushed || lc.Moved != initial+pushed ||
				qc.Counts.Total() != initial+pushed || qc.Extra != 0 {
				t.Fatalf("verify %#v %#v", lc, qc)
			}
			msgs := e.drainSQS(list)
			var got []string
			for _, m := range msgs {
				got = append(got, m.Body)
			}
			if fifo {
				if !slices.Equal(got, produced) {
					t.Fatalf("FIFO order: got %d messages, first %.80q, want %d in production order", len(got), got, len(produced))
				}
				return
			}
			slices.Sort(got)
			want := slices.Clone(produced)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("got %d messages, want each of the %d produced once", len(got), len(want))
			}
		})
	}
}

// goaws's own SendMessageBatch answers without Successful or Failed: the
// store notices, sends the unreported entries again one by one and from
// then on sends one message per call. Every item arrives; the first
// batch's entries may be there twice on a standard queue, and are counted
// as re-sent, which verify accepts as the explanation.
func TestRawEmulatorBatchFallback(t *testing.T) {
	ctx := ctxT(t)
	list := "jobs:raw"
	e := newEnv(t, raw, false, list)
	e.rdb.Del(ctx, list)
	var produced []string
	for i := range 45 {
		produced = append(produced, fmt.Sprintf("job-%d", i))
		e.rdb.LPush(ctx, list, produced[i])
	}
	o := e.opts()
	o.Drain = true
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	q := res.Queues[0]
	if q.Moved != 45 || q.Resent != 10 || q.Remaining != 0 {
		t.Fatalf("result %#v", q)
	}
	v, err := Verify(ctx, VerifyOptions{Config: e.cfg, Settle: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Conserved || v.Queues[0].Extra != 10 || !v.Queues[0].Explained {
		t.Fatalf("verify %#v", v)
	}
	count := map[string]int{}
	for _, m := range e.drainSQS(list) {
		count[m.Body]++
	}
	dups := 0
	for _, p := range produced {
		if count[p] == 0 {
			t.Fatalf("%s never arrived", p)
		}
		dups += count[p] - 1
	}
	if dups != 10 {
		t.Fatalf("%d duplicates, want the 10 re-sent entries of the first batch", dups)
	}
}

// A crash (the mover stops dead) at every step between the LMOVE and the
// removal from flight, then a restart: nothing is lost; FIFO holds every
// item exactly once (the re-send carries the same deduplication id), a
// standard queue at least once, with at most Resent duplicates.
func TestCrashMidMove(t *testing.T) {
	errCrash := fmt.Errorf("simulated crash")
	for _, fifo := range []bool{false, true} {
		for _, stage := range []string{"taken", "journaled", "sent", "recorded"} {
			t.Run(fmt.Sprintf("fifo=%v/%s", fifo, stage), func(t *testing.T) {
				ctx := ctxT(t)
				list := fmt.Sprintf("jobs:crash:%v:%s", fifo, stage)
				e := newEnv(t, faithful, fifo, list)
				e.rdb.Del(ctx, list)
				var produced []string
				for i := range 35 {
					produced = append(produced, fmt.Sprintf("job-%d", i))
					e.rdb.LPush(ctx, list, produced[i])
				}
				o := e.opts()
				o.Drain = true
				batches := 0
				o.hook = func(s, _ string) error {
					if s == "taken" {
						batches++
					}
					if s == stage && batches == 2 {
						return errCrash
					}
					return nil
				}
				if _, err := Run(ctx, o); err == nil || !strings.Contains(err.Error(), "simulated crash") {
					t.Fatalf("run: %v", err)
				}
				if n, _ := e.rdb.LLen(ctx, InflightPrefix+list).Result(); n != 10 {
					t.Fatalf("%d items in flight after the crash, want the batch of 10", n)
				}
				o.hook = nil
				res, err := Run(ctx, o)
				if err != nil {
					t.Fatal(err)
				}
				q := res.Queues[0]
				if q.Moved != 35 || q.InFlight != 0 || q.Remaining != 0 || q.Anomalies != 0 {
					t.Fatalf("after restart %#v", q)
				}
				wantResent := int64(0)
				if stage == "journaled" || stage == "sent" {
					wantResent = 10 // journaled, outcome unknown: sent again
				}
				if q.Resent != wantResent {
					t.Fatalf("resent %d, want %d", q.Resent, wantResent)
				}
				v, err := Verify(ctx, VerifyOptions{Config: e.cfg, Settle: 5 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				if !v.Conserved {
					t.Fatalf("verify %#v", v)
				}
				count := map[string]int{}
				n := 0
				for _, m := range e.drainSQS(list) {
					count[m.Body]++
					n++
				}
				for _, p := range produced {
					if count[p] == 0 {
						t.Fatalf("%s lost", p)
					}
					if fifo && count[p] != 1 {
						t.Fatalf("%s %d times in a FIFO queue", p, count[p])
					}
				}
				if extra := int64(n - len(produced)); extra != v.Queues[0].Extra || extra > q.Resent {
					t.Fatalf("%d duplicates, verify says %d extra, %d re-sent", extra, v.Queues[0].Extra, q.Resent)
				}
				if !fifo && stage == "sent" && n != len(produced)+10 {
					t.Fatalf("standard queue: %d messages, want the 10 acknowledged ones twice", n)
				}
			})
		}
	}
}

// Several lists move in parallel, each to its own queue; two lists whose
// names map to one queue are refused before anything moves.
func TestLists(t *testing.T) {
	ctx := ctxT(t)
	lists := []string{"jobs:multi:a", "jobs:multi:b", "jobs:multi:c"}
	e := newEnv(t, faithful, false, lists...)
	for i, l := range lists {
		e.rdb.Del(ctx, l)
		for j := range 15 + i {
			e.rdb.LPush(ctx, l, fmt.Sprintf("%s/%d", l, j))
		}
	}
	o := e.opts()
	o.Drain = true
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range lists {
		if q := res.Queues[i]; q.Key != l || q.Moved != int64(15+i) {
			t.Fatalf("%s: %#v", l, q)
		}
		got := e.drainSQS(l)
		if len(got) != 15+i {
			t.Fatalf("%s: %d messages", l, len(got))
		}
		for _, m := range got {
			if !strings.HasPrefix(m.Body, l+"/") {
				t.Fatalf("%s's queue holds %q", l, m.Body)
			}
		}
	}
	e.rdb.LPush(ctx, "jobs:multi.a", "x")
	o.Lists = []string{"jobs:multi:a", "jobs:multi.a"}
	if _, err := Run(ctx, o); err == nil || !strings.Contains(err.Error(), "both map to queue") {
		t.Fatalf("collision: %v", err)
	}
	if n := e.rdb.LLen(ctx, "jobs:multi.a").Val(); n != 1 {
		t.Fatalf("moved despite the refusal: %d left", n)
	}
}

// A batch the service refuses as a whole (longer than 256 KiB in total) is
// sent again entry by entry, and each entry gets its own outcome.
func TestBatchRefusedAsAWhole(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, faithful, false, "jobs:whole")
	q := e.queue("jobs:whole")
	big := strings.Repeat("y", 200<<10)
	outs, err := q.SendBatch(ctx, []sqsstore.Entry{{ID: "1", Body: big}, {ID: "2", Body: big}, {ID: "3", Body: "small"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outs {
		if o.Err != nil || o.MessageID == "" || o.Unreported {
			t.Fatalf("entry %d: %#v", i, o)
		}
	}
	if got := e.drainSQS("jobs:whole"); len(got) != 3 {
		t.Fatalf("%d messages", len(got))
	}
}
