package cmd

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/redisplit/redisplit/migrate"
	"github.com/redisplit/redisplit/queuemove"
)

// queueNotes turns the mover's snapshots into lines an operator must see:
// a queue starts waiting because SQS fails, and answers again.
type queueNotes struct {
	waiting map[string]time.Time // queue → since
}

func (n *queueNotes) update(s queuemove.Snapshot, note func(string)) {
	if n.waiting == nil {
		n.waiting = map[string]time.Time{}
	}
	now := map[string]queuemove.QueueStatus{}
	for _, q := range s.Queues {
		if q.Waiting {
			now[q.Queue] = q
		}
	}
	for _, q := range s.Queues {
		if !q.Waiting {
			continue
		}
		if _, ok := n.waiting[q.Queue]; ok {
			continue
		}
		since := q.WaitingSince
		if since.IsZero() {
			since = s.At
		}
		n.waiting[q.Queue] = since
		note(fmt.Sprintf("%s WARNING %s: SQS queue %s is failing (%s); list %s waits with back-off and resumes, its items stay on legacy",
			since.Local().Format("15:04:05"), s.Bucket, q.Queue, q.LastError, q.String()))
	}
	for name, since := range n.waiting {
		if _, ok := now[name]; ok {
			continue
		}
		note(fmt.Sprintf("%s %s: SQS queue %s answers again; the move resumed after %s", s.At.Local().Format("15:04:05"), s.Bucket, name,
			s.At.Sub(since).Round(100*time.Millisecond)))
		delete(n.waiting, name)
	}
}

// renderQueueMove writes the queue bucket's part of migrate's summary.
func renderQueueMove(w io.Writer, q *migrate.QueueMove, dryRun bool) {
	if q == nil {
		return
	}
	kind := "standard"
	if q.FIFO {
		kind = "FIFO"
	}
	if dryRun {
		fmt.Fprintf(w, "\n%s: would move %d items of %d lists to %s queues on %s:\n", q.Bucket, q.Items(), len(q.Lists), kind, q.Endpoint)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "LIST\tQUEUE\tITEMS\tDELAYED")
		for _, l := range q.Lists {
			queue := l.Queue
			if l.Create {
				queue += " (created: create_queues)"
			}
			delayed := "-"
			if l.DelayedSet != "" {
				delayed = fmt.Sprintf("%d in %s", l.Delayed, l.DelayedSet)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", l.String(), queue, l.Items, delayed)
		}
		tw.Flush()
		return
	}
	fmt.Fprintf(w, "\n%s moved to %s queues on %s (the whole move; items):\n", q.Bucket, kind, q.Endpoint)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tQUEUE\tMOVED\tPARKED\tIN FLIGHT\tREMAINING\tRESENT\tTHIS RUN")
	for _, x := range q.Queues {
		src := x.String()
		if x.Kind == "delayed" {
			src += " (delayed)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", src, x.Queue, x.Moved, x.Parked, x.InFlight, x.Remaining, x.Resent, x.MovedRun)
	}
	tw.Flush()
	fmt.Fprintf(w, "%s: moved %d, parked %d, in flight %d, remaining on legacy %d, duplicates %d", q.Bucket, q.Moved, q.Parked, q.InFlight, q.Remaining, q.Duplicates)
	switch {
	case q.FIFO && q.Resent > 0:
		fmt.Fprintf(w, " (%d re-sent, dropped by SQS's deduplication)", q.Resent)
	case q.Duplicates > 0:
		fmt.Fprint(w, " (re-sent after a crash or an unanswered send: the standard queue may hold them twice)")
	}
	fmt.Fprintln(w)
	for _, x := range q.Queues {
		for _, p := range x.ParkedSample {
			fmt.Fprintf(w, "  parked from %s: %s (%d bytes): %s\n", x.String(), p.Item, p.Bytes, p.Reason)
		}
		if x.Later > 0 {
			fmt.Fprintf(w, "  %s: %d delayed jobs are due after %s (next %s): they stay in the set until then\n", x.String(), x.Later,
				queuemove.MaxDelay, x.NextDue.Local().Format(time.RFC3339))
		}
		if x.Anomalies > 0 {
			fmt.Fprintf(w, "  WARNING %s: %d journaled items were not found in flight (redisplit's keys changed by hand?); verify reports them\n", x.String(), x.Anomalies)
		}
	}
	if q.Parked > 0 {
		fmt.Fprintf(w, "  %d items SQS cannot take stay on legacy in redisplit:parked:<list>; nothing was dropped\n", q.Parked)
	}
	if q.Waits > 0 {
		fmt.Fprintf(w, "  SQS failed %d times; the lists waited %s in all and resumed\n", q.Waits, q.Waited.Round(time.Millisecond))
	}
}
