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
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

	ctl queueCtl // the live phase's end (Control)
	// control: this move serves the control channel itself (--dual-write
	// with no Redis target: no live phase runs one)
	control bool
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

// ownControl makes the move serve the control channel itself (own: no
// live phase runs one).
func (q *QueueMove) ownControl(own bool) {
	if q != nil {
		q.control = own
	}
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
		q.ctl.ended(q, err)
		return nil
	}
	syncing := false
	progress := func(s queuemove.Snapshot) {
		q.ctl.observe(s)
		if o.Queue != nil {
			o.Queue(s)
		}
		if o.DualWrite && !syncing && drained(s.Queues) {
			syncing = true
			_ = q.save(o, q.copied(true))
		}
	}
	var err error
	var cr *completeRun // complete --bucket: the continuous move ended for it
	var answered atomic.Int64
	answeredAtEnd := int64(-1)
	if o.DualWrite && q.control {
		ln, sock, lerr := listenControl(o.State.Path())
		if lerr != nil {
			q.fail(o, lerr)
			q.ctl.ended(q, lerr)
			return nil
		}
		var one sync.Mutex // transitions one at a time
		go serveControl(ctx, ln, func(ctx context.Context, req ControlRequest) ControlResponse {
			one.Lock()
			defer one.Unlock()
			if req.Bucket != q.Bucket {
				return respond("", nil, safety.Refusef("name the bucket this migrate moves: "+q.Bucket,
					"bucket %q is not moved or mirrored by this migrate --dual-write (only %s, to %s)", req.Bucket, q.Bucket, q.Endpoint))
			}
			return q.Control(ctx, req, o)
		}, func() { answered.Add(1) })
		defer func() {
			// the complete's answer (it waits for the mover's end) is
			// written before migrate exits
			for t0 := time.Now(); cr != nil && answered.Load() <= answeredAtEnd && time.Since(t0) < 5*time.Second; {
				time.Sleep(10 * time.Millisecond)
			}
			_ = ln.Close()
			_ = os.Remove(sock)
		}()
	}
	if o.DualWrite {
		mctx, stopLive := context.WithCancel(ctx)
		q.ctl.start(stopLive)
		err = q.mover(mctx, queuemove.Options{Config: cfg, Progress: progress})
		stopLive()
		if cr = q.ctl.completing(); cr != nil && errors.Is(err, context.Canceled) && ctx.Err() == nil {
			err = nil
		}
		drain := finalDrain
		if cr != nil {
			drain = cr.drain
		}
		if err == nil && wctx.Err() == nil {
			dctx, cancel := context.WithTimeout(wctx, drain)
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
		} else if cr != nil {
			q.br.Status, q.br.Reason = string(state.Completed), "completed: producers send to SQS, nothing remains on legacy; the mover ended"
			if serr := q.save(o, func(sb *state.Bucket) { sb.Phase, sb.CompletedAt = state.Completed, time.Now().UTC() }); serr != nil {
				q.fail(o, serr)
			}
		}
	case q.Queues == nil: // stopped while SQS failed before the move began
		q.br.Status, q.br.Reason = StatusPending, "stopped before the move began (SQS failing): rerun migrate to move the lists"
	default: // stopped before everything was moved
		q.br.Status = StatusPending
		q.br.Reason = fmt.Sprintf("%d items remain on legacy and %d in flight: rerun migrate to move them", q.Remaining, q.InFlight)
	}
	answeredAtEnd = answered.Load()
	q.ctl.ended(q, err)
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

// The live phase's end for the queue bucket on SQS (docs/queues-sqs.md,
// "Live, with consumers and producers"): a queue cannot be mirrored, so
// its cutover and complete differ from a Redis bucket's (cutover.go hands
// them here). Ordering contracts:
//
//   - cutover --bucket queue records that producers send to SQS (phase
//     cutover): only once the bucket is syncing or verified (the mover has
//     emptied every list once) and the mover runs. It changes nothing on
//     legacy or SQS: the mover keeps moving what still reaches legacy. No
//     control key is written (dualwrite/client routes Redis targets only).
//   - complete --bucket queue, only from cutover: it waits until nothing
//     reached legacy for Quiet (the lists' total of moved + parked + in
//     flight + remaining did not grow between the mover's snapshots, about
//     every second: quiet is proven up to the latest one) and nothing remains on legacy or in flight; it refuses
//     (exit 4) when items keep arriving until Timeout. Then the continuous
//     move ends, one drain moves what reached legacy meanwhile (at most
//     finalDrain, or Timeout when longer), and only a drained bucket is
//     recorded completed; the mover has ended. A bucket not drained stays
//     in cutover (exit 1, with what remains): rerun migrate --dual-write.
//   - The live phase ends by itself only once every Redis bucket is
//     completed or rolled back and the queue's mover has ended
//     (live.endIfIdle asks Ended).
//   - rollback of the queue through the control channel is refused: the
//     items come back from SQS with rollback --bucket queue once migrate
//     is stopped.

// QueueDetails is the answer to a cutover or complete of the queue bucket
// on SQS: the move's figures from the mover's latest snapshot (after the
// final drain, for complete).
type QueueDetails struct {
	Bucket    string `json:"bucket"`
	Moved     int64  `json:"moved"`
	Parked    int64  `json:"parked"`
	InFlight  int64  `json:"in_flight"`
	Remaining int64  `json:"remaining"`
	// QuietFor (complete): how long nothing had reached legacy's lists.
	QuietFor time.Duration `json:"quiet_for_ns,omitempty"`
	// Drained (complete): every list and in-flight list was empty when the
	// mover ended.
	Drained bool `json:"drained,omitempty"`
}

// queueCtl is the mover's side of the control channel.
type queueCtl struct {
	mu       sync.Mutex
	stop     context.CancelFunc // ends the continuous move
	done     bool               // the mover ended
	doneErr  error
	last     queuemove.Snapshot
	seen     bool
	total    int64     // moved + parked + in flight + remaining at the last snapshot
	grewAt   time.Time // when total last grew: an item reached legacy
	complete *completeRun
	endedCh  chan struct{}
}

// completeRun is a complete in progress: the drain it allows, and closed
// once the mover ended.
type completeRun struct {
	drain time.Duration
}

func (c *queueCtl) start(stop context.CancelFunc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stop = stop
	if c.endedCh == nil {
		c.endedCh = make(chan struct{})
	}
}

// observe takes the mover's snapshot.
func (c *queueCtl) observe(s queuemove.Snapshot) {
	var total int64
	for _, x := range s.Queues {
		total += x.Moved + x.Parked + x.InFlight + x.Remaining
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.seen || total > c.total {
		c.grewAt = s.At
	}
	c.seen, c.total, c.last = true, total, s
}

func (c *queueCtl) completing() *completeRun {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.complete
}

// ended records that the mover ended (err: why, nil when it was stopped
// or completed).
func (c *queueCtl) ended(q *QueueMove, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.done, c.doneErr = true, err
	if c.endedCh == nil {
		c.endedCh = make(chan struct{})
	}
	close(c.endedCh)
}

// Ended reports whether the move of the bucket has ended (completed,
// failed, or stopped); a nil QueueMove has none running.
func (q *QueueMove) Ended() bool {
	if q == nil {
		return true
	}
	q.ctl.mu.Lock()
	defer q.ctl.mu.Unlock()
	return q.ctl.done
}

// details are the latest snapshot's figures.
func (q *QueueMove) details() *QueueDetails {
	q.ctl.mu.Lock()
	defer q.ctl.mu.Unlock()
	d := &QueueDetails{Bucket: q.Bucket}
	for _, x := range q.ctl.last.Queues {
		d.Moved += x.Moved
		d.Parked += x.Parked
		d.InFlight += x.InFlight
		d.Remaining += x.Remaining - x.Later
	}
	return d
}

// Control performs a transition of the queue bucket handed to the running
// migrate --dual-write (cutover.go's handle, one at a time; contracts
// above).
func (q *QueueMove) Control(ctx context.Context, req ControlRequest, o Options) ControlResponse {
	switch req.Op {
	case OpCutover:
		d, err := q.cutover(req.Options, o)
		msg := fmt.Sprintf("%s: producers switched to SQS, recorded (phase cutover); the mover keeps moving what still reaches legacy: complete --bucket %s drains the rest and ends it", q.Bucket, q.Bucket)
		if req.Options.DryRun {
			msg = fmt.Sprintf("%s: cutover (producers switched to SQS) can be recorded (dry run: nothing changed)", q.Bucket)
		}
		return respond(msg, d, err)
	case OpComplete:
		d, err := q.completeMove(ctx, req.Options, o)
		return respond(fmt.Sprintf("%s completed: nothing remains on legacy, the mover ended; producers and consumers use SQS only", q.Bucket), d, err)
	case OpRollback:
		return respond("", nil, safety.Refusef("stop migrate --dual-write (SIGINT; it drains), stop the consumers on SQS, then run rollback --bucket "+q.Bucket+": it moves the items back from SQS",
			"bucket %s is moved to %s, not mirrored: migrate --dual-write cannot roll it back", q.Bucket, q.Endpoint))
	}
	return ControlResponse{ExitCode: 2, Message: fmt.Sprintf("unknown operation %q (cutover, complete, rollback)", req.Op)}
}

func (q *QueueMove) phase(o Options) (*state.Bucket, error) {
	st, err := o.State.Load()
	if err != nil {
		return nil, err
	}
	sb := st.Buckets[q.Bucket]
	if sb == nil {
		return nil, safety.Refusef("wait until migrate --dual-write has started the move (status), then retry", "bucket %s has no state yet", q.Bucket)
	}
	return sb, nil
}

// cutover records that producers send to SQS.
func (q *QueueMove) cutover(co ControlOptions, o Options) (*QueueDetails, error) {
	sb, err := q.phase(o)
	if err != nil {
		return nil, err
	}
	d := q.details()
	switch {
	case sb.Phase == state.Cutover || sb.Phase == state.Completed:
		return d, nil // done already: idempotent
	case sb.Failed:
		return nil, safety.Refusef("fix the cause and rerun migrate --dual-write until the bucket is syncing again",
			"bucket %s failed (%s): cutover needs it syncing", q.Bucket, sb.LastError)
	case q.Ended():
		return nil, safety.Refusef("rerun migrate --dual-write, then cutover", "the move of bucket %s to %s has ended in this migrate", q.Bucket, q.Endpoint)
	case sb.Phase != state.Syncing && sb.Phase != state.Verified:
		return nil, safety.Refusef("wait until status shows the bucket syncing (every list moved once: nothing remaining on legacy), then cutover",
			"bucket %s is %s: the mover has not emptied every list once yet (%d items remaining on legacy, %d in flight)", q.Bucket, sb.Phase, d.Remaining, d.InFlight)
	}
	if co.DryRun {
		return d, nil
	}
	return d, q.save(o, func(sb *state.Bucket) {
		sb.Phase = state.Cutover
		if sb.CutoverAt.IsZero() {
			sb.CutoverAt = time.Now().UTC()
		}
	})
}

// completeMove waits for the quiet period, ends the continuous move, and
// waits for the final drain.
func (q *QueueMove) completeMove(ctx context.Context, co ControlOptions, o Options) (*QueueDetails, error) {
	sb, err := q.phase(o)
	if err != nil {
		return nil, err
	}
	switch {
	case sb.Phase == state.Completed:
		return q.details(), nil
	case sb.Phase != state.Cutover:
		return nil, safety.Refusef("switch the producers to SQS, record it with cutover --bucket "+q.Bucket+", then complete",
			"bucket %s is %s: complete ends the move once producers send to SQS (phase cutover)", q.Bucket, sb.Phase)
	case q.Ended():
		return nil, safety.Refusef("rerun migrate --dual-write, then complete", "the move of bucket %s to %s has ended in this migrate without completing", q.Bucket, q.Endpoint)
	}
	if co.Quiet <= 0 {
		co.Quiet = DefaultQuiet
	}
	if co.Timeout <= 0 {
		co.Timeout = 3*co.Quiet + 30*time.Second
	}
	start := time.Now()
	var quiet time.Duration
	for {
		// growth shows at the mover's next snapshot (about every
		// second): quiet is proven up to the latest snapshot only
		q.ctl.mu.Lock()
		seen, grew, at := q.ctl.seen, q.ctl.grewAt, q.ctl.last.At
		q.ctl.mu.Unlock()
		d := q.details()
		quiet = at.Sub(grew)
		if seen && quiet >= co.Quiet && d.Remaining == 0 && d.InFlight == 0 {
			break
		}
		if time.Since(start) > co.Timeout {
			return nil, safety.Refusef("some producers still push to legacy: switch every one to SQS, then run complete again",
				"items of bucket %s keep reaching legacy: the last %s ago, %d remaining and %d in flight; no quiet period of %s with nothing left within %s",
				q.Bucket, quiet.Round(time.Millisecond), d.Remaining, d.InFlight, co.Quiet, co.Timeout)
		}
		if q.Ended() {
			return nil, fmt.Errorf("the move of bucket %s ended while complete waited (%v): rerun migrate --dual-write, then complete", q.Bucket, q.ctl.doneErr)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	q.ctl.mu.Lock()
	stop, ended := q.ctl.stop, q.ctl.endedCh
	if stop != nil {
		q.ctl.complete = &completeRun{drain: max(finalDrain, co.Timeout)}
	}
	q.ctl.mu.Unlock()
	if stop == nil { // a snapshot came from a mover not started by this run: cannot happen, but never panic
		return nil, safety.Refusef("retry in a moment", "the move of bucket %s is not running its live phase yet", q.Bucket)
	}
	stop()
	select {
	case <-ended:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	d := q.details()
	d.QuietFor, d.Drained = quiet, q.Drained
	if q.br.Status != string(state.Completed) {
		why := q.br.Error
		if why == "" {
			why = q.br.Reason
		}
		return d, fmt.Errorf("complete %s: the final drain did not finish (%s); the bucket stays in cutover: rerun migrate --dual-write, then complete again", q.Bucket, why)
	}
	return d, nil
}
