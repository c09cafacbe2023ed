package rollback

import (
	"context"
	"time"

	"github.com/redisplit/redisplit/lease"
	"github.com/redisplit/redisplit/queuemove"
	"github.com/redisplit/redisplit/state"
)

// QueueOptions configure Queue: the rollback of a queue bucket moved to SQS.
type QueueOptions struct {
	// Config is the bucket's move (its lists: those its queue journal
	// records, queuemove.Lists).
	queuemove.Config
	Target   string // the SQS target, for the result
	PlanHash string
	// DryRun moves nothing and takes no lease: it reports what would come
	// back (queuemove.Verify's figures).
	DryRun   bool
	LeaseTTL time.Duration // default lease.DefaultTTL
	// Wait, Visibility and MaxWait: queuemove.RollbackOptions's.
	Wait, Visibility, MaxWait time.Duration
	// Confirm is called under the lease before anything moves; an error
	// aborts with that error.
	Confirm func() error
}

// QueueResult is the rollback of one queue bucket.
type QueueResult struct {
	Bucket string      `json:"bucket"`
	Target string      `json:"target"`
	Phase  state.Phase `json:"phase_before,omitempty"`
	DryRun bool        `json:"dry_run"`
	// Rollback is what came back (nil in a dry run). When it is Complete
	// the bucket is marked rolled-back and its queue journal removed.
	Rollback *queuemove.RollbackResult `json:"rollback,omitempty"`
	// Would is a dry run's view: per source, what is in flight and parked
	// on legacy and moved; per queue, what SQS holds (it would come back).
	Would *queuemove.VerifyResult `json:"would,omitempty"`
	// LeaseTakeover is set when the lease was taken over from a dead
	// redisplit process on this host.
	LeaseTakeover *lease.Takeover `json:"lease_takeover,omitempty"`
}

// Queue moves every item of a queue bucket back from SQS onto its legacy
// lists, in their original order (queuemove.Rollback), holding the lease
// for the whole run. Like Run it refuses (a *safety.Refusal, nothing moved)
// while another process holds the lease (a migrate --dual-write still
// moving the bucket: stop it first), when the plan differs from the
// migration's and when the bucket is past cutover. Items consumers took
// from SQS are reported as consumed, not lost. Only a complete rollback
// (every queue emptied, every item pushed back) marks the bucket
// rolled-back and resets it (state.Dir.ResetBucket); otherwise a rerun
// finishes the job.
func Queue(ctx context.Context, o QueueOptions) (*QueueResult, error) {
	res := &QueueResult{Bucket: o.Bucket, Target: o.Target, DryRun: o.DryRun}
	return underLease(ctx, o.Legacy, o.State, o.LeaseTTL, o.DryRun, func(ctx context.Context, takeover *lease.Takeover) (*QueueResult, error) {
		res.LeaseTakeover = takeover
		return queue(ctx, o, res)
	})
}

func queue(ctx context.Context, o QueueOptions, res *QueueResult) (*QueueResult, error) {
	st, err := o.State.Load()
	if err != nil {
		return nil, err
	}
	if err := st.CheckPlan(o.PlanHash); err != nil {
		return nil, err
	}
	if err := Check(st, []string{o.Bucket}, false); err != nil { // no reverse mirror for SQS: a queue bucket past cutover is refused
		return nil, err
	}
	if sb := st.Buckets[o.Bucket]; sb != nil {
		res.Phase = sb.Phase
	}
	if o.DryRun {
		if res.Would, err = queuemove.Verify(ctx, queuemove.VerifyOptions{Config: o.Config, ConsumersStarted: true}); err != nil {
			return nil, err
		}
		return res, nil
	}
	if o.Confirm != nil {
		if err := o.Confirm(); err != nil {
			return nil, err
		}
	}
	r, err := queuemove.Rollback(ctx, queuemove.RollbackOptions{Config: o.Config, Wait: o.Wait, Visibility: o.Visibility, MaxWait: o.MaxWait})
	if err != nil {
		return nil, err
	}
	res.Rollback = r
	if !r.Complete {
		return res, nil
	}
	return res, finish(o.State, o.Bucket)
}
