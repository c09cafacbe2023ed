package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/cmd"
	"github.com/redisplit/redisplit/topology"
)

// bench migrate: the benchmark keyspace on a local legacy, copied by
// `redisplit migrate` (in a child process, so that its peak RSS is the
// migrator's alone) into the four targets of the issue: a 3-master cluster
// for cache, master+replica+3 sentinels for session, standalones for
// ratelimit and queue. In the same run, against the same legacy, it runs
// the bare copier (bare.go: the floor) and, given -redisshake, RedisShake's
// scan reader (shake.go), each into one standalone target; every copier
// gets one figure line (wall, legacy CPU, legacy CPU per key, peak RSS,
// load and steal), then redisplit's ratios to them.
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
	bare := fs.Bool("bare", true, "run the bare copier (the floor: SCAN + pipelined DUMP/PTTL -> RESTORE) before redisplit in every run")
	bareWorkers := fs.Int("bare-workers", 8, "the bare copier's workers")
	shake := fs.String("redisshake", "", "path to a RedisShake v4 binary: run its scan reader in every run too")
	scanCount := fs.Int("scan-count", 1000, "SCAN COUNT of the bare copier and RedisShake (migrate's default is 1000)")
	before := fs.String("before", "", "path to another build of this harness (e.g. of the main branch): its redisplit migrate runs too, as \"redisplit (before)\"")
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
	var baseline string
	if *bare || *shake != "" {
		b, stop, err := startBaselineTarget(ctx)
		if err != nil {
			return err
		}
		defer stop()
		baseline = b.Addr()
	}
	cfgPath, err := layout.WriteConfig(legacy.Addr())
	if err != nil {
		return err
	}
	// A replica's first sync waits repl-diskless-sync-delay (5 s by
	// default) after it connects, and until it is done every WAIT of the
	// session target blocks: not the migrator's cost, so not measured.
	if err := waitReplicaLinked(ctx, layout.Sentinel.Replica.Addr()); err != nil {
		return err
	}
	var copyRates, runRates []float64
	all := map[string][]figure{}
	var order []string
	add := func(f figure) {
		if all[f.Name] == nil {
			order = append(order, f.Name)
		}
		all[f.Name] = append(all[f.Name], f)
		fmt.Println(f.line())
	}
	for i := 0; i < *runs; i++ {
		if i > 0 {
			if err := layout.Reset(ctx); err != nil {
				return err
			}
		}
		if *bare {
			if err := flushAll(ctx, baseline); err != nil {
				return err
			}
			f, err := runBare(ctx, legacy.Addr(), baseline, *bareWorkers, *batch, *scanCount)
			if err != nil {
				return err
			}
			add(f)
		}
		if *shake != "" {
			if err := flushAll(ctx, baseline); err != nil {
				return err
			}
			f, err := runShake(ctx, *shake, legacy.Addr(), baseline, *scanCount)
			if err != nil {
				return err
			}
			if f.Keys != int64(*n) {
				return fmt.Errorf("RedisShake: %d keys on the target, want %d", f.Keys, *n)
			}
			add(f)
		}
		if *before != "" {
			f, _, _, err := migrateOnce(ctx, *before, "redisplit (before)", legacy.Addr(), layout, cfgPath, *n, *workers, *batch)
			if err != nil {
				return err
			}
			add(f)
			if err := layout.Reset(ctx); err != nil {
				return err
			}
		}
		f, copyRate, runRate, err := migrateOnce(ctx, os.Args[0], "redisplit", legacy.Addr(), layout, cfgPath, *n, *workers, *batch)
		if err != nil {
			return err
		}
		add(f)
		copyRates, runRates = append(copyRates, copyRate), append(runRates, runRate)
		printRatios(all, i)
	}
	if *runs > 1 {
		fmt.Printf("median of %d runs: %.0f keys/s (copy phase), %.0f keys/s (whole run); copy phase min %.0f max %.0f\n",
			*runs, median(copyRates), median(runRates), slices.Min(copyRates), slices.Max(copyRates))
		for _, name := range order {
			var wall, cpu, rss []float64
			for _, f := range all[name] {
				wall, cpu, rss = append(wall, f.Wall.Seconds()), append(cpu, f.LegacyCPU), append(rss, float64(f.RSS)/(1<<20))
			}
			fmt.Printf("  median %-12s wall %6.2f s (%.2f–%.2f)  legacy CPU %5.2f s (%.2f–%.2f) = %.2f µs/key  peak RSS %.1f MiB\n",
				name+":", median(wall), slices.Min(wall), slices.Max(wall), median(cpu), slices.Min(cpu), slices.Max(cpu),
				median(cpu)*1e6/float64(*n), median(rss))
		}
	}
	return nil
}

// printRatios prints run i's redisplit figures against the baselines of
// the same run: legacy CPU against the bare copier's, wall against
// RedisShake's.
func printRatios(all map[string][]figure, i int) {
	at := func(name string) (figure, bool) {
		if fs := all[name]; len(fs) > i {
			return fs[i], true
		}
		return figure{}, false
	}
	r, ok := at("redisplit")
	if !ok {
		return
	}
	if b, ok := at("bare copier"); ok && b.LegacyCPU > 0 {
		fmt.Printf("  run %d: redisplit legacy CPU = %.2f × the bare copier's (goal ≤ 1.15)\n", i+1, r.LegacyCPU/b.LegacyCPU)
		if o, ok := at("redisplit (before)"); ok {
			fmt.Printf("  run %d: redisplit (before) legacy CPU = %.2f × the bare copier's\n", i+1, o.LegacyCPU/b.LegacyCPU)
		}
	}
	if s, ok := at("RedisShake"); ok && s.Wall > 0 {
		fmt.Printf("  run %d: redisplit wall = %.2f × RedisShake's (goal ≤ 0.67); legacy CPU = %.2f × RedisShake's\n",
			i+1, r.Wall.Seconds()/s.Wall.Seconds(), r.LegacyCPU/s.LegacyCPU)
	}
}

// waitReplicaLinked waits until the replica at addr has finished its sync
// with its master (master_link_status:up).
func waitReplicaLinked(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer c.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, err := c.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(s, "master_link_status:up") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replica %s not in sync after 60 s", addr)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// migrateOnce runs one `redisplit migrate` of the keyspace into the (empty)
// layout and prints its figures; it returns its figure and the copy-phase
// and whole-run rates in keys/s.
func migrateOnce(ctx context.Context, bin, name, legacyAddr string, layout *benchTargets, cfgPath string, n, workers, batch int) (figure, float64, float64, error) {
	targetAddrs := layout.DataAddrs()
	var tcpu0 float64
	for _, a := range targetAddrs {
		tcpu0 += ServerCPU(ctx, a)
	}
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
	f, err := measure(ctx, name, legacyAddr, func(out []byte) (int64, error) {
		if err := json.Unmarshal(out, &res); err != nil {
			return 0, fmt.Errorf("migrate output: %v", err)
		}
		var copied int64
		for _, bk := range res.Buckets {
			copied += bk.ThisRun.Copied
		}
		return copied, nil
	}, bin, "migrate-child", "--config", cfgPath, "migrate", "--yes", "--no-progress",
		"-o", "json", "--workers", fmt.Sprint(workers), "--batch", fmt.Sprint(batch))
	if err != nil {
		return f, 0, 0, err
	}
	var tcpu float64
	for _, a := range targetAddrs {
		tcpu += ServerCPU(ctx, a)
	}
	tcpu -= tcpu0
	landed := layout.Keys(ctx)
	copyRate, runRate := float64(f.Keys)/res.CopyElapsed.Seconds(), float64(f.Keys)/f.Wall.Seconds()
	fmt.Printf("%s: %d keys (%d copied, %d on the targets) in %s copy phase (%s before it), %s total process\n",
		name, n, f.Keys, landed, res.CopyElapsed.Round(time.Millisecond), (res.Elapsed - res.CopyElapsed).Round(time.Millisecond), f.Wall.Round(time.Millisecond))
	fmt.Printf("  copy rate: %.0f keys/s (copy phase); %.0f keys/s (whole run incl. preflight)\n", copyRate, runRate)
	fmt.Printf("  targets' CPU (7 servers): %.2f s\n", tcpu)
	if landed != int64(n) {
		return f, 0, 0, fmt.Errorf("%d keys on the targets, want %d", landed, n)
	}
	return f, copyRate, runRate, nil
}

func mustMaster(ctx context.Context, s *topology.Sentinel) string {
	m, err := s.CurrentMaster(ctx)
	if err != nil {
		return s.Master.Addr()
	}
	return m
}
