package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/redisplit/redisplit/rehearse"
	"github.com/redisplit/redisplit/scan"
)

// The big Spring session hash of the synthetic keyspace: no TTL, so it is
// a stable key to tamper with.
const bigSession = "spring:session:sessions:00000000-0000-4000-8000-00000000b16b"

// The whole flow on a realistic keyspace: zero-config scan → migrate →
// verify → a difference injected and reported → rollback → targets empty,
// legacy unchanged.
func TestScanMigrateVerifyRollback(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	gen := e.load(rehearse.Synthetic{Keys: 6000, Seed: 11})
	before := e.snapshot()

	// scan with zero configuration: no config file, only --legacy.
	c := exec.Command(bin, "scan", "--legacy", "redis://"+topo.Legacy.Addr()+"/0", "-o", "json", "--no-progress")
	c.Dir = t.TempDir()
	out, err := c.Output()
	if exitCode(err) != 0 {
		t.Fatalf("zero-config scan: %v\n%s", err, out)
	}
	var rep scan.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("scan JSON: %v", err)
	}
	got := map[string]int64{}
	for _, b := range rep.Buckets {
		got[b.Bucket] = b.Keys
	}
	for _, b := range []string{"cache", "session", "queue", "ratelimit"} {
		want, short := int64(gen.ByBucket[b]), int64(gen.ShortTTL[b])
		if got[b] > want || got[b] < want-short || got[b] == 0 {
			t.Errorf("scan: bucket %s has %d keys, generated %d (%d with a TTL of seconds)", b, got[b], want, short)
		}
	}
	if got["unknown"] != 0 {
		t.Errorf("scan: %d unknown keys in a keyspace the presets cover", got["unknown"])
	}

	r := e.mustRun(0, "migrate", "--yes", "-o", "json")
	for b, s := range migrateStatus(t, r.stdout) {
		if s != "copied" {
			t.Errorf("migrate: bucket %s is %s", b, s)
		}
	}
	e.assertNothingLost(before)
	e.mustRun(0, "verify")

	// A difference on the session target must fail verify, naming the key.
	if err := e.targets["session"].Client.HSet(ctx, bigSession, "sessionAttr:cart:7", "tampered").Err(); err != nil {
		t.Fatal(err)
	}
	r = e.mustRun(3, "verify")
	if !strings.Contains(r.stdout+r.stderr, bigSession) {
		t.Errorf("verify exit 3 does not name %s:\n%s", bigSession, r)
	}
	r = e.mustRun(3, "verify", "-o", "json")
	var vr struct {
		Differences []struct {
			Key      string `json:"key"`
			Bucket   string `json:"bucket"`
			Category string `json:"category"`
		} `json:"differences"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &vr); err != nil {
		t.Fatalf("verify JSON: %v", err)
	}
	if len(vr.Differences) != 1 || vr.Differences[0].Key != bigSession || vr.Differences[0].Bucket != "session" ||
		vr.Differences[0].Category != "value" {
		t.Errorf("verify differences: %+v", vr.Differences)
	}

	e.mustRun(0, "rollback", "--yes")
	empty, err := rehearse.Empty(ctx, e.targets)
	if err != nil {
		t.Fatal(err)
	}
	for b, c := range empty {
		if !c.OK {
			t.Errorf("after rollback, target %s: %s %v", b, c.Detail, c.Keys)
		}
	}
	unchanged, err := rehearse.Unchanged(ctx, before, e.legacy, e.router)
	if err != nil {
		t.Fatal(err)
	}
	for b, c := range unchanged {
		if !c.OK {
			t.Errorf("after rollback, legacy %s: %s %v", b, c.Detail, c.Keys)
		}
	}
}
