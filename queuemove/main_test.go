package queuemove

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store/sqsstore"
	"github.com/redisplit/redisplit/store/sqsstore/sqsemu"
	"github.com/redisplit/redisplit/topology"
)

// Every SQS test of the project lives in this package: goaws keeps its
// queues in process-global state, so each test uses its own queue names
// (qname) on the shared emulators.
var (
	legacy   topology.Server
	faithful *sqsemu.Emulator // quirks corrected, rejections injectable
	raw      *sqsemu.Emulator // goaws as it is
	rejectFn atomic.Pointer[func(string) string]
	seqNames atomic.Int64
)

func TestMain(m *testing.M) {
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true") // never ask a metadata service
	dir, err := os.MkdirTemp("", "redisplit-queuemove-test-")
	if err != nil {
		panic(err)
	}
	code := func() int {
		b, err := topology.NewProcessBackend(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer b.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if legacy, err = topology.Standalone(ctx, b, "legacy"); err != nil {
			fmt.Fprintln(os.Stderr, "topology:", err)
			return 1
		}
		faithful, err = sqsemu.Start(sqsemu.Options{Faithful: true, Reject: func(body string) string {
			if f := rejectFn.Load(); f != nil {
				return (*f)(body)
			}
			return ""
		}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer faithful.Close()
		if raw, err = sqsemu.Start(sqsemu.Options{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer raw.Close()
		return m.Run()
	}()
	os.RemoveAll(dir)
	os.Exit(code)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// qname returns a queue-name prefix no other test uses.
func qname() string { return "t" + strconv.FormatInt(seqNames.Add(1), 10) + "-{key}" }

type env struct {
	t   testing.TB
	rdb *redis.Client
	svc *sqsstore.Client
	cfg Config
}

func newEnv(t testing.TB, emu *sqsemu.Emulator, fifo bool, lists ...string) *env {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: legacy.Addr(), DisableIdentity: true})
	t.Cleanup(func() { rdb.Close() })
	// The default call timeout (30 s): on a loaded machine the emulator can
	// take seconds to answer, and a call cut by its timeout while the answer
	// is read ("use of closed network connection") is a lost receive, whose
	// messages stay in flight — what the product handles, not what a test
	// of something else should trip over.
	svc, err := sqsstore.New(context.Background(), sqsstore.Options{Endpoint: emu.URL, Credentials: sqsemu.Credentials})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, rdb: rdb, svc: svc, cfg: Config{Legacy: rdb, SQS: svc, State: dir, Lists: lists,
		Target: config.SQS{QueueName: qname(), FIFO: fifo, CreateQueues: true}}}
}

func (e *env) opts() Options {
	return Options{Config: e.cfg, Poll: 20 * time.Millisecond, BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond}
}

func (e *env) queue(list string) sqsstore.Queue {
	e.t.Helper()
	name, err := e.cfg.Target.QueueFor(list)
	if err != nil {
		e.t.Fatal(err)
	}
	q, err := e.svc.Queue(context.Background(), name, e.cfg.Target.FIFO, true)
	if err != nil {
		e.t.Fatal(err)
	}
	return q
}

// drainSQS receives and deletes every message of list's queue, in receive
// order.
func (e *env) drainSQS(list string) []sqsstore.Message {
	e.t.Helper()
	q := e.queue(list)
	var all []sqsstore.Message
	ctx := ctxT(e.t)
	for empty := 0; empty < 3; {
		msgs, err := q.Receive(ctx, 10, 0, 30*time.Second)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(msgs) == 0 {
			c, err := q.Counts(ctx)
			if err != nil {
				e.t.Fatal(err)
			}
			if c.Total() == 0 {
				empty++
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		var rs []string
		for _, m := range msgs {
			rs = append(rs, m.ReceiptHandle)
		}
		if err := q.Delete(ctx, rs); err != nil {
			e.t.Fatal(err)
		}
		all = append(all, msgs...)
	}
	return all
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
