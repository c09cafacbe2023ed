package migrate

import (
	"testing"

	"github.com/redisplit/redisplit/config"
)

// Which policies are refused (session, queue, ratelimit on a target that
// may evict) and which are warned about (cache when it cannot evict).
func TestEvictionRules(t *testing.T) {
	for _, c := range []struct {
		bucket, policy string
		refuse, warn   bool
	}{
		{"session", "allkeys-lru", true, false}, {"session", "noeviction", false, false},
		{"queue", "volatile-ttl", true, false}, {"ratelimit", "noeviction", false, false},
		{"ratelimit", "allkeys-random", true, false}, {"queue", "", false, false},
		{"cache", "allkeys-lru", false, false}, {"cache", "noeviction", false, true},
		{"cache", "volatile-lru", false, true},
	} {
		refuse := config.MustNotEvict(c.bucket) && config.EvictingPolicy(c.policy)
		warn := !config.MustNotEvict(c.bucket) && cacheWarning(c.policy) != ""
		if refuse != c.refuse || warn != c.warn {
			t.Errorf("%s on %q: refuse %v warn %v", c.bucket, c.policy, refuse, warn)
		}
	}
}

func TestDropOwn(t *testing.T) {
	got := dropOwn([]string{"a", "redisplit:lock", "b", "redisplit:marker", "redisplit", "c"})
	want := []string{"a", "b", "redisplit", "c"}
	if len(got) != len(want) {
		t.Fatalf("%q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%q", got)
		}
	}
}
