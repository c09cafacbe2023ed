package cmd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Out-of-range numeric and duration flags exit 2 with the valid range,
// before anything is contacted (the legacy URL points at nothing) and
// whatever else the command would check first.
func TestFlagOutOfRange(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "redisplit.yaml")
	if err := os.WriteFile(cfg, []byte("legacy: {url: 'redis://127.0.0.1:1'}\ntargets: {queue: {kind: standalone, url: 'redis://127.0.0.1:1'}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "--workers", "0"}, "--workers: 0 is out of range; valid values are 1 to 1024"},
		{[]string{"migrate", "--batch", "-1"}, "--batch: -1 is out of range; valid values are 1 to 100000"},
		{[]string{"migrate", "--big-bytes", "0"}, "--big-bytes: 0 is out of range; valid values are 1 to 536870912"},
		{[]string{"migrate", "--max-ops", "-5", "--yes"}, "--max-ops: -5 is out of range; valid values are 0 or more"},
		{[]string{"scan", "--count", "0"}, "--count: 0 is out of range; valid values are 1 to 1000000"},
		{[]string{"scan", "--sample", "150"}, "--sample: 150 is out of range; valid values are 0.01 to 100"},
		{[]string{"scan", "--sample", "0"}, "--sample: 0 is out of range"},
		{[]string{"scan", "--max-patterns", "0"}, "--max-patterns: 0 is out of range"},
		{[]string{"verify", "--interval", "-1s"}, "--interval: -1s is out of range; valid values are 0s or more"},
		{[]string{"verify", "--rounds", "0"}, "--rounds: 0 is out of range; valid values are 1 to 1000"},
		{[]string{"verify", "--ttl-tolerance", "-1ms"}, "--ttl-tolerance: -1ms is out of range"},
		{[]string{"verify", "--sample", "101"}, "--sample: 101 is out of range"},
		{[]string{"verify", "--max-diffs", "0"}, "--max-diffs: 0 is out of range"},
		{[]string{"verify", "--workers", "0"}, "--workers: 0 is out of range"},
		{[]string{"rehearse", "--synthetic", "-3"}, "--synthetic: -3 is out of range"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errs := cli(t, append([]string{"--config", cfg, "--no-progress"}, tt.args...)...)
			if code != ExitUsage || !strings.Contains(errs, tt.want) {
				t.Fatalf("exit %d, want %d with %q: %s", code, ExitUsage, tt.want, errs)
			}
		})
	}
}

// rehearse --from-rdb with a file that is not there fails as a usage error
// before any server or image is started.
func TestRehearseMissingRDB(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nonexistent.rdb")
	for _, backend := range []string{"containers", "process"} {
		code, _, errs := cli(t, "rehearse", "--backend", backend, "--from-rdb", missing)
		if code != ExitUsage || !strings.Contains(errs, "--from-rdb") || !strings.Contains(errs, missing) || strings.Contains(errs, "servers from") {
			t.Errorf("%s: exit %d: %s", backend, code, errs)
		}
	}
	rdb := filepath.Join(t.TempDir(), "dump.rdb")
	os.WriteFile(rdb, []byte("REDIS0009"), 0o600)
	code, _, errs := cli(t, "rehearse", "--backend", "process", "--from-rdb", rdb)
	if code != ExitUsage || !strings.Contains(errs, "needs --backend containers") {
		t.Errorf("process backend with an RDB: exit %d: %s", code, errs)
	}
	code, _, errs = cli(t, "rehearse", "--backend", "process", "--synthetic", "10", "--fault", "lose-everything")
	if code != ExitUsage || !strings.Contains(errs, "lose-everything") {
		t.Errorf("unknown fault: exit %d: %s", code, errs)
	}
}

// Every numeric or duration flag of every command declares its range, and
// every default is inside it.
func TestEveryNumericFlagHasALimit(t *testing.T) {
	var out bytes.Buffer
	root := NewRoot(&App{In: strings.NewReader(""), Out: &out, Err: &out})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(fl *pflag.Flag) {
			switch fl.Value.Type() {
			case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64", "duration":
				if _, ok := fl.Annotations[limitKey]; !ok {
					t.Errorf("%s --%s (%s) declares no range: add limit(f, %q, lo, hi) or atLeast", c.CommandPath(), fl.Name, fl.Value.Type(), fl.Name)
				}
			}
		})
		if err := checkLimits(c); err != nil {
			t.Errorf("%s: a default is out of its range: %v", c.CommandPath(), err)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
