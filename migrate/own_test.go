package migrate

import (
	"context"
	"testing"
	"time"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
	"github.com/redisplit/redisplit/topology/topotest"
)

// With --allow-nonempty, a key redisplit wrote in this run and then sees
// again (SCAN repeats it; with change capture, every updated key) is its
// own: rewritten, never refused, never on the refusal list.
func TestOwnKeySeenAgainInTheSameRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leg, tgt := topotest.Standalone(t), topotest.Standalone(t)
	lc, tc := topotest.Client(t, leg.Addr()), topotest.Client(t, tgt.Addr())
	lc.Set(ctx, "queue:a", "v1", 0)
	tc.Set(ctx, "queue:foreign", "theirs", 0)
	lc.Set(ctx, "queue:foreign", "legacy's", 0)
	r, err := store.Open(ctx, "queue", config.Target{Kind: config.KindStandalone, Endpoint: config.Endpoint{URL: "redis://" + tgt.Addr() + "/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sd, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o := Options{AllowNonEmpty: true, ForceLogical: true, State: sd}
	o.defaults()
	b, err := openBucket(o, "queue", r, &BucketResult{}, &state.Bucket{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.j.Close()
	defer b.refusedJ.Close()
	p := &pass{o: o, legacy: lc}
	copyOnce := func(v string) {
		t.Helper()
		lc.Set(ctx, "queue:a", v, 0)
		ws := []*write{
			{e: &store.Entry{Key: "queue:a", Type: "string"}, seq: 1},
			{e: &store.Entry{Key: "queue:foreign", Type: "string"}, seq: 1},
		}
		if err := p.writeBucket(ctx, b, ws); err != nil {
			t.Fatal(err)
		}
		if ws[0].out != copiedKey || ws[1].out != refusedKey {
			t.Fatalf("copy of %q: outcomes %v %v, want copied, refused", v, ws[0].out, ws[1].out)
		}
	}
	copyOnce("v1")
	copyOnce("v2") // the same key seen again, now on the target
	if got := tc.Get(ctx, "queue:a").Val(); got != "v2" {
		t.Errorf("target holds %q, want the second copy v2", got)
	}
	if got := tc.Get(ctx, "queue:foreign").Val(); got != "theirs" {
		t.Errorf("foreign key overwritten: %q", got)
	}
	var refused []string
	sd.ReadRefused("queue", func(k string) error { refused = append(refused, k); return nil })
	if len(refused) != 1 || refused[0] != "queue:foreign" {
		t.Errorf("refusal list %q, want only queue:foreign", refused)
	}
}
