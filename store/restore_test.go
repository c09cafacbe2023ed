package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/topology/topotest"
)

// The write path against a real server: a good payload lands with its
// absolute expiry; a payload the server cannot read is redisconn.BadPayload (what a
// target of another version answers, and what makes migrate copy the key
// logically); a full noeviction server is OOM.
func TestApplyClassesOnRealServer(t *testing.T) {
	ctx := context.Background()
	src := topotest.Client(t, topotest.Standalone(t).Addr())
	dstSrv := topotest.Standalone(t, "--maxmemory", "1mb", "--maxmemory-policy", "noeviction")
	r, err := Open(ctx, "queue", config.Target{Kind: config.KindStandalone, Endpoint: config.Endpoint{URL: "redis://" + dstSrv.Addr() + "/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src.Set(ctx, "k", "value", 0)
	payload, _ := src.Dump(ctx, "k").Bytes()
	exp := time.Now().Add(time.Hour).UnixMilli()
	bad := append([]byte(nil), payload...)
	bad[len(bad)-1] ^= 0xff // checksum no longer matches
	retry := Retry{For: time.Second}
	fails := r.Apply(ctx, []*Entry{{Key: "good", Payload: string(payload), ExpireAt: exp}, {Key: "bad", Payload: string(bad)}}, nil, retry)
	if len(fails) != 1 || fails[0].Key != "bad" || fails[0].Class != redisconn.BadPayload {
		t.Fatalf("failures: %+v", fails)
	}
	if got := r.Client.PExpireTime(ctx, "good").Val(); got.Milliseconds() != exp {
		t.Errorf("absolute expiry %d, want %d", got.Milliseconds(), exp)
	}
	// fill the target to its limit
	big := make([]byte, 100<<10)
	src.Set(ctx, "big", big, 0)
	bp, _ := src.Dump(ctx, "big").Bytes()
	var entries []*Entry
	for i := 0; i < 30; i++ {
		entries = append(entries, &Entry{Key: "big" + string(rune('a'+i)), Payload: string(bp)})
	}
	fails = r.Apply(ctx, entries, nil, retry)
	if len(fails) == 0 || fails[len(fails)-1].Class != redisconn.OOM {
		t.Fatalf("no redisconn.OOM from a full noeviction target: %+v", fails)
	}
}

// failingHook fails every pipeline before it runs, with a permanent error
// and without setting any command's error (as a client-side hook may).
type failingHook struct{}

func (failingHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (failingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (failingHook) ProcessPipelineHook(redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(context.Context, []redis.Cmder) error {
		return errors.New("ERR refused before running")
	}
}

// A pipeline that did not run is no success: every entry fails with the
// pipeline's error (Restore once reported success here), and Delete
// returns it.
func TestPipelineThatDidNotRunFailsEveryKey(t *testing.T) {
	ctx := context.Background()
	srv := topotest.Standalone(t)
	src := topotest.Client(t, srv.Addr())
	src.Set(ctx, "k", "v", 0)
	payload, _ := src.Dump(ctx, "k").Result()
	for _, kind := range []string{config.KindStandalone, config.KindSentinel} {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DisableIdentity: true})
		c.AddHook(failingHook{})
		r := &Redis{Bucket: "queue", Kind: kind, Client: c}
		fails := r.Apply(ctx, []*Entry{{Key: "a", Payload: payload}, Absent("b")}, nil, Retry{For: time.Second})
		if len(fails) != 2 || !strings.Contains(fails[0].Error(), "refused before running") || fails[0].Class != redisconn.Permanent {
			t.Errorf("%s: Apply through a pipeline that did not run: %v", kind, fails)
		}
		if _, err := r.Delete(ctx, []string{"k"}, Retry{For: time.Second}); err == nil {
			t.Errorf("%s: Delete through a pipeline that did not run: no error", kind)
		}
		c.Close()
	}
	if src.Exists(ctx, "a").Val() != 0 || src.Exists(ctx, "k").Val() != 1 {
		t.Fatal("the hook let a command through")
	}
}
