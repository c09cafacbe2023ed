package copier

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Pure logic of the dirty set; run with -race.

func bg() context.Context { return context.Background() }

// takeNow takes from partition w, failing the test if nothing is queued.
func takeNow(t *testing.T, d *DirtySet, w, n int) *Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg(), 5*time.Second)
	defer cancel()
	b, err := d.Take(ctx, w, n, 1<<40)
	if err != nil {
		t.Fatalf("take: %v", err)
	}
	return b
}

// nothingQueued asserts that partition w has nothing to hand out.
func nothingQueued(t *testing.T, d *DirtySet, w int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg(), 20*time.Millisecond)
	defer cancel()
	if b, err := d.Take(ctx, w, 100, 1<<40); err == nil {
		t.Fatalf("took %v, want nothing queued", b.Keys())
	}
}

func TestPartitionIsFNV1a(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 1000; i++ {
		k := make([]byte, r.Intn(40))
		r.Read(k)
		h := fnv.New32a()
		h.Write(k)
		if got, want := Partition(string(k), 7), int(h.Sum32()%7); got != want {
			t.Fatalf("Partition(%q) = %d, want %d", k, got, want)
		}
	}
}

func TestMarksWhileQueuedCoalesce(t *testing.T) {
	d := NewDirtySet(3, 100, 1<<20)
	p, q := d.Producer("scan"), d.Producer("capture")
	for i := 0; i < 100; i++ {
		if _, err := p.Mark(bg(), "k", 0); err != nil {
			t.Fatal(err)
		}
	}
	q.Mark(bg(), "k", 0)
	st := d.Stats()
	if st.Dirty != 1 || st.Marks != 101 || st.Coalesced != 100 {
		t.Fatalf("stats %+v, want 1 dirty key, 101 marks, 100 coalesced", st)
	}
	w := Partition("k", 3)
	b := takeNow(t, d, w, 100)
	if b.Len() != 1 || b.Keys()[0] != "k" {
		t.Fatalf("took %v", b.Keys())
	}
	nothingQueued(t, d, w)
	d.Done(b)
	if p.Applied() != 100 || q.Applied() != 1 {
		t.Fatalf("applied p=%d q=%d, want 100 and 1", p.Applied(), q.Applied())
	}
	if st := d.Stats(); st.Dirty != 0 || st.Bytes != 0 || st.InFlight != 0 {
		t.Fatalf("after done: %+v", st)
	}
}

func TestMarkWhileCopyingCopiesAgainAfter(t *testing.T) {
	d := NewDirtySet(2, 100, 1<<20)
	p, q := d.Producer("scan"), d.Producer("capture")
	w := Partition("k", 2)
	p.Mark(bg(), "k", 0)
	b := takeNow(t, d, w, 10)
	q.Mark(bg(), "k", 0)   // the copy in flight may have read before this write
	nothingQueued(t, d, w) // not handed out while in flight
	if q.Applied() != 0 {
		t.Fatal("mark applied by a copy taken before it")
	}
	d.Done(b)
	if p.Applied() != 1 || q.Applied() != 0 {
		t.Fatalf("applied p=%d q=%d, want 1 and 0", p.Applied(), q.Applied())
	}
	b = takeNow(t, d, w, 10)
	if b.Keys()[0] != "k" {
		t.Fatalf("took %v", b.Keys())
	}
	d.Done(b)
	if q.Applied() != 1 {
		t.Fatalf("q applied %d after the second copy", q.Applied())
	}
	if st := d.Stats(); st.Recopies != 1 || st.Dirty != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWatermarkWaitsForTheOldestMark(t *testing.T) {
	d := NewDirtySet(1, 100, 1<<20)
	p := d.Producer("scan")
	for _, k := range []string{"a", "b", "c"} {
		p.Mark(bg(), k, 0)
	}
	p.Mark(bg(), "a", 0) // seq 4 rides with a's copy
	ba := takeNow(t, d, 0, 1)
	bb := takeNow(t, d, 0, 1)
	bc := takeNow(t, d, 0, 1)
	d.Done(bb)
	if p.Applied() != 0 {
		t.Fatalf("applied %d while a (seq 1) is in flight", p.Applied())
	}
	d.Done(ba)
	if p.Applied() != 2 {
		t.Fatalf("applied %d, want 2 (c in flight)", p.Applied())
	}
	ctx, cancel := context.WithTimeout(bg(), 20*time.Millisecond)
	defer cancel()
	if err := p.Wait(ctx, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait for 3 before c is done: %v", err)
	}
	go d.Done(bc)
	if err := p.Wait(context.Background(), 4); err != nil {
		t.Fatal(err)
	}
}

func TestTakeBoundsBatchesByHints(t *testing.T) {
	d := NewDirtySet(1, 100, 1<<20)
	p := d.Producer("scan")
	p.Mark(bg(), "huge", 1000)
	for i := 0; i < 5; i++ {
		p.Mark(bg(), fmt.Sprint("k", i), 10)
	}
	ctx := bg()
	b, _ := d.Take(ctx, 0, 100, 25)
	if b.Len() != 1 || b.Keys()[0] != "huge" {
		t.Fatalf("first batch %v, want the one big key alone", b.Keys())
	}
	b, _ = d.Take(ctx, 0, 100, 25)
	if b.Len() != 2 {
		t.Fatalf("second batch %v, want 2 keys of hint 10 under 25 bytes", b.Keys())
	}
	b, _ = d.Take(ctx, 0, 2, 1000)
	if b.Len() != 2 {
		t.Fatalf("third batch %v, want 2 keys (max keys)", b.Keys())
	}
}

func TestMarkBlocksWhenFullAndResumes(t *testing.T) {
	d := NewDirtySet(1, 3, 1<<20)
	p := d.Producer("scan")
	for _, k := range []string{"a", "b", "c"} {
		p.Mark(bg(), k, 0)
	}
	done := make(chan error, 1)
	go func() { _, err := p.Mark(bg(), "d", 0); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("a fourth key was admitted over MaxKeys=3 (%v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	// a key already dirty never blocks, nor does one in flight
	if _, err := p.Mark(bg(), "a", 0); err != nil {
		t.Fatal(err)
	}
	b := takeNow(t, d, 0, 1) // a
	if _, err := p.Mark(bg(), "a", 0); err != nil {
		t.Fatal(err)
	}
	d.Done(b) // a copied and marked again: still dirty, nothing freed
	select {
	case err := <-done:
		t.Fatalf("admitted while still full (%v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	b = takeNow(t, d, 0, 1) // b
	d.Done(b)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Mark still blocked after a key left the set")
	}
	if st := d.Stats(); st.Dirty != 3 {
		t.Fatalf("dirty %d, want 3", st.Dirty)
	}
	// a blocked Mark ends with its context, and with Close
	ctx, cancel := context.WithCancel(bg())
	go func() { _, err := p.Mark(ctx, "e", 0); done <- err }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled mark: %v", err)
	}
	go func() { _, err := p.Mark(bg(), "f", 0); done <- err }()
	cause := errors.New("source down")
	d.Close(cause)
	if err := <-done; err != cause {
		t.Fatalf("mark after close: %v", err)
	}
}

func TestBytesBudget(t *testing.T) {
	key := func(i int) string { return fmt.Sprintf("key-%05d", i) } // 9 bytes
	per := int64(9 + entryOverhead)
	d := NewDirtySet(1, 1000, 3*per)
	p := d.Producer("scan")
	for i := 0; i < 3; i++ {
		p.Mark(bg(), key(i), 0)
	}
	ctx, cancel := context.WithTimeout(bg(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.Mark(ctx, key(3), 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("fourth key over the bytes budget: %v", err)
	}
	if st := d.Stats(); st.Bytes != 3*per {
		t.Fatalf("bytes %d, want %d", st.Bytes, 3*per)
	}
	for i := 0; i < 3; i++ {
		d.Done(takeNow(t, d, 0, 1))
	}
	// a hint above the whole budget is admitted alone, never deadlocks
	if _, err := p.Mark(bg(), "big", 10*per); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(bg(), 20*time.Millisecond)
	defer cancel2()
	if _, err := p.Mark(ctx2, key(9), 0); err == nil {
		t.Fatal("admitted a key next to one that fills the budget")
	}
}

// TestConcurrentCopiesConverge simulates writers and workers: every write
// bumps a key's version on a "source" and then marks the key; workers copy
// the version they read to a "target". Checked throughout: a key is never
// copied by two workers at once; a key's copies land in read order; the
// bytes and keys budgets hold; whenever a producer's watermark is W, every
// mark ≤ W has its write (or a later one) on the target. At the end the
// target equals the source.
func TestConcurrentCopiesConverge(t *testing.T) {
	for _, tc := range []struct {
		name    string
		keys    int
		maxKeys int
	}{{"hot keys", 20, 1000}, {"tight budget", 2000, 16}, {"wide", 5000, 100000}} {
		t.Run(tc.name, func(t *testing.T) { simulate(t, tc.keys, tc.maxKeys) })
	}
}

func simulate(t *testing.T, nkeys, maxKeys int) {
	const workers, writers, writes = 4, 6, 3000
	maxBytes := int64(maxKeys) * (entryOverhead + 16)
	d := NewDirtySet(workers, maxKeys, maxBytes)
	var mu sync.Mutex
	src := map[string]int{}
	dst := map[string]int{}
	inflight := map[string]bool{}
	type want struct {
		key string
		ver int
	}
	wants := make([]map[uint64]want, writers)
	producers := make([]*Producer, writers)
	for i := range producers {
		producers[i] = d.Producer(fmt.Sprint("w", i))
		wants[i] = map[uint64]want{}
	}
	var failed atomic.Value
	failf := func(format string, a ...any) { failed.CompareAndSwap(nil, fmt.Sprintf(format, a...)) }

	ctx, cancel := context.WithCancel(bg())
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(w)))
			for {
				b, err := d.Take(ctx, w, 1+r.Intn(8), 1<<40)
				if err != nil {
					return
				}
				if st := d.Stats(); st.Dirty > maxKeys || st.Bytes > maxBytes {
					failf("budget exceeded: %+v", st)
				}
				for _, k := range b.Keys() {
					if Partition(k, workers) != w {
						failf("worker %d got %q of partition %d", w, k, Partition(k, workers))
					}
					mu.Lock()
					if inflight[k] {
						failf("%q copied by two workers at once", k)
					}
					inflight[k] = true
					v := src[k] // the read
					mu.Unlock()
					runtime.Gosched() // writes land between read and write
					mu.Lock()
					if v < dst[k] {
						failf("%q: a read of version %d landed after version %d", k, v, dst[k])
					}
					dst[k] = v
					inflight[k] = false
					mu.Unlock()
				}
				d.Done(b)
			}
		}()
	}
	// the checker: watermarks never run ahead of the target
	stopCheck := make(chan struct{})
	checked := make(chan struct{})
	go func() {
		defer close(checked)
		for {
			select {
			case <-stopCheck:
				return
			default:
			}
			for i, p := range producers {
				wm := p.Applied()
				mu.Lock()
				for seq, w := range wants[i] {
					if seq <= wm {
						if dst[w.key] < w.ver {
							failf("producer %d watermark %d but mark %d (%q v%d) shows v%d on the target", i, wm, seq, w.key, w.ver, dst[w.key])
						}
						delete(wants[i], seq)
					}
				}
				mu.Unlock()
			}
			runtime.Gosched()
		}
	}()
	var ww sync.WaitGroup
	for i := 0; i < writers; i++ {
		ww.Add(1)
		go func() {
			defer ww.Done()
			r := rand.New(rand.NewSource(int64(100 + i)))
			for n := 0; n < writes; n++ {
				k := fmt.Sprint("k", r.Intn(nkeys))
				mu.Lock()
				src[k]++
				v := src[k]
				mu.Unlock()
				seq, err := producers[i].Mark(ctx, k, int64(r.Intn(16)))
				if err != nil {
					failf("mark: %v", err)
					return
				}
				mu.Lock()
				wants[i][seq] = want{k, v}
				mu.Unlock()
			}
		}()
	}
	ww.Wait()
	for _, p := range producers {
		wctx, wcancel := context.WithTimeout(bg(), 30*time.Second)
		if err := p.Wait(wctx, p.Marked()); err != nil {
			t.Fatalf("%s: %v (applied %d of %d)", p.Name(), err, p.Applied(), p.Marked())
		}
		wcancel()
	}
	close(stopCheck)
	<-checked
	cancel()
	wg.Wait()
	if f := failed.Load(); f != nil {
		t.Fatal(f)
	}
	for k, v := range src {
		if dst[k] != v {
			t.Errorf("%q: target v%d, source v%d", k, dst[k], v)
		}
	}
	st := d.Stats()
	if st.Dirty != 0 || st.Bytes != 0 || st.InFlight != 0 {
		t.Fatalf("drained set not empty: %+v", st)
	}
	t.Logf("%d marks, %d coalesced, %d recopies, %d copies", st.Marks, st.Coalesced, st.Recopies, st.Taken)
}

func TestCheckpoints(t *testing.T) {
	var c Checkpoints[uint64]
	if _, ok := c.Acked(100); ok {
		t.Fatal("acked with nothing added")
	}
	c.Add(3, 30)
	c.Add(3, 31) // an empty page: same marks, later cursor
	c.Add(7, 70)
	c.Add(9, 0)
	if v, ok := c.Acked(2); ok {
		t.Fatalf("acked %d at watermark 2", v)
	}
	if v, ok := c.Acked(8); !ok || v != 70 {
		t.Fatalf("at 8: %d %v, want 70", v, ok)
	}
	if v, ok := c.Acked(8); !ok || v != 70 || c.Pending() != 1 {
		t.Fatalf("again at 8: %d %v pending %d", v, ok, c.Pending())
	}
	if v, ok := c.Acked(9); !ok || v != 0 || c.Pending() != 0 {
		t.Fatalf("at 9: %d %v", v, ok)
	}
}
