package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/scan"
)

// scanFigures is what the measured phase reports to the parent.
type scanFigures struct {
	Keys      int64   `json:"keys"`
	Expired   int64   `json:"expired"`
	Seconds   float64 `json:"seconds"`
	PeakRSS   int64   `json:"peak_rss"`
	Unknown   int64   `json:"unknown"`
	BytesSeen int64   `json:"bytes"`
}

// benchScan: go run ./bench scan [-keys N] [-count C] [-sample P] [-skip-cli]
//
// Generates the benchmark keyspace into a fresh local redis-server, times
// `redis-cli --memkeys` against it, then runs the scan engine (per-key TYPE,
// PTTL, OBJECT ENCODING and MEMORY USAGE SAMPLES 0, classification, patterns,
// proposals) in a child process (this binary re-executed in mode
// scan-measure), so that its peak RSS is not polluted by the generator.
func benchScan(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	n := fs.Int("keys", 1000000, "keys in the benchmark keyspace")
	count := fs.Int("count", 1000, "SCAN COUNT")
	sample := fs.Float64("sample", 100, "percent of keys given MEMORY USAGE")
	skipCLI := fs.Bool("skip-cli", false, "do not time redis-cli --memkeys")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv, stop, err := StartLegacy(ctx, *n)
	if err != nil {
		return err
	}
	defer stop()
	addr := srv.Addr()

	var cliSecs float64
	if !*skipCLI {
		host, port := splitAddr(addr)
		cmd := exec.CommandContext(ctx, "redis-cli", "-h", host, "-p", port, "--memkeys")
		cmd.Stdout, cmd.Stderr = nil, os.Stderr
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("redis-cli --memkeys: %w", err)
		}
		cliSecs = time.Since(t0).Seconds()
		fmt.Printf("redis-cli --memkeys: %d keys in %.2fs (%.0f keys/s)\n", *n, cliSecs, float64(*n)/cliSecs)
	}

	cpu0 := ServerCPU(ctx, addr)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.CommandContext(ctx, self, "scan-measure", addr, fmt.Sprint(*count), fmt.Sprint(*sample))
	child.Stderr = os.Stderr
	out, err := child.Output()
	if err != nil {
		return fmt.Errorf("measured scan: %w", err)
	}
	var f scanFigures
	if err := json.Unmarshal(out, &f); err != nil {
		return fmt.Errorf("measured scan output %q: %w", out, err)
	}
	cpu := ServerCPU(ctx, addr) - cpu0
	fmt.Printf("redisplit scan:      %d keys in %.2fs (%.0f keys/s), peak RSS %.1f MiB, legacy CPU %.1fs, count %d, sample %g%%, unknown %d, expired %d\n",
		f.Keys, f.Seconds, float64(f.Keys)/f.Seconds, float64(f.PeakRSS)/(1<<20), cpu, *count, *sample, f.Unknown, f.Expired)
	if cliSecs > 0 {
		fmt.Printf("speedup vs redis-cli --memkeys: %.2fx\n", cliSecs/f.Seconds)
	}
	return nil
}

// measureScan runs one scan in this process and prints its figures as JSON.
func measureScan(ctx context.Context, args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("usage: bench scan-measure ADDR COUNT SAMPLE")
	}
	var count int
	var sample float64
	fmt.Sscan(args[1], &count)
	fmt.Sscan(args[2], &sample)
	c := redis.NewClient(&redis.Options{Addr: args[0], PoolSize: 16, DisableIdentity: true, ReadTimeout: time.Minute})
	defer c.Close()
	cl, _, err := classify.Router(nil)
	if err != nil {
		return err
	}
	if prof := os.Getenv("BENCH_CPUPROFILE"); prof != "" {
		pf, err := os.Create(prof)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	t0 := time.Now()
	r, err := scan.Run(ctx, c, cl, scan.Options{Count: count, SamplePercent: sample})
	if err != nil {
		return err
	}
	f := scanFigures{Keys: r.Scanned, Expired: r.ExpiredDuringScan, Seconds: time.Since(t0).Seconds(), PeakRSS: PeakRSS()}
	for _, b := range r.Buckets {
		if b.Bucket == string(classify.Unknown) {
			f.Unknown = b.Keys
		}
		f.BytesSeen += b.Bytes
	}
	return json.NewEncoder(os.Stdout).Encode(f)
}

func splitAddr(addr string) (string, string) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:]
		}
	}
	return addr, "6379"
}

func init() {
	modes["scan"] = benchScan
	modes["scan-measure"] = measureScan
}
