package store

import (
	"context"
	"testing"
	"time"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/topology/topotest"
)

// The write path against a real server: a good payload lands with its
// absolute expiry; a payload the server cannot read is BadPayload (what a
// target of another version answers, and what makes migrate copy the key
// logically); a full noeviction server is OOM.
func TestRestoreClassesOnRealServer(t *testing.T) {
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
	fails := r.Restore(ctx, []*Entry{{Key: "good", Payload: string(payload), ExpireAt: exp}, {Key: "bad", Payload: string(bad)}}, retry)
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
	fails = r.Restore(ctx, entries, retry)
	if len(fails) == 0 || fails[len(fails)-1].Class != redisconn.OOM {
		t.Fatalf("no OOM from a full noeviction target: %+v", fails)
	}
}
