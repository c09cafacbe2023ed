package migrate

import "testing"

// The checkpoint cursor only moves past a SCAN batch when it and every
// earlier batch are fully acknowledged, whatever order workers finish in.
func TestTrackerCheckpointOrder(t *testing.T) {
	tr := newTracker(7)
	a := tr.add(100, 2)
	b := tr.add(200, 1)
	c := tr.add(300, 0) // no routed keys
	if cur, low, done := tr.snapshot(); cur != 7 || low != a || done {
		t.Fatalf("start: %d %d %v", cur, low, done)
	}
	tr.done(b, 1) // later batch first
	if cur, _, _ := tr.snapshot(); cur != 7 {
		t.Fatalf("advanced past an unacknowledged batch: %d", cur)
	}
	tr.done(a, 1)
	if cur, _, _ := tr.snapshot(); cur != 7 {
		t.Fatalf("advanced with a key of batch a pending: %d", cur)
	}
	tr.done(a, 1)
	cur, low, done := tr.snapshot()
	if cur != 300 || low != c+1 || done {
		t.Fatalf("after all acks: cursor %d low %d done %v", cur, low, done)
	}
	tr.finish()
	if _, _, done := tr.snapshot(); !done {
		t.Fatal("not complete after finish")
	}
}

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
		refuse := mustNotEvict(c.bucket) && evicts(c.policy)
		warn := !mustNotEvict(c.bucket) && cacheWarning(c.policy) != ""
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
