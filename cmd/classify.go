package cmd

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/keyname"
)

type classifyOptions struct {
	typ         string
	b64         bool
	stdin       bool
	listPresets bool
}

func init() { register(newClassifyCmd) }

func newClassifyCmd(app *App) *cobra.Command {
	o := &classifyOptions{}
	c := &cobra.Command{
		Use:   "classify KEY...",
		Short: "Explain which rule routes each key to which bucket (needs no Redis)",
		Long: `classify routes each KEY exactly as scan, migrate and verify would, and prints the bucket and
the rule that decided it: its source (rules[N] from the config, preset NAME, a plan rule, a
proposal), its name and its matcher. Rules are tried in order and the first match wins: the
config's rules, then the enabled presets; with --plan (or plan: in the config) the plan's rules
alone.

Some rules also require a Redis type. Without --type, classify shows the result for a key of
unknown type and, below it, every type that would route the key differently.

  redisplit classify 'queue:default' --type list
  redisplit classify 'sess:Qk3Z0a9b' ':1:django.contrib.sessions.cachez8k2m' -o json
  redisplit classify --b64 Y2VsZXJ5BhYz --type list      a key that is not valid text
  redisplit classify --list-presets                      every preset and its rules
  redis-cli --scan --pattern 'app:*' | redisplit classify --stdin

With --stdin, keys are read one per line (base64 with --b64); a line "KEY<TAB>TYPE" gives that key's
type. Output is written as keys are read, so any number of keys can be piped through.`,
		RunE: func(c *cobra.Command, args []string) error { return runClassify(app, o, args) },
	}
	f := c.Flags()
	f.StringVar(&o.typ, "type", "", "the keys' Redis type: string, hash, list, set, zset or stream")
	f.BoolVar(&o.b64, "b64", false, "the KEY arguments are base64 (standard encoding) for binary key names")
	f.BoolVar(&o.stdin, "stdin", false, "read the keys from standard input, one per line (optionally KEY<TAB>TYPE)")
	f.BoolVar(&o.listPresets, "list-presets", false, "list the built-in presets, whether each is enabled, and their rules")
	return c
}

// classifyTypes are the Redis types rules may name.
var classifyTypes = []string{"string", "hash", "list", "set", "zset", "stream"}

// keyVerdict is the classification of one key: the JSON element and the
// source of the text line.
type keyVerdict struct {
	keyname.JSON
	Type   string          `json:"type,omitempty"`
	Bucket classify.Bucket `json:"bucket"`
	Rule   *string         `json:"rule"`              // the deciding rule; null when none matches
	ByType []typedVerdict  `json:"by_type,omitempty"` // without --type: types that route differently
	// Overrides lists later rules that also match and name another bucket:
	// what a config or plan rule overrides (a preset, usually).
	Overrides []typedVerdict `json:"overrides,omitempty"`
	Warning   string         `json:"warning,omitempty"`
	// Evidence is the deciding rule's evidence as the plan records it (a
	// scan proposal's confidence, deciding signature and evidence).
	Evidence []string `json:"evidence,omitempty"`
	raw      string
}

type typedVerdict struct {
	Type   string          `json:"type,omitempty"`
	Bucket classify.Bucket `json:"bucket"`
	Rule   *string         `json:"rule"`
}

func ruleText(m classify.Match) *string {
	if m.Rule == nil {
		return nil
	}
	s := m.Rule.String()
	return &s
}

func runClassify(app *App, o *classifyOptions, args []string) error {
	cfg, err := app.Config()
	if err != nil {
		return err
	}
	if o.listPresets {
		return listPresets(app, cfg)
	}
	if len(args) == 0 && !o.stdin {
		return &config.Error{Msg: "classify needs at least one KEY, --stdin or --list-presets\nRun 'redisplit classify --help' for usage."}
	}
	if len(args) > 0 && o.stdin {
		return &config.Error{Msg: "classify takes KEY arguments or --stdin, not both"}
	}
	if o.typ != "" && !isRedisType(o.typ) {
		return config.Errorf("--type", "%q is not one of %s", o.typ, strings.Join(classifyTypes, ", "))
	}
	c, _, err := classify.Router(cfg)
	if err != nil {
		return err
	}
	if cfg.Plan != "" && (len(cfg.Rules) > 0 || cfg.Presets.None || len(cfg.Presets.Disabled) > 0) {
		fmt.Fprintf(app.Err, "note: routing with the plan %s alone; rules: and presets: in the configuration are not used\n", cfg.Plan)
	}
	out := newVerdictWriter(app)
	defer out.flush() // on an error, what was classified before it is still shown
	decode := func(s string, what string) (string, error) {
		if !o.b64 {
			return s, nil
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return "", config.Errorf("KEY", "%s (%q) is not base64: %v", what, s, err)
		}
		return string(b), nil
	}
	if !o.stdin {
		for i, a := range args {
			key, err := decode(a, fmt.Sprintf("argument %d", i+1))
			if err != nil {
				return err
			}
			if err := out.write(classifyOne(c, key, o.typ)); err != nil {
				return err
			}
		}
		return out.close()
	}
	r := bufio.NewReaderSize(app.In, 64<<10)
	for line := 1; ; line++ {
		if r.Buffered() == 0 { // about to wait for input: show what is done
			if err := out.flush(); err != nil {
				return err
			}
		}
		text, err := r.ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("reading keys from standard input: %w", err)
		}
		text = strings.TrimSuffix(text, "\n")
		if text != "" {
			typ := o.typ
			if i := strings.LastIndexByte(text, '\t'); i >= 0 && isRedisType(text[i+1:]) {
				text, typ = text[:i], text[i+1:]
			}
			key, derr := decode(text, fmt.Sprintf("line %d", line))
			if derr != nil {
				return derr
			}
			if werr := out.write(classifyOne(c, key, typ)); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return out.close()
		}
	}
}

// verdictWriter writes verdicts as they are made: text lines, or the
// elements of one JSON array (so that --stdin streams in bounded memory).
type verdictWriter struct {
	w    *bufio.Writer
	json bool
	n    int
}

func newVerdictWriter(app *App) *verdictWriter {
	return &verdictWriter{w: bufio.NewWriterSize(app.Out, 64<<10), json: app.Output == "json"}
}

func (vw *verdictWriter) write(v keyVerdict) error {
	if !vw.json {
		writeVerdict(vw.w, v)
		return nil
	}
	b, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		return err
	}
	sep := ",\n  "
	if vw.n == 0 {
		sep = "[\n  "
	}
	vw.n++
	_, err = io.WriteString(vw.w, sep+string(b))
	return err
}

func (vw *verdictWriter) flush() error { return vw.w.Flush() }

func (vw *verdictWriter) close() error {
	if vw.json {
		end := "\n]\n"
		if vw.n == 0 {
			end = "[]\n"
		}
		if _, err := io.WriteString(vw.w, end); err != nil {
			return err
		}
	}
	return vw.w.Flush()
}

func classifyOne(c *classify.Classifier, key, typ string) keyVerdict {
	m := c.Classify(key, typ)
	v := keyVerdict{JSON: keyname.Of(key), Type: typ, Bucket: m.Bucket, Rule: ruleText(m), raw: key}
	if m.Rule != nil && strings.HasPrefix(m.Rule.Comment, "proposal for ") { // a scan proposal's evidence, kept in the plan
		v.Evidence = strings.Split(m.Rule.Comment, "\n")
	}
	// A rule that is not a preset's may override a preset that knows the key
	// better; say so, loudly when the override sends a durable key to cache.
	if m.Rule != nil && !strings.HasPrefix(m.Rule.Source, "preset ") {
		for _, o := range c.MatchAll(key, typ)[1:] {
			if o.Bucket == m.Bucket {
				continue
			}
			v.Overrides = append(v.Overrides, typedVerdict{Bucket: o.Bucket, Rule: ruleText(o)})
			if m.Bucket == classify.Cache && v.Warning == "" {
				v.Warning = fmt.Sprintf("%s routes this key to cache, where eviction can delete it, but %s says %s",
					m.Rule.Source, o.Rule.Source, o.Bucket)
			}
		}
	}
	if typ == "" && c.NeedsType() {
		for _, t := range classifyTypes {
			mt := c.Classify(key, t)
			if mt.Bucket != m.Bucket || mt.Rule != m.Rule {
				v.ByType = append(v.ByType, typedVerdict{Type: t, Bucket: mt.Bucket, Rule: ruleText(mt)})
			}
		}
	}
	return v
}

func writeVerdict(w io.Writer, v keyVerdict) {
	name := displayKey(v.raw)
	if v.Type != "" {
		name += " (" + v.Type + ")"
	}
	verdict := func(b classify.Bucket, rule *string) string {
		if rule == nil {
			return "unknown: no rule matches"
		}
		return fmt.Sprintf("%s  by %s", b, *rule)
	}
	line := verdict(v.Bucket, v.Rule)
	if len(v.ByType) > 0 && v.Rule == nil {
		line += " without a type"
	}
	fmt.Fprintf(w, "%s → %s\n", name, line)
	for _, e := range v.Evidence {
		fmt.Fprintf(w, "    # %s\n", strings.TrimSpace(e))
	}
	for _, o := range v.Overrides {
		fmt.Fprintf(w, "    overrides → %s\n", verdict(o.Bucket, o.Rule))
	}
	if v.Warning != "" {
		fmt.Fprintf(w, "    WARNING: %s\n", v.Warning)
	}
	for _, t := range v.ByType {
		fmt.Fprintf(w, "    as %-6s → %s\n", t.Type, verdict(t.Bucket, t.Rule))
	}
}

// displayKey prints a key as is when it is printable text, else quoted with
// Go escapes (binary bytes, control characters, spaces at the ends).
func displayKey(k string) string {
	if k == "" || !utf8.ValidString(k) || strings.TrimSpace(k) != k {
		return strconv.Quote(k)
	}
	for _, r := range k {
		if !unicode.IsPrint(r) {
			return strconv.Quote(k)
		}
	}
	return k
}

func isRedisType(t string) bool {
	for _, x := range classifyTypes {
		if x == t {
			return true
		}
	}
	return false
}

type presetView struct {
	Name        string     `json:"name"`
	Enabled     bool       `json:"enabled"`
	Description string     `json:"description"`
	Rules       []ruleView `json:"rules"`
}

// ruleView is a rule in JSON, with the field names of the plan file.
type ruleView struct {
	Name   string `json:"name,omitempty"`
	Glob   string `json:"glob,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Regex  string `json:"regex,omitempty"`
	Type   string `json:"type,omitempty"`
	Bucket string `json:"bucket"`
	From   string `json:"from"`
}

func listPresets(app *App, cfg *config.Config) error {
	enabled, err := classify.EnabledPresets(cfg.Presets)
	if err != nil {
		return err
	}
	on := map[string]bool{}
	for _, p := range enabled {
		on[p.Name] = true
	}
	var views []presetView
	for _, p := range classify.Presets() {
		v := presetView{Name: p.Name, Enabled: on[p.Name], Description: p.Description}
		for _, r := range p.Rules {
			v.Rules = append(v.Rules, ruleView{Name: r.Name, Glob: r.Glob, Prefix: r.Prefix, Regex: r.Regex,
				Type: r.Type, Bucket: string(r.Bucket), From: r.Source})
		}
		views = append(views, v)
	}
	if app.Output == "json" {
		enc := json.NewEncoder(app.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(views)
	}
	if cfg.Plan != "" {
		fmt.Fprintf(app.Out, "note: routing uses the plan %s; presets apply only as it lists them\n\n", cfg.Plan)
	}
	for _, v := range views {
		state := "on"
		if !v.Enabled {
			state = "off"
		}
		fmt.Fprintf(app.Out, "%s (%s)\n  %s\n", v.Name, state, v.Description)
		for _, r := range v.Rules {
			rule := classify.Rule{Name: r.Name, Glob: r.Glob, Prefix: r.Prefix, Regex: r.Regex, Type: r.Type}
			fmt.Fprintf(app.Out, "    → %-9s %s\n", r.Bucket, rule.String())
		}
		fmt.Fprintln(app.Out)
	}
	return nil
}
