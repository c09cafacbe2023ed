package copier_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/copier"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/store"
	"github.com/redisplit/redisplit/topology"
	"github.com/redisplit/redisplit/topology/topotest"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// journal records the keys journaled for a bucket.
type journal struct {
	mu   sync.Mutex
	keys map[string]int
}

func (j *journal) append(keys []string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.keys == nil {
		j.keys = map[string]int{}
	}
	for _, k := range keys {
		j.keys[k]++
	}
	return nil
}

func (j *journal) has(k string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.keys[k] > 0
}

// target opens a standalone store and a raw client of it.
func target(t testing.TB, name string, srv topology.Server) (*store.Redis, *redis.Client) {
	r, err := store.Open(ctxT(t), name, config.Target{Kind: config.KindStandalone, Endpoint: config.Endpoint{URL: "redis://" + srv.Addr() + "/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, topotest.Client(t, srv.Addr())
}

func bucket(name string, sink store.Sink, j *journal) *copier.Bucket {
	return &copier.Bucket{Name: name, Sink: sink, Journal: j.append,
		Retry: store.Retry{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, For: 2 * time.Second}}
}

// prefixRoute routes "s:" keys to s, "c:" keys to c and nothing else.
func prefixRoute(s, c *copier.Bucket) copier.Route {
	ss, cc := []*copier.Bucket{s}, []*copier.Bucket{c}
	return func(key, typ string) []*copier.Bucket {
		switch {
		case strings.HasPrefix(key, "s:"):
			return ss
		case strings.HasPrefix(key, "c:"):
			return cc
		}
		return nil
	}
}

// scanAndMark is the backfill producer: SCAN legacy, mark every key.
func scanAndMark(ctx context.Context, c *redis.Client, p *copier.Producer) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, "", 500).Result()
		if err != nil {
			return err
		}
		for _, k := range keys {
			if _, err := p.Mark(ctx, k, 0); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// load writes n keys of every type, a tenth of them expiring, plus a few
// hashes above the big-key threshold; prefixes s: and c: route to the two
// buckets, x: nowhere.
func load(t testing.TB, c *redis.Client, n int) {
	ctx := ctxT(t)
	pipe := c.Pipeline()
	for i := 0; i < n; i++ {
		k := keyName(i)
		switch i % 8 {
		case 0:
			pipe.Set(ctx, k, fmt.Sprint("value-", i, strings.Repeat("v", i%200)), 0)
		case 1:
			pipe.IncrBy(ctx, k, int64(i))
		case 2:
			pipe.HSet(ctx, k, "a", i, "b", "x", fmt.Sprint("f", i%13), "y")
		case 3:
			pipe.RPush(ctx, k, "a", "b", i)
		case 4:
			pipe.SAdd(ctx, k, i, i+1, "m")
		case 5:
			pipe.ZAdd(ctx, k, redis.Z{Score: float64(i), Member: "a"}, redis.Z{Score: 1.5, Member: "b"})
		case 6:
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: k, Values: []any{"n", i}})
		case 7:
			pipe.Set(ctx, k, i, time.Duration(1+i%50)*time.Minute)
		}
		if i%500 == 499 {
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 4; i++ {
		k := fmt.Sprintf("%s:big:%d", []string{"s", "c"}[i%2], i)
		for j := 0; j < 4; j++ {
			vals := make([]any, 0, 1000)
			for f := 0; f < 500; f++ {
				vals = append(vals, fmt.Sprint("field-", j*500+f), strings.Repeat("b", 40))
			}
			pipe.HSet(ctx, k, vals...)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

func keyName(i int) string {
	p := "c:"
	switch {
	case i%10 < 4:
		p = "s:"
	case i%10 == 9:
		p = "x:"
	}
	if i%97 == 0 {
		return fmt.Sprintf("%sbin\x00\xff:%d", p, i)
	}
	return fmt.Sprintf("%skey:%d", p, i)
}

// writer applies random writes to legacy until stop, marking every key it
// touched after the write (what change capture does); it returns the
// latest short expiry it set (Unix ms).
func writer(ctx context.Context, t testing.TB, c *redis.Client, p *copier.Producer, n int, stop <-chan struct{}) (ops int, lastExpiry int64) {
	r := rand.New(rand.NewSource(7))
	key := func() string {
		if r.Intn(50) == 0 {
			return fmt.Sprintf("%s:big:%d", []string{"s", "c"}[r.Intn(2)], r.Intn(4)*1+0)
		}
		return keyName(r.Intn(n + n/4)) // some keys are new
	}
	for {
		select {
		case <-stop:
			return ops, lastExpiry
		default:
		}
		k := key()
		touched := []string{k}
		switch r.Intn(14) {
		case 0:
			c.Set(ctx, k, fmt.Sprint("w", r.Int()), 0)
		case 1:
			c.Del(ctx, k)
		case 2:
			c.HSet(ctx, k, fmt.Sprint("f", r.Intn(20)), r.Int())
		case 3:
			c.RPush(ctx, k, r.Int())
		case 4:
			c.LPop(ctx, k)
		case 5:
			c.SAdd(ctx, k, r.Intn(10))
		case 6:
			c.SRem(ctx, k, r.Intn(10))
		case 7:
			c.ZIncrBy(ctx, k, 1, fmt.Sprint("m", r.Intn(5)))
		case 8:
			c.XAdd(ctx, &redis.XAddArgs{Stream: k, Values: []any{"w", r.Int()}})
		case 9:
			c.Incr(ctx, k)
		case 10:
			d := time.Duration(100+r.Intn(700)) * time.Millisecond
			if c.PExpire(ctx, k, d).Val() {
				lastExpiry = max(lastExpiry, time.Now().Add(d).UnixMilli())
			}
		case 11:
			c.Persist(ctx, k)
		case 12:
			to := keyName(r.Intn(n)) // may cross buckets
			c.Rename(ctx, k, to)
			touched = append(touched, to)
		case 13:
			c.HDel(ctx, k, fmt.Sprint("field-", r.Intn(2000)), "a")
		}
		ops++
		for _, k := range touched {
			if _, err := p.Mark(ctx, k, 0); err != nil {
				t.Errorf("capture mark: %v", err)
				return ops, lastExpiry
			}
		}
	}
}

type side struct {
	c *redis.Client
}

type facts struct {
	typ    string
	expire int64 // PEXPIRETIME: absolute ms, -1 none, -2 absent
	digest string
}

// read returns type, absolute expiry and DEBUG DIGEST-VALUE of keys
// (pipelined).
func (s side) read(ctx context.Context, t testing.TB, keys []string) []facts {
	out := make([]facts, len(keys))
	for i := 0; i < len(keys); i += 500 {
		chunk := keys[i:min(i+500, len(keys))]
		pipe := s.c.Pipeline()
		var ty []*redis.StatusCmd
		var ex []*redis.Cmd
		var dg []*redis.Cmd
		for _, k := range chunk {
			ex = append(ex, pipe.Do(ctx, "pexpiretime", k))
			ty = append(ty, pipe.Type(ctx, k))
			dg = append(dg, pipe.Do(ctx, "debug", "digest-value", k))
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		for j := range chunk {
			d, _ := dg[j].Slice()
			e, _ := ex[j].Int64()
			out[i+j] = facts{typ: ty[j].Val(), expire: e, digest: fmt.Sprint(d)}
		}
	}
	return out
}

// ttlTolerance is how far the absolute expiries may differ: the source
// computes TIME + PTTL inside one MULTI, exact to a millisecond or two.
const ttlTolerance = 50

func allKeys(ctx context.Context, t testing.TB, c *redis.Client) []string {
	var out []string
	iter := c.Scan(ctx, 0, "", 1000).Iterator()
	for iter.Next(ctx) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// compare checks, independently of the copier, that every key of legacy
// routed to a bucket is on its target with the same type, value (DEBUG
// DIGEST-VALUE) and absolute expiry (±ttlTolerance), that every key on a
// target is on legacy and routed there, and that every key on a target was
// journaled. Keys that expire within seconds (or are gone when read) are
// not compared: both sides drop them at the same absolute time.
func compare(t testing.TB, legacy *redis.Client, targets map[string]*redis.Client, journals map[string]*journal) {
	ctx := ctxT(t)
	owner := func(k string) string {
		if len(k) >= 2 {
			return k[:2]
		}
		return ""
	}
	lkeys := allKeys(ctx, t, legacy)
	soon := time.Now().Add(5 * time.Second).UnixMilli()
	lf := side{legacy}.read(ctx, t, lkeys)
	perTarget := map[string][]int{}
	for i, k := range lkeys {
		perTarget[owner(k)] = append(perTarget[owner(k)], i)
	}
	diffs := 0
	report := func(format string, a ...any) {
		diffs++
		if diffs <= 20 {
			t.Errorf(format, a...)
		}
	}
	for p, tc := range targets {
		idx := perTarget[p]
		keys := make([]string, len(idx))
		for j, i := range idx {
			keys[j] = lkeys[i]
		}
		tf := side{tc}.read(ctx, t, keys)
		for j, i := range idx {
			l, g := lf[i], tf[j]
			switch {
			case l.expire == -2 || (l.expire >= 0 && l.expire < soon):
				continue // expiring while compared
			case g.expire == -2:
				report("%q missing on target %s (legacy: %s, expiry %d)", lkeys[i], p, l.typ, l.expire)
			case l.typ != g.typ || l.digest != g.digest:
				report("%q differs on target %s: type %s/%s, digest %s/%s", lkeys[i], p, l.typ, g.typ, l.digest, g.digest)
			case (l.expire == -1) != (g.expire == -1) || l.expire-g.expire > ttlTolerance || g.expire-l.expire > ttlTolerance:
				report("%q expiry differs on target %s: %d on legacy, %d on the target", lkeys[i], p, l.expire, g.expire)
			}
		}
		// the other direction: nothing on the target that legacy lacks
		tkeys := allKeys(ctx, t, tc)
		fwd := side{tc}.read(ctx, t, tkeys)
		back := side{legacy}.read(ctx, t, tkeys)
		for j, k := range tkeys {
			if fwd[j].expire == -2 || (fwd[j].expire >= 0 && fwd[j].expire < soon) {
				continue // expiring while compared
			}
			if owner(k) != p {
				report("%q on target %s, which it does not route to", k, p)
			}
			if back[j].expire == -2 {
				report("%q on target %s but not on legacy (an undeleted key)", k, p)
			}
			if !journals[p].has(k) {
				report("%q on target %s was never journaled", k, p)
			}
		}
	}
	for _, i := range perTarget["x:"] {
		for p, tc := range targets {
			if tc.Exists(ctx, lkeys[i]).Val() != 0 {
				report("%q routed nowhere but found on target %s", lkeys[i], p)
			}
		}
	}
	if diffs > 0 {
		t.Fatalf("%d differences between legacy and the targets", diffs)
	}
	t.Logf("compared %d legacy keys with their targets, both directions", len(lkeys))
}

// End to end: a 20k-key legacy under live writes, deletes, renames across
// buckets and expiring keys; the backfill SCAN and the writer (standing in
// for change capture) mark keys; after the writer stops and the copier
// drains, legacy and targets are identical.
func TestCopierConvergesUnderLiveWrites(t *testing.T) {
	ctx := ctxT(t)
	const n = 20000
	legacy := topotest.Client(t, topotest.Standalone(t).Addr())
	sSink, sRaw := target(t, "session", topotest.Standalone(t))
	cSink, cRaw := target(t, "cache", topotest.Standalone(t))
	load(t, legacy, n)
	js := map[string]*journal{"s:": {}, "c:": {}}
	sb, cb := bucket("session", sSink, js["s:"]), bucket("cache", cSink, js["c:"])
	src := &store.RedisSource{Client: legacy, BigBytes: 32 << 10, Retry: store.Retry{For: 5 * time.Second}}
	defer src.Close()
	cp, err := copier.New(ctx, copier.Config{Source: src, Route: prefixRoute(sb, cb), Workers: 4, Batch: 256, MaxKeys: 5000})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	scan, capture := cp.Producer("backfill"), cp.Producer("capture")

	start := time.Now()
	stop := make(chan struct{})
	type wres struct {
		ops    int
		expiry int64
	}
	wdone := make(chan wres, 1)
	go func() {
		ops, exp := writer(ctx, t, legacy, capture, n, stop)
		wdone <- wres{ops, exp}
	}()
	if err := scanAndMark(ctx, legacy, scan); err != nil {
		t.Fatal(err)
	}
	if err := scan.Wait(ctx, scan.Marked()); err != nil {
		t.Fatal(err)
	}
	backfill := time.Since(start)
	backfillCopies := cp.Stats().Copies
	time.Sleep(2 * time.Second) // live writes after the backfill
	close(stop)
	w := <-wdone
	if err := cp.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := cp.Stats()
	t.Logf("backfill: %d keys marked, %d copies in %v (%.0f copies/s, with the writer running); writer: %d ops in %v; total: %d marks, %d coalesced, %d recopies, %d copies, %d dropped",
		scan.Marked(), backfillCopies, backfill.Round(time.Millisecond), float64(backfillCopies)/backfill.Seconds(),
		w.ops, time.Since(start).Round(time.Millisecond), st.Marks, st.Coalesced, st.Recopies, st.Copies, st.Dropped)
	for _, b := range []*copier.Bucket{sb, cb} {
		if err := b.Err(); err != nil {
			t.Fatalf("bucket %s failed: %v", b.Name, err)
		}
		bs := b.Stats()
		t.Logf("bucket %s: %+v", b.Name, bs)
		if bs.Deleted == 0 || bs.Logical == 0 {
			t.Errorf("bucket %s: the test did not exercise deletes and page-by-page copies: %+v", b.Name, bs)
		}
	}
	// every key taken was timed waiting, every key read timed reading and writing
	sg := cp.Stages()
	if sg.Wait.Count() != st.Taken || sg.Read.Count() != st.Copies || sg.Write.Count() != st.Copies || sg.Write.Quantile(1) == 0 {
		t.Errorf("stages: %d waits, %d reads, %d writes (max %s) for %d taken, %d copies", sg.Wait.Count(), sg.Read.Count(), sg.Write.Count(), sg.Write.Quantile(1), st.Taken, st.Copies)
	}
	t.Logf("stages: wait p50 %s p99 %s; read p50 %s p99 %s; write p50 %s p99 %s", sg.Wait.Quantile(0.5), sg.Wait.Quantile(0.99),
		sg.Read.Quantile(0.5), sg.Read.Quantile(0.99), sg.Write.Quantile(0.5), sg.Write.Quantile(0.99))
	if st.Dirty != 0 || scan.Applied() != scan.Marked() || capture.Applied() != capture.Marked() || st.Dropped == 0 {
		t.Fatalf("after flush: %+v, backfill %d/%d, capture %d/%d", st, scan.Applied(), scan.Marked(), capture.Applied(), capture.Marked())
	}
	// the short expiries the writer set have passed on both sides
	if d := time.Until(time.UnixMilli(w.expiry + 100)); d > 0 {
		time.Sleep(d)
	}
	compare(t, legacy, map[string]*redis.Client{"s:": sRaw, "c:": cRaw}, js)
}

// Tombstones, expiry, routing nowhere, and a failing bucket that stops
// alone: a full noeviction target answers OOM; its bucket stops with an
// OOM error, later keys of it are skipped, and the other bucket goes on.
func TestCopierTombstonesRoutesAndFailsOneBucket(t *testing.T) {
	ctx := ctxT(t)
	legacy := topotest.Client(t, topotest.Standalone(t).Addr())
	sSink, sRaw := target(t, "session", topotest.Standalone(t))
	qSink, qRaw := target(t, "queue", topotest.Standalone(t, "--maxmemory", "1mb", "--maxmemory-policy", "noeviction"))
	js, jq := &journal{}, &journal{}
	sb, qb := bucket("session", sSink, js), bucket("queue", qSink, jq)
	route := func(key, typ string) []*copier.Bucket {
		switch {
		case strings.HasPrefix(key, "s:"):
			return []*copier.Bucket{sb}
		case strings.HasPrefix(key, "q:"):
			return []*copier.Bucket{qb}
		case strings.HasPrefix(key, "any:") && typ == store.TypeNone:
			return []*copier.Bucket{sb, qb} // a deleted key could be in either
		case strings.HasPrefix(key, "any:"):
			return []*copier.Bucket{sb}
		}
		return nil
	}
	src := &store.RedisSource{Client: legacy}
	defer src.Close()
	cp, err := copier.New(ctx, copier.Config{Source: src, Route: route, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	p := cp.Producer("capture")
	mark := func(keys ...string) {
		t.Helper()
		for _, k := range keys {
			if _, err := p.Mark(ctx, k, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Wait(ctx, p.Marked()); err != nil {
			t.Fatal(err)
		}
	}
	legacy.Set(ctx, "s:present", "v", 0)
	legacy.Set(ctx, "s:ttl", "v", time.Hour)
	sRaw.Set(ctx, "s:gone", "stale", 0) // deleted on legacy since
	sRaw.Set(ctx, "any:gone", "stale", 0)
	qRaw.Set(ctx, "any:gone", "stale", 0)
	mark("s:present", "s:ttl", "s:gone", "any:gone", "x:nowhere")
	// the absolute expiry is legacy's within the read's clock resolution
	// (PTTL and TIME are read in one MULTI: at most a millisecond apart)
	if d := sRaw.PExpireTime(ctx, "s:ttl").Val() - legacy.PExpireTime(ctx, "s:ttl").Val(); sRaw.Get(ctx, "s:present").Val() != "v" || d < -2*time.Millisecond || d > 2*time.Millisecond {
		t.Fatal("present keys not copied with their absolute expiry")
	}
	if sRaw.Exists(ctx, "s:gone", "any:gone").Val() != 0 || qRaw.Exists(ctx, "any:gone").Val() != 0 {
		t.Fatal("a key absent on legacy survived on a target")
	}
	if !js.has("s:gone") || !jq.has("any:gone") {
		t.Fatal("tombstones not journaled")
	}
	if d := cp.Stats().Dropped; d != 1 {
		t.Fatalf("dropped %d, want 1 (x:nowhere)", d)
	}
	// fill the queue target past its limit
	big := strings.Repeat("q", 200<<10)
	var qkeys []string
	for i := 0; i < 10; i++ {
		k := fmt.Sprint("q:job:", i)
		legacy.Set(ctx, k, big, 0)
		qkeys = append(qkeys, k)
	}
	mark(qkeys...)
	var ke *store.KeyError
	if err := qb.Err(); !errors.As(err, &ke) || ke.Class != redisconn.OOM {
		t.Fatalf("queue bucket: %v, want an OOM key error", err)
	}
	legacy.Set(ctx, "q:later", "v", 0)
	legacy.Set(ctx, "s:later", "v", 0)
	mark("q:later", "s:later")
	if sRaw.Get(ctx, "s:later").Val() != "v" || sb.Err() != nil {
		t.Fatalf("the session bucket stopped with the queue bucket: %v", sb.Err())
	}
	if qb.Stats().Skipped == 0 || qRaw.Exists(ctx, "q:later").Val() != 0 {
		t.Fatalf("the failed bucket went on writing: %+v", qb.Stats())
	}
}

// A source that fails beyond its retries stops the copier: Err says so,
// and Mark returns the error instead of queueing without end.
func TestCopierStopsWhenTheSourceFails(t *testing.T) {
	ctx := ctxT(t)
	srv := topotest.Standalone(t)
	legacy := topotest.Client(t, srv.Addr())
	sSink, _ := target(t, "session", topotest.Standalone(t))
	sb := bucket("session", sSink, &journal{})
	src := &store.RedisSource{Client: legacy, Retry: store.Retry{Initial: 10 * time.Millisecond, For: 300 * time.Millisecond}}
	defer src.Close()
	cp, err := copier.New(ctx, copier.Config{Source: src, Route: func(string, string) []*copier.Bucket { return []*copier.Bucket{sb} }, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	p := cp.Producer("capture")
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	seq, err := p.Mark(ctx, "s:k", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(ctx, seq); err == nil || cp.Err() == nil || !errors.Is(err, cp.Err()) {
		t.Fatalf("wait: %v, copier err: %v", err, cp.Err())
	}
	if p.Applied() != 0 {
		t.Fatal("the unread key's mark was applied")
	}
	if _, err := p.Mark(ctx, "s:other", 0); err == nil {
		t.Fatal("Mark accepted after the copier stopped")
	}
	if err := cp.Close(); err == nil || !strings.Contains(err.Error(), "legacy") || !strings.Contains(err.Error(), srv.Addr()) {
		t.Fatalf("Close: %v", err)
	} else {
		t.Log(err)
	}
}

// A source whose payloads the target cannot read (Valkey 8's RDB 11 into
// Redis 7.0): the bucket switches to page-by-page copies by itself.
func TestCopierFallsBackToLogicalCopies(t *testing.T) {
	ctx := ctxT(t)
	vk, err := exec.LookPath("valkey-server")
	if err != nil {
		t.Fatalf("valkey-server is not installed (scripts/deps.sh installs it): %v", err)
	}
	b := topotest.Backend(t).(*topology.ProcessBackend)
	b.Binary = vk
	srv, err := topology.Standalone(ctx, b, "legacy-valkey")
	if err != nil {
		t.Fatal(err)
	}
	legacy := topotest.Client(t, srv.Addr())
	sSink, sRaw := target(t, "session", topotest.Standalone(t))
	j := &journal{}
	sb := bucket("session", sSink, j)
	src := &store.RedisSource{Client: legacy}
	defer src.Close()
	cp, err := copier.New(ctx, copier.Config{Source: src, Route: func(string, string) []*copier.Bucket { return []*copier.Bucket{sb} }})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	legacy.HSet(ctx, "s:h", "a", "1", "b", "2")
	legacy.RPush(ctx, "s:l", "x", "y")
	legacy.Set(ctx, "s:s", "v", time.Hour)
	p := cp.Producer("backfill")
	for _, k := range []string{"s:h", "s:l", "s:s"} {
		p.Mark(ctx, k, 0)
	}
	if err := cp.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sb.Err(); err != nil {
		t.Fatal(err)
	}
	if h := sRaw.HGetAll(ctx, "s:h").Val(); len(h) != 2 || h["a"] != "1" ||
		strings.Join(sRaw.LRange(ctx, "s:l", 0, -1).Val(), ",") != "x,y" ||
		sRaw.Get(ctx, "s:s").Val() != "v" || sRaw.PExpireTime(ctx, "s:s").Val() != legacy.PExpireTime(ctx, "s:s").Val() {
		t.Fatal("values not copied logically")
	}
	if st := sb.Stats(); st.Logical != 3 || !j.has("s:h") {
		t.Fatalf("stats %+v", st)
	}
}

// A big key replaced by another type while it is copied page by page (the
// application's SET over a big hash) is copied again as what it is now;
// the bucket does not fail on the source's WRONGTYPE.
func TestCopierRecopiesABigKeyReplacedMidCopy(t *testing.T) {
	ctx := ctxT(t)
	legacy := topotest.Client(t, topotest.Standalone(t).Addr())
	sSink, sRaw := target(t, "session", topotest.Standalone(t))
	sb := bucket("session", sSink, &journal{})
	for f := 0; f < 300; f++ {
		legacy.HSet(ctx, "s:big", fmt.Sprint("field-", f), strings.Repeat("b", 40))
	}
	src := &store.RedisSource{Client: legacy, BigBytes: 4096}
	defer src.Close()
	var mu sync.Mutex
	calls := 0
	throttle := func(ctx context.Context, n int) error {
		mu.Lock()
		defer mu.Unlock()
		if calls++; calls == 2 { // the first page of the logical copy
			legacy.Set(ctx, "s:big", "now a string", 0)
		}
		return nil
	}
	cp, err := copier.New(ctx, copier.Config{Source: src, Throttle: throttle, Workers: 1,
		Route: func(string, string) []*copier.Bucket { return []*copier.Bucket{sb} }})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	p := cp.Producer("backfill")
	p.Mark(ctx, "s:big", 0)
	if err := cp.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sb.Err(); err != nil {
		t.Fatalf("bucket failed: %v", err)
	}
	if got := sRaw.Get(ctx, "s:big").Val(); got != "now a string" {
		t.Fatalf("target holds %q", got)
	}
}
