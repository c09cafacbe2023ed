package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redisplit/redisplit/rehearse"
	"github.com/redisplit/redisplit/topology/containers"
)

// The rehearsal passes on a synthetic keyspace in containers, writes both
// reports with one case per phase and bucket — the default flow: the live
// phase, then cutover of every bucket, the application's writes on the
// targets, rollback after cutover of session, complete of the others —
// and removes its containers.
func TestRehearseSyntheticInContainers(t *testing.T) {
	r, dir := runRehearse(t, "--synthetic", "3000")
	if r.code != 0 {
		t.Fatalf("rehearse: %s", r)
	}
	if !strings.Contains(r.stdout, "# redisplit rehearsal: PASSED") {
		t.Errorf("terminal summary:\n%s", r.stdout)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil || string(md) != r.stdout {
		t.Errorf("report.md differs from the terminal summary (%v)", err)
	}
	j := readJUnit(t, filepath.Join(dir, "junit.xml"))
	if j.Failures != 0 {
		t.Errorf("JUnit: %d failures", j.Failures)
	}
	phases := map[string]int{}
	for _, c := range j.Suites[0].Cases {
		phases[strings.TrimPrefix(c.Classname, "rehearse.")]++
	}
	for _, p := range []string{"scan", "live/caught-up", "live/verify", "live/compare", "cutover", "verify-after-cutover"} {
		if phases[p] != 4 {
			t.Errorf("JUnit: phase %s has %d cases, want one per bucket (4)", p, phases[p])
		}
	}
	for p, n := range map[string]int{"live/load": 1, "app-writes": 1, "rollback-after-cutover": 1, "complete": 3, "live/stop": 1, "rollback": 0, "verify-after-rollback": 0} {
		if phases[p] != n {
			t.Errorf("JUnit: phase %s has %d cases, want %d", p, phases[p], n)
		}
	}
	for _, c := range j.Suites[0].Cases {
		if c.Classname == "rehearse.rollback-after-cutover" && c.Name != "session" {
			t.Errorf("JUnit: rollback after cutover of %s, want session", c.Name)
		}
	}
	if left := otherRuns(t); len(left) > 0 {
		t.Errorf("containers left behind: %v", left)
	}
}

// The rehearsal loads an RDB snapshot into its legacy container and passes
// (the one-pass flow: with the live load, legacy holds the load's keys too).
func TestRehearseFromRDB(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	gen := e.load(rehearse.Synthetic{Keys: 3000, Seed: 51, ShortTTL: -1})
	if err := e.legacy.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	rdb := filepath.Join(t.TempDir(), "dump.rdb")
	data, err := os.ReadFile(filepath.Join(containers.DataDir(topo.Legacy), "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rdb, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r, dir := runRehearse(t, "--from-rdb", rdb, "--no-live")
	if r.code != 0 {
		t.Fatalf("rehearse --from-rdb: %s", r)
	}
	if !strings.Contains(r.stdout, fmt.Sprintf("| load | - | pass | %d keys on legacy", gen.Total)) {
		t.Errorf("the rehearsal's legacy does not hold the %d keys of the snapshot:\n%s", gen.Total, r.stdout)
	}
	if j := readJUnit(t, filepath.Join(dir, "junit.xml")); j.Failures != 0 {
		t.Errorf("JUnit: %d failures", j.Failures)
	}
}
