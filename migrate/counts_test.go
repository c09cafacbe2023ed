package migrate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/cmd"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/topology/topotest"
)

// countsJSON is migrate.Counts / migrate.Totals as JSON.
type countsJSON struct {
	Copied, Expired, Gone, Refused, Skipped, Failed, Pending, Logical, Bytes int64
}

func (c countsJSON) sum() int64 {
	return c.Copied + c.Expired + c.Gone + c.Refused + c.Skipped + c.Failed + c.Pending
}

type bucketJSON struct {
	Bucket        string
	Status        string
	PlannedKeys   int64 `json:"planned_keys"`
	AllowEvicting bool  `json:"allow_evicting_target"`
	Total         countsJSON
	ThisRun       countsJSON `json:"this_run"`
}

type migrateJSON struct{ Buckets []bucketJSON }

func parseMigrate(t *testing.T, out string) migrateJSON {
	t.Helper()
	var m migrateJSON
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("migrate JSON: %v\n%s", err, out)
	}
	return m
}

func (m migrateJSON) bucket(name string) bucketJSON {
	for _, b := range m.Buckets {
		if b.Bucket == name {
			return b
		}
	}
	return bucketJSON{}
}

type statusJSON struct {
	Buckets []struct {
		Bucket   string
		Phase    string
		Failed   bool
		FailedAt time.Time `json:"failed_at"`
		Errors   int64
		Copied   bool
		Total    countsJSON
	}
}

func statusOf(t *testing.T, cfg string) statusJSON {
	t.Helper()
	code, out, errs := run(t, "--config", cfg, "status", "-o", "json")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errs)
	}
	var s statusJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, out)
	}
	return s
}

// legacyKeys counts legacy's keys per bucket.
func legacyKeys(t *testing.T, lc *redis.Client) map[string]int64 {
	t.Helper()
	n := map[string]int64{}
	for _, k := range scanAll(ctxT(t), lc) {
		n[bucketOf(k)]++
	}
	return n
}

// assertReconciled checks the counts of a migrate that ended: per bucket
// the totals' columns add up to legacy's keys of the bucket, status shows
// the same totals, and a migrated bucket's target holds its copied keys
// plus the foreign ones it held before.
func assertReconciled(t *testing.T, cfg string, res migrateJSON, lc *redis.Client, tg map[string]redis.UniversalClient, foreign map[string]int64) {
	t.Helper()
	want := legacyKeys(t, lc)
	st := statusOf(t, cfg)
	for _, b := range res.Buckets {
		if got := b.Total.sum(); got != want[b.Bucket] || got != b.PlannedKeys {
			t.Errorf("%s: total columns add up to %d (%+v), legacy has %d keys of the bucket, the pre-pass %d", b.Bucket, got, b.Total, want[b.Bucket], b.PlannedKeys)
		}
		if b.Status != "copied" {
			continue
		}
		if b.Total.Pending != 0 || b.Total.Failed != 0 {
			t.Errorf("%s: copied but %+v", b.Bucket, b.Total)
		}
		if n := dbsizeOf(t, tg[b.Bucket]); n-foreign[b.Bucket] != b.Total.Copied {
			t.Errorf("%s: target holds %d keys (%d foreign), totals say %d copied", b.Bucket, n, foreign[b.Bucket], b.Total.Copied)
		}
		found := false
		for _, s := range st.Buckets {
			if s.Bucket == b.Bucket {
				found = true
				if s.Total != b.Total {
					t.Errorf("%s: status total %+v, migrate total %+v", b.Bucket, s.Total, b.Total)
				}
			}
		}
		if !found {
			t.Errorf("%s: not in status", b.Bucket)
		}
	}
}

// Ctrl-C mid-copy, then a rerun: every key is in exactly one column of the
// totals, which add up to the bucket's keys, equal status's and the
// targets' contents; this run's counts are reported separately.
func TestInterruptedRunCountsReconcile(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	ctx := ctxT(t)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	fill(t, lc, 3000)
	tg["queue"].Set(ctx, "queue:str", "theirs", 0) // foreign: refused
	cfg, _ := writeConfig(t, leg.Addr(), "", map[string]string{"ratelimit": ""})

	// first run, interrupted once the copy is well under way
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		code      int
		out, errs string
	}
	done := make(chan result, 1)
	go func() {
		var out, errb bytes.Buffer
		app := &cmd.App{In: strings.NewReader(""), Out: &out, Err: &errb}
		code := cmd.Run(rctx, app, []string{"--config", cfg, "migrate", "--yes", "--allow-nonempty", "-o", "json", "--max-ops", "6000", "--batch", "64"})
		done <- result{code, out.String(), errb.String()}
	}()
	waitKeys(t, tg["cache"], 500)
	cancel()
	r := <-done
	if r.code != 1 || !strings.Contains(r.errs, "interrupted") {
		t.Fatalf("interrupted run: exit %d\n%s\n%s", r.code, r.out, r.errs)
	}
	first := parseMigrate(t, r.out)
	st := statusOf(t, cfg)
	pending := int64(0)
	for _, s := range st.Buckets {
		b := first.bucket(s.Bucket)
		if s.Total != b.Total {
			t.Errorf("after Ctrl-C, %s: status total %+v, migrate total %+v", s.Bucket, s.Total, b.Total)
		}
		if b.Total.sum() != b.PlannedKeys {
			t.Errorf("after Ctrl-C, %s: columns add up to %d (%+v), the bucket has %d keys", s.Bucket, b.Total.sum(), b.Total, b.PlannedKeys)
		}
		pending += b.Total.Pending
	}
	if pending == 0 {
		t.Fatalf("the first run was not interrupted mid-copy: %+v", first)
	}

	code, out, errs := run(t, "--config", cfg, "migrate", "--yes", "--allow-nonempty", "-o", "json")
	if code != 0 {
		t.Fatalf("rerun: exit %d\n%s\n%s", code, out, errs)
	}
	res := parseMigrate(t, out)
	assertReconciled(t, cfg, res, lc, tg, map[string]int64{"queue": 1})
	if q := res.bucket("queue"); q.Total.Refused != 1 {
		t.Errorf("queue: %+v, want the foreign key refused once", q.Total)
	}
	if rl := res.bucket("ratelimit"); rl.Status != "no-target" || rl.Total.Skipped == 0 || rl.Total.Skipped != rl.PlannedKeys {
		t.Errorf("ratelimit without a target: %+v", rl)
	}
	resumed := false
	for _, b := range res.Buckets {
		if b.Status == "copied" && b.ThisRun.Copied < b.Total.Copied {
			resumed = true
		}
	}
	if !resumed {
		t.Errorf("the rerun did not resume (this run copied as much as the whole migration): %+v", res)
	}
	assertMigrated(t, lc, tg, "cache", "session")
	code, out, _ = run(t, "--config", cfg, "migrate", "--yes", "--allow-nonempty")
	if code != 0 || !strings.Contains(out, "whole migration") || !strings.Contains(out, "this run") || !strings.Contains(out, "PAYLOAD") {
		t.Errorf("summary text: exit %d\n%s", code, out)
	}
}

// A bucket whose target fills up mid-copy stops: its phase stays copying,
// the failure is recorded beside it, its keys not copied are counted as
// failed; once the target has room, a rerun resumes it.
func TestFailedBucketKeepsPhaseAndResumes(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	fill(t, lc, 100)
	ctx := ctxT(t)
	pl := lc.Pipeline()
	for i := 0; i < 3000; i++ {
		pl.Set(ctx, fmt.Sprintf("queue:fat:%d", i), strings.Repeat("q", 1000), 0)
	}
	if _, err := pl.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	small := topotest.Standalone(t, "--maxmemory-policy", "noeviction")
	sc := topotest.Client(t, small.Addr())
	cfg, stateDir := writeConfig(t, leg.Addr(), "", map[string]string{"queue": fmt.Sprintf("{kind: standalone, url: \"redis://%s/0\"}", small.Addr())})
	done := slowMigrate(t, cfg, 3000)
	waitKeys(t, sc, 300)
	// the target fills up under the copy (another tenant, a lower maxmemory)
	if err := sc.ConfigSet(ctx, "maxmemory", fmt.Sprint(usedMemory(t, sc)+64<<10)).Err(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if !strings.HasPrefix(r, "1\n") || !strings.Contains(r, "ERROR queue: target queue (standalone redis://"+small.Addr()) ||
		!strings.Contains(r, "out of memory") || !strings.Contains(r, "some buckets failed: queue") {
		t.Fatalf("OOM not explained:\n%s", r)
	}
	assertMigrated(t, lc, tg, "cache", "session", "ratelimit")
	sd, _ := state.Open(stateDir)
	st, _ := sd.Load()
	q := st.Buckets["queue"]
	if q.Phase != state.Copying || !q.Failed || q.FailedAt.IsZero() || q.Errors != 1 || q.Copied || !strings.Contains(q.LastError, "out of memory") {
		t.Errorf("queue state: %+v", q)
	}
	// as saved: the phase it failed in, the failure beside it
	var raw struct {
		Buckets map[string]map[string]any `json:"buckets"`
	}
	if b, err := os.ReadFile(filepath.Join(stateDir, "state.json")); err != nil || json.Unmarshal(b, &raw) != nil {
		t.Fatalf("state.json: %v", err)
	}
	if q := raw.Buckets["queue"]; q["phase"] != "copying" || q["failed"] != true {
		t.Errorf("state.json of the failed bucket: phase %v, failed %v", q["phase"], q["failed"])
	}
	if c := st.Buckets["cache"]; !c.Copied || c.Failed {
		t.Errorf("cache state: %+v", c)
	}
	for _, b := range statusOf(t, cfg).Buckets {
		if b.Bucket == "queue" && (!b.Failed || b.Phase != "copying" || b.Total.Failed == 0 || b.Total.Pending != 0 || b.Total.sum() != q.PlannedKeys) {
			t.Errorf("status of the failed bucket: %+v (planned %d)", b, q.PlannedKeys)
		}
	}
	if code, out, _ := run(t, "--config", cfg, "status"); code != 0 || !strings.Contains(out, "copying FAILED") || !strings.Contains(out, "FAILED queue at") {
		t.Errorf("status text:\n%s", out)
	}

	// capacity added: the rerun resumes the stopped bucket only
	if err := sc.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, "--config", cfg, "migrate", "--yes", "-o", "json")
	if code != 0 {
		t.Fatalf("rerun: exit %d\n%s\n%s", code, out, errs)
	}
	res := parseMigrate(t, out)
	if c := res.bucket("cache"); c.Status != "copied" || c.ThisRun.Copied != 0 {
		t.Errorf("cache was copied again: %+v", c)
	}
	tg["queue"] = sc
	assertMigrated(t, lc, tg, "queue")
	assertReconciled(t, cfg, res, lc, tg, nil)
	st, _ = sd.Load()
	if q := st.Buckets["queue"]; q.Phase != state.Copying || q.Failed || !q.Copied || q.Errors != 1 {
		t.Errorf("queue state after the rerun: %+v", q)
	}
}

func usedMemory(t *testing.T, c *redis.Client) int64 {
	t.Helper()
	var um int64
	for _, l := range strings.Split(c.Info(ctxT(t), "memory").Val(), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "used_memory:"); ok {
			fmt.Sscan(v, &um)
		}
	}
	if um == 0 {
		t.Fatal("INFO memory has no used_memory")
	}
	return um
}
