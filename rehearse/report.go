package rehearse

import (
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/redisplit/redisplit/config"
)

// Markdown writes the human summary of r: verdict, topology, dataset and one
// table row per phase and bucket, then the offending keys and the output of
// failed commands.
func (r *Result) Markdown(w io.Writer) error {
	var b strings.Builder
	verdict := "PASSED"
	if !r.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "# redisplit rehearsal: %s\n\n", verdict)
	fmt.Fprintf(&b, "- started %s, took %s\n", r.Started.UTC().Format(time.RFC3339), r.Duration.Round(100*time.Millisecond))
	fmt.Fprintf(&b, "- data: %s\n", r.Source)
	if r.Image != "" {
		fmt.Fprintf(&b, "- image: %s\n", r.Image)
	}
	for _, s := range r.Servers {
		fmt.Fprintf(&b, "- %s\n", s)
	}
	if len(r.Legacy) > 0 {
		var parts []string
		shown := append([]string{}, r.Buckets...)
		if r.Queue != nil {
			shown = append(shown, r.Queue.Bucket)
		}
		for _, bk := range append(shown, "unknown") {
			if n, ok := r.Legacy[bk]; ok {
				parts = append(parts, fmt.Sprintf("%s %d", bk, n))
			}
		}
		fmt.Fprintf(&b, "- legacy keys per bucket: %s\n", strings.Join(parts, ", "))
	}
	if g := r.Generated; g != nil {
		fmt.Fprintf(&b, "- generated %d keys in %s (%d binary names, %d big keys, short TTLs: %s)\n",
			g.Total, g.Duration.Round(time.Millisecond), g.Binary, len(g.Big), counts(g.ShortTTL))
	}
	if l := r.Live; l != nil {
		fmt.Fprintf(&b, "- live phase: %s\n", l.summary())
	}
	b.WriteString("\n| phase | bucket | result | detail |\n|---|---|---|---|\n")
	for _, c := range r.Cases {
		res := "pass"
		switch {
		case c.Skipped:
			res = "note"
		case !c.OK:
			res = "**FAIL**"
		}
		bucket := c.Bucket
		if bucket == "" {
			bucket = "-"
		}
		d := c.Detail
		if c.Duration > 0 {
			d += fmt.Sprintf(" (%s)", c.Duration.Round(10*time.Millisecond))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", c.Phase, bucket, res, mdEscape(d))
	}
	if len(r.Commands) > 0 {
		b.WriteString("\n| command | exit | time |\n|---|---|---|\n")
		for _, o := range r.Commands {
			fmt.Fprintf(&b, "| `redisplit %s` | %d | %s |\n", strings.Join(shortArgs(o.Args), " "), o.Code, o.Duration.Round(10*time.Millisecond))
		}
	}
	var details strings.Builder
	shown := map[string]bool{}
	for _, c := range r.Cases {
		if c.OK || c.Skipped {
			continue
		}
		if len(c.Keys) > 0 {
			fmt.Fprintf(&details, "\n**%s / %s**: %s\n", c.Phase, c.Bucket, strings.Join(c.Keys, ", "))
		}
		if c.Output != "" && !shown[c.Phase] {
			shown[c.Phase] = true
			fmt.Fprintf(&details, "\n`redisplit %s` output:\n\n```\n%s\n```\n", c.Phase, c.Output)
		}
	}
	if details.Len() > 0 {
		b.WriteString("\n## Failures\n")
		b.WriteString(details.String())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// shortArgs drops the --config PATH and --no-progress every command gets.
func shortArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--config":
			i++
			continue
		case "--no-progress":
			continue
		}
		out = append(out, args[i])
	}
	return out
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *struct{}     `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// JUnit writes r as JUnit XML: one test suite "redisplit rehearse", one test
// case per phase and bucket (classname rehearse.<phase>, name the bucket),
// failures with their detail, offending keys and command output.
func (r *Result) JUnit(w io.Writer) error {
	s := junitSuite{Name: "redisplit rehearse", Time: secs(r.Duration), Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05")}
	for _, c := range r.Cases {
		name := c.Bucket
		if name == "" {
			name = c.Phase
		}
		jc := junitCase{Classname: "rehearse." + c.Phase, Name: name, Time: secs(c.Duration), SystemOut: c.Detail}
		switch {
		case c.Skipped:
			jc.Skipped = &struct{}{}
			s.Skipped++
		case !c.OK:
			body := c.Detail
			if len(c.Keys) > 0 {
				body += "\nkeys: " + strings.Join(c.Keys, ", ")
			}
			if c.Output != "" {
				body += "\n\n" + c.Output
			}
			jc.Failure = &junitFailure{Message: c.Detail, Type: "rehearse." + c.Phase, Body: sanitizeXML(body)}
			s.Failures++
		}
		jc.SystemOut = sanitizeXML(jc.SystemOut)
		s.Cases = append(s.Cases, jc)
	}
	s.Tests = len(s.Cases)
	doc := junitSuites{Name: "redisplit rehearse", Tests: s.Tests, Failures: s.Failures, Time: s.Time, Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// sanitizeXML drops characters XML 1.0 cannot carry (binary key names are
// quoted already; command output may hold anything).
func sanitizeXML(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r != 0xFFFE && r != 0xFFFF) {
			return r
		}
		return -1
	}, s)
}

// summary is the live phase's figures on one line.
func (l *LiveFigures) summary() string {
	parts := []string{fmt.Sprintf("%d writes applied to legacy in %s (%.0f/s) during migrate --dual-write",
		l.Load.Writes, l.Load.Elapsed.Round(10*time.Millisecond), l.Load.Rate)}
	if len(l.CaughtUp) > 0 {
		var lags []string
		for _, bk := range config.Buckets {
			if lb := l.CaughtUp[bk]; lb != nil {
				lags = append(lags, fmt.Sprintf("%s %d ms", bk, lb.LagMs))
			}
		}
		parts = append(parts, "caught up, lag "+strings.Join(lags, ", "))
	}
	if m := l.Migrate; m != nil {
		parts = append(parts, fmt.Sprintf("mirror: %d change events, %d copies, %d gaps, %d rescans", m.Events, m.Copies, len(m.Gaps), m.Rescans))
	}
	if c := l.Compare; c != nil {
		parts = append(parts, fmt.Sprintf("compared %d legacy and %d target keys both ways: %d differences", c.LegacyKeys, c.TargetKeys, len(c.Differences)+int(c.Dropped)))
	}
	return strings.Join(parts, "; ")
}
