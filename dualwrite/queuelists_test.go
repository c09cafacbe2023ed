package dualwrite

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redisplit/redisplit/store"
	"github.com/redisplit/redisplit/topology/topotest"
)

// The queue lists' merge on real servers: producers push to legacy (LPUSH
// on one list, RPUSH on another) while a consumer pops the target, and the
// merge runs as often as the mirrors would; every job is popped on the
// target exactly once, legacy ends as the target's copy, and a pop on
// legacy is a conflict the target wins.
func TestQueueListsMergeExactlyOnce(t *testing.T) {
	ctx := ctxT(t)
	_, lc := legacy(t)
	ts := topotest.Standalone(t)
	tc := client(t, ts.Addr(), "", "", 0)
	var conflicts []string
	var mu sync.Mutex
	q := &QueueLists{Legacy: lc, Target: tc, OnConflict: func(k, why string) {
		mu.Lock()
		conflicts = append(conflicts, k+": "+why)
		mu.Unlock()
	}}
	journaled := map[string]bool{}
	q.Journal = func(keys []string) error {
		mu.Lock()
		defer mu.Unlock()
		for _, k := range keys {
			journaled[k] = true
		}
		return nil
	}
	locks := &KeyLocks{}
	// as at cutover: both sides hold the same backlog
	for i := 0; i < 5; i++ {
		lc.LPush(ctx, "jobs:l", fmt.Sprintf("old-l-%d", i))
		tc.LPush(ctx, "jobs:l", fmt.Sprintf("old-l-%d", i))
		lc.RPush(ctx, "jobs:r", fmt.Sprintf("old-r-%d", i))
		tc.RPush(ctx, "jobs:r", fmt.Sprintf("old-r-%d", i))
	}
	// before Start the lists are held back, not merged
	lc.LPush(ctx, "jobs:l", "early")
	rest, err := q.Take(ctx, []*store.Entry{{Key: "jobs:l", Type: "list"}, {Key: "s", Type: "string"}})
	if err != nil || len(rest) != 1 || rest[0].Key != "s" {
		t.Fatalf("Take before Start: %v %v", rest, err)
	}
	if n := tc.LLen(ctx, "jobs:l").Val(); n != 5 {
		t.Fatalf("merged before Start: target holds %d", n)
	}
	if others, err := q.Start(ctx, []string{"jobs:l", "jobs:r"}, locks.Lock); err != nil || len(others) != 0 {
		t.Fatalf("Start: %v %v", others, err)
	}
	if v := tc.LIndex(ctx, "jobs:l", 0).Val(); v != "early" {
		t.Fatalf("the held-back push was not merged at Start: target head %q", v)
	}

	// producers on legacy, a consumer on the target, merges all along
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var pushed atomic.Int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; pctx.Err() == nil && i < 400; i++ {
			lc.LPush(ctx, "jobs:l", fmt.Sprintf("new-l-%d", i))
			lc.RPush(ctx, "jobs:r", fmt.Sprintf("new-r-%d", i))
			pushed.Add(2)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	popped := map[string]int{}
	var pmu sync.Mutex
	go func() {
		defer wg.Done()
		for pctx.Err() == nil {
			for _, k := range []string{"jobs:l", "jobs:r"} {
				var v string
				var err error
				if k == "jobs:l" {
					v, err = tc.RPop(ctx, k).Result()
				} else {
					v, err = tc.LPop(ctx, k).Result()
				}
				if err == nil {
					pmu.Lock()
					popped[v]++
					pmu.Unlock()
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	merge := func() {
		for _, k := range []string{"jobs:l", "jobs:r"} {
			unlock := locks.Lock([]string{k})
			_, err := q.Take(ctx, []*store.Entry{{Key: k, Type: "list"}})
			unlock()
			if err != nil {
				t.Error(err)
			}
		}
	}
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && pushed.Load() < 800; {
		merge()
	}
	time.Sleep(20 * time.Millisecond)
	merge()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		merge()
		if tc.LLen(ctx, "jobs:l").Val()+tc.LLen(ctx, "jobs:r").Val() == 0 {
			break
		}
	}
	stop()
	wg.Wait()
	merge()
	want := []string{"early"}
	for i := 0; i < 5; i++ {
		want = append(want, fmt.Sprintf("old-l-%d", i), fmt.Sprintf("old-r-%d", i))
	}
	for i := 0; i < 400; i++ {
		want = append(want, fmt.Sprintf("new-l-%d", i), fmt.Sprintf("new-r-%d", i))
	}
	// whatever the consumer had no time to pop is still on the target
	for _, k := range []string{"jobs:l", "jobs:r"} {
		for _, v := range tc.LRange(ctx, k, 0, -1).Val() {
			popped[v]++
		}
	}
	var lost, twice []string
	for _, w := range want {
		switch popped[w] {
		case 0:
			lost = append(lost, w)
		case 1:
		default:
			twice = append(twice, w)
		}
	}
	if len(lost)+len(twice) > 0 || len(popped) != len(want) {
		t.Fatalf("%d jobs: %d lost %q, %d twice %q, %d seen", len(want), len(lost), lost[:min(5, len(lost))], len(twice), twice[:min(5, len(twice))], len(popped))
	}
	for _, k := range []string{"jobs:l", "jobs:r"} {
		if l, tg := lc.LRange(ctx, k, 0, -1).Val(), tc.LRange(ctx, k, 0, -1).Val(); !slices.Equal(l, tg) {
			t.Errorf("%s: legacy %q is not the target's copy %q", k, l, tg)
		}
	}
	if len(conflicts) > 0 {
		t.Errorf("conflicts without a pop on legacy: %q", conflicts)
	}
	// a list the application created on the target reaches legacy, and is
	// journaled like every list a merge wrote (a rollback deletes it)
	tc.RPush(ctx, "jobs:new", "n1")
	unlock := locks.Lock([]string{"jobs:new"})
	if _, err := q.Take(ctx, []*store.Entry{{Key: "jobs:new", Type: "list"}}); err != nil {
		t.Fatal(err)
	}
	unlock()
	if v := lc.LRange(ctx, "jobs:new", 0, -1).Val(); !slices.Equal(v, []string{"n1"}) {
		t.Errorf("jobs:new on legacy: %q", v)
	}
	mu.Lock()
	if !journaled["jobs:l"] || !journaled["jobs:r"] || !journaled["jobs:new"] {
		t.Errorf("journaled: %v", journaled)
	}
	mu.Unlock()
	s := q.Stats()
	if s.Forwarded != 801 || s.Merges == 0 {
		t.Errorf("stats %+v, want 801 forwarded", s)
	}

	// a pop on legacy breaks the precondition: the target's list wins
	tc.RPush(ctx, "jobs:r", "a", "b", "c")
	merge()
	lc.LPop(ctx, "jobs:r") // a consumer still on legacy took "a"
	merge()
	if len(conflicts) != 1 {
		t.Fatalf("conflicts %q, want one for jobs:r", conflicts)
	}
	if l, tg := lc.LRange(ctx, "jobs:r", 0, -1).Val(), tc.LRange(ctx, "jobs:r", 0, -1).Val(); !slices.Equal(tg, []string{"a", "b", "c"}) || !slices.Equal(l, tg) {
		t.Errorf("after the conflict: legacy %q, target %q; want the target's [a b c] on both", l, tg)
	}
}
