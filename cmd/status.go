package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/migrate"
	"github.com/redisplit/redisplit/queuemove"
	"github.com/redisplit/redisplit/state"
)

func init() { register(newStatusCmd) }

type statusOptions struct {
	waitCaughtUp bool
	timeout      time.Duration
}

func newStatusCmd(app *App) *cobra.Command {
	var o statusOptions
	c := &cobra.Command{
		Use:   "status",
		Short: "Show the migration state: phase, counts and checkpoint age per bucket, last verify",
		Long: `Status reads the state directory (--state-dir, default .redisplit) and shows, per bucket, the
phase (and FAILED beside it when a run stopped the bucket on an error), the target, and the whole
migration's key counts, the same as migrate's summary: KEYS (routed to the bucket by the latest
pre-pass) = copied + expired (read with its expiry reached) + gone (absent when read) + refused
(already on the target, not written by redisplit) + failed (not copied because the bucket stopped) +
pending (not reached yet); then the payload bytes written (not MEMORY USAGE), errors, how old the
last checkpoint is, and the last verify. JSON has the same numbers per bucket under "total". It
talks to no server.

While migrate --dual-write runs (it saves its figures about once a second) status also shows the
live phase, per bucket: whether it is caught up, the lag (LAG: the last marker's round trip, from
its write on legacy to every change before it applied on the targets), the backlog (BACKLOG: keys
waiting in the copier that may belong to the bucket by their name; "~" when estimated from a
sample of 1024, the total line has every key waiting), change events and copies per second, gaps
and rescans so far, the last catch-up (with when the marker that proved it was written), and what
coalescing saved (MARKS/READS: dirty marks, and the reads of the bucket's keys that covered them).
A "hot keys" line names a bucket's keys copied unusually often (at least 10 copies and 10x the
median of its busiest keys). A live phase whose figures are older than 5 s is shown as not
running (killed?). JSON has them under "live" (hot_keys: the 10 most copied keys per bucket).

For a queue bucket moved to SQS (kind: sqs) it shows, per list and delayed set, what the mover last
saved (every second while it runs, and when it stops): moved, in flight, parked, remaining on legacy,
re-sent, the rate and whether SQS is failing. JSON has them under "queues".

Per bucket it shows the mirror's directions while migrate --dual-write runs ("forward": legacy →
target; "forward+reverse": the switch window after cutover, with the reverse mirror target → legacy),
how long the window has been open since cutover, and the last application write seen on legacy, the
side that is no longer authoritative (a forward copy actually written, not an echo): complete waits for
that to be quiet. JSON: directions, window_age_seconds, last_write_non_authoritative per bucket, and
live.buckets.B.window with the window's figures.

--wait-caught-up waits until a migrate --dual-write is running and every bucket it mirrors is
syncing and has proven catch-up with a marker written after status started (every write legacy
executed before that moment is then on the targets), then shows the status and exits 0; after
--timeout it exits 1.`,
		Example: `  redisplit status
  redisplit status -o json
  redisplit status --wait-caught-up --timeout 2m && redisplit verify`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error { return runStatus(c.Context(), app, o) },
	}
	c.Flags().BoolVar(&o.waitCaughtUp, "wait-caught-up", false, "wait until the running migrate --dual-write has proven catch-up for every bucket with a marker written after this call began (exit 0), or --timeout (exit 1)")
	c.Flags().DurationVar(&o.timeout, "timeout", 60*time.Second, "with --wait-caught-up: how long to wait")
	limit(c.Flags(), "timeout", 100*time.Millisecond, 24*time.Hour)
	return c
}

// statusBucket is one bucket of the status report.
type statusBucket struct {
	Name string `json:"bucket"`
	*state.Bucket
	// Total is migrate.TotalOf the state: the numbers of migrate's summary.
	Total                migrate.Totals `json:"total"`
	CheckpointAgeSeconds float64        `json:"checkpoint_age_seconds,omitempty"`
	switchWindow
}

// switchWindow is a bucket's mirror directions and switch window, as
// status shows them (windowOf).
type switchWindow struct {
	// Directions: "forward" (legacy → target), "forward+reverse" (the
	// switch window), "" when nothing mirrors the bucket.
	Directions string `json:"directions,omitempty"`
	// WindowAgeSeconds: since cutover, while in the window.
	WindowAgeSeconds float64 `json:"window_age_seconds,omitempty"`
	// LastWriteNonAuthoritative is the last application write seen on the
	// side that is not authoritative (legacy, after cutover).
	LastWriteNonAuthoritative time.Time `json:"last_write_non_authoritative,omitzero"`
}

// windowOf is bucket b's switchWindow from the state and the live figures.
func windowOf(sb *state.Bucket, l *migrate.LiveStats, ls string, b string, now time.Time) switchWindow {
	var w switchWindow
	var lb *state.LiveBucket
	if l != nil && ls == "running" {
		lb = l.Buckets[b]
	}
	switch {
	case lb == nil || sb.Phase == state.Completed || sb.Phase == state.RolledBack:
	case lb.Window != nil:
		w.Directions = lb.Window.Directions
		w.LastWriteNonAuthoritative = lb.Window.LastAppWriteAt
	default:
		w.Directions = "forward"
	}
	if sb.Phase == state.Cutover && !sb.CutoverAt.IsZero() {
		w.WindowAgeSeconds = now.Sub(sb.CutoverAt).Seconds()
	}
	return w
}

type statusReport struct {
	StateDir   string              `json:"state_dir"`
	PlanHash   string              `json:"plan_hash"`
	UpdatedAt  time.Time           `json:"updated_at"`
	Buckets    []statusBucket      `json:"buckets"`
	LastVerify *state.VerifyRecord `json:"last_verify,omitempty"`
	// Live is the live phase's figures as migrate --dual-write last saved
	// them; LiveState is "running", "stopped" or "not-running" (figures
	// older than liveStale: the process was killed).
	Live      *migrate.LiveStats `json:"live,omitempty"`
	LiveState string             `json:"live_state,omitempty"`
	// Notify is legacy's notify-keyspace-events as redisplit found it,
	// while it may still hold redisplit's value.
	Notify *state.Notify `json:"notify,omitempty"`
	// Queues are the figures of the buckets moved to SQS, by bucket
	// (status_queue.go).
	Queues map[string]*queuemove.Snapshot `json:"queues,omitempty"`
}

// liveState names the live phase's state: running (state.Live.Fresh),
// stopped, or not-running (figures older than state.LiveStale: killed).
func liveState(l *migrate.LiveStats, now time.Time) string {
	switch {
	case l == nil:
		return ""
	case !l.Running:
		return "stopped"
	case !l.Fresh(now):
		return "not-running"
	}
	return "running"
}

// caughtUpSince reports whether a running live phase has proven catch-up
// for every bucket it mirrors with a marker written at or after since
// (every such bucket syncing, or further), and if not, why.
func caughtUpSince(st *state.State, since, now time.Time) (bool, string) {
	if ls := liveState(st.Live, now); ls != "running" {
		if ls == "" {
			ls = "never started"
		}
		return false, "no migrate --dual-write is running (live phase: " + ls + ")"
	}
	if len(st.Live.Buckets) == 0 {
		return false, "the live phase mirrors no bucket"
	}
	for _, b := range config.Buckets {
		lb, ok := st.Live.Buckets[b]
		if !ok {
			continue
		}
		sb := st.Buckets[b]
		switch {
		case sb == nil:
			return false, b + ": no state"
		case sb.Failed:
			return false, b + ": failed: " + sb.LastError
		case sb.Phase == state.Planned || sb.Phase == state.Copying:
			return false, fmt.Sprintf("%s: %s (backfill done: %v)", b, sb.Phase, lb.BackfillDone)
		case !lb.CaughtUp || lb.MarkerWrittenAt.Before(since):
			why := "no catch-up proven with a marker written since " + since.Format("15:04:05.000")
			if lb.RescanPending {
				why += " (rescan pending)"
			}
			return false, b + ": " + why
		}
	}
	return true, ""
}

// waitCaughtUp waits until caughtUpSince the call holds for the state in
// sd (st is its state as just loaded) and returns that state; after timeout
// it returns an exit-1 error saying what is not caught up.
func waitCaughtUp(ctx context.Context, sd *state.Dir, st *state.State, timeout time.Duration) (*state.State, error) {
	since := time.Now()
	deadline := since.Add(timeout)
	for {
		ok, why := caughtUpSince(st, since, time.Now())
		if ok {
			return st, nil
		}
		if time.Now().After(deadline) {
			return nil, &ExitError{Code: ExitRuntime, Err: fmt.Errorf("not caught up after %s: %s", timeout, why)}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		var err error
		if st, err = sd.Load(); err != nil {
			return nil, err
		}
	}
}

func runStatus(ctx context.Context, app *App, o statusOptions) error {
	cfg, err := app.Config()
	if err != nil {
		return err
	}
	sd, err := state.OpenReadOnly(cfg.StateDir)
	if err != nil {
		return err
	}
	st, err := sd.Load()
	if err != nil {
		return err
	}
	if o.waitCaughtUp {
		if st, err = waitCaughtUp(ctx, sd, st, o.timeout); err != nil {
			return err
		}
	}
	now := time.Now()
	rep := statusReport{StateDir: sd.Path(), PlanHash: st.PlanHash, UpdatedAt: st.UpdatedAt, LastVerify: st.LastVerify,
		Live: st.Live, LiveState: liveState(st.Live, now), Notify: st.Notify}
	for _, b := range config.Buckets {
		sb := st.Buckets[b]
		if sb == nil {
			continue
		}
		x := statusBucket{Name: b, Bucket: sb, Total: migrate.TotalOf(sb), switchWindow: windowOf(sb, st.Live, rep.LiveState, b, now)}
		if !sb.CheckpointAt.IsZero() {
			x.CheckpointAgeSeconds = now.Sub(sb.CheckpointAt).Seconds()
		}
		rep.Buckets = append(rep.Buckets, x)
	}
	if rep.Queues, err = queueStatuses(sd); err != nil {
		return err
	}
	if app.Output == "json" {
		enc := json.NewEncoder(app.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	renderStatus(app.Out, rep)
	return nil
}

func renderStatus(w io.Writer, r statusReport) {
	if len(r.Buckets) == 0 {
		fmt.Fprintf(w, "no migration state in %s (nothing migrated yet)\n", r.StateDir)
		return
	}
	plan := fmt.Sprintf("%.12s", r.PlanHash)
	if plan == "" {
		plan = "none (no bucket holds a copy: every bucket is rolled back or planned)"
	}
	fmt.Fprintf(w, "state %s; plan %s; updated %s\n", r.StateDir, plan, r.UpdatedAt.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BUCKET\tPHASE\tTARGET\tKEYS\tCOPIED\tEXPIRED\tGONE\tREFUSED\tFAILED\tPENDING\tPAYLOAD\tERRORS\tCHECKPOINT")
	for _, b := range r.Buckets {
		ck := "-"
		if !b.CheckpointAt.IsZero() {
			ck = time.Duration(b.CheckpointAgeSeconds*float64(time.Second)).Round(time.Second).String() + " ago"
		}
		phase := string(b.Phase)
		if b.Copied {
			phase += " (backfill done)"
		}
		if b.Failed {
			phase += " FAILED"
		}
		t := b.Total
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%s\n", b.Name, phase, b.Target, b.PlannedKeys,
			t.Copied, t.Expired, t.Gone, t.Refused, t.Failed, t.Pending, migrateBytes(t.Bytes), b.Errors, ck)
	}
	tw.Flush()
	fmt.Fprintln(w, "(KEYS: routed to the bucket by the latest pre-pass; PAYLOAD: bytes written, not MEMORY USAGE)")
	for _, b := range r.Buckets {
		if n := b.Total.NotWarmed; n > 0 {
			fmt.Fprintf(w, "%s: %d keys not warmed: left on legacy on purpose by targets.%s.copy\n", b.Name, n, b.Name)
		}
	}
	if l := r.Live; l != nil {
		renderLiveStatus(w, l, r.LiveState)
	}
	for _, b := range r.Buckets {
		if b.Directions == "" && b.WindowAgeSeconds == 0 {
			continue
		}
		line := fmt.Sprintf("%s: mirrored %s", b.Name, b.Directions)
		if b.Directions == "" {
			line = b.Name + ": NOT mirrored (no migrate --dual-write runs)"
		}
		if b.WindowAgeSeconds > 0 {
			last := "none seen"
			if !b.LastWriteNonAuthoritative.IsZero() {
				last = b.LastWriteNonAuthoritative.Format(time.RFC3339) + " (" + time.Since(b.LastWriteNonAuthoritative).Round(time.Second).String() + " ago)"
			}
			line += fmt.Sprintf("; switch window open for %s (since cutover); last application write on legacy: %s",
				(time.Duration(b.WindowAgeSeconds) * time.Second).Round(time.Second), last)
		}
		fmt.Fprintln(w, line)
	}
	renderQueueStatus(w, r.Queues, time.Now())
	if n := r.Notify; n != nil && n.Set != "" {
		fmt.Fprintf(w, "legacy's notify-keyspace-events: redisplit set %q (it was %q); put back when the live phase ends, or by the next migrate\n", n.Set, n.Old)
	}
	for _, b := range r.Buckets {
		if b.Failed {
			fmt.Fprintf(w, "FAILED %s at %s (phase %s): %s\n", b.Name, b.FailedAt.Format(time.RFC3339), b.Phase, b.LastError)
		} else if b.LastError != "" {
			fmt.Fprintf(w, "last error %s: %s\n", b.Name, b.LastError)
		}
		if b.AllowEvictingTarget {
			fmt.Fprintf(w, "WARNING %s: copied into a target that evicts (maxmemory-policy %s, --allow-evicting-target): keys may be lost\n", b.Name, b.TargetPolicy)
		}
	}
	if v := r.LastVerify; v != nil {
		verdict := "differences found"
		if v.Parity {
			verdict = "parity"
		}
		fmt.Fprintf(w, "last verify: %s (%s ago)\n", verdict, time.Since(v.At).Round(time.Second))
		for _, b := range sortedBuckets(v.Buckets) {
			c := v.Buckets[b]
			if c.RolledBack {
				fmt.Fprintf(w, "  %s: rolled back: %d of redisplit's keys left behind, %d foreign keys kept\n", b, c.LeftBehind, c.Foreign)
				continue
			}
			fmt.Fprintf(w, "  %s: compared %d, missing %d, extra %d, type %d, value %d, ttl %d, in flux %d, evicted %d, foreign %d\n",
				b, c.Compared, c.Missing, c.Extra, c.Type, c.Value, c.TTL, c.InFlux, c.Evicted, c.Foreign)
		}
	} else {
		fmt.Fprintln(w, "last verify: never")
	}
}

func sortedBuckets[V any](m map[string]V) []string {
	var out []string
	for _, b := range config.Buckets {
		if _, ok := m[b]; ok {
			out = append(out, b)
		}
	}
	return out
}

// renderLiveStatus writes the live phase's figures.
func renderLiveStatus(w io.Writer, l *migrate.LiveStats, ls string) {
	switch ls {
	case "running":
		fmt.Fprintf(w, "live phase: running (pid %d on %s, since %s; figures %s old)\n", l.PID, l.Host,
			l.StartedAt.Format(time.RFC3339), time.Since(l.UpdatedAt).Round(100*time.Millisecond))
	case "stopped":
		fmt.Fprintf(w, "live phase: stopped at %s (changes to legacy since are not mirrored; the next migrate --dual-write rescans)\n", l.StoppedAt.Format(time.RFC3339))
	default:
		fmt.Fprintf(w, "live phase: NOT RUNNING: its last figures are from %s (pid %d on %s; killed?); the next migrate --dual-write rescans\n",
			l.UpdatedAt.Format(time.RFC3339), l.PID, l.Host)
	}
	if l.FeedDown != "" {
		fmt.Fprintf(w, "change feed DOWN: %s\n", l.FeedDown)
	}
	fmt.Fprintf(w, "copier backlog: %d keys waiting (every bucket)\n", l.Backlog)
	if st := l.Stages; st != nil {
		fmt.Fprintf(w, "copier stages per key, last second (%d keys): %s\n", st.Keys, stagesText(st))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BUCKET\tCAUGHT UP\tLAG\tBACKLOG\tEVENTS/S\tCOPIES/S\tGAPS\tRESCANS\tLAST CATCH-UP\tMARKER WRITTEN\tMARKS/READS")
	for _, b := range config.Buckets {
		lb, ok := l.Buckets[b]
		if !ok {
			continue
		}
		cu := "no"
		switch {
		case lb.CaughtUp:
			cu = "yes"
		case lb.RescanPending:
			cu = "no (rescanning)"
		case !lb.BackfillDone:
			cu = "no (backfill)"
		}
		at, mk := "never", "-"
		if !lb.CaughtUpAt.IsZero() {
			at, mk = lb.CaughtUpAt.Format("15:04:05.000"), lb.MarkerWrittenAt.Format("15:04:05.000")
		}
		fmt.Fprintf(tw, "%s\t%s\t%dms\t%s\t%.0f\t%.0f\t%d\t%d\t%s\t%s\t%s\n", b, cu, lb.LagMs, backlogText(lb),
			lb.EventsPerSec, lb.CopiesPerSec, lb.Gaps, lb.Rescans, at, mk, coalescingText(lb))
	}
	tw.Flush()
	for _, b := range config.Buckets {
		if lb, ok := l.Buckets[b]; ok {
			if line := hotKeysLine(b, lb); line != "" {
				fmt.Fprintln(w, line)
			}
		}
	}
	if !l.NoTouch {
		fmt.Fprintln(w, "(legacy has no CLIENT NO-TOUCH: the copier's reads reorder its LRU/LFU eviction)")
	}
	for _, b := range config.Buckets {
		if lb, ok := l.Buckets[b]; ok && lb.Evicted > 0 && b != "cache" {
			fmt.Fprintf(w, "WARNING %s: legacy evicted %d %s keys during the live phase: it is still losing them\n", b, lb.Evicted, b)
		}
	}
}

// backlogText is a bucket's backlog, "~" before an estimate.
func backlogText(lb *state.LiveBucket) string {
	if lb.BacklogEstimated {
		return fmt.Sprintf("~%d", lb.Backlog)
	}
	return fmt.Sprint(lb.Backlog)
}

// coalescingText is a bucket's marks against the reads that covered them,
// with the share coalescing saved.
func coalescingText(lb *state.LiveBucket) string {
	if lb.Marks == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d (%.0f%% saved)", lb.Marks, lb.Reads, 100*float64(lb.Marks-lb.Reads)/float64(lb.Marks))
}

// hotKeysLine names a bucket's hot keys (HotKey.Hot), "" when it has none:
// status and migrate's summary print it.
func hotKeysLine(bucket string, lb *state.LiveBucket) string {
	var parts []string
	for _, h := range lb.HotKeys {
		if h.Hot {
			parts = append(parts, fmt.Sprintf("%s (%d copies, %.1f/s)", h.JSON.String(), h.Copies, h.PerSec))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("hot keys %s: %s", bucket, strings.Join(parts, ", "))
}
