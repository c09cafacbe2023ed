package migrate

// The queue bucket when its target is kind: sqs (DESIGN.md §8,
// docs/queues-sqs.md). A queue is consumed destructively, so its lists are
// moved by package queuemove, never copied by the copier (the copier gets
// no target for the bucket). This file is the run's side of the move, in
// this order:
//
//  1. openTargets → openQueue: the SQS client (it contacts nothing yet) and
//     the bucket's result.
//  2. The pre-pass → QueueMove.collect and flush: the bucket's keys by type.
//     Lists are moved; the delayed sets of those lists (delayed_set) go
//     with them; anything else is counted.
//  3. QueueMove.check, after the pre-pass and before anything is written:
//     refuses (exit 4) while the bucket holds keys SQS cannot carry (not
//     lists) or a queue is missing without create_queues; adds the lists
//     the bucket's journal knows (Redis deletes an emptied list, but what a
//     killed run left in flight must still be sent); resolves every queue
//     (SQS unreachable here is an error naming the endpoint: nothing was
//     written); refuses a queue that holds messages before its list's first
//     move, unless --allow-nonempty (verify could not tell them from moved
//     ones). A dry run stops here with what would move.
//  4. QueueMove.start, beside the copier and under the run's lease: one
//     pass (queuemove's Drain) moves everything due and ends; with
//     --dual-write the mover keeps moving what producers still push to
//     legacy until the run is stopped (SIGINT), then drains once more for
//     at most finalDrain. SQS unreachable or throttling: the lists wait
//     with back-off and resume (queuemove; also when SQS fails while the
//     mover starts), and Options.Queue reports it every second.
//
// The bucket's state follows the other buckets': copying while the move
// runs, copied (backfill done) once every list and in-flight list was
// empty, syncing when that happened in the live phase, failed with the
// error otherwise. The item counts are the queue journal's (status reads
// them through queuemove.ReadStatus).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/keyname"
	"github.com/redisplit/redisplit/queuemove"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/safety"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store/sqsstore"
)

// finalDrain bounds the drain after a live phase is stopped: producers
// still pushing to legacy could keep a list from ever being empty. What is
// left stays on legacy (Remaining) for the next migrate.
const finalDrain = 30 * time.Second

// QueueMove is the move of the queue bucket to SQS in one run
// (Result.Queue; nil when the bucket's target is not kind: sqs).
type QueueMove struct {
	Bucket   string `json:"bucket"`
	Endpoint string `json:"endpoint"`
	FIFO     bool   `json:"fifo"`
	// Lists are the lists the check found (the plan's lists of the bucket
	// on legacy, and those the journal knows), each with its queue and its
	// length at the check.
	Lists []QueueList `json:"lists"`
	// NotLists counts keys routed to the bucket that are neither lists nor
	// their delayed sets (SQS carries list items only): migrate refuses
	// while there are any.
	NotLists       int64          `json:"not_lists,omitempty"`
	NotListsSample []keyname.JSON `json:"not_lists_sample,omitempty"`

	// The whole move (every run: the journal), summed over the queues as
	// the mover saw them when it stopped: Moved to SQS, Parked on legacy
	// (SQS refuses them), InFlight on legacy (taken, not acknowledged yet),
	// Remaining on legacy (lists and delayed sets).
	Moved     int64 `json:"moved"`
	Parked    int64 `json:"parked"`
	InFlight  int64 `json:"in_flight"`
	Remaining int64 `json:"remaining"`
	// Resent counts items sent again (after a crash, or a send whose
	// outcome was unknown); Duplicates those a queue may hold twice: every
	// re-send on a standard queue, none on a FIFO queue (SQS drops a
	// re-send with the same MessageDeduplicationId within 5 minutes).
	Resent     int64 `json:"resent"`
	Duplicates int64 `json:"duplicates"`
	// Later counts delayed jobs due too late to move now; they stay in
	// their sets and the next migrate (or the live phase) moves them.
	Later int64 `json:"later,omitempty"`
	// This run: moved, parked, and the times SQS failed and the lists
	// waited (Waited in all).
	MovedRun  int64         `json:"moved_run"`
	ParkedRun int64         `json:"parked_run"`
	Waits     int64         `json:"waits"`
	Waited    time.Duration `json:"waited_ns"`
	// Drained: every list and in-flight list was empty when the mover
	// stopped.
	Drained bool `json:"drained"`
	// Queues are the mover's figures per source (list or delayed set),
	// this run's counters summed over its mover runs.
	Queues []queuemove.QueueResult `json:"queues,omitempty"`

	target      config.SQS
	svc         *sqsstore.Client
	br          *BucketResult
	names       []string // Lists' names
	startWaits  int64    // SQS failed while the mover started
	startWaited time.Duration
	lists       map[string]bool
	zsets       map[string]bool // sorted sets of the bucket (delayed_set set): delayed jobs if a list names them
	page        []string        // the pre-pass page's keys of the bucket
	types       []string
}

// QueueList is one list to move.
type QueueList struct {
	keyname.JSON
	Queue string `json:"queue"`
	Items int64  `json:"items"` // its length at the check
	// DelayedSet and Delayed: its delayed jobs' sorted set and its size.
	DelayedSet string `json:"delayed_set,omitempty"`
	Delayed    int64  `json:"delayed,omitempty"`
	// Create: the queue does not exist; create_queues creates it.
	Create bool `json:"create,omitempty"`
}

// Items is what the lists (and their delayed sets) held at the check.
func (q *QueueMove) Items() int64 {
	var n int64
	for _, l := range q.Lists {
		n += l.Items + l.Delayed
	}
	return n
}

// openQueue prepares the move of bucket b to its SQS target t.
func openQueue(ctx context.Context, b string, t config.Target, br *BucketResult) (*QueueMove, error) {
	svc, err := sqsstore.New(ctx, sqsstore.FromConfig(t.SQS))
	if err != nil {
		return nil, fmt.Errorf("bucket %s (%s): %w", b, t.SQS.Describe(), err)
	}
	br.Target, br.Status = t.SQS.Describe(), StatusPending
	return &QueueMove{Bucket: b, Endpoint: t.SQS.Describe(), FIFO: t.FIFO, target: t.SQS, svc: svc, br: br,
		lists: map[string]bool{}, zsets: map[string]bool{}}, nil
}

// collect notes a pre-pass key routed to bucket b (typ may be "": not
// read yet). A nil QueueMove ignores it.
func (q *QueueMove) collect(b, key, typ string) {
	if q == nil || b != q.Bucket {
		return
	}
	q.page, q.types = append(q.page, key), append(q.types, typ)
}

// flush sorts the page's keys of the bucket by type (one pipelined TYPE
// for those the pre-pass did not read). Memory: the lists' and delayed
// sets' names, not the other keys.
func (q *QueueMove) flush(ctx context.Context, legacy *redis.Client) error {
	if q == nil || len(q.page) == 0 {
		return nil
	}
	cmds := make([]*redis.StatusCmd, len(q.page))
	if _, err := legacy.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range q.page {
			if q.types[i] == "" {
				cmds[i] = p.Type(ctx, k)
			}
		}
		return nil
	}); err != nil {
		return redisconn.Explain(err, "legacy", legacy.Options().Addr)
	}
	for i, k := range q.page {
		typ := q.types[i]
		if cmds[i] != nil {
			typ = cmds[i].Val()
		}
		switch {
		case typ == "none": // gone since the SCAN
		case typ == "list":
			q.lists[k] = true
		case typ == "zset" && q.target.DelayedSet != "":
			q.zsets[k] = true
		default:
			q.notList(k)
		}
	}
	q.page, q.types = q.page[:0], q.types[:0]
	return nil
}

func (q *QueueMove) notList(k string) {
	q.NotLists++
	if len(q.NotListsSample) < 3 {
		q.NotListsSample = append(q.NotListsSample, keyname.Of(k))
	}
}

// check runs after the pre-pass and before anything is written; see the
// file's header (3).
func (q *QueueMove) check(ctx context.Context, legacy *redis.Client, o Options) error {
	if q == nil {
		return nil
	}
	known, err := queuemove.Lists(o.State, q.Bucket)
	if err != nil {
		return err
	}
	moving := map[string]bool{}
	for _, l := range known {
		q.lists[l], moving[l] = true, true
	}
	delayed := map[string]bool{}
	for l := range q.lists {
		if z := q.target.DelayedFor(l); z != "" {
			delayed[z] = true
			delete(q.zsets, z)
		}
	}
	for _, z := range slices.Sorted(maps.Keys(q.zsets)) {
		q.notList(z)
	}
	q.zsets = nil
	if q.NotLists > 0 {
		var s []string
		for _, k := range q.NotListsSample {
			s = append(s, k.String())
		}
		return safety.Refusef("route them to another bucket in the plan, or give the queue bucket a Redis target (kind: standalone or sentinel)",
			"bucket %s goes to %s, which carries list items only, but %d of its keys are not lists (e.g. %s)", q.Bucket, q.Endpoint, q.NotLists, strings.Join(s, ", "))
	}
	lists := slices.Sorted(maps.Keys(q.lists))
	p := legacy.Pipeline()
	lens := make([]*redis.IntCmd, len(lists))
	zlens := make([]*redis.IntCmd, len(lists))
	for i, l := range lists {
		lens[i] = p.LLen(ctx, l)
		if z := q.target.DelayedFor(l); z != "" {
			zlens[i] = p.ZCard(ctx, z)
		}
	}
	if len(lists) > 0 {
		if _, err := p.Exec(ctx); err != nil {
			return redisconn.Explain(err, "legacy", legacy.Options().Addr)
		}
	}
	var missing, nonEmpty []string
	for i, l := range lists {
		name, err := q.target.QueueFor(l)
		if err != nil {
			return err
		}
		ql := QueueList{JSON: keyname.Of(l), Queue: name, Items: lens[i].Val()}
		if zlens[i] != nil {
			ql.DelayedSet, ql.Delayed = q.target.DelayedFor(l), zlens[i].Val()
		}
		sq, err := q.svc.Queue(ctx, name, q.FIFO, false)
		if err == nil && !moving[l] && !o.AllowNonEmpty {
			// a queue holding messages before its first move: verify
			// could not tell them from moved ones
			var c sqsstore.Counts
			if c, err = sq.Counts(ctx); err == nil && c.Total() > 0 {
				nonEmpty = append(nonEmpty, fmt.Sprintf("%s (%d messages)", name, c.Total()))
			}
		}
		if err != nil {
			switch c := sqsstore.Code(err); {
			case (c == "NonExistentQueue" || c == "QueueDoesNotExist") && q.target.CreateQueues:
				ql.Create = true
			case c == "NonExistentQueue" || c == "QueueDoesNotExist":
				missing = append(missing, name)
			default:
				return fmt.Errorf("bucket %s: %w", q.Bucket, err)
			}
		}
		q.Lists = append(q.Lists, ql)
		q.names = append(q.names, l)
	}
	if len(nonEmpty) > 0 {
		return safety.Refusef("--allow-nonempty moves into them anyway (producers already sending to SQS: then verify --producers-switched)",
			"bucket %s: %d queues on %s already hold messages redisplit did not move: %s", q.Bucket, len(nonEmpty), q.Endpoint, strings.Join(nonEmpty, ", "))
	}
	if len(lists) == 0 {
		q.br.Warnings = append(q.br.Warnings, "no list of the bucket on legacy: nothing to move (lists created after migrate started are moved by the next migrate)")
	}
	if len(missing) > 0 {
		return safety.Refusef("create them (targets init writes queue/sqs-queues.json) or set create_queues: true in targets."+q.Bucket,
			"bucket %s: %d queues do not exist on %s: %s", q.Bucket, len(missing), q.Endpoint, strings.Join(missing, ", "))
	}
	return nil
}

// dryRun marks the bucket as what a run would move.
func (q *QueueMove) dryRun() {
	if q != nil {
		q.br.Status = StatusDryRun
	}
}

// start runs the move beside the copier (header, 4) and returns the
// function that waits for it: its error is the run's context's when a
// one-pass move was interrupted, nil otherwise (the bucket's failure is
// in its BucketResult).
func (q *QueueMove) start(ctx, wctx context.Context, legacy *redis.Client, o Options) func() error {
	if q == nil {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() { done <- q.run(ctx, wctx, legacy, o) }()
	return func() error { return <-done }
}

func (q *QueueMove) run(ctx, wctx context.Context, legacy *redis.Client, o Options) error {
	lists := q.names
	cfg := queuemove.Config{Bucket: q.Bucket, Legacy: legacy, SQS: q.svc, Target: q.target, Lists: lists, State: o.State}
	if err := q.save(o, func(sb *state.Bucket) {
		if sb.StartedAt.IsZero() || sb.Phase == state.RolledBack {
			*sb = state.Bucket{StartedAt: time.Now().UTC()}
		}
		sb.Target, sb.LastError, sb.Failed, sb.FailedAt = q.Endpoint, "", false, time.Time{}
		sb.PlannedKeys = int64(len(lists))
		if !sb.Copied {
			sb.Phase = state.Copying
		}
	}); err != nil {
		q.fail(o, err)
		return nil
	}
	syncing := false
	progress := func(s queuemove.Snapshot) {
		if o.Queue != nil {
			o.Queue(s)
		}
		if o.DualWrite && !syncing && drained(s.Queues) {
			syncing = true
			_ = q.save(o, q.copied(true))
		}
	}
	var err error
	if o.DualWrite {
		err = q.mover(ctx, queuemove.Options{Config: cfg, Progress: progress})
		if err == nil && wctx.Err() == nil {
			dctx, cancel := context.WithTimeout(wctx, finalDrain)
			err = q.mover(dctx, queuemove.Options{Config: cfg, Drain: true, Progress: progress})
			cancel()
		}
	} else {
		err = q.mover(ctx, queuemove.Options{Config: cfg, Drain: true, Progress: progress})
	}
	switch {
	case err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		q.fail(o, err)
	case q.Drained:
		q.br.Status, q.br.ThisRun.Copied = StatusCopied, int64(len(lists))
		if o.DualWrite {
			q.br.Status = StatusSyncing
		}
		if serr := q.save(o, q.copied(o.DualWrite)); serr != nil {
			q.fail(o, serr)
		}
	case q.Queues == nil: // stopped while SQS failed before the move began
		q.br.Status, q.br.Reason = StatusPending, "stopped before the move began (SQS failing): rerun migrate to move the lists"
	default: // stopped before everything was moved
		q.br.Status = StatusPending
		q.br.Reason = fmt.Sprintf("%d items remain on legacy and %d in flight: rerun migrate to move them", q.Remaining, q.InFlight)
	}
	if !o.DualWrite && ctx.Err() != nil && !q.Drained {
		return ctx.Err()
	}
	return nil
}

// mover runs queuemove.Run until it returns for another reason than SQS
// failing while the move starts (resolving the queues): then it waits with
// back-off, as the lists do once they move, and tries again.
func (q *QueueMove) mover(ctx context.Context, mo queuemove.Options) error {
	backoff := 200 * time.Millisecond
	for {
		r, err := queuemove.Run(ctx, mo)
		if r != nil {
			q.absorb(r)
			if mo.Progress != nil { // the last figures (a recovery within the last second too)
				snap := queuemove.Snapshot{At: time.Now().UTC(), Bucket: q.Bucket, Epoch: r.Epoch}
				for _, x := range r.Queues {
					snap.Queues = append(snap.Queues, x.QueueStatus)
				}
				mo.Progress(snap)
			}
		}
		var se *sqsstore.Error
		if r != nil || err == nil || !errors.As(err, &se) || se.Class != sqsstore.Retry || ctx.Err() != nil {
			return err
		}
		q.startWaits++
		q.Waits++
		if mo.Progress != nil {
			snap := queuemove.Snapshot{At: time.Now().UTC(), Bucket: q.Bucket}
			for i, l := range q.Lists {
				snap.Queues = append(snap.Queues, queuemove.QueueStatus{JSON: l.JSON, Kind: "list", List: q.names[i], Queue: l.Queue,
					Remaining: l.Items, Waiting: true, LastError: err.Error()})
			}
			mo.Progress(snap)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		q.startWaited += backoff
		backoff = min(2*backoff, 5*time.Second)
	}
}

// absorb takes a mover run's result: the whole move's figures from the
// latest, this run's counters summed.
func (q *QueueMove) absorb(r *queuemove.Result) {
	prev := map[string]queuemove.QueueResult{}
	for _, x := range q.Queues {
		prev[x.Kind+"\x00"+x.Key+"\x00"+x.KeyB64] = x
	}
	q.Queues = q.Queues[:0]
	q.Moved, q.Parked, q.InFlight, q.Remaining, q.Resent, q.Later = 0, 0, 0, 0, 0, 0
	q.MovedRun, q.ParkedRun = 0, 0
	var st []queuemove.QueueStatus
	for _, x := range r.Queues {
		if p, ok := prev[x.Kind+"\x00"+x.Key+"\x00"+x.KeyB64]; ok {
			x.MovedRun += p.MovedRun
			x.ParkedRun += p.ParkedRun
			x.ResentRun += p.ResentRun
			x.Waits += p.Waits
			x.Waited += p.Waited
			x.ParkedSample = slices.Concat(p.ParkedSample, x.ParkedSample)[:min(3, len(p.ParkedSample)+len(x.ParkedSample))]
			x.Anomalies = max(x.Anomalies, p.Anomalies)
		}
		q.Queues = append(q.Queues, x)
		q.Moved += x.Moved
		q.Parked += x.Parked
		q.InFlight += x.InFlight
		q.Remaining += x.Remaining
		q.Resent += x.Resent
		q.Later += x.Later
		q.MovedRun += x.MovedRun
		q.ParkedRun += x.ParkedRun
		st = append(st, x.QueueStatus)
	}
	q.Duplicates = 0
	if !q.FIFO {
		q.Duplicates = q.Resent
	}
	q.Waits = q.startWaits
	q.Waited = q.startWaited
	for _, x := range q.Queues {
		q.Waits += x.Waits
		q.Waited += x.Waited
	}
	q.Drained = drained(st)
}

// drained reports whether every list and in-flight list is empty (delayed
// jobs due later may wait in their sets); no list at all is drained.
func drained(qs []queuemove.QueueStatus) bool {
	for _, s := range qs {
		if s.Waiting || s.InFlight > 0 || s.Kind == "list" && s.Remaining > 0 || s.Kind == "delayed" && s.Remaining > s.Later {
			return false
		}
	}
	return true
}

// copied marks the bucket's backfill done (every list moved once); in the
// live phase the bucket is then syncing.
func (q *QueueMove) copied(live bool) func(*state.Bucket) {
	return func(sb *state.Bucket) {
		if !sb.Copied {
			sb.Copied, sb.CopiedAt = true, time.Now().UTC()
		}
		sb.KeysCopied, sb.CheckpointAt = sb.PlannedKeys, time.Now().UTC()
		if live && sb.Phase == state.Copying {
			sb.Phase = state.Syncing
		}
	}
}

func (q *QueueMove) fail(o Options, err error) {
	q.br.Status, q.br.Error = StatusFailed, err.Error()
	_ = q.save(o, func(sb *state.Bucket) {
		if !sb.Failed {
			sb.Errors++
			sb.FailedAt = time.Now().UTC()
		}
		sb.Failed, sb.LastError = true, err.Error()
	})
}

// save updates the bucket's state (and the plan hash, as copyAll does for
// the other buckets).
func (q *QueueMove) save(o Options, fn func(*state.Bucket)) error {
	return o.State.Update(func(s *state.State) error {
		s.PlanHash = o.PlanHash
		sb := s.Buckets[q.Bucket]
		if sb == nil {
			sb = &state.Bucket{}
			s.Buckets[q.Bucket] = sb
		}
		fn(sb)
		return nil
	})
}
