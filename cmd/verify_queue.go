package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/queuemove"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store/sqsstore"
)

// sqsBuckets returns the buckets among want (every configured one when
// want is empty) whose target is kind: sqs: verify checks their
// conservation, rollback moves their items back.
func sqsBuckets(cfg *config.Config, want []string) []string {
	var out []string
	for _, b := range config.Buckets {
		if t, ok := cfg.Targets[b]; ok && t.Kind == config.KindSQS && (len(want) == 0 || contains(want, b)) {
			out = append(out, b)
		}
	}
	return out
}

// queueConfig is the queuemove.Config of SQS bucket b: its lists are those
// its queue journal records (a list emptied by the move is gone from
// legacy), its SQS client is the target's (credentials from the AWS
// default chain).
func queueConfig(ctx context.Context, cfg *config.Config, sd *state.Dir, legacy *redis.Client, b string) (queuemove.Config, error) {
	t := cfg.Targets[b]
	svc, err := sqsstore.New(ctx, sqsstore.FromConfig(t.SQS))
	if err != nil {
		return queuemove.Config{}, fmt.Errorf("bucket %s (%s): %w", b, t.SQS.Describe(), err)
	}
	lists, err := queuemove.Lists(sd, b)
	if err != nil {
		return queuemove.Config{}, err
	}
	return queuemove.Config{Bucket: b, Legacy: legacy, SQS: svc, Target: t.SQS, Lists: lists, State: sd}, nil
}

// queueVerify is the conservation check of one SQS bucket, in verify's
// report beside the parity of the other buckets.
type queueVerify struct {
	Bucket string `json:"bucket"`
	Target string `json:"target"`
	// Note says why nothing could be checked (nothing moved yet).
	Note string `json:"note,omitempty"`
	*queuemove.VerifyResult
}

// verifyQueues checks the conservation of every SQS bucket of buckets
// (reads only: the journal, LLEN/ZCARD on legacy, GetQueueAttributes).
func verifyQueues(ctx context.Context, cfg *config.Config, sd *state.Dir, legacy *redis.Client, buckets []string, o *verifyOptions) ([]queueVerify, error) {
	var out []queueVerify
	for _, b := range buckets {
		qc, err := queueConfig(ctx, cfg, sd, legacy, b)
		if err != nil {
			return nil, err
		}
		if len(qc.Lists) == 0 {
			out = append(out, queueVerify{Bucket: b, Target: cfg.Targets[b].SQS.Describe(), VerifyResult: &queuemove.VerifyResult{},
				Note: "nothing was moved yet (no queue journal in " + sd.Path() + "): run migrate first"})
			continue
		}
		r, err := queuemove.Verify(ctx, queuemove.VerifyOptions{Config: qc, ConsumersStarted: o.consumersStarted,
			ProducersSwitched: o.producersSwitched, Settle: o.queueSettle})
		if err != nil {
			return nil, fmt.Errorf("verify bucket %s (%s): %w", b, cfg.Targets[b].SQS.Describe(), err)
		}
		out = append(out, queueVerify{Bucket: b, Target: cfg.Targets[b].SQS.Describe(), VerifyResult: r})
	}
	return out, nil
}

// recordQueueVerify applies verifiedPhase to the SQS buckets: proven when
// conservation holds and nothing remains on legacy or in flight (the whole
// queue is in SQS).
func recordQueueVerify(sd *state.Dir, qs []queueVerify) error {
	if len(qs) == 0 {
		return nil
	}
	return sd.Update(func(s *state.State) error {
		for _, q := range qs {
			sb := s.Buckets[q.Bucket]
			if sb == nil || q.Note != "" {
				continue
			}
			empty := true
			for _, l := range q.Lists {
				empty = empty && l.Remaining == 0 && l.InFlight == 0
			}
			verifiedPhase(sb, q.Conserved && empty, q.Conserved)
		}
		return nil
	})
}

// queuesConserved reports whether every queue bucket's conservation holds.
func queuesConserved(qs []queueVerify) bool {
	for _, q := range qs {
		if !q.Conserved {
			return false
		}
	}
	return true
}

// runVerifyQueues is verify when every bucket to verify goes to SQS: no
// key-level parity, conservation only. Exit 0 when it holds, 3 otherwise.
func runVerifyQueues(ctx context.Context, app *App, cfg *config.Config, sd *state.Dir, buckets []string, o *verifyOptions) error {
	legacy, err := redisconn.Legacy(ctx, cfg.Legacy)
	if err != nil {
		return err
	}
	defer legacy.Close()
	qs, err := verifyQueues(ctx, cfg, sd, legacy, buckets, o)
	if err != nil {
		return err
	}
	if err := recordQueueVerify(sd, qs); err != nil {
		return err
	}
	if app.Output == "json" {
		enc := json.NewEncoder(app.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			OK     bool          `json:"ok"`
			Queues []queueVerify `json:"queues"`
		}{queuesConserved(qs), qs}); err != nil {
			return err
		}
	} else {
		renderQueueVerify(app.Out, qs)
		if queuesConserved(qs) {
			fmt.Fprintln(app.Out, "\nresult: CONSERVED")
		} else {
			fmt.Fprintln(app.Out, "\nresult: NOT CONSERVED (exit 3)")
		}
	}
	return queueVerifyExit(qs)
}

// queueVerifyExit is exit 3 when a queue bucket's conservation fails.
func queueVerifyExit(qs []queueVerify) error {
	if queuesConserved(qs) {
		return nil
	}
	return &ExitError{Code: ExitDifferences, Silent: true}
}

// renderQueueVerify writes the conservation part of verify's text report.
func renderQueueVerify(w io.Writer, qs []queueVerify) {
	for _, q := range qs {
		if q.Note != "" {
			fmt.Fprintf(w, "\n%s on %s: NOT CONSERVED (exit 3): %s\n", q.Bucket, q.Target, q.Note)
			continue
		}
		fmt.Fprintf(w, "\n%s on %s: conservation (initial + pushed = remaining + in flight + parked + moved, per source):\n", q.Bucket, q.Target)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SOURCE\tQUEUE\tINITIAL\tPUSHED\tREMAINING\tIN FLIGHT\tPARKED\tMOVED\tRESENT\tRESULT")
		for _, l := range q.Lists {
			res := "conserved"
			if !l.Conserved {
				res = "NOT CONSERVED"
			}
			src := l.String()
			if l.Kind == "delayed" {
				src += " (delayed)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", src, l.Queue, l.Initial, l.Pushed, l.Remaining, l.InFlight, l.Parked, l.Moved, l.Resent, res)
		}
		tw.Flush()
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "QUEUE\tMOVED\tIN SQS (visible/in flight/delayed)\tMISSING\tEXTRA\tCHECKED\tRESULT")
		for _, c := range q.Queues {
			res := "ok"
			switch {
			case len(c.Problems) > 0:
				res = "NOT CONSERVED"
			case c.Extra > 0 && c.Resent > 0:
				res = fmt.Sprintf("ok (%d extra: re-sent duplicates)", c.Extra)
			case c.Extra > 0:
				res = fmt.Sprintf("ok (%d extra: producers send to SQS)", c.Extra)
			}
			inSQS := fmt.Sprintf("%d (%d/%d/%d)", c.Counts.Total(), c.Counts.Visible, c.Counts.NotVisible, c.Counts.Delayed)
			if c.Checked == "journal" {
				inSQS = "- (consumers started: the journal is the evidence)"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\n", c.Queue, c.Moved, inSQS, c.Missing, c.Extra, c.Checked, res)
		}
		tw.Flush()
		for _, l := range q.Lists {
			for _, p := range l.Problems {
				fmt.Fprintf(w, "  %s: %s\n", l.String(), p)
			}
		}
		for _, c := range q.Queues {
			for _, p := range c.Problems {
				fmt.Fprintf(w, "  queue %s: %s\n", c.Queue, p)
			}
		}
		if q.Conserved {
			fmt.Fprintf(w, "%s: CONSERVED\n", q.Bucket)
		} else {
			fmt.Fprintf(w, "%s: NOT CONSERVED (exit 3)\n", q.Bucket)
		}
	}
}

// queueFlags adds verify's flags for queue buckets on SQS.
func (o *verifyOptions) queueFlags(f *pflag.FlagSet) {
	f.BoolVar(&o.consumersStarted, "consumers-started", false, "queue buckets on SQS: consumers take messages from SQS, so only the journal proves what was moved (not SQS's counts)")
	f.BoolVar(&o.producersSwitched, "producers-switched", false, "queue buckets on SQS: producers send to SQS directly, so a queue may hold more than was moved")
	f.DurationVar(&o.queueSettle, "queue-settle", 30*time.Second, "queue buckets on SQS: how long to wait for SQS's approximate counts to reach what was moved")
}
