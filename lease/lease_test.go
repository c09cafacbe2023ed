package lease

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/safety"
	"github.com/redisplit/redisplit/topology/topotest"
)

// helperEnv makes the test binary a process that takes the lease on the
// Redis at its value, says "held" and waits to be killed.
const helperEnv = "REDISPLIT_LEASE_TEST_HOLDER"

func TestMain(m *testing.M) {
	if addr := os.Getenv(helperEnv); addr != "" {
		c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
		if _, err := Acquire(context.Background(), c, Options{Command: "migrate", StateDir: "/helper"}, nil); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("held")
		select {}
	}
	os.Exit(m.Run())
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func refused(t *testing.T, err error, want ...string) {
	t.Helper()
	var r *safety.Refusal
	if !errors.As(err, &r) {
		t.Fatalf("want a refusal, got %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q lacks %q", err, w)
		}
	}
}

// A redisplit killed with kill -9 whose parent has not reaped it yet (a
// zombie: kill(pid, 0) still succeeds) leaves a lease that a rerun on the
// same host takes over at once, and says so.
func TestTakeOverAtOnceAfterKill9(t *testing.T) {
	srv := topotest.Standalone(t)
	c := topotest.Client(t, srv.Addr())
	ctx := ctxT(t)

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), helperEnv+"="+srv.Addr())
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := false
	t.Cleanup(func() {
		if !reaped {
			child.Process.Kill()
			child.Wait()
		}
	})
	line := make(chan string, 1)
	go func() { s, _ := bufio.NewReader(out).ReadString('\n'); line <- s }()
	select {
	case s := <-line:
		if s != "held\n" {
			t.Fatalf("helper: %q", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the helper did not take the lease")
	}
	pid := child.Process.Pid

	// alive: refused, naming it
	_, err = Acquire(ctx, c, Options{Command: "rollback"}, nil)
	refused(t, err, "redisplit migrate", fmt.Sprintf("pid %d", pid), "running on this host")

	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Not reaped on purpose (no Wait): the child stays a zombie, as under a
	// parent that has not reaped it yet. Wait until the kernel says so.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := readProcStat(pid)
		if err != nil {
			t.Fatal(err)
		}
		if st.state == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed helper is in state %c, not a zombie", st.state)
		}
		time.Sleep(10 * time.Millisecond)
	}
	l, err := Acquire(ctx, c, Options{Command: "rollback"}, nil)
	if err != nil {
		t.Fatalf("a lease whose holder was killed is not taken over at once: %v", err)
	}
	defer l.Release()
	if l.TookOver == nil || l.TookOver.Previous.PID != pid || l.TookOver.Reason != "zombie" {
		t.Fatalf("TookOver = %+v, want pid %d zombie", l.TookOver, pid)
	}
	if s := l.TookOver.String(); !strings.Contains(s, fmt.Sprintf("took over the lease %s of redisplit migrate pid %d", Key, pid)) {
		t.Errorf("takeover line: %s", s)
	}
	child.Wait()
	reaped = true
}

// Leases written by other holders: one that is gone or whose pid now runs
// another process is taken over; one on another host, or alive here, is not.
func TestJudgeHolders(t *testing.T) {
	srv := topotest.Standalone(t)
	c := topotest.Client(t, srv.Addr())
	ctx := ctxT(t)
	me := self()

	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		holder Holder
		reason string // "" = refused
		want   []string
	}{
		{"gone", Holder{Command: "migrate", Host: me.Host, PID: gone.Process.Pid, PIDNS: me.PIDNS}, "gone", nil},
		{"pid reused", Holder{Command: "migrate", Host: me.Host, PID: me.PID, ProcStart: me.ProcStart + 1, PIDNS: me.PIDNS}, "pid reused", nil},
		{"alive here", Holder{Command: "migrate", Host: me.Host, PID: me.PID, ProcStart: me.ProcStart, PIDNS: me.PIDNS}, "", []string{"running on this host"}},
		{"other host", Holder{Command: "migrate", Host: "elsewhere", PID: 1, Dir: "/x"}, "", []string{"host elsewhere", "state dir /x", "expires within"}},
		{"other pid namespace", Holder{Command: "migrate", Host: me.Host, PID: gone.Process.Pid, PIDNS: "pid:[1]"}, "", []string{"expires within"}},
		{"not ours at all", Holder{}, "", []string{"a redisplit command"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, _ := json.Marshal(tc.holder)
			if tc.name == "not ours at all" {
				v = []byte("garbage")
			}
			if err := c.Set(ctx, Key, v, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			defer c.Del(ctx, Key)
			checkErr := Check(ctx, c)
			l, err := Acquire(ctx, c, Options{Command: "rollback"}, nil)
			if tc.reason == "" {
				refused(t, err, tc.want...)
				refused(t, checkErr, tc.want...)
				if got, _ := c.Get(ctx, Key).Result(); got != string(v) {
					t.Errorf("a refused Acquire changed the lease to %s", got)
				}
				return
			}
			if err != nil || checkErr != nil {
				t.Fatalf("Acquire: %v; Check: %v", err, checkErr)
			}
			defer l.Release()
			if l.TookOver == nil || l.TookOver.Reason != tc.reason {
				t.Fatalf("TookOver = %+v, want %s", l.TookOver, tc.reason)
			}
		})
	}
}

// A lease taken by someone else cancels the holder's context with the
// cause; Release leaves someone else's lease alone.
func TestLostLeaseCancels(t *testing.T) {
	srv := topotest.Standalone(t)
	c := topotest.Client(t, srv.Addr())
	ctx, cancel := context.WithCancelCause(ctxT(t))
	defer cancel(nil)
	l, err := Acquire(ctx, c, Options{Command: "migrate", TTL: 300 * time.Millisecond}, cancel)
	if err != nil {
		t.Fatal(err)
	}
	if l.TookOver != nil {
		t.Errorf("TookOver = %+v on a free lease", l.TookOver)
	}
	time.Sleep(250 * time.Millisecond) // renewed at least once: still ours
	if ctx.Err() != nil || c.Exists(ctx, Key).Val() != 1 {
		t.Fatalf("lease not renewed: %v", context.Cause(ctx))
	}
	c.Set(context.Background(), Key, "someone else", time.Minute)
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the lost lease did not cancel the context")
	}
	if cause := context.Cause(ctx); !strings.Contains(cause.Error(), "lost the lease lock") {
		t.Errorf("cause: %v", cause)
	}
	l.Release()
	if v := c.Get(context.Background(), Key).Val(); v != "someone else" {
		t.Errorf("Release deleted someone else's lease: %q", v)
	}
}

// A lease key that vanished (FLUSHALL on legacy, which migrate --dual-write
// must survive: it rescans) is taken again by the next renewal, and the
// holder goes on.
func TestLeaseRetakenAfterFlush(t *testing.T) {
	srv := topotest.Standalone(t)
	c := topotest.Client(t, srv.Addr())
	ctx, cancel := context.WithCancelCause(ctxT(t))
	defer cancel(nil)
	l, err := Acquire(ctx, c, Options{Command: "migrate", TTL: 300 * time.Millisecond}, cancel)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	c.FlushAll(ctx)
	time.Sleep(400 * time.Millisecond) // at least one renewal
	if ctx.Err() != nil {
		t.Fatalf("the holder lost its lease to a flush: %v", context.Cause(ctx))
	}
	if c.Get(ctx, Key).Val() != l.token || l.Retaken() == 0 {
		t.Fatalf("the lease was not taken again: %q, retaken %d", c.Get(ctx, Key).Val(), l.Retaken())
	}
}

// Legacy down for a moment (a restart, a network blip) while the lease is
// held: the renewals are tried again until the key could expire, and the
// holder goes on (the key is taken again if the restart lost it).
func TestLeaseSurvivesABriefOutage(t *testing.T) {
	srv := topotest.Standalone(t)
	// no retries inside the client: a renewal during the outage fails
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DisableIdentity: true, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithCancelCause(ctxT(t))
	defer cancel(nil)
	l, err := Acquire(ctx, c, Options{Command: "migrate", TTL: 4 * time.Second}, cancel)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// down until a renewal got no answer (or the lease was given up)
	for end := time.Now().Add(3 * time.Second); l.failedRenewals.Load() == 0 && ctx.Err() == nil && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if ctx.Err() != nil {
		t.Fatalf("the holder lost its lease to a brief outage: %v", context.Cause(ctx))
	}
	if c.Get(ctx, Key).Val() != l.token || l.failedRenewals.Load() == 0 {
		t.Fatalf("lease %q after the outage, %d renewals tried again", c.Get(ctx, Key).Val(), l.failedRenewals.Load())
	}
}
