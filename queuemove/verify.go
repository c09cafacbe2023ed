package queuemove

import (
	"context"
	"fmt"
	"time"

	"github.com/redisplit/redisplit/keyname"
	"github.com/redisplit/redisplit/store/sqsstore"
)

// VerifyOptions configure Verify.
type VerifyOptions struct {
	Config
	// ConsumersStarted: consumers take messages from the queues (the live
	// phase after they moved to SQS). SQS's counts then prove nothing about
	// the move, and the journal is the evidence of what was moved.
	ConsumersStarted bool
	// ProducersSwitched: producers send to the queues directly, so a queue
	// holds more than redisplit moved; only a shortfall is a failure.
	ProducersSwitched bool
	// Settle is how long Verify waits for SQS's approximate counts to
	// reach what was moved (default 30s, read every second).
	Settle time.Duration
}

// VerifyResult is the conservation check of every list and queue.
type VerifyResult struct {
	// Conserved: every list balances and no queue is short.
	Conserved bool         `json:"conserved"`
	Lists     []ListCheck  `json:"lists"`
	Queues    []QueueCheck `json:"queues"`
}

// ListCheck is the conservation of one source (a list or a delayed set):
//
//	Initial + Pushed = Remaining + InFlight + Parked + Moved
//
// where Initial is its length when the move started, Moved and Parked come
// from the journal (one record per item), InFlight and Remaining from
// legacy now. Pushed is what producers added since (legacy keeps no count
// of it, so it is what the equation leaves); a negative Pushed means items
// left the list that redisplit did not take (consumers still popping on
// legacy). Every item redisplit took is accounted for exactly once:
// Taken = Moved + Parked + Open, the Open ones must all be in the in-flight
// list, and the parked ones in the parked list.
type ListCheck struct {
	keyname.JSON
	Kind      string   `json:"kind"`
	List      string   `json:"list"`
	Queue     string   `json:"queue"`
	Initial   int64    `json:"initial"`
	Pushed    int64    `json:"pushed"`
	Remaining int64    `json:"remaining"`
	InFlight  int64    `json:"in_flight"`
	Parked    int64    `json:"parked"`
	Moved     int64    `json:"moved"`
	Taken     int64    `json:"taken"`
	Open      int64    `json:"open"` // journaled, not yet acknowledged or parked
	Resent    int64    `json:"resent"`
	Conserved bool     `json:"conserved"`
	Problems  []string `json:"problems,omitempty"`
}

// QueueCheck compares what was moved into a queue with what SQS holds.
type QueueCheck struct {
	Queue  string          `json:"queue"`
	Moved  int64           `json:"moved"`  // journal, every source of the queue
	Resent int64           `json:"resent"` // re-sends that may be duplicates
	Counts sqsstore.Counts `json:"counts"`
	// Checked is "sqs" (the counts were compared) or "journal"
	// (ConsumersStarted: only the journal proves the move).
	Checked string `json:"checked"`
	// Missing: fewer messages than moved (and nothing consumed them).
	Missing int64 `json:"missing"`
	// Extra messages beyond those moved; Explained when re-sends account
	// for them (standard queues) or producers send to the queue.
	Extra     int64    `json:"extra"`
	Explained bool     `json:"explained"`
	Problems  []string `json:"problems,omitempty"`
}

// Verify checks the conservation of every list and every queue. It reads
// only: the journal, LLEN/ZCARD on legacy, GetQueueAttributes on SQS. Run
// it while the mover is stopped or idle, or the counts move under it.
func Verify(ctx context.Context, o VerifyOptions) (*VerifyResult, error) {
	o.defaults()
	if o.Settle <= 0 {
		o.Settle = 30 * time.Second
	}
	js, err := replay(o.State, o.Bucket, false)
	if err != nil {
		return nil, err
	}
	srcs, err := o.sources(ctx, false)
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{Conserved: true}
	type qacc struct {
		q             sqsstore.Queue
		moved, resent int64
	}
	var order []string
	qs := map[string]*qacc{}
	for _, s := range srcs {
		sum := js.src(s.key)
		c := ListCheck{JSON: keyname.Of(s.key), Kind: s.kindName(), List: s.list, Queue: s.queue.Name(),
			Initial: sum.initial, Parked: sum.parked, Moved: sum.moved, Resent: sum.resent, Open: sum.openCount()}
		p := o.Legacy.Pipeline()
		inflight := p.LLen(ctx, s.inflight)
		var rem, parked interface{ Result() (int64, error) }
		if s.kind == kindDelayed {
			rem, parked = p.ZCard(ctx, s.key), p.ZCard(ctx, s.parked)
		} else {
			rem, parked = p.LLen(ctx, s.key), p.LLen(ctx, s.parked)
		}
		if _, err := p.Exec(ctx); err != nil {
			return nil, o.legacyErr(err)
		}
		c.InFlight, _ = inflight.Result()
		c.Remaining, _ = rem.Result()
		parkedOnLegacy, _ := parked.Result()
		untracked := c.InFlight - c.Open // taken, crashed before the intent
		c.Taken = int64(sum.maxSeq) + max(0, untracked)
		c.Pushed = c.Remaining + c.InFlight + c.Parked + c.Moved - c.Initial
		if untracked < 0 {
			c.Problems = append(c.Problems, fmt.Sprintf("%d journaled items are neither acknowledged by SQS nor in %s: lost on legacy", -untracked, s.inflight))
		}
		if parkedOnLegacy < c.Parked {
			c.Problems = append(c.Problems, fmt.Sprintf("%s holds %d items but %d were parked: %d were taken from it", s.parked, parkedOnLegacy, c.Parked, c.Parked-parkedOnLegacy))
		} else if parkedOnLegacy > c.Parked {
			c.Problems = append(c.Problems, fmt.Sprintf("%s holds %d items but %d were parked: %d were put there by hand", s.parked, parkedOnLegacy, c.Parked, parkedOnLegacy-c.Parked))
		}
		if c.Pushed < 0 {
			c.Problems = append(c.Problems, fmt.Sprintf("%d fewer items than the %d at the start: something else took them from %q (consumers still running on legacy?)", -c.Pushed, c.Initial, s.key))
		}
		c.Conserved = len(c.Problems) == 0
		res.Conserved = res.Conserved && c.Conserved
		res.Lists = append(res.Lists, c)
		a := qs[s.queue.Name()]
		if a == nil {
			a = &qacc{q: s.queue}
			qs[s.queue.Name()] = a
			order = append(order, s.queue.Name())
		}
		a.moved += sum.moved
		a.resent += sum.resent
	}
	for _, name := range order {
		a := qs[name]
		qc := QueueCheck{Queue: name, Moved: a.moved, Resent: a.resent, Checked: "sqs"}
		deadline := time.Now().Add(o.Settle)
		for {
			qc.Counts, err = a.q.Counts(ctx)
			if err != nil {
				return nil, err
			}
			if o.ConsumersStarted || qc.Counts.Total() >= a.moved || time.Now().After(deadline) {
				break
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Second):
			}
		}
		total := qc.Counts.Total()
		switch {
		case o.ConsumersStarted:
			qc.Checked, qc.Explained = "journal", true
		default:
			qc.Missing = max(0, a.moved-total)
			qc.Extra = max(0, total-a.moved)
			qc.Explained = qc.Extra <= a.resent || o.ProducersSwitched
			if qc.Missing > 0 {
				qc.Problems = append(qc.Problems, fmt.Sprintf("SQS holds %d messages (visible %d, in flight %d, delayed %d) but %d were moved and nothing consumed them: %d missing",
					total, qc.Counts.Visible, qc.Counts.NotVisible, qc.Counts.Delayed, a.moved, qc.Missing))
			}
			if !qc.Explained {
				qc.Problems = append(qc.Problems, fmt.Sprintf("SQS holds %d messages more than the %d moved, and only %d were re-sent: something else sends to this queue (set ProducersSwitched when producers do)",
					qc.Extra, a.moved, a.resent))
			}
		}
		res.Conserved = res.Conserved && len(qc.Problems) == 0
		res.Queues = append(res.Queues, qc)
	}
	return res, nil
}
