package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/redisplit/redisplit/state"
)

// Errors the client returns itself. Every other error a command returns is
// the error of the store the command ran on, unchanged (redis.Nil stays
// redis.Nil): the client never retries a command elsewhere.
var (
	// ErrCrossBucket: a command, a transaction (TxPipeline), a script's
	// KEYS or a WATCH names keys of more than one bucket. The error is a
	// *CrossBucketError naming the buckets and a key of each. Nothing was
	// sent. The refusal is by bucket, not by the stores of the moment, so it
	// shows before the cutover (when every bucket is still on legacy) rather
	// than at it.
	ErrCrossBucket = errors.New("keys of more than one bucket")

	// ErrUnroutable: a command the client cannot route by the plan: it
	// names no key (KEYS, SCAN, FLUSHDB, INFO...), it is not in the
	// client's command table, or it only makes sense on one connection
	// (WATCH, MULTI, SELECT). The error is an *UnroutableError saying what
	// to use instead. Nothing was sent.
	ErrUnroutable = errors.New("command cannot be routed by the plan")

	// ErrNoTarget: the control key puts a bucket on its target (cutover,
	// completed) but Options.Targets has none for it. The client never
	// falls back to legacy for such a bucket. A *NoTargetError.
	ErrNoTarget = errors.New("bucket is on its target, which this client was not given")

	// ErrClosed: the client was closed.
	ErrClosed = errors.New("redisplit client: closed")
)

// CrossBucketError is ErrCrossBucket with its details.
type CrossBucketError struct {
	Command string   // "mget", "multi/exec", "watch"...
	Buckets []string // the buckets named, in the order met
	Keys    []string // one key of each bucket, same order
}

func (e *CrossBucketError) Error() string {
	parts := make([]string, len(e.Buckets))
	for i, b := range e.Buckets {
		parts[i] = fmt.Sprintf("%s (%q)", b, e.Keys[i])
	}
	return fmt.Sprintf("redisplit client: %s names keys of buckets %s, which live in different stores once one is cut over; "+
		"split it into one command per bucket", strings.ToUpper(e.Command), strings.Join(parts, " and "))
}

// Is makes errors.Is(err, ErrCrossBucket) true.
func (e *CrossBucketError) Is(target error) bool { return target == ErrCrossBucket }

// UnroutableError is ErrUnroutable with its details.
type UnroutableError struct {
	Command string
	Reason  string
}

func (e *UnroutableError) Error() string {
	return fmt.Sprintf("redisplit client: %s cannot be routed by the plan: %s", strings.ToUpper(e.Command), e.Reason)
}

// Is makes errors.Is(err, ErrUnroutable) true.
func (e *UnroutableError) Is(target error) bool { return target == ErrUnroutable }

// NoTargetError is ErrNoTarget with its details.
type NoTargetError struct {
	Bucket string
	Phase  state.Phase
}

func (e *NoTargetError) Error() string {
	return fmt.Sprintf("redisplit client: bucket %s is %s (its data is on its target) but this client has no %s target; "+
		"add it to Options.Targets", e.Bucket, e.Phase, e.Bucket)
}

// Is makes errors.Is(err, ErrNoTarget) true.
func (e *NoTargetError) Is(target error) bool { return target == ErrNoTarget }
