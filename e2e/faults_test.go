package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redisplit/redisplit/rehearse"
)

// startMigrate starts a throttled migrate (so that faults land mid-copy) and
// returns a function that waits for it.
func (e *env) startMigrate(ctx context.Context, maxOps string) (*exec.Cmd, func() result) {
	e.t.Helper()
	c, out, errb := e.command(ctx, "migrate", "--yes", "-o", "json", "--max-ops", maxOps)
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan result, 1)
	go func() {
		err := c.Wait()
		done <- result{code: exitCode(err), stdout: out.String(), stderr: errb.String(), ended: time.Now()}
	}()
	var r *result
	return c, func() result {
		if r == nil {
			x := <-done
			r = &x
		}
		return *r
	}
}

// waitKeys waits until bucket's target holds at least n keys.
func (e *env) waitKeys(bucket string, n int64, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for e.targetKeys()[bucket] < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("target %s holds %d keys after %v, want at least %d", bucket, e.targetKeys()[bucket], timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stopping a cache cluster node during migrate degrades the cache bucket
// only: migrate does not crash, the other buckets complete, and once the
// node is back (a rerun if migrate gave the bucket up) every key is there.
func TestMigrateSurvivesCacheNodeStop(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.load(rehearse.Synthetic{Keys: 20000, Seed: 21, NoBig: true, ShortTTL: -1})
	before := e.snapshot()
	_, wait := e.startMigrate(ctx, "4000")
	e.waitKeys("cache", 200, 30*time.Second)

	cluster := topo.Clusters["cache"]
	node := cluster.Nodes[1]
	if err := node.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped cache node %s", node.Addr())
	// Longer than go-redis's own retries (about 2 s): redisplit's retry, which
	// reports the degradation, must see the outage.
	time.Sleep(8 * time.Second)
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	if err := cluster.WaitOK(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	r := wait()
	if r.ended.Before(back) {
		t.Fatalf("migrate ended before the node came back: the outage did not hit the copy (%s)", r)
	}
	t.Logf("migrate during the outage: exit %d; stderr:\n%s", r.code, tailStr(r.stderr, 1500))
	if r.code != 0 && r.code != 1 {
		t.Fatalf("migrate crashed or refused: %s", r)
	}
	st := migrateStatus(t, r.stdout)
	for _, b := range []string{"session", "queue", "ratelimit"} {
		if st[b] != "copied" {
			t.Errorf("bucket %s is %q after a cache node outage, want copied", b, st[b])
		}
	}
	// The degradation is reported while it lasts, not only in the end.
	if !strings.Contains(r.stderr, "WARNING target cache: failing since") {
		t.Errorf("no warning on stderr while the cache node was down:\n%s", tailStr(r.stderr, 1500))
	}
	if r.code == 0 {
		if !strings.Contains(r.stderr, "target cache: answering again; it failed from") {
			t.Errorf("no recovery line on stderr after the cache node came back:\n%s", tailStr(r.stderr, 1500))
		}
		var res struct {
			Buckets []struct {
				Bucket  string `json:"bucket"`
				Retries int64  `json:"retries"`
			} `json:"buckets"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatal(err)
		}
		for _, b := range res.Buckets {
			if b.Bucket == "cache" && b.Retries == 0 {
				t.Error("cache bucket reports 0 retries after a node outage")
			}
		}
	}
	if r.code == 1 {
		if st["cache"] != "failed" {
			t.Errorf("migrate exited 1 but cache is %q", st["cache"])
		}
		r = e.mustRun(0, "migrate", "--yes", "-o", "json")
		if s := migrateStatus(t, r.stdout)["cache"]; s != "copied" {
			t.Errorf("cache is %q after the rerun", s)
		}
	}
	e.assertNothingLost(before)
	e.mustRun(0, "verify")
}

// A Sentinel failover of the session master during migrate loses no session.
func TestMigrateSurvivesSentinelFailover(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.load(rehearse.Synthetic{Keys: 20000, Seed: 31, NoBig: true, ShortTTL: -1})
	before := e.snapshot()
	_, wait := e.startMigrate(ctx, "4000")
	e.waitKeys("session", 200, 30*time.Second)

	sn := topo.Sentinels["session"]
	old, _ := sn.CurrentMaster(ctx)
	nm, err := sn.Failover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failover %s → %s", old, nm)
	failedOver := time.Now()
	r := wait()
	if r.ended.Before(failedOver) {
		t.Fatalf("migrate ended before the failover completed: it did not copy across it (%s)", r)
	}
	if r.code != 0 {
		t.Fatalf("migrate across a failover: %s", r)
	}
	for b, s := range migrateStatus(t, r.stdout) {
		if s != "copied" {
			t.Errorf("bucket %s is %s", b, s)
		}
	}
	e.assertNothingLost(before)
	e.mustRun(0, "verify")
}

// A migrate killed with SIGKILL mid-copy resumes from its checkpoint: the
// rerun completes and verify finds full parity (nothing lost, no extra key).
func TestMigrateKilledAndResumed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	gen := e.load(rehearse.Synthetic{Keys: 20000, Seed: 41, NoBig: true, ShortTTL: -1})
	before := e.snapshot()
	c, wait := e.startMigrate(ctx, "3000")
	e.waitKeys("cache", 1000, 30*time.Second)
	if err := c.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	r := wait()
	if r.code != -9 {
		t.Fatalf("migrate was not killed by SIGKILL: %s", r)
	}
	var onTargets int64
	for _, n := range e.targetKeys() {
		onTargets += n
	}
	if onTargets == 0 || onTargets >= int64(gen.Total) {
		t.Fatalf("kill did not land mid-copy: %d of %d keys on the targets", onTargets, gen.Total)
	}
	t.Logf("killed with %d of %d keys on the targets", onTargets, gen.Total)

	r = e.mustRun(0, "migrate", "--yes", "-o", "json")
	var res struct {
		Buckets []struct {
			Bucket  string `json:"bucket"`
			Status  string `json:"status"`
			Resumed bool   `json:"resumed"`
		} `json:"buckets"`
	}
	if err := json.NewDecoder(bytes.NewReader([]byte(r.stdout))).Decode(&res); err != nil {
		t.Fatal(err)
	}
	resumed := false
	for _, b := range res.Buckets {
		resumed = resumed || b.Resumed
		if b.Status != "copied" {
			t.Errorf("bucket %s is %s after the resumed run", b.Bucket, b.Status)
		}
	}
	if !resumed {
		t.Errorf("the rerun did not resume from the checkpoint:\n%s", tailStr(r.stdout, 2000))
	}
	e.assertNothingLost(before)
	e.mustRun(0, "verify")
}
