package cmd

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/migrate"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/safety"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
	"github.com/redisplit/redisplit/verify"
)

type verifyOptions struct {
	buckets      []string
	ttlTolerance time.Duration
	rounds       int
	interval     time.Duration
	sample       float64
	maxDiffs     int
	junit        string
	batch        int
	workers      int
	// queue buckets on SQS (verify_queue.go)
	consumersStarted, producersSwitched bool
	queueSettle                         time.Duration
}

func init() { register(newVerifyCmd) }

func newVerifyCmd(app *App) *cobra.Command {
	o := &verifyOptions{}
	c := &cobra.Command{
		Use:   "verify",
		Short: "Key-level parity between legacy and every target (reads only)",
		Long: `verify compares every legacy key the plan routes to a bucket with the bucket's target:
missing, type differs, value differs, TTL differs beyond --ttl-tolerance. It also scans each
target for keys the plan routes there that legacy lacks (extra: a resurrected delete or a
foreign key). Equal DUMP payloads are equal; differing payloads are compared logically (sets
and hashes unordered, sorted sets with scores, streams entry by entry, lists in order), page by
page.

Under live writes, differing keys are re-checked after --interval, for --rounds rounds; only
differences that persist are reported. While a migrate --dual-write runs (its live figures in the
state are fresh), the interval is at least 2x the worst measured lag of the buckets verified plus
100ms, and the report says so. Keys whose legacy value changed between rounds are
reported as in_flux (not proven either way, not a failure); keys that expired are no
difference. Cache keys missing on a target whose evicted_keys accounts for them are reported as
evicted, not lost.

Keys that existed on the target before the migration and that migrate --allow-nonempty refused to
overwrite are reported as foreign: counted and listed, not a parity failure.

After rollback, a rolled-back bucket is checked for what rollback promises instead: its target
holds no key the plan routes to the bucket with exactly legacy's content (a copy left behind,
category left_behind); the other keys there are kept and counted as foreign.

A session, queue or ratelimit bucket whose target's maxmemory-policy evicts (anything but
noeviction) is never marked verified, even in parity, unless the migration accepted it
(migrate --allow-evicting-target BUCKET): verify names the target and the fix, and exits 4.

A queue bucket on SQS is checked for conservation instead (its items are moved, not copied):
initial + pushed = remaining + in flight + parked + moved per list, and what SQS holds against what
was moved (docs/queues-sqs.md); --consumers-started and --producers-switched say how far the live
move is. It is in the same report, and a failure exits 3.

verify writes nothing to Redis. It records its result in the state directory (redisplit status
shows it) and marks a bucket verified when it is in full parity (no sample, nothing in flux).

  redisplit verify                       every bucket with a target
  redisplit verify --bucket session -o json > diff.json
  redisplit verify --sample 5            5% of keys, with the confidence it gives
  redisplit verify --junit verify.xml    JUnit XML for CI`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error { return runVerify(c.Context(), app, o) },
	}
	f := c.Flags()
	f.StringSliceVar(&o.buckets, "bucket", nil, "verify only this bucket (repeatable): cache, session, queue, ratelimit")
	f.DurationVar(&o.ttlTolerance, "ttl-tolerance", time.Second, "TTLs within this much of each other are equal")
	f.IntVar(&o.rounds, "rounds", 3, "rounds: differing keys are re-checked rounds-1 times; 1 = no re-check")
	f.DurationVar(&o.interval, "interval", time.Second, "wait between rounds (at least the replication lag; while migrate --dual-write runs, at least 2x its measured lag + 100ms)")
	f.Float64Var(&o.sample, "sample", 100, "verify this percent of keys, chosen by a hash of the key name (deterministic)")
	f.Int("max-ops", 0, "commands per second against legacy; 0 = unlimited")
	f.IntVar(&o.maxDiffs, "max-diffs", 100_000, "differing keys kept for re-checks and listed; beyond it keys are only counted (and parity fails)")
	f.StringVar(&o.junit, "junit", "", "also write a JUnit XML report to this file")
	f.IntVar(&o.batch, "batch", 1000, "keys per SCAN and pipeline")
	f.IntVar(&o.workers, "workers", 8, "batches in flight")
	atLeast(f, "ttl-tolerance", time.Duration(0))
	limit(f, "rounds", 1, 1000)
	atLeast(f, "interval", time.Duration(0))
	limit(f, "sample", 0.0001, 100) // the sampler's resolution is one key in a million
	atLeast(f, "max-ops", 0)
	limit(f, "max-diffs", 1, 100_000_000)
	limit(f, "batch", 1, 100_000)
	limit(f, "workers", 1, 1024)
	o.queueFlags(f)
	atLeast(f, "queue-settle", time.Duration(0))
	_ = f.MarkHidden("batch")
	_ = f.MarkHidden("workers")
	// bound when verify runs: migrate binds its own --max-ops to the same
	// key, and viper keeps only the last binding
	c.PreRunE = func(c *cobra.Command, args []string) error {
		app.BindFlag(c, "max-ops", "max_ops")
		return nil
	}
	return c
}

func runVerify(ctx context.Context, app *App, o *verifyOptions) error {
	cfg, err := app.Config()
	if err != nil {
		return err
	}
	if o.sample <= 0 || o.sample > 100 {
		return config.Errorf("--sample", "must be a percentage in (0, 100], got %v", o.sample)
	}
	if o.rounds < 1 {
		return config.Errorf("--rounds", "must be at least 1, got %d", o.rounds)
	}
	router, planHash, err := classify.Router(cfg)
	if err != nil {
		return err
	}
	sd, err := state.Open(cfg.StateDir)
	if err != nil {
		return err
	}
	st, err := sd.Load()
	if err != nil {
		return err
	}
	if err := st.CheckPlan(planHash); err != nil {
		return err
	}
	buckets, skipped, err := verifyBuckets(cfg, o.buckets)
	if err != nil {
		return err
	}
	for _, s := range skipped {
		fmt.Fprintf(app.Err, "verify: %s\n", s)
	}
	queues := sqsBuckets(cfg, o.buckets) // conservation, not parity (verify_queue.go)
	if len(buckets) == 0 {
		return runVerifyQueues(ctx, app, cfg, sd, queues, o)
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
	rolledBack, allowEvicting := checksOf(st, buckets)
	var warm *state.Warm // the cache's copy policy, as migrate recorded it
	var warmed func(string) bool
	if sb := st.Buckets["cache"]; sb != nil && sb.Phase != state.RolledBack && sb.Warm != nil && slices.Contains(buckets, "cache") {
		warm = sb.Warm
		if warmed, err = migrate.Warmed(sd, "cache"); err != nil {
			return err
		}
	}
	total, _ := legacy.DBSize(ctx).Result()
	if len(rolledBack) == len(buckets) {
		total = 0 // no legacy pass: nothing to count in advance
	}
	// while a migrate --dual-write runs, differing keys are re-checked
	// after the mirror's measured lag (verify.RecheckInterval)
	rc := verify.RecheckInterval(o.interval, st.Live, buckets, time.Now())
	prog := app.NewProgress("verify", int64(float64(total)*o.sample/100))
	defer collectLessOften()()
	res, err := verify.Run(ctx, verify.Options{
		Legacy: legacy, Targets: targets, Router: router, Unknown: cfg.Unknown,
		TTLTolerance: o.ttlTolerance, Rounds: o.rounds, Interval: rc.Interval, Sample: o.sample,
		MaxOps: cfg.MaxOps, MaxDiffs: o.maxDiffs, Batch: o.batch, Workers: o.workers,
		Progress: prog.Set, Refused: sd.ReadRefused, RolledBack: rolledBack, AllowEvicting: allowEvicting,
		Warm: warm, Warmed: warmed,
	})
	prog.Finish()
	if err != nil {
		return err
	}
	qres, err := verifyQueues(ctx, cfg, sd, legacy, queues, o)
	if err != nil {
		return err
	}
	if err := recordQueueVerify(sd, qres); err != nil {
		return err
	}
	if err := recordVerify(sd, res); err != nil {
		return err
	}
	if o.junit != "" {
		if err := writeJUnit(o.junit, res); err != nil {
			return err
		}
	}
	if app.Output == "json" {
		enc := json.NewEncoder(app.Out)
		enc.SetIndent("", "  ")
		var recheck *verify.Recheck
		if rc.Live && o.rounds > 1 {
			recheck = &rc
		}
		if err := enc.Encode(verifyJSON{res, keysPerSecond(res), recheck, qres}); err != nil {
			return err
		}
	} else {
		renderVerify(app.Out, res)
		if line := rc.String(); line != "" && o.rounds > 1 {
			fmt.Fprintln(app.Out, line)
		}
		renderQueueVerify(app.Out, qres)
	}
	if err := verifyExit(res); err != nil {
		return err
	}
	return queueVerifyExit(qres)
}

// checksOf returns, from the state, the set of buckets that were rolled
// back (checked against rollback's promise, not for parity) and the set of
// those whose migration accepted an evicting target.
func checksOf(st *state.State, buckets []string) (rolledBack, allowEvicting map[string]bool) {
	rolledBack, allowEvicting = map[string]bool{}, map[string]bool{}
	for _, b := range buckets {
		sb := st.Buckets[b]
		if sb != nil && sb.Phase == state.RolledBack {
			rolledBack[b] = true
		}
		if sb != nil && sb.AllowEvictingTarget {
			allowEvicting[b] = true
		}
	}
	return rolledBack, allowEvicting
}

// verifyExit is verify's exit: 0 when every bucket passed its check; 3 on
// differences (or the cap hit); 4 when the only failures are buckets
// refused for an evicting target (the report has already been printed).
func verifyExit(res *verify.Result) error {
	if res.OK {
		return nil
	}
	var refusals []string
	for _, b := range res.Buckets {
		if b.Counts.Persistent() > 0 {
			return &ExitError{Code: ExitDifferences, Silent: true}
		}
		if b.Refusal != "" {
			refusals = append(refusals, b.Refusal)
		}
	}
	if res.CapHit || len(refusals) == 0 {
		return &ExitError{Code: ExitDifferences, Silent: true}
	}
	return safety.Refusef("", "%s", strings.Join(refusals, "; "))
}

// verifyJSON is the --output json document: the result plus the rate.
type verifyJSON struct {
	*verify.Result
	KeysPerSecond float64 `json:"keys_per_second"`
	// Recheck is the re-check interval's live-phase rule, while a migrate
	// --dual-write runs (verify.RecheckInterval).
	Recheck *verify.Recheck `json:"recheck,omitempty"`
	// Queues: the conservation of the queue buckets on SQS.
	Queues []queueVerify `json:"queues,omitempty"`
}

func keysPerSecond(r *verify.Result) float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.LegacyKeys) / r.Seconds
}

// verifyBuckets returns the buckets to verify for parity (those with a
// Redis target, or the requested ones; SQS buckets are sqsBuckets') and
// messages about the configured ones it skips.
func verifyBuckets(cfg *config.Config, want []string) (buckets, skipped []string, err error) {
	for _, b := range want {
		if !config.IsBucket(b) {
			return nil, nil, config.Errorf("--bucket", "%q is not one of cache, session, queue, ratelimit", b)
		}
		if _, ok := cfg.Targets[b]; !ok {
			return nil, nil, config.Errorf("--bucket", "bucket %s has no target in the configuration (targets.%s)", b, b)
		}
	}
	for _, b := range config.Buckets {
		t, ok := cfg.Targets[b]
		if !ok || (len(want) > 0 && !contains(want, b)) {
			continue
		}
		if t.Kind == config.KindSQS { // items are moved, not copied: conservation (verify_queue.go)
			continue
		}
		buckets = append(buckets, b)
	}
	if len(buckets) == 0 && len(sqsBuckets(cfg, want)) == 0 {
		return nil, nil, config.Errorf("targets", "no bucket has a target to verify")
	}
	return buckets, skipped, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// recordVerify saves the result as the state's last verify, and marks the
// buckets proven in full parity (no sample, nothing in flux, not refused for
// an evicting target) as verified. A verified bucket that no longer passes
// goes back to syncing. A rolled-back bucket's phase is left alone.
func recordVerify(sd *state.Dir, res *verify.Result) error {
	return sd.Update(func(s *state.State) error {
		rec := &state.VerifyRecord{At: res.Started, Parity: res.Parity, Buckets: map[string]state.VerifyCounts{}}
		for _, b := range res.Buckets {
			c := b.Counts
			rec.Buckets[b.Bucket] = state.VerifyCounts{Compared: c.Compared, Missing: c.Missing, Extra: c.Extra,
				Type: c.Type, Value: c.Value, TTL: c.TTL, InFlux: c.InFlux, Evicted: c.Evicted, Foreign: c.Foreign, NotWarmed: c.NotWarmed,
				RolledBack: b.Check == verify.RolledBackCheck, LeftBehind: c.LeftBehind}
			sb := s.Buckets[b.Bucket]
			if sb == nil || b.Check != verify.ParityCheck {
				continue
			}
			verifiedPhase(sb, b.OK && c.InFlux == 0 && res.Sample >= 100 && !res.CapHit, b.OK)
		}
		s.LastVerify = rec
		return nil
	})
}

// verifiedPhase is the one rule of a verify's effect on a bucket's phase:
// a copied bucket proven (in full) goes from copying or syncing to
// verified; a verified bucket that no longer passes goes back to syncing.
func verifiedPhase(sb *state.Bucket, proven, ok bool) {
	switch {
	case proven && sb.Copied && (sb.Phase == state.Copying || sb.Phase == state.Syncing):
		sb.Phase = state.Verified
	case !ok && sb.Phase == state.Verified:
		sb.Phase = state.Syncing
	}
}

// renderVerify writes the text report.
func renderVerify(w io.Writer, r *verify.Result) {
	var parity, rolled []verify.BucketResult
	var targetKeys int64
	for _, b := range r.Buckets {
		if b.Check == verify.RolledBackCheck {
			rolled = append(rolled, b)
			targetKeys += b.TargetKeys
		} else {
			parity = append(parity, b)
		}
	}
	if len(parity) > 0 {
		fmt.Fprintf(w, "verify: %d legacy keys scanned in %s (%.0f keys/s), %d round(s)", r.LegacyKeys,
			r.Duration.Round(time.Millisecond), keysPerSecond(r), r.Rounds)
	} else {
		fmt.Fprintf(w, "verify: every bucket was rolled back; %d target keys checked against legacy in %s", targetKeys, r.Duration.Round(time.Millisecond))
	}
	if r.Sample < 100 {
		fmt.Fprintf(w, ", sample %.4g%%", r.Sample)
	}
	fmt.Fprintln(w)
	if len(parity) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		warmed := false // a NOT_WARMED column only when the cache was warmed, not copied whole
		for _, b := range parity {
			warmed = warmed || b.Counts.NotWarmed > 0
		}
		if warmed {
			fmt.Fprintln(tw, "BUCKET\tTARGET\tCOMPARED\tMISSING\tEXTRA\tTYPE\tVALUE\tTTL\tIN_FLUX\tEVICTED\tFOREIGN\tNOT_WARMED\tRESULT")
		} else {
			fmt.Fprintln(tw, "BUCKET\tTARGET\tCOMPARED\tMISSING\tEXTRA\tTYPE\tVALUE\tTTL\tIN_FLUX\tEVICTED\tFOREIGN\tRESULT")
		}
		for _, b := range parity {
			c := b.Counts
			res := "parity"
			switch {
			case !b.Parity:
				res = "DIFFERENCES"
			case b.Refusal != "":
				res = "NOT VERIFIED (evicting target)"
			}
			if warmed {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", b.Bucket, b.Target, c.Compared,
					c.Missing, c.Extra, c.Type, c.Value, c.TTL, c.InFlux, c.Evicted, c.Foreign, c.NotWarmed, res)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", b.Bucket, b.Target, c.Compared,
				c.Missing, c.Extra, c.Type, c.Value, c.TTL, c.InFlux, c.Evicted, c.Foreign, res)
		}
		tw.Flush()
	}
	if len(rolled) > 0 {
		if len(parity) > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, "rolled back (checked: no target key holds a copy of legacy's):")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "BUCKET\tTARGET\tTARGET_KEYS\tFOREIGN_KEPT\tLEFT_BEHIND\tRESULT")
		for _, b := range rolled {
			res := "rolled back"
			if !b.OK {
				res = "LEFT BEHIND"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", b.Bucket, b.Target, b.TargetKeys, b.Counts.Foreign, b.Counts.LeftBehind, res)
		}
		tw.Flush()
	}
	for _, b := range r.Buckets {
		if b.Refusal != "" {
			fmt.Fprintf(w, "  %s\n", b.Refusal)
		}
		if b.Statement != "" {
			fmt.Fprintf(w, "  %s: %s\n", b.Bucket, b.Statement)
		}
		for _, n := range b.Notes {
			fmt.Fprintf(w, "  %s: %s\n", b.Bucket, n)
		}
		if b.Confidence != nil {
			fmt.Fprintf(w, "  %s: %s\n", b.Bucket, b.Confidence.Statement)
		}
	}
	if r.Unrouted > 0 {
		fmt.Fprintf(w, "  %d legacy keys match no rule and were not verified (set unknown: BUCKET or add rules)\n", r.Unrouted)
	}
	if len(r.Differences) > 0 {
		const show = 20
		fmt.Fprintf(w, "\ndifferences (%d listed", len(r.Differences))
		if len(r.Differences) > show {
			fmt.Fprintf(w, ", first %d shown; --output json lists all", show)
		}
		fmt.Fprintln(w, "):")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for i, d := range r.Differences {
			if i == show {
				break
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\tlegacy %s\ttarget %s\t%s\n", d.Category, d.Bucket, printableKey(d.Key),
				factsText(d.Legacy), factsText(d.Target), d.Detail)
		}
		tw.Flush()
	}
	if r.CapHit {
		fmt.Fprintf(w, "\nthe cap of %d differing keys was hit: %d more differing keys were counted but not re-checked or listed (raise --max-diffs)\n", r.MaxDiffs, r.Unlisted)
	}
	fmt.Fprintln(w, "\nresult: "+verdictText(r, parity, rolled))
}

// verdictText is the report's last line.
func verdictText(r *verify.Result, parity, rolled []verify.BucketResult) string {
	names := func(bs []verify.BucketResult) string {
		var n []string
		for _, b := range bs {
			n = append(n, b.Bucket)
		}
		return strings.Join(n, ", ")
	}
	switch {
	case r.OK && len(rolled) == 0:
		return "PARITY"
	case r.OK && len(parity) == 0:
		return "ROLLED BACK (every target holds none of redisplit's keys)"
	case r.OK:
		return "PARITY (" + names(parity) + "), ROLLED BACK (" + names(rolled) + ")"
	}
	if ExitCode(verifyExit(r)) == ExitRefused {
		return "NOT VERIFIED: a target evicts keys of a bucket that must lose none (exit 4)"
	}
	return "DIFFERENCES (exit 3)"
}

func factsText(f verify.Facts) string {
	if !f.Exists {
		return "absent"
	}
	ttl := "no ttl"
	if f.TTLms >= 0 {
		ttl = "ttl " + (time.Duration(f.TTLms) * time.Millisecond).Round(time.Millisecond).String()
	}
	return f.Type + ", " + ttl
}

// printableKey quotes a key (Go syntax: lossless, printable, XML-safe) unless
// it is valid UTF-8 made of printable characters other than space, quote and
// backslash. Control bytes would otherwise reach a terminal, and XML cannot
// hold them at all.
func printableKey(k string) string {
	if utf8.ValidString(k) && strings.IndexFunc(k, func(r rune) bool { return !unicode.IsPrint(r) || r == ' ' || r == '"' || r == '\\' }) < 0 {
		return k
	}
	return strconv.Quote(k)
}

// JUnit XML: one test suite, one test case per bucket, failing with the
// bucket's persistent differences.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

func writeJUnit(path string, r *verify.Result) error {
	s := junitSuite{Name: "redisplit verify", Time: fmt.Sprintf("%.3f", r.Seconds)}
	for _, b := range r.Buckets {
		c := b.Counts
		tc := junitCase{Name: "parity " + b.Bucket, Classname: "redisplit.verify." + b.Bucket,
			SystemOut: fmt.Sprintf("target %s: %d keys compared, %d in flux, %d evicted, %d foreign", b.Target, c.Compared, c.InFlux, c.Evicted, c.Foreign)}
		msg := fmt.Sprintf("%d missing, %d extra, %d type, %d value, %d ttl", c.Missing, c.Extra, c.Type, c.Value, c.TTL)
		if b.Check == verify.RolledBackCheck {
			tc.Name, tc.SystemOut = "rolled back "+b.Bucket, fmt.Sprintf("target %s: %s", b.Target, b.Statement)
			msg = fmt.Sprintf("%d keys left behind", c.LeftBehind)
		}
		if !b.OK {
			var body strings.Builder
			n := 0
			for _, d := range r.Differences {
				if d.Bucket != b.Bucket || !d.Category.Persistent() {
					continue
				}
				if n++; n > 1000 {
					body.WriteString("... (see --output json for every key)\n")
					break
				}
				fmt.Fprintf(&body, "%s %s: legacy %s, target %s %s\n", d.Category, printableKey(d.Key), factsText(d.Legacy), factsText(d.Target), d.Detail)
			}
			if b.Refusal != "" && b.Parity {
				msg = b.Refusal
			}
			tc.Failure = &junitFailure{Message: msg, Body: body.String()}
			s.Failures++
		}
		s.Cases = append(s.Cases, tc)
	}
	s.Tests = len(s.Cases)
	b, err := xml.MarshalIndent(junitSuites{Suites: []junitSuite{s}}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append([]byte(xml.Header), append(b, '\n')...), 0o644); err != nil {
		return fmt.Errorf("--junit: %w", err)
	}
	return nil
}
