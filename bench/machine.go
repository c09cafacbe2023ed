package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// cpuSample is the aggregate "cpu" line of /proc/stat, in jiffies.
type cpuSample struct{ total, steal int64 }

func readCPU() cpuSample {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuSample{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var s cpuSample
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		s.total += n
		if i == 7 {
			s.steal = n
		}
	}
	return s
}

// stealSince is the share of this machine's CPU time, in percent, that the
// hypervisor gave to other guests since s. Above a few percent, timings
// measure the host's load as much as the code.
func (s cpuSample) stealSince() float64 {
	now := readCPU()
	if now.total <= s.total {
		return 0
	}
	return 100 * float64(now.steal-s.steal) / float64(now.total-s.total)
}

// machineLine describes the machine a figure was measured on.
func machineLine(since cpuSample) string {
	load := "?"
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(l))[:3], " ")
	}
	return fmt.Sprintf("machine: %d CPUs, load average %s, CPU steal during the measurement %.1f%%",
		runtime.NumCPU(), load, since.stealSince())
}

// median of xs (xs is left unchanged).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Sorted(slices.Values(xs))
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}
