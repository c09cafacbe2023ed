package copier_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/redisplit/redisplit/copier"
	"github.com/redisplit/redisplit/store"
	"github.com/redisplit/redisplit/topology/topotest"
)

// A key marked 2,000 times (in 20 bursts, each waited for) while 200
// others are marked once, on real servers: every mark is covered by exactly one read (Marks counts them
// all), the hot key is read far fewer than 2,000 times (coalescing) and is
// the bucket's top hot key; the cold keys are read once each.
func TestCopierCountsHotKeysAndCoalescing(t *testing.T) {
	ctx := ctxT(t)
	legacy := topotest.Client(t, topotest.Standalone(t).Addr())
	sink, raw := target(t, "session", topotest.Standalone(t))
	sb := bucket("session", sink, &journal{})
	src := &store.RedisSource{Client: legacy}
	defer src.Close()
	cp, err := copier.New(ctx, copier.Config{Source: src, Route: prefixRoute(sb, sb), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	const hotMarks, cold, bursts = 2000, 200, 20
	p := cp.Producer("capture")
	// as change capture would: each write, then its mark; the writes go
	// ten to a pipeline, as an application's would
	for i := 0; i < hotMarks; i++ {
		if i%10 == 0 {
			pl := legacy.Pipeline()
			for j := i; j < i+10; j++ {
				pl.Set(ctx, "s:hot", j, 0)
			}
			if _, err := pl.Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := p.Mark(ctx, "s:hot", 0); err != nil {
			t.Fatal(err)
		}
		if (i+1)%(hotMarks/bursts) == 0 { // each burst copied: at least one read each
			if err := p.Wait(ctx, p.Marked()); err != nil {
				t.Fatal(err)
			}
		}
		if i%10 == 0 {
			k := fmt.Sprint("s:cold:", i/10)
			legacy.Set(ctx, k, i, 0)
			if _, err := p.Mark(ctx, k, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := cp.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if v := raw.Get(ctx, "s:hot").Val(); v != fmt.Sprint(hotMarks-1) {
		t.Fatalf("target's s:hot is %q, want the last write %d", v, hotMarks-1)
	}
	f := sb.Figures()
	if f.Marks != hotMarks+cold {
		t.Errorf("marks covered %d, want every mark (%d)", f.Marks, hotMarks+cold)
	}
	top := sb.HotKeys(10, time.Now())
	if len(top) == 0 || top[0].Key != "s:hot" {
		t.Fatalf("top keys %+v: want s:hot first", top)
	}
	h := top[0]
	t.Logf("s:hot: %d marks → %d reads; bucket: %d marks → %d reads; %.0f copies/s", hotMarks, h.Copies, f.Marks, f.Reads, h.PerSec)
	if h.Copies >= hotMarks/2 || h.Copies < bursts || h.Over != 0 {
		t.Errorf("s:hot read %d times (+%d) for %d marks: want far fewer (coalescing)", h.Copies, h.Over, hotMarks)
	}
	if f.Reads != h.Copies+cold {
		t.Errorf("bucket reads %d, want the hot key's %d + %d cold keys once each", f.Reads, h.Copies, cold)
	}
	if !h.Hot {
		t.Errorf("s:hot (%d copies, the others 1) not flagged hot", h.Copies)
	}
	for _, k := range top[1:] {
		if k.Copies != 1 || k.Hot {
			t.Errorf("cold key %+v", k)
		}
	}
}
