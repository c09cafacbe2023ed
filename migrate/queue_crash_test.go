package migrate_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// jobID is the id a producer of qlists gave job ("" for fill's values).
func jobID(job string) string {
	var m map[string]any
	if json.Unmarshal([]byte(job), &m) != nil {
		return ""
	}
	if s, ok := m["jid"].(string); ok {
		return s
	}
	s, _ := m["id"].(string)
	return s
}

// migrate --dual-write killed (kill -9) in the switch window of the queue
// bucket loses no job: producers keep pushing to legacy while it is down
// and a consumer pops the target meanwhile; the rerun reopens the window
// from the merge bases the killed run saved, forwards legacy's new pushes
// to the target, and only then makes legacy the target's copy. Every job
// produced is run or pending on the target; a job counted twice must be
// among the possible duplicates the rerun reports.
func TestQueueWindowKill9LosesNoLegacyPush(t *testing.T) {
	if testing.Short() {
		t.Skip("a live queue window killed and rerun")
	}
	queueWindowKill9(t, false)
}

// The same without the saved bases (removed while migrate is down, as
// after a kill in the instant the window opened, or a state directory a
// redisplit without them wrote): the rerun merges the lists by content;
// still none lost, and the jobs the target ran meanwhile are forwarded
// again, within the possible duplicates reported.
func TestQueueWindowKill9WithoutBasesLosesNone(t *testing.T) {
	if testing.Short() {
		t.Skip("a live queue window killed and rerun")
	}
	queueWindowKill9(t, true)
}

func queueWindowKill9(t *testing.T, dropBases bool) {
	e := newQueueEnv(t)
	ctx := ctxT(t)
	qt := e.tg["queue"]
	led := newLedger()
	c := exec.Command(bin, "--config", e.cfg, "migrate", "--dual-write", "--yes", "--no-progress")
	var out lockedBuf
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	e.waitFor("every bucket syncing", 90*time.Second, nil, allSyncing)
	if code, o, errs := run(t, "--config", e.cfg, "status", "--wait-caught-up", "--timeout", "60s"); code != 0 {
		t.Fatalf("status --wait-caught-up: exit %d\n%s\n%s", code, o, errs)
	}
	if code, o, errs := run(t, "--config", e.cfg, "verify"); code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", code, o, errs)
	}
	if code, o, errs := run(t, "--config", e.cfg, "cutover", "--bucket", "queue", "--yes", "--quiet", "1s"); code != 0 {
		t.Fatalf("cutover: exit %d\n%s\n%s\n%s", code, o, errs, out.String())
	}
	// producers not switched yet: they push to legacy, the window merges
	prod := startProducers(t, led, func() redis.UniversalClient { return e.lc }, func() bool { return false }, 20)
	time.Sleep(3 * time.Second)
	if err := c.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	time.Sleep(3 * time.Second) // pushes to legacy while migrate is down
	popped := 0
	for _, q := range qlists { // consumers on the target meanwhile
		for range 5 {
			var job string
			var err error
			if q.lpush {
				job, err = qt.RPop(ctx, q.key).Result()
			} else {
				job, err = qt.LPop(ctx, q.key).Result()
			}
			if err != nil {
				t.Fatalf("popping %s on the target: %v", q.key, err)
			}
			if id := jobID(job); id != "" {
				led.ran[id] = append(led.ran[id], "target")
				popped++
			}
		}
	}
	time.Sleep(time.Second)
	prod.stop(t)
	if bases := filepath.Join(e.stateDir, "journal", "queue.qbases.json"); dropBases {
		if err := os.Remove(bases); err != nil {
			t.Fatal(err)
		}
	} else if _, err := os.Stat(bases); err != nil {
		t.Fatalf("the killed run saved no merge bases: %v", err)
	}
	m := e.startMigrate()
	defer m.stop(t)
	// the window reopens: legacy ends as the target's copy again
	deadline := time.Now().Add(60 * time.Second)
	for same := 0; same < 3; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("legacy's queue lists never became the target's copy after the rerun\n%s", m.errb.String())
		}
		eq := true
		for _, q := range qlists {
			eq = eq && slices.Equal(e.lc.LRange(ctx, q.key, 0, -1).Val(), qt.LRange(ctx, q.key, 0, -1).Val())
		}
		if eq {
			same++
		} else {
			same = 0
		}
	}
	pending := map[string]int{}
	for _, q := range qlists {
		for _, job := range qt.LRange(ctx, q.key, 0, -1).Val() {
			if id := jobID(job); id != "" {
				pending[id]++
			}
		}
	}
	var lost, twice []string
	for id := range led.produced {
		switch n := len(led.ran[id]) + pending[id]; {
		case n == 0:
			lost = append(lost, id)
		case n > 1:
			twice = append(twice, fmt.Sprintf("%s ×%d", id, n))
		}
	}
	sort.Strings(lost)
	sort.Strings(twice)
	time.Sleep(1500 * time.Millisecond) // the live state's next save
	var reported int64
	if w := e.window("queue"); w != nil {
		reported = w.QueueDuplicates
	}
	t.Logf("%d jobs produced, %d popped on the target while migrate was down, %d pending on the target; %d lost, %d twice, %d reported as possible duplicates",
		len(led.produced), popped, len(pending), len(lost), len(twice), reported)
	if len(led.produced) < 300 {
		t.Errorf("only %d jobs produced: the window was not exercised", len(led.produced))
	}
	if len(lost) > 0 {
		t.Errorf("%d jobs lost (pushed to legacy, never on the target), e.g. %q\n%s", len(lost), lost[:min(10, len(lost))], m.errb.String())
	}
	if dropBases && reported < int64(popped) {
		t.Errorf("%d jobs popped on the target while migrate was down, but only %d reported as possible duplicates", popped, reported)
	}
	if int64(len(twice)) > reported {
		t.Errorf("%d jobs twice but %d reported as possible duplicates, e.g. %q", len(twice), reported, twice[:min(10, len(twice))])
	}
}
