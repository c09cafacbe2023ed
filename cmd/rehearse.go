package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/config/configfile"
	"github.com/redisplit/redisplit/rehearse"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/topology"
	"github.com/redisplit/redisplit/topology/containers"
)

func init() { register(newRehearseCmd) }

type rehearseOptions struct {
	fromRDB   string
	synthetic int
	seed      uint64
	junit     string
	report    string
	image     string
	build     string
	backend   string
	fault     string
	workDir   string
	noLive    bool
	noCutover bool
	liveFor   time.Duration
	liveRate  float64
	liveWait  time.Duration
	queueTgt  string
}

func newRehearseCmd(app *App) *cobra.Command {
	o := &rehearseOptions{}
	c := &cobra.Command{
		Use:   "rehearse",
		Short: "Run scan → migrate --dual-write under a live load → verify → cutover → rollback after cutover / complete on throw-away containers, for CI",
		Long: `rehearse starts an ephemeral copy of the configured topology in Docker containers — the same
target kinds and node counts as the config's targets (a cluster gets at least 3 masters; a sentinel
target is a master, a replica and 3 sentinels); without --config the default layout (docs/rehearse.md): a 3-master
cache cluster, sessions on a master+replica behind 3 sentinels, standalone queue and ratelimit stores —
plus an ephemeral legacy loaded from an RDB snapshot (--from-rdb) or with a synthetic keyspace of N
framework-style keys of every bucket (--synthetic N). It then runs, through the same code as the
commands themselves,

  redisplit scan → migrate --dual-write --yes (under a live load) → verify → cutover --bucket B --yes
  (every bucket) → rollback --bucket session --yes → complete --bucket B --purge-legacy --yes (the others)

The migrate phase is the live phase: migrate --dual-write runs in this process while a live write
load hits legacy (every Redis type; sessions touched, counters incremented, jobs pushed and popped,
keys deleted, renamed across buckets and expiring; go-redis/cache and redis_rate writing their own
keys) for --live-for at --live-rate writes/s, during the backfill and after it. Once the load stops,
the rehearsal waits until migrate has proven catch-up (what status --wait-caught-up waits for; at
most --live-timeout), runs verify (it must report parity) and compares every key of legacy and of
every target, both ways (type, value digest, expiry), while migrate still mirrors; then it stops
migrate still mirrors. Then every bucket is cut over, a simulated application writes directly to the
targets for 3 s (sessions and other keys updated, counters incremented, new keys, deletes), session
(else the first bucket) is rolled back after cutover and the others are completed with --purge-legacy;
migrate must then end by itself with exit 0. Checked on the servers: the rolled-back bucket's legacy
keys hold every write the application made on its target, and that target is empty again; the
completed buckets' targets hold those writes and legacy none of their keys. --no-cutover ends the
live flow as before: migrate stopped as SIGINT does (it must drain and exit 0), then rollback --yes;
every target must be empty and legacy exactly as it was before rollback. --no-live runs the one-pass flow instead (migrate --yes,
then verify; checked directly on the servers that every legacy key is on its target or expired by
its TTL, and after rollback that legacy is exactly as before the migration). The live load writes
database 0: a config whose legacy URL names another database needs --no-live.

It prints a Markdown summary (also written to --report) and writes JUnit XML (--junit) with one test
case per phase and bucket. Containers are always removed: on success, on failure and on Ctrl-C.

The Redis image is --image (default ` + containers.DefaultImage + `). When it is absent and cannot be
pulled (an air-gapped runner), --build auto (the default) builds ` + containers.LocalRepo + `:<version>
from this machine's redis-server binary; --build never fails instead; --build always uses the local
build. Use an image at least as new as the Redis that wrote the RDB. --backend process runs plain
redis-server processes instead of containers (no Docker needed; --from-rdb needs containers).

The config is --config, or redisplit.yaml when it exists. Only its routing settings (rules, presets,
unknown, plan, scan and rate limits) and its legacy URL's database number are used; its legacy and
target addresses are replaced by the ephemeral servers: rehearse never connects to the servers the
config names, and its commands never read the REDISPLIT_* environment (the real legacy's URL and
password, the state directory, ...): the ephemeral servers have no password. --output json prints
the result (every case, every command's exit code) as JSON instead of the Markdown summary; --report
still gets the Markdown.

--fault lose-key deletes one migrated key (a session when there is one) from its target right
after migrate (in the live flow: after catch-up, while migrate mirrors), to prove that the rehearsal
fails when a key is lost (a fault skips the cutover flow); --fault no-capture runs the live phase's migrate without --dual-write (a
one-pass backfill, the load after it), to prove that the comparison catches writes the mirror never
copied.

--queue-target sqs puts the queue bucket on SQS: the emulator github.com/Admiral-Piett/goaws v0.5.4,
in this process, through the real AWS SDK (a config whose queue target is kind: sqs gets the same;
--queue-target redis rehearses it on a standalone store). The queue bucket then holds plain job lists
only; a producer pushes jobs onto them on legacy while migrate --dual-write moves them, a consumer
works on SQS from the start; then cutover --bucket queue (producers switched), jobs sent to SQS
directly, complete --bucket queue (drains and ends the mover), and per list: conservation (verify
--consumers-started --producers-switched, and the rehearsal's own count of what entered the list)
and delivery (every job produced was received from SQS). The commands get throw-away AWS credentials
in their environment; nothing talks to AWS. --fault drop-queue-item takes one job off a list on
legacy before the move: conservation and delivery must fail for that list.

Exit status 3 means a key (or a queue job) was lost or changed; 1 that a phase failed.`,
		Example: `  redisplit rehearse --synthetic 100000 --report rehearsal.md --junit rehearsal.xml
  redisplit rehearse --config redisplit.yaml --from-rdb dump.rdb --image redis:7.2`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error { return runRehearse(c, app, o) },
	}
	f := c.Flags()
	f.StringVar(&o.fromRDB, "from-rdb", "", "load legacy from this RDB snapshot")
	f.IntVar(&o.synthetic, "synthetic", 0, "load legacy with N synthetic keys of every bucket (plus framework keys and big keys)")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the synthetic keyspace (same seed, same keys)")
	f.StringVar(&o.report, "report", "", "write the Markdown summary to this file")
	f.StringVar(&o.junit, "junit", "", "write a JUnit XML report to this file")
	f.StringVar(&o.image, "image", containers.DefaultImage, "Redis image of every container")
	f.StringVar(&o.build, "build", containers.BuildAuto, "build "+containers.LocalRepo+" from the host's redis-server: auto (when --image is unavailable), never, always")
	f.StringVar(&o.backend, "backend", "containers", "where servers run: containers (Docker) or process (local redis-server)")
	f.StringVar(&o.fault, "fault", "", "inject a fault to prove the rehearsal catches it: lose-key, no-capture, drop-queue-item (queue on SQS)")
	f.StringVar(&o.queueTgt, "queue-target", "", "where the queue bucket goes: redis (a standalone store) or sqs (the SQS emulator, in-process; standard queues); default: the config's, else redis")
	f.BoolVar(&o.noLive, "no-live", false, "the one-pass flow: migrate --yes without a live load (no --dual-write phase)")
	f.BoolVar(&o.noCutover, "no-cutover", false, "the live flow without cutover: stop migrate after the comparison and roll every bucket back")
	f.DurationVar(&o.liveFor, "live-for", 10*time.Second, "how long the live load writes to legacy while migrate --dual-write runs")
	f.Float64Var(&o.liveRate, "live-rate", 1000, "writes per second of the live load")
	f.DurationVar(&o.liveWait, "live-timeout", 60*time.Second, "how long to wait for catch-up after the live load stops")
	f.StringVar(&o.workDir, "work-dir", "", "keep the generated config, state and every command's output here (default: a temp dir, removed)")
	limit(f, "synthetic", 0, 10_000_000)
	limit(f, "live-for", 100*time.Millisecond, 24*time.Hour)
	limit(f, "live-rate", 1.0, 1e6)
	limit(f, "live-timeout", 100*time.Millisecond, 24*time.Hour)
	atLeast(f, "seed", uint64(0))
	return c
}

func runRehearse(c *cobra.Command, app *App, o *rehearseOptions) error {
	ctx := c.Context()
	if !app.Verbose {
		// go-redis logs every Sentinel master lookup of every command the
		// rehearsal runs; the report says what matters.
		redis.SetLogger(quietRedisLog{})
	}
	// Bad input fails here, before any server or image is started.
	if (o.fromRDB == "") == (o.synthetic <= 0) {
		return config.Errorf("--from-rdb/--synthetic", "give exactly one data source: --from-rdb FILE or --synthetic N (N > 0)")
	}
	if o.fromRDB != "" {
		if err := readableFile(o.fromRDB); err != nil {
			return config.Errorf("--from-rdb", "%v", err)
		}
		if o.backend == "process" {
			return config.Errorf("--from-rdb", "loading an RDB snapshot needs --backend containers (the process backend cannot place it in the server's data directory)")
		}
	}
	if err := rehearse.CheckFault(o.fault, !o.noLive); err != nil {
		return err
	}
	if o.backend != "containers" && o.backend != "process" {
		return config.Errorf("--backend", "%q is not containers or process", o.backend)
	}
	var user *config.Config
	layout := rehearse.DefaultLayout()
	if c.Flags().Changed("config") || fileExists(app.ConfigPath) {
		cfg, err := app.Config()
		if err != nil {
			return err
		}
		if layout, err = rehearse.LayoutOf(cfg); err != nil {
			return err
		}
		user = cfg
	}
	switch o.queueTgt {
	case "":
	case "redis":
		if _, ok := layout["queue"]; ok || user == nil {
			layout["queue"] = rehearse.Store{Kind: config.KindStandalone, Nodes: 1}
		}
	case "sqs":
		layout["queue"] = rehearse.Store{Kind: config.KindSQS}
	default:
		return config.Errorf("--queue-target", "%q is not redis or sqs", o.queueTgt)
	}
	if err := rehearse.CheckSQS(layout, !o.noLive, o.fault); err != nil {
		return err
	}
	if !o.noLive {
		if err := rehearse.CheckLive(user); err != nil {
			return err
		}
	}
	dir, err := filepath.Abs(o.workDir)
	if err != nil {
		return err
	}
	if o.workDir == "" {
		d, err := os.MkdirTemp("", "redisplit-rehearse-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}

	if layout.SQSBucket() != "" {
		// the commands run in this process and reach the emulator through
		// the AWS SDK's default chain: throw-away credentials, no profile,
		// no metadata lookups (rehearse.SQSEnvironment)
		for k, v := range rehearse.SQSEnvironment(dir) {
			if err := os.Setenv(k, v); err != nil {
				return err
			}
		}
	}

	// The servers' data (an RDB copy is production data) lives in its own
	// temp dir, removed after the servers, even with --work-dir.
	serversDir, err := os.MkdirTemp("", "redisplit-servers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(serversDir)
	t0 := time.Now()
	var backend topology.Backend
	image := ""
	switch o.backend {
	case "containers":
		b, err := containers.New(ctx, containers.Options{Image: o.image, Build: o.build, Dir: serversDir, Logger: slog.Default()})
		if err != nil {
			return fmt.Errorf("%w (without Docker: --backend process runs local redis-server processes)", err)
		}
		image = fmt.Sprintf("%s (%s), run %s", b.Image, b.How, b.RunID)
		backend = b
	case "process":
		b, err := topology.NewProcessBackend(serversDir)
		if err != nil {
			return err
		}
		image = "local redis-server processes"
		backend = b
	default:
		return config.Errorf("--backend", "%q is not containers or process", o.backend)
	}
	// Removes every server whatever happens below, Ctrl-C included (the
	// context is cancelled and Run returns; Close has its own timeout).
	defer func() {
		if err := backend.Close(); err != nil {
			fmt.Fprintf(app.Err, "rehearse: removing servers: %v\n", err)
		}
	}()
	if !app.NoProgress {
		fmt.Fprintf(app.Err, "rehearse: servers from %s (%s)\n", image, time.Since(t0).Round(time.Millisecond))
	}

	opts := rehearse.Options{
		Backend: backend, Layout: layout, Config: user, FromRDB: o.fromRDB, Fault: o.fault, Dir: dir,
		Run: inProcessRunner(app),
	}
	if !o.noLive {
		opts.Live = &rehearse.Live{For: o.liveFor, Rate: o.liveRate, CaughtUpTimeout: o.liveWait, WaitCaughtUp: waitCaughtUpIn,
			Cutover: !o.noCutover}
	}
	if o.synthetic > 0 {
		opts.Synthetic = &rehearse.Synthetic{Keys: o.synthetic, Seed: o.seed}
	}
	if !app.NoProgress {
		opts.Progress = func(phase string, done, ok bool, d time.Duration) {
			switch {
			case !done:
				fmt.Fprintf(app.Err, "rehearse: %s ...\n", phase)
			case ok:
				fmt.Fprintf(app.Err, "rehearse: %s ok (%s)\n", phase, d.Round(10*time.Millisecond))
			default:
				fmt.Fprintf(app.Err, "rehearse: %s FAILED (%s)\n", phase, d.Round(10*time.Millisecond))
			}
		}
	}
	res, err := rehearse.Run(ctx, opts)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("rehearse interrupted: %w", err)
		}
		return err
	}
	res.Image = image

	var md bytes.Buffer
	if err := res.Markdown(&md); err != nil {
		return err
	}
	if o.report != "" {
		if err := os.WriteFile(o.report, md.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if o.junit != "" {
		var x bytes.Buffer
		if err := res.JUnit(&x); err != nil {
			return err
		}
		if err := os.WriteFile(o.junit, x.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if app.Output == "json" {
		enc := json.NewEncoder(app.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else if _, err := app.Out.Write(md.Bytes()); err != nil {
		return err
	}
	switch {
	case res.OK:
		return nil
	case res.Lost:
		return &ExitError{Code: ExitDifferences, Err: fmt.Errorf("rehearsal failed: a key was lost or changed (see the report)")}
	default:
		return &ExitError{Code: ExitRuntime, Err: fmt.Errorf("rehearsal failed: %s", failedPhases(res))}
	}
}

// readableFile checks that path is a regular file this process can open.
func readableFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	return nil
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

type quietRedisLog struct{}

func (quietRedisLog) Printf(context.Context, string, ...any) {}

func failedPhases(r *rehearse.Result) string {
	seen := map[string]bool{}
	var out []string
	for _, c := range r.Cases {
		if !c.OK && !c.Skipped && !seen[c.Phase] {
			seen[c.Phase] = true
			out = append(out, c.Phase)
		}
	}
	return "failed phases: " + strings.Join(out, ", ")
}

// waitCaughtUpIn is status --wait-caught-up's wait on the state directory
// dir, for rehearse's live phase.
func waitCaughtUpIn(ctx context.Context, dir string, timeout time.Duration) (*state.State, error) {
	sd, err := state.OpenReadOnly(dir)
	if err != nil {
		return nil, err
	}
	st, err := sd.Load()
	if err != nil {
		return nil, err
	}
	return waitCaughtUp(ctx, sd, st, timeout)
}

// syncBuffer is a bytes.Buffer safe for concurrent use: the live phase's
// migrate runs while other commands do, and the default slog logger, which
// each run points at its own stderr, may write to another run's buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// inProcessRunner runs redisplit command lines in this process through Run,
// with in-memory streams and their own viper instance, which reads the
// generated config and flags but not the REDISPLIT_* environment (meant for
// the real legacy and targets: a production password must not be sent to
// the throw-away legacy): the rehearsal drives the very code an operator
// runs. The default slog logger, which each run points at its own stderr,
// is restored afterwards.
func inProcessRunner(parent *App) rehearse.Runner {
	return func(ctx context.Context, args []string) rehearse.Output {
		var out, errb syncBuffer
		sub := &App{V: configfile.NewFileViper(), In: strings.NewReader(""), Out: &out, Err: &errb, Verbose: parent.Verbose}
		prev := slog.Default()
		t0 := time.Now()
		code := Run(ctx, sub, args)
		slog.SetDefault(prev)
		return rehearse.Output{Code: code, Stdout: out.String(), Stderr: errb.String(), Duration: time.Since(t0)}
	}
}
