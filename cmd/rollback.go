package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/keyname"
	"github.com/redisplit/redisplit/migrate"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/rollback"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
)

type rollbackOptions struct {
	buckets []string
	dryRun  bool
}

func init() { register(newRollbackCmd) }

func newRollbackCmd(app *App) *cobra.Command {
	o := &rollbackOptions{}
	c := &cobra.Command{
		Use:   "rollback",
		Short: "Undo a migration: delete exactly the keys redisplit wrote to the targets (after cutover: legacy first gets every write back)",
		Long: `rollback deletes from each target exactly the keys redisplit wrote there (the bucket's journal in
the state directory) and nothing else: keys a target held before the migration survive, and legacy's
data is not touched. Like migrate, it holds the lease lock (redisplit:lock on legacy) for its whole
run, so no migration can start meanwhile. Deletes are retried on transient errors and, on a Sentinel
target, acknowledged by the replica (WAIT) before a bucket counts as rolled back. Each bucket is then
marked rolled-back and its journal and checkpoint are removed, so that a later migrate starts clean.

After cutover (phase cutover) legacy becomes authoritative again first: with migrate --dual-write
running, rollback hands the bucket to it (control socket): it writes rolled-back into the control key,
drains its reverse mirror (a marker written on the target comes back through the reverse feed with
every change before it applied to legacy), stops both mirrors and deletes the journaled keys. Without
a running migrate, rollback does the same itself under the lease: control key, then a reverse sync
(every key of the bucket on the target copied to legacy where it differs, the bucket's legacy keys
the target no longer has deleted), then the deletion. Legacy then holds every write made on the
target since cutover, and the target what it held before the migration.

A queue bucket on SQS has its items moved back onto its legacy lists in their original order
(receive, stage on legacy, delete from SQS once legacy acknowledged); items consumers took from SQS
are reported as consumed, not lost. Stop migrate --dual-write and the consumers on SQS first.

It refuses (exit 4) while another redisplit command holds the lease, when the plan (--plan, or the
config's rules) differs from the one the migration recorded, and a completed bucket. It
asks for confirmation on a terminal; without one, --yes is required. --dry-run deletes nothing and
writes nothing (not even the lease): it prints per bucket how many keys would be deleted, how many
are on the target now and a sample, and with --output json streams the full list.

  redisplit rollback --dry-run
  redisplit rollback --bucket session --yes
  redisplit rollback --dry-run -o json > would-delete.json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error { return runRollback(c.Context(), app, o) },
	}
	f := c.Flags()
	f.StringSliceVar(&o.buckets, "bucket", nil, "roll back only this bucket (repeatable): cache, session, queue, ratelimit")
	f.BoolVar(&o.dryRun, "dry-run", false, "delete nothing; list what would be deleted")
	return c
}

func runRollback(ctx context.Context, app *App, o *rollbackOptions) error {
	if !o.dryRun && !app.Yes && !app.IsTerminal {
		return &config.Error{Msg: "rollback deletes keys from the targets and needs confirmation, but there is no terminal to ask on: pass --yes (or run --dry-run first to see what it would delete)"}
	}
	cfg, err := app.Config()
	if err != nil {
		return err
	}
	_, planHash, err := classify.Router(cfg)
	if err != nil {
		return err
	}
	sd, err := openState(cfg.StateDir, o.dryRun)
	if err != nil {
		return err
	}
	st, err := sd.Load()
	if err != nil {
		return err
	}
	buckets, err := rollbackBuckets(cfg, sd, st, o.buckets)
	if err != nil {
		return err
	}
	queues := rollbackQueueBuckets(cfg, sd, o.buckets) // moved back from SQS (rollback_queue.go)
	if len(buckets) == 0 && len(queues) == 0 {
		fmt.Fprintf(app.Err, "rollback: state %s records nothing written to any target: nothing to roll back\n", sd.Path())
		return nil
	}
	// refuse before contacting anything; rollback.Run checks again under the lease
	if err := st.CheckPlan(planHash); err != nil {
		return err
	}
	if err := rollback.Check(st, buckets, true); err != nil {
		return err
	}
	// after cutover, a running migrate --dual-write rolls back: it holds
	// the lease and drains its own reverse mirror
	if !o.dryRun {
		var rest []string
		for _, b := range buckets {
			if sb := st.Buckets[b]; sb == nil || sb.Phase != state.Cutover {
				rest = append(rest, b)
				continue
			}
			err := transition(ctx, app, sd.Path(), migrate.ControlRequest{Op: migrate.OpRollback, Bucket: b}, func(w io.Writer, r *migrate.ControlResponse) {
				fmt.Fprintln(w, r.Message)
				var d migrate.RollbackDetails
				_ = json.Unmarshal(r.Details, &d)
				if d.Rollback != nil {
					fmt.Fprintf(w, "  reverse copies to legacy in the window: %d; deleted from the target: %d keys (%d journal entries)\n", d.ReverseCopies, d.Rollback.Deleted, d.Rollback.Entries)
				}
			})
			switch {
			case errors.Is(err, errNotRunningRefusal):
				rest = append(rest, b) // offline: rollback.Run drains the reverse direction itself
			case err != nil:
				return err
			}
		}
		if len(rest) == 0 && len(queues) == 0 {
			return nil
		}
		buckets = rest // the queue buckets on SQS are moved back below
	}
	legacy, err := redisconn.Legacy(ctx, cfg.Legacy)
	if err != nil {
		return err
	}
	defer legacy.Close()
	targets, err := store.OpenSet(ctx, buckets, cfg.Targets)
	if err != nil {
		return err
	}
	defer targets.Close()
	opts := rollback.Options{State: sd, Legacy: legacy, PlanHash: planHash, Targets: targets, DryRun: o.dryRun}
	opts.Reverse = func(ctx context.Context, b string) error {
		sink, err := store.Open(ctx, b, config.Target{Kind: config.KindStandalone, Endpoint: cfg.Legacy})
		if err != nil {
			return err
		}
		defer sink.Close()
		cl, _, err := classify.Router(cfg)
		if err != nil {
			return err
		}
		r, err := rollback.ReverseSync(ctx, rollback.ReverseOptions{State: sd, Bucket: b, Target: targets[b], Legacy: legacy, Sink: sink,
			Belongs: migrate.Belongs(cl, cfg.Unknown, b)})
		if err == nil {
			fmt.Fprintf(app.Err, "rollback: %s was cut over and no migrate --dual-write runs: synced target → legacy first (%d keys copied or deleted on legacy, %d already equal)\n", b, r.Copied, r.Suppressed)
		}
		return err
	}
	opts.Confirm = func(r *rollback.Result) error {
		if r.LeaseTakeover != nil {
			fmt.Fprintf(app.Err, "rollback: %s\n", r.LeaseTakeover)
		}
		if app.Yes {
			return nil
		}
		return confirmRollback(app, sd, buckets, targets)
	}
	var stream *keyStream
	if o.dryRun && app.Output == "json" {
		stream = &keyStream{w: app.Out}
		opts.Visit = stream.add
		fmt.Fprint(app.Out, "{\"dry_run\": true, \"keys\": [")
	}
	prog := app.NewProgress("rollback", 0)
	opts.Progress = prog.Set
	res := &rollback.Result{DryRun: o.dryRun}
	if len(buckets) > 0 {
		res, err = rollback.Run(ctx, opts, buckets)
	}
	prog.Finish()
	var qres []*rollback.QueueResult
	if err == nil {
		qres, err = rollbackQueues(ctx, app, cfg, sd, legacy, queues, planHash, o.dryRun)
	}
	if err != nil {
		if stream != nil {
			fmt.Fprintln(app.Out, "]}")
		}
		return err
	}
	switch {
	case stream != nil:
		b, err := json.Marshal(res.Buckets)
		if err != nil {
			return err
		}
		q, err := json.Marshal(qres)
		if err != nil {
			return err
		}
		fmt.Fprintf(app.Out, "\n], \"buckets\": %s, \"queues\": %s}\n", b, q)
	case app.Output == "json":
		enc := json.NewEncoder(app.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			*rollback.Result
			Queues []*rollback.QueueResult `json:"queues,omitempty"`
		}{res, qres}); err != nil {
			return err
		}
	default:
		if len(buckets) > 0 {
			renderRollback(app.Out, res)
		}
		renderQueueRollback(app.Out, qres)
	}
	return queueRollbackIncomplete(qres)
}

// rollbackBuckets returns the buckets to roll back: the requested ones, or
// every configured bucket the state knows or that has a journal.
func rollbackBuckets(cfg *config.Config, sd *state.Dir, st *state.State, want []string) ([]string, error) {
	for _, b := range want {
		if !config.IsBucket(b) {
			return nil, config.Errorf("--bucket", "%q is not one of cache, session, queue, ratelimit", b)
		}
		if _, ok := cfg.Targets[b]; !ok {
			return nil, config.Errorf("--bucket", "bucket %s has no target in the configuration (targets.%s): rollback needs it to delete what was written there", b, b)
		}
	}
	var out []string
	for _, b := range config.Buckets {
		t, ok := cfg.Targets[b]
		if !ok || (len(want) > 0 && !contains(want, b)) {
			continue
		}
		_, known := st.Buckets[b]
		_, jerr := os.Stat(sd.JournalPath(b))
		if len(want) == 0 && !known && jerr != nil {
			continue
		}
		if t.Kind == config.KindSQS { // items moved back from SQS: rollbackQueues
			continue
		}
		out = append(out, b)
	}
	return out, nil
}

func confirmRollback(app *App, sd *state.Dir, buckets []string, targets map[string]*store.Redis) error {
	fmt.Fprintln(app.Err, "rollback will delete from the targets every key redisplit wrote there:")
	for _, b := range buckets {
		var n int64
		if err := sd.ReadJournal(b, func(string) error { n++; return nil }); err != nil {
			return err
		}
		fmt.Fprintf(app.Err, "  %-10s %d journal entries on %s\n", b, n, targets[b].Describe())
	}
	return confirm(app, "Delete them now? [y/N] ", "rollback not confirmed: nothing was deleted")
}

// keyStream writes the dry run's keys as JSON array elements as they come.
type keyStream struct {
	w io.Writer
	n int64
}

func (s *keyStream) add(bucket, key string) error {
	b, err := json.Marshal(struct {
		Bucket string `json:"bucket"`
		keyname.JSON
	}{bucket, keyname.Of(key)})
	if err != nil {
		return err
	}
	sep := ",\n  "
	if s.n == 0 {
		sep = "\n  "
	}
	s.n++
	_, err = fmt.Fprintf(s.w, "%s%s", sep, b)
	return err
}

func renderRollback(w io.Writer, r *rollback.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if r.DryRun {
		fmt.Fprintln(tw, "BUCKET\tTARGET\tPHASE\tJOURNAL ENTRIES\tKEYS TO DELETE\tON TARGET NOW\tSKIPPED (REFUSED)")
	} else {
		fmt.Fprintln(tw, "BUCKET\tTARGET\tPHASE BEFORE\tJOURNAL ENTRIES\tDELETED\tSKIPPED (REFUSED)")
	}
	for _, b := range r.Buckets {
		if r.DryRun {
			keys := fmt.Sprint(b.Keys)
			if b.DedupeOverflow {
				keys = "≤" + keys
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%d\n", b.Bucket, b.Target, b.Phase, b.Entries, keys, b.Present, b.Skipped)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", b.Bucket, b.Target, b.Phase, b.Entries, b.Deleted, b.Skipped)
		}
	}
	tw.Flush()
	for _, b := range r.Buckets {
		if len(b.Sample) == 0 {
			continue
		}
		q := make([]string, len(b.Sample))
		for i, k := range b.Sample {
			q[i] = printableKey(k)
		}
		fmt.Fprintf(w, "  %s, e.g.: %s\n", b.Bucket, strings.Join(q, " "))
	}
	if r.DryRun {
		fmt.Fprintln(w, "\ndry run: nothing was deleted (--output json lists every key)")
	} else {
		fmt.Fprintln(w, "\nrolled back: the buckets above are marked rolled-back and their journals removed; legacy's data was not touched")
	}
}
