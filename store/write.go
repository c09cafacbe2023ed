package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/config"
)

// Entry is one key's state as read atomically from legacy: its type, its
// absolute expiry and its DUMP payload. Big entries carry no payload; they
// are copied logically, in chunks (CopyLogical).
type Entry struct {
	Key      string
	Type     string // string, hash, list, set, zset, stream (or a module type)
	ExpireAt int64  // absolute expiry in Unix milliseconds; 0 = none
	Payload  string // DUMP payload (binary); empty for Big entries
	Big      bool   // above the size threshold: copy in chunks
}

// ErrClass is how the write path treats a failed command.
type ErrClass int

const (
	// Permanent errors are not retried: the key (or bucket) fails.
	Permanent ErrClass = iota
	// Transient errors (failover, resharding, loading, connection reset)
	// are retried with back-off.
	Transient
	// OOM: the target is full and does not evict; retrying cannot help.
	// The bucket stops.
	OOM
	// BadPayload: the target cannot read the DUMP payload (other version or
	// engine); the key is copied logically instead.
	BadPayload
)

// Classify sorts a target error into an ErrClass.
func Classify(err error) ErrClass {
	if err == nil {
		return Permanent
	}
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "OOM "):
		return OOM
	case strings.Contains(msg, "DUMP payload version or checksum are wrong"), strings.Contains(msg, "Bad data format"):
		return BadPayload
	case strings.HasPrefix(msg, "LOADING"), strings.HasPrefix(msg, "TRYAGAIN"), strings.HasPrefix(msg, "READONLY"),
		strings.HasPrefix(msg, "MOVED"), strings.HasPrefix(msg, "ASK"), strings.HasPrefix(msg, "CLUSTERDOWN"),
		strings.HasPrefix(msg, "MASTERDOWN"), strings.HasPrefix(msg, "BUSY "), strings.HasPrefix(msg, "NOREPLICAS"),
		strings.Contains(msg, "UNBLOCKED"):
		return Transient
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE), errors.Is(err, redis.ErrPoolTimeout),
		errors.Is(err, context.DeadlineExceeded) && !strings.Contains(msg, "context"):
		return Transient
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return Transient
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return Transient
	}
	for _, s := range []string{"connection reset", "connection refused", "broken pipe", "i/o timeout", "use of closed network connection", "EOF", "no reachable", "failover", "all sentinels"} {
		if strings.Contains(msg, s) {
			return Transient
		}
	}
	return Permanent
}

// Retry is the back-off policy for transient target errors.
type Retry struct {
	Initial time.Duration // first wait; default 50ms
	Max     time.Duration // longest wait; default 2s
	For     time.Duration // give up after this long; default 2m
	// OnRetry, when set, is called with each transient error before its
	// back-off wait, so that a degraded server can be reported while it
	// is retried. It must not block.
	OnRetry func(err error)
}

func (r Retry) withDefaults() Retry {
	if r.Initial <= 0 {
		r.Initial = 50 * time.Millisecond
	}
	if r.Max <= 0 {
		r.Max = 2 * time.Second
	}
	if r.For <= 0 {
		r.For = 2 * time.Minute
	}
	return r
}

// Do calls fn until it succeeds, fails with a non-transient error, the
// policy's time is up, or ctx ends. It returns fn's last error.
func (r Retry) Do(ctx context.Context, fn func() error) error {
	r = r.withDefaults()
	deadline := time.Now().Add(r.For)
	wait := r.Initial
	for {
		err := fn()
		if err == nil || Classify(err) != Transient || time.Now().After(deadline) {
			return err
		}
		if r.OnRetry != nil {
			r.OnRetry(err)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(wait*2, r.Max)
	}
}

// KeyError is the failure of one key on a target.
type KeyError struct {
	Key   string
	Class ErrClass
	Err   error
}

func (e *KeyError) Error() string { return fmt.Sprintf("key %q: %v", e.Key, e.Err) }
func (e *KeyError) Unwrap() error { return e.Err }

// replicaWait bounds how long a write to a Sentinel-managed master waits
// for its replica.
const replicaWait = 5 * time.Second

// errNotReplicated is transient: the batch is written again.
var errNotReplicated = errors.New("NOREPLICAS the replica did not acknowledge the batch in time (WAIT)")

// replicated reports whether writes must be acknowledged by a replica
// (Sentinel targets: a failover promotes the replica, and a write only the
// old master had would be lost).
func (r *Redis) replicated() bool { return r.Kind == config.KindSentinel }

func replicaAck(c redis.Cmder) error {
	if c.Err() != nil {
		return c.Err()
	}
	if n, ok := c.(*redis.Cmd).Val().(int64); !ok || n < 1 {
		return errNotReplicated
	}
	return nil
}

// Existing returns, for each key, whether it exists on the target
// (pipelined EXISTS, retried on transient errors).
func (r *Redis) Existing(ctx context.Context, keys []string, retry Retry) ([]bool, error) {
	out := make([]bool, len(keys))
	err := retry.Do(ctx, func() error {
		cmds, err := r.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Exists(ctx, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, c := range cmds {
			out[i] = c.(*redis.IntCmd).Val() > 0
		}
		return nil
	})
	return out, err
}

// PayloadType returns the Redis type of a DUMP payload from its RDB object
// type byte ("" when unknown, e.g. a module type).
func PayloadType(payload string) string {
	if len(payload) == 0 {
		return ""
	}
	switch payload[0] {
	case 0:
		return "string"
	case 1, 10, 14, 18:
		return "list"
	case 2, 11, 20:
		return "set"
	case 3, 5, 12, 17:
		return "zset"
	case 4, 9, 13, 16:
		return "hash"
	case 15, 19, 21:
		return "stream"
	}
	return ""
}
