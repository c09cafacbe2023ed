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
)

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		want ErrClass
	}{
		{errors.New("OOM command not allowed when used memory > 'maxmemory'."), OOM},
		{errors.New("ERR DUMP payload version or checksum are wrong"), BadPayload},
		{errors.New("ERR Bad data format"), BadPayload},
		{errors.New("LOADING Redis is loading the dataset in memory"), Transient},
		{errors.New("TRYAGAIN Multiple keys request during rehashing of slot"), Transient},
		{errors.New("READONLY You can't write against a read only replica."), Transient},
		{errors.New("MOVED 3999 127.0.0.1:6381"), Transient},
		{errors.New("ASK 3999 127.0.0.1:6381"), Transient},
		{errors.New("CLUSTERDOWN The cluster is down"), Transient},
		{errNotReplicated, Transient},
		{io.EOF, Transient},
		{fmt.Errorf("write: %w", syscall.ECONNRESET), Transient},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, Transient},
		{errors.New("ERR wrong number of arguments for 'restore' command"), Permanent},
		{errors.New("WRONGTYPE Operation against a key holding the wrong kind of value"), Permanent},
		{errors.New("NOPERM this user has no permissions to run the 'restore' command"), Permanent},
	}
	for _, c := range cases {
		if got := Classify(c.err); got != c.want {
			t.Errorf("Classify(%v) = %d, want %d", c.err, got, c.want)
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
