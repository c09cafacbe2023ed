package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	runs := fs.Int("runs", 1, "measurements of each tool, alternating; the medians are compared")
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

	var cliTimes, scanTimes []float64
	for i := 0; i < *runs; i++ {
		if !*skipCLI {
			secs, err := timeMemkeys(ctx, addr, *n)
			if err != nil {
				return err
			}
			cliTimes = append(cliTimes, secs)
		}
		secs, err := timeScan(ctx, *bin, addr, *count, *sample)
		if err != nil {
			return err
		}
		scanTimes = append(scanTimes, secs)
	}
	cli, own := median(cliTimes), median(scanTimes)
	if *runs > 1 {
		fmt.Printf("median of %d runs: redisplit scan %.2fs (%.0f keys/s)", *runs, own, float64(*n)/own)
		if cli > 0 {
			fmt.Printf(", redis-cli --memkeys %.2fs", cli)
		}
		fmt.Println()
	}
	if cli > 0 {
		fmt.Printf("speedup vs redis-cli --memkeys: %.2fx\n", cli/own)
	}
	return nil
}

// timeMemkeys times `redis-cli --memkeys` against addr and prints it.
func timeMemkeys(ctx context.Context, addr string, n int) (float64, error) {
	host, port := splitAddr(addr)
	cmd := exec.CommandContext(ctx, "redis-cli", "-h", host, "-p", port, "--memkeys")
	cmd.Stdout, cmd.Stderr = nil, os.Stderr
	cpu0 := ServerCPU(ctx, addr)
	steal := readCPU()
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("redis-cli --memkeys: %w", err)
	}
	secs := time.Since(t0).Seconds()
	cliCPU := cmd.ProcessState.UserTime().Seconds() + cmd.ProcessState.SystemTime().Seconds()
	fmt.Printf("redis-cli --memkeys: %d keys in %.2fs (%.0f keys/s), CPU %.1fs (legacy %.1fs)   [redis-cli -h %s -p %s --memkeys]\n  %s\n",
		n, secs, float64(n)/secs, cliCPU, ServerCPU(ctx, addr)-cpu0, host, port, machineLine(steal))
	return secs, nil
}

// timeScan times the real command line, `redisplit scan -o json`, in its
// own process, and prints its figures.
func timeScan(ctx context.Context, bin, addr string, count int, sample float64) (float64, error) {
	cpu0 := ServerCPU(ctx, addr)
	scanArgs := []string{"scan", "--legacy", "redis://" + addr, "-o", "json", "--no-progress",
		"--count", fmt.Sprint(count), "--sample", fmt.Sprint(sample), "--config", os.DevNull}
	child := exec.CommandContext(ctx, bin, scanArgs...)
	child.Stderr = os.Stderr
	steal := readCPU()
	t0 := time.Now()
	out, err := child.Output()
	secs := time.Since(t0).Seconds()
	machine := machineLine(steal)
	if err != nil {
		return 0, fmt.Errorf("redisplit scan: %w", err)
	}
	cpu := ServerCPU(ctx, addr) - cpu0
	var r scan.Report
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, fmt.Errorf("redisplit scan output: %w", err)
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
	fmt.Printf("redisplit scan:      %d keys in %.2fs (%.0f keys/s), peak RSS %.1f MiB, CPU %.1fs (legacy %.1fs), unknown %d, expired %d   [%s %s]\n  %s\n",
		r.Scanned, secs, float64(r.Scanned)/secs, float64(rss)/(1<<20), user+sys, cpu, unknown, r.ExpiredDuringScan,
		filepath.Base(bin), strings.Join(scanArgs, " "), machine)
	return secs, nil
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
