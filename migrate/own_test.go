package migrate

import (
	"context"
	"testing"
	"time"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/copier"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
	"github.com/redisplit/redisplit/topology/topotest"
)

// With --allow-nonempty, a key redisplit wrote in this run and then sees
// again (SCAN repeats it; with change capture, every updated key) is its
// own: rewritten, never refused, never on the refusal list. A foreign key
// is never overwritten, and never deleted: not when legacy has it, not
// when legacy deletes it (its tombstone does not reach the target).
func TestOwnKeySeenAgainInTheSameRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leg, tgt := topotest.Standalone(t), topotest.Standalone(t)
	lc, tc := topotest.Client(t, leg.Addr()), topotest.Client(t, tgt.Addr())
	tc.Set(ctx, "queue:foreign", "theirs", 0)
	tc.Set(ctx, "queue:foreign2", "theirs", 0)
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
	for _, logical := range []bool{false, true} {
		o := Options{AllowNonEmpty: true, ForceLogical: logical, State: sd}
		o.defaults()
		b, err := openBucket(o, "queue", r, &BucketResult{}, &state.Bucket{})
		if err != nil {
			t.Fatal(err)
		}
		held := map[string]int{}
		src := &store.RedisSource{Client: lc}
		cp, err := copier.New(ctx, copier.Config{Source: src, ForceLogical: logical,
			Route: func(string, string) []*copier.Bucket { return b.one },
			Observe: func(_ *copier.Bucket, e *store.Entry, o copier.Outcome, _ int64) {
				if o == copier.Held {
					held[e.Key]++ // one worker: no lock needed
				}
			}, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		p := cp.Producer("test")
		copyOnce := func(v string) {
			t.Helper()
			lc.Set(ctx, "queue:a", v, 0)
			for _, k := range []string{"queue:a", "queue:foreign", "queue:foreign2"} {
				if _, err := p.Mark(ctx, k, 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Wait(ctx, p.Marked()); err != nil {
				t.Fatal(err)
			}
			if b.cb.Err() != nil {
				t.Fatal(b.cb.Err())
			}
		}
		copyOnce("v1")
		copyOnce("v2") // the same key seen again, now on the target
		if got := tc.Get(ctx, "queue:a").Val(); got != "v2" {
			t.Errorf("logical %v: target holds %q, want the second copy v2", logical, got)
		}
		if held["queue:foreign"] != 2 || held["queue:foreign2"] != 2 || held["queue:a"] != 0 {
			t.Errorf("logical %v: held %v, want both foreign keys held twice, queue:a never", logical, held)
		}
		cp.Close()
		src.Close()
		b.close()
		lc.Del(ctx, "queue:a")
		tc.Del(ctx, "queue:a")
	}
	if got := tc.Get(ctx, "queue:foreign").Val(); got != "theirs" {
		t.Errorf("foreign key overwritten: %q", got)
	}
	if got := tc.Get(ctx, "queue:foreign2").Val(); got != "theirs" {
		t.Errorf("foreign key absent on legacy deleted: %q", got)
	}
	var refused []string
	sd.ReadRefused("queue", func(k string) error { refused = append(refused, k); return nil })
	if len(refused) != 1 || refused[0] != "queue:foreign" {
		t.Errorf("refusal list %q, want only queue:foreign", refused)
	}
	journaled := map[string]bool{}
	sd.ReadJournal("queue", func(k string) error { journaled[k] = true; return nil })
	if journaled["queue:foreign"] || journaled["queue:foreign2"] || !journaled["queue:a"] {
		t.Errorf("journal %v: foreign keys must never be journaled (rollback would delete them)", journaled)
	}
}
