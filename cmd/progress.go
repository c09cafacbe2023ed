package cmd

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress shows how far a long operation is: a bar with ETA on a terminal,
// a plain line every few seconds otherwise, nothing with --no-progress.
// Engines report through Set/Add (safe for concurrent use); call Finish once.
type Progress struct {
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	w     io.Writer
	desc  string
	total int64
	done  int64
	last  time.Time
	every time.Duration
	start time.Time
	off   bool
}

// NewProgress starts a progress display for total units (0 if unknown).
func (a *App) NewProgress(desc string, total int64) *Progress {
	p := &Progress{w: a.Err, desc: desc, total: total, every: 5 * time.Second, start: time.Now(), last: time.Now()}
	switch {
	case a.NoProgress:
		p.off = true
	case a.IsTerminal:
		barMax := total
		if barMax <= 0 {
			barMax = -1
		}
		p.bar = progressbar.NewOptions64(barMax,
			progressbar.OptionSetWriter(a.Err),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("keys"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
}

// Set records that n units are done.
func (p *Progress) Set(n int64) {
	if p == nil || p.off {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = n
	if p.bar != nil {
		if p.total > 0 && n > p.total {
			p.total = n
			p.bar.ChangeMax64(n)
		}
		_ = p.bar.Set64(n)
		return
	}
	if time.Since(p.last) >= p.every {
		p.last = time.Now()
		p.line()
	}
}

// Add records that n more units are done.
func (p *Progress) Add(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	d := p.done + n
	p.mu.Unlock()
	p.Set(d)
}

func (p *Progress) line() {
	el := time.Since(p.start).Seconds()
	rate := float64(p.done) / max(el, 0.001)
	if p.total > 0 {
		eta := "?"
		if p.done >= p.total {
			eta = "0s"
		} else if rate > 0 {
			eta = (time.Duration(float64(p.total-p.done)/rate) * time.Second).Round(time.Second).String()
		}
		fmt.Fprintf(p.w, "%s: %d/%d (%.0f%%) %.0f/s eta %s\n", p.desc, p.done, p.total,
			100*float64(p.done)/float64(p.total), rate, eta)
		return
	}
	fmt.Fprintf(p.w, "%s: %d %.0f/s\n", p.desc, p.done, rate)
}

// Finish ends the display; calling it again does nothing.
func (p *Progress) Finish() {
	if p == nil || p.off {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off {
		return
	}
	p.off = true
	if p.bar != nil {
		_ = p.bar.Finish()
		return
	}
	p.line()
}

// Describe changes the description shown before the bar or on each line
// (e.g. per-part counts). Safe for concurrent use.
func (p *Progress) Describe(desc string) {
	if p == nil || p.off {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.desc = desc
	if p.bar != nil {
		p.bar.Describe(desc)
	}
}

// Notef prints a line that must be seen whatever the progress settings
// (warnings about degraded servers, their recovery): above the bar on a
// terminal, as a plain line otherwise, and also with --no-progress.
func (p *Progress) Notef(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

// collectLessOften raises the garbage collector's target for a streaming
// engine run (scan, migrate, verify) and returns the function that restores
// it. Their live heap is small and bounded (batches in flight, capped
// tables), so collecting less often trades a few tens of MiB, still flat
// whatever the keyspace size, for about a fifth less CPU. An explicit GOGC
// environment variable wins.
func collectLessOften() func() {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(400)
	return func() { debug.SetGCPercent(old) }
}

// StatusLine shows one line of figures that changes (the live phase's lag,
// backlog, rates): rewritten in place on a terminal, printed as a plain
// line every few seconds otherwise, nothing with --no-progress. Notef
// prints a line that must be seen in every case. Safe for concurrent use.
type StatusLine struct {
	mu    sync.Mutex
	w     io.Writer
	term  bool
	off   bool
	shown bool // a line is on the terminal, without its newline
	last  time.Time
	every time.Duration
}

// NewStatusLine starts a status line on a.Err.
func (a *App) NewStatusLine() *StatusLine {
	return &StatusLine{w: a.Err, term: a.IsTerminal, off: a.NoProgress, every: 5 * time.Second}
}

// Set shows line.
func (s *StatusLine) Set(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.off:
	case s.term:
		fmt.Fprint(s.w, "\r\x1b[K"+line)
		s.shown = true
	case s.last.IsZero() || time.Since(s.last) >= s.every:
		s.last = time.Now()
		fmt.Fprintln(s.w, line)
	}
}

// Notef prints a line above the status line.
func (s *StatusLine) Notef(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown {
		fmt.Fprint(s.w, "\r\x1b[K")
		s.shown = false
	}
	fmt.Fprintf(s.w, format+"\n", args...)
}

// Finish ends the status line.
func (s *StatusLine) Finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown {
		fmt.Fprintln(s.w)
		s.shown = false
	}
}
