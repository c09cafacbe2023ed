package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/store"
	"github.com/redisplit/redisplit/verify"
)

// copyAll copies legacy into the targets with pipelined DUMP / RESTORE
// ABSTTL, so that verify has a migrated layout to check. It is the bench's
// own loader, not redisplit's migrate (bench migrate measures that).
func copyAll(ctx context.Context, legacy *redis.Client, router *classify.Classifier, targets map[string]*store.Redis) error {
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
		pipes := map[string]redis.Pipeliner{}
		for i, k := range keys {
			d, err := dumps[i].Result()
			if err != nil {
				continue
			}
			b := string(router.Classify(k, "").Bucket)
			t := targets[b]
			if t == nil {
				continue
			}
			if pipes[b] == nil {
				pipes[b] = t.Client.Pipeline()
			}
			at := exp[i].Val()
			if at < 0 {
				at = 0
			}
			pipes[b].Do(ctx, "restore", k, at, d, "replace", "absttl")
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

func init() {
	modes["verify"] = func(ctx context.Context, args []string) error {
		fs := flag.NewFlagSet("verify", flag.ContinueOnError)
		n := fs.Int("keys", 1_000_000, "keys in the benchmark keyspace")
		rounds := fs.Int("rounds", 1, "verify rounds")
		workers := fs.Int("workers", 8, "batches in flight")
		batch := fs.Int("batch", 1000, "keys per batch")
		prof := fs.String("cpuprofile", "", "write a CPU profile of the verify to this file")
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
		tcfg := layout.Config()
		legacy := redis.NewClient(&redis.Options{Addr: legacySrv.Addr(), PoolSize: 16, DisableIdentity: true})
		defer legacy.Close()
		router, err := classify.New(benchRules)
		if err != nil {
			return err
		}
		targets := map[string]*store.Redis{}
		for bucket, tc := range tcfg {
			t, err := store.Open(ctx, bucket, tc)
			if err != nil {
				return err
			}
			defer t.Close()
			targets[bucket] = t
		}
		t0 := time.Now()
		if err := copyAll(ctx, legacy, router, targets); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench: loaded the targets in %s\n", time.Since(t0).Round(time.Millisecond))

		cpu0 := ServerCPU(ctx, legacySrv.Addr())
		tcpu0 := targetCPU(ctx, targets)
		runtime.GC()
		if *prof != "" {
			f, err := os.Create(*prof)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		steal := readCPU()
		res, err := verify.Run(ctx, verify.Options{Legacy: legacy, Targets: targets, Router: router,
			Rounds: *rounds, Workers: *workers, Batch: *batch, Interval: time.Second})
		if err != nil {
			return err
		}
		cpu := ServerCPU(ctx, legacySrv.Addr()) - cpu0
		tcpu := targetCPU(ctx, targets) - tcpu0
		var compared, diffs int64
		for _, br := range res.Buckets {
			compared += br.Counts.Compared
			diffs += br.Counts.Persistent()
		}
		for i, d := range res.Differences {
			if i == 5 {
				break
			}
			fmt.Fprintf(os.Stderr, "bench: difference %s %s %q %s\n", d.Category, d.Bucket, d.Key, d.Detail)
		}
		fmt.Printf("verify: %d legacy keys, %d compared across %d targets, %d differences, parity %v\n",
			res.LegacyKeys, compared, len(res.Buckets), diffs, res.Parity)
		fmt.Printf("verify: legacy pass %.2f s, target pass %.2f s\n", res.Phases.Legacy, res.Phases.Target)
		fmt.Printf("verify: %.2f s, %.0f keys/s, peak RSS %.1f MiB, legacy CPU %.2f s, targets CPU %.2f s\n",
			res.Seconds, float64(res.LegacyKeys)/res.Seconds, float64(PeakRSS())/(1<<20), cpu, tcpu)
		fmt.Println(machineLine(steal))
		return nil
	}
}

// clientCPU is ServerCPU through an existing client (sentinel-managed
// masters have no fixed address).
func clientCPU(ctx context.Context, c *redis.Client) float64 {
	s, err := c.Info(ctx, "cpu").Result()
	if err != nil {
		return 0
	}
	f := store.ParseInfo(s)
	u, _ := strconv.ParseFloat(f["used_cpu_user"], 64)
	y, _ := strconv.ParseFloat(f["used_cpu_sys"], 64)
	return u + y
}

// targetCPU sums ServerCPU over every master of the targets.
func targetCPU(ctx context.Context, targets map[string]*store.Redis) float64 {
	var total float64
	var mu sync.Mutex
	for _, t := range targets {
		_ = t.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			v := clientCPU(ctx, c)
			mu.Lock()
			total += v
			mu.Unlock()
			return nil
		})
	}
	return total
}
