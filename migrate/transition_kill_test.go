package migrate_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redisplit/redisplit/migrate"
	"github.com/redisplit/redisplit/state"
)

// heldMigrate starts migrate --dual-write as a child process whose
// transitions pause after their intent is recorded (the kill -9 point).
func (e *liveEnv) heldMigrate() (*exec.Cmd, *lockedBuf) {
	c := exec.Command(bin, "--config", e.cfg, "migrate", "--dual-write", "--yes", "--no-progress")
	c.Env = append(os.Environ(), "REDISPLIT_TEST_TRANSITION_HOLD=2m")
	out := &lockedBuf{}
	c.Stdout, c.Stderr = out, out
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	return c, out
}

// killDuring runs args (complete or rollback) against a held migrate,
// kills the migrate with -9 once the transition's intent is recorded, and
// checks that the command says how to finish.
func (e *liveEnv) killDuring(bucket, op string, args ...string) {
	t := e.t
	c, out := e.heldMigrate()
	e.waitFor("the held migrate's live phase", 90*time.Second, nil, func(st *state.State) bool {
		return st.Live != nil && st.Live.Running && st.Live.PID == c.Process.Pid && st.Buckets[bucket].Transition == nil &&
			st.Live.Buckets[bucket] != nil && st.Live.Buckets[bucket].Window != nil
	})
	res := make(chan runResult, 1)
	go func() {
		code, o, errs := run(t, append([]string{"--config", e.cfg}, args...)...)
		res <- runResult{code, o, errs}
	}()
	e.waitFor("the "+op+"'s intent", 60*time.Second, nil, func(st *state.State) bool {
		tr := st.Buckets[bucket].Transition
		return tr != nil && tr.Op == op
	})
	if err := c.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = c.Wait()
	r := <-res
	if r.code != 1 || !strings.Contains(r.errs, "rerun migrate --dual-write and it finishes it") {
		t.Fatalf("%s when migrate was killed: exit %d: %s\n%s\nmigrate:\n%s", op, r.code, r.out, r.errs, out.String())
	}
}

// kill -9 of migrate during complete --purge-legacy and during a rollback
// after cutover (each held after its intent is recorded): the command
// fails saying so, and the rerun finishes the transition — legacy purged
// of the completed bucket's keys; legacy holding every write made on the
// rolled-back bucket's target, the target back at its pre-migration
// (empty) content.
func TestCompleteAndRollbackKill9AndRerunFinish(t *testing.T) {
	if testing.Short() {
		t.Skip("a live phase with cutovers, two kills and reruns takes about two minutes")
	}
	e := newLiveEnv(t)
	ctx := ctxT(t)
	l := startLoad(t, e.leg.Addr(), 500)
	m := e.startMigrate()
	e.readyForCutover(m, l)
	for _, b := range []string{"ratelimit", "session"} {
		if code, out, errs := run(t, "--config", e.cfg, "cutover", "--bucket", b, "--yes"); code != 0 {
			t.Fatalf("cutover %s: exit %d\n%s\n%s\n%s", b, code, out, errs, m.errb.String())
		}
	}
	sess := e.tg["session"]
	want := targetWrites(t, sess, 1)
	e.legacyHolds(want, 20*time.Second)
	if r := m.stop(t); r.code != 0 {
		t.Fatalf("migrate: exit %d\n%s", r.code, r.errs)
	}

	// complete --purge-legacy of ratelimit, killed after its intent
	rlBefore := 0
	for _, k := range userKeys(ctx, e.lc) {
		if e.bucketOf(k, e.lc.Type(ctx, k).Val()) == "ratelimit" {
			rlBefore++
		}
	}
	e.killDuring("ratelimit", migrate.OpComplete, "complete", "--bucket", "ratelimit", "--quiet", "1s", "--purge-legacy", "--yes")
	if p := e.liveState().Buckets["ratelimit"].Phase; p != state.Cutover {
		t.Fatalf("ratelimit %s after the kill, want still cutover", p)
	}
	m = e.startMigrate()
	e.waitFor("the complete finished by the rerun", 90*time.Second, m, func(st *state.State) bool {
		sb := st.Buckets["ratelimit"]
		return sb.Phase == state.Completed && sb.Transition == nil
	})
	left := 0
	for _, k := range userKeys(ctx, e.lc) {
		if e.bucketOf(k, e.lc.Type(ctx, k).Val()) == "ratelimit" {
			left++
		}
	}
	if rlBefore == 0 || left != 0 {
		t.Errorf("ratelimit keys on legacy: %d before, %d after the rerun's purge", rlBefore, left)
	}
	if p := e.controlPhase("ratelimit"); p != state.Completed {
		t.Errorf("control key %s for ratelimit after the rerun", p)
	}
	// the session window was reopened by the rerun: more target writes
	want = targetWrites(t, sess, 2)
	e.legacyHolds(want, 20*time.Second)
	if r := m.stop(t); r.code != 0 {
		t.Fatalf("migrate: exit %d\n%s", r.code, r.errs)
	}

	// rollback of session after cutover, killed after its intent; the
	// target is written meanwhile by an instance that has not switched back
	want = targetWrites(t, sess, 3)
	e.killDuring("session", migrate.OpRollback, "rollback", "--bucket", "session", "--yes")
	m = e.startMigrate()
	e.waitFor("the rollback finished by the rerun", 90*time.Second, m, func(st *state.State) bool {
		sb := st.Buckets["session"]
		return sb.Phase == state.RolledBack && sb.Transition == nil
	})
	e.legacyHolds(want, time.Second)
	if k := userKeys(ctx, sess); len(k) > 0 {
		t.Errorf("%d keys left on the session target after the rerun's rollback, e.g. %q", len(k), k[:min(5, len(k))])
	}
	if p := e.controlPhase("session"); p != state.RolledBack {
		t.Errorf("control key %s for session after the rerun", p)
	}
	if r := m.stop(t); r.code != 0 {
		t.Fatalf("migrate: exit %d\n%s", r.code, r.errs)
	}
}
