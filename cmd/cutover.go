package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/dualwrite"
	"github.com/redisplit/redisplit/migrate"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/safety"
)

func init() {
	register(newCutoverCmd)
	register(newCompleteCmd)
}

type cutoverOptions struct {
	bucket       string
	dryRun       bool
	maxLag       time.Duration
	maxVerifyAge time.Duration
	// consumersStopped skips the check that no job framework's workers
	// are alive on legacy (the queue bucket only).
	consumersStopped bool
	// quiet: the queue bucket's lists must not have been popped on legacy
	// for this long (the running migrate's change feed saw no pop).
	quiet time.Duration
}

func newCutoverCmd(app *App) *cobra.Command {
	o := &cutoverOptions{}
	c := &cobra.Command{
		Use:   "cutover",
		Short: "Make a bucket's target authoritative, with a reverse mirror (target → legacy) for the switch window",
		Long: `cutover hands the cutover of one bucket to the running migrate --dual-write (through its control
socket in the state directory) and waits for it. It refuses (exit 4, naming the precondition and how
to meet it) unless the bucket is syncing (or verified), caught up with a lag below --max-lag, and its
last verify found parity less than --max-verify-age ago; and when no migrate --dual-write runs.

Then, in order: the intent is recorded in the state; the target's notify-keyspace-events is set (the
old value saved); a reverse mirror starts (change capture on every target master, target → legacy,
with loop suppression: a copy that would not change its destination is not written), while the
forward mirror stays on for the switch window; the control key redisplit:control on legacy says
cutover (Go applications using dualwrite/client switch by themselves); the phase cutover is recorded.
Switch the other application instances to the connection settings --dry-run prints. A key written on
both sides within the mirror's lag ends with the most recent write a mirror observed.

For the queue bucket it also refuses while consumers still work on legacy (two consumer fleets would
run the same jobs): Sidekiq processes with a recent heartbeat, asynq servers, RQ workers, clients
blocked in a blocking pop (BRPOP, BLMOVE, XREADGROUP...), and plain lists popped on legacy within
--quiet (LPOP/RPOP/LMOVE/LREM events the running migrate's change feed saw). The refusal names each
family, its workers or lists, and when a list was last popped. Stop the consumers on legacy first,
let the mirror catch up, then cut over; the consumers start on the target after, then the producers
switch. During the window the queue's lists are merged, not copied: what producers still push to
legacy is moved onto the target once. --consumers-stopped skips these checks. A queue bucket on SQS
is moved, not mirrored, and has no such check: every item leaves legacy once, by the mover or by a
worker still popping there.

--dry-run checks the preconditions through migrate and prints the ordered steps and the connection
settings the application must switch to, per client kind; it changes nothing.`,
		Example: `  redisplit cutover --bucket session --dry-run
  redisplit cutover --bucket session --yes`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error { return runCutover(c.Context(), app, o) },
	}
	f := c.Flags()
	f.StringVar(&o.bucket, "bucket", "", "the bucket to cut over: cache, session, queue, ratelimit (required)")
	f.BoolVar(&o.dryRun, "dry-run", false, "check the preconditions and print the steps and the connection settings; change nothing")
	f.DurationVar(&o.maxLag, "max-lag", migrate.DefaultMaxLag, "refuse when the bucket's catch-up lag is above this")
	f.DurationVar(&o.maxVerifyAge, "max-verify-age", migrate.DefaultMaxVerifyAge, "refuse when the last parity verify is older than this")
	f.BoolVar(&o.consumersStopped, "consumers-stopped", false, "queue bucket: the consumers on legacy are stopped; skip the checks of live workers, blocked clients and pops")
	f.DurationVar(&o.quiet, "quiet", migrate.DefaultQuiet, "queue bucket: refuse while a queue list was popped on legacy within this")
	limit(f, "max-lag", time.Millisecond, time.Hour)
	limit(f, "max-verify-age", time.Second, 7*24*time.Hour)
	limit(f, "quiet", 100*time.Millisecond, 24*time.Hour)
	return c
}

type completeOptions struct {
	bucket      string
	purge       bool
	quiet       time.Duration
	timeout     time.Duration
	purgeMaxOps int
}

func newCompleteCmd(app *App) *cobra.Command {
	o := &completeOptions{}
	c := &cobra.Command{
		Use:   "complete",
		Short: "End a bucket's switch window: stop both mirrors once no write reaches legacy; --purge-legacy frees legacy",
		Long: `complete hands the end of one bucket's switch window to the running migrate --dual-write and waits
for it. Only from cutover. It waits until no application write of the bucket has reached legacy for
--quiet (a forward copy actually written, not the echo of a reverse copy) and refuses (exit 4) when
writes keep arriving until --timeout: some instances still use legacy. Then both mirrors stop for the
bucket, the target's notify-keyspace-events is put back (legacy's too once no bucket is mirrored:
migrate then ends with exit 0), the phase is completed and the control key says so.

--purge-legacy then deletes the bucket's keys from legacy (SCAN, classified by the plan, UNLINK) in
paced batches: --purge-max-ops commands a second, pausing when legacy answers slowly; it reports
what it deleted.`,
		Example: `  redisplit complete --bucket cache --quiet 30s --purge-legacy --yes`,
		Args:    cobra.NoArgs,
		RunE:    func(c *cobra.Command, args []string) error { return runComplete(c.Context(), app, o) },
	}
	f := c.Flags()
	f.StringVar(&o.bucket, "bucket", "", "the bucket to complete: cache, session, queue, ratelimit (required)")
	f.BoolVar(&o.purge, "purge-legacy", false, "delete the bucket's keys from legacy afterwards (paced)")
	f.DurationVar(&o.quiet, "quiet", migrate.DefaultQuiet, "how long no application write may have reached legacy")
	f.DurationVar(&o.timeout, "timeout", 0, "refuse when no quiet period came within this (default 3 x --quiet + 30s)")
	f.IntVar(&o.purgeMaxOps, "purge-max-ops", 2000, "legacy commands a second for --purge-legacy")
	limit(f, "quiet", 100*time.Millisecond, 24*time.Hour)
	limit(f, "timeout", 0, 7*24*time.Hour)
	limit(f, "purge-max-ops", 10, 1_000_000)
	return c
}

// checkBucketFlag validates --bucket for a transition.
func checkBucketFlag(cfg *config.Config, b string) error {
	switch {
	case b == "":
		return config.Errorf("--bucket", "name the bucket: cache, session, queue or ratelimit")
	case !config.IsBucket(b):
		return config.Errorf("--bucket", "%q is not one of cache, session, queue, ratelimit", b)
	}
	if _, ok := cfg.Targets[b]; !ok {
		return config.Errorf("--bucket", "bucket %s has no target in the configuration (targets.%s)", b, b)
	}
	return nil
}

// notRunning is the refusal of a transition when no migrate runs.
type notRunning struct{ safety.Refusal }

// errNotRunningRefusal matches a *notRunning with errors.Is.
var errNotRunningRefusal = errors.New("not running")

func (e *notRunning) Is(target error) bool { return target == errNotRunningRefusal }
func (e *notRunning) Unwrap() error        { return &e.Refusal }

// transition hands req to the running migrate --dual-write and turns its
// answer into the command's outcome (printed, and the exit code).
func transition(ctx context.Context, app *App, stateDir string, req migrate.ControlRequest, render func(io.Writer, *migrate.ControlResponse)) error {
	resp, err := migrate.Control(ctx, stateDir, req)
	if errors.Is(err, migrate.ErrNotRunning) {
		return &notRunning{safety.Refusal{Hint: "start it first: redisplit migrate --dual-write (it runs the mirrors and performs the " + req.Op + ")",
			Reason: fmt.Sprintf("no migrate --dual-write is running for %s", stateDir)}}
	}
	if err != nil {
		return err
	}
	if app.Output == "json" {
		enc := json.NewEncoder(app.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(resp); err != nil {
			return err
		}
	} else if resp.OK && render != nil {
		render(app.Out, resp)
	}
	if resp.OK {
		return nil
	}
	msg := resp.Message
	if resp.Hint != "" {
		msg += " (" + resp.Hint + ")"
	}
	if resp.ExitCode == ExitRefused {
		msg = "refused: " + msg
	}
	return &ExitError{Code: resp.ExitCode, Err: errors.New(req.Op + " " + req.Bucket + ": " + msg)}
}

func runCutover(ctx context.Context, app *App, o *cutoverOptions) error {
	cfg, err := app.Config()
	if err != nil {
		return err
	}
	if err := checkBucketFlag(cfg, o.bucket); err != nil {
		return err
	}
	// a queue moved to SQS has one consumer fleet per item whatever runs
	// on legacy (the mover LMOVEs each item once; a legacy worker that
	// pops one first runs it, once): no consumer check there
	if o.bucket == "queue" && !o.consumersStopped && cfg.Targets["queue"].Kind != config.KindSQS {
		if err := refuseLiveConsumers(ctx, cfg); err != nil {
			return err
		}
	}
	if !o.dryRun && !app.Yes && !app.IsTerminal {
		return &config.Error{Msg: "cutover switches the application of bucket " + o.bucket + " to its target and needs confirmation, but there is no terminal to ask on: pass --yes (or run --dry-run first)"}
	}
	if !o.dryRun && !app.Yes {
		if err := confirm(app, fmt.Sprintf("Cut %s over to %s now? [y/N] ", o.bucket, describeTarget(cfg.Targets[o.bucket])), "not confirmed: nothing was changed"); err != nil {
			return err
		}
	}
	req := migrate.ControlRequest{Op: migrate.OpCutover, Bucket: o.bucket,
		Options: migrate.ControlOptions{DryRun: o.dryRun, MaxLag: o.maxLag, MaxVerifyAge: o.maxVerifyAge,
			Quiet: o.quiet, ConsumersStopped: o.consumersStopped}}
	return transition(ctx, app, cfg.StateDir, req, func(w io.Writer, r *migrate.ControlResponse) {
		fmt.Fprintln(w, r.Message)
		var d migrate.CutoverDetails
		_ = json.Unmarshal(r.Details, &d)
		if o.dryRun {
			fmt.Fprintf(w, "lag %d ms, last verify %s ago\n\nsteps, in order:\n", d.LagMs, (time.Duration(d.VerifyAgeSec) * time.Second).Round(time.Second))
			for i, s := range d.Steps {
				fmt.Fprintf(w, "  %d. %s\n", i+1, s)
			}
			fmt.Fprintln(w)
			renderSettings(w, o.bucket, cfg.Targets[o.bucket])
		}
	})
}

// refuseLiveConsumers refuses (exit 4) a queue cutover while a job
// framework's workers are alive on legacy.
func refuseLiveConsumers(ctx context.Context, cfg *config.Config) error {
	legacy, err := redisconn.Legacy(ctx, cfg.Legacy)
	if err != nil {
		return err
	}
	defer legacy.Close()
	live, err := dualwrite.LiveConsumers(ctx, legacy, time.Now())
	if err != nil {
		return redisconn.Explain(err, "legacy", legacy.Options().Addr)
	}
	return dualwrite.ConsumersRefusal("queue", live)
}

// describeTarget names a target for a prompt (no password).
func describeTarget(t config.Target) string {
	switch t.Kind {
	case config.KindCluster:
		return "cluster " + strings.Join(t.Addrs, ",")
	case config.KindSentinel:
		return "sentinel master " + t.Master
	}
	return redisconn.RedactURL(t.URL)
}

// renderSettings prints the connection settings the application must
// switch to for bucket b, per client kind.
func renderSettings(w io.Writer, b string, t config.Target) {
	fmt.Fprintf(w, "connection settings for %s after cutover:\n", b)
	fmt.Fprintln(w, "  Go applications using dualwrite/client: nothing to change (they follow the control key)")
	fmt.Fprintln(w, "  other clients: point the "+b+" connection at")
	switch t.Kind {
	case config.KindCluster:
		fmt.Fprintf(w, "    Redis Cluster, seed nodes: %s (cluster mode on in the client)\n", strings.Join(t.Addrs, ", "))
	case config.KindSentinel:
		fmt.Fprintf(w, "    Sentinel, master name %q, sentinels: %s (db %d)\n", t.Master, strings.Join(t.Sentinels, ", "), t.DB)
	default:
		fmt.Fprintf(w, "    %s\n", redisconn.RedactURL(t.URL))
	}
	if t.Username != "" || t.Password != "" || t.PasswordFile != "" {
		fmt.Fprintln(w, "    with the credentials of targets."+b+" (not printed)")
	}
}

func runComplete(ctx context.Context, app *App, o *completeOptions) error {
	cfg, err := app.Config()
	if err != nil {
		return err
	}
	if err := checkBucketFlag(cfg, o.bucket); err != nil {
		return err
	}
	if o.purge && !app.Yes && !app.IsTerminal {
		return &config.Error{Msg: "complete --purge-legacy deletes bucket " + o.bucket + "'s keys from legacy and needs confirmation, but there is no terminal to ask on: pass --yes"}
	}
	if o.purge && !app.Yes {
		if err := confirm(app, fmt.Sprintf("Delete every %s key from legacy once the window is closed? [y/N] ", o.bucket), "not confirmed: nothing was changed"); err != nil {
			return err
		}
	}
	req := migrate.ControlRequest{Op: migrate.OpComplete, Bucket: o.bucket,
		Options: migrate.ControlOptions{Quiet: o.quiet, Timeout: o.timeout, Purge: o.purge, PurgeMaxOps: o.purgeMaxOps}}
	return transition(ctx, app, cfg.StateDir, req, func(w io.Writer, r *migrate.ControlResponse) {
		fmt.Fprintln(w, r.Message)
		var d migrate.CompleteDetails
		_ = json.Unmarshal(r.Details, &d)
		fmt.Fprintf(w, "no application write reached legacy for %s (%d in the whole window)\n", d.QuietFor.Round(time.Millisecond), d.AppWrites)
		if p := d.Purge; p != nil {
			fmt.Fprintf(w, "purged legacy: %d keys deleted of %d scanned, in %d batches, %d back-offs, %s\n",
				p.Deleted, p.Scanned, p.Batches, p.BackOffs, p.Elapsed.Round(time.Millisecond))
		}
	})
}
