package skew

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/redisplit/redisplit/topology/topotest"
)

// Known CLUSTER KEYSLOT answers (Redis cluster specification and redis-cli).
func TestSlotKnownValues(t *testing.T) {
	for key, want := range map[string]int{
		"123456789":            12739, // CRC16/XMODEM check value 0x31C3
		"foo":                  12182,
		"bar":                  5061,
		"somekey":              11058,
		"{user1000}.followers": Slot("user1000"),
		"foo{}{bar}":           Slot("foo{}{bar}"), // empty first tag: whole key
		"foo{{bar}}zap":        Slot("{bar"),
		"foo{bar}{zap}":        Slot("bar"),
		"{foo}bar":             12182,
		"":                     0,
	} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
}

// The slot of every kind of name — tags, empty tags, nested braces, binary
// bytes — equals what a real server answers to CLUSTER KEYSLOT.
func TestSlotMatchesServer(t *testing.T) {
	s := topotest.Standalone(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	c := topotest.Client(t, s.Addr())
	ctx := context.Background()
	keys := []string{"", "a", "foo", "{", "}", "{}", "{}x", "x{}", "{a}", "x{a}y", "{a}{b}", "{{a}}", "a{b{c}d}",
		"user:{42}:cart", "\x00\xff{\x01}\xfe", "sess:\xc3\x28", strings.Repeat("k", 1000)}
	for i := 0; i < 300; i++ {
		keys = append(keys, fmt.Sprintf("cache:item:%d", i), fmt.Sprintf("{tenant%d}:x", i%7), string([]byte{byte(i), byte(i * 7), '{', byte(i * 13), '}'}))
	}
	for _, k := range keys {
		want, err := c.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := Slot(k); got != int(want) {
			t.Errorf("Slot(%q) = %d, CLUSTER KEYSLOT says %d", k, got, want)
		}
	}
}

func TestRangesAsRedisCli(t *testing.T) {
	got := fmt.Sprint(Ranges(3))
	if got != "[0-5460 5461-10922 10923-16383]" {
		t.Errorf("Ranges(3) = %s", got)
	}
	for n := 1; n <= 10; n++ {
		r := Ranges(n)
		if len(r) != n || r[0].First != 0 || r[n-1].Last != Slots-1 {
			t.Fatalf("Ranges(%d) = %v", n, r)
		}
		for i := 1; i < n; i++ {
			if r[i].First != r[i-1].Last+1 {
				t.Fatalf("Ranges(%d) = %v: not contiguous", n, r)
			}
		}
	}
}

func TestForecastFlagsFamilyAndBigKey(t *testing.T) {
	f := New(3)
	for i := 0; i < 9000; i++ {
		f.Add(fmt.Sprintf("cache:item:%d", i), 100)
	}
	for i := 0; i < 3000; i++ {
		f.Add(fmt.Sprintf("cart:{tenant-big}:%d", i), 100)
	}
	f.Add("cache:huge", 200000)
	fc := f.Forecast()
	if fc.Keys != 12001 || fc.Bytes != 12000*100+200000+12001*KeyOverhead || fc.BytesEstimated {
		t.Fatalf("totals: %+v", fc)
	}
	if len(fc.HashTags) != 1 || fc.HashTags[0].Tag != "tenant-big" || fc.HashTags[0].Keys != 3000 {
		t.Fatalf("hash tags: %+v", fc.HashTags)
	}
	if len(fc.BigKeys) != 1 || fc.BigKeys[0].Key != "cache:huge" {
		t.Fatalf("big keys: %+v", fc.BigKeys)
	}
	tagNode := fc.HashTags[0].Node
	if fc.HotSlots[0].Slot != fc.HashTags[0].Slot || !strings.Contains(fc.HotSlots[0].Cause, "tenant-big") {
		t.Errorf("hottest slot: %+v", fc.HotSlots[0])
	}
	var warned bool
	for _, w := range fc.Warnings {
		if strings.HasPrefix(w, fmt.Sprintf("node %d ", tagNode)) && strings.Contains(w, "{tenant-big}") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no over-share warning for node %d naming the tag: %q", tagNode, fc.Warnings)
	}
}

// Unmeasured keys (scan --sample) count as the mean measured key.
func TestForecastEstimatesUnmeasured(t *testing.T) {
	f := New(2)
	for i := 0; i < 1000; i++ {
		b := int64(-1)
		if i%10 == 0 {
			b = 50
		}
		f.Add(fmt.Sprintf("k%d", i), b)
	}
	fc := f.Forecast()
	if !fc.BytesEstimated || fc.Bytes < 49000+1000*KeyOverhead || fc.Bytes > 51000+1000*KeyOverhead {
		t.Fatalf("bytes %d estimated %v", fc.Bytes, fc.BytesEstimated)
	}
	if len(fc.Warnings) != 0 {
		t.Errorf("uniform keys warned: %q", fc.Warnings)
	}
}

func TestTagTableBounded(t *testing.T) {
	f := New(3)
	for i := 0; i < maxTags+5000; i++ {
		f.Add(fmt.Sprintf("{u%d}:a", i), 10)
	}
	for i := 0; i < 2000; i++ {
		f.Add("{hot}:"+fmt.Sprint(i), 10)
	}
	if len(f.tags) > maxTags {
		t.Fatalf("%d tags tracked", len(f.tags))
	}
	fc := f.Forecast()
	if !fc.TagsLowerBound || len(fc.HashTags) == 0 || fc.HashTags[0].Tag != "hot" {
		t.Fatalf("%+v", fc.HashTags)
	}
}

func TestMergeEqualsOnePass(t *testing.T) {
	one, a, b := New(3), New(3), New(3)
	for i := 0; i < 5000; i++ {
		k := fmt.Sprintf("{fam%d}:k%d", i%3, i)
		if i%5 == 0 {
			k = fmt.Sprintf("plain:%d", i)
		}
		one.Add(k, int64(i%97))
		if i%2 == 0 {
			a.Add(k, int64(i%97))
		} else {
			b.Add(k, int64(i%97))
		}
	}
	a.Merge(b)
	// Samples too: a family's sample is its smallest name, whatever the order.
	if x, y := fmt.Sprintf("%+v", one.Forecast()), fmt.Sprintf("%+v", a.Forecast()); x != y {
		t.Errorf("merged forecast differs:\n%s\n%s", x, y)
	}
}
