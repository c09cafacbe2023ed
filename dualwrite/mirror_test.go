package dualwrite

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/store"
)

// Loop suppression on two real servers: an entry equal to what the
// destination holds is not let through (also a hashtable-encoded hash and
// set, whose DUMP order differs between servers), a different one is; and
// a paired direction drops the echo of the other's write even when the
// other side changed again meanwhile.
func TestSuppressorOnRealServers(t *testing.T) {
	ctx := ctxT(t)
	_, a := legacy(t)
	_, b := legacy(t)
	for _, c := range []*redis.Client{a, b} {
		c.Set(ctx, "s", "v", 0)
		c.Set(ctx, "ttl", "v", 0)
		c.PExpireAt(ctx, "ttl", time.Now().Add(time.Hour).Truncate(time.Millisecond))
		c.ZAdd(ctx, "z", redis.Z{Score: 1, Member: "m"})
	}
	// big enough for hashtable encodings, inserted in different orders
	for i := 0; i < 300; i++ {
		a.HSet(ctx, "h", fmt.Sprint("f", i), i)
		b.HSet(ctx, "h", fmt.Sprint("f", 299-i), 299-i)
		a.SAdd(ctx, "set", fmt.Sprint("m", i))
		b.SAdd(ctx, "set", fmt.Sprint("m", 299-i))
	}
	a.Set(ctx, "diff", "1", 0)
	b.Set(ctx, "diff", "2", 0)
	a.Set(ctx, "onlya", "1", 0)
	keys := []string{"s", "ttl", "z", "h", "set", "diff", "onlya", "absent"}
	es, err := ReadEntries(ctx, a, keys)
	if err != nil {
		t.Fatal(err)
	}
	fwd, rev := Pair(a, b)
	kept, err := fwd.Admit(ctx, es)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range kept {
		got = append(got, e.Key)
	}
	if fmt.Sprint(got) != "[diff onlya]" {
		t.Fatalf("let through %v, want [diff onlya]", got)
	}
	if fwd.Suppressed() != 6 {
		t.Errorf("suppressed %d, want 6", fwd.Suppressed())
	}
	// the forward copy of "diff" is written to b; the application then
	// writes b again before the reverse direction reads "diff" there: the
	// reverse read of the echo (b still holds what fwd wrote) is dropped
	if errs := (&store.Redis{Client: b}).Apply(ctx, kept, nil, store.Retry{}); errs != nil {
		t.Fatal(errs)
	}
	echo, _ := ReadEntries(ctx, b, []string{"diff"})
	b.Set(ctx, "diff", "3", 0) // newer than the echo
	a.Set(ctx, "diff", "0", 0) // and a differs from both
	kept, err = rev.Admit(ctx, echo)
	if err != nil || len(kept) != 0 {
		t.Fatalf("the echo of the forward write was let through (%v): it would carry an older value back", err)
	}
	// read back again (the key was marked again while its copy was in
	// flight): still the echo, never carried back
	if kept, _ = rev.Admit(ctx, echo); len(kept) != 0 {
		t.Errorf("a second read of the echo was carried back over the newer value")
	}
	// once the forward direction writes the key again, the old value read
	// there is no echo any more
	fwd.Mine.put(&store.Entry{Key: "diff", Type: "string", Payload: "another payload"})
	if kept, _ = rev.Admit(ctx, echo); len(kept) != 1 {
		t.Errorf("an old value taken for the echo of a newer write")
	}
	// the forward direction last deleted "gone" on b; after cutover the
	// application writes it on b (the reverse copies it to a), then
	// deletes it on b: that delete is no echo of the forward delete (b
	// held another value in between) and must reach a
	fwd.Mine.put(&store.Entry{Key: "gone", Type: store.TypeNone})
	b.Set(ctx, "gone", "app", 0)
	written, _ := ReadEntries(ctx, b, []string{"gone"})
	if kept, _ = rev.Admit(ctx, written); len(kept) != 1 {
		t.Fatalf("the application's write on b not copied")
	}
	if errs := (&store.Redis{Client: a}).Apply(ctx, kept, nil, store.Retry{}); errs != nil {
		t.Fatal(errs)
	}
	b.Del(ctx, "gone")
	deleted, _ := ReadEntries(ctx, b, []string{"gone"})
	if kept, _ = rev.Admit(ctx, deleted); len(kept) != 1 {
		t.Errorf("the application's delete on b taken for the echo of an older forward delete: a keeps the key")
	}
	// a Big entry (no payload: the source's size threshold) is compared
	// element by element, page by page
	for i := 0; i < 3000; i++ {
		a.SAdd(ctx, "bigset", fmt.Sprint("m", i))
		b.SAdd(ctx, "bigset", fmt.Sprint("m", 2999-i))
		a.RPush(ctx, "biglist", i)
		b.RPush(ctx, "biglist", i)
	}
	b.RPush(ctx, "biglist", "one more")
	big := []*store.Entry{{Key: "bigset", Type: "set", Big: true}, {Key: "biglist", Type: "list", Big: true}}
	kept, err = (&Suppressor{Src: a, Dst: b}).Admit(ctx, big)
	if err != nil || len(kept) != 1 || kept[0].Key != "biglist" {
		t.Errorf("big entries: kept %v (%v), want only biglist (it differs)", kept, err)
	}
}

func TestEchoesBounded(t *testing.T) {
	s := NewEchoes(2)
	e := func(k, v string) *store.Entry { return &store.Entry{Key: k, Type: "string", Payload: v + "0123456789"} }
	s.put(e("a", "1"))
	s.put(e("b", "1"))
	s.put(e("c", "1")) // full: forgets everything first
	if s.take(e("a", "1")) || !s.take(e("c", "1")) || !s.take(e("c", "1")) {
		t.Error("Echoes did not forget when full, or forgot an echo read twice")
	}
	s.put(e("d", "1"))
	if s.take(e("d", "2")) {
		t.Error("another value taken for the echo")
	}
}
