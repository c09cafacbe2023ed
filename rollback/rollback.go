// Package rollback undoes a migration (DESIGN.md §5): it deletes from each
// target exactly the keys redisplit wrote there — the keys of the bucket's
// journal — and nothing else. After cutover it first makes legacy
// authoritative again (the control key, then the reverse direction drained:
// legacy holds every write made on the target), see RunCutover below.
//
// Guarantees, in order:
//   - The lease (package lease, the key redisplit:lock on legacy) is taken
//     before the state is read and held until the end, so no migrate (or
//     other rollback) runs meanwhile; if it is lost, the rollback stops. A
//     dry run only checks that no live process holds it. The lease is the
//     only key rollback writes on legacy.
//   - Under the lease, the state is checked: the plan must be the one the
//     migration recorded (state.State.CheckPlan), and a completed bucket is
//     refused (Check), failed or not: legacy no longer holds it. A bucket
//     in cutover is refused unless Options.Reverse is set: then, before
//     anything is deleted, the control key is switched to rolled-back
//     (the application returns to legacy) and Reverse drains the reverse
//     direction (every write made on the target is on legacy).
//   - Held: a caller that holds the lease itself (migrate --dual-write,
//     which has drained its own reverse mirror) runs the same deletion
//     without taking it.
//   - Only journaled keys are deleted, with store.Redis.Delete: pipelined
//     UNLINKs, retried on transient errors with the copy path's policy
//     (store.Retry), and on a Sentinel target acknowledged by the replica
//     (WAIT 1) so that a failover cannot bring them back. Keys a target held
//     before the migration are not in the journal; keys migrate refused to
//     overwrite (the bucket's refusal list) are skipped even if they were
//     journaled.
//   - Idempotent: a rollback interrupted at any point can be run again; the
//     journal is removed (state.ResetBucket) only after every delete batch
//     of the bucket was acknowledged and the bucket is marked rolled-back,
//     so a later migrate starts clean.
//   - Memory is bounded by the batch size and the refusal list; the journal
//     is streamed.
package rollback

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/lease"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/safety"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
)

// Options configure a rollback.
type Options struct {
	State *state.Dir
	// Legacy holds the lease; PlanHash is the hash of the plan this run
	// routes with (it must be the migration's).
	Legacy   *redis.Client
	PlanHash string
	LeaseTTL time.Duration // default lease.DefaultTTL
	// Targets are the buckets to roll back and their stores.
	Targets map[string]*store.Redis
	// Retry is the back-off for transient target errors (the copy path's
	// defaults when zero).
	Retry store.Retry
	// Confirm, when set, is called once the lease is held and the checks
	// passed, before anything is deleted; an error aborts the rollback
	// with it. Not called for a dry run.
	Confirm func(*Result) error
	// DryRun deletes nothing: it counts the journaled keys, how many are
	// on the target now, and streams them to Visit.
	DryRun bool
	// Visit, when set, receives every journaled key of a dry run (after the
	// refusal list; duplicates removed unless the dedupe set overflowed).
	Visit func(bucket, key string) error
	// Batch is the number of keys per pipeline (default 1000); Sample the
	// number of keys kept per bucket for the report (default 10).
	Batch  int
	Sample int
	// Progress, when set, is called with the number of journal entries
	// processed so far.
	Progress func(done int64)
	// Reverse, when set, rolls back buckets in cutover: it is called for
	// each, after the control key says rolled-back and before anything is
	// deleted, and must leave legacy holding every write made on the
	// target (ReverseSync, or migrate's drain of its reverse mirror).
	Reverse func(ctx context.Context, bucket string) error
	// Held: the caller holds the lease (no Acquire, no Release).
	Held bool
}

// BucketResult is the rollback of one bucket.
type BucketResult struct {
	Bucket string      `json:"bucket"`
	Target string      `json:"target"`
	Phase  state.Phase `json:"phase_before"`
	// Entries is the number of journal entries read (a key may be
	// journaled more than once); Skipped the journaled keys on the refusal
	// list, left alone.
	Entries int64 `json:"journal_entries"`
	Skipped int64 `json:"skipped_refused"`
	// Keys is the number of distinct keys to delete (dry run; exact unless
	// DedupeOverflow) and Present how many of them are on the target now.
	Keys           int64 `json:"keys,omitempty"`
	Present        int64 `json:"present_on_target,omitempty"`
	DedupeOverflow bool  `json:"dedupe_overflow,omitempty"`
	// Deleted is the number of keys actually deleted (UNLINK's count).
	Deleted int64    `json:"deleted"`
	Sample  []string `json:"sample,omitempty"`
	// Retries counts the transient target errors (failover, connection
	// reset, replica not acknowledging) retried with back-off.
	Retries        int64  `json:"retries,omitempty"`
	LastRetryError string `json:"last_retry_error,omitempty"`
}

// Result is the outcome of a rollback.
type Result struct {
	DryRun  bool           `json:"dry_run"`
	Buckets []BucketResult `json:"buckets"`
	// LeaseTakeover is set when the lease was taken over from a dead
	// redisplit process on this host.
	LeaseTakeover *lease.Takeover `json:"lease_takeover,omitempty"`
}

// Check refuses (a *safety.Refusal, exit 4) to roll back a completed
// bucket, and one in cutover unless reverse (the caller drains the reverse
// direction first), judged by its phase alone: a bucket that failed after
// cutover keeps its phase (the failure is recorded beside it). Buckets
// unknown to the state pass.
func Check(st *state.State, buckets []string, reverse bool) error {
	for _, b := range buckets {
		sb := st.Buckets[b]
		if sb == nil {
			continue
		}
		switch {
		case sb.Phase == state.Completed:
			return safety.Refusef("a completed bucket lives on its target only; there is nothing to return to",
				"bucket %s is completed: legacy no longer mirrors it, and deleting what redisplit wrote to its target would delete the application's data", b)
		case sb.Phase == state.Cutover && !reverse:
			return safety.Refusef("after cutover the application writes to the target; roll back with the reverse drain (redisplit rollback, which hands it to migrate --dual-write or drains target → legacy itself)",
				"bucket %s is past cutover (phase %s): deleting what redisplit wrote to its target would delete the application's newer writes", b, sb.Phase)
		}
	}
	return nil
}

// dedupeMax bounds the dry run's set of key hashes (8 bytes a key).
const dedupeMax = 10_000_000

// Run rolls back the buckets of order that have a target in o.Targets, in
// that order (buckets are independent). It returns a *safety.Refusal when
// another process holds the lease, the plan differs from the migration's or
// a bucket is past cutover (nothing was deleted), and the lease's loss as
// the error when it was lost midway.
func Run(ctx context.Context, o Options, order []string) (*Result, error) {
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	if o.Sample <= 0 {
		o.Sample = 10
	}
	res := &Result{DryRun: o.DryRun}
	if o.Held {
		return run(ctx, o, order, res)
	}
	return underLease(ctx, o.Legacy, o.State, o.LeaseTTL, o.DryRun, func(ctx context.Context, takeover *lease.Takeover) (*Result, error) {
		res.LeaseTakeover = takeover
		return run(ctx, o, order, res)
	})
}

// underLease runs fn holding the rollback lease on legacy (a dry run only
// checks that no migration holds it, and takeover is nil). When the lease
// is lost midway, fn's ctx ends and the loss is the error returned.
func underLease[R any](ctx context.Context, legacy *redis.Client, sd *state.Dir, ttl time.Duration, dry bool,
	fn func(ctx context.Context, takeover *lease.Takeover) (R, error)) (R, error) {
	var zero R
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var lost atomic.Value // the lease's loss, when it was lost
	var takeover *lease.Takeover
	if dry {
		if err := lease.Check(ctx, legacy); err != nil {
			return zero, err
		}
	} else {
		l, err := lease.Acquire(ctx, legacy, lease.Options{Command: "rollback", StateDir: sd.Path(), TTL: ttl},
			func(cause error) { lost.Store(cause); cancel(cause) })
		if err != nil {
			return zero, err
		}
		defer l.Release()
		takeover = l.TookOver
	}
	res, err := fn(ctx, takeover)
	if cause, ok := lost.Load().(error); ok && err != nil {
		return zero, cause
	}
	return res, err
}

func run(ctx context.Context, o Options, order []string, res *Result) (*Result, error) {
	st, err := o.State.Load()
	if err != nil {
		return nil, err
	}
	if err := st.CheckPlan(o.PlanHash); err != nil {
		return nil, err
	}
	if err := Check(st, order, o.Reverse != nil); err != nil {
		return nil, err
	}
	if o.Confirm != nil && !o.DryRun {
		if err := o.Confirm(res); err != nil {
			return nil, err
		}
	}
	if !o.DryRun {
		for _, b := range order {
			if sb := st.Buckets[b]; sb != nil && sb.Phase == state.Cutover && o.Targets[b] != nil {
				if err := returnToLegacy(ctx, o, b); err != nil {
					return nil, err
				}
			}
		}
	}
	var done int64
	for _, b := range order {
		t := o.Targets[b]
		if t == nil {
			continue
		}
		br := BucketResult{Bucket: b, Target: t.Describe()}
		var retries atomic.Int64
		var lastRetry atomic.Value
		retry := o.Retry
		retry.OnRetry = func(err error) { retries.Add(1); lastRetry.Store(err.Error()) }
		if sb := st.Buckets[b]; sb != nil {
			br.Phase = sb.Phase
		}
		refused := map[string]struct{}{}
		if err := o.State.ReadRefused(b, func(k string) error { refused[k] = struct{}{}; return nil }); err != nil {
			return nil, err
		}
		var seed = maphash.MakeSeed()
		seen := map[uint64]struct{}{}
		batch := make([]string, 0, o.Batch)
		inBatch := map[string]struct{}{}
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			n, err := apply(ctx, t, batch, o.DryRun, retry)
			br.Retries = retries.Load()
			if e, ok := lastRetry.Load().(string); ok {
				br.LastRetryError = e
			}
			if err != nil {
				return redisconn.Explain(err, "target "+b, t.Describe())
			}
			if o.DryRun {
				br.Present += n
			} else {
				br.Deleted += n
			}
			batch = batch[:0]
			clear(inBatch)
			if o.Progress != nil {
				o.Progress(done)
			}
			return nil
		}
		err := o.State.ReadJournal(b, func(k string) error {
			br.Entries++
			done++
			if _, ok := refused[k]; ok {
				br.Skipped++
				return nil
			}
			if _, ok := inBatch[k]; ok {
				return nil
			}
			if o.DryRun {
				if !br.DedupeOverflow {
					h := maphash.String(seed, k)
					if _, ok := seen[h]; ok {
						return nil
					}
					if len(seen) < dedupeMax {
						seen[h] = struct{}{}
					} else {
						br.DedupeOverflow = true
					}
				}
				br.Keys++
				if o.Visit != nil {
					if err := o.Visit(b, k); err != nil {
						return err
					}
				}
			}
			if len(br.Sample) < o.Sample {
				br.Sample = append(br.Sample, k)
			}
			inBatch[k] = struct{}{}
			batch = append(batch, k)
			if len(batch) >= o.Batch {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return nil, fmt.Errorf("rollback %s: %w", b, err)
		}
		if !o.DryRun {
			if err := finish(o.State, b); err != nil {
				return nil, err
			}
		}
		res.Buckets = append(res.Buckets, br)
	}
	return res, nil
}

// apply deletes keys durably (store.Redis.Delete) or, for a dry run,
// counts those that exist.
func apply(ctx context.Context, t *store.Redis, keys []string, dryRun bool, retry store.Retry) (int64, error) {
	if !dryRun {
		return t.Delete(ctx, keys, retry)
	}
	ex, err := t.Existing(ctx, keys, retry)
	var n int64
	for _, e := range ex {
		if e {
			n++
		}
	}
	return n, err
}

// finish marks the bucket rolled back, then removes its journal and
// checkpoint. When no bucket holds anything redisplit wrote any more, the
// plan hash is cleared too, so that a later migrate may use another plan.
func finish(sd *state.Dir, bucket string) error {
	err := sd.Update(func(s *state.State) error {
		sb := s.Buckets[bucket]
		if sb == nil {
			sb = &state.Bucket{}
			s.Buckets[bucket] = sb
		}
		sb.Phase = state.RolledBack
		sb.LastError = ""
		// the last verify described a target that no longer holds the
		// copy: it says nothing about the bucket any more
		if v := s.LastVerify; v != nil {
			delete(v.Buckets, bucket)
			if len(v.Buckets) == 0 {
				s.LastVerify = nil
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := sd.ResetBucket(bucket); err != nil {
		return err
	}
	return sd.Update(func(s *state.State) error {
		for _, sb := range s.Buckets {
			if sb.Phase != state.RolledBack && sb.Phase != state.Planned {
				return nil
			}
		}
		s.PlanHash = ""
		return nil
	})
}
