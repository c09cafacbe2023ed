// Package plan is the client's copy of the routing core of package classify:
// it reads the plan file that `redisplit scan --plan-out` writes and routes a
// key name (and, for rules that name one, a Redis type) to its bucket with
// exactly classify's semantics: ordered rules, first match wins, Redis glob
// syntax, RE2 regexes, typed rules that match only a key of their type.
//
// It exists because package classify imports package config, which imports
// viper, and an application importing the client must not pull viper in. It
// is a copy, not a second design: TestSameRoutingAsClassify loads the same
// plans with both and compares every answer, so a change to classify that is
// not made here fails that test. When classify's core no longer imports
// config, the client should use classify and this package should go.
package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"regexp/syntax"
	"strings"

	"gopkg.in/yaml.v3"
)

// Version is the plan file format version this package reads
// (classify.PlanVersion).
const Version = 1

// Unknown is the bucket of a key no rule matches.
const Unknown = "unknown"

// Buckets are the routable buckets in report order (classify.Buckets).
var Buckets = []string{"cache", "session", "queue", "ratelimit"}

// IsBucket reports whether b is a routable bucket.
func IsBucket(b string) bool {
	for _, x := range Buckets {
		if x == b {
			return true
		}
	}
	return false
}

var redisTypes = map[string]bool{"string": true, "hash": true, "list": true, "set": true, "zset": true, "stream": true}

// routableTypes are the types rules may name, and "" (type unknown).
var routableTypes = []string{"", "string", "hash", "list", "set", "zset", "stream"}

// Rule is one routing rule of a plan file.
type Rule struct {
	Name   string `yaml:"name,omitempty"`
	Glob   string `yaml:"glob,omitempty"`
	Prefix string `yaml:"prefix,omitempty"`
	Regex  string `yaml:"regex,omitempty"`
	Type   string `yaml:"type,omitempty"`
	Bucket string `yaml:"bucket"`
	From   string `yaml:"from,omitempty"`
}

type file struct {
	Version *int   `yaml:"version"`
	Rules   []Rule `yaml:"rules"`
}

// Router routes key names by a plan. It is immutable and safe for concurrent
// use.
type Router struct {
	rules     []compiled
	needsType bool
	hash      string
}

type compiled struct {
	Rule
	re     *regexp.Regexp // nil for prefix rules
	prefix string         // every name the rule matches starts with it
	need   string         // every name the rule matches contains it
}

// Load reads and compiles the plan file at path.
func Load(path string) (*Router, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read plan file %s: %w (write one with: redisplit scan --plan-out %s)", path, err, path)
	}
	return Parse(path, data)
}

// Parse compiles a plan file's content; name names it in errors.
func Parse(name string, data []byte) (*Router, error) {
	var f file
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("plan %s: %v", name, err)
	}
	if f.Version == nil {
		return nil, fmt.Errorf("plan %s: missing version: (this client reads version %d)", name, Version)
	}
	if *f.Version != Version {
		return nil, fmt.Errorf("plan %s: plan version %d is not supported (this client reads version %d)", name, *f.Version, Version)
	}
	if f.Rules == nil {
		return nil, fmt.Errorf("plan %s: missing rules: (a plan without rules routes nothing)", name)
	}
	return New(name, f.Rules)
}

// New compiles rules in order; name names the list in errors.
func New(name string, rules []Rule) (*Router, error) {
	r := &Router{}
	for i, rule := range rules {
		c, err := compile(rule)
		if err != nil {
			return nil, fmt.Errorf("plan %s: rules[%d]: %v", name, i+1, err)
		}
		if c.Type != "" {
			r.needsType = true
		}
		r.rules = append(r.rules, c)
	}
	r.hash = hash(rules)
	return r, nil
}

// Hash is the plan's routing hash, equal to classify's Plan.Hash for the same
// file: the tool records it in its state and in the control key.
func (r *Router) Hash() string { return r.hash }

// NeedsType reports whether some rule names a Redis type.
func (r *Router) NeedsType() bool { return r.needsType }

func hash(rules []Rule) string {
	type canon struct {
		Glob, Prefix, Regex, Type, Bucket string
	}
	c := struct {
		Version int
		Rules   []canon
	}{Version: Version, Rules: make([]canon, 0, len(rules))}
	for _, r := range rules {
		c.Rules = append(c.Rules, canon{r.Glob, r.Prefix, r.Regex, r.Type, r.Bucket})
	}
	b, _ := json.Marshal(c) // strings and ints only
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func compile(r Rule) (compiled, error) {
	n := 0
	for _, s := range []string{r.Glob, r.Prefix, r.Regex} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return compiled{}, fmt.Errorf("exactly one of glob, prefix or regex must be set (found %d)", n)
	}
	if !IsBucket(r.Bucket) {
		return compiled{}, fmt.Errorf("bucket %q is not one of cache, session, queue, ratelimit", r.Bucket)
	}
	if r.Type != "" && !redisTypes[r.Type] {
		return compiled{}, fmt.Errorf("type %q is not one of string, hash, list, set, zset, stream", r.Type)
	}
	c := compiled{Rule: r}
	switch {
	case r.Prefix != "":
		c.prefix = r.Prefix
	case r.Glob != "":
		expr, err := GlobToRegexp(r.Glob)
		if err == nil {
			c.re, err = regexp.Compile(expr)
		}
		if err != nil {
			return compiled{}, fmt.Errorf("invalid glob %q: %v", r.Glob, err)
		}
		c.prefix, c.need = literals(expr)
	default:
		re, err := regexp.Compile(r.Regex)
		if err != nil {
			return compiled{}, fmt.Errorf("invalid regex %q: %v", r.Regex, err)
		}
		c.re = re
		c.prefix, c.need = literals(r.Regex)
	}
	return c, nil
}

// literals returns a literal every match of expr starts with (when expr is
// anchored at the start) and the longest literal a match must contain at the
// top level. Only case-sensitive ASCII is used, so that byte comparisons
// agree with the regex engine on any key bytes. They are necessary
// conditions only: a name failing them cannot match, so checking them first
// never changes a result.
func literals(expr string) (prefix, need string) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return "", ""
	}
	re = re.Simplify()
	for re.Op == syntax.OpCapture && len(re.Sub) == 1 {
		re = re.Sub[0]
	}
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	anchored := false
	for i, s := range subs {
		if i == 0 && s.Op == syntax.OpBeginText {
			anchored = true
			continue
		}
		if s.Op != syntax.OpLiteral || s.Flags&syntax.FoldCase != 0 {
			anchored = false
			continue
		}
		var b strings.Builder
		for _, r := range s.Rune {
			if r >= 0x80 {
				break
			}
			b.WriteRune(r)
		}
		lit := b.String()
		if anchored && i == 1 {
			prefix = lit
		}
		if len(lit) > len(need) {
			need = lit
		}
		anchored = false
	}
	return prefix, need
}

func (c *compiled) matchesName(key string) bool {
	if !strings.HasPrefix(key, c.prefix) {
		return false
	}
	if c.re == nil {
		return true
	}
	return strings.Contains(key, c.need) && c.re.MatchString(key)
}

// GlobToRegexp translates a Redis glob to an anchored RE2 expression matching
// arbitrary bytes (classify.GlobToRegexp).
func GlobToRegexp(g string) (string, error) {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for i := 0; i < len(g); i++ {
		switch ch := g[i]; ch {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '\\':
			if i+1 >= len(g) {
				return "", fmt.Errorf("trailing backslash")
			}
			i++
			b.WriteString(regexp.QuoteMeta(g[i : i+1]))
		case '[':
			j := i + 1
			if j < len(g) && g[j] == '^' {
				j++
			}
			if j < len(g) && g[j] == ']' {
				j++
			}
			for j < len(g) && g[j] != ']' {
				if g[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(g) {
				return "", fmt.Errorf("unclosed [ at offset %d", i)
			}
			class := g[i+1 : j]
			b.WriteByte('[')
			if strings.HasPrefix(class, "^") {
				b.WriteByte('^')
				class = class[1:]
			}
			for k := 0; k < len(class); k++ {
				c := class[k]
				if c == '\\' && k+1 < len(class) {
					k++
					c = class[k]
				}
				if c == '-' && k > 0 && k < len(class)-1 {
					b.WriteByte('-')
					continue
				}
				b.WriteString(regexp.QuoteMeta(string(c)))
			}
			b.WriteByte(']')
			i = j
		default:
			b.WriteString(regexp.QuoteMeta(g[i : i+1]))
		}
	}
	b.WriteString(`$`)
	return b.String(), nil
}

// Classify returns the bucket of key of Redis type typ ("" = unknown: rules
// that name a type do not match). The first matching rule wins; Unknown when
// none does.
func (r *Router) Classify(key, typ string) string {
	for i := range r.rules {
		c := &r.rules[i]
		if c.Type != "" && c.Type != typ {
			continue
		}
		if c.matchesName(key) {
			return c.Bucket
		}
	}
	return Unknown
}

// ClassifyName routes key by its name alone. ok is false when a rule that
// names a type may match key before the first rule that matches whatever the
// type: then the bucket depends on the key's type.
func (r *Router) ClassifyName(key string) (bucket string, ok bool) {
	if !r.needsType {
		return r.Classify(key, ""), true
	}
	for i := range r.rules {
		c := &r.rules[i]
		if !c.matchesName(key) {
			continue
		}
		if c.Type != "" {
			return "", false
		}
		return c.Bucket, true
	}
	return Unknown, true
}

// PossibleBuckets returns, without duplicates and in report order (Unknown
// last), every bucket key could be routed to whatever its type.
func (r *Router) PossibleBuckets(key string) []string {
	if b, ok := r.ClassifyName(key); ok {
		return []string{b}
	}
	seen := map[string]bool{}
	for _, t := range routableTypes {
		seen[r.Classify(key, t)] = true
	}
	var out []string
	for _, b := range append(append([]string{}, Buckets...), Unknown) {
		if seen[b] {
			out = append(out, b)
		}
	}
	return out
}
