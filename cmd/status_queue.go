package cmd

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/queuemove"
	"github.com/redisplit/redisplit/state"
)

// queueStatuses returns the latest figures of every bucket moved to SQS,
// as the mover last saved them (queuemove.ReadStatus; about every second
// while it runs, and when it stops), by bucket. It reads files only.
func queueStatuses(sd *state.Dir) (map[string]*queuemove.Snapshot, error) {
	out := map[string]*queuemove.Snapshot{}
	for _, b := range config.Buckets {
		s, ok, err := queuemove.ReadStatus(sd, b)
		if err != nil {
			return nil, err
		}
		if ok {
			out[b] = s
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// renderQueueStatus writes, per queue, what was moved, what is in flight,
// parked and remaining on legacy, and the rate.
func renderQueueStatus(w io.Writer, qs map[string]*queuemove.Snapshot, now time.Time) {
	for _, b := range sortedBuckets(qs) {
		s := qs[b]
		fmt.Fprintf(w, "%s moved to SQS (figures of %s, %s old):\n", b, s.At.Format(time.RFC3339), now.Sub(s.At).Round(100*time.Millisecond))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SOURCE\tQUEUE\tMOVED\tIN FLIGHT\tPARKED\tREMAINING ON LEGACY\tRESENT\tRATE\tSQS")
		for _, q := range s.Queues {
			src := q.String()
			if q.Kind == "delayed" {
				src += " (delayed)"
			}
			sqs := "ok"
			if q.Waiting {
				sqs = "FAILING since " + q.WaitingSince.Format("15:04:05") + ": " + q.LastError
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.0f/s\t%s\n", src, q.Queue, q.Moved, q.InFlight, q.Parked, q.Remaining, q.Resent, q.Rate, sqs)
		}
		tw.Flush()
		for _, q := range s.Queues {
			if q.Later > 0 {
				fmt.Fprintf(w, "  %s: %d delayed jobs due after %s (next %s) wait in the set\n", q.String(), q.Later, queuemove.MaxDelay, q.NextDue.Format(time.RFC3339))
			}
		}
	}
}
