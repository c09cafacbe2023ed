package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/rollback"
	"github.com/redisplit/redisplit/state"
)

// rollbackQueueBuckets returns the SQS buckets among want (or every
// configured one) that have something to move back: a queue journal.
func rollbackQueueBuckets(cfg *config.Config, sd *state.Dir, want []string) []string {
	var out []string
	for _, b := range sqsBuckets(cfg, want) {
		if _, err := os.Stat(sd.QueueJournalPath(b)); err == nil || len(want) > 0 {
			out = append(out, b)
		}
	}
	return out
}

// rollbackQueues moves the items of every SQS bucket of buckets back onto
// their legacy lists (rollback.Queue), one bucket after the other.
func rollbackQueues(ctx context.Context, app *App, cfg *config.Config, sd *state.Dir, legacy *redis.Client, buckets []string, planHash string, dryRun bool) ([]*rollback.QueueResult, error) {
	var out []*rollback.QueueResult
	for _, b := range buckets {
		qc, err := queueConfig(ctx, cfg, sd, legacy, b)
		if err != nil {
			return nil, err
		}
		target := cfg.Targets[b].SQS.Describe()
		if len(qc.Lists) == 0 {
			fmt.Fprintf(app.Err, "rollback: bucket %s (%s): nothing was moved (no queue journal in %s): nothing to move back\n", b, target, sd.Path())
			continue
		}
		o := rollback.QueueOptions{Config: qc, Target: target, PlanHash: planHash, DryRun: dryRun}
		if !app.Yes {
			o.Confirm = func() error { return confirmQueueRollback(app, b, target, qc.Lists) }
		}
		r, err := rollback.Queue(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("rollback bucket %s (%s): %w", b, target, err)
		}
		if r.LeaseTakeover != nil {
			fmt.Fprintf(app.Err, "rollback: %s\n", r.LeaseTakeover)
		}
		out = append(out, r)
	}
	return out, nil
}

func confirmQueueRollback(app *App, bucket, target string, lists []string) error {
	fmt.Fprintf(app.Err, "rollback will move every item of bucket %s back from %s onto its legacy lists (%s), in their original order.\n",
		bucket, target, strings.Join(lists, ", "))
	return confirm(app, "Stop the consumers on SQS first: what they take meanwhile runs there. Move them back now? [y/N] ",
		"rollback not confirmed: nothing was moved back")
}

// queueRollbackIncomplete is exit 1 when a queue could not be emptied
// (messages SQS still held when rollback stopped waiting).
func queueRollbackIncomplete(qs []*rollback.QueueResult) error {
	for _, q := range qs {
		if q.Rollback != nil && !q.Rollback.Complete {
			return &ExitError{Code: ExitRuntime, Err: fmt.Errorf("rollback bucket %s (%s): SQS still holds messages (delayed, or received by a consumer and not deleted): rerun rollback to move them back", q.Bucket, q.Target)}
		}
	}
	return nil
}

// renderQueueRollback writes the queue buckets' part of rollback's report.
func renderQueueRollback(w io.Writer, qs []*rollback.QueueResult) {
	for _, q := range qs {
		if q.DryRun {
			fmt.Fprintf(w, "\n%s on %s (phase %s): would move back onto the legacy lists:\n", q.Bucket, q.Target, orDash(string(q.Phase)))
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SOURCE\tQUEUE\tMOVED\tIN FLIGHT\tPARKED")
			for _, l := range q.Would.Lists {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", l.String(), l.Queue, l.Moved, l.InFlight, l.Parked)
			}
			tw.Flush()
			for _, c := range q.Would.Queues {
				fmt.Fprintf(w, "  queue %s holds %d messages now (visible %d, in flight %d, delayed %d): they come back; moved ones no longer there were consumed\n",
					c.Queue, c.Counts.Total(), c.Counts.Visible, c.Counts.NotVisible, c.Counts.Delayed)
			}
			continue
		}
		r := q.Rollback
		fmt.Fprintf(w, "\n%s on %s (phase before %s): items moved back onto the legacy lists, in their original order:\n", q.Bucket, q.Target, orDash(string(q.Phase)))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "LIST\tQUEUE\tFROM SQS\tFROM IN FLIGHT\tFROM PARKED\tFOREIGN\tDELAYED\tPUSHED\tCONSUMED\tDUPLICATES\tLEFT IN SQS")
		for _, l := range r.Lists {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", l.String(), l.Queue, l.FromSQS, l.FromInFlight, l.FromParked,
				l.Foreign, l.Delayed, l.Pushed, l.Consumed, l.Duplicates, l.LeftInSQS.Total())
		}
		tw.Flush()
		fmt.Fprintln(w, "(CONSUMED: moved to SQS and taken from it by a consumer: they ran there, they are not lost)")
		if r.Complete {
			fmt.Fprintf(w, "rolled back: bucket %s is marked rolled-back and its queue journal removed\n", q.Bucket)
		} else {
			fmt.Fprintf(w, "INCOMPLETE: SQS still holds messages of bucket %s; rerun rollback\n", q.Bucket)
		}
	}
}
