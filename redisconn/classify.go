package redisconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// Class is what a failed command means to redisplit: whether it is worth
// retrying, and what to tell the operator. Classify is the project's one
// classifier; the write path's retry loop (store.Retry), migrate's health
// reports and Explain's messages all use it. A Class reads as the words of
// an explained error ("unreachable", "out of memory", ...).
type Class string

const (
	// Permanent is every failure no other class describes: not retried.
	Permanent Class = "error"
	// Transient: the server is in a passing state (failover, resharding,
	// loading its dataset, busy script, replica not acknowledging):
	// retried with back-off.
	Transient Class = "temporarily unavailable"
	// Unreachable: the connection could not be made or broke (refused,
	// reset, closed, EOF, unknown host): retried with back-off.
	Unreachable Class = "unreachable"
	// Timeout: no answer in time (dial, reply, pool): retried with back-off.
	Timeout Class = "timeout"
	// OOM: the server is full and does not evict; retrying cannot help.
	OOM Class = "out of memory"
	// BadPayload: the server cannot read a DUMP payload (another version
	// or engine); the key is copied logically instead.
	BadPayload Class = "unreadable DUMP payload"
	// Auth: wrong or missing user or password.
	Auth Class = "authentication failed"
	// NoPerm: the user's ACL refuses the command.
	NoPerm Class = "permission denied"
	// TLSFailure: the TLS handshake or certificate check failed.
	TLSFailure Class = "TLS failure"
	// NotRedis: the address answers, but not in the Redis protocol (a web
	// server, another service on the port).
	NotRedis Class = "not a Redis server"
	// Misconfigured: a Redis server answers, but not as the configuration
	// says it should (a sentinel that monitors no master of that name, a
	// node without cluster mode named as a cluster).
	Misconfigured Class = "does not match the configuration"
)

// Retryable reports whether an error of class c may succeed when the same
// command is sent again later: Transient, Unreachable and Timeout.
func (c Class) Retryable() bool { return c == Transient || c == Unreachable || c == Timeout }

// Classify sorts err into its Class. An *Error (Explain, Attribute) carries
// its class; otherwise the error reply (go-redis's or a Raw connection's) or
// the network error decides. nil and context cancellation are Permanent.
func Classify(err error) Class {
	if err == nil || errors.Is(err, context.Canceled) {
		return Permanent
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return classifyRaw(err)
}

// transientReplies are the error replies of a server in a passing state.
var transientReplies = []string{"LOADING", "TRYAGAIN", "READONLY", "MOVED", "ASK", "CLUSTERDOWN", "MASTERDOWN", "BUSY ", "NOREPLICAS", "UNBLOCKED"}

// replyOf is err's error reply (go-redis's or a Raw connection's), found
// under any wrapper that put words in front of it; err's text otherwise.
func replyOf(err error) string {
	var re redis.Error
	var rr ReplyError
	reply := ""
	switch {
	case errors.As(err, &rr):
		reply = string(rr)
	case errors.As(err, &re):
		reply = re.Error()
	}
	if reply == "" {
		reply = err.Error()
	}
	return reply
}

// ReplyCode is the code of err's error reply, its first word ("WRONGTYPE",
// "LOADING", "NOPERM", ...): for the replies no Class names. "" for nil.
func ReplyCode(err error) string {
	if err == nil {
		return ""
	}
	code, _, _ := strings.Cut(replyOf(err), " ")
	return code
}

func classifyRaw(err error) Class {
	msg := err.Error()
	reply := replyOf(err)
	switch {
	case strings.HasPrefix(reply, "WRONGPASS"), strings.HasPrefix(reply, "NOAUTH"),
		strings.Contains(reply, "invalid password"), strings.Contains(reply, "invalid username-password"),
		strings.Contains(reply, "called without any password configured"):
		return Auth
	case strings.HasPrefix(reply, "NOPERM"):
		return NoPerm
	case strings.HasPrefix(reply, "OOM "):
		return OOM
	case strings.Contains(reply, "DUMP payload version or checksum are wrong"), strings.Contains(reply, "Bad data format"):
		return BadPayload
	}
	for _, p := range transientReplies {
		if strings.HasPrefix(reply, p) {
			return Transient
		}
	}
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var netErr net.Error
	switch {
	case errors.As(err, &certErr), errors.As(err, &recErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr),
		strings.Contains(msg, "tls:"), strings.Contains(msg, "x509:"):
		return TLSFailure
	case notRESP(msg):
		return NotRedis
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, redis.ErrPoolTimeout),
		errors.As(err, &netErr) && netErr.Timeout(), strings.Contains(msg, "i/o timeout"):
		return Timeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE), errors.As(err, &netErr):
		return Unreachable
	}
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "use of closed network connection",
		"no such host", "EOF", "no reachable", "all sentinels"} {
		if strings.Contains(msg, s) {
			return Unreachable
		}
	}
	if strings.Contains(msg, "failover") {
		return Transient
	}
	return Permanent
}

// notRESP reports whether msg is a client's complaint about a reply that is
// not RESP at all ("redis: can't parse map reply: "HTTP/1.1 400 ...""), as
// opposed to a RESP reply of an unexpected type.
func notRESP(msg string) bool {
	for _, s := range []string{"invalid reply", "can't parse", "redis protocol:", "invalid line"} {
		i := strings.Index(msg, s)
		if i < 0 {
			continue
		}
		q := strings.IndexByte(msg[i:], '"')
		if q < 0 || i+q+1 >= len(msg) {
			return true
		}
		return !strings.ContainsRune("+-:$*%_,#!=(|~>", rune(msg[i+q+1]))
	}
	return false
}

// Side is the server an error came from, as far as the retry loops and
// health reports care: a legacy failure met while writing a target (the
// logical copy reads legacy page by page) is legacy's, not the target's.
type Side string

const (
	SideUnknown Side = ""
	SideLegacy  Side = "legacy"
	SideTarget  Side = "target"
)

// Side is the side of the server e names: Role "legacy" or "target ...".
func (e *Error) Side() Side {
	switch {
	case e.Role == "legacy":
		return SideLegacy
	case strings.HasPrefix(e.Role, "target"):
		return SideTarget
	}
	return SideUnknown
}

// SideOf returns the side carried by err (an *Error in its chain), or
// SideUnknown for an error nobody attributed.
func SideOf(err error) Side {
	var e *Error
	if errors.As(err, &e) {
		return e.Side()
	}
	return SideUnknown
}
