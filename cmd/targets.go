package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/layout"
	"github.com/redisplit/redisplit/layout/skew"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/scan"
	"github.com/redisplit/redisplit/store"
)

func init() { register(newTargetsCmd) }

func newTargetsCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "targets",
		Short: "Generate the workload-separated target layout from a scan, and check live targets against it",
		Long: `targets init writes the configs of every target store (cache cluster, session master, replicas
and sentinels, queue, rate limit), their ACL files, the cluster creation script, SQS queue
definitions, the targets section of redisplit.yaml and a compose file, from a scan report.
targets check checks every configured target against its bucket's profile. See docs/targets.md.`,
	}
	c.AddCommand(newTargetsInitCmd(app), newTargetsCheckCmd(app))
	return c
}

type targetsInitOptions struct {
	scan, out, keys string
	force           bool
	visibility      time.Duration
	retention       time.Duration
	o               layout.Options
}

func newTargetsInitCmd(app *App) *cobra.Command {
	o := targetsInitOptions{o: layout.DefaultOptions()}
	c := &cobra.Command{
		Use:   "init --scan report.json --out DIR",
		Short: "Write the target layout (configs, cluster and sentinel setup, ACLs, SQS queues) from a scan report",
		Long: `Init reads a scan report (redisplit scan -o json > report.json) and writes into DIR, for review
and commit:

  cache/node-N.conf, cache/create-cluster.sh   the cache Redis Cluster (allkeys-lru, no persistence)
  session/master.conf, replica-N.conf,         sessions: master + replicas (noeviction, AOF everysec)
  session/sentinel-N.conf                      behind sentinels (quorum: a majority)
  queue/queue.conf  or  queue/sqs-queues.json  queues: a durable Redis, or SQS queues with dead-letter queues
  ratelimit/ratelimit.conf                     rate limits (noeviction)
  acl/BUCKET.acl                               users: the application, redisplit (least privilege), replication
  redisplit.yaml, compose.yaml, README.md      the targets section, the same layout on one machine, an index

maxmemory comes from scan's sizing advice plus --growth; with --keys (scan's --keys-out export) the
cache nodes are sized for the fullest node of the skew forecast, which is also printed and written to
cache/skew.json. Every setting carries a comment saying why. Passwords never appear in the layout: the
ACL files hold SHA-256 hashes of the password files in --secrets, and the configs include the
snippets install-secrets.sh writes there. --no-auth leaves passwords out for a local trial; --bind and
--base-port put the whole layout on one machine. Init refuses to write into a non-empty DIR without
--force.`,
		Example: `  redisplit targets init --scan report.json --keys keys.jsonl --out layout/
  redisplit targets init --scan report.json --out /tmp/trial --no-auth --bind 127.0.0.1 --base-port 7000
  redisplit targets init --scan report.json --out layout/ --queue sqs --sqs-region eu-west-1 --sqs-account 123456789012`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error { return runTargetsInit(c.Context(), app, o) },
	}
	f := c.Flags()
	f.StringVar(&o.scan, "scan", "", "scan report (redisplit scan -o json > report.json); required")
	f.StringVar(&o.out, "out", "", "directory to write the layout into; required")
	f.StringVar(&o.keys, "keys", "", "scan's per-key export (--keys-out): forecast the cache cluster's skew and size its nodes by it")
	f.BoolVar(&o.force, "force", false, "overwrite the files of an existing layout in --out")
	f.IntVar(&o.o.CacheMasters, "cache-masters", o.o.CacheMasters, "cache cluster masters (at least 3)")
	f.IntVar(&o.o.CacheReplicas, "cache-replicas", o.o.CacheReplicas, "replicas per cache master")
	f.IntVar(&o.o.SessionReplicas, "session-replicas", o.o.SessionReplicas, "replicas of the session master (at least 1)")
	f.IntVar(&o.o.Sentinels, "sentinels", o.o.Sentinels, "sentinels watching the session master (odd, at least 3)")
	f.Float64Var(&o.o.GrowthPercent, "growth", o.o.GrowthPercent, "growth margin in percent on top of scan's sizing advice")
	f.StringVar(&o.o.RedisVersion, "redis-version", "", "target Redis version, major.minor (default: legacy's, so DUMP payloads restore as they are; at least 6.2)")
	f.BoolVar(&o.o.NoAuth, "no-auth", false, "no passwords anywhere (a local trial)")
	f.StringVar(&o.o.Secrets, "secrets", o.o.Secrets, "absolute directory of the password files (BUCKET-USER.password) on this machine and the servers")
	f.StringVar(&o.o.Bind, "bind", "", "run every server on this IP address with consecutive ports (the whole layout on one machine)")
	f.IntVar(&o.o.BasePort, "base-port", 0, "first port (default 7000 with --bind; else every server on 6379, sentinels on 26379)")
	f.StringVar(&o.o.InstallDir, "install-dir", "", "absolute path of the layout on the servers, where the configs find their ACL file (default: --out)")
	f.StringVar(&o.o.Queue, "queue", o.o.Queue, "queue target: redis (a durable Redis) or sqs (queue definitions for aws sqs create-queue)")
	f.BoolVar(&o.o.SQS.Standard, "sqs-standard", false, "standard SQS queues instead of FIFO")
	f.DurationVar(&o.visibility, "sqs-visibility", time.Duration(o.o.SQS.VisibilitySeconds)*time.Second, "SQS visibility timeout: longer than a job runs")
	f.DurationVar(&o.retention, "sqs-retention", time.Duration(o.o.SQS.RetentionSeconds)*time.Second, "SQS message retention (at most 336h)")
	f.IntVar(&o.o.SQS.MaxReceiveCount, "sqs-max-receive", o.o.SQS.MaxReceiveCount, "deliveries before an SQS item moves to the dead-letter queue")
	f.StringVar(&o.o.SQS.Region, "sqs-region", o.o.SQS.Region, "AWS region of the queues (in the dead-letter queues' ARNs)")
	f.StringVar(&o.o.SQS.Account, "sqs-account", o.o.SQS.Account, "AWS account of the queues (in the dead-letter queues' ARNs)")
	f.StringVar(&o.o.Image, "image", "", "Redis image of the compose file (default redis:VERSION)")
	f.StringVar(&o.o.MasterName, "master-name", o.o.MasterName, "the name the sentinels monitor the session master by")
	limit(f, "cache-masters", 3, 1000)
	limit(f, "cache-replicas", 0, 16)
	limit(f, "session-replicas", 1, 16)
	limit(f, "sentinels", 3, 99) // odd: checked by the layout
	limit(f, "growth", 0.0, 10_000)
	limit(f, "base-port", 0, 65535)                            // 0: the default (7000 with --bind)
	limit(f, "sqs-visibility", time.Duration(0), 12*time.Hour) // SQS's range
	limit(f, "sqs-retention", time.Minute, 336*time.Hour)      // SQS's range
	limit(f, "sqs-max-receive", 1, 1000)                       // SQS's range
	return c
}

// readScanReport reads a scan JSON report; errors are *config.Error for field.
func readScanReport(field, path string) (*scan.Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, config.Errorf(field, "cannot read %s: %v", path, err)
	}
	var r scan.Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, config.Errorf(field, "%s is not a scan report (redisplit scan -o json > report.json): %v", path, err)
	}
	if r.SchemaVersion != scan.SchemaVersion {
		return nil, config.Errorf(field, "%s has schema_version %d; this redisplit reads %d", path, r.SchemaVersion, scan.SchemaVersion)
	}
	return &r, nil
}

type targetsInitResult struct {
	Out string `json:"out"`
	*layout.Layout
}

func runTargetsInit(ctx context.Context, app *App, o targetsInitOptions) error {
	if o.scan == "" {
		return config.Errorf("--scan", "required: the scan report to build the layout from (redisplit scan -o json > report.json)")
	}
	if o.out == "" {
		return config.Errorf("--out", "required: the directory to write the layout into")
	}
	rep, err := readScanReport("--scan", o.scan)
	if err != nil {
		return err
	}
	out, err := filepath.Abs(o.out)
	if err != nil {
		return config.Errorf("--out", "%v", err)
	}
	opts := o.o
	opts.SQS.VisibilitySeconds = int(o.visibility / time.Second)
	opts.SQS.RetentionSeconds = int(o.retention / time.Second)
	if opts.InstallDir == "" {
		opts.InstallDir = out
	}
	if o.keys != "" {
		f, err := os.Open(o.keys)
		if err != nil {
			return config.Errorf("--keys", "cannot read %s: %v", o.keys, err)
		}
		fc, err := layout.ForecastKeys(f, "cache", opts.CacheMasters)
		f.Close()
		if err != nil {
			return err
		}
		opts.Forecast = fc
	}
	opts.Hashes = layout.HashFiles(layout.PasswordFiles(rep, opts))
	l, err := layout.Generate(rep, opts)
	if err != nil {
		return err
	}
	if err := layout.Write(out, l, o.force); err != nil {
		return err
	}
	res := targetsInitResult{Out: out, Layout: l}
	if app.Output == "json" {
		enc := json.NewEncoder(app.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	renderTargetsInit(app.Out, res)
	return nil
}

func renderTargetsInit(w io.Writer, r targetsInitResult) {
	fmt.Fprintf(w, "redisplit targets init: a Redis %s layout in %s (%d files)\n\n", r.Version, r.Out, len(r.Files))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  bucket\tkind\tmaxmemory\tsized from")
	for _, s := range r.Stores {
		mm := "-"
		if s.MaxMemory > 0 {
			mm = scan.HumanBytes(s.MaxMemory)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", s.Bucket, s.Kind, mm, s.Sizing)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  server\trole\taddress\tconfig")
	for _, s := range r.Servers {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", s.Name, s.Role, s.Addr(), s.Conf)
	}
	tw.Flush()
	if fc := r.Forecast; fc != nil {
		fmt.Fprintln(w)
		renderForecast(w, fc)
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintln(w, "\nwarnings:")
		for _, x := range r.Warnings {
			fmt.Fprintln(w, "  - "+x)
		}
	}
	fmt.Fprintf(w, "\nnext: review and commit %s; start the servers (README.md there), run cache/create-cluster.sh once,\nthen redisplit targets check --config %s\n",
		r.Out, filepath.Join(r.Out, "redisplit.yaml"))
}

func renderForecast(w io.Writer, fc *skew.Forecast) {
	est := ""
	if fc.BytesEstimated {
		est = " (bytes of unmeasured keys estimated)"
	}
	fmt.Fprintf(w, "cache cluster forecast: %d keys, %s over %d masters%s\n", fc.Keys, scan.HumanBytes(fc.Bytes), fc.Masters, est)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  node\tslots\tkeys\t%\tbytes\t%\t")
	for _, n := range fc.Nodes {
		fmt.Fprintf(tw, "  %d\t%s\t%d\t%.1f%%\t%s\t%.1f%%\t\n", n.Node, n.Slots, n.Keys, 100*n.KeyShare, scan.HumanBytes(n.Bytes), 100*n.ByteShare)
	}
	tw.Flush()
	if len(fc.HotSlots) > 0 && fc.HotSlots[0].XMean >= 10 {
		fmt.Fprint(w, "  hot slots (x10 the mean or more):")
		for i, s := range fc.HotSlots {
			if i == 5 || s.XMean < 10 {
				break
			}
			fmt.Fprintf(w, " %d (node %d, %d keys, %s, x%.0f the mean", s.Slot, s.Node, s.Keys, scan.HumanBytes(s.Bytes), s.XMean)
			if s.Cause != "" {
				fmt.Fprint(w, ", "+s.Cause)
			}
			fmt.Fprint(w, ")")
		}
		fmt.Fprintln(w)
	}
	for _, k := range fc.BigKeys {
		fmt.Fprintf(w, "  big key %s: %s (%.1f%%), slot %d, node %d\n", skew.Text(k.Key, k.KeyB64), scan.HumanBytes(k.Bytes), 100*k.Share, k.Slot, k.Node)
	}
}

type targetsCheckOptions struct {
	scan    string
	buckets []string
}

func newTargetsCheckCmd(app *App) *cobra.Command {
	var o targetsCheckOptions
	c := &cobra.Command{
		Use:   "check",
		Short: "Check every configured target against its bucket's profile (policy, persistence, replicas, sentinels, cluster, memory)",
		Long: `Check connects to every target of the configuration and checks it against its bucket's profile,
each check with a verdict and, unless it passed, the fix:

  reachable               every server of the target answers
  version                 against legacy's: an older target rejects legacy's DUMP payloads (logical copy)
  maxmemory               set, not nearly full, and with headroom over the bucket's bytes (--scan)
  maxmemory-policy        allkeys-* for cache; noeviction for session, queue and ratelimit
  persistence             AOF with appendfsync everysec or always for session and queue; none for cache
  notify-keyspace-events  key events of every class (the reverse mirror after cutover)
  replication             session: every replica the sentinels know is online, lag under 10 s
  sentinel-count, sentinel-quorum, sentinel-master
                          every configured sentinel answers (at least 3), CKQUORUM OK, they agree on the master
  cluster-state, cluster-slots, cluster-masters, cluster-memory
                          state ok and all 16384 slots covered on every node, at least 3 masters, the
                          masters' keys and data within x1.3 of each other

Checks only read (INFO, CONFIG GET, CLUSTER INFO/NODES/SLOTS, SENTINEL). --scan gives the bucket's bytes
(for headroom) and legacy's version; without it legacy's version is read from legacy.url when set.
It exits 0 when no check fails (warnings do not fail it) and 5 otherwise; -o json gives every verdict.
migrate's preflight runs these same checks, plus room for what it is about to copy: it refuses (exit 4)
on an evicting policy of session, queue or ratelimit and on no room, and warns about every other finding.` +
			exitStatusOf("targets check"),
		Example: `  redisplit targets check --config layout/redisplit.yaml
  redisplit targets check --scan report.json -o json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error { return runTargetsCheck(c.Context(), app, o) },
	}
	c.Flags().StringVar(&o.scan, "scan", "", "scan report: the buckets' bytes (maxmemory headroom) and legacy's version")
	c.Flags().StringSliceVar(&o.buckets, "bucket", nil, "check only these buckets (repeatable)")
	return c
}

type targetsCheckResult struct {
	Verdicts []layout.Verdict `json:"verdicts"`
	Failed   int              `json:"failed"`
	Warnings int              `json:"warnings"`
	Passed   bool             `json:"passed"`
}

func runTargetsCheck(ctx context.Context, app *App, o targetsCheckOptions) error {
	cfg, err := app.Config()
	if err != nil {
		return err
	}
	if len(cfg.Targets) == 0 {
		return config.Errorf("targets", "the configuration names no target (targets init writes a redisplit.yaml with them)")
	}
	for _, b := range o.buckets {
		if !config.IsBucket(b) {
			return config.Errorf("--bucket", "%q is not a bucket (cache, session, queue, ratelimit)", b)
		}
	}
	var rep *scan.Report
	if o.scan != "" {
		if rep, err = readScanReport("--scan", o.scan); err != nil {
			return err
		}
	}
	var res targetsCheckResult
	legacyVersion := ""
	switch {
	case rep != nil:
		legacyVersion = rep.Legacy.Version
	case cfg.Legacy.URL != "":
		v, err := legacyVersionOf(ctx, cfg.Legacy)
		if err != nil {
			res.Verdicts = append(res.Verdicts, layout.Verdict{Bucket: "legacy", Check: layout.CheckVersion, Status: layout.StatusInfo,
				Found: "legacy's version unknown: " + err.Error(), Fix: "give --scan report.json"})
		}
		legacyVersion = v
	}
	for _, b := range config.Buckets {
		if len(o.buckets) > 0 && !contains(o.buckets, b) {
			continue
		}
		t, ok := cfg.Targets[b]
		if !ok {
			res.Verdicts = append(res.Verdicts, layout.Verdict{Bucket: b, Check: layout.CheckReachable, Status: layout.StatusInfo,
				Found: "no target configured: migrate leaves this bucket on legacy"})
			continue
		}
		if t.Kind == config.KindSQS {
			res.Verdicts = append(res.Verdicts, layout.Verdict{Bucket: b, Check: layout.CheckReachable, Status: layout.StatusInfo,
				Found: "SQS target: not checked (queue/sqs-queues.json defines the queues)"})
			continue
		}
		p := layout.Profile{Bucket: b, LegacyVersion: legacyVersion}
		if rep != nil {
			for _, br := range rep.Buckets {
				if br.Bucket == b && br.Bytes >= 0 {
					p.DataBytes = br.Bytes + br.BytesMargin95
				}
			}
		}
		s, err := store.Open(ctx, b, t)
		if err != nil {
			res.Verdicts = append(res.Verdicts, layout.Verdict{Bucket: b, Check: layout.CheckReachable, Status: layout.StatusFail,
				Found: err.Error(), Fix: "start the target, or fix its address and credentials in the config"})
			continue
		}
		res.Verdicts = append(res.Verdicts, layout.Check(ctx, s, t, p)...)
		s.Close()
	}
	var failed []string
	for _, v := range res.Verdicts {
		switch v.Status {
		case layout.StatusFail:
			res.Failed++
			failed = append(failed, v.Bucket+" "+v.Check)
		case layout.StatusWarn:
			res.Warnings++
		}
	}
	res.Passed = res.Failed == 0
	if app.Output == "json" {
		enc := json.NewEncoder(app.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		renderTargetsCheck(app.Out, res)
	}
	if res.Failed > 0 {
		return &ExitError{Code: ExitProfile, Err: fmt.Errorf("targets check: %d check(s) failed: %s", res.Failed, strings.Join(dedup(failed), ", "))}
	}
	return nil
}

func legacyVersionOf(ctx context.Context, e config.Endpoint) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := redisconn.Legacy(ctx, e)
	if err != nil {
		return "", err
	}
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "", redisconn.Explain(err, "legacy", c.Options().Addr)
	}
	return store.ParseInfo(info)["redis_version"], nil
}

func renderTargetsCheck(w io.Writer, r targetsCheckResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, v := range r.Verdicts {
		node := v.Node
		if node == "" {
			node = "-"
		}
		line := fmt.Sprintf("  %s\t%s\t%s\t%s\t%s", strings.ToUpper(string(v.Status)), v.Bucket, v.Check, node, v.Found)
		if v.Fix != "" {
			line += " -> " + v.Fix
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	verdict := "passed"
	if !r.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "\ntargets check %s: %d verdicts, %d failed, %d warnings\n", verdict, len(r.Verdicts), r.Failed, r.Warnings)
}

func dedup(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
