package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
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
}

// perKey is legacy CPU per copied key in microseconds.
func (f figure) perKey() float64 {
	if f.Keys == 0 {
		return 0
	}
	return f.LegacyCPU * 1e6 / float64(f.Keys)
}

func (f figure) line() string {
	return fmt.Sprintf("%-12s %8d keys  wall %7.2f s  legacy CPU %6.2f s = %5.2f µs/key  peak RSS %6.1f MiB  own CPU %6.2f s  [%s]",
		f.Name+":", f.Keys, f.Wall.Seconds(), f.LegacyCPU, f.perKey(), float64(f.RSS)/(1<<20), f.ChildCPU.Seconds(), f.Machine)
}

// measure runs name's child process (argv) and measures it against legacy;
// keys parses the child's stdout into the number of keys it copied.
func measure(ctx context.Context, name, legacyAddr string, keys func(stdout []byte) (int64, error), argv ...string) (figure, error) {
	f := figure{Name: name}
	child := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, os.Stderr
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
	return f, err
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
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer c.Close()
	return c.FlushAll(ctx).Err()
}
