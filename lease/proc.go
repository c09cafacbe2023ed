package lease

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// procStat is what /proc/PID/stat tells about a process: its state letter
// (R, S, D, Z for a zombie, X for dead, ...) and its start time in clock
// ticks since boot.
type procStat struct {
	state byte
	start uint64
}

// readProcStat parses /proc/PID/stat. The command name (field 2) is in
// parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ')'.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state), f[19] field 22 (starttime)
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return procStat{state: f[0][0], start: start}, nil
}

// procStart returns the start time of pid in clock ticks since boot.
func procStart(pid int) (uint64, error) {
	st, err := readProcStat(pid)
	return st.start, err
}

// procGone says why the process pid, started at start (0: unknown), no
// longer runs on this machine: "gone", "zombie" or "pid reused"; "" when it
// is (or may be) alive. Without /proc it falls back to kill(pid, 0).
func procGone(pid int, start uint64) string {
	st, err := readProcStat(pid)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, perr := os.Stat("/proc/self/stat"); perr != nil { // no /proc here
			if kerr := syscall.Kill(pid, 0); errors.Is(kerr, syscall.ESRCH) {
				return "gone"
			}
			return ""
		}
		return "gone"
	case err != nil:
		return "" // cannot tell: assume alive
	case st.state == 'Z':
		return "zombie"
	case st.state == 'X':
		return "gone"
	case start != 0 && st.start != start:
		return "pid reused"
	}
	return ""
}
