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

func TestPolicyWarning(t *testing.T) {
	for _, c := range []struct {
		bucket, policy string
		warn           bool
	}{
		{"session", "allkeys-lru", true}, {"session", "noeviction", false},
		{"queue", "volatile-ttl", true}, {"ratelimit", "noeviction", false},
		{"cache", "allkeys-lru", false}, {"cache", "noeviction", true},
	} {
		if got := policyWarning(c.bucket, c.policy) != ""; got != c.warn {
			t.Errorf("%s on %s: warning %v", c.bucket, c.policy, got)
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
