// Package rollback undoes a migration before cutover (DESIGN.md §5): it
// deletes from each target exactly the keys redisplit wrote there — the
// keys of the bucket's journal — and nothing else.
//
// Guarantees:
//   - Only journaled keys are deleted, with pipelined UNLINKs (one key per
//     command, so a cluster target routes each to its slot's master). Keys a
//     target held before the migration are not in the journal; keys
//     migrate refused to overwrite (the bucket's refusal list) are skipped
//     even if they were journaled.
//   - Legacy is never written.
//   - A bucket at or past cutover is refused (its application now writes to
//     the target; deleting there would lose data).
//   - Idempotent: a rollback interrupted at any point can be run again; the
//     journal is removed (state.ResetBucket) only after every key is gone
//     and the bucket is marked rolled-back, so a later migrate starts clean.
//   - Memory is bounded by the batch size and the refusal list; the journal
//     is streamed.
package rollback

import (
	"context"
	"fmt"
	"hash/maphash"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/safety"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
)

// Options configure a rollback.
type Options struct {
	State *state.Dir
	// Targets are the buckets to roll back and their stores.
	Targets map[string]*store.Redis
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
}

// Result is the outcome of a rollback.
type Result struct {
	DryRun  bool           `json:"dry_run"`
	Buckets []BucketResult `json:"buckets"`
}

// Check refuses (a *safety.Refusal, exit 4) to roll back a bucket that is at
// or past cutover. Buckets unknown to the state pass.
func Check(st *state.State, buckets []string) error {
	for _, b := range buckets {
		sb := st.Buckets[b]
		if sb == nil {
			continue
		}
		switch sb.Phase {
		case state.Cutover, state.Completed:
			return safety.Refusef("after cutover the application writes to the target; return the bucket to legacy with the cutover rollback (reverse sync), not by deleting keys",
				"bucket %s is past cutover (phase %s): deleting what redisplit wrote to its target would delete the application's newer writes", b, sb.Phase)
		}
	}
	return nil
}

// dedupeMax bounds the dry run's set of key hashes (8 bytes a key).
const dedupeMax = 10_000_000

// Run rolls back every bucket of o.Targets, in order of the map iteration
// sorted by the caller's bucket order (buckets are independent).
func Run(ctx context.Context, o Options, order []string) (*Result, error) {
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	if o.Sample <= 0 {
		o.Sample = 10
	}
	st, err := o.State.Load()
	if err != nil {
		return nil, err
	}
	if err := Check(st, order); err != nil {
		return nil, err
	}
	res := &Result{DryRun: o.DryRun}
	var done int64
	for _, b := range order {
		t := o.Targets[b]
		if t == nil {
			continue
		}
		br := BucketResult{Bucket: b, Target: t.Describe()}
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
			n, err := apply(ctx, t, batch, o.DryRun)
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

// apply deletes keys (UNLINK) or, for a dry run, counts those that exist.
func apply(ctx context.Context, t *store.Redis, keys []string, dryRun bool) (int64, error) {
	p := t.Client.Pipeline()
	cmds := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		if dryRun {
			cmds[i] = p.Exists(ctx, k)
		} else {
			cmds[i] = p.Unlink(ctx, k)
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		return 0, err
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
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
