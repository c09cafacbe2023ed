package cmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/scan"
)

func init() { register(newScanCmd) }

type scanOptions struct {
	planOut     string
	keysOut     string
	maxPatterns int
	masters     int
}

func newScanCmd(app *App) *cobra.Command {
	var o scanOptions
	c := &cobra.Command{
		Use:   "scan",
		Short: "Classify every key of legacy, report per bucket, propose rules, check preflight",
		Long: `Scan SCANs the legacy instance once and, per batch, pipelines TYPE, PTTL, OBJECT ENCODING and
MEMORY USAGE key SAMPLES 0. Every key is routed by the plan (--plan) or by the config's rules and the
framework presets. Keys no rule routes are grouped into normalised patterns (ids, numbers, hashes and
dates collapsed), and each pattern gets a proposed bucket with its evidence and a confidence; proposals
with confidence >= 0.70 count as routed and become active rules in --plan-out, lower ones are written
as comments for a person to decide.

The report gives per bucket keys, bytes, type mix, TTL histogram and top patterns; unknown patterns with
sample keys; keys that expired during the scan; preflight verdicts (version, maxmemory and policy,
eviction, notify-keyspace-events, ACL permissions, replica and cluster mode) and sizing advice per
target, and the cache cluster's skew forecast for --cache-masters masters (keys and bytes per node,
hottest slots, hash-tagged families and big keys; a warning with the fix when a node would hold far
more than its share; keys routed to cache by proposals are included with --keys-out).
--output json gives the same report as JSON (schema: docs/scan-report.md).

Scan writes nothing to Redis. It works against a replica and on any db (redis://host:port/3).
Memory stays bounded whatever the keyspace size.`,
		Example: `  redisplit scan --legacy redis://10.0.0.5:6379/0 --plan-out plan.yaml
  REDISPLIT_LEGACY_PASSWORD=... redisplit scan --legacy redis://scanner@10.0.0.5:6379 --max-ops 50000
  redisplit scan --sample 10 --keys-out keys.jsonl -o json > report.json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error { return runScan(c, app, o) },
	}
	f := c.Flags()
	f.Int("count", 1000, "SCAN COUNT hint (keys per batch)")
	f.Int("max-ops", 0, "commands per second sent to legacy (0: no cap)")
	f.Float64("sample", 100, "percent of keys, chosen by a hash of the name, that get MEMORY USAGE; bytes of the rest are extrapolated")
	f.StringVar(&o.planOut, "plan-out", "", "write the routing plan (rules, presets, proposals with evidence) to this YAML file")
	f.StringVar(&o.keysOut, "keys-out", "", "write one JSON line per key (key, type, ttl_ms, bytes, bucket, rule) to this file")
	f.IntVar(&o.maxPatterns, "max-patterns", 10000, "distinct key patterns tracked; the rest are folded into \"(other patterns)\"")
	f.IntVar(&o.masters, "cache-masters", scan.DefaultCacheMasters, "masters of the cache Redis Cluster the skew forecast is for (as targets init --cache-masters)")
	limit(f, "count", 1, config.MaxScanCount)
	atLeast(f, "max-ops", 0)
	limit(f, "sample", config.MinSample, config.MaxSample)
	limit(f, "max-patterns", 1, 1_000_000)
	limit(f, "cache-masters", 3, 1000) // targets init's range
	app.BindFlag(c, "count", "scan.count")
	app.BindFlag(c, "max-ops", "scan.max_ops")
	app.BindFlag(c, "sample", "scan.sample")
	return c
}

func runScan(c *cobra.Command, app *App, o scanOptions) error {
	ctx := c.Context()
	cfg, err := app.Config()
	if err != nil {
		return err
	}
	cl, hash, err := classify.Router(cfg)
	if err != nil {
		return err
	}
	// Fail before an hour-long scan, not after it.
	for flag, path := range map[string]string{"--plan-out": o.planOut, "--keys-out": o.keysOut} {
		if path == "" {
			continue
		}
		f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
		if err != nil {
			return &config.Error{Field: flag, Msg: fmt.Sprintf("cannot write next to %s: %v", path, err)}
		}
		f.Close()
		os.Remove(f.Name())
	}
	rdb, err := redisconn.Legacy(ctx, cfg.Legacy)
	if err != nil {
		return err
	}
	defer rdb.Close()

	defer collectLessOften()()
	var bar *Progress
	opts := scan.Options{
		Count: cfg.Scan.Count, MaxOps: cfg.Scan.MaxOps, SamplePercent: cfg.Scan.Sample,
		MaxPatterns: o.maxPatterns, KeysOut: o.keysOut, CacheMasters: o.masters,
		Started:  func(n int64) { bar = app.NewProgress("scan", n) },
		Progress: func(n int64) { bar.Set(n) },
	}
	r, err := scan.Run(ctx, rdb, cl, opts)
	bar.Finish()
	if err != nil {
		return err
	}
	r.Legacy.Addr = redisconn.RedactURL(r.Legacy.Addr)
	r.PlanHash = hash
	if o.planOut != "" {
		h, err := writeScanPlan(o.planOut, cl, r)
		if err != nil {
			return err
		}
		r.PlanOut, r.PlanHash = o.planOut, h
	}
	if app.Output == "json" {
		enc := json.NewEncoder(app.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	renderScan(app.Out, r)
	return nil
}

// writeScanPlan writes the plan: the routing rules in use (config rules and
// expanded presets, or the --plan file's rules) followed by the accepted
// proposals; proposals below the threshold go into the header as comments.
// The file is replaced atomically. It returns the written plan's hash.
func writeScanPlan(path string, cl *classify.Classifier, r *scan.Report) (string, error) {
	accepted, _ := r.ProposalRules(true)
	_, weak := r.ProposalRules(false)
	plan := &classify.Plan{Version: classify.PlanVersion, Rules: append(cl.Rules(), accepted...)}
	var h strings.Builder
	fmt.Fprintf(&h, "redisplit routing plan, written by `redisplit scan` on %s from %s db %d.\n",
		r.StartedAt.Format(time.RFC3339), r.Legacy.Addr, r.Legacy.DB)
	h.WriteString("Rules are evaluated in order; the first match wins. Review the proposals at the end\n")
	h.WriteString("(from: proposal) and their evidence before migrating; edit or delete any of them.\n")
	if len(weak) > 0 {
		fmt.Fprintf(&h, "\nProposals below confidence %.2f (NOT active; move one into rules: to accept it):\n", scan.AcceptConfidence)
		for _, p := range weak {
			m := fmt.Sprintf("glob: %q", p.Glob)
			if p.Regex != "" {
				m = fmt.Sprintf("regex: %q", p.Regex)
			}
			fmt.Fprintf(&h, "  - {%s, bucket: %s, from: proposal}   # confidence %.2f, %d keys; decided by: %s; %s\n",
				m, p.Bucket, p.Confidence, p.Keys, p.DecidedBy, strings.Join(p.Evidence, "; "))
		}
	}
	var unknown int64
	for _, b := range r.Buckets {
		if b.Bucket == string(classify.Unknown) {
			unknown = b.Keys
		}
	}
	if unknown > 0 {
		fmt.Fprintf(&h, "\n%d keys match no rule here; migrate refuses while any remain unrouted (see `unknown:` in the config).\n", unknown)
	}
	var buf bytes.Buffer
	if err := classify.WritePlan(&buf, plan, h.String()); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("plan-out: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return "", fmt.Errorf("plan-out: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("plan-out: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("plan-out: %w", err)
	}
	return plan.Hash(), nil
}

func pct(n, total int64) string {
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(total))
}

func bytesCol(n, margin int64) string {
	if margin > 0 {
		return fmt.Sprintf("%s ±%s", scan.HumanBytes(n), scan.HumanBytes(margin))
	}
	return scan.HumanBytes(n)
}

// renderScan prints the report for humans. Everything it shows is in the
// JSON report too.
func renderScan(w io.Writer, r *scan.Report) {
	role := r.Legacy.Role
	if role == "slave" {
		role = "replica"
	}
	fmt.Fprintf(w, "redisplit scan of %s db %d (Redis %s, %s): %d keys in %s\n",
		r.Legacy.Addr, r.Legacy.DB, r.Legacy.Version, role, r.Scanned, (time.Duration(r.DurationMs) * time.Millisecond).Round(10*time.Millisecond))
	for _, v := range r.Preflight {
		switch v.Status {
		case scan.StatusCritical:
			fmt.Fprintf(w, "\n!!! %s\n", v.Message)
		case scan.StatusFail:
			fmt.Fprintf(w, "\n!! %s: %s\n", v.Check, v.Message)
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "bucket\tkeys\t%\tbytes\tby rules\tby proposals\t")
	for _, b := range r.Buckets {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t\n", b.Bucket, b.Keys, pct(b.Keys, r.Scanned),
			bytesCol(b.Bytes, b.BytesMargin95), b.KeysByRules, b.KeysByProposals)
	}
	tw.Flush()
	fmt.Fprintf(w, "expired during scan: %d (keys SCAN returned that were gone by TYPE/PTTL; counted nowhere else)\n", r.ExpiredDuringScan)
	fmt.Fprintf(w, "bytes: %s\n", r.Sampling.Note)

	for _, b := range r.Buckets {
		if b.Keys == 0 {
			continue
		}
		fmt.Fprintf(w, "\n== %s: %d keys, %s\n", b.Bucket, b.Keys, bytesCol(b.Bytes, b.BytesMargin95))
		fmt.Fprintf(w, "   types: %s\n", countList(b.Types))
		fmt.Fprintf(w, "   TTL:   %s\n", bandList(b.TTL))
		if len(b.Encodings) > 0 {
			fmt.Fprintf(w, "   encodings: %s\n", countList(b.Encodings))
		}
		fmt.Fprintln(w, "   top patterns:")
		for _, p := range b.TopPatterns {
			from := p.Rule
			if from == "" {
				from = "no rule"
			}
			fmt.Fprintf(w, "     %9d  %10s  %s  [%s]\n", p.Keys, scan.HumanBytes(p.Bytes), p.Pattern, from)
		}
	}

	if len(r.UnknownPatterns) > 0 {
		fmt.Fprintln(w, "\n== unknown patterns (no rule, no accepted proposal)")
		for _, p := range r.UnknownPatterns {
			var s []string
			for _, k := range p.Samples {
				s = append(s, k.String())
			}
			fmt.Fprintf(w, "     %9d  %10s  %s  types: %s\n", p.Keys, scan.HumanBytes(p.Bytes), p.Pattern, countList(p.Types))
			fmt.Fprintf(w, "                            samples: %s\n", strings.Join(s, ", "))
			if p.Proposal != nil {
				if p.Proposal.Bucket == classify.Unknown {
					if p.Proposal.Reason != "" {
						fmt.Fprintf(w, "                            why: %s\n", p.Proposal.Reason)
						fmt.Fprintf(w, "                            evidence: %s\n", strings.Join(p.Proposal.Evidence, "; "))
					} else {
						fmt.Fprintf(w, "                            no convincing evidence: %s\n", strings.Join(p.Proposal.Evidence, "; "))
					}
				} else {
					fmt.Fprintf(w, "                            weak proposal %s (confidence %.2f, decided by %s): %s\n", p.Proposal.Bucket, p.Proposal.Confidence, p.Proposal.DecidedBy, strings.Join(p.Proposal.Evidence, "; "))
				}
				if p.Proposal.Fix != "" {
					fmt.Fprintf(w, "                            fix: %s\n", p.Proposal.Fix)
				}
			}
		}
	}
	var props []scan.Proposal
	for _, p := range r.Proposals {
		if p.Bucket != classify.Unknown {
			props = append(props, p)
		}
	}
	if len(props) > 0 {
		fmt.Fprintf(w, "\n== proposals (accepted from confidence %.2f)\n", scan.AcceptConfidence)
		for _, p := range props {
			state := "comment "
			if p.Accepted {
				state = "ACCEPTED"
			}
			merged := ""
			if p.Merged > 1 {
				merged = fmt.Sprintf(", %d patterns merged", p.Merged)
			}
			fmt.Fprintf(w, "   %s %.2f  %-9s %s  (%d keys%s)\n", state, p.Confidence, p.Bucket, p.Matcher(), p.Keys, merged)
			if p.DecidedBy != "" {
				fmt.Fprintf(w, "                   decided by: %s\n", p.DecidedBy)
			}
			fmt.Fprintf(w, "                   evidence: %s\n", strings.Join(p.Evidence, "; "))
			if p.Reason != "" {
				fmt.Fprintf(w, "                   not active: %s; fix: %s\n", p.Reason, p.Fix)
			}
		}
	}
	if r.Patterns.KeysOther > 0 {
		fmt.Fprintf(w, "\nnote: %d distinct patterns tracked (cap %d); %d keys were folded into %q\n",
			r.Patterns.Tracked, r.Patterns.Cap, r.Patterns.KeysOther, scan.OtherPattern)
	}

	if fc := r.CacheForecast; fc != nil && fc.Keys > 0 {
		fmt.Fprintln(w, "\n== cache skew forecast (Redis Cluster, --cache-masters)")
		renderForecast(w, &fc.Forecast)
		for _, o := range fc.Overloaded {
			fmt.Fprintf(w, "  WARNING: %s\n           fix: %s\n", o.Message, o.Fix)
		}
		if fc.NotForecast > 0 {
			fmt.Fprintf(w, "  note: %d cache keys routed by proposals are not in the forecast (scan with --keys-out to include them)\n", fc.NotForecast)
		}
	}

	fmt.Fprintln(w, "\n== preflight")
	for _, v := range r.Preflight {
		fmt.Fprintf(w, "   %-10s %-22s %s\n", "["+strings.ToUpper(v.Status)+"]", v.Check, v.Message)
	}
	if len(r.Sizing) > 0 {
		fmt.Fprintln(w, "\n== sizing advice per target")
		for _, s := range r.Sizing {
			mm := "unknown"
			if s.MaxMemory >= 0 {
				mm = scan.HumanBytes(s.MaxMemory)
			}
			fmt.Fprintf(w, "   %-9s maxmemory %-10s (%s, data %s)  maxmemory-policy %s  persistence: %s\n",
				s.Bucket, mm, s.Headroom, scan.HumanBytes(s.DataBytes), s.MaxMemoryPolicy, s.Persistence)
			if s.Note != "" {
				fmt.Fprintf(w, "             %s\n", s.Note)
			}
		}
	}
	fmt.Fprintln(w)
	if r.PlanOut != "" {
		fmt.Fprintf(w, "plan written to %s (hash %s)\n", r.PlanOut, short(r.PlanHash))
	}
	if r.KeysOut != "" {
		fmt.Fprintf(w, "keys written to %s\n", r.KeysOut)
	}
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func countList(m map[string]int64) string {
	var order []string
	for _, k := range append(append([]string{}, scan.Types...), scan.Encodings...) {
		if _, ok := m[k]; ok {
			order = append(order, k)
		}
	}
	seen := map[string]bool{}
	var parts []string
	for _, k := range order {
		if !seen[k] {
			seen[k] = true
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func bandList(bs []scan.BandCount) string {
	var parts []string
	for _, b := range bs {
		if b.Keys > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", b.Band, b.Keys))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " | ")
}
