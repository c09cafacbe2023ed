package state

import (
	"os"
	"path/filepath"
	"testing"
)

// State files written before failures were recorded beside the phase
// still load: phase "failed" is a failed copy, keys_skipped the keys
// absent or expired when read.
func TestLoadLegacyFailedPhase(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	old := `{"plan_hash": "p", "buckets": {
  "queue": {"phase": "failed", "keys_copied": 5, "keys_skipped": 2, "errors": 1, "last_error": "out of memory"},
  "cache": {"phase": "copying", "copied": true, "keys_copied": 9}}}`
	if err := os.WriteFile(filepath.Join(d.Path(), "state.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := d.Load()
	if err != nil {
		t.Fatal(err)
	}
	q := s.Buckets["queue"]
	if q.Phase != Copying || !q.Failed || q.KeysGone != 2 || q.KeysCopied != 5 || q.LastError != "out of memory" {
		t.Errorf("queue: %+v", q)
	}
	if c := s.Buckets["cache"]; c.Phase != Copying || c.Failed || !c.Copied {
		t.Errorf("cache: %+v", c)
	}
}
