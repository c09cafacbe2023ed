package dualwrite

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/topology"
	"github.com/redisplit/redisplit/topology/topotest"
)

const own = "redisplit:"

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// client is a RESP2 client like redisconn's (user optional).
func client(t testing.TB, addr, user, pass string, db int) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Username: user, Password: pass, DB: db,
		Protocol: redisconn.Protocol, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// legacy starts a redis-server with notifications on ("EA") and returns it
// with an admin client.
func legacy(t testing.TB, args ...string) (topology.Server, *redis.Client) {
	t.Helper()
	s := topotest.Standalone(t, args...)
	c := client(t, s.Addr(), "", "", 0)
	if err := c.ConfigSet(ctxT(t), "notify-keyspace-events", "EA").Err(); err != nil {
		t.Fatal(err)
	}
	return s, c
}

// valkey starts a valkey-server.
func valkey(t testing.TB) topology.Server {
	t.Helper()
	bin, err := exec.LookPath("valkey-server")
	if err != nil {
		t.Skip("valkey-server not installed")
	}
	b := topotest.Backend(t)
	b.(*topology.ProcessBackend).Binary = bin
	s, err := topology.Standalone(ctxT(t), b, "valkey")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// feed collects what a Capture delivers.
type feed struct {
	mu     sync.Mutex
	events []Event
	ch     chan Event
}

func newFeed() *feed {
	f := &feed{ch: make(chan Event, 1024)}
	go func() {
		for e := range f.ch {
			f.mu.Lock()
			f.events = append(f.events, e)
			f.mu.Unlock()
		}
	}()
	return f
}

func (f *feed) snapshot() []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Event(nil), f.events...)
}

// waitFor polls the events until ok says so.
func (f *feed) waitFor(t testing.TB, what string, d time.Duration, ok func([]Event) bool) []Event {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		evs := f.snapshot()
		if ok(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; got %s", what, describe(evs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func describe(evs []Event) string {
	var b strings.Builder
	n := 0
	for _, e := range evs {
		switch e.Kind {
		case KindMark:
			n++
			if n > 20 {
				continue
			}
			k := e.Mark.Key
			if len(k) > 40 {
				k = k[:40] + "…"
			}
			fmt.Fprintf(&b, "[mark %d %s %s] ", e.Mark.DB, e.Mark.Event, k)
		case KindMarker:
		default:
			fmt.Fprintf(&b, "[%s %s: %s] ", e.Kind, e.Gap.Cause, e.Gap.Reason)
		}
	}
	return fmt.Sprintf("%d events, %d marks: %s", len(evs), n, b.String())
}

// fast is a Config with short periods for tests.
func fast() Config {
	return Config{OwnPrefix: own, MarkerEvery: 100 * time.Millisecond, MarkerDeadline: time.Second,
		PollEvery: 100 * time.Millisecond, Idle: time.Second, MaxBackoff: 500 * time.Millisecond}
}

func start(t testing.TB, c *redis.Client, cfg Config) (*Capture, *feed) {
	t.Helper()
	f := newFeed()
	cp, err := Start(ctxT(t), c, cfg, ChanSink(f.ch))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return cp, f
}

func hasMark(evs []Event, event, key string) bool { return indexMark(evs, event, key) >= 0 }

func indexMark(evs []Event, event, key string) int {
	for i, e := range evs {
		if e.Kind == KindMark && (key == "" || e.Mark.Key == key) && (event == "" || e.Mark.Event == event) {
			return i
		}
	}
	return -1
}

func indexKind(evs []Event, k Kind, cause GapCause) int {
	for i, e := range evs {
		if e.Kind == k && (cause == "" || e.Gap != nil && e.Gap.Cause == cause) {
			return i
		}
	}
	return -1
}

// resumes writes key and waits for its mark after the gap at index gi.
func resumes(t testing.TB, f *feed, c *redis.Client, key string, gi int) {
	t.Helper()
	// The key is written again every 200 ms: a later gap (e.g. the poll
	// noticing the restart once more and subscribing again) may cover one
	// write, and is then delivered in its place; the feed must resume.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			c.Set(ctxT(t), key, "v", 0)
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	f.waitFor(t, "a mark for "+key+" after the gap", 10*time.Second, func(evs []Event) bool {
		i := indexMark(evs, "set", key)
		return i > gi
	})
}
