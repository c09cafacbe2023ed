package rollback_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redisplit/redisplit/cmd"
	"github.com/redisplit/redisplit/lease"
	"github.com/redisplit/redisplit/verify/verifytest"
)

// lockedBuffer is a bytes.Buffer safe to read while a command writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// While another live process holds the lease (here: this test process, as
// a migrate), rollback refuses (exit 4) and deletes nothing, dry run too.
func TestRollbackRefusedWhileLeaseHeld(t *testing.T) {
	env.Flush(t)
	verifytest.Seed(t, env.LegacyClient(t), 10)
	cfg := env.Config(t, "")
	verifytest.Migrate(t, cfg)
	migrated := snapshotAll(t)

	l, err := lease.Acquire(context.Background(), env.LegacyClient(t), lease.Options{Command: "migrate", StateDir: "/elsewhere"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--yes"}, {"--dry-run"}} {
		code, _, errs := verifytest.Run(t, append([]string{"rollback", "--config", cfg}, args...)...)
		if code != 4 || !strings.Contains(errs, "lease lock") || !strings.Contains(errs, "redisplit migrate") {
			t.Errorf("rollback %v with the lease held: exit %d %s", args, code, errs)
		}
	}
	l.Release()
	snapshotAll(t).diff(t, migrated, "after rollbacks refused for the lease")
	if code, _, errs := verifytest.Run(t, "rollback", "--config", cfg, "--yes"); code != 0 {
		t.Fatalf("rollback once the lease is free: exit %d %s", code, errs)
	}
}

// A rollback holds the lease for its whole run, from before its
// confirmation question: a migrate started meanwhile refuses, naming it.
func TestMigrateRefusedWhileRollbackHoldsLease(t *testing.T) {
	env.Flush(t)
	verifytest.Seed(t, env.LegacyClient(t), 10)
	cfg := env.Config(t, "")
	verifytest.Migrate(t, cfg)
	migrated := snapshotAll(t)

	answer, w := io.Pipe()
	var stderr lockedBuffer
	app := &cmd.App{In: answer, Out: io.Discard, Err: &stderr, IsTerminal: true}
	done := make(chan int, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() { done <- cmd.Run(ctx, app, []string{"--no-progress", "rollback", "--config", cfg}) }()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(stderr.String(), "Delete them now?") {
		select {
		case code := <-done:
			t.Fatalf("rollback ended (exit %d) before asking: %s", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollback did not ask: %s", stderr.String())
		}
	}

	code, _, errs := verifytest.Run(t, "migrate", "--yes", "--config", cfg)
	if code != 4 || !strings.Contains(errs, "lease lock") || !strings.Contains(errs, "redisplit rollback") {
		t.Errorf("migrate while rollback holds the lease: exit %d %s", code, errs)
	}
	if code, _, errs := verifytest.Run(t, "rollback", "--yes", "--config", cfg); code != 4 || !strings.Contains(errs, "redisplit rollback") {
		t.Errorf("a second rollback: exit %d %s", code, errs)
	}

	w.Write([]byte("n\n"))
	if code := <-done; code != 4 || !strings.Contains(stderr.String(), "not confirmed") {
		t.Errorf("declined rollback: exit %d %s", code, stderr.String())
	}
	snapshotAll(t).diff(t, migrated, "after the declined rollback")
	if n := env.LegacyClient(t).Exists(context.Background(), lease.Key).Val(); n != 0 {
		t.Error("the declined rollback did not release the lease")
	}
}
