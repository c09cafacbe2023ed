package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config/configfile"
	"github.com/redisplit/redisplit/loadgen"
)

// bench live: the live phase measured from outside the tool (TESTING.md,
// "Measuring the live phase honestly"). The benchmark keyspace (-keys) and
// the load's own long-lived keys are written to a local legacy; then, per
// run:
//
//  1. baseline: the load (package loadgen) at -rate writes/s for -duration
//     with no mirror running: legacy's CPU (INFO CPU) for the load alone;
//  2. `redisplit migrate --dual-write` starts (the first run backfills;
//     later runs resume) and the mode waits until every bucket is syncing
//     (and caught up, where status offers --wait-caught-up);
//  3. the same load again, watched on the four targets by loadgen.Watcher:
//     the lag from each write's send to legacy to its value read on its
//     target, writes lost, the backlog seen from outside, the migrator's
//     RSS (/proc) and legacy's CPU, against the baseline's.
//
// Between runs the mirror is stopped (SIGINT) for the next baseline. Every
// figure is printed with the CPU steal measured during it.
func init() { modes["live"] = benchLive }

type liveOpts struct {
	keys, runs, loadKeys, hotKeys, workers int
	rate, hotShare                         float64
	duration, settle, wait                 time.Duration
	binary, migrateFlags                   string
	libs, baselineOnly                     bool
}

func benchLive(ctx context.Context, args []string) error {
	var o liveOpts
	fs := flag.NewFlagSet("live", flag.ContinueOnError)
	fs.IntVar(&o.keys, "keys", 1000000, "keys in the benchmark keyspace (backfilled before the load)")
	fs.Float64Var(&o.rate, "rate", 5000, "writes/s of the live load")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "length of each load")
	fs.IntVar(&o.runs, "runs", 1, "runs (baseline + mirrored load each); medians are reported")
	fs.StringVar(&o.binary, "binary", "", "redisplit binary to run (default: this harness, which links the same commands)")
	fs.StringVar(&o.migrateFlags, "migrate-flags", "", "extra flags for migrate, space-separated (e.g. \"--workers 8\")")
	fs.IntVar(&o.loadKeys, "load-keys", 20000, "long-lived keys of the load (on top of -keys)")
	fs.IntVar(&o.hotKeys, "hot-keys", 4, "hot keys of the load")
	fs.Float64Var(&o.hotShare, "hot-share", 0.1, "share of the writes going to the hot keys")
	fs.IntVar(&o.workers, "load-workers", 4, "connections of the load")
	fs.BoolVar(&o.libs, "libs", true, "include the go-redis/cache and redis_rate writers")
	fs.DurationVar(&o.settle, "settle", 30*time.Second, "after the load, how long writes may take to arrive before they count as lost")
	fs.DurationVar(&o.wait, "wait", time.Hour, "how long the backfill may take")
	fs.BoolVar(&o.baselineOnly, "baseline-only", false, "measure only the load without a mirror (no targets, no redisplit)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	legacy, stopLegacy, err := StartLegacy(ctx, o.keys)
	if err != nil {
		return err
	}
	defer stopLegacy()
	gen, err := loadgen.New(loadgen.Config{Addr: legacy.Addr(), Rate: o.rate, Keys: o.loadKeys, Workers: o.workers,
		HotKeys: o.hotKeys, HotShare: o.hotShare, Libraries: o.libs, Seed: 1})
	if err != nil {
		return err
	}
	defer gen.Close()
	t0 := time.Now()
	if err := gen.Prefill(ctx); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: prefilled the load's %d long-lived keys in %s\n", o.loadKeys, time.Since(t0).Round(time.Millisecond))

	var layout *benchTargets
	var cfgPath string
	if !o.baselineOnly {
		var stopTargets func()
		if layout, stopTargets, err = startTargets(ctx); err != nil {
			return err
		}
		defer stopTargets()
		if cfgPath, err = layout.WriteLiveConfig(legacy.Addr()); err != nil {
			return err
		}
		if err := checkLiveRouting(cfgPath); err != nil {
			return err
		}
	}
	var m *mirrorProc
	defer func() {
		if m != nil {
			_ = m.stop()
		}
	}()
	var results []liveResult
	for i := 0; i < o.runs; i++ {
		if m != nil {
			if err := m.stop(); err != nil {
				return err
			}
			m = nil
		}
		var r liveResult
		if r.base, err = baselineLoad(ctx, legacy.Addr(), gen, o); err != nil {
			return err
		}
		if !o.baselineOnly {
			if m, err = startMirror(o.binary, cfgPath, layout.Dir, i, strings.Fields(o.migrateFlags)); err != nil {
				return err
			}
			if err := waitLive(ctx, m, o.binary, cfgPath, o.wait); err != nil {
				return err
			}
			if err := mirroredLoad(ctx, legacy.Addr(), gen, layout, m, o, &r); err != nil {
				return err
			}
		}
		results = append(results, r)
	}
	if o.runs > 1 {
		printLiveMedians(results, o.baselineOnly)
	}
	return nil
}

// checkLiveRouting checks, with redisplit's own config loader and
// classifier, that the configuration routes every key family of the load
// to the bucket it was named for.
func checkLiveRouting(cfgPath string) error {
	cfg, err := configfile.Load(configfile.NewViper(), cfgPath, true)
	if err != nil {
		return err
	}
	c, _, err := classify.Router(cfg)
	if err != nil {
		return err
	}
	for _, f := range loadgen.Families() {
		if m := c.Classify(f.Example, f.Type); string(m.Bucket) != f.Bucket {
			return fmt.Errorf("the live config routes the load's %s keys (%q, %s) to %q, not %s", f.Name, f.Example, f.Type, m.Bucket, f.Bucket)
		}
	}
	return nil
}

// loadFigures are one load's figures.
type loadFigures struct {
	st        loadgen.Stats
	legacyCPU float64 // seconds
	machine   string
}

type liveResult struct {
	base, live loadFigures
	rep        loadgen.Report
	rssPeak    int64 // bytes, sampled during the load
	pendPeak   int
}

// runLoad runs the load once and measures legacy's CPU over exactly it.
func runLoad(ctx context.Context, legacyAddr string, gen *loadgen.Generator, o liveOpts) (loadFigures, error) {
	cpu0 := ServerCPU(ctx, legacyAddr)
	steal := readCPU()
	st, err := gen.Run(ctx, o.duration, 0)
	f := loadFigures{st: st, legacyCPU: ServerCPU(ctx, legacyAddr) - cpu0, machine: machineLine(steal)}
	if err != nil {
		return f, err
	}
	if st.ModelErrors > 0 {
		return f, fmt.Errorf("the load's replies contradict its model %d times (something else writes its keys?): %s", st.ModelErrors, st.FirstError)
	}
	return f, nil
}

func (f loadFigures) loadLine(o liveOpts) string {
	s := fmt.Sprintf("%.0f writes/s target, %.0f achieved over %s (%d writes, %d commands",
		o.rate, f.st.Rate, f.st.Elapsed.Round(time.Millisecond), f.st.Writes, f.st.Commands)
	if f.st.Errors+f.st.Behind > 0 {
		s += fmt.Sprintf(", %d errors, %d skipped behind schedule", f.st.Errors, f.st.Behind)
	}
	if f.st.FirstError != "" {
		s += "; first error: " + f.st.FirstError
	}
	return s + ")"
}

func (f loadFigures) cpuLine() string {
	return fmt.Sprintf("%.2f s = %.1f%% of one core", f.legacyCPU, 100*f.legacyCPU/f.st.Elapsed.Seconds())
}

func baselineLoad(ctx context.Context, legacyAddr string, gen *loadgen.Generator, o liveOpts) (loadFigures, error) {
	notify := notifyValue(ctx, legacyAddr)
	gen.SetRecorder(nil)
	f, err := runLoad(ctx, legacyAddr, gen, o)
	if err != nil {
		return f, err
	}
	fmt.Printf("live baseline (no mirror): %s\n", f.loadLine(o))
	fmt.Printf("  legacy CPU: %s; notify-keyspace-events %q\n", f.cpuLine(), notify)
	fmt.Printf("  %s\n", f.machine)
	return f, nil
}

func notifyValue(ctx context.Context, addr string) string {
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer c.Close()
	v, err := c.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		return "?"
	}
	return v["notify-keyspace-events"]
}

// watchTargets are the layout's stores, as the watcher follows them.
func (t *benchTargets) watchTargets() []loadgen.Target {
	return []loadgen.Target{
		{Name: "cache", Cluster: t.Cluster.Addrs()},
		{Name: "session", Sentinels: t.Sentinel.SentinelAddrs(), Master: t.Sentinel.MasterName},
		{Name: "ratelimit", Addr: t.RateLimit.Addr()},
		{Name: "queue", Addr: t.Queue.Addr()},
	}
}

func mirroredLoad(ctx context.Context, legacyAddr string, gen *loadgen.Generator, layout *benchTargets, m *mirrorProc, o liveOpts, r *liveResult) error {
	w, err := loadgen.Watch(ctx, loadgen.WatchConfig{Targets: layout.watchTargets(), SetNotify: true})
	if err != nil {
		return err
	}
	defer w.Close()
	notify := notifyValue(ctx, legacyAddr)
	rss0 := procKB(m.pid(), "VmRSS")
	// Sample, during the load, what is only visible while it runs.
	var mu sync.Mutex
	var st liveStatus
	sampling, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-sampling.Done():
				return
			case <-tick.C:
			}
			rss, pend := procKB(m.pid(), "VmRSS"), w.Pending()
			var s liveStatus
			if n%4 == 0 {
				s, _ = readStatus(sampling, o.binary, m.cfg)
			}
			mu.Lock()
			r.rssPeak, r.pendPeak = max(r.rssPeak, rss), max(r.pendPeak, pend)
			st.merge(s)
			mu.Unlock()
		}
	}()
	gen.SetRecorder(w)
	f, err := runLoad(ctx, legacyAddr, gen, o)
	gen.SetRecorder(nil)
	stopSampling()
	wg.Wait()
	if err != nil {
		return err
	}
	r.live = f
	if m.exited() {
		return fmt.Errorf("redisplit migrate --dual-write ended during the load: %v", m.failure())
	}
	rep, err := w.Settle(ctx, o.settle)
	if err != nil {
		return err
	}
	r.rep = rep
	hwm := procKB(m.pid(), "VmHWM")

	fmt.Printf("live (migrate --dual-write running): %s\n", f.loadLine(o))
	fmt.Printf("  lag, write sent to legacy → its value read on its target: %s\n", rep.Lag)
	fmt.Printf("  writes lost: %d; stale keys after the settle: %d; on two targets: %d; applied out of order: %d\n",
		rep.Lost, rep.Stale, rep.Duplicates, rep.Regressions)
	fmt.Printf("  also: %d applied but seen only by the final sweep, %d with nothing to apply, %d expired on legacy before seen (in the lag at their expiry), %d uncertain\n",
		rep.Swept, rep.Unchanged, rep.ExpiredUnseen, rep.Uncertain)
	for _, s := range rep.LostSample {
		fmt.Printf("    lost: %s %s version %d at %s\n", s.Key, s.Op, s.Version, s.At.Format("15:04:05.000"))
	}
	for _, s := range rep.StaleSample {
		fmt.Printf("    stale: %s: %s\n", s.Key, s.Detail)
	}
	for _, s := range rep.SweptSample {
		fmt.Printf("    only by the sweep: %s %s version %d: %s\n", s.Key, s.Op, s.Version, s.Detail)
	}
	for _, s := range rep.OtherSample {
		fmt.Printf("    %s: %s\n", s.Key, s.Detail)
	}
	fmt.Printf("  watcher's own delay (event → read answered): %s; %d events, %d feed gaps, %d read errors\n",
		rep.WatcherDelay, rep.Events, rep.FeedGaps, rep.ReadErrors)
	fmt.Printf("  backlog seen from outside (writes sent, not yet seen on a target): peak %d\n", r.pendPeak)
	fmt.Printf("  redisplit status (its own figures, reported, not trusted): %s\n", st)
	fmt.Printf("  migrator RSS: %.1f MiB at the load's start, peak %.1f MiB during it; peak over its life (VmHWM) %.1f MiB\n",
		mib(rss0), mib(r.rssPeak), mib(hwm))
	ratio := 0.0
	if r.base.legacyCPU > 0 {
		ratio = f.legacyCPU / r.base.legacyCPU
	}
	fmt.Printf("  legacy CPU: %s; without the mirror, same load: %s → %.2f× (notify-keyspace-events %q)\n",
		f.cpuLine(), r.base.cpuLine(), ratio, notify)
	fmt.Printf("  %s\n", f.machine)
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// procKB reads a "Key:   N kB" line of /proc/<pid>/status, in bytes.
func procKB(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

func printLiveMedians(rs []liveResult, baselineOnly bool) {
	var base, live, ratio, p99, p50 []float64
	var lost int64
	for _, r := range rs {
		base = append(base, r.base.legacyCPU/r.base.st.Elapsed.Seconds())
		if !baselineOnly {
			live = append(live, r.live.legacyCPU/r.live.st.Elapsed.Seconds())
			ratio = append(ratio, r.live.legacyCPU/r.base.legacyCPU)
			p99 = append(p99, float64(r.rep.Lag.P99)/1e6)
			p50 = append(p50, float64(r.rep.Lag.P50)/1e6)
			lost += r.rep.Lost
		}
	}
	fmt.Printf("median of %d runs: legacy CPU without the mirror %.1f%% of a core (min %.1f%%, max %.1f%%)\n",
		len(rs), 100*median(base), 100*slices.Min(base), 100*slices.Max(base))
	if !baselineOnly {
		fmt.Printf("  with the mirror %.1f%% of a core, ratio %.2f× (min %.2f×, max %.2f×); lag p50 %.1f ms, p99 %.1f ms (max of runs %.1f ms); %d writes lost in all\n",
			100*median(live), median(ratio), slices.Min(ratio), slices.Max(ratio), median(p50), median(p99), slices.Max(p99), lost)
	}
}

// The redisplit command lines of this mode, in one place: flags of the
// live phase are still appearing (issue 10).

// redisplitCommand returns the program and arguments that run redisplit
// with args against the configuration cfgPath: binary, or this harness's
// migrate-child mode (the same commands, linked in) when binary is "".
func redisplitCommand(binary, cfgPath string, args ...string) (string, []string) {
	if binary == "" {
		return os.Args[0], append([]string{"migrate-child", "--config", cfgPath}, args...)
	}
	return binary, append([]string{"--config", cfgPath}, args...)
}

// migrateLiveArgs is the live migration: backfill, then mirror until
// stopped.
func migrateLiveArgs(extra []string) []string {
	return append([]string{"migrate", "--dual-write", "--yes", "--no-progress"}, extra...)
}

// mirrorProc is the running `redisplit migrate --dual-write`.
type mirrorProc struct {
	cmd  *exec.Cmd
	cfg  string
	log  string
	done chan struct{}
	err  error
}

func startMirror(binary, cfgPath, dir string, run int, extra []string) (*mirrorProc, error) {
	name, args := redisplitCommand(binary, cfgPath, migrateLiveArgs(extra)...)
	m := &mirrorProc{cfg: cfgPath, log: filepath.Join(dir, fmt.Sprintf("migrate-%d.log", run)), done: make(chan struct{})}
	f, err := os.Create(m.log)
	if err != nil {
		return nil, err
	}
	m.cmd = exec.Command(name, args...)
	m.cmd.Stdout, m.cmd.Stderr = f, f
	if err := m.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	fmt.Fprintf(os.Stderr, "bench: started %s %s (pid %d, output in %s)\n", name, strings.Join(args, " "), m.cmd.Process.Pid, m.log)
	go func() { m.err = m.cmd.Wait(); f.Close(); close(m.done) }()
	return m, nil
}

func (m *mirrorProc) pid() int { return m.cmd.Process.Pid }

func (m *mirrorProc) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// errNoDualWrite: the binary predates the live phase.
var errNoDualWrite = errors.New("this redisplit does not know `migrate --dual-write` yet (issue 10's live phase); " +
	"build one that does and pass it with -binary, or measure the load alone with -baseline-only")

// failure explains why the mirror ended.
func (m *mirrorProc) failure() error {
	<-m.done
	out, _ := os.ReadFile(m.log)
	if bytes.Contains(out, []byte("unknown flag: --dual-write")) {
		return errNoDualWrite
	}
	tail := string(out)
	if len(tail) > 2000 {
		tail = "..." + tail[len(tail)-2000:]
	}
	return fmt.Errorf("redisplit migrate --dual-write ended (%v); its output (%s):\n%s", m.err, m.log, tail)
}

// stop ends the mirror as an operator does (SIGINT: stop producers, drain,
// save state) and waits for it.
func (m *mirrorProc) stop() error {
	if m.exited() {
		return nil
	}
	_ = m.cmd.Process.Signal(os.Interrupt)
	select {
	case <-m.done:
	case <-time.After(2 * time.Minute):
		_ = m.cmd.Process.Kill()
		<-m.done
		return fmt.Errorf("redisplit migrate --dual-write did not stop within 2 minutes of SIGINT (killed); output in %s", m.log)
	}
	if m.err != nil {
		return fmt.Errorf("redisplit migrate --dual-write stopped with %v; output in %s", m.err, m.log)
	}
	if out, err := os.ReadFile(m.log); err == nil {
		if keep := os.Getenv("BENCH_MIGRATE_LOG"); keep != "" {
			_ = os.WriteFile(keep, out, 0o600)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "copier stages") {
				fmt.Printf("  redisplit's own %s (reported, not trusted)\n", strings.TrimSpace(line))
			}
		}
	}
	return nil
}

// waitLive waits until every bucket is syncing (the backfill is done; a
// resumed migration may say so at once, from its state), then, where
// status has --wait-caught-up, until catch-up is proven (after a restart:
// the rescan is done) — both within limit.
func waitLive(ctx context.Context, m *mirrorProc, binary, cfgPath string, limit time.Duration) error {
	t0 := time.Now()
	steal := readCPU()
	last := time.Now()
	for {
		if m.exited() {
			return m.failure()
		}
		st, err := readStatus(ctx, binary, cfgPath)
		if err == nil && st.allSyncing() {
			break
		}
		if time.Since(t0) > limit {
			return fmt.Errorf("the buckets were not all syncing %s after migrate started (%s; last status error: %v)", limit, st, err)
		}
		if time.Since(last) > 15*time.Second {
			fmt.Fprintf(os.Stderr, "bench: waiting for the backfill (%s): %s\n", time.Since(t0).Round(time.Second), st)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.done:
		case <-time.After(time.Second):
		}
	}
	fmt.Printf("live: backfill done, every bucket syncing, %s after migrate started\n", time.Since(t0).Round(time.Second))
	fmt.Printf("  %s\n", machineLine(steal))
	left := max(limit-time.Since(t0), time.Minute)
	name, args := redisplitCommand(binary, cfgPath, "status", "--wait-caught-up", "--timeout", left.Round(time.Second).String())
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	switch {
	case err == nil:
		fmt.Printf("  caught up (status --wait-caught-up) %s after migrate started\n", time.Since(t0).Round(time.Second))
	case bytes.Contains(out, []byte("unknown flag: --wait-caught-up")):
		fmt.Printf("  (status has no --wait-caught-up yet: the load starts on the phases alone)\n")
	default:
		return fmt.Errorf("status --wait-caught-up: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// liveStatus is what this mode reads from `redisplit status -o json`.
// The live figures' field names are still settling (issue 10): this type
// and parseLiveStatus are the one place that knows them.
type liveStatus struct {
	phases             map[string]string
	backlog            int64 // the largest bucket backlog seen
	lagMs              float64
	hasBacklog, hasLag bool
}

var (
	backlogFields = []string{"dirty_backlog", "backlog", "dirty"}
	lagFields     = []string{"lag_ms"}
)

func readStatus(ctx context.Context, binary, cfgPath string) (liveStatus, error) {
	name, args := redisplitCommand(binary, cfgPath, "status", "-o", "json")
	var out, errb bytes.Buffer
	c := exec.CommandContext(ctx, name, args...)
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		return liveStatus{}, fmt.Errorf("%v: %s", err, bytes.TrimSpace(errb.Bytes()))
	}
	return parseLiveStatus(out.Bytes())
}

func parseLiveStatus(b []byte) (liveStatus, error) {
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return liveStatus{}, err
	}
	st := liveStatus{phases: map[string]string{}}
	buckets, _ := doc["buckets"].([]any)
	for _, x := range buckets {
		bk, _ := x.(map[string]any)
		name, _ := bk["bucket"].(string)
		phase, _ := bk["phase"].(string)
		st.phases[name] = phase
	}
	// The figures may sit in each bucket or in a section of their own: take
	// the peak wherever they are.
	walk(doc, func(m map[string]any) {
		if v, ok := firstNumber(m, backlogFields); ok {
			st.backlog, st.hasBacklog = max(st.backlog, int64(v)), true
		}
		if v, ok := firstNumber(m, lagFields); ok {
			st.lagMs, st.hasLag = max(st.lagMs, v), true
		}
	})
	return st, nil
}

// walk calls f on every object in v, v included.
func walk(v any, f func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		f(x)
		for _, y := range x {
			walk(y, f)
		}
	case []any:
		for _, y := range x {
			walk(y, f)
		}
	}
}

func firstNumber(m map[string]any, names []string) (float64, bool) {
	for _, n := range names {
		if v, ok := m[n].(float64); ok {
			return v, true
		}
	}
	return 0, false
}

func (s liveStatus) allSyncing() bool {
	if len(s.phases) == 0 {
		return false
	}
	for _, p := range s.phases {
		if p != "syncing" {
			return false
		}
	}
	return true
}

// merge keeps the peaks of two samples.
func (s *liveStatus) merge(o liveStatus) {
	if o.phases != nil {
		s.phases = o.phases
	}
	if o.hasBacklog {
		s.backlog, s.hasBacklog = max(s.backlog, o.backlog), true
	}
	if o.hasLag {
		s.lagMs, s.hasLag = max(s.lagMs, o.lagMs), true
	}
}

func (s liveStatus) String() string {
	var parts []string
	names := make([]string, 0, len(s.phases))
	for b := range s.phases {
		names = append(names, b)
	}
	slices.Sort(names)
	for _, b := range names {
		parts = append(parts, b+" "+s.phases[b])
	}
	out := strings.Join(parts, ", ")
	if out == "" {
		out = "no buckets yet"
	}
	if s.hasBacklog {
		out += fmt.Sprintf("; backlog peak %d", s.backlog)
	}
	if s.hasLag {
		out += fmt.Sprintf("; lag peak %.0f ms", s.lagMs)
	}
	if !s.hasBacklog && !s.hasLag {
		out += "; no backlog or lag figures in status"
	}
	return out
}
