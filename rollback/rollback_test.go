package rollback_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/verify/verifytest"
)

var env *verifytest.Env

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	e, err := verifytest.Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rollback tests: cannot start the topology:", err)
		os.Exit(1)
	}
	env = e
	code := m.Run()
	e.Close()
	os.Exit(code)
}

var buckets = []string{"cache", "session", "queue", "ratelimit"}

type snapshots map[string]map[string]verifytest.Entry

func (env2 snapshots) diff(t *testing.T, other snapshots, what string) {
	t.Helper()
	for name, a := range env2 {
		if d := verifytest.DiffSnapshots(a, other[name]); d != "" {
			t.Errorf("%s: %s differs:\n%s", what, name, d)
		}
	}
}

func snapshotAll(t *testing.T) snapshots {
	out := snapshots{"legacy": verifytest.Snapshot(t, env.LegacyClient(t))}
	for _, b := range buckets {
		out[b] = verifytest.Snapshot(t, env.Target(t, b))
	}
	return out
}

// preExisting writes keys the targets hold before the migration: keys the
// plan routes to the target, one of them with the name of a legacy key (migrate
// must not overwrite it, rollback must not delete it), and a key of no
// bucket.
func preExisting(t *testing.T) {
	ctx := context.Background()
	for _, err := range []error{
		env.Target(t, "cache").Set(ctx, "cache:pre:1", "was here before", 0).Err(),
		env.Target(t, "cache").Set(ctx, "cache:str:0", "target's own value", 0).Err(),
		env.Target(t, "session").HSet(ctx, "sess:pre:1", "user", "42").Err(),
		env.Target(t, "queue").RPush(ctx, "queue:pre:1", "job").Err(),
		env.Target(t, "ratelimit").Set(ctx, "foreign:key", "not redisplit's", time.Hour).Err(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestRollbackRestoresTargetsExactly(t *testing.T) {
	env.Flush(t)
	keys := verifytest.Seed(t, env.LegacyClient(t), 300)
	preExisting(t)
	cfg := env.Config(t, "")
	before := snapshotAll(t)

	verifytest.Migrate(t, cfg, "--allow-nonempty")
	migrated := snapshotAll(t)
	if len(migrated["cache"]) < len(before["cache"])+300 {
		t.Fatalf("migrate did not copy: cache target holds %d keys", len(migrated["cache"]))
	}
	if migrated["cache"]["cache:str:0"] != before["cache"]["cache:str:0"] {
		t.Fatal("migrate overwrote a key it did not write")
	}

	// Dry run: lists the keys, deletes nothing.
	code, out, errs := verifytest.Run(t, "rollback", "--config", cfg, "--dry-run", "-o", "json")
	if code != 0 {
		t.Fatalf("dry run exit %d: %s", code, errs)
	}
	var dry struct {
		DryRun bool `json:"dry_run"`
		Keys   []struct {
			Bucket string `json:"bucket"`
			Key    string `json:"key"`
			KeyB64 string `json:"key_b64"`
		} `json:"keys"`
		Buckets []struct {
			Bucket  string `json:"bucket"`
			Keys    int    `json:"keys"`
			Present int    `json:"present_on_target"`
		} `json:"buckets"`
	}
	if err := json.Unmarshal([]byte(out), &dry); err != nil {
		t.Fatalf("dry run JSON: %v\n%s", err, out)
	}
	listed := map[string]bool{}
	for _, k := range dry.Keys {
		if k.KeyB64 != "" {
			listed["b64:"+k.KeyB64] = true
		} else {
			listed[k.Key] = true
		}
	}
	// every legacy key but the one migrate refused, nothing pre-existing
	if len(dry.Keys) != len(keys)-1 || listed["cache:str:0"] || listed["cache:pre:1"] || listed["sess:pre:1"] {
		t.Errorf("dry run lists %d keys (want %d); cache:str:0 %v cache:pre:1 %v", len(dry.Keys), len(keys)-1, listed["cache:str:0"], listed["cache:pre:1"])
	}
	total := 0
	for _, b := range dry.Buckets {
		total += b.Present
	}
	if total != len(keys)-1 {
		t.Errorf("dry run: %d keys present on the targets, want %d", total, len(keys)-1)
	}
	snapshotAll(t).diff(t, migrated, "after a dry run")

	// Text dry run too.
	if code, out, _ := verifytest.Run(t, "rollback", "--config", cfg, "--dry-run"); code != 0 || !strings.Contains(out, "nothing was deleted") {
		t.Errorf("text dry run exit %d:\n%s", code, out)
	}

	// a verify before the rollback: its result must not outlive it
	verifytest.Run(t, "verify", "--config", cfg, "--rounds", "1")

	// The rollback: targets hold exactly what they held before, legacy is unchanged.
	code, out, errs = verifytest.Run(t, "rollback", "--config", cfg, "--yes", "-o", "json")
	if code != 0 {
		t.Fatalf("rollback exit %d: %s %s", code, out, errs)
	}
	snapshotAll(t).diff(t, before, "after rollback")

	// status shows the rolled-back state, not the verify from before it
	code, out, errs = verifytest.Run(t, "status", "--config", cfg)
	if code != 0 || !strings.Contains(out, "rolled-back") || strings.Contains(out, "plan ;") || !strings.Contains(out, "last verify: never") {
		t.Errorf("status after rollback: exit %d\n%s%s", code, out, errs)
	}

	sd, err := state.Open(verifytest.StateDir(cfg))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sd.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range buckets {
		if st.Buckets[b] == nil || st.Buckets[b].Phase != state.RolledBack || st.Buckets[b].KeysCopied != 0 {
			t.Errorf("state of %s: %+v", b, st.Buckets[b])
		}
		if _, err := os.Stat(sd.JournalPath(b)); !os.IsNotExist(err) {
			t.Errorf("journal of %s still there: %v", b, err)
		}
	}

	// Run again: nothing left to delete, nothing changes.
	if code, _, errs := verifytest.Run(t, "rollback", "--config", cfg, "--yes"); code != 0 {
		t.Errorf("second rollback exit %d: %s", code, errs)
	}
	snapshotAll(t).diff(t, before, "after a second rollback")

	// A later migrate starts clean: it copies everything again.
	verifytest.Migrate(t, cfg, "--allow-nonempty")
	snapshotAll(t).diff(t, migrated, "after migrating again")
	if code, _, errs := verifytest.Run(t, "rollback", "--config", cfg, "--yes"); code != 0 {
		t.Fatalf("rollback exit %d: %s", code, errs)
	}
	snapshotAll(t).diff(t, before, "after the second migrate and rollback")
}

func TestRollbackOneBucket(t *testing.T) {
	env.Flush(t)
	verifytest.Seed(t, env.LegacyClient(t), 20)
	cfg := env.Config(t, "")
	before := snapshotAll(t)
	verifytest.Migrate(t, cfg)
	migrated := snapshotAll(t)
	if code, _, errs := verifytest.Run(t, "rollback", "--config", cfg, "--yes", "--bucket", "session"); code != 0 {
		t.Fatalf("rollback exit %d: %s", code, errs)
	}
	after := snapshotAll(t)
	snapshots{"session": before["session"], "legacy": before["legacy"]}.diff(t, after, "rolled back")
	snapshots{"cache": migrated["cache"], "queue": migrated["queue"], "ratelimit": migrated["ratelimit"]}.diff(t, after, "other buckets")
}

func TestRollbackRefusals(t *testing.T) {
	env.Flush(t)
	verifytest.Seed(t, env.LegacyClient(t), 10)
	cfg := env.Config(t, "")
	verifytest.Migrate(t, cfg)
	migrated := snapshotAll(t)

	// No terminal and no --yes: a usage error, nothing deleted.
	if code, _, errs := verifytest.Run(t, "rollback", "--config", cfg); code != 2 || !strings.Contains(errs, "--yes") {
		t.Errorf("without --yes: exit %d %s", code, errs)
	}
	// On a terminal, a "no" deletes nothing (exit 4); the question names the journal.
	code, _, errs := verifytest.RunInteractive(t, "n\n", true, "rollback", "--config", cfg, "--no-progress")
	if code != 4 || !strings.Contains(errs, "journal entries") || !strings.Contains(errs, "not confirmed") {
		t.Errorf("declined: exit %d %s", code, errs)
	}
	snapshotAll(t).diff(t, migrated, "after a declined rollback")
	// A running migration (its lease lock on legacy): refused.
	lc := env.LegacyClient(t)
	if err := lc.Set(context.Background(), "redisplit:lock", `{"host":"h","pid":1}`, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := verifytest.Run(t, "rollback", "--config", cfg, "--yes"); code != 4 || !strings.Contains(errs, "lease lock") {
		t.Errorf("with the lease held: exit %d %s", code, errs)
	}
	lc.Del(context.Background(), "redisplit:lock")
	// A completed bucket: refused (legacy no longer mirrors it; a bucket in
	// cutover is rolled back with the reverse drain, see migrate's tests).
	sd, err := state.Open(verifytest.StateDir(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.Update(func(s *state.State) error { s.Buckets["session"].Phase = state.Completed; return nil }); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := verifytest.Run(t, "rollback", "--config", cfg, "--yes"); code != 4 || !strings.Contains(errs, "is completed") {
		t.Errorf("completed: exit %d %s", code, errs)
	}
	// A bucket that failed after completion keeps its phase, with the
	// failure beside it: still refused.
	if err := sd.Update(func(s *state.State) error {
		s.Buckets["session"].LastError = "target session: out of memory writing key \"sess:1\""
		s.Buckets["session"].Errors = 1
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := verifytest.Run(t, "rollback", "--config", cfg, "--yes", "--bucket", "session"); code != 4 || !strings.Contains(errs, "is completed") {
		t.Errorf("failed completed: exit %d %s", code, errs)
	}
	if code, _, errs := verifytest.Run(t, "rollback", "--config", cfg, "--yes", "--bucket", "nope"); code != 2 {
		t.Errorf("--bucket nope: exit %d %s", code, errs)
	}
	snapshotAll(t).diff(t, migrated, "after refused rollbacks")
	// A "yes" on the terminal rolls the other buckets back; session stays refused.
	if code, _, errs := verifytest.RunInteractive(t, "yes\n", true, "rollback", "--config", cfg, "--bucket", "cache"); code != 0 {
		t.Errorf("confirmed: exit %d %s", code, errs)
	}
	if n := len(verifytest.Snapshot(t, env.Target(t, "cache"))); n != 0 {
		t.Errorf("cache target holds %d keys after its rollback", n)
	}
}
