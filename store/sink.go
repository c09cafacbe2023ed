package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
)

// The copier's two ends. A Source says what a key is now; a Sink makes a
// store hold exactly that. Both sit here, below the copier and every
// implementation, so that neither imports the other.
//
// Tombstone by absence: the copier never carries "a DEL happened" from the
// source, only "the key is absent now" (an Entry of type "none"); a sink
// turns that into a delete. An entry whose absolute expiry has already
// passed is absent too: it is deleted, never written, so a key cannot come
// back to life on a target whose clock is behind. A source that reads a key
// with its expiry already reached returns an Absent entry whose ExpireAt is
// that expiry (so that it can be counted as expired rather than gone).

// TypeNone is the Type of an absent entry (what TYPE answers for a missing
// key).
const TypeNone = "none"

// Absent returns the entry of a key that does not exist at read time.
func Absent(key string) *Entry { return &Entry{Key: key, Type: TypeNone} }

// Absent reports whether the key did not exist when it was read (or had
// reached its expiry: then ExpireAt is set).
func (e *Entry) Absent() bool { return e.Type == TypeNone }

// Expired reports whether the entry's absolute expiry is at or before
// nowMs (Unix ms).
func (e *Entry) Expired(nowMs int64) bool { return e.ExpireAt > 0 && e.ExpireAt <= nowMs }

// Journal is called with the names of keys before anything is written to
// them (restored or deleted): rollback deletes exactly what was journaled.
// When it returns an error, nothing of the call is written.
type Journal func(keys []string) error

// Source reads the current state of keys (legacy before cutover; a target
// for the reverse direction after it).
type Source interface {
	// Read reads keys and passes their entries to fn in one or more chunks,
	// every key exactly once, each read atomically (type, absolute expiry
	// and payload at one instant). Absent keys, and keys whose expiry has
	// passed, are Absent entries. Keys above the source's size threshold
	// are Big entries (no payload; copy them page by page). Chunks bound the
	// payload bytes held at once. Read retries transient errors itself; it
	// returns fn's first error, or the source's (naming the source and its
	// host).
	Read(ctx context.Context, keys []string, fn func(entries []*Entry) error) error
	// Describe names the source for humans (no password).
	Describe() string
}

// PagedSource is a Source whose keys can also be read page by page (a
// Redis server): Big entries, and entries a sink cannot restore from their
// payload, are copied logically from Pages.
type PagedSource interface {
	Source
	Pages() *redis.Client
}

// Sink is the store of one bucket, as the copier writes it.
type Sink interface {
	// Apply makes the store hold entries: a present entry is written with
	// its absolute expiry (RESTORE key ttl payload REPLACE ABSTTL for a
	// Redis store), an Absent or already expired entry is deleted (never
	// written). journal, when not nil, is called once with every key of the
	// call before any write. Keys must be distinct within one call and
	// entries must not be Big. redisconn.Transient failures are retried under retry,
	// only for the keys that failed. It returns one error per key that is
	// not as its entry says (nil when all are); a redisconn.BadPayload error means the
	// store cannot read the payload: copy that key logically.
	Apply(ctx context.Context, entries []*Entry, journal Journal, retry Retry) []*KeyError
	// Describe names the store for humans (no password).
	Describe() string
}

// LogicalSink is a Sink that can copy a key page by page from a Redis
// source (the path for Big entries and redisconn.BadPayload errors).
type LogicalSink interface {
	Sink
	CopyLogical(ctx context.Context, src *redis.Client, e *Entry, retry Retry, wait func(n int) error) (int64, error)
}

var _ LogicalSink = (*Redis)(nil)

// SourceChanged reports whether a CopyLogical error means the key changed
// type on the source while it was copied page by page (the application
// replaced it): copy it again from its current type, it is no failure of
// the sink.
func SourceChanged(err error) bool {
	if err == nil {
		return false
	}
	return redisconn.SideOf(err) == redisconn.SideLegacy && strings.Contains(err.Error(), "WRONGTYPE")
}

// Apply implements Sink: one pipeline of RESTORE ... REPLACE ABSTTL for
// present entries and DEL for absent and expired ones, followed on a
// Sentinel target by WAIT, so that a batch counts as written only once the
// replica has it (pipelineOps). It is the one RESTORE path of redisplit.
func (r *Redis) Apply(ctx context.Context, entries []*Entry, journal Journal, retry Retry) []*KeyError {
	retry.Side = redisconn.SideTarget
	if len(entries) == 0 {
		return nil
	}
	now := time.Now().UnixMilli()
	ops := make([]op, len(entries))
	for i, e := range entries {
		switch {
		case e.Big:
			return allFailed(entries, redisconn.Permanent, fmt.Errorf("big entry passed to Apply (copy it logically); nothing written"))
		case e.Absent() || e.Expired(now):
			ops[i] = op{key: e.Key, args: []any{"del", e.Key}}
		default:
			ops[i] = op{key: e.Key, args: []any{"restore", e.Key, e.ExpireAt, e.Payload, "REPLACE", "ABSTTL"}}
		}
	}
	if journal != nil {
		keys := make([]string, len(entries))
		for i, e := range entries {
			keys[i] = e.Key
		}
		if err := journal(keys); err != nil {
			return allFailed(entries, redisconn.Permanent, fmt.Errorf("cannot journal (nothing written): %w", err))
		}
	}
	return r.pipelineOps(ctx, ops, retry)
}

// op is one single-key write command. ok, when set, is called with the
// command's reply each time it succeeds (a retried batch may call it more
// than once).
type op struct {
	key  string
	args []any
	ok   func(c redis.Cmder)
}

// pipelineOps is the one write loop to a Redis store: Apply's RESTOREs and
// DELs and Delete's UNLINKs. It sends ops in one pipeline (plus WAIT on a
// replicated target, on the same connection, so that a batch counts as
// written only once the replica has it and a failover cannot lose it),
// retrying transient failures with back-off for the failed ops only; when
// the replica does not acknowledge, every op that did not fail permanently
// is sent again (each op is idempotent and keys are distinct). A pipeline
// that did not run (no replies, or an error with no command's own error
// set) fails every op still pending with that error, transient or not: an
// op is reported written only on its own successful reply. It returns one
// error per failed op.
func (r *Redis) pipelineOps(ctx context.Context, ops []op, retry Retry) []*KeyError {
	pending := ops
	var failed []*KeyError
	err := retry.Do(ctx, func() error {
		cmds, perr := r.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, o := range pending {
				p.Do(ctx, o.args...)
			}
			if r.replicated() {
				p.Do(ctx, "wait", 1, replicaWait.Milliseconds())
			}
			return nil
		})
		if len(cmds) < len(pending) {
			if perr == nil {
				perr = errors.New("pipeline returned no replies")
			}
			return perr
		}
		if perr != nil && !anyCmdErr(cmds) {
			return perr // the pipeline did not run: no reply is a success
		}
		var again []op
		var firstTransient error
		permanent := map[string]bool{}
		for i, o := range pending {
			c := cmds[i]
			if c.Err() == nil {
				if o.ok != nil {
					o.ok(c)
				}
				continue
			}
			cl := redisconn.Classify(c.Err())
			if cl.Retryable() {
				again = append(again, o)
				firstTransient = firstNonNil(firstTransient, c.Err())
				continue
			}
			permanent[o.key] = true
			failed = append(failed, &KeyError{Key: o.key, Class: cl, Err: c.Err()})
		}
		if r.replicated() && firstTransient == nil {
			if err := replicaAck(cmds[len(pending)]); err != nil {
				again = again[:0]
				for _, o := range pending {
					if !permanent[o.key] {
						again = append(again, o)
					}
				}
				firstTransient = err
			}
		}
		pending = again
		return firstTransient
	})
	if err != nil {
		// the ops still pending were not written: a transient error that
		// outlived the retries, or a pipeline that could not even start
		cl := redisconn.Classify(err)
		if cl.Retryable() {
			err = fmt.Errorf("still failing after retries: %w", err)
		}
		for _, o := range pending {
			failed = append(failed, &KeyError{Key: o.key, Class: cl, Err: err})
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return failed
}

func anyCmdErr(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if c.Err() != nil {
			return true
		}
	}
	return false
}

func allFailed(entries []*Entry, cl redisconn.Class, err error) []*KeyError {
	out := make([]*KeyError, len(entries))
	for i, e := range entries {
		out[i] = &KeyError{Key: e.Key, Class: cl, Err: err}
	}
	return out
}

func firstNonNil(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
