package dualwrite

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestNoTouch(t *testing.T) {
	ctx := ctxT(t)
	srv, _ := legacy(t)
	if ok, err := SupportsNoTouch(ctx, client(t, srv.Addr(), "", "", 0)); ok || err != nil {
		t.Fatalf("redis 7.0: SupportsNoTouch = %v, %v", ok, err)
	}
	vk := valkey(t)
	vc := client(t, vk.Addr(), "", "", 0)
	if ok, err := SupportsNoTouch(ctx, vc); !ok || err != nil {
		t.Fatalf("valkey: SupportsNoTouch = %v, %v", ok, err)
	}
	opt := *vc.Options()
	opt.OnConnect = NoTouchOnConnect(nil)
	nt := redis.NewClient(&opt)
	defer nt.Close()
	raw, err := nt.Do(ctx, "client", "info").Text()
	if err != nil {
		t.Fatal(err)
	}
	if _, rest, _ := strings.Cut(raw, " flags="); !strings.Contains(strings.Fields(rest)[0], "T") {
		t.Fatalf("no T flag: %s", raw)
	}
	// Reading through the no-touch client leaves the idle time alone.
	vc.Set(ctx, "k", "v", 0)
	time.Sleep(1100 * time.Millisecond)
	nt.Get(ctx, "k")
	if idle := vc.ObjectIdleTime(ctx, "k").Val(); idle < time.Second {
		t.Fatalf("idle time reset to %v by a no-touch read", idle)
	}
	vc.Get(ctx, "k")
	if idle := vc.ObjectIdleTime(ctx, "k").Val(); idle >= time.Second {
		t.Fatalf("a plain read did not touch: idle %v", idle)
	}
}
