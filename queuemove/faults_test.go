package queuemove

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/store/sqsstore/sqsemu"
)

// SQS unreachable mid-move (its port refuses connections): the list waits
// with back-off, the progress says so, and when SQS is back the move
// resumes: nothing lost, nothing twice.
func TestSQSUnreachable(t *testing.T) {
	ctx := ctxT(t)
	emu, err := sqsemu.Start(sqsemu.Options{Faithful: true})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	list := "jobs:outage"
	e := newEnv(t, emu, true, list)
	e.rdb.Del(ctx, list)
	o := e.opts()
	var sawWaiting atomic.Bool
	o.Progress = func(s Snapshot) {
		if s.Queues[0].Waiting && s.Queues[0].LastError != "" {
			sawWaiting.Store(true)
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	var res *Result
	var runErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); res, runErr = Run(runCtx, o) }()
	var produced []string
	push := func(n int) {
		for range n {
			p := fmt.Sprintf("job-%d", len(produced))
			produced = append(produced, p)
			e.rdb.LPush(ctx, list, p)
			time.Sleep(time.Millisecond)
		}
	}
	push(50)
	waitFor(t, "the first items to move", 30*time.Second, func() bool { n, _ := e.rdb.LLen(ctx, list).Result(); return n == 0 })
	emu.Down()
	push(50) // taken into flight, cannot be sent
	waitFor(t, "the mover to report that it waits", 30*time.Second, sawWaiting.Load)
	time.Sleep(2 * time.Second)
	if n, _ := e.rdb.LLen(ctx, InflightPrefix+list).Result(); n == 0 {
		t.Fatal("nothing in flight while SQS is down")
	}
	if err := emu.Up(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the move to resume and drain", time.Minute, func() bool {
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
	if q.Moved != 100 || q.Waits < 1 || q.Waited < time.Second || q.Waiting {
		t.Fatalf("result %#v", q)
	}
	v, err := Verify(ctx, VerifyOptions{Config: e.cfg, Settle: 5 * time.Second})
	if err != nil || !v.Conserved {
		t.Fatalf("verify %#v %v", v, err)
	}
	var got []string
	for _, m := range e.drainSQS(list) {
		got = append(got, m.Body)
	}
	if !slices.Equal(got, produced) {
		t.Fatalf("got %d messages, want the %d produced, in order, once each", len(got), len(produced))
	}
}

// Items SQS cannot take are parked on legacy, counted and sampled, never
// dropped: too large, not UTF-8, empty (found before sending), and one the
// service rejects (a Failed entry with SenderFault). The others move, in
// order, and conservation counts the parked ones.
func TestParked(t *testing.T) {
	ctx := ctxT(t)
	list := "jobs:parked"
	e := newEnv(t, faithful, false, list)
	e.rdb.Del(ctx, list, ParkedPrefix+list)
	reject := func(body string) string {
		if body == "poison" {
			return "InvalidMessageContents"
		}
		return ""
	}
	rejectFn.Store(&reject)
	defer rejectFn.Store(nil)
	big := strings.Repeat("x", 300<<10)
	items := []string{"a", big, "b", "\xff\xfebinary", "c", "", "poison", "d"}
	for _, it := range items {
		e.rdb.LPush(ctx, list, it)
	}
	o := e.opts()
	o.Drain = true
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	q := res.Queues[0]
	if q.Moved != 4 || q.Parked != 4 || q.ParkedRun != 4 || len(q.ParkedSample) != 3 {
		t.Fatalf("result %#v", q)
	}
	for i, want := range []string{"too large: 307220 bytes with attributes; queue", "not text: byte 0xff at offset 0", "empty"} {
		if !strings.Contains(q.ParkedSample[i].Reason, want) {
			t.Errorf("sample %d: %#v, want %q", i, q.ParkedSample[i], want)
		}
	}
	parked, _ := e.rdb.LRange(ctx, ParkedPrefix+list, 0, -1).Result()
	slices.Reverse(parked) // oldest rightmost
	if !slices.Equal(parked, []string{big, "\xff\xfebinary", "", "poison"}) {
		t.Fatalf("parked list %.60q", parked)
	}
	v, err := Verify(ctx, VerifyOptions{Config: e.cfg, Settle: 5 * time.Second})
	if err != nil || !v.Conserved || v.Lists[0].Parked != 4 || v.Lists[0].Moved != 4 || v.Lists[0].Initial != 8 {
		t.Fatalf("verify %#v %v", v, err)
	}
	var got []string
	for _, m := range e.drainSQS(list) {
		got = append(got, m.Body)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("SQS holds %q", got)
	}
}

// Rollback returns every unconsumed item to the list in its original order,
// at the consumers' end (before what producers pushed to legacy since),
// parked and in-flight items included; what consumers took from SQS is
// reported as consumed.
func TestRollback(t *testing.T) {
	for _, fifo := range []bool{false, true} {
		t.Run(fmt.Sprintf("fifo=%v", fifo), func(t *testing.T) {
			ctx := ctxT(t)
			list := fmt.Sprintf("jobs:rollback:%v", fifo)
			e := newEnv(t, faithful, fifo, list)
			e.rdb.Del(ctx, list, ParkedPrefix+list)
			var produced []string
			for i := range 60 {
				p := fmt.Sprintf("job-%d", i)
				if i == 17 {
					p = strings.Repeat("z", 300<<10) // parked
				}
				produced = append(produced, p)
				e.rdb.LPush(ctx, list, p)
			}
			o := e.opts()
			o.Drain = true
			// crash once with a batch in flight (acknowledged, not removed)
			o.hook = func(s, _ string) error {
				if s == "sent" && e.rdb.LLen(ctx, list).Val() < 30 {
					return fmt.Errorf("simulated crash")
				}
				return nil
			}
			if _, err := Run(ctx, o); err == nil {
				t.Fatal("no crash")
			}
			// a consumer on SQS takes 5 jobs
			q := e.queue(list)
			consumed := map[string]bool{}
			for len(consumed) < 5 {
				msgs, err := q.Receive(ctx, 5-len(consumed), time.Second, 30*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				var rs []string
				for _, m := range msgs {
					consumed[m.Body] = true
					rs = append(rs, m.ReceiptHandle)
				}
				if err := q.Delete(ctx, rs); err != nil {
					t.Fatal(err)
				}
			}
			// producers went back to legacy meanwhile
			for _, p := range []string{"new-1", "new-2"} {
				e.rdb.LPush(ctx, list, p)
			}
			rb, err := Rollback(ctx, RollbackOptions{Config: e.cfg, Wait: time.Second, MaxWait: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			lr := rb.Lists[0]
			// the crash left 10 in flight, acknowledged: SQS holds them too (duplicates)
			if !rb.Complete || lr.Consumed != 5 || lr.FromParked != 1 || lr.FromInFlight != 10 || lr.Duplicates != 10 || lr.Foreign != 0 ||
				lr.Pushed != lr.FromSQS+lr.FromInFlight+lr.FromParked {
				t.Fatalf("rollback %#v", lr)
			}
			got, _ := e.rdb.LRange(ctx, list, 0, -1).Result()
			slices.Reverse(got) // in pop order (BRPOP takes the rightmost first)
			var want []string
			for _, p := range produced {
				if !consumed[p] {
					want = append(want, p)
				}
			}
			want = append(want, "new-1", "new-2")
			if !slices.Equal(got, want) {
				t.Fatalf("list after rollback (pop order) %.200q\nwant %.200q", got, want)
			}
			for _, k := range []string{InflightPrefix + list, ParkedPrefix + list, stagePrefix + list, movedPrefix + list} {
				if n, _ := e.rdb.Exists(ctx, k).Result(); n != 0 {
					t.Errorf("%s left behind", k)
				}
			}
			if c, _ := q.Counts(ctx); c.Total() != 0 {
				t.Errorf("queue still holds %#v", c)
			}
		})
	}
}

// Delayed jobs: due within 900 s they go to a standard queue with
// DelaySeconds (on FIFO only when due); later ones stay in the set and are
// reported. Rollback puts them back with their scores.
func TestDelayed(t *testing.T) {
	ctx := ctxT(t)
	list := "jobs:delayed"
	e := newEnv(t, faithful, false, list)
	e.cfg.Target.DelayedSet = "{key}:later"
	zkey := list + ":later"
	e.rdb.Del(ctx, list, zkey)
	now := time.Now()
	at := func(d time.Duration) float64 { return float64(now.Add(d).Unix()) }
	jobs := []redis.Z{{Score: at(-10 * time.Second), Member: "due"}, {Score: at(3 * time.Second), Member: "soon"},
		{Score: at(2000 * time.Second), Member: "later"}}
	e.rdb.ZAdd(ctx, zkey, jobs...)
	e.rdb.LPush(ctx, list, "plain")
	o := e.opts()
	o.Drain = true
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var dq QueueResult
	for _, q := range res.Queues {
		if q.Kind == "delayed" {
			dq = q
		}
	}
	if dq.Moved != 2 || dq.Remaining != 1 || dq.Later != 1 || dq.NextDue.Unix() != int64(at(2000*time.Second)) {
		t.Fatalf("delayed %#v", dq)
	}
	c, err := e.queue(list).Counts(ctx)
	if err != nil || c.Visible != 2 || c.Delayed != 1 {
		t.Fatalf("counts %#v %v (want plain and due visible, soon delayed)", c, err)
	}
	v, err := Verify(ctx, VerifyOptions{Config: e.cfg, Settle: 5 * time.Second})
	if err != nil || !v.Conserved || len(v.Lists) != 2 || v.Queues[0].Moved != 3 {
		t.Fatalf("verify %#v %v", v, err)
	}
	rb, err := Rollback(ctx, RollbackOptions{Config: e.cfg, Wait: time.Second, MaxWait: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if lr := rb.Lists[0]; !rb.Complete || lr.Delayed != 2 || lr.Pushed != 1 || lr.Consumed != 0 {
		t.Fatalf("rollback %#v", lr)
	}
	back, _ := e.rdb.ZRangeWithScores(ctx, zkey, 0, -1).Result()
	if len(back) != 3 {
		t.Fatalf("delayed set after rollback %#v", back)
	}
	for i, z := range back {
		if z.Member != jobs[i].Member || z.Score != jobs[i].Score {
			t.Fatalf("delayed set after rollback %#v, want %#v", back, jobs)
		}
	}
}

// Verify fails when the counts do not balance: messages gone from SQS
// while nothing consumed them, an item gone from legacy's in-flight list
// (the list then also holds fewer items than it started with).
func TestVerifyDetectsLoss(t *testing.T) {
	ctx := ctxT(t)
	list := "jobs:loss"
	e := newEnv(t, faithful, false, list)
	e.rdb.Del(ctx, list, ParkedPrefix+list)
	for i := range 30 {
		e.rdb.LPush(ctx, list, fmt.Sprintf("job-%d", i))
	}
	e.rdb.LPush(ctx, list, "")
	o := e.opts()
	o.Drain = true
	o.hook = func(s, _ string) error {
		if s == "journaled" && e.rdb.LLen(ctx, list).Val() == 0 {
			return fmt.Errorf("simulated crash")
		}
		return nil
	}
	if _, err := Run(ctx, o); err == nil {
		t.Fatal("no crash")
	}
	v, err := Verify(ctx, VerifyOptions{Config: e.cfg, Settle: time.Second})
	if err != nil || !v.Conserved || v.Lists[0].Open != 1 || v.Lists[0].InFlight != 1 {
		t.Fatalf("before the losses: %#v %v", v, err)
	}
	q := e.queue(list)
	msgs, err := q.Receive(ctx, 2, time.Second, 30*time.Second)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("receive %v %v", msgs, err)
	}
	if err := q.Delete(ctx, []string{msgs[0].ReceiptHandle, msgs[1].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	e.rdb.Del(ctx, InflightPrefix+list, ParkedPrefix+list)
	v, err = Verify(ctx, VerifyOptions{Config: e.cfg, Settle: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	lc, qc := v.Lists[0], v.Queues[0]
	if v.Conserved || lc.Conserved || len(lc.Problems) != 2 || qc.Missing != 2 || len(qc.Problems) != 1 {
		t.Fatalf("after the losses: %#v", v)
	}
	// consumers started on SQS: the counts prove nothing, the journal speaks
	v, err = Verify(ctx, VerifyOptions{Config: e.cfg, ConsumersStarted: true})
	if err != nil || v.Queues[0].Checked != "journal" || v.Queues[0].Missing != 0 {
		t.Fatalf("consumers started: %#v %v", v, err)
	}
}

// The legacy user of docs/permissions.md ("Queues moved to SQS") is enough
// for the move, verify and rollback, delayed jobs included.
func TestLeastPrivilege(t *testing.T) {
	ctx := ctxT(t)
	admin := redis.NewClient(&redis.Options{Addr: legacy.Addr(), DisableIdentity: true})
	defer admin.Close()
	rule := "on >pw resetkeys ~acljobs:* ~redisplit:* resetchannels -@all +lmove +lrange +llen +lrem +lpush +rpush +set +get +del +multi +exec +watch +zrangebyscore +zrem +zcard +zcount +zadd +zrevrange +zrange +ping +hello +auth +select"
	if err := admin.Do(ctx, append([]any{"ACL", "SETUSER", "redisplit-queue"}, toAny(strings.Fields(rule))...)...).Err(); err != nil {
		t.Fatal(err)
	}
	defer admin.Do(ctx, "ACL", "DELUSER", "redisplit-queue")
	list := "acljobs:mail"
	e := newEnv(t, faithful, false, list)
	e.cfg.Target.DelayedSet = "{key}:later"
	e.cfg.Legacy = redis.NewClient(&redis.Options{Addr: legacy.Addr(), Username: "redisplit-queue", Password: "pw", DisableIdentity: true})
	defer e.cfg.Legacy.Close()
	admin.Del(ctx, list, list+":later")
	for i := range 25 {
		admin.LPush(ctx, list, fmt.Sprintf("job-%d", i))
	}
	admin.LPush(ctx, list, "")
	admin.ZAdd(ctx, list+":later", redis.Z{Score: float64(time.Now().Unix() - 1), Member: "due"}, redis.Z{Score: float64(time.Now().Unix() + 5000), Member: "later"})
	o := e.opts()
	o.Drain = true
	if _, err := Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	if v, err := Verify(ctx, VerifyOptions{Config: e.cfg, Settle: 5 * time.Second}); err != nil || !v.Conserved {
		t.Fatalf("verify %#v %v", v, err)
	}
	rb, err := Rollback(ctx, RollbackOptions{Config: e.cfg, Wait: time.Second, MaxWait: 10 * time.Second})
	if err != nil || !rb.Complete {
		t.Fatalf("rollback %#v %v", rb, err)
	}
	if n := admin.LLen(ctx, list).Val(); n != 26 {
		t.Fatalf("%d items back, want 26", n)
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}
