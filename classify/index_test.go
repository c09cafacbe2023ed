package classify

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/redisplit/redisplit/config"
)

// naive is Classify without index or prefilter: every rule's plain matcher in
// order. The fast path must agree with it on every key and type.
func naive(c *Classifier, key, typ string) Match {
	for _, r := range c.rules {
		if r.Type != "" && r.Type != typ {
			continue
		}
		var ok bool
		if r.re == nil {
			ok = len(key) >= len(r.Prefix) && key[:len(r.Prefix)] == r.Prefix
		} else {
			ok = r.re.MatchString(key)
		}
		if ok {
			return Match{Bucket: r.Bucket, Rule: &r.Rule}
		}
	}
	return Match{Bucket: Unknown}
}

func TestIndexAndPrefilterNeverChangeRouting(t *testing.T) {
	f := loadFixture(t)
	var keys []string
	for _, lib := range f.Libraries {
		for _, k := range lib.Keys {
			keys = append(keys, k.Key)
		}
	}
	for _, k := range f.Unclaimed {
		keys = append(keys, k.Key)
	}
	// Variants: truncated, extended, prefixed, with binary and non-ASCII bytes.
	base := len(keys)
	for _, k := range keys[:base] {
		keys = append(keys, k[:len(k)/2], k+":x", "x"+k, "\xff"+k, k+"\xfe", "é"+k, ":"+k)
	}
	keys = append(keys, "", ":", "\x00", "\uFFFD", "a\uFFFDb", "laravel_cache_\xff")
	cfgs := []*config.Config{nil, {Rules: []config.Rule{
		{Regex: "(?i)^SESS:", Bucket: "session"},
		{Regex: "é+x$", Bucket: "queue"},
		{Glob: "[a-c]*:\\*", Bucket: "cache"},
		{Regex: "\uFFFD", Bucket: "queue"},
	}}}
	types := []string{"", "string", "hash", "list", "set", "zset", "stream", "vectorset"}
	n := 0
	for _, cfg := range cfgs {
		c := defaultRouter(t, cfg)
		for _, k := range keys {
			for _, typ := range types {
				got, want := c.Classify(k, typ), naive(c, k, typ)
				if got.Bucket != want.Bucket || got.Rule != want.Rule {
					t.Errorf("%q (%s): fast path %s by %v, plain %s by %v", k, typ, got.Bucket, got.Rule, want.Bucket, want.Rule)
				}
				n++
			}
		}
	}
	t.Logf("%d classifications compared", n)
}

// checkClassifyName: when ClassifyName decides by the name alone, Classify
// decides the same for every type, module types and "unknown" included.
func checkClassifyName(t testing.TB, c *Classifier, key string) bool {
	m, ok := c.ClassifyName(key)
	if !ok {
		return false
	}
	for _, typ := range []string{"", "string", "hash", "list", "set", "zset", "stream", "ReJSON-RL"} {
		if got := c.Classify(key, typ); got.Bucket != m.Bucket || got.Rule != m.Rule {
			t.Fatalf("%q: ClassifyName says %s by %v without the type, Classify(%q) says %s by %v", key, m.Bucket, m.Rule, typ, got.Bucket, got.Rule)
		}
	}
	return true
}

func TestClassifyName(t *testing.T) {
	f := loadFixture(t)
	var keys []string
	for _, lib := range f.Libraries {
		for _, k := range lib.Keys {
			keys = append(keys, k.Key, k.Key+":x", "x"+k.Key)
		}
	}
	keys = append(keys, "", "cache:api:v1:item:1", "sess:0000000000ab", "queue:jobs:1", "user:1:tags")
	for _, cfg := range []*config.Config{nil, {Rules: []config.Rule{
		{Glob: "queue:*", Type: "zset", Bucket: "cache"},
		{Prefix: "q", Bucket: "queue"},
	}}} {
		c := defaultRouter(t, cfg)
		byName, needType := 0, 0
		for _, k := range keys {
			if checkClassifyName(t, c, k) {
				byName++
			} else {
				needType++
			}
		}
		// Both outcomes must occur: the presets have typed rules (sidekiq's
		// queue:* type list) and many untyped ones.
		if byName == 0 || needType == 0 {
			t.Fatalf("by name %d, type needed %d of %d keys", byName, needType, len(keys))
		}
		if _, ok := c.ClassifyName("queue:jobs:1"); ok {
			t.Error("queue:jobs:1 decided without its type although a typed rule matches its name")
		}
		if m, ok := c.ClassifyName("sess:0000000000ab"); !ok || m.Bucket != Session {
			t.Errorf("sess:0000000000ab: %v %v, want session by name", m.Bucket, ok)
		}
		t.Logf("%d keys by name, %d need TYPE", byName, needType)
	}
}

// TestClassifyConcurrent: one Classifier serves many goroutines (scan and
// migrate workers share it); run with -race.
func TestClassifyConcurrent(t *testing.T) {
	c := defaultRouter(t, nil)
	keys, types := benchKeys()
	want := make([]Match, len(keys))
	for i := range keys {
		want[i] = c.Classify(keys[i], types[i])
	}
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := range keys {
				if got := c.Classify(keys[i], types[i]); got != want[i] {
					done <- fmt.Errorf("%q: %v, want %v", keys[i], got, want[i])
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzFastPathMatchesPlain: for any name and type, the indexed, prefiltered
// Classify decides exactly as plain sequential matching. The seed corpus is
// the fixture; `go test -fuzz FuzzFastPath ./classify/` explores further.
func FuzzFastPathMatchesPlain(f *testing.F) {
	for _, lib := range loadFixtureTB(f).Libraries {
		for _, k := range lib.Keys {
			f.Add(k.Key, k.Type)
		}
	}
	c, _, err := Router(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key, typ string) {
		got, want := c.Classify(key, typ), naive(c, key, typ)
		if got.Bucket != want.Bucket || got.Rule != want.Rule {
			t.Fatalf("%q (%s): fast path %s by %v, plain %s by %v", key, typ, got.Bucket, got.Rule, want.Bucket, want.Rule)
		}
		checkClassifyName(t, c, key)
	})
}

func TestMatchAll(t *testing.T) {
	c := defaultRouter(t, &config.Config{Rules: []config.Rule{{Prefix: "sess:", Bucket: "cache"}}})
	all := c.MatchAll("sess:abc", "string")
	if len(all) != 2 || all[0].Rule.Source != "rules[1]" || all[1].Rule.Source != "preset connect-redis" {
		t.Fatalf("got %+v", all)
	}
	if first := c.Classify("sess:abc", "string"); first.Rule != all[0].Rule {
		t.Fatal("MatchAll's first match is not Classify's")
	}
	if got := c.MatchAll("nothing:here", "string"); len(got) != 0 {
		t.Fatalf("got %+v", got)
	}
}

func TestPossibleBuckets(t *testing.T) {
	c := defaultRouter(t, nil)
	tests := []struct {
		key  string
		want []Bucket
	}{
		{"sess:abc", []Bucket{Session}},                      // untyped rule: one bucket
		{"queue:default", []Bucket{Queue, Unknown}},          // only a list is Sidekiq's
		{"session:x", []Bucket{Session, Unknown}},            // only strings are sessions
		{":1:page", []Bucket{Cache, Unknown}},                // Django cache strings
		{"user:42", []Bucket{Unknown}},                       // nothing
		{"celery", []Bucket{Queue, Unknown}},                 // only the list
		{"unacked_index", []Bucket{Queue, Unknown}},          // zset only
		{"laravel_database_queues:default", []Bucket{Queue}}, // untyped
	}
	for _, tt := range tests {
		if got := c.PossibleBuckets(tt.key); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %v, want %v", tt.key, got, tt.want)
		}
	}
	untyped, err := New([]Rule{{Prefix: "a", Bucket: Cache}})
	if err != nil {
		t.Fatal(err)
	}
	if got := untyped.PossibleBuckets("ab"); !reflect.DeepEqual(got, []Bucket{Cache}) {
		t.Errorf("untyped classifier: %v", got)
	}
}
