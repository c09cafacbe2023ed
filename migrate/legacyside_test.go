package migrate_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redisplit/redisplit/topology/topotest"
)

// Legacy is killed while migrate copies a big key logically, page by page:
// the run stops with an error naming legacy (as for any legacy failure),
// the bucket is not failed, and nothing is counted as the target's retry.
func TestLegacyDiesDuringLogicalCopy(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	ctx := ctxT(t)
	for i := 0; i < 100; i++ { // 100 pages of LRANGE
		args := make([]any, 1000)
		for j := range args {
			args[j] = fmt.Sprintf("job-%d-%d", i, j)
		}
		if err := lc.RPush(ctx, "queue:big", args...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _ := writeConfig(t, leg.Addr(), "", map[string]string{"cache": "", "session": "", "ratelimit": ""})
	type outcome struct {
		code      int
		out, errs string
	}
	done := make(chan outcome, 1)
	go func() {
		code, out, errs := run(t, "--config", cfg, "migrate", "--yes", "--big-bytes", "1024", "--max-ops", "20", "-o", "json", "--no-progress")
		done <- outcome{code, out, errs}
	}()
	deadline := time.Now().Add(time.Minute)
	for tg["queue"].LLen(ctx, "queue:big").Val() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the logical copy did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	leg.Kill()
	r := <-done
	t.Logf("stderr: %s", r.errs)
	if r.code != 1 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.out, r.errs)
	}
	if !strings.Contains(r.errs, "legacy "+leg.Addr()+": unreachable") || strings.Contains(r.errs, "some buckets failed") {
		t.Errorf("stderr does not say legacy failed: %s", r.errs)
	}
	var res struct {
		Buckets []struct {
			Bucket         string `json:"bucket"`
			Status         string `json:"status"`
			Retries        int64  `json:"retries"`
			LastRetryError string `json:"last_retry_error"`
		} `json:"buckets"`
	}
	if err := json.Unmarshal([]byte(r.out), &res); err != nil {
		t.Fatalf("%v\n%s", err, r.out)
	}
	for _, b := range res.Buckets {
		if b.Bucket != "queue" {
			continue
		}
		if b.Retries != 0 || b.LastRetryError != "" {
			t.Errorf("legacy's failure counted as the queue target's: %d retries, last %q", b.Retries, b.LastRetryError)
		}
		if b.Status == "failed" {
			t.Errorf("the queue bucket failed for legacy's failure")
		}
	}
}
