package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/redisplit/redisplit/cmd"
	"github.com/redisplit/redisplit/topology"
)

// bench migrate: the benchmark keyspace on a local legacy, copied by
// `redisplit migrate` (in a child process, so that its peak RSS is the
// migrator's alone) into the four targets of the issue: a 3-master cluster
// for cache, master+replica+3 sentinels for session, standalones for
// ratelimit and queue. Prints keys/s, elapsed, the child's peak RSS and the
// CPU legacy spent.
func init() {
	modes["migrate"] = benchMigrate
	modes["migrate-child"] = func(ctx context.Context, args []string) error {
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
		if f := os.Getenv("BENCH_HEAPPROFILE"); f != "" {
			go writeHeapProfiles(ctx, f)
		}
		app := &cmd.App{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}
		if code := cmd.Run(ctx, app, args); code != 0 {
			return fmt.Errorf("redisplit migrate exited %d", code)
		}
		return nil
	}
}

// writeHeapProfiles rewrites a heap profile to path every 5 s until ctx
// ends (BENCH_HEAPPROFILE: where a long-running migrate's memory goes).
func writeHeapProfiles(ctx context.Context, path string) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f, err := os.Create(path + ".tmp")
		if err != nil {
			return
		}
		err = pprof.WriteHeapProfile(f)
		f.Close()
		if err == nil {
			os.Rename(path+".tmp", path)
		}
	}
}

func benchMigrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	n := fs.Int("keys", 1000000, "keys in the benchmark keyspace")
	workers := fs.Int("workers", 4, "migrate --workers")
	batch := fs.Int("batch", 1024, "migrate --batch")
	runs := fs.Int("runs", 1, "migrations of the same keyspace (targets and state emptied in between); the median is reported")
	if err := fs.Parse(args); err != nil {
		return err
	}
	legacy, stopLegacy, err := StartLegacy(ctx, *n)
	if err != nil {
		return err
	}
	defer stopLegacy()

	layout, stopTargets, err := startTargets(ctx)
	if err != nil {
		return err
	}
	defer stopTargets()
	cfgPath, err := layout.WriteConfig(legacy.Addr())
	if err != nil {
		return err
	}
	var copyRates, runRates []float64
	for i := 0; i < *runs; i++ {
		if i > 0 {
			if err := layout.Reset(ctx); err != nil {
				return err
			}
		}
		copyRate, runRate, err := migrateOnce(ctx, legacy.Addr(), layout, cfgPath, *n, *workers, *batch)
		if err != nil {
			return err
		}
		copyRates, runRates = append(copyRates, copyRate), append(runRates, runRate)
	}
	if *runs > 1 {
		fmt.Printf("median of %d runs: %.0f keys/s (copy phase), %.0f keys/s (whole run); copy phase min %.0f max %.0f\n",
			*runs, median(copyRates), median(runRates), slices.Min(copyRates), slices.Max(copyRates))
	}
	return nil
}

// migrateOnce runs one `redisplit migrate` of the keyspace into the (empty)
// layout and prints its figures; it returns the copy-phase and whole-run
// rates in keys/s.
func migrateOnce(ctx context.Context, legacyAddr string, layout *benchTargets, cfgPath string, n, workers, batch int) (float64, float64, error) {
	cpu0 := ServerCPU(ctx, legacyAddr)
	targetAddrs := layout.DataAddrs()
	var tcpu0 float64
	for _, a := range targetAddrs {
		tcpu0 += ServerCPU(ctx, a)
	}
	child := exec.CommandContext(ctx, os.Args[0], "migrate-child", "--config", cfgPath, "migrate", "--yes", "--no-progress",
		"-o", "json", "--workers", fmt.Sprint(workers), "--batch", fmt.Sprint(batch))
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, os.Stderr
	steal := readCPU()
	t0 := time.Now()
	err := child.Run()
	elapsed := time.Since(t0)
	machine := machineLine(steal)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate: %v\n%s", err, out.String())
	}
	cpu := ServerCPU(ctx, legacyAddr) - cpu0
	var tcpu float64
	for _, a := range targetAddrs {
		tcpu += ServerCPU(ctx, a)
	}
	tcpu -= tcpu0
	ru := child.ProcessState.SysUsage().(*syscall.Rusage)
	ccpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	var res struct {
		CopyElapsed time.Duration `json:"copy_elapsed_ns"`
		Elapsed     time.Duration `json:"elapsed_ns"`
		Buckets     []struct {
			Bucket  string `json:"bucket"`
			ThisRun struct {
				Copied int64 `json:"copied"`
			} `json:"this_run"`
		} `json:"buckets"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return 0, 0, fmt.Errorf("migrate output: %v", err)
	}
	var copied int64
	for _, bk := range res.Buckets {
		copied += bk.ThisRun.Copied
	}
	landed := layout.Keys(ctx)
	rss := ru.Maxrss * 1024
	copyRate, runRate := float64(copied)/res.CopyElapsed.Seconds(), float64(copied)/elapsed.Seconds()
	fmt.Printf("migrate: %d keys (%d copied, %d on the targets) in %s copy phase, %s total process\n",
		n, copied, landed, res.CopyElapsed.Round(time.Millisecond), elapsed.Round(time.Millisecond))
	fmt.Printf("  copy rate: %.0f keys/s (copy phase); %.0f keys/s (whole run incl. preflight pre-pass)\n", copyRate, runRate)
	fmt.Printf("  migrator peak RSS: %.1f MiB\n", float64(rss)/(1<<20))
	fmt.Printf("  legacy CPU: %.2f s (%.0f%% of one core over the run)\n", cpu, 100*cpu/elapsed.Seconds())
	fmt.Printf("  migrator CPU: %.2f s; targets' CPU (7 servers): %.2f s\n", ccpu.Seconds(), tcpu)
	fmt.Printf("  %s\n", machine)
	if landed != int64(n) {
		return 0, 0, fmt.Errorf("%d keys on the targets, want %d", landed, n)
	}
	return copyRate, runRate, nil
}

func mustMaster(ctx context.Context, s *topology.Sentinel) string {
	m, err := s.CurrentMaster(ctx)
	if err != nil {
		return s.Master.Addr()
	}
	return m
}
