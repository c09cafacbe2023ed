package migrate

import (
	"strings"
	"testing"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/layout"
	"github.com/redisplit/redisplit/store"
)

// When layout.Check could not read the target's servers one by one (here:
// only a failed reachable verdict, as when CLUSTER NODES is refused), the
// blocking checks still run on store.Info's facts: the refusals never
// depend on the permissions of `targets check`.
func TestRefusalsWithoutServerVerdicts(t *testing.T) {
	t1 := &store.Redis{Bucket: "session"}
	unread := []layout.Verdict{{Bucket: "session", Check: layout.CheckReachable, Status: layout.StatusFail, Found: "NOPERM cluster|nodes"}}
	p := layout.Profile{Bucket: "session", Writing: 10 << 20}
	info := store.Info{MaxMemoryPolicy: "allkeys-lru", MaxMemory: 4 << 20, UsedMemory: 1 << 20}
	j := judge("session", t1, config.Target{Kind: config.KindCluster}, info.MaxMemoryPolicy, withFacts(unread, p, info), false)
	if len(j.refusals) != 1 || !strings.Contains(j.refusals[0].reason, "maxmemory-policy allkeys-lru") {
		t.Errorf("evicting policy without server verdicts: refusals %+v", j.refusals)
	}
	if len(j.warnings) != 2 { // reachable, and the room (allkeys-* only warns)
		t.Errorf("warnings %q", j.warnings)
	}
	info.MaxMemoryPolicy = "noeviction"
	j = judge("session", t1, config.Target{Kind: config.KindCluster}, info.MaxMemoryPolicy, withFacts(unread, p, info), false)
	if len(j.refusals) != 1 || !strings.Contains(j.refusals[0].reason, "no room") {
		t.Errorf("no room without server verdicts: refusals %+v", j.refusals)
	}
	// with the servers' own verdicts, nothing is added
	own := append(unread, layout.Policy("session", "noeviction"))
	if got := withFacts(own, layout.Profile{Bucket: "session"}, info); len(got) != len(own) {
		t.Errorf("facts added to the servers' verdicts: %+v", got)
	}
}
