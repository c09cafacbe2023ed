package loadgen

import (
	"context"
	"errors"
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/topology/topotest"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// The generator holds its rate (generous bounds: the machine is shared) and
// records every write: each key's last recorded version is what legacy
// holds at the end, for every family, the libraries' included.
func TestGeneratorRateAndRecords(t *testing.T) {
	legacy := topotest.Standalone(t)
	ctx := testCtx(t, time.Minute)
	ring := &Ring{}
	g, err := New(Config{Addr: legacy.Addr(), Rate: 2000, Keys: 2000, Libraries: true, Seed: 7, Recorder: ring})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Prefill(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := g.Run(ctx, 2*time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", st)
	if st.Rate < 0.6*2000 || st.Rate > 1.4*2000 {
		t.Errorf("achieved %.0f writes/s, want 2000 ±40%%", st.Rate)
	}
	if st.Errors != 0 || st.ModelErrors != 0 || st.Uncertain != 0 {
		t.Errorf("errors %d, model errors %d, uncertain %d (%s)", st.Errors, st.ModelErrors, st.Uncertain, st.FirstError)
	}
	for op := Op(0); op < numOps; op++ {
		if st.ByOp[op.String()] == 0 {
			t.Errorf("no %s in the load", op)
		}
	}
	ws, total := ring.Writes()
	if total != st.Writes || int64(len(ws)) != total {
		t.Fatalf("recorded %d (%d kept), stats say %d writes", total, len(ws), st.Writes)
	}
	last := map[string]Write{}
	for _, w := range ws {
		if p, ok := last[w.Key]; ok && w.Version < p.Version {
			t.Fatalf("%s: version %d recorded after %d", w.Key, w.Version, p.Version)
		}
		last[w.Key] = w
	}
	keys := make([]string, 0, len(last))
	for k := range last {
		keys = append(keys, k)
	}
	c := topotest.Client(t, legacy.Addr())
	states, errs, err := ReadStates(ctx, c, keys)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	checked := 0
	for i, k := range keys {
		w := last[k]
		if errs != nil && errs[i] != nil {
			t.Errorf("%s: %v", k, errs[i])
			continue
		}
		if !w.Expires.IsZero() && now.After(w.Expires.Add(-expiredMargin)) {
			continue // expiring or expired by now
		}
		checked++
		if s := states[i]; s.Present == w.Absent || (s.Present && s.Version != w.Version) {
			t.Errorf("%s: legacy holds %+v, last write recorded %+v", k, s, w)
		}
	}
	if checked < len(keys)/2 {
		t.Errorf("only %d of %d keys checkable", checked, len(keys))
	}
}

// mirror is a trivial state-copying mirror for the tests: it follows
// legacy's keyevents and, delay after each, copies the key's current state
// (DUMP+PTTL in one MULTI; absent → DEL) to the target. A key is copied by
// one worker (hash of the name), in event order. drop, when set, is asked
// about every event; true skips it.
type mirror struct {
	copies  atomic.Int64
	dropped atomic.Int64
}

func startMirror(t *testing.T, legacyAddr string, target redis.UniversalClient, delay time.Duration, drop func(key string) bool) *mirror {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	src := redis.NewClient(&redis.Options{Addr: legacyAddr, DisableIdentity: true, PoolSize: 8})
	t.Cleanup(func() { src.Close() })
	if err := src.ConfigSet(ctx, "notify-keyspace-events", "EA").Err(); err != nil {
		t.Fatal(err)
	}
	ps := src.PSubscribe(ctx, "__keyevent@0__:*")
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	m := &mirror{}
	type ev struct {
		key string
		at  time.Time
	}
	const workers = 8
	queues := make([]chan ev, workers)
	for i := range queues {
		queues[i] = make(chan ev, 1<<20)
		wg.Add(1)
		go func(q chan ev) {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case e := <-q:
					sleep(ctx, time.Until(e.at.Add(delay)))
					if err := copyKey(ctx, src, target, e.key); err != nil && ctx.Err() == nil {
						t.Errorf("mirror: %s: %v", e.key, err)
					}
					m.copies.Add(1)
				}
			}
		}(queues[i])
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			msg, err := ps.ReceiveMessage(ctx)
			if err != nil {
				return
			}
			if FamilyOf(msg.Payload) == nil {
				continue
			}
			if drop != nil && drop(msg.Payload) {
				m.dropped.Add(1)
				continue
			}
			h := fnv.New32a()
			h.Write([]byte(msg.Payload))
			queues[h.Sum32()%workers] <- ev{msg.Payload, time.Now()}
		}
	}()
	return m
}

func copyKey(ctx context.Context, src *redis.Client, dst redis.UniversalClient, k string) error {
	var dump *redis.StringCmd
	var pttl *redis.DurationCmd
	_, err := src.TxPipelined(ctx, func(p redis.Pipeliner) error {
		dump = p.Dump(ctx, k)
		pttl = p.PTTL(ctx, k)
		return nil
	})
	if errors.Is(err, redis.Nil) || dump.Err() == redis.Nil {
		return dst.Del(ctx, k).Err()
	}
	if err != nil {
		return err
	}
	ttl := pttl.Val()
	if ttl < 0 {
		ttl = 0
	}
	return dst.RestoreReplace(ctx, k, ttl, dump.Val()).Err()
}

func runMeasured(t *testing.T, ctx context.Context, legacyAddr string, w *Watcher, rate float64, d time.Duration) Stats {
	t.Helper()
	g, err := New(Config{Addr: legacyAddr, Rate: rate, Keys: 2000, Libraries: true, Seed: 11, Recorder: w})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Prefill(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := g.Run(ctx, d, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.ModelErrors != 0 || st.Errors != 0 {
		t.Fatalf("load: %+v", st)
	}
	return st
}

// A mirror that copies everything, 30 ms late, into a 3-master cluster:
// nothing lost, nothing stale, and the lag is at least the delay for most
// writes (a write may ride on an earlier event's copy, so not for all).
func TestWatcherDelayedMirrorCluster(t *testing.T) {
	legacy := topotest.Standalone(t)
	cl := topotest.Cluster(t)
	ctx := testCtx(t, 2*time.Minute)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), DisableIdentity: true})
	t.Cleanup(func() { cc.Close() })
	const delay = 30 * time.Millisecond
	m := startMirror(t, legacy.Addr(), cc, delay, nil)
	w, err := Watch(ctx, WatchConfig{Targets: []Target{{Name: "cache", Cluster: cl.Addrs()}}, SetNotify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	st := runMeasured(t, ctx, legacy.Addr(), w, 1000, 2*time.Second)
	rep, err := w.Settle(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("load %.0f writes/s; mirror copies %d\n%s", st.Rate, m.copies.Load(), rep)
	if rep.Writes != st.Writes {
		t.Errorf("watcher has %d writes, the load made %d", rep.Writes, st.Writes)
	}
	if rep.Lost != 0 || rep.Stale != 0 || rep.Duplicates != 0 || rep.Regressions != 0 {
		t.Errorf("a whole mirror: %d lost, %d stale, %d duplicates, %d regressions", rep.Lost, rep.Stale, rep.Duplicates, rep.Regressions)
	}
	if rep.Swept != 0 || rep.FeedGaps != 0 {
		t.Errorf("%d writes seen only by the sweep, %d gaps of the watcher's feed", rep.Swept, rep.FeedGaps)
	}
	if rep.Applied+rep.Unchanged+rep.ExpiredUnseen != rep.Writes || rep.Applied < rep.Writes*7/10 {
		t.Errorf("applied %d + unchanged %d + expired unseen %d of %d writes", rep.Applied, rep.Unchanged, rep.ExpiredUnseen, rep.Writes)
	}
	if rep.Lag.P90 < delay {
		t.Errorf("lag p90 %v below the mirror's delay %v", rep.Lag.P90, delay)
	}
}

// A mirror that drops the one event of one key written once (a RENAME's
// destination): exactly that write is lost, and the key is stale.
func TestWatcherCountsADroppedWrite(t *testing.T) {
	legacy := topotest.Standalone(t)
	target := topotest.Standalone(t)
	ctx := testCtx(t, 2*time.Minute)
	tc := topotest.Client(t, target.Addr())
	var victim atomic.Value
	m := startMirror(t, legacy.Addr(), tc, 0, func(k string) bool {
		if strings.HasPrefix(k, families[fRenamed].Prefix) && victim.CompareAndSwap(nil, k) {
			return true
		}
		return false
	})
	w, err := Watch(ctx, WatchConfig{Targets: []Target{{Name: "session", Addr: target.Addr()}}, SetNotify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	runMeasured(t, ctx, legacy.Addr(), w, 1000, 2*time.Second)
	rep, err := w.Settle(ctx, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", rep)
	if m.dropped.Load() != 1 {
		t.Fatalf("mirror dropped %d events, want 1", m.dropped.Load())
	}
	if rep.Lost != 1 || len(rep.LostSample) != 1 || rep.LostSample[0].Key != victim.Load() {
		t.Fatalf("lost %d %v, want exactly the write of %v", rep.Lost, rep.LostSample, victim.Load())
	}
	if rep.Stale != 1 || rep.StaleSample[0].Key != victim.Load() {
		t.Errorf("stale %d %v, want %v", rep.Stale, rep.StaleSample, victim.Load())
	}
}
