package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/store"
	"github.com/redisplit/redisplit/topology"
	"github.com/redisplit/redisplit/verify"
)

// bench verify: the benchmark keyspace on a local legacy, copied by the
// bench's own loader into the four targets of the reference layout, then
// verified by redisplit's engine (package verify, in a child process, so
// that its peak RSS is the verifier's alone) and, with -fullcheck, by
// RedisFullCheck (full value, one round) against a fifth standalone server
// holding a full copy of legacy, in the same run. Each run prints wall time,
// the verifier's peak RSS and CPU, legacy's CPU and legacy's CPU per key,
// with the load average and the CPU steal of the measurement.
//
//	go run ./bench verify -keys 1000000 -fullcheck /path/to/redis-full-check -runs 3
//
// Runs alternate which tool goes first. BENCH_CPUPROFILE and
// BENCH_HEAPPROFILE (paths) profile the redisplit child.
func init() {
	modes["verify"] = benchVerify
	modes["verify-child"] = verifyChild
}

// copyAll copies legacy with pipelined DUMP / RESTORE ABSTTL into the
// server route names for each key (nil: not copied), so that verify has a
// migrated layout to check. It is the bench's own loader, not redisplit's
// migrate (bench migrate measures that).
func copyAll(ctx context.Context, legacy *redis.Client, route func(key string) redis.UniversalClient) error {
	var cursor uint64
	for {
		keys, next, err := legacy.Scan(ctx, cursor, "", 2000).Result()
		if err != nil {
			return err
		}
		p := legacy.Pipeline()
		dumps := make([]*redis.StringCmd, len(keys))
		exp := make([]*redis.IntCmd, len(keys))
		for i, k := range keys {
			dumps[i] = p.Dump(ctx, k)
			exp[i] = redis.NewIntCmd(ctx, "pexpiretime", k)
			_ = p.Process(ctx, exp[i])
		}
		if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
			return err
		}
		pipes := map[redis.UniversalClient]redis.Pipeliner{}
		for i, k := range keys {
			d, err := dumps[i].Result()
			if err != nil {
				continue
			}
			t := route(k)
			if t == nil {
				continue
			}
			if pipes[t] == nil {
				pipes[t] = t.Pipeline()
			}
			pipes[t].Do(ctx, "restore", k, max(exp[i].Val(), 0), d, "replace", "absttl")
		}
		for _, p := range pipes {
			if _, err := p.Exec(ctx); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// loadTargets copies legacy into the layout's targets by the bench rules.
func loadTargets(ctx context.Context, legacy *redis.Client, tcfg map[string]config.Target) error {
	router, err := classify.New(benchRules)
	if err != nil {
		return err
	}
	targets := map[string]redis.UniversalClient{}
	for bucket, tc := range tcfg {
		t, err := store.Open(ctx, bucket, tc)
		if err != nil {
			return err
		}
		defer t.Close()
		targets[bucket] = t.Client
	}
	return copyAll(ctx, legacy, func(k string) redis.UniversalClient {
		return targets[string(router.Classify(k, "").Bucket)]
	})
}

// verifyFigures are one measured run of one tool.
type verifyFigures struct {
	tool      string
	wall      float64 // s, the process from start to exit
	rss       int64   // bytes, the process's peak RSS
	procCPU   float64 // s, the process's user+system CPU
	legacyCPU float64 // s, legacy's used_cpu_user+sys delta
	targetCPU float64 // s, the compared targets' CPU delta
	keys      int64
	machine   string
	note      string
}

func (f verifyFigures) String() string {
	return fmt.Sprintf("%-15s wall %6.2f s  peak RSS %6.1f MiB  own CPU %6.2f s  legacy CPU %5.2f s (%.2f µs/key)  targets CPU %5.2f s  %s\n    %s",
		f.tool, f.wall, mib(f.rss), f.procCPU, f.legacyCPU, 1e6*f.legacyCPU/float64(max(f.keys, 1)), f.targetCPU, f.note, f.machine)
}

func benchVerify(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	n := fs.Int("keys", 1_000_000, "keys in the benchmark keyspace")
	rounds := fs.Int("rounds", 1, "verify rounds")
	workers := fs.Int("workers", 0, "verify's batches in flight (0: its default)")
	batch := fs.Int("batch", 0, "verify's keys per batch (0: its default)")
	runs := fs.Int("runs", 1, "measurements of each tool, alternating which goes first")
	fullcheck := fs.String("fullcheck", "", "path to a RedisFullCheck binary: run it in the same run (full value, one round) against a full copy of legacy on one standalone")
	fcArgs := fs.String("fullcheck-args", "", "extra RedisFullCheck flags, space-separated (e.g. \"--parallel=8 --batchcount=512\")")
	hold := fs.Bool("hold", false, "after loading, print the verify-child command line and wait for an interrupt (to profile or iterate on the engine against the same servers)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	legacySrv, stop, err := StartLegacy(ctx, *n)
	if err != nil {
		return err
	}
	defer stop()
	layout, stopTargets, err := startTargets(ctx)
	if err != nil {
		return err
	}
	defer stopTargets()
	legacy := redis.NewClient(&redis.Options{Addr: legacySrv.Addr(), PoolSize: 16, DisableIdentity: true})
	defer legacy.Close()
	tcfg := layout.Config()
	t0 := time.Now()
	if err := loadTargets(ctx, legacy, tcfg); err != nil {
		return err
	}
	var full topology.Server
	if *fullcheck != "" {
		b, err := topology.NewProcessBackend(layout.Dir)
		if err != nil {
			return err
		}
		defer b.Close()
		if full, err = topology.Standalone(ctx, b, "fullcopy"); err != nil {
			return err
		}
		fc := redis.NewClient(&redis.Options{Addr: full.Addr(), PoolSize: 4, DisableIdentity: true})
		defer fc.Close()
		if err := copyAll(ctx, legacy, func(string) redis.UniversalClient { return fc }); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "bench: loaded the targets in %s\n", time.Since(t0).Round(time.Millisecond))
	cfgPath := filepath.Join(layout.Dir, "verify-targets.json")
	b, err := json.Marshal(tcfg)
	if err != nil {
		return err
	}
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return err
	}
	if *hold {
		fmt.Printf("%s verify-child -legacy %s -targets %s -rounds %d\n", os.Args[0], legacySrv.Addr(), cfgPath, *rounds)
		if full != nil {
			fmt.Printf("%s -s %s -t %s --comparemode=1 --comparetimes=1\n", *fullcheck, legacySrv.Addr(), full.Addr())
		}
		<-ctx.Done()
		return nil
	}
	var ours, theirs []verifyFigures
	for i := 0; i < *runs; i++ {
		rs := func() error {
			f, err := runRedisplitVerify(ctx, legacySrv.Addr(), layout, cfgPath, *rounds, *workers, *batch)
			if err != nil {
				return err
			}
			fmt.Println(f)
			ours = append(ours, f)
			return nil
		}
		fc := func() error {
			if full == nil {
				return nil
			}
			f, err := runFullCheck(ctx, *fullcheck, strings.Fields(*fcArgs), legacySrv.Addr(), full.Addr(), layout.Dir, int64(*n))
			if err != nil {
				return err
			}
			fmt.Println(f)
			theirs = append(theirs, f)
			return nil
		}
		first, second := rs, fc
		if i%2 == 1 {
			first, second = fc, rs
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}
	summary := func(fs []verifyFigures) (wall, rss, lcpu float64) {
		var w, r, l []float64
		for _, f := range fs {
			w, r, l = append(w, f.wall), append(r, float64(f.rss)), append(l, f.legacyCPU)
		}
		return median(w), median(r), median(l)
	}
	w, r, l := summary(ours)
	fmt.Printf("redisplit verify, median of %d: wall %.2f s, peak RSS %.1f MiB, legacy CPU %.2f s (%.2f µs/key)\n", len(ours), w, r/(1<<20), l, 1e6*l/float64(*n))
	if len(theirs) > 0 {
		fw, frss, fl := summary(theirs)
		fmt.Printf("RedisFullCheck,   median of %d: wall %.2f s, peak RSS %.1f MiB, legacy CPU %.2f s (%.2f µs/key)\n", len(theirs), fw, frss/(1<<20), fl, 1e6*fl/float64(*n))
		fmt.Printf("redisplit / RedisFullCheck: wall %.2f×, peak RSS %.2f×, legacy CPU %.2f×\n", w/fw, r/frss, l/fl)
	}
	return nil
}

// runRedisplitVerify runs one verify of the layout in a child process.
func runRedisplitVerify(ctx context.Context, legacyAddr string, layout *benchTargets, cfgPath string, rounds, workers, batch int) (verifyFigures, error) {
	targetAddrs := layout.DataAddrs()
	cpu0 := ServerCPU(ctx, legacyAddr)
	tcpu0 := sumCPU(ctx, targetAddrs)
	child := exec.CommandContext(ctx, os.Args[0], "verify-child", "-legacy", legacyAddr, "-targets", cfgPath,
		"-rounds", strconv.Itoa(rounds), "-workers", strconv.Itoa(workers), "-batch", strconv.Itoa(batch))
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, os.Stderr
	steal := readCPU()
	t0 := time.Now()
	err := child.Run()
	wall := time.Since(t0).Seconds()
	machine := machineLine(steal)
	if err != nil {
		return verifyFigures{}, fmt.Errorf("verify child: %v\n%s", err, out.String())
	}
	f := verifyFigures{tool: "redisplit", wall: wall, machine: machine,
		legacyCPU: ServerCPU(ctx, legacyAddr) - cpu0, targetCPU: sumCPU(ctx, targetAddrs) - tcpu0}
	ru := child.ProcessState.SysUsage().(*syscall.Rusage)
	f.rss = ru.Maxrss * 1024
	f.procCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	var res childResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return f, fmt.Errorf("verify child output: %v: %s", err, out.String())
	}
	f.keys = res.LegacyKeys
	f.note = fmt.Sprintf("(%d keys, %d compared on 4 targets, values+TTLs, both directions, %d differences, parity %v; legacy pass %.2f s, target pass %.2f s)",
		res.LegacyKeys, res.Compared, res.Differences, res.Parity, res.LegacyPass, res.TargetPass)
	if !res.Parity {
		return f, fmt.Errorf("redisplit verify found differences on an exact copy: %s", f)
	}
	return f, nil
}

// runFullCheck runs RedisFullCheck once: full value (mode 1), one round,
// legacy against the full copy.
func runFullCheck(ctx context.Context, bin string, extra []string, legacyAddr, fullAddr, dir string, n int64) (verifyFigures, error) {
	work, err := os.MkdirTemp(dir, "fullcheck-")
	if err != nil {
		return verifyFigures{}, err
	}
	defer os.RemoveAll(work)
	args := append([]string{"-s", legacyAddr, "-t", fullAddr, "--comparemode=1", "--comparetimes=1",
		"-d", filepath.Join(work, "result.db"), "--result", filepath.Join(work, "result.txt"),
		"--log", filepath.Join(work, "full_check.log"), "--systemprofile=0"}, extra...)
	cpu0 := ServerCPU(ctx, legacyAddr)
	tcpu0 := ServerCPU(ctx, fullAddr)
	child := exec.CommandContext(ctx, bin, args...)
	child.Dir = work
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, &out
	steal := readCPU()
	t0 := time.Now()
	err = child.Run()
	wall := time.Since(t0).Seconds()
	machine := machineLine(steal)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(work, "full_check.log"))
		return verifyFigures{}, fmt.Errorf("RedisFullCheck: %v\n%s%s", err, out.String(), tail(log, 2000))
	}
	f := verifyFigures{tool: "RedisFullCheck", wall: wall, machine: machine, keys: n,
		legacyCPU: ServerCPU(ctx, legacyAddr) - cpu0, targetCPU: ServerCPU(ctx, fullAddr) - tcpu0}
	ru := child.ProcessState.SysUsage().(*syscall.Rusage)
	f.rss = ru.Maxrss * 1024
	f.procCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	diffs, _ := os.ReadFile(filepath.Join(work, "result.txt"))
	f.note = fmt.Sprintf("(full value, one round, values only, legacy → one standalone; %d conflicts)", bytes.Count(diffs, []byte("\n")))
	return f, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func sumCPU(ctx context.Context, addrs []string) float64 {
	var t float64
	for _, a := range addrs {
		t += ServerCPU(ctx, a)
	}
	return t
}

// childResult is what verify-child prints.
type childResult struct {
	LegacyKeys  int64   `json:"legacy_keys"`
	Compared    int64   `json:"compared"`
	Differences int64   `json:"differences"`
	Parity      bool    `json:"parity"`
	LegacyPass  float64 `json:"legacy_pass_s"`
	TargetPass  float64 `json:"target_pass_s"`
	Seconds     float64 `json:"seconds"`
}

// verifyChild runs one verify.Run of legacy against the targets in the
// -targets file (JSON, bucket → config.Target) and prints a childResult.
func verifyChild(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("verify-child", flag.ContinueOnError)
	legacyAddr := fs.String("legacy", "", "legacy address")
	cfgPath := fs.String("targets", "", "targets file")
	rounds := fs.Int("rounds", 1, "")
	workers := fs.Int("workers", 0, "")
	batch := fs.Int("batch", 0, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f := os.Getenv("BENCH_CPUPROFILE"); f != "" {
		pf, err := os.Create(f)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	b, err := os.ReadFile(*cfgPath)
	if err != nil {
		return err
	}
	var tcfg map[string]config.Target
	if err := json.Unmarshal(b, &tcfg); err != nil {
		return err
	}
	router, err := classify.New(benchRules)
	if err != nil {
		return err
	}
	legacy := redis.NewClient(&redis.Options{Addr: *legacyAddr, PoolSize: 16, DisableIdentity: true})
	defer legacy.Close()
	targets := map[string]*store.Redis{}
	for bucket, tc := range tcfg {
		t, err := store.Open(ctx, bucket, tc)
		if err != nil {
			return err
		}
		defer t.Close()
		targets[bucket] = t
	}
	res, err := verify.Run(ctx, verify.Options{Legacy: legacy, Targets: targets, Router: router,
		Rounds: *rounds, Workers: *workers, Batch: *batch, Interval: time.Second})
	if err != nil {
		return err
	}
	if f := os.Getenv("BENCH_HEAPPROFILE"); f != "" {
		// Before the clients close: what the verify holds at its end
		// (-sample_index=alloc_space: what it allocated all along).
		hf, err := os.Create(f)
		if err != nil {
			return err
		}
		err = pprof.WriteHeapProfile(hf)
		hf.Close()
		if err != nil {
			return err
		}
	}
	out := childResult{LegacyKeys: res.LegacyKeys, Parity: res.Parity, Seconds: res.Seconds,
		LegacyPass: res.Phases.Legacy, TargetPass: res.Phases.Target, Differences: int64(len(res.Differences))}
	for _, br := range res.Buckets {
		out.Compared += br.Counts.Compared
	}
	for i, d := range res.Differences {
		if i == 5 {
			break
		}
		fmt.Fprintf(os.Stderr, "bench: difference %s %s %q %s\n", d.Category, d.Bucket, d.Key, d.Detail)
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
