package loadgen

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/redisplit/redisplit/classify"
)

func TestHistBuckets(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100000; i++ {
		v := r.Uint64N(1 << uint(1+r.IntN(50)))
		b := bucketOf(v)
		up := upperOf(b)
		lo := uint64(0)
		if b > 0 {
			lo = upperOf(b-1) + 1
		}
		if v < lo || v > up {
			t.Fatalf("value %d in bucket %d [%d, %d]", v, b, lo, up)
		}
		if v >= 256 && float64(up-lo+1)/float64(lo) > 0.008 {
			t.Fatalf("bucket %d [%d, %d] wider than 0.8%%", b, lo, up)
		}
	}
	if got := bucketOf(1<<63 + 5); got >= len(Hist{}.counts) {
		t.Fatalf("top bucket %d out of range", got)
	}
}

func TestHistQuantiles(t *testing.T) {
	var h Hist
	for i := 1; i <= 1000; i++ {
		h.Add(time.Duration(i) * time.Millisecond)
	}
	h.Add(-time.Second) // counts as 0
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.9, 900 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.Quantile(c.q)
		if got < c.want-c.want/100 || got > c.want+c.want/100 {
			t.Errorf("q%v = %v, want %v ±1%%", c.q, got, c.want)
		}
	}
	if h.Max() != time.Second || h.Count() != 1001 {
		t.Errorf("max %v count %d", h.Max(), h.Count())
	}
	if (&Hist{}).Quantile(0.5) != 0 {
		t.Error("empty histogram has a quantile")
	}
}

// Every family is routed by zero-configuration routing to its bucket, and
// a key's family is told from its name alone.
func TestFamiliesRouteAndParse(t *testing.T) {
	c, _, err := classify.Router(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range Families() {
		if !strings.HasPrefix(f.Example, f.Prefix) {
			t.Errorf("%s: example %q lacks prefix %q", f.Name, f.Example, f.Prefix)
		}
		if got := FamilyOf(f.Example); got == nil || got.Name != f.Name {
			t.Errorf("FamilyOf(%q) = %v, want %s", f.Example, got, f.Name)
		}
		if m := c.Classify(f.Example, f.Type); string(m.Bucket) != f.Bucket {
			t.Errorf("%s: %q (%s) routed to %q by %v, want %s", f.Name, f.Example, f.Type, m.Bucket, m.Rule, f.Bucket)
		}
		for _, g := range Families() {
			if g.Name != f.Name && strings.HasPrefix(g.Prefix, f.Prefix) {
				t.Errorf("prefix %q of %s is a prefix of %s's %q", f.Prefix, f.Name, g.Name, g.Prefix)
			}
		}
	}
	for _, k := range []string{"", "redisplit:marker:cache:1", "keyv:user:1", "sess:0000000000ab", "queue:jobs:3", "rl:login:4"} {
		if f := FamilyOf(k); f != nil {
			t.Errorf("FamilyOf(%q) = %s, want none (not a load key)", k, f.Name)
		}
	}
}

func TestDecodeVersion(t *testing.T) {
	gc, err := goCacheCodec.Marshal(goCacheItem{Seq: 77, Name: "x", Bio: strings.Repeat("y", 300)}) // compressed
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key   string
		reply []any
		want  State
		bad   bool
	}{
		{"keyv:lg:item:1", []any{"string", "abc#12"}, State{true, 12, "string"}, false},
		{"keyv:lg:item:1", []any{"string", "abc#12#13#14"}, State{true, 14, "string"}, false}, // APPENDed
		{"keyv:lg:item:1", []any{"none"}, State{Type: "none"}, false},
		{"keyv:lg:item:1", []any{"string", "no sequence"}, State{}, true},
		{"keyv:lg:item:1", []any{"hash", "3"}, State{}, true}, // wrong type for the family
		{"rl:lg:3:99", []any{"string", "41"}, State{true, 41, "string"}, false},
		{"keyv:lg:gocache:5", []any{"string", string(gc)}, State{true, 77, "string"}, false},
		{"rate:lg:5", []any{"string", "283000000.5"}, State{true, 283000000500000, "string"}, false},
		{"sess:lg-h-9", []any{"hash", "8"}, State{true, 8, "hash"}, false},
		{"queue:lg:2", []any{"list", "job#9", "job#4"}, State{true, 9<<32 | 4, "list"}, false},
		{"keyv:lg:tags:2", []any{"set", "7", "3"}, State{true, 7<<32 | 3, "set"}, false},
		{"keyv:lg:board:2", []any{"zset", "19"}, State{true, 19, "zset"}, false},
		{"bull:lg:events:2", []any{"stream", "6"}, State{true, 6, "stream"}, false},
		{"sess:lg-r-1-2", []any{"string", "x#1"}, State{true, 1, "string"}, false},
	} {
		got, err := decodeState(c.key, c.reply)
		if c.bad {
			if err == nil {
				t.Errorf("%s %v: decoded %+v, want an error", c.key, c.reply, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s %v: %+v, %v; want %+v", c.key, c.reply, got, err, c.want)
		}
	}
}

// newTestWatcher is a Watcher with no targets, for the pure bookkeeping.
func newTestWatcher() *Watcher {
	return &Watcher{cfg: WatchConfig{MaxPending: 1000}, keys: map[string]*tracked{}}
}

func obs(w *Watcher, key string, st State, at time.Time) {
	w.observe([]string{key}, []State{st}, nil, at, at, nil, false)
}

func TestCoverRules(t *testing.T) {
	t0 := time.Now().Add(-time.Minute)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	present := func(v uint64) State { return State{Present: true, Version: v, Type: "string"} }
	absent := State{Type: "none"}
	const k = "keyv:lg:item:1"

	t.Run("a later version covers the writes before it, not after", func(t *testing.T) {
		w := newTestWatcher()
		w.Record([]Write{{Key: k, Version: 1, At: ms(0)}, {Key: k, Version: 2, At: ms(1)}, {Key: k, Version: 3, At: ms(2)}})
		obs(w, k, present(2), ms(10))
		if w.rep.Applied != 2 || w.pending != 1 {
			t.Fatalf("applied %d pending %d, want 2 and 1", w.rep.Applied, w.pending)
		}
		if got := w.lag.Max(); got != 10*time.Millisecond {
			t.Errorf("lag of version 1 = %v, want 10ms", got)
		}
	})
	t.Run("a DEL is not covered by the version it deleted; absence after it is", func(t *testing.T) {
		w := newTestWatcher()
		w.Record([]Write{{Key: k, Version: 4, At: ms(0)}, {Key: k, Version: 4, Absent: true, Op: OpDel, At: ms(5)}})
		obs(w, k, present(4), ms(6))
		if w.rep.Applied != 1 {
			t.Fatalf("applied %d, want 1 (the DEL is still pending)", w.rep.Applied)
		}
		obs(w, k, absent, ms(3)) // read sent before the DEL: proves nothing
		if w.rep.Applied != 1 {
			t.Fatalf("absence read before the DEL was sent counted")
		}
		obs(w, k, absent, ms(9))
		if w.rep.Applied != 2 || w.pending != 0 {
			t.Fatalf("applied %d pending %d after the absence, want 2 and 0", w.rep.Applied, w.pending)
		}
	})
	t.Run("a recreated key covers the DEL before it", func(t *testing.T) {
		w := newTestWatcher()
		w.Record([]Write{{Key: k, Version: 4, Absent: true, Op: OpDel, At: ms(0)}, {Key: k, Version: 5, At: ms(1)}})
		obs(w, k, present(5), ms(4))
		if w.rep.Applied != 2 {
			t.Fatalf("applied %d, want 2", w.rep.Applied)
		}
	})
	t.Run("an observation before the record covers it", func(t *testing.T) {
		w := newTestWatcher()
		obs(w, k, present(7), ms(3))
		w.Record([]Write{{Key: k, Version: 7, At: ms(1)}})
		if w.rep.Applied != 1 || w.pending != 0 {
			t.Fatalf("applied %d pending %d, want 1 and 0", w.rep.Applied, w.pending)
		}
	})
	t.Run("an older version after a newer one is a regression", func(t *testing.T) {
		w := newTestWatcher()
		obs(w, k, present(7), ms(3))
		obs(w, k, present(6), ms(4))
		if w.rep.Regressions != 1 {
			t.Fatalf("regressions %d, want 1", w.rep.Regressions)
		}
	})
	t.Run("verdict: unseen writes are lost unless their key expired, then they count in Lag at the expiry", func(t *testing.T) {
		w := newTestWatcher()
		now := time.Now()
		w.Record([]Write{
			{Key: "keyv:lg:tmp:1-1", Version: 1, At: now.Add(-3 * time.Second), Expires: now.Add(-2500 * time.Millisecond)}, // TTL 500ms
			{Key: "rl:lg:1:5", Version: 1, At: now.Add(-5 * time.Second), Expires: now.Add(-2 * time.Second)},               // TTL 3s
			{Key: "rl:lg:1:6", Version: 1, At: now.Add(-time.Second), Expires: now.Add(2 * time.Second)},                    // not expired yet
			{Key: k, Version: 1, At: now.Add(-time.Second)},
			{Key: "sess:lg-h-1", Version: 2, At: now.Add(-time.Second)},
			{Key: "sess:lg-h-1", Uncertain: true, At: now},
		})
		r := w.verdict()
		if r.ExpiredUnseen != 2 || r.Lost != 2 || r.Uncertain != 2 || r.Writes != 5 {
			t.Fatalf("verdict %+v, want 2 expired unseen, 2 lost, 2 uncertain, 5 writes", r)
		}
		if r.Lag.N != 2 || r.Lag.Max < 3*time.Second-time.Millisecond || r.Lag.P50 < 500*time.Millisecond-time.Millisecond {
			t.Errorf("lag of the expired writes %v, want their TTLs 500ms and 3s", r.Lag)
		}
		if again := w.verdict(); again.Lag != r.Lag {
			t.Errorf("a second verdict changed the lag: %v, then %v", r.Lag, again.Lag)
		}
	})
	t.Run("pending leaves out what no event can show", func(t *testing.T) {
		w := newTestWatcher()
		now := time.Now()
		w.Record([]Write{
			{Key: "keyv:lg:stage:1-1", Version: 1, At: now}, {Key: "keyv:lg:stage:1-1", Version: 1, Absent: true, At: now}, // renamed away, never on a target
			{Key: "keyv:lg:tmp:1-2", Version: 1, At: now.Add(-3 * time.Second), Expires: now.Add(-2 * time.Second)}, // expired
			{Key: k, Version: 1, At: now}, {Key: "sess:lg-h-1", Version: 3, Absent: true, At: now}, // waiting
		})
		obs(w, "sess:lg-h-1", present(3), now) // held by a target: its DEL is awaited
		if got := w.Pending(); got != 2 {
			t.Fatalf("pending %d, want 2", got)
		}
	})
	t.Run("the sweep tells nothing to apply from a missed event", func(t *testing.T) {
		w := newTestWatcher()
		now := time.Now()
		const gone, missed = "keyv:lg:item:2", "keyv:lg:item:3"
		obs(w, gone, absent, now.Add(-time.Second)) // deleted on the targets, seen
		obs(w, missed, absent, now.Add(-time.Second))
		w.Record([]Write{{Key: gone, Version: 10, At: now}, {Key: gone, Version: 10, Absent: true, Op: OpDel, At: now},
			{Key: missed, Version: 11, At: now}})
		if got := w.Pending(); got != 1 {
			t.Fatalf("pending %d, want 1 (the SET+DEL of a key the targets do not hold shows no event)", got)
		}
		w.observe([]string{gone, missed}, []State{absent, present(11)}, nil, now.Add(time.Second), now.Add(time.Second), nil, true)
		if w.rep.Unchanged != 2 || w.rep.Swept != 1 || len(w.rep.SweptSample) != 1 || w.rep.SweptSample[0].Key != missed {
			t.Fatalf("unchanged %d, swept %d %v; want 2 and 1 (%s)", w.rep.Unchanged, w.rep.Swept, w.rep.SweptSample, missed)
		}
	})
	t.Run("final check: stale, expired and deleted keys", func(t *testing.T) {
		w := newTestWatcher()
		now := time.Now()
		w.Record([]Write{{Key: "a", Version: 3, At: now}, {Key: "b", Version: 3, Absent: true, At: now},
			{Key: "c", Version: 1, At: now.Add(-3 * time.Second), Expires: now.Add(-2 * time.Second)}, {Key: "d", Version: 2, At: now}})
		w.finalCheck("a", w.keys["a"], present(2), now)          // older than the last write
		w.finalCheck("b", w.keys["b"], present(3), now)          // deleted on legacy, still there
		w.finalCheck("c", w.keys["c"], present(1), now)          // expired on legacy, still there
		w.finalCheck("d", w.keys["d"], present(2), now)          // right
		w.finalCheck("b", w.keys["b"], State{Type: "none"}, now) // right
		if w.rep.Stale != 3 {
			t.Fatalf("stale %d, want 3: %v", w.rep.Stale, w.rep.StaleSample)
		}
	})
}
