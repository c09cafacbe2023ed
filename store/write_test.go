package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/redisplit/redisplit/redisconn"
)

// A policy retries its own side's errors (and unattributed ones) and
// returns another side's at once, without reporting them.
func TestRetrySide(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	for _, c := range []struct {
		err   error
		calls int
	}{
		{reset, 3},
		{redisconn.Attribute(reset, "target cache", "h:1"), 3},
		{redisconn.Attribute(reset, "legacy", "h:2"), 1},
		{fmt.Errorf("key: %w", redisconn.Attribute(reset, "legacy", "h:2")), 1},
	} {
		notes, calls := 0, 0
		r := Retry{Initial: time.Millisecond, Max: time.Millisecond, For: time.Minute, Side: redisconn.SideTarget,
			OnRetry: func(error) { notes++ }}
		err := r.Do(context.Background(), func() error {
			calls++
			if calls == 3 {
				return nil
			}
			return c.err
		})
		if calls != c.calls || notes != c.calls-1 || (c.calls == 1) != (err != nil) {
			t.Errorf("%v: %d calls, %d retries reported, err %v; want %d calls", c.err, calls, notes, err, c.calls)
		}
	}
}

func TestRetryStopsOnPermanentAndRetriesTransient(t *testing.T) {
	r := Retry{Initial: time.Millisecond, Max: 2 * time.Millisecond, For: time.Second}
	n := 0
	err := r.Do(context.Background(), func() error {
		n++
		if n < 3 {
			return errors.New("LOADING")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("transient: %v after %d calls", err, n)
	}
	n = 0
	perm := errors.New("OOM command not allowed")
	if err := r.Do(context.Background(), func() error { n++; return perm }); err != perm || n != 1 {
		t.Fatalf("OOM retried: %v after %d calls", err, n)
	}
	r.For = 20 * time.Millisecond
	start := time.Now()
	if err := r.Do(context.Background(), func() error { return io.EOF }); err != io.EOF || time.Since(start) > time.Second {
		t.Fatalf("gave up with %v after %s", err, time.Since(start))
	}
}

func TestPayloadType(t *testing.T) {
	for b, want := range map[byte]string{0: "string", 16: "hash", 18: "list", 11: "set", 17: "zset", 21: "stream", 7: ""} {
		if got := PayloadType(string([]byte{b, 1, 2})); got != want {
			t.Errorf("type byte %d = %q, want %q", b, got, want)
		}
	}
}
