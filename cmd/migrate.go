package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/metrics"
	"github.com/redisplit/redisplit/migrate"
	"github.com/redisplit/redisplit/queuemove"
	"github.com/redisplit/redisplit/state"
)

func init() { register(newMigrateCmd) }

type migrateOptions struct {
	dryRun        bool
	dualWrite     bool
	allowNonEmpty bool
	allowEvicting []string
	logical       bool
	workers       int
	batch         int
	bigBytes      int64
	metricsAddr   string
}

func newMigrateCmd(app *App) *cobra.Command {
	var o migrateOptions
	c := &cobra.Command{
		Use:   "migrate",
		Short: "Copy every bucket of legacy to its target (backfill, resumable; --dual-write: live, until stopped)",
		Long: `Migrate copies every key of legacy to the target of its bucket, routed by the plan (--plan, or
the config's rules and presets). One SCAN of legacy is fanned out to all targets; every key is read
atomically (type, absolute expiry, DUMP) and written with RESTORE ... REPLACE ABSTTL, or copied
logically in chunks when it is big or the target cannot read the payload.

Before writing anything it checks: the plan did not change since the migration started, no other
migration holds the lease lock (redisplit:lock on legacy), no key matches no rule while unknown is
block, every target is reachable and holds no key the plan routes to it (unless --allow-nonempty;
even then a key redisplit did not write is never overwritten), no session, queue or ratelimit target
evicts (maxmemory-policy other than noeviction; unless --allow-evicting-target names the bucket), and
every target has room for its bucket (maxmemory minus used_memory at least the bucket's MEMORY USAGE
on legacy x 1.2; a cache target with an allkeys-* policy is only warned about). Each of these refuses
with exit 4, also with --dry-run. It then shows what it will copy where and asks for confirmation on
a terminal; --yes skips the question and is required without a terminal.

State lives in the state directory (--state-dir, default .redisplit): plan hash, per-bucket phase
and counters, the SCAN checkpoint and a journal of every key written per target (rollback deletes
exactly those). Interrupted or killed at any moment, migrate resumes from its checkpoint when run
again. A bucket whose target fails (e.g. OOM on a noeviction target) stops with an error naming the
target and how far it got; its phase is kept and it is marked failed; the other buckets go on and
migrate exits 1 at the end. A bucket without a target is not migrated, and the output says so.

A queue bucket with kind: sqs is moved, not copied (docs/queues-sqs.md): its lists' items go to SQS
(LMOVE to an in-flight list, SendMessageBatch, LREM once acknowledged), beside the copier of the other
buckets. migrate refuses (exit 4) while the bucket holds keys that are not lists, or a queue is
missing without create_queues. One pass moves everything due and ends; --dual-write keeps moving what
producers still push until stopped, then drains once more (at most 30s). SQS unreachable: the list
waits with back-off and resumes, and migrate says so; nothing is lost.

--dual-write runs the live phase: it subscribes to legacy's keyspace notifications (setting
notify-keyspace-events to "EA" plus the flags it already has, with CONFIG SET; the old value is
saved in the state first and put back when the live phase ends, or by the next migrate after a
kill -9) before the backfill starts, and copies every key that changes, while backfilling and
afterwards, until SIGINT or SIGTERM (it then drains what is pending, saves the state, puts the
setting back and exits 0). A gap in the change feed (the subscriber dropped, notifications
switched off, legacy restarted or flushed, migrate itself not running since the last run) is
healed by a rescan of legacy and of the journal, which also deletes from the target what legacy
no longer has. A bucket is syncing once its backfill is done and a marker key written on legacy
has come back through the feed with every change before it applied; redisplit status shows lag,
backlog and rates, and status --wait-caught-up waits for a fresh proof. Where CONFIG SET is not
allowed, migrate refuses (exit 4) and names the value to set in legacy's parameter group.

The cache bucket may be warmed instead of copied whole (targets.cache.copy in the config): hot copies
only its most recently (or, under an LFU legacy, most frequently) used keys, up to
targets.cache.warm_bytes or what fits the cache target's maxmemory with headroom, selected by one
pass of OBJECT IDLETIME/FREQ and MEMORY USAGE before the first write; none copies no cache key.
Live writes are mirrored whatever the policy; verify counts the keys left on legacy as not warmed.

The summary counts every key of a bucket in one column: copied, expired (read with its expiry
reached), gone (absent when read), refused (foreign, --allow-nonempty), not warmed (cache keys the
copy policy left on legacy), skipped (no target), failed
(its bucket stopped) or pending (not reached yet). It shows the whole migration's totals (the same as
redisplit status) and, when they differ, this run's; JSON has both per bucket (total, this_run).
MEM.USAGE is MEMORY USAGE on legacy (pre-pass); PAYLOAD is the bytes written.`,
		Example: `  redisplit migrate --dry-run
  redisplit migrate --plan plan.yaml --max-ops 20000
  redisplit migrate --yes -o json > migrate.json
  redisplit migrate --dual-write --yes      # backfill, then mirror until Ctrl-C`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error { return runMigrate(c, app, o) },
	}
	f := c.Flags()
	f.BoolVar(&o.dryRun, "dry-run", false, "check and print what would be copied where (keys and bytes per target); write nothing")
	f.BoolVar(&o.dualWrite, "dual-write", false, "live phase: follow legacy's changes from before the backfill and mirror them until SIGINT/SIGTERM (needs notify-keyspace-events EA, set by redisplit)")
	f.BoolVar(&o.allowNonEmpty, "allow-nonempty", false, "copy into targets that already hold keys the plan routes to them; those keys are left alone and counted as refused")
	f.StringArrayVar(&o.allowEvicting, "allow-evicting-target", nil, "copy bucket `BUCKET` (session, queue or ratelimit; repeatable) although its target's maxmemory-policy evicts: you accept that keys may be lost (recorded in the state; without it migrate refuses, and verify does not mark the bucket verified)")
	f.Int("max-ops", 0, "commands per second sent to legacy (one key read counts one; 0: no cap)")
	f.BoolVar(&o.logical, "logical", false, "never RESTORE DUMP payloads: copy every key logically (for targets that cannot read legacy's payloads)")
	f.IntVar(&o.workers, "workers", 4, "copy workers (keys are partitioned onto them by hash)")
	f.IntVar(&o.batch, "batch", 1024, "keys per pipelined read and write batch")
	f.Int64Var(&o.bigBytes, "big-bytes", 8<<20, "keys larger than this are copied in chunks, never held whole in memory")
	f.StringVar(&o.metricsAddr, "metrics-addr", "", "serve Prometheus metrics of the running migration at http://`HOST:PORT`/metrics (docs/metrics.md)")
	atLeast(f, "max-ops", 0)
	limit(f, "workers", 1, 1024)
	limit(f, "batch", 1, 100_000)
	limit(f, "big-bytes", 1, 512<<20) // a RESTORE payload is one bulk string: at most 512 MiB
	// bound when migrate runs: other commands bind their own --max-ops to the
	// same key, and viper keeps only the last binding
	c.PreRunE = func(c *cobra.Command, args []string) error {
		app.BindFlag(c, "max-ops", "max_ops")
		return nil
	}
	return c
}

func runMigrate(c *cobra.Command, app *App, o migrateOptions) error {
	if !o.dryRun && !app.Yes && !app.IsTerminal {
		return &config.Error{Msg: "migrate writes to the targets and needs confirmation, but there is no terminal to ask on: pass --yes (or run --dry-run first to see what it would copy)"}
	}
	for _, b := range o.allowEvicting {
		if !slices.Contains(config.Buckets, b) {
			return &config.Error{Msg: fmt.Sprintf("--allow-evicting-target %q: not a bucket (one of %s)", b, strings.Join(config.Buckets, ", "))}
		}
	}
	cfg, err := app.Config()
	if err != nil {
		return err
	}
	if len(cfg.Targets) == 0 {
		return config.Errorf("targets", "no target configured: set targets.<bucket> (cache, session, queue, ratelimit) in the config")
	}
	cl, hash, err := classify.Router(cfg)
	if err != nil {
		return err
	}
	var ml net.Listener // opened before anything is written: a taken port fails at once
	if o.metricsAddr != "" {
		if ml, err = net.Listen("tcp", o.metricsAddr); err != nil {
			return &config.Error{Msg: fmt.Sprintf("--metrics-addr %s: cannot listen (%v): pick a free HOST:PORT", o.metricsAddr, err)}
		}
		defer ml.Close()
	}
	sd, err := openState(cfg.StateDir, o.dryRun)
	if err != nil {
		return err
	}
	var mu sync.Mutex           // the callbacks come from the engine's goroutines
	var live *migrate.LiveStats // the latest, for the metrics
	var bar *Progress
	var line *StatusLine                      // the live line, once every backfill is done
	degraded := map[string]migrate.Retrying{} // announced, not yet recovered
	var qnotes queueNotes
	note := func(msg string) { // a line that must be seen, above the bar or the live line
		switch {
		case line != nil:
			line.Notef("%s", msg)
		case bar != nil:
			bar.Notef("%s", msg)
		default:
			fmt.Fprintln(app.Err, msg)
		}
	}
	opts := migrate.Options{
		Config: cfg, Classifier: cl, PlanHash: hash, State: sd,
		DryRun: o.dryRun, DualWrite: o.dualWrite, AllowNonEmpty: o.allowNonEmpty, AllowEvicting: o.allowEvicting, ForceLogical: o.logical,
		MaxOps: cfg.MaxOps, Workers: o.workers, Batch: o.batch, BigBytes: o.bigBytes,
		Live: func(s migrate.LiveStats) {
			mu.Lock()
			defer mu.Unlock()
			live = &s
			if line == nil {
				for _, b := range s.Buckets {
					if !b.BackfillDone {
						return // the progress bars first
					}
				}
				bar.Finish()
				line = app.NewStatusLine()
			}
			line.Set(liveLine(s))
		},
		LiveEvent: func(e migrate.LiveEvent) {
			mu.Lock()
			defer mu.Unlock()
			msg := e.At.Format("15:04:05") + " " + e.Message
			if e.Kind == migrate.LiveEvicted {
				msg = "WARNING " + msg
			}
			note(msg)
		},
		Queue: func(s queuemove.Snapshot) {
			mu.Lock()
			defer mu.Unlock()
			qnotes.update(s, note)
		},
		Progress: func(p migrate.Progress) {
			mu.Lock()
			defer mu.Unlock()
			if line != nil {
				return
			}
			if bar == nil {
				bar = app.NewProgress("migrate", p.Planned)
			}
			var parts []string
			for _, b := range config.Buckets {
				if n, ok := p.Copied[b]; ok {
					parts = append(parts, fmt.Sprintf("%s %d/%d", b, n, p.BucketPlanned[b]))
				}
			}
			bar.Describe("migrate (" + strings.Join(parts, ", ") + ")")
			reportRetrying(bar, degraded, p.Retrying)
			bar.Set(p.Done)
		},
	}
	if !app.Yes {
		opts.Confirm = func(r *migrate.Result) error { return confirmMigrate(app, r) }
	}
	if ml != nil {
		col := metrics.NewCollector(func() metrics.Snapshot {
			mu.Lock()
			l := live
			mu.Unlock()
			st, err := sd.Load()
			if err != nil {
				st = nil // a scrape shows the live figures alone
			}
			return metricsSnapshot(st, l)
		})
		mctx, stop := context.WithCancel(c.Context())
		served := make(chan struct{})
		go func() {
			defer close(served)
			_ = col.ServeListener(mctx, ml)
		}()
		defer func() { stop(); <-served }()
	}
	defer collectLessOften()()
	res, err := migrate.Run(c.Context(), opts)
	mu.Lock()
	bar.Finish()
	if line != nil {
		line.Finish()
	}
	mu.Unlock()
	if res != nil && (err == nil || res.LegacyKeys > 0 || errors.Is(err, migrate.ErrBucketsFailed)) {
		if app.Output == "json" {
			enc := json.NewEncoder(app.Out)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(res); jerr != nil {
				return jerr
			}
		} else {
			renderMigrate(app.Out, res)
		}
	}
	return err
}

// reportRetrying prints a warning when a server starts failing transiently
// (its writes are retried while the other buckets go on) and a line when it
// answers again; now is the engine's current view, degraded what was
// announced so far.
func reportRetrying(bar *Progress, degraded, now map[string]migrate.Retrying) {
	for _, name := range slices.Sorted(maps.Keys(now)) {
		r := now[name]
		if _, ok := degraded[name]; ok {
			degraded[name] = r
			continue
		}
		bar.Notef("WARNING %s: failing since %s (%s); retrying with back-off, the other buckets go on",
			serverName(name), r.Since.Format("15:04:05"), r.LastError)
		degraded[name] = r
	}
	for _, name := range slices.Sorted(maps.Keys(degraded)) {
		if _, ok := now[name]; ok {
			continue
		}
		r := degraded[name]
		bar.Notef("%s: answering again; it failed from %s to %s (%d retries so far)",
			serverName(name), r.Since.Format("15:04:05"), r.Last.Format("15:04:05"), r.Retries)
		delete(degraded, name)
	}
}

// serverName names a key of migrate.Progress.Retrying: "legacy" or a
// bucket's target.
func serverName(key string) string {
	if key == "legacy" {
		return key
	}
	return "target " + key
}

func confirmMigrate(app *App, r *migrate.Result) error {
	renderMigrate(app.Err, r)
	return confirm(app, "\nCopy these buckets to their targets now? [y/N] ", "migration not confirmed: nothing was written")
}

func renderMigrate(w io.Writer, r *migrate.Result) {
	if r.DryRun {
		fmt.Fprintln(w, "DRY RUN: nothing was written.")
	}
	fmt.Fprintf(w, "legacy: %d keys scanned; plan %.12s; state %s\n", r.LegacyKeys, r.PlanHash, r.StateDir)
	if r.LeaseTakeover != nil {
		fmt.Fprintln(w, r.LeaseTakeover)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BUCKET\tTARGET\tSTATUS\tPOLICY\tKEYS\tMEM.USAGE")
	for _, b := range r.Buckets {
		mem := "-" // not measured: no target, already copied, or no key sampled
		if b.PlannedBytes > 0 {
			mem = migrateBytes(b.PlannedBytes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", b.Bucket, orDash(b.Target), b.Status, orDash(b.Policy),
			b.PlannedKeys, mem)
	}
	tw.Flush()
	sample := "1 key in 32, extrapolated"
	if r.DryRun {
		sample = "every key"
	}
	fmt.Fprintf(w, "(KEYS and MEM.USAGE: the pre-pass over legacy; MEM.USAGE is MEMORY USAGE of %s)\n", sample)
	renderQueueMove(w, r.Queue, r.DryRun)
	if !r.DryRun {
		fmt.Fprintln(w, "\nwhole migration (keys; the same as redisplit status):")
		renderCounts(w, r.Buckets, true, func(b *migrate.BucketResult) (migrate.Counts, int64) {
			return b.Total.Counts, b.Total.Pending
		})
		if thisRunDiffers(r) {
			fmt.Fprintln(w, "\nthis run (a key rewritten after a resume counts again):")
			renderCounts(w, r.Buckets, false, func(b *migrate.BucketResult) (migrate.Counts, int64) {
				return b.ThisRun, 0
			})
		}
		fmt.Fprintln(w, "(PAYLOAD: bytes written to the target, DUMP payloads or logical values; not MEMORY USAGE)")
	}
	for _, b := range r.Buckets {
		if b.Warm != nil {
			fmt.Fprintf(w, "%s: %s\n", b.Bucket, warmLine(b.Warm))
		}
		if b.Reason != "" {
			fmt.Fprintf(w, "%s: %s\n", b.Bucket, b.Reason)
		}
		for _, x := range b.Warnings {
			fmt.Fprintf(w, "WARNING %s: %s\n", b.Bucket, x)
		}
		if b.Retries > 0 {
			fmt.Fprintf(w, "%s: %d transient target errors retried (last: %s)\n", b.Bucket, b.Retries, b.LastRetryError)
		}
		if b.Error != "" {
			fmt.Fprintf(w, "ERROR %s: %s\n", b.Bucket, b.Error)
		}
	}
	if r.LegacyRetries > 0 {
		fmt.Fprintf(w, "legacy: %d transient errors retried\n", r.LegacyRetries)
	}
	if r.Notify != "" {
		fmt.Fprintln(w, r.Notify)
	}
	if r.Live != nil {
		renderLive(w, r.Live)
	} else if !r.DryRun && r.CopyElapsed > 0 && !r.NoTouch {
		fmt.Fprintln(w, "note: legacy has no CLIENT NO-TOUCH (Redis < 7.2): every key read looks recently used to its LRU/LFU eviction")
	}
	if r.UnknownKeys > 0 {
		fmt.Fprintf(w, "%d keys match no rule (unknown: %s)", r.UnknownKeys, r.Unknown)
		switch r.Unknown {
		case "skip":
			fmt.Fprint(w, ": they are not migrated")
		case "block":
			fmt.Fprint(w, ": migrate refuses")
		default:
			fmt.Fprintf(w, ": they go to %s", r.Unknown)
		}
		fmt.Fprintln(w)
		for i, p := range r.UnknownPats {
			if i == 10 {
				fmt.Fprintf(w, "  ... %d more patterns\n", len(r.UnknownPats)-10)
				break
			}
			fmt.Fprintf(w, "  %-40s %8d keys  e.g. %q\n", p.Pattern, p.Keys, p.Sample)
		}
	}
	if r.Live != nil {
		fmt.Fprintf(w, "total %s", r.Elapsed.Round(time.Millisecond))
		if r.Throttled > 0 {
			fmt.Fprintf(w, "; paused %d times for legacy latency", r.Throttled)
		}
		fmt.Fprintln(w)
	} else if r.CopyElapsed > 0 {
		var n int64
		for _, b := range r.Buckets {
			n += b.ThisRun.Copied + b.ThisRun.Expired + b.ThisRun.Gone + b.ThisRun.Refused
		}
		fmt.Fprintf(w, "copied in %s (%.0f keys/s); total %s", r.CopyElapsed.Round(time.Millisecond),
			float64(n)/r.CopyElapsed.Seconds(), r.Elapsed.Round(time.Millisecond))
		if r.Throttled > 0 {
			fmt.Fprintf(w, "; paused %d times for legacy latency", r.Throttled)
		}
		fmt.Fprintln(w)
	}
}

// warmLine says what the cache's copy policy selected.
func warmLine(x *migrate.WarmResult) string {
	again := ""
	if x.Reused {
		again = " (selected by an earlier run of this migration)"
	}
	switch {
	case x.Policy == config.CopyNone:
		return "copy: none: no cache key is copied, the target starts cold (live writes are mirrored with --dual-write)"
	case x.Threshold < 0:
		return "copy: hot: legacy has no cache key to warm"
	}
	by := fmt.Sprintf("idle at most %ds (OBJECT IDLETIME)", x.Threshold)
	if x.Metric == migrate.MetricFreq {
		by = fmt.Sprintf("LFU counter at least %d (OBJECT FREQ)", x.Threshold)
	}
	if x.HotBytes > x.Budget {
		return fmt.Sprintf("copy: hot: not even the hottest %d cache keys (%s, %s) fit the budget of %s%s: warming as many of them as fit (raise targets.cache.warm_bytes or the target's maxmemory to warm more)",
			x.HotKeys, migrateBytes(x.HotBytes), by, migrateBytes(x.Budget), again)
	}
	return fmt.Sprintf("copy: hot: warming %d of %d cache keys (%s of %s MEMORY USAGE; budget %s): those %s%s",
		x.HotKeys, x.CacheKeys, migrateBytes(x.HotBytes), migrateBytes(x.CacheBytes), migrateBytes(x.Budget), by, again)
}

// renderCounts writes one table of key counts per bucket, with a PENDING
// column when withPending.
func renderCounts(w io.Writer, bs []*migrate.BucketResult, withPending bool, get func(*migrate.BucketResult) (c migrate.Counts, pending int64)) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	warmed := false // a NOT WARMED column only where the cache is warmed
	for _, b := range bs {
		c, _ := get(b)
		warmed = warmed || b.Warm != nil || c.NotWarmed > 0
	}
	head := "BUCKET\tCOPIED\tEXPIRED\tGONE\tREFUSED\tSKIPPED\tFAILED"
	if warmed {
		head = "BUCKET\tCOPIED\tEXPIRED\tGONE\tREFUSED\tNOT WARMED\tSKIPPED\tFAILED"
	}
	if withPending {
		head += "\tPENDING"
	}
	fmt.Fprintln(tw, head+"\tLOGICAL\tPAYLOAD")
	for _, b := range bs {
		c, p := get(b)
		if warmed {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d", b.Bucket, c.Copied, c.Expired, c.Gone, c.Refused, c.NotWarmed, c.Skipped, c.Failed)
		} else {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d", b.Bucket, c.Copied, c.Expired, c.Gone, c.Refused, c.Skipped, c.Failed)
		}
		if withPending {
			fmt.Fprintf(tw, "\t%d", p)
		}
		fmt.Fprintf(tw, "\t%d\t%s\n", c.Logical, migrateBytes(c.Bytes))
	}
	tw.Flush()
}

// thisRunDiffers reports whether some bucket's counts of this run are not
// its totals (a resumed run, a rerun after a complete backfill).
func thisRunDiffers(r *migrate.Result) bool {
	for _, b := range r.Buckets {
		if b.ThisRun != b.Total.Counts {
			return true
		}
	}
	return false
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func migrateBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// liveLine is the live status line: lag per bucket, the copier's backlog,
// events and copies per second.
func liveLine(s migrate.LiveStats) string {
	var parts []string
	caught := 0
	for _, b := range config.Buckets {
		lb, ok := s.Buckets[b]
		if !ok {
			continue
		}
		st := fmt.Sprintf("%s %dms", b, lb.LagMs)
		switch {
		case lb.RescanPending:
			st += " (rescanning)"
		case !lb.CaughtUp:
			st += " (not caught up)"
		default:
			caught++
		}
		parts = append(parts, st)
	}
	feed := ""
	if s.FeedDown != "" {
		feed = "; FEED DOWN"
	}
	return fmt.Sprintf("live: lag %s; backlog %d; %.0f events/s, %.0f copies/s; caught up %d/%d%s",
		strings.Join(parts, ", "), s.Backlog, s.EventsPerSec, s.CopiesPerSec, caught, len(s.Buckets), feed)
}

// renderLive writes the live phase's part of the summary.
func renderLive(w io.Writer, l *migrate.LiveResult) {
	d := l.StoppedAt.Sub(l.StartedAt).Round(time.Second)
	fmt.Fprintf(w, "\nlive phase: %s, %d change events, %d keys written or deleted, %d gaps, %d rescans\n", d, l.Events, l.Copies, len(l.Gaps), l.Rescans)
	if l.Resumed != "" {
		fmt.Fprintln(w, "  at the start: "+l.Resumed)
	}
	for _, g := range l.Gaps {
		fmt.Fprintln(w, "  gap "+g)
	}
	if s := l.Stats; s != nil {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "BUCKET\tBACKFILL\tLAST CATCH-UP\tMARKER WRITTEN\tLAG\tEVENTS\tCOPIES\tGAPS\tRESCANS\tMARKS/READS")
		for _, b := range config.Buckets {
			lb, ok := s.Buckets[b]
			if !ok {
				continue
			}
			bf, at, mk := "running", "never", "-"
			if lb.BackfillDone {
				bf = "done"
			}
			if !lb.CaughtUpAt.IsZero() {
				at, mk = lb.CaughtUpAt.Format("15:04:05.000"), lb.MarkerWrittenAt.Format("15:04:05.000")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%dms\t%d\t%d\t%d\t%d\t%s\n", b, bf, at, mk, lb.LagMs, lb.Events, lb.Copies, lb.Gaps, lb.Rescans, coalescingText(lb))
		}
		tw.Flush()
		for _, b := range config.Buckets {
			if lb, ok := s.Buckets[b]; ok {
				if line := hotKeysLine(b, lb); line != "" {
					fmt.Fprintln(w, "  "+line)
				}
			}
		}
	}
	if st := l.Stages; st != nil {
		fmt.Fprintf(w, "  copier stages per key, since the backfill (%d keys): %s\n", st.Keys, stagesText(st))
	}
	if l.Notify != "" {
		fmt.Fprintln(w, l.Notify)
	}
	for _, x := range l.Warnings {
		fmt.Fprintln(w, "WARNING "+x)
	}
}

// stagesText renders the copier's stage quantiles in one line.
func stagesText(st *state.Stages) string {
	q := func(name string, x state.Quantile) string {
		return fmt.Sprintf("%s p50 %.1fms p90 %.1fms p99 %.1fms max %.1fms", name, x.P50, x.P90, x.P99, x.Max)
	}
	return q("wait", st.Wait) + "; " + q("read", st.Read) + "; " + q("write", st.Write)
}

// metricsSnapshot is the running migration's figures for --metrics-addr:
// phase, failure and key counts from the state st (nil: unknown), the live
// figures from l (nil before the live phase reports). A bucket is shown
// when either knows it.
func metricsSnapshot(st *state.State, l *migrate.LiveStats) metrics.Snapshot {
	var s metrics.Snapshot
	if l != nil {
		s.DirtyBacklog, s.DirtyBacklogKnown = int64(l.Backlog), true
		if st := l.Stages; st != nil {
			for _, x := range []struct {
				name string
				q    state.Quantile
			}{{"wait", st.Wait}, {"read", st.Read}, {"write", st.Write}} {
				for _, v := range []struct {
					q  string
					ms float64
				}{{"0.5", x.q.P50}, {"0.9", x.q.P90}, {"0.99", x.q.P99}, {"1", x.q.Max}} {
					s.Stages = append(s.Stages, metrics.Stage{Stage: x.name, Quantile: v.q, Seconds: v.ms / 1000})
				}
			}
		}
	}
	for _, name := range config.Buckets {
		var sb *state.Bucket
		if st != nil {
			sb = st.Buckets[name]
		}
		var lb *state.LiveBucket
		if l != nil {
			lb = l.Buckets[name]
		}
		if sb == nil && lb == nil {
			continue
		}
		b := metrics.Bucket{Name: name, Phase: string(state.Planned)}
		if sb != nil {
			b.Phase, b.Failed = string(sb.Phase), sb.Failed
			t := migrate.TotalOf(sb)
			b.Keys = metrics.Keys{Copied: t.Copied, Expired: t.Expired, Gone: t.Gone, Refused: t.Refused, Failed: t.Failed}
		}
		if lb != nil {
			b.Lag, b.LagKnown = time.Duration(lb.LagMs)*time.Millisecond, !lb.CaughtUpAt.IsZero()
			b.DirtyBacklog = int64(lb.Backlog)
			b.LastCatchUp = lb.CaughtUpAt
			b.EventsTotal, b.CopiesTotal = uint64(lb.Events), uint64(lb.Copies)
			b.GapsTotal, b.RescansTotal = uint64(lb.Gaps), uint64(lb.Rescans)
			b.MarksTotal, b.ReadsTotal = uint64(lb.Marks), uint64(lb.Reads)
			if len(lb.HotKeys) > 0 { // most copied first
				b.HottestKnown, b.HottestCopies, b.HottestPerSec = true, uint64(lb.HotKeys[0].Copies), lb.HotKeys[0].PerSec
			}
			for _, h := range lb.HotKeys {
				if h.Hot {
					b.HotKeys++
				}
			}
		}
		s.Buckets = append(s.Buckets, b)
	}
	return s
}
