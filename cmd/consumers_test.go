package cmd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/topology/topotest"
)

// cutover --bucket queue refuses while a job framework's workers are alive
// on legacy — a real asynq server, a Sidekiq process with a fresh beat, an
// RQ worker key — naming each family; stale registrations do not count;
// --consumers-stopped skips the check (the command then reaches the next
// precondition: no migrate --dual-write runs).
func TestCutoverQueueRefusedWhileConsumersAlive(t *testing.T) {
	leg, tgt := topotest.Standalone(t), topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "redisplit.yaml")
	y := fmt.Sprintf("legacy: {url: \"redis://%s\"}\nstate_dir: %q\nunknown: skip\ntargets:\n  queue: {kind: standalone, url: \"redis://%s\"}\n",
		leg.Addr(), filepath.Join(t.TempDir(), "state"), tgt.Addr())
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cutover := func(extra ...string) (int, string) {
		code, _, errs := runCLI(t, append([]string{"--config", p, "cutover", "--bucket", "queue", "--dry-run"}, extra...)...)
		return code, errs
	}
	// stale registrations only: a Sidekiq beat 10 minutes old, an RQ worker
	// whose key expired, an asynq server entry past its expiry
	now := time.Now()
	lc.SAdd(ctx, "processes", "old-host:1:abc")
	lc.HSet(ctx, "old-host:1:abc", "beat", strconv.FormatFloat(float64(now.Add(-10*time.Minute).UnixNano())/1e9, 'f', 3, 64))
	lc.SAdd(ctx, "rq:workers", "rq:worker:gone")
	lc.ZAdd(ctx, "asynq:servers", redis.Z{Score: float64(now.Add(-time.Minute).Unix()), Member: "asynq:servers:{old:1:x}"})
	if code, errs := cutover(); code != ExitRefused || !strings.Contains(errs, "no migrate --dual-write is running") || strings.Contains(errs, "consumers still work") {
		t.Fatalf("stale registrations only: exit %d\n%s", code, errs)
	}

	// live workers: a real asynq server, a fresh Sidekiq beat, an RQ worker key
	srv := asynq.NewServer(asynq.RedisClientOpt{Addr: leg.Addr()}, asynq.Config{Concurrency: 1, LogLevel: asynq.FatalLevel})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	lc.SAdd(ctx, "processes", "web-1:7:def")
	lc.HSet(ctx, "web-1:7:def", "beat", strconv.FormatFloat(float64(time.Now().UnixNano())/1e9, 'f', 3, 64))
	lc.SAdd(ctx, "rq:workers", "rq:worker:w1")
	lc.HSet(ctx, "rq:worker:w1", "state", "busy")
	lc.Expire(ctx, "rq:worker:w1", time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	var code int
	var errs string
	for {
		code, errs = cutover()
		if strings.Contains(errs, "asynq: 1 alive") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // the asynq server registers itself on its first heartbeat
	}
	if code != ExitRefused || !strings.Contains(errs, "consumers still work on legacy for bucket queue") {
		t.Fatalf("live workers: exit %d\n%s", code, errs)
	}
	for _, want := range []string{"sidekiq: 1 alive (web-1:7:def", "asynq: 1 alive", "rq: 1 alive (w1", "--consumers-stopped"} {
		if !strings.Contains(errs, want) {
			t.Errorf("refusal does not say %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "old-host") || strings.Contains(errs, "gone") {
		t.Errorf("stale registrations counted:\n%s", errs)
	}
	if n := strings.Count(strings.TrimSpace(errs), "\n"); n > 0 {
		t.Errorf("the refusal is not one line:\n%s", errs)
	}
	// --consumers-stopped: the check is skipped
	if code, errs := cutover("--consumers-stopped"); code != ExitRefused || strings.Contains(errs, "consumers still work") || !strings.Contains(errs, "no migrate --dual-write is running") {
		t.Errorf("--consumers-stopped: exit %d\n%s", code, errs)
	}
}
