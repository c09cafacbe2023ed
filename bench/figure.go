package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/topology"
)

// figure is one copier's measurement over one copy of the keyspace: every
// copier of a bench migrate run (bare, RedisShake, redisplit) is measured
// the same way, in a child process, against the same legacy.
type figure struct {
	Name      string
	Keys      int64         // keys copied
	Wall      time.Duration // the child process, start to exit
	LegacyCPU float64       // seconds: legacy's used_cpu_sys+used_cpu_user delta over Wall
	ChildCPU  time.Duration // the copier's own user+sys CPU
	RSS       int64         // the copier's peak RSS, bytes
	Machine   string        // load average and steal during the measurement
	Commands  string        // legacy's INFO commandstats over the run: calls and usec per command
}

// perKey is legacy CPU per copied key in microseconds.
func (f figure) perKey() float64 {
	if f.Keys == 0 {
		return 0
	}
	return f.LegacyCPU * 1e6 / float64(f.Keys)
}

func (f figure) line() string {
	return fmt.Sprintf("%-12s %8d keys  wall %7.2f s  legacy CPU %6.2f s = %5.2f µs/key  peak RSS %6.1f MiB  own CPU %6.2f s  [%s]\n    legacy commands (calls, usec per key): %s",
		f.Name+":", f.Keys, f.Wall.Seconds(), f.LegacyCPU, f.perKey(), float64(f.RSS)/(1<<20), f.ChildCPU.Seconds(), f.Machine, f.Commands)
}

// measure runs name's child process (argv) and measures it against legacy;
// keys parses the child's stdout into the number of keys it copied.
func measure(ctx context.Context, name, legacyAddr string, keys func(stdout []byte) (int64, error), argv ...string) (figure, error) {
	f := figure{Name: name}
	child := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, os.Stderr
	lc := redis.NewClient(&redis.Options{Addr: legacyAddr, DisableIdentity: true, ReadTimeout: time.Minute})
	defer lc.Close()
	if err := lc.ConfigResetStat(ctx).Err(); err != nil {
		return f, err
	}
	cpu0 := ServerCPU(ctx, legacyAddr)
	steal := readCPU()
	t0 := time.Now()
	err := child.Run()
	f.Wall = time.Since(t0)
	f.Machine = machineLine(steal)
	f.LegacyCPU = ServerCPU(ctx, legacyAddr) - cpu0
	if child.ProcessState != nil {
		ru := child.ProcessState.SysUsage().(*syscall.Rusage)
		f.ChildCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		f.RSS = ru.Maxrss * 1024
	}
	if err != nil {
		return f, fmt.Errorf("%s: %v\n%s", name, err, out.String())
	}
	n, err := keys(out.Bytes())
	f.Keys = n
	if n > 0 {
		f.Commands = commandLine(ctx, lc, n)
	}
	return f, err
}

// commandLine renders legacy's INFO commandstats since the last RESETSTAT,
// dearest first: calls, and the command's own usec per copied key (what
// the command alone costs; the rest of legacy CPU is parsing, replies and
// syscalls).
func commandLine(ctx context.Context, c *redis.Client, keys int64) string {
	s, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return "?"
	}
	type cs struct {
		name  string
		calls int64
		usec  float64
	}
	var all []cs
	for _, line := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		x := cs{name: strings.TrimPrefix(name, "cmdstat_")}
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				x.calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec":
				x.usec, _ = strconv.ParseFloat(v, 64)
			}
		}
		if x.name != "info" && x.name != "config|resetstat" {
			all = append(all, x)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].usec > all[j].usec })
	var parts []string
	for _, x := range all {
		parts = append(parts, fmt.Sprintf("%s %d %.2f", x.name, x.calls, x.usec/float64(keys)))
	}
	return strings.Join(parts, "; ")
}

// startBaselineTarget starts the one standalone target the bare copier and
// RedisShake write to (the baselines: one target, not four).
func startBaselineTarget(ctx context.Context) (topology.Server, func(), error) {
	dir, err := os.MkdirTemp("", "redisplit-bench-baseline-")
	if err != nil {
		return nil, nil, err
	}
	b, err := topology.NewProcessBackend(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	stop := func() { b.Close(); os.RemoveAll(dir) }
	s, err := topology.Standalone(ctx, b, "baseline")
	if err != nil {
		stop()
		return nil, nil, err
	}
	return s, stop, nil
}

// flushAll empties one server.
func flushAll(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, ReadTimeout: time.Minute})
	defer c.Close()
	return c.FlushAllAsync(ctx).Err()
}
