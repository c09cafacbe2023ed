// Package queuemove moves queue items from legacy Redis lists (and the
// sorted sets of their delayed jobs) into Amazon SQS, verifies the move by
// conservation and moves items back (DESIGN.md §8, docs/queues-sqs.md).
// A queue is consumed destructively, so it is moved, never copied: every
// item leaves legacy once and arrives in SQS at least once.
//
// The move of one item, in this order:
//
//  1. LMOVE list → redisplit:inflight:<list> on legacy (from the end the
//     consumers pop, PopFrom), up to 10 items per batch. From here on the
//     item is on legacy in the in-flight list: no consumer takes it.
//  2. An intent record (source, seq, hash of the item) is appended to the
//     journal before anything is sent. seq numbers a source's items from 1,
//     so the item has an identity even when its bytes repeat.
//  3. SendMessageBatch (at most 10 entries and MaxBatchBytes), attributes
//     redisplit-seq (and redisplit-due for delayed jobs); on FIFO queues
//     MessageGroupId (template, default the list key) and
//     MessageDeduplicationId = digest(epoch, source, seq, item): a re-send
//     of the same item within SQS's 5 minutes is dropped by SQS.
//  4. The outcome (message id, or parked with its reason) is journaled.
//  5. One MULTI on legacy removes the batch from the in-flight list (LREM
//     count 1 per item), pushes the parked ones onto
//     redisplit:parked:<list>, and records the batch's last seq in
//     redisplit:moved:<list> — so a crash leaves either the whole batch in
//     flight or none of it, and a restart knows which.
//
// Guarantees:
//   - Nothing is lost: an item is removed from legacy only after SQS
//     acknowledged it (or it is parked on legacy). Items SQS refuses (too
//     large, characters SQS does not carry, empty) are parked, counted and
//     sampled in the result, never dropped.
//   - At least once: a crash (kill -9, a cancelled context) between 1 and 5
//     leaves the batch in flight; the next Run sends it again before
//     anything else. On FIFO queues the re-send carries the same
//     deduplication id (exactly once within 5 minutes); on standard queues
//     a re-sent item may be there twice: re-sends are counted (Resent), and
//     Verify accepts at most that many extra messages.
//   - Order: items leave each list oldest first, one batch at a time per
//     list; FIFO queues keep that order within the message group.
//   - SQS unreachable or throttling: the list waits with back-off (Waits,
//     WaitingSince in the progress) and resumes; a fatal SQS error
//     (credentials, permissions, a missing queue) stops Run with the items
//     still in flight on legacy.
//   - Delayed jobs (DelayedSet, scored by due time): standard queues get
//     the ones due within 900 s with DelaySeconds; FIFO queues (no
//     per-message delay) get them when due. Later ones stay in the set and
//     are moved when due while Run keeps running; Drain reports them.
//
// One Run per bucket at a time: the caller holds redisplit's lease. Memory
// is bounded by the number of lists and the batch size, not by the items.
//
// Commands use it so (cmd renders the results):
//   - migrate: Run with Drain for a one-pass move, or without it for the
//     live phase (cancel ctx at complete, then Run with Drain once more);
//   - verify: Verify, ConsumersStarted once consumers work on SQS,
//     ProducersSwitched once producers send there;
//   - rollback: Rollback, then state.Dir.ResetBucket when it is Complete;
//   - status: ReadStatus (what the last Run wrote, every second).
package queuemove

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/keyname"
	"github.com/redisplit/redisplit/lease"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store/sqsstore"
)

// batchItems is the items taken from a list per batch.
const batchItems = sqsstore.MaxBatchEntries

// redisplit's keys on legacy, per source key K (a list or a delayed set).
const (
	InflightPrefix = lease.OwnPrefix + "inflight:" // list: K's items being moved
	ParkedPrefix   = lease.OwnPrefix + "parked:"   // list (zset for a delayed set): items SQS refused
	movedPrefix    = lease.OwnPrefix + "moved:"    // string "epoch:seq": the last batch removed from in flight
	stagePrefix    = lease.OwnPrefix + "rollback:" // zset: items received back, scored by seq
	stageNewPrefix = lease.OwnPrefix + "rollback-new:"
)

// Message attributes redisplit sets.
const (
	AttrSeq = "redisplit-seq" // the item's seq in its list
	AttrDue = "redisplit-due" // delayed jobs: the score they had
)

// MaxDelay is the longest SQS message delay.
const MaxDelay = sqsstore.MaxDelaySeconds * time.Second

// Config is what Run, Verify and Rollback share.
type Config struct {
	// Bucket names the journal in State (default "queue").
	Bucket string
	Legacy *redis.Client
	SQS    sqsstore.Service
	Target config.SQS
	// Lists are the list keys to move (the plan's lists of the bucket);
	// each has one queue (Target.QueueFor), and two lists may not share one.
	Lists []string
	State *state.Dir
}

// Options configure Run.
type Options struct {
	Config
	// Drain makes Run return once every list, its in-flight list and its
	// delayed jobs due within MaxDelay are moved; without it Run keeps
	// moving until ctx is cancelled (the live phase).
	Drain bool
	// Poll is how often an empty list is looked at again (default 200ms).
	Poll time.Duration
	// BackoffMin and BackoffMax bound the wait after SQS failed (default
	// 200ms and 5s, doubling).
	BackoffMin, BackoffMax time.Duration
	// Progress, when set, is called about every second with the status of
	// every queue (also written to State for `status`).
	Progress func(Snapshot)

	hook func(stage, src string) error // tests: "taken", "journaled", "sent", "recorded", "removed"
}

// Result is what Run did.
type Result struct {
	Epoch   string        `json:"epoch"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Stopped: ctx was cancelled (not an error: the live phase ends so).
	Stopped bool          `json:"stopped,omitempty"`
	Queues  []QueueResult `json:"queues"`
}

// QueueResult is one source's part of a Result.
type QueueResult struct {
	QueueStatus
	MovedRun  int64 `json:"moved_run"`
	ParkedRun int64 `json:"parked_run"`
	ResentRun int64 `json:"resent_run"`
	// Waits counts the times SQS failed and the list waited; Waited is the
	// time spent waiting.
	Waits  int64         `json:"waits"`
	Waited time.Duration `json:"waited_ns"`
	// ParkedSample holds up to 3 items parked by this run.
	ParkedSample []ParkedItem `json:"parked_sample,omitempty"`
	// Anomalies counts journaled items that recovery did not find in
	// flight (someone changed redisplit's keys); Verify reports them.
	Anomalies int64 `json:"anomalies,omitempty"`
}

// ParkedItem is a parked item: its first bytes (quoted) and why.
type ParkedItem struct {
	Item   string `json:"item"`
	Bytes  int    `json:"bytes"`
	Reason string `json:"reason"`
}

// Snapshot is the status of every queue at one moment.
type Snapshot struct {
	At     time.Time     `json:"at"`
	Bucket string        `json:"bucket"`
	Epoch  string        `json:"epoch"`
	Queues []QueueStatus `json:"queues"`
}

// QueueStatus is the status of one source.
type QueueStatus struct {
	keyname.JSON        // the source key (a list, or a delayed set)
	Kind         string `json:"kind"` // "list" or "delayed"
	List         string `json:"list"` // the list it feeds
	Queue        string `json:"queue"`
	// Moved, Parked and Resent are over the whole move (the journal).
	Moved  int64 `json:"moved"`
	Parked int64 `json:"parked"`
	Resent int64 `json:"resent"`
	// InFlight and Remaining are on legacy now (Remaining: the list's
	// length, or the delayed set's size).
	InFlight  int64   `json:"in_flight"`
	Remaining int64   `json:"remaining"`
	Rate      float64 `json:"rate"` // items/s over the last 10 s
	// Waiting: SQS is failing and the list waits since WaitingSince.
	Waiting      bool      `json:"waiting,omitempty"`
	WaitingSince time.Time `json:"waiting_since,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	// Later (delayed sets) counts jobs due after MaxDelay (FIFO: after
	// now); NextDue is the earliest of them.
	Later   int64     `json:"later,omitempty"`
	NextDue time.Time `json:"next_due,omitzero"`
}

// ReadStatus returns the latest Snapshot a Run wrote for bucket.
func ReadStatus(dir *state.Dir, bucket string) (*Snapshot, bool, error) {
	var s Snapshot
	ok, err := dir.ReadQueueStatus(bucket, &s)
	if !ok || err != nil {
		return nil, ok, err
	}
	return &s, true, nil
}

// source is one list or delayed set and its queue.
type source struct {
	key      string
	kind     byte
	list     string
	queue    sqsstore.Queue
	group    string
	inflight string
	parked   string
	movedKey string
	sum      *summary
	st       *stats
}

func (s *source) kindName() string {
	if s.kind == kindDelayed {
		return "delayed"
	}
	return "list"
}

func (c *Config) defaults() {
	if c.Bucket == "" {
		c.Bucket = "queue"
	}
}

func (c *Config) legacyErr(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	return redisconn.Explain(err, "legacy", c.Legacy.Options().Addr)
}

// sources resolves every list (and its delayed set) to its queue. Two lists
// mapping to one queue are a configuration error: conservation and
// rollback are per queue.
func (c *Config) sources(ctx context.Context, create bool) ([]*source, error) {
	if c.Legacy == nil || c.SQS == nil || c.State == nil {
		return nil, errors.New("queuemove: Legacy, SQS and State are required")
	}
	lists := slices.Clone(c.Lists)
	slices.Sort(lists)
	lists = slices.Compact(lists)
	byQueue := map[string]string{}
	queues := map[string]sqsstore.Queue{}
	var out []*source
	for _, l := range lists {
		name, err := c.Target.QueueFor(l)
		if err != nil {
			return nil, err
		}
		if other, dup := byQueue[name]; dup {
			return nil, config.Errorf("targets.queue.queue_name", "lists %q and %q both map to queue %s; put {key} in queue_name so that every list has its own queue", other, l, name)
		}
		byQueue[name] = l
		q := queues[name]
		if q == nil {
			if q, err = c.SQS.Queue(ctx, name, c.Target.FIFO, create); err != nil {
				return nil, err
			}
			queues[name] = q
		}
		group := ""
		if c.Target.FIFO {
			group = c.Target.GroupFor(l)
		}
		out = append(out, newSource(l, kindList, l, q, group))
		if z := c.Target.DelayedFor(l); z != "" {
			out = append(out, newSource(z, kindDelayed, l, q, group))
		}
	}
	return out, nil
}

func newSource(key string, kind byte, list string, q sqsstore.Queue, group string) *source {
	return &source{key: key, kind: kind, list: list, queue: q, group: group,
		inflight: InflightPrefix + key, parked: ParkedPrefix + key, movedKey: movedPrefix + key, st: &stats{}}
}

// scoreUnit is the duration of one unit of a delayed set's score.
func (c *Config) scoreUnit() time.Duration {
	if c.Target.DelayedScore == "ms" {
		return time.Millisecond
	}
	return time.Second
}

// Run moves every list's items to its queue until ctx is cancelled or, with
// Drain, until everything due is moved. It first re-sends what a previous
// run left in flight. A fatal error of one list stops every list (their
// batches stay in flight on legacy); the Result is returned with it.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 200 * time.Millisecond
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = max(5*time.Second, o.BackoffMin)
	}
	start := time.Now()
	js, err := replay(o.State, o.Bucket, false)
	if err != nil {
		return nil, err
	}
	j, err := o.State.OpenQueueJournal(o.Bucket)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	if js.epoch == "" {
		js.epoch = newEpoch()
		if _, err := j.Append(rec{kind: recEpoch, str: js.epoch}.encode()); err != nil {
			return nil, err
		}
	}
	srcs, err := o.sources(ctx, o.Target.CreateQueues)
	if err != nil {
		return nil, err
	}
	m := &mover{o: &o, j: j, epoch: js.epoch, srcs: srcs}
	for _, s := range srcs {
		s.sum = js.src(s.key)
		if s.sum.seen && s.sum.kind != s.kind {
			return nil, fmt.Errorf("queuemove: %q was moved as a %s and is now configured as another kind", s.key, s.kindName())
		}
		s.st.baseMoved, s.st.baseParked, s.st.baseResent = s.sum.moved, s.sum.parked, s.sum.resent
		if !s.sum.seen {
			n, err := m.length(ctx, s)
			if err != nil {
				return nil, err
			}
			if _, err := j.Append(rec{kind: recSource, src: s.key, srcKind: s.kind, str: s.list, initial: n}.encode()); err != nil {
				return nil, err
			}
			s.sum.seen, s.sum.kind, s.sum.list, s.sum.initial = true, s.kind, s.list, n
		}
	}
	runErr := m.run(ctx)
	res := &Result{Epoch: js.epoch, Elapsed: time.Since(start), Stopped: runErr == nil && ctx.Err() != nil}
	snap := m.snapshot(context.WithoutCancel(ctx))
	if o.State != nil {
		_ = o.State.WriteQueueStatus(o.Bucket, snap)
	}
	for i, s := range srcs {
		qs := snap.Queues[i]
		if res.Elapsed > 0 {
			qs.Rate = float64(s.st.moved.Load()) / res.Elapsed.Seconds()
		}
		qr := QueueResult{QueueStatus: qs, MovedRun: s.st.moved.Load(), ParkedRun: s.st.parked.Load(), ResentRun: s.st.resent.Load(),
			Waits: s.st.waits.Load(), Waited: time.Duration(s.st.waited.Load()), Anomalies: s.st.anomalies.Load()}
		s.st.mu.Lock()
		qr.ParkedSample = slices.Clone(s.st.sample)
		s.st.mu.Unlock()
		res.Queues = append(res.Queues, qr)
	}
	if errors.Is(runErr, context.Canceled) && ctx.Err() != nil {
		runErr = nil
		res.Stopped = true
	}
	return res, runErr
}

func (m *mover) length(ctx context.Context, s *source) (int64, error) {
	var n int64
	var err error
	if s.kind == kindDelayed {
		n, err = m.o.Legacy.ZCard(ctx, s.key).Result()
	} else {
		n, err = m.o.Legacy.LLen(ctx, s.key).Result()
	}
	return n, m.o.legacyErr(err)
}

func sortSources(srcs []*source) {
	slices.SortFunc(srcs, func(a, b *source) int { return cmp.Compare(a.key, b.key) })
}

func seqString(seq uint64) string { return strconv.FormatUint(seq, 10) }
