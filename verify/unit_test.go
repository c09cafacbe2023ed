package verify

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestKeyDigest(t *testing.T) {
	kh := newKeyHash()
	keys := make([]string, 50_000)
	for i := range keys {
		keys[i] = fmt.Sprint("key:", i)
	}
	digestOf := func(keys []string) *keyDigest {
		d := new(keyDigest)
		for _, k := range keys {
			d.add(kh.of(k))
		}
		return d
	}
	// The same set in another order (as another server's SCAN gives it):
	// no partition differs.
	rev := slices.Clone(keys)
	slices.Reverse(rev)
	if m := digestOf(keys).mismatch(digestOf(rev)); m != nil {
		t.Fatalf("equal sets differ in %d partitions", len(m))
	}
	// One key more on one side, one key fewer, one key replaced by another
	// (same count): each is found in exactly the partition of the keys
	// concerned.
	base := digestOf(keys)
	for name, c := range map[string]struct {
		other []string
		want  []string
	}{
		"extra":    {append(slices.Clone(keys), "key:extra"), []string{"key:extra"}},
		"missing":  {keys[1:], []string{"key:0"}},
		"replaced": {append(slices.Clone(keys[1:]), "key:other"), []string{"key:0", "key:other"}},
		"twice":    {append(slices.Clone(keys), "key:7"), []string{"key:7"}},
	} {
		m := base.mismatch(digestOf(c.other))
		want := map[uint32]bool{}
		for _, k := range c.want {
			want[partition(kh.of(k))] = true
		}
		if !maps.Equal(m, want) {
			t.Errorf("%s: mismatched partitions %v, want %v", name, m, want)
		}
	}
}

func TestSamplerDeterministicAndProportional(t *testing.T) {
	a, b := NewSampler(10), NewSampler(10)
	in := 0
	for i := 0; i < 100_000; i++ {
		k := fmt.Sprint("sess:", i)
		if a.In(k) != b.In(k) {
			t.Fatal("sampling is not a function of the key")
		}
		if a.In(k) {
			in++
		}
	}
	if in < 9_000 || in > 11_000 {
		t.Errorf("10%% sample took %d of 100000", in)
	}
	if !NewSampler(100).In("x") || !NewSampler(0).In("x") {
		t.Error("100% (and unset) must take every key")
	}
}

func TestConfidence(t *testing.T) {
	c := confidence(5, 30_000, 0)
	if math.Abs(c.UpperRate-1e-4) > 1e-9 || !strings.Contains(c.Statement, "95% confidence") {
		t.Errorf("rule of three: %+v", c)
	}
	c = confidence(5, 1000, 10)
	if c.UpperRate <= 0.01 || c.UpperRate > 0.03 {
		t.Errorf("10 of 1000: upper bound %v", c.UpperRate)
	}
	if confidence(5, 0, 0).UpperRate != 1 {
		t.Error("an empty sample proves nothing")
	}
}

func TestPayloadType(t *testing.T) {
	tail := strings.Repeat("\x00", 10)
	for b, want := range map[byte]string{0: "string", 4: "hash", 16: "hash", 2: "set", 11: "set", 20: "set",
		3: "zset", 17: "zset", 18: "list", 14: "list", 15: "stream", 21: "stream", 7: ""} {
		if got := payloadType(string([]byte{b}) + tail); got != want {
			t.Errorf("type byte %d: %q, want %q", b, got, want)
		}
	}
	if payloadType("") != "" {
		t.Error("empty payload")
	}
}

func TestExpiryClose(t *testing.T) {
	none := side{exists: true, pttl: -1}
	at := func(ms int64) side { return side{exists: true, pttl: 1000, expireAt: ms} }
	for _, c := range []struct {
		a, b side
		want bool
	}{
		{none, none, true},
		{none, at(5000), false},
		{at(5000), none, false},
		{at(5000), at(5999), true},
		{at(5000), at(6001), false},
		{at(6001), at(5000), false},
	} {
		if got := expiryClose(c.a, c.b, 1000); got != c.want {
			t.Errorf("expiryClose(%+v, %+v) = %v", c.a, c.b, got)
		}
	}
}

func cmd(v any) *redis.Cmd {
	c := redis.NewCmd(nil)
	c.SetVal(v)
	return c
}

func TestCanonicalComparisons(t *testing.T) {
	for _, c := range []struct {
		typ   string
		a, b  any
		equal bool
	}{
		{"set", []any{"a", "b", "c"}, []any{"c", "a", "b"}, true},
		{"set", []any{"a", "b", "c"}, []any{"a", "b", "d"}, false},
		{"set", []any{"a", "b"}, []any{"a", "b", "c"}, false},
		{"hash", []any{"f", "1", "g", "2"}, map[any]any{"g": "2", "f": "1"}, true},
		{"hash", []any{"f", "1", "g", "2"}, map[any]any{"g": "2", "f": "x"}, false},
		{"zset", []any{"a", "1", "b", "2.5"}, []any{[]any{"a", 1.0}, []any{"b", 2.5}}, true},
		{"zset", []any{"a", "1", "b", "2.5"}, []any{[]any{"a", 1.0}, []any{"b", 3.0}}, false},
		{"list", []any{"x", "y"}, []any{"y", "x"}, false},
		{"list", []any{"x", "y"}, []any{"x", "y"}, true},
		{"stream", []any{[]any{"1-1", []any{"f", "v"}}}, []any{[]any{"1-1", []any{"f", "v"}}}, true},
		{"stream", []any{[]any{"1-1", []any{"f", "v"}}}, []any{[]any{"1-2", []any{"f", "v"}}}, false},
		{"string", "abc", "abc", true},
		{"string", "abc", "abd", false},
	} {
		d := diffCanonical(canonical(c.typ, cmd(c.a)), canonical(c.typ, cmd(c.b)))
		if (d == "") != c.equal {
			t.Errorf("%s %v vs %v: diff %q, want equal=%v", c.typ, c.a, c.b, d, c.equal)
		}
	}
}

func TestDifferenceJSONKey(t *testing.T) {
	b, _ := Difference{Key: "sess:1", Category: Missing}.MarshalJSON()
	if !strings.Contains(string(b), `"key":"sess:1"`) || strings.Contains(string(b), "key_b64") {
		t.Errorf("utf-8 key: %s", b)
	}
	b, _ = Difference{Key: "k\xff", Category: Missing}.MarshalJSON()
	if !strings.Contains(string(b), `"key_b64":"a/8="`) || strings.Contains(string(b), `"key":`) {
		t.Errorf("binary key: %s", b)
	}
	var d Difference
	if err := d.UnmarshalJSON(b); err != nil || d.Key != "k\xff" || d.Category != Missing {
		t.Errorf("round trip: %+v %v", d, err)
	}
}

func TestBudgetPaces(t *testing.T) {
	b := newBudget(1000) // 1000 commands/s, at most one second in hand
	ctx := context.Background()
	if err := b.wait(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := b.wait(ctx, 500); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("500 commands over budget went after %s, want about 500ms", d)
	}
	if err := newBudget(0).wait(ctx, 1_000_000); err != nil {
		t.Error("no budget must not wait")
	}
}
