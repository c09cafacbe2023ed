package state

import (
	"os"
	"path/filepath"
	"testing"
)

// The queue window's merge bases: none before a save, a save read back
// whole (a pending rewrite's Prev included), removed by RemoveQueueBases
// and by ResetBucket (a rollback), and a corrupt file is an error naming it.
func TestQueueBasesSaveLoadRemove(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := d.LoadQueueBases("queue"); err != nil || m != nil {
		t.Fatalf("before a save: %v %v", m, err)
	}
	lp := true
	want := map[string]QueueBase{
		"queue:default": {N: 3, Sum: [32]byte{1, 2}, LPush: &lp, Prev: &QueueBase{N: 4, Sum: [32]byte{9}}},
		"job_queue":     {N: 1, Inflight: 2},
	}
	if err := d.SaveQueueBases("queue", want); err != nil {
		t.Fatal(err)
	}
	got, err := d.LoadQueueBases("queue")
	if err != nil {
		t.Fatal(err)
	}
	g := got["queue:default"]
	if len(got) != 2 || g.N != 3 || g.Sum != want["queue:default"].Sum || g.LPush == nil || !*g.LPush || g.Prev == nil || g.Prev.N != 4 || g.Prev.Sum[0] != 9 || got["job_queue"].Inflight != 2 {
		t.Fatalf("read back %+v", got)
	}
	if fi, err := os.Stat(d.QueueBasesPath("queue")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", fi, err)
	}
	if err := d.ResetBucket("queue"); err != nil {
		t.Fatal(err)
	}
	if m, _ := d.LoadQueueBases("queue"); m != nil {
		t.Fatalf("after ResetBucket: %v", m)
	}
	if err := d.SaveQueueBases("queue", want); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveQueueBases("queue"); err != nil {
		t.Fatal(err)
	}
	if m, _ := d.LoadQueueBases("queue"); m != nil {
		t.Fatalf("after RemoveQueueBases: %v", m)
	}
	os.WriteFile(d.QueueBasesPath("queue"), []byte("{torn"), 0o600)
	if _, err := d.LoadQueueBases("queue"); err == nil {
		t.Fatal("a corrupt bases file read without an error")
	}
}
