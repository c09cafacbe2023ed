// Package migrate is the engine of `redisplit migrate` (DESIGN.md §4–§6):
// one run owns one copier (package copier) fed by producers of dirty marks
// — the backfill SCAN, and with --dual-write change capture and rescans —
// that reads each key atomically from legacy (type, absolute expiry, DUMP)
// and writes it to its bucket's target with RESTORE ... REPLACE ABSTTL, or
// deletes it there when legacy no longer has it; a write-ahead journal per
// bucket, and a SCAN checkpoint saved only after every target acknowledged.
//
// Roles, one file each: preflight.go checks before anything is written
// (unknown keys, non-empty targets, eviction policies, room; the plan hash
// is state.State.CheckPlan); pipeline.go is the run's copier, the backfill
// producer, the counts and the checkpointer; own.go the set of keys this
// migration wrote and the filter that keeps foreign keys alone
// (--allow-nonempty); warm.go the cache's copy policy (targets.cache.copy:
// all, hot or none) and its selection of hot keys; queue.go moves a queue
// bucket whose target is kind: sqs with package queuemove, beside the
// copier. The lease (package lease) is taken before anything is written and
// held for the whole run. All writes to Redis targets go through package
// store, all sends to SQS through package queuemove.
//
// The engine never prints: it returns a Result and reports progress through
// a callback.
package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/keyname"
	"github.com/redisplit/redisplit/lease"
	"github.com/redisplit/redisplit/queuemove"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
)

// Options configure a run.
type Options struct {
	Config     *config.Config
	Classifier *classify.Classifier // the plan (classify.Router)
	PlanHash   string
	State      *state.Dir

	DryRun bool // preflight and summary only; writes nothing anywhere
	// DualWrite runs the live phase (live.go): change capture from before
	// the backfill, then mirroring until ctx ends (exit 0) or every bucket
	// failed.
	DualWrite     bool
	AllowNonEmpty bool // copy into targets that already hold routed keys, never overwriting them
	// AllowEvicting names the buckets whose target may evict: a session,
	// queue or ratelimit target whose maxmemory-policy is not noeviction is
	// refused unless its bucket is listed (--allow-evicting-target).
	AllowEvicting []string
	ForceLogical  bool // never RESTORE payloads: copy every key logically (other engines, tests)

	MaxOps    int           // legacy commands per second (a key read counts one); 0 = unlimited
	Workers   int           // partitions; default 4
	Batch     int           // keys per read/write batch; default 1024
	ScanCount int           // SCAN COUNT; default 1000
	BigBytes  int64         // a key above this many bytes (MEMORY USAGE) is copied in chunks; default 8 MiB
	SlowRead  time.Duration // a legacy read slower than this pauses all reads as long; default 100ms
	Retry     store.Retry   // transient target errors
	LockTTL   time.Duration // lease lock TTL; default 30s
	// CheckpointEvery is the interval between checkpoints; default 1s.
	CheckpointEvery time.Duration

	// Confirm is called with the summary after the preflight and before
	// anything is written; an error aborts the run with that error. nil
	// means go ahead.
	Confirm func(*Result) error
	// Progress is called about every 200ms during the copy, from one goroutine.
	Progress func(Progress)
	// Live is called with the live figures about once a second during the
	// live phase (and when a bucket first catches up), one call at a time;
	// LiveEvent with its notes (gaps, rescans, catch-up, evictions), from
	// any goroutine.
	Live      func(LiveStats)
	LiveEvent func(LiveEvent)
	// Queue is called about every second with the move of a kind: sqs
	// queue bucket (queue.go), from one goroutine.
	Queue func(queuemove.Snapshot)

	lim *rate.Limiter
	// queue is the run's move of a kind: sqs queue bucket, for the live
	// phase's control channel (its cutover and complete, queue.go).
	queue *QueueMove
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Batch <= 0 {
		o.Batch = 1024
	}
	if o.ScanCount <= 0 {
		o.ScanCount = 1000
	}
	if o.BigBytes <= 0 {
		o.BigBytes = 8 << 20
	}
	if o.SlowRead <= 0 {
		o.SlowRead = 100 * time.Millisecond
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 30 * time.Second
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = time.Second
	}
}

// Status of a bucket at the end of a run.
const (
	StatusCopied   = "copied"    // every key of the bucket is on its target
	StatusSyncing  = "syncing"   // copied, mirrored, and caught up with legacy at least once (--dual-write)
	StatusFailed   = "failed"    // stopped on an error (see Error)
	StatusNoTarget = "no-target" // no target configured: not migrated
	StatusDryRun   = "dry-run"   // would be copied
	StatusPending  = "pending"   // not finished (interrupted)
	StatusSkipped  = "skipped"   // not set any more (kind sqs was skipped before queue.go); kept for readers of old results
)

// BucketResult is the outcome for one bucket.
type BucketResult struct {
	Bucket string `json:"bucket"`
	Target string `json:"target,omitempty"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"` // for no-target / skipped

	// Preflight (pre-pass over legacy).
	PlannedKeys int64 `json:"planned_keys"`
	// PlannedBytes is MEMORY USAGE on legacy summed over the bucket's keys:
	// every key with --dry-run, one key in sampleEvery extrapolated
	// otherwise. It is what the target's room is checked against; it is not
	// comparable with Counts.Bytes (payload bytes).
	PlannedBytes int64    `json:"planned_bytes"`
	Version      string   `json:"target_version,omitempty"`
	Policy       string   `json:"target_policy,omitempty"`
	Warnings     []string `json:"warnings,omitempty"`
	Resumed      bool     `json:"resumed,omitempty"`
	// AllowEvicting is set when the target evicts (Policy is not
	// noeviction) and --allow-evicting-target let the bucket through.
	AllowEvicting bool `json:"allow_evicting_target,omitempty"`
	// Warm is the cache's copy policy and its selection (warm.go), when
	// it is not copied whole.
	Warm *WarmResult `json:"warm,omitempty"`

	// Total is the whole migration of the bucket (every run, as saved by the
	// last checkpoint; the same numbers `redisplit status` shows); ThisRun
	// is this run alone.
	Total   Totals `json:"total"`
	ThisRun Counts `json:"this_run"`
	// Retries counts the transient target errors retried with back-off
	// (failover, node down, LOADING, TRYAGAIN, connection reset); the keys
	// were written once the target answered again.
	Retries        int64  `json:"retries"`
	LastRetryError string `json:"last_retry_error,omitempty"`
	Error          string `json:"error,omitempty"`
}

// Counts says what became of the keys routed to a bucket. Every key ends in
// exactly one of Copied, Expired, Gone, Refused, NotWarmed, Skipped and
// Failed; Logical and Bytes describe the copied keys.
//
// In Result.ThisRun a key is counted by every run that handles it: a run
// resumed after an interruption rewrites (and counts again) the keys that
// were in flight. Totals count each key once per SCAN pass, however often
// runs were interrupted; the one exception is SCAN's own: a key it returns
// twice in different pages (legacy's table was resized during the pass) is
// counted twice.
type Counts struct {
	Copied  int64 `json:"copied"`  // written to the target
	Expired int64 `json:"expired"` // read with its expiry already reached: not written
	Gone    int64 `json:"gone"`    // absent when read (deleted, or expired and reclaimed, after the SCAN): not written
	Refused int64 `json:"refused"` // already on the target and not written by redisplit (--allow-nonempty): left alone
	// NotWarmed: cache keys the copy policy (targets.cache.copy hot or
	// none) left on legacy on purpose
	NotWarmed int64 `json:"not_warmed"`
	// WarmBytes: MEMORY USAGE on legacy of the cache keys copy: hot
	// admitted, counted against its budget
	WarmBytes int64 `json:"warm_bytes,omitempty"`
	Skipped   int64 `json:"skipped"` // not migrated by policy: the bucket has no (supported) target
	Failed    int64 `json:"failed"`  // not written because the bucket stopped on an error; the rerun copies them
	Logical   int64 `json:"logical"` // of Copied, copied by the logical path (big keys, unreadable payloads)
	Bytes     int64 `json:"bytes"`   // payload bytes written (DUMP payloads, logical values); not MEMORY USAGE
}

// sum is the number of keys with an outcome.
func (c Counts) sum() int64 {
	return c.Copied + c.Expired + c.Gone + c.Refused + c.NotWarmed + c.Skipped + c.Failed
}

func (c *Counts) add(o Counts) {
	c.Copied += o.Copied
	c.Expired += o.Expired
	c.Gone += o.Gone
	c.Refused += o.Refused
	c.NotWarmed += o.NotWarmed
	c.WarmBytes += o.WarmBytes
	c.Skipped += o.Skipped
	c.Failed += o.Failed
	c.Logical += o.Logical
	c.Bytes += o.Bytes
}

// Totals are the counts of the whole migration of a bucket. For a bucket
// whose backfill is not complete, the keys of the latest pre-pass not
// counted yet are Failed when the bucket stopped on an error and Pending
// otherwise (an interrupted run): the columns then add up to the bucket's
// keys. A complete bucket has neither; its columns add up to the keys its
// copy pass saw (the pre-pass's count when legacy did not change between
// the two SCANs).
type Totals struct {
	Counts
	Pending int64 `json:"pending"` // not copied yet: the next migrate copies them
}

// TotalOf returns the totals saved in a bucket's state; migrate's Result
// and `redisplit status` both use it.
func TotalOf(sb *state.Bucket) Totals {
	t := Totals{Counts: Counts{Copied: sb.KeysCopied, Expired: sb.KeysExpired, Gone: sb.KeysGone,
		Refused: sb.KeysRefused, NotWarmed: sb.KeysNotWarmed, WarmBytes: sb.WarmedBytes, Logical: sb.KeysLogical, Bytes: sb.BytesCopied}}
	if !sb.Copied {
		left := max(0, sb.PlannedKeys-t.sum())
		if sb.Failed {
			t.Failed = left
		} else {
			t.Pending = left
		}
	}
	return t
}

// Result is the outcome of a run.
type Result struct {
	DryRun      bool            `json:"dry_run"`
	PlanHash    string          `json:"plan_hash"`
	StateDir    string          `json:"state_dir"`
	LegacyKeys  int64           `json:"legacy_keys"`  // keys seen by the pre-pass
	UnknownKeys int64           `json:"unknown_keys"` // matched no rule
	Unknown     string          `json:"unknown"`      // block | skip | <bucket>
	UnknownPats []Pattern       `json:"unknown_patterns,omitempty"`
	Buckets     []*BucketResult `json:"buckets"`
	Elapsed     time.Duration   `json:"elapsed_ns"`
	CopyElapsed time.Duration   `json:"copy_elapsed_ns"`
	Throttled   int64           `json:"throttled"` // pauses for legacy latency
	// LegacyRetries counts transient legacy errors retried with back-off.
	LegacyRetries int64 `json:"legacy_retries"`
	// NoTouch is set when the copier read legacy with CLIENT NO-TOUCH on
	// (Redis ≥ 7.2, Valkey): reading every key left legacy's LRU/LFU
	// eviction order alone. Without it every key read looks recently used.
	NoTouch bool `json:"no_touch"`
	// LeaseTakeover is set when the run took the lease over from a dead
	// redisplit process on this host.
	LeaseTakeover *lease.Takeover `json:"lease_takeover,omitempty"`
	// Live is the live phase (--dual-write).
	Live *LiveResult `json:"live,omitempty"`
	// Queue is the move of the queue bucket to SQS (kind: sqs, queue.go).
	Queue *QueueMove `json:"queue,omitempty"`
	// Notify says what became of legacy's notify-keyspace-events that an
	// earlier --dual-write run left set (put back by this run).
	Notify string `json:"notify,omitempty"`
}

// OwnPrefix is the prefix of redisplit's own keys on legacy: never migrated.
const OwnPrefix = lease.OwnPrefix

// Pattern is a normalised key pattern with a count and a sample key.
type Pattern struct {
	Pattern string `json:"pattern"`
	Keys    int64  `json:"keys"`
	Sample  string `json:"sample"`
}

// MarshalJSON writes the sample as {key} or {key_b64} (keyname.JSON).
func (p Pattern) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Pattern string       `json:"pattern"`
		Keys    int64        `json:"keys"`
		Sample  keyname.JSON `json:"sample"`
	}{p.Pattern, p.Keys, keyname.Of(p.Sample)})
}

// Bucket returns the result for bucket b, or nil.
func (r *Result) Bucket(b string) *BucketResult {
	for _, x := range r.Buckets {
		if x.Bucket == b {
			return x
		}
	}
	return nil
}

// Failed lists the buckets that failed.
func (r *Result) Failed() []*BucketResult {
	var out []*BucketResult
	for _, b := range r.Buckets {
		if b.Status == StatusFailed {
			out = append(out, b)
		}
	}
	return out
}

// Progress is a snapshot of a running copy.
type Progress struct {
	Planned int64            // keys to process, by the pre-pass
	Done    int64            // keys with an outcome (Counts), including those saved by earlier runs
	Copied  map[string]int64 // per bucket, including earlier runs
	// BucketPlanned is each bucket's share of Planned.
	BucketPlanned map[string]int64
	// Retrying holds, by bucket (or "legacy"), the servers failing
	// transiently right now: their writes (reads) are retried with back-off
	// for up to Options.Retry.For, while the other buckets go on.
	Retrying map[string]Retrying
}

// Retrying is a server that is failing transiently and being retried.
type Retrying struct {
	Since     time.Time // first failure of this episode
	Last      time.Time // latest failure
	Retries   int64     // retries in this run so far
	LastError string
}

// ErrBucketsFailed is returned (wrapped) when at least one bucket failed;
// the Result tells which and why. Other buckets were completed.
var ErrBucketsFailed = errors.New("some buckets failed")

// Run migrates every bucket that has a target. It returns the Result
// (also on error, as far as it got) and:
//   - a *safety.Refusal when it refuses (nothing was written);
//   - a *redisconn.Error for an unreachable or misconfigured server;
//   - an error wrapping ErrBucketsFailed when buckets failed while the
//     others were copied;
//   - the context's cause when interrupted (the checkpoint lets a rerun resume).
//
// Idempotence: rerunning after any interruption (including kill -9) resumes
// from the last checkpoint and ends with the same keys on the targets as an
// uninterrupted run.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	start := time.Now()
	res := &Result{DryRun: o.DryRun, PlanHash: o.PlanHash, Unknown: o.Config.Unknown}
	if res.Unknown == "" {
		res.Unknown = "block"
	}
	if o.State != nil {
		res.StateDir = o.State.Path()
	}
	legacy, err := redisconn.Legacy(ctx, o.Config.Legacy)
	if err != nil {
		return res, err
	}
	defer legacy.Close()
	defer res.fillCounts(o.State)

	// ctx ends on SIGINT or a lost lease; wctx, the writers' context, only
	// on a lost lease (the live phase drains the copier after a SIGINT).
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wctx, wcancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer wcancel(nil)
	lost := func(err error) {
		cancel(err)
		wcancel(err)
	}

	st, err := o.State.Load()
	if err != nil {
		return res, err
	}
	if err := st.CheckPlan(o.PlanHash); err != nil {
		return res, err
	}
	if !o.DryRun {
		l, err := lease.Acquire(ctx, legacy, lease.Options{Command: "migrate", StateDir: o.State.Path(), TTL: o.LockTTL}, lost)
		if err != nil {
			return res, err
		}
		defer l.Release()
		res.LeaseTakeover = l.TookOver
	}
	targets, err := openTargets(ctx, o.Config, st, res, o.DualWrite)
	defer func() {
		for _, t := range targets {
			t.Close()
		}
	}()
	if err != nil {
		return res, err
	}
	o.limiter()
	pre, sp, err := prepass(ctx, legacy, o, targets, res)
	if err != nil {
		return res, err
	}
	defer sp.remove()
	var warm *state.Warm // the cache's copy policy: before the room check, which asks room for what it copies
	if pre == nil {
		if warm, err = prepareWarm(ctx, legacy, o, targets, st, res); err != nil {
			return res, err
		}
	}
	if err := checkTargets(ctx, o, st, targets, res); err != nil {
		return res, err
	}
	if err := pre; err != nil { // unknown keys: refuse after the summary is complete
		return res, err
	}
	if err := res.Queue.check(ctx, legacy, o); err != nil {
		return res, err
	}
	if o.DryRun {
		for b := range targets {
			res.Bucket(b).Status = StatusDryRun
		}
		res.Queue.dryRun()
		res.Elapsed = time.Since(start)
		return res, nil
	}
	if len(targets) == 0 && res.Queue == nil {
		res.Elapsed = time.Since(start)
		return res, nil
	}
	if o.Confirm != nil {
		if err := o.Confirm(res); err != nil {
			return res, err
		}
	}
	var notify *state.Notify
	if o.DualWrite && len(targets) > 0 {
		// put back when the run ends, after the live figures are saved and
		// before the lease is released (the deferred Release runs later)
		defer func() {
			msg := "notify-keyspace-events left as redisplit set it: the lease was lost (another command may need it); the next migrate puts it back"
			if wctx.Err() == nil {
				rctx, cancel := context.WithTimeout(wctx, 10*time.Second)
				defer cancel()
				msg = restoreNotify(rctx, legacy, o.State)
			}
			if res.Live != nil {
				res.Live.Notify = msg
			} else {
				res.Notify = msg
			}
		}()
		if notify, err = enableNotify(ctx, legacy, o.State); err != nil {
			return res, err
		}
	} else {
		res.Notify = restoreNotify(ctx, legacy, o.State) // left by a killed --dual-write
	}
	copyStart := time.Now()
	o.queue = res.Queue
	res.Queue.ownControl(o.DualWrite && len(targets) == 0)
	queueDone := res.Queue.start(ctx, wctx, legacy, o)
	if len(targets) > 0 {
		err = copyAll(ctx, wctx, legacy, o, targets, res, notify, warm, sp)
	}
	if qerr := queueDone(); err == nil {
		err = qerr
	}
	res.CopyElapsed = time.Since(copyStart)
	res.Elapsed = time.Since(start)
	if err != nil {
		if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
			return res, c
		}
		if errors.Is(err, context.Canceled) {
			return res, fmt.Errorf("interrupted; the checkpoint is saved: rerun migrate to resume (%w)", err)
		}
		return res, err
	}
	if f := res.Failed(); len(f) > 0 {
		names := ""
		for i, b := range f {
			if i > 0 {
				names += ", "
			}
			names += b.Bucket
		}
		return res, fmt.Errorf("%w: %s (the other buckets were copied; fix the cause and rerun migrate to resume)", ErrBucketsFailed, names)
	}
	return res, nil
}

// fillCounts sets every bucket's totals from the state (as saved by the
// last checkpoint, so that they are status's numbers) and counts the keys
// of buckets without a supported target as skipped.
func (r *Result) fillCounts(sd *state.Dir) {
	st := &state.State{}
	if sd != nil {
		if s, err := sd.Load(); err == nil {
			st = s
		}
	}
	for _, b := range r.Buckets {
		switch sb := st.Buckets[b.Bucket]; {
		case b.Status == StatusNoTarget || b.Status == StatusSkipped:
			b.Total = Totals{Counts: Counts{Skipped: b.PlannedKeys}}
			if !r.DryRun {
				b.ThisRun.Skipped = b.PlannedKeys
			}
		case sb != nil && sb.Phase != state.RolledBack:
			b.Total = TotalOf(sb)
		default: // nothing copied yet
			b.Total = Totals{Pending: b.PlannedKeys}
		}
	}
}

// openTargets opens the target of every bucket that has one; buckets
// without one get a no-target result. Open errors name the bucket and host.
//
// With dualWrite a bucket already copied is opened too: it is mirrored.
func openTargets(ctx context.Context, cfg *config.Config, st *state.State, res *Result, dualWrite bool) (map[string]*store.Redis, error) {
	targets := map[string]*store.Redis{}
	for _, b := range config.Buckets {
		br := &BucketResult{Bucket: b}
		res.Buckets = append(res.Buckets, br)
		t, ok := cfg.Targets[b]
		switch {
		case !ok:
			br.Status, br.Reason = StatusNoTarget, "no target configured for this bucket: not migrated"
			continue
		case t.Kind == config.KindSQS: // moved by queuemove, not copied (queue.go)
			q, err := openQueue(ctx, b, t, br)
			if err != nil {
				return targets, err
			}
			res.Queue = q
			continue
		}
		if sb := st.Buckets[b]; sb != nil && sb.Phase == state.Completed {
			// its application uses the target only: mirroring (or
			// rescanning) legacy into it would overwrite or delete its data
			br.Status, br.Target = string(state.Completed), sb.Target
			br.Reason = "completed: the bucket lives on its target only; not mirrored"
			continue
		}
		if sb := st.Buckets[b]; sb != nil && sb.Copied && sb.Phase != state.RolledBack && !dualWrite {
			br.Status = StatusCopied
			br.Reason = "already copied (phase " + string(sb.Phase) + "); run rollback to copy it again"
			br.Target = sb.Target
			continue
		}
		r, err := store.Open(ctx, b, t)
		if err != nil {
			return targets, err
		}
		br.Target = r.Describe()
		br.Status = StatusPending
		targets[b] = r
	}
	return targets, nil
}

// routes classifies a key: its bucket, or "" when the key is not migrated
// (redisplit's own keys, unknown keys with unknown: skip or block).
type router struct {
	c       *classify.Classifier
	unknown string
}

func (r router) route(key, typ string) (bucket string, unknown bool) {
	m := r.c.Classify(key, typ)
	if m.Bucket == classify.Unknown || m.Bucket == "" {
		return r.unknownBucket(), true
	}
	return string(m.Bucket), false
}

// unknownBucket is where keys no rule matches go: "" (not migrated) unless
// unknown names a bucket.
func (r router) unknownBucket() string {
	switch r.unknown {
	case "", "block", "skip":
		return ""
	}
	return r.unknown
}
