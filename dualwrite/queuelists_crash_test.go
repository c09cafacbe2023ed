package dualwrite

import (
	"errors"
	"fmt"
	"maps"
	"testing"

	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
	"github.com/redisplit/redisplit/topology/topotest"
)

// A migrate that dies at any save of the merge bases (contract 6) loses no
// job: the merge stops where a save fails (the process died there: nothing
// after it happens), producers push to legacy and the consumer pops the
// target meanwhile, and a new QueueLists started from the last bases saved
// forwards every job the target never had. A job that ends on the target
// twice is among the duplicates it reports.
func TestQueueListsCrashAtEverySave(t *testing.T) {
	ctx := ctxT(t)
	_, lc := legacy(t)
	ts := topotest.Standalone(t)
	tc := client(t, ts.Addr(), "", "", 0)
	locks := &KeyLocks{}
	for _, lpush := range []bool{true, false} {
		for crashAt := 1; crashAt <= 6; crashAt++ {
			key := fmt.Sprintf("jobs:crash:%v:%d", lpush, crashAt)
			push := func(v string) {
				if lpush {
					lc.LPush(ctx, key, v)
				} else {
					lc.RPush(ctx, key, v)
				}
			}
			popped := map[string]int{}
			pop := func() { // the target's consumer, at the other end
				var v string
				var err error
				if lpush {
					v, err = tc.RPop(ctx, key).Result()
				} else {
					v, err = tc.LPop(ctx, key).Result()
				}
				if err != nil {
					t.Fatalf("%s: pop on the target: %v", key, err)
				}
				popped[v]++
			}
			produced := []string{}
			for i := range 5 { // the backlog both sides hold at cutover
				v := fmt.Sprintf("old-%d", i)
				push(v)
				produced = append(produced, v)
			}
			tc.Del(ctx, key)
			for _, v := range lc.LRange(ctx, key, 0, -1).Val() {
				tc.RPush(ctx, key, v)
			}
			var saved map[string]state.QueueBase
			saves := 0
			q1 := &QueueLists{Legacy: lc, Target: tc, Persist: func(m map[string]state.QueueBase) error {
				saves++
				if saves >= crashAt {
					return errors.New("killed")
				}
				saved = maps.Clone(m)
				return nil
			}}
			_, err := q1.Start(ctx, []string{key}, locks.Lock)
			if err == nil {
				pop()
				for _, v := range []string{"new-a", "new-b"} {
					push(v)
					produced = append(produced, v)
				}
				_, err = q1.Take(ctx, []*store.Entry{{Key: key, Type: "list"}})
			}
			if (err != nil) != (crashAt <= 5) {
				t.Fatalf("%s: crash at save %d: merge error %v", key, crashAt, err)
			}
			// migrate is down: producers push to legacy, the consumer pops the target
			for _, v := range []string{"down-a", "down-b"} {
				push(v)
				produced = append(produced, v)
			}
			pop()
			q2 := &QueueLists{Legacy: lc, Target: tc, Loaded: saved, Reopened: true, Persist: func(map[string]state.QueueBase) error { return nil }}
			if _, err := q2.Start(ctx, []string{key}, locks.Lock); err != nil {
				t.Fatalf("%s: Start after the crash: %v", key, err)
			}
			if _, err := q2.Take(ctx, []*store.Entry{{Key: key, Type: "list"}}); err != nil {
				t.Fatalf("%s: merge after the crash: %v", key, err)
			}
			tl := tc.LRange(ctx, key, 0, -1).Val()
			if ll := lc.LRange(ctx, key, 0, -1).Val(); fmt.Sprint(ll) != fmt.Sprint(tl) {
				t.Errorf("%s: legacy %q is not the target's copy %q", key, ll, tl)
			}
			have := maps.Clone(popped)
			for _, v := range tl {
				have[v]++
			}
			twice := 0
			for _, v := range produced {
				switch have[v] {
				case 0:
					t.Errorf("%s: crash at save %d: %s lost (target %q, popped %v)", key, crashAt, v, tl, popped)
				case 1:
				default:
					twice += have[v] - 1
				}
			}
			if d := q2.Stats().Duplicates; int64(twice) > d {
				t.Errorf("%s: crash at save %d: %d duplicates, %d reported", key, crashAt, twice, d)
			}
			t.Logf("%s: crash at save %d: %d duplicates, %d reported, %d forwarded after the restart", key, crashAt, twice, q2.Stats().Duplicates, q2.Stats().Forwarded)
		}
	}
}

// missing is a multiset difference in l's order.
func TestQueueListsMissing(t *testing.T) {
	got := missing([]string{"n2", "a", "n1", "a", "b", "c"}, []string{"c", "a", "x"})
	if fmt.Sprint(got) != "[n2 n1 a b]" {
		t.Fatalf("missing: %q", got)
	}
}
