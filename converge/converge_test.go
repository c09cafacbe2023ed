package converge_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/converge"
	"github.com/redisplit/redisplit/topology/topotest"
)

// Each kind of difference is found, in the right bucket, both ways; equal
// keys, redisplit's own keys and a key that converges within the rounds
// are not differences.
func TestCompare(t *testing.T) {
	ctx := context.Background()
	leg := topotest.Client(t, topotest.Standalone(t).Addr())
	cl := topotest.Cluster(t)
	tg := map[string]redis.UniversalClient{
		"cache":   redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), DisableIdentity: true}),
		"session": topotest.Client(t, topotest.Standalone(t).Addr()),
	}
	t.Cleanup(func() { tg["cache"].Close() })
	route := func(k, typ string) string {
		switch {
		case strings.HasPrefix(k, "c:"):
			return "cache"
		case strings.HasPrefix(k, "s:"):
			return "session"
		}
		return "" // not migrated
	}
	both := func(k, v string, ttl time.Duration, on string) {
		leg.Set(ctx, k, v, ttl)
		tg[on].Set(ctx, k, v, ttl)
	}
	for i, k := range []string{"c:1", "c:2", "c:3", "c:4", "c:5"} { // every cluster master has some
		both(k, "same", 0, "cache")
		leg.HSet(ctx, "s:h"+k, "f", i)
		tg["session"].HSet(ctx, "s:h"+k, "f", i)
	}
	both("s:ttl", "v", time.Hour, "session")
	leg.Set(ctx, "redisplit:lock", "own", 0) // skipped

	leg.Set(ctx, "c:value", "legacy", 0)
	tg["cache"].Set(ctx, "c:value", "target", 0)
	leg.Set(ctx, "s:missing", "v", 0)
	tg["session"].Set(ctx, "s:extra", "v", 0) // legacy has none
	leg.Set(ctx, "s:expiry", "v", time.Hour)
	tg["session"].Set(ctx, "s:expiry", "v", 2*time.Hour)
	leg.Set(ctx, "c:wrong", "v", 0)
	tg["cache"].Set(ctx, "c:wrong", "v", 0)
	tg["session"].Set(ctx, "c:wrong", "v", 0) // routed to cache
	leg.Set(ctx, "x:nowhere", "v", 0)
	tg["cache"].Set(ctx, "x:nowhere", "v", 0) // not migrated, yet on a target
	leg.RPush(ctx, "s:type", "a")
	tg["session"].Set(ctx, "s:type", "a", 0)
	// differs now, converges before the second round
	leg.Set(ctx, "c:soon", "v", 300*time.Millisecond)

	res, err := converge.Compare(ctx, converge.Options{Legacy: leg, Targets: tg, Route: route, Interval: 500 * time.Millisecond,
		Skip: func(k string) bool { return strings.HasPrefix(k, "redisplit:") }})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"c:value":   "cache: value on cache",
		"s:missing": "session: missing on target session",
		"s:extra":   "session: on target session, but legacy has none",
		"s:expiry":  "session: expiry on session",
		"c:wrong":   "session: on target session, but legacy routes it to cache",
		"x:nowhere": "cache: on target cache, but legacy migrates it nowhere",
		"s:type":    "session: value on session: legacy list:",
	}
	got := map[string]converge.Difference{}
	for _, d := range res.Differences {
		got[d.Key] = d
	}
	for k, w := range want {
		d, ok := got[k]
		if !ok || !strings.HasPrefix(d.Bucket+": "+d.Detail, w) {
			t.Errorf("%s: got %+v, want %q", k, d, w)
		}
		delete(got, k)
	}
	for k, d := range got {
		t.Errorf("unexpected difference %s: %+v", k, d)
	}
	if res.LegacyKeys != 18 || res.Routed["cache"] != 8 || res.Routed["session"] != 9 || res.OK() {
		t.Errorf("counts: legacy %d, routed %v, OK %v", res.LegacyKeys, res.Routed, res.OK())
	}
}
