package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/redisplit/redisplit/scan"
)

// benchScan: go run ./bench scan [-keys N] [-count C] [-sample P] [-skip-cli] [-bin PATH]
//
// Generates the benchmark keyspace into a fresh local redis-server, times
// `redis-cli --memkeys` against it, then times the real command line,
// `redisplit scan --legacy ... -o json --no-progress` (per-key TYPE, PTTL,
// OBJECT ENCODING and MEMORY USAGE SAMPLES 0, classification, patterns,
// proposals, preflight), in its own process: its peak RSS (ru_maxrss) is
// not polluted by the generator, and it is exactly what users run. The
// binary is built from this checkout unless -bin names one.
func benchScan(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	n := fs.Int("keys", 1000000, "keys in the benchmark keyspace")
	count := fs.Int("count", 1000, "SCAN COUNT")
	sample := fs.Float64("sample", 100, "percent of keys given MEMORY USAGE")
	skipCLI := fs.Bool("skip-cli", false, "do not time redis-cli --memkeys")
	bin := fs.String("bin", "", "redisplit binary to measure (default: built from this checkout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bin == "" {
		dir, err := os.MkdirTemp("", "redisplit-bench-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*bin = filepath.Join(dir, "redisplit")
		build := exec.CommandContext(ctx, "go", "build", "-o", *bin, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building redisplit (run from the repository root, or pass -bin): %w", err)
		}
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
		cpu0 := ServerCPU(ctx, addr)
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("redis-cli --memkeys: %w", err)
		}
		cliSecs = time.Since(t0).Seconds()
		cliCPU := cmd.ProcessState.UserTime().Seconds() + cmd.ProcessState.SystemTime().Seconds()
		fmt.Printf("redis-cli --memkeys: %d keys in %.2fs (%.0f keys/s), CPU %.1fs (legacy %.1fs)   [redis-cli -h %s -p %s --memkeys]\n",
			*n, cliSecs, float64(*n)/cliSecs, cliCPU, ServerCPU(ctx, addr)-cpu0, host, port)
	}

	cpu0 := ServerCPU(ctx, addr)
	scanArgs := []string{"scan", "--legacy", "redis://" + addr, "-o", "json", "--no-progress",
		"--count", fmt.Sprint(*count), "--sample", fmt.Sprint(*sample), "--config", os.DevNull}
	child := exec.CommandContext(ctx, *bin, scanArgs...)
	child.Stderr = os.Stderr
	t0 := time.Now()
	out, err := child.Output()
	secs := time.Since(t0).Seconds()
	if err != nil {
		return fmt.Errorf("redisplit scan: %w", err)
	}
	cpu := ServerCPU(ctx, addr) - cpu0
	var r scan.Report
	if err := json.Unmarshal(out, &r); err != nil {
		return fmt.Errorf("redisplit scan output: %w", err)
	}
	var rss int64
	if ru, ok := child.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss * 1024 // kilobytes on Linux
	}
	user, sys := child.ProcessState.UserTime().Seconds(), child.ProcessState.SystemTime().Seconds()
	var unknown int64
	for _, b := range r.Buckets {
		if b.Bucket == "unknown" {
			unknown = b.Keys
		}
	}
	fmt.Printf("redisplit scan:      %d keys in %.2fs (%.0f keys/s), peak RSS %.1f MiB, CPU %.1fs (legacy %.1fs), unknown %d, expired %d   [%s %s]\n",
		r.Scanned, secs, float64(r.Scanned)/secs, float64(rss)/(1<<20), user+sys, cpu, unknown, r.ExpiredDuringScan,
		filepath.Base(*bin), strings.Join(scanArgs, " "))
	if cliSecs > 0 {
		fmt.Printf("speedup vs redis-cli --memkeys: %.2fx\n", cliSecs/secs)
	}
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("machine: %d CPUs, load average %s", runtime.NumCPU(), l)
	}
	return nil
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
}
