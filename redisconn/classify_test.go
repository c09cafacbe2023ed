package redisconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestClassify is the table of the project's one classifier: error replies,
// network failures, wrapped errors and errors already attributed to a side.
func TestClassify(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	cases := []struct {
		err       error
		want      Class
		retryable bool
	}{
		{errors.New("OOM command not allowed when used memory > 'maxmemory'."), OOM, false},
		{errors.New("ERR DUMP payload version or checksum are wrong"), BadPayload, false},
		{errors.New("ERR Bad data format"), BadPayload, false},
		{errors.New("LOADING Redis is loading the dataset in memory"), Transient, true},
		{errors.New("TRYAGAIN Multiple keys request during rehashing of slot"), Transient, true},
		{errors.New("READONLY You can't write against a read only replica."), Transient, true},
		{errors.New("MOVED 3999 127.0.0.1:6381"), Transient, true},
		{errors.New("ASK 3999 127.0.0.1:6381"), Transient, true},
		{errors.New("CLUSTERDOWN The cluster is down"), Transient, true},
		{errors.New("BUSY Redis is busy running a script"), Transient, true},
		{errors.New("BUSYKEY Target key name already exists."), Permanent, false},
		{errors.New("NOREPLICAS the replica did not acknowledge"), Transient, true},
		{ReplyError("LOADING Redis is loading"), Transient, true},
		{fmt.Errorf("reading %q: %w", "k", ReplyError("NOPERM this user has no permissions to run the 'getrange' command")), NoPerm, false},
		{errors.New("WRONGPASS invalid username-password pair or user is disabled."), Auth, false},
		{errors.New("NOAUTH Authentication required."), Auth, false},
		{errors.New("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"), Auth, false},
		{io.EOF, Unreachable, true},
		{fmt.Errorf("write: %w", syscall.ECONNRESET), Unreachable, true},
		{reset, Unreachable, true},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, Unreachable, true},
		{errors.New("redis: all sentinels specified in configuration are unreachable"), Unreachable, true},
		{context.DeadlineExceeded, Timeout, true},
		{redis.ErrPoolTimeout, Timeout, true},
		{errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: i/o timeout"), Timeout, true},
		{context.Canceled, Permanent, false},
		{errors.New(`redis: invalid reply: "<!DOCTYPE HTML>\n"`), NotRedis, false},
		{errors.New(`redis protocol: malformed line "HTTP/1.0 400"`), NotRedis, false},
		{errors.New(`redis: can't parse map reply: "HTTP/1.1 400 Bad Request"`), NotRedis, false},
		{errors.New(`redis: can't parse int reply: "$5"`), Permanent, false},
		{errors.New("tls: first record does not look like a TLS handshake"), TLSFailure, false},
		{errors.New("ERR wrong number of arguments for 'restore' command"), Permanent, false},
		{errors.New("WRONGTYPE Operation against a key holding the wrong kind of value"), Permanent, false},
		{errors.New("NOPERM this user has no permissions to run the 'restore' command"), NoPerm, false},
		{nil, Permanent, false},
		// attributed errors keep their class, whatever they wrap
		{Attribute(reset, "legacy", "h:1"), Unreachable, true},
		{fmt.Errorf("key %q: %w", "k", Attribute(errors.New("ERR something"), "legacy", "h:1")), Permanent, false},
	}
	for _, c := range cases {
		got := Classify(c.err)
		if got != c.want || got.Retryable() != c.retryable {
			t.Errorf("Classify(%v) = %q (retryable %v), want %q (retryable %v)", c.err, got, got.Retryable(), c.want, c.retryable)
		}
	}
}

// TestSide: the side travels with an attributed error through wrapping;
// unattributed errors have none.
func TestSide(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	cases := []struct {
		err  error
		want Side
	}{
		{Attribute(reset, "legacy", "h:1"), SideLegacy},
		{fmt.Errorf("copy: %w", Attribute(reset, "legacy", "h:1")), SideLegacy},
		{Explain(reset, "target cache", "h:2"), SideTarget},
		{Attribute(errors.New("ERR x"), "target cache", "h:2"), SideTarget},
		{reset, SideUnknown},
		{nil, SideUnknown},
	}
	for _, c := range cases {
		if got := SideOf(c.err); got != c.want {
			t.Errorf("SideOf(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	// one line, even around a joined cause
	e := Attribute(errors.Join(errors.New("redis: nil"), errors.New("redis: nil")), "target session", "m@h:3")
	if s := e.Error(); s != "target session m@h:3: error: redis: nil; redis: nil" {
		t.Errorf("Error() = %q", s)
	}
}

func TestReplyCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{ReplyError("WRONGTYPE Operation against a key holding the wrong kind of value"), "WRONGTYPE"},
		{fmt.Errorf("legacy: %w", ReplyError("LOADING Redis is loading the dataset in memory")), "LOADING"},
		{ReplyError("NOPERM this user has no permissions"), "NOPERM"},
	} {
		if got := ReplyCode(c.err); got != c.want {
			t.Errorf("ReplyCode(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
