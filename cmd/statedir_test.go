package cmd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redisplit/redisplit/topology/topotest"
)

// runCLI is cli with --no-progress.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return cli(t, append([]string{"--no-progress"}, args...)...)
}

// stateTestConfig writes a config routing cache:* from legacy to target
// (standalone servers) with its state in stateDir, and returns its path.
func stateTestConfig(t *testing.T, legacy, target, stateDir string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "redisplit.yaml")
	y := fmt.Sprintf(`legacy: {url: "redis://%s"}
state_dir: %q
unknown: skip
presets: {none: true}
rules:
  - {prefix: "cache:", bucket: cache}
targets:
  cache: {kind: standalone, url: "redis://%s"}
`, legacy, stateDir, target)
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// status and migrate --dry-run write nothing: not even the state directory.
func TestStatusAndDryRunCreateNoStateDir(t *testing.T) {
	leg, tgt := topotest.Standalone(t), topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	for i := 0; i < 20; i++ {
		lc.Set(context.Background(), fmt.Sprintf("cache:%d", i), "v", 0)
	}
	stateDir := filepath.Join(t.TempDir(), "fresh", "state")
	cfg := stateTestConfig(t, leg.Addr(), tgt.Addr(), stateDir)
	for _, args := range [][]string{
		{"status"},
		{"status", "-o", "json"},
		{"migrate", "--dry-run"},
		{"rollback", "--dry-run"},
	} {
		code, out, errs := runCLI(t, append([]string{"--config", cfg}, args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errs)
		}
		if _, err := os.Stat(filepath.Dir(stateDir)); !os.IsNotExist(err) {
			t.Fatalf("%v created the state directory (%v)", args, err)
		}
	}
	if n := topotest.Client(t, tgt.Addr()).DBSize(context.Background()).Val(); n != 0 {
		t.Errorf("the dry run wrote %d keys", n)
	}
}

// rollback and verify with another plan than the migration's refuse (exit
// 4), with the one plan check migrate uses; with the migration's plan they
// go ahead.
func TestPlanCheckedByRollbackAndVerify(t *testing.T) {
	leg, tgt := topotest.Standalone(t), topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	for i := 0; i < 20; i++ {
		lc.Set(context.Background(), fmt.Sprintf("cache:%d", i), "v", 0)
	}
	cfg := stateTestConfig(t, leg.Addr(), tgt.Addr(), filepath.Join(t.TempDir(), "state"))
	if code, out, errs := runCLI(t, "--config", cfg, "migrate", "--yes"); code != 0 {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, out, errs)
	}
	other := filepath.Join(t.TempDir(), "other.yaml")
	if err := os.WriteFile(other, []byte("version: 1\nrules:\n  - {prefix: \"cache:\", bucket: session}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tc := topotest.Client(t, tgt.Addr())
	for _, args := range [][]string{
		{"verify", "--rounds", "1"},
		{"rollback", "--dry-run"},
		{"rollback", "--yes"},
	} {
		code, _, errs := runCLI(t, append([]string{"--config", cfg, "--plan", other}, args...)...)
		if code != 4 || !strings.Contains(errs, "plan changed") || !strings.Contains(errs, "bucket cache is copying") {
			t.Errorf("%v --plan other: exit %d, %s", args, code, errs)
		}
		if n := tc.DBSize(context.Background()).Val(); n != 20 {
			t.Fatalf("%v --plan other changed the target: %d keys", args, n)
		}
	}
	if code, out, errs := runCLI(t, "--config", cfg, "verify", "--rounds", "1"); code != 0 {
		t.Errorf("verify with the migration's plan: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := runCLI(t, "--config", cfg, "rollback", "--yes"); code != 0 {
		t.Fatalf("rollback with the migration's plan: exit %d\n%s\n%s", code, out, errs)
	}
	if n := tc.DBSize(context.Background()).Val(); n != 0 {
		t.Errorf("rollback left %d keys", n)
	}
	// everything rolled back: another plan may be used now
	if code, _, errs := runCLI(t, "--config", cfg, "--plan", other, "rollback", "--dry-run"); code != 0 {
		t.Errorf("after the rollback, --plan other: exit %d %s", code, errs)
	}
}
