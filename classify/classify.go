// Package classify routes a key to its workload bucket with ordered rules:
// the user's rules first, then the built-in framework presets; the first
// matching rule wins. Routing is a pure function of the key name (and, for
// rules that name one, its Redis type): it never depends on TTL or value, so
// a key cannot change bucket while the application writes it (DESIGN.md §3).
package classify

import (
	"fmt"
	"regexp"
	"strings"
)

// Bucket is a workload bucket.
type Bucket string

// The buckets. Unknown is the result when no rule matches.
const (
	Cache     Bucket = "cache"
	Session   Bucket = "session"
	Queue     Bucket = "queue"
	RateLimit Bucket = "ratelimit"
	Unknown   Bucket = "unknown"
)

// Buckets lists the routable buckets in report order.
var Buckets = []Bucket{Cache, Session, Queue, RateLimit}

// ParseBucket validates a bucket name.
func ParseBucket(s string) (Bucket, error) {
	for _, b := range Buckets {
		if string(b) == s {
			return b, nil
		}
	}
	return "", fmt.Errorf("bucket %q is not one of cache, session, queue, ratelimit", s)
}

// Redis types a rule may require.
var redisTypes = map[string]bool{"string": true, "hash": true, "list": true, "set": true, "zset": true, "stream": true}

// Rule matches key names and names the bucket they go to. Exactly one of
// Glob (Redis glob syntax: * ? [abc] [^a] [a-z] \x), Prefix or Regex (RE2,
// matched against the whole name unless anchored otherwise) must be set.
// Type, when set, restricts the rule to keys of that Redis type.
type Rule struct {
	Name   string `yaml:"name,omitempty"`
	Glob   string `yaml:"glob,omitempty"`
	Prefix string `yaml:"prefix,omitempty"`
	Regex  string `yaml:"regex,omitempty"`
	Type   string `yaml:"type,omitempty"`
	Bucket Bucket `yaml:"bucket"`
	// Source says where the rule comes from: "rules[3]" (config), "preset sidekiq",
	// "plan rules[7]", "proposal". Set by whoever builds the rule list.
	Source string `yaml:"from,omitempty"`
	// Comment is evidence for a human reviewer (why the rule exists, what it
	// matched); WritePlan writes it as a YAML comment above the rule. It never
	// affects routing or the plan hash.
	Comment string `yaml:"-"`
}

// String describes the rule for humans: its source, matcher and type.
func (r Rule) String() string {
	var m string
	switch {
	case r.Glob != "":
		m = "glob " + r.Glob
	case r.Prefix != "":
		m = "prefix " + r.Prefix
	default:
		m = "regex " + r.Regex
	}
	if r.Type != "" {
		m += " type " + r.Type
	}
	name := r.Source
	if r.Name != "" {
		if name != "" {
			name += " "
		}
		name += "(" + r.Name + ")"
	}
	if name == "" {
		return m
	}
	return name + ": " + m
}

// RuleError is an invalid rule; Position is 1-based within its list.
type RuleError struct {
	Source   string // "rules", "plan", "preset sidekiq"
	Position int
	Msg      string
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("%s[%d]: %s", e.Source, e.Position, e.Msg)
}

type compiled struct {
	Rule
	re *regexp.Regexp // nil for prefix rules
	pf prefilter      // necessary condition checked before re
}

func (c *compiled) matches(key, typ string) bool {
	if c.Type != "" && typ != "" && c.Type != typ {
		return false
	}
	if c.Type != "" && typ == "" {
		return false
	}
	return c.matchesName(key)
}

// matchesName reports whether key's name matches, whatever the type.
func (c *compiled) matchesName(key string) bool {
	if c.re == nil {
		return strings.HasPrefix(key, c.Prefix)
	}
	return c.pf.pass(key) && c.re.MatchString(key)
}

// Compile validates r; source and pos name it in errors.
func compile(r Rule, source string, pos int) (*compiled, error) {
	bad := func(format string, args ...any) error {
		return &RuleError{Source: source, Position: pos, Msg: fmt.Sprintf(format, args...)}
	}
	n := 0
	for _, s := range []string{r.Glob, r.Prefix, r.Regex} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, bad("exactly one of glob, prefix or regex must be set (found %d)", n)
	}
	if _, err := ParseBucket(string(r.Bucket)); err != nil {
		return nil, bad("%v", err)
	}
	if r.Type != "" && !redisTypes[r.Type] {
		return nil, bad("type %q is not one of string, hash, list, set, zset, stream", r.Type)
	}
	c := &compiled{Rule: r}
	var err error
	switch {
	case r.Glob != "":
		var expr string
		if expr, err = GlobToRegexp(r.Glob); err == nil {
			c.re, err = regexp.Compile(expr)
			c.pf = newPrefilter(expr)
		}
		if err != nil {
			return nil, bad("invalid glob %q: %v", r.Glob, err)
		}
	case r.Regex != "":
		if c.re, err = regexp.Compile(r.Regex); err != nil {
			return nil, bad("invalid regex %q: %v", r.Regex, err)
		}
		c.pf = newPrefilter(r.Regex)
	}
	return c, nil
}

// GlobToRegexp translates a Redis glob (the syntax of SCAN MATCH and KEYS) to
// an anchored RE2 expression matching arbitrary bytes.
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

// Match is the result of classifying one key.
type Match struct {
	Bucket Bucket
	Rule   *Rule // nil when no rule matched (Bucket is Unknown)
}

// Classifier routes keys. It is immutable and safe for concurrent use.
type Classifier struct {
	rules     []*compiled
	needsType bool
	ix        *ruleIndex
}

// New compiles rules in order. Each rule's Source names it in errors and in
// matches; a rule without Source is named "rules[i]".
func New(rules []Rule) (*Classifier, error) {
	c := &Classifier{}
	for i, r := range rules {
		src := r.Source
		if src == "" {
			src = "rules"
			r.Source = fmt.Sprintf("rules[%d]", i+1)
		}
		cr, err := compile(r, src, i+1)
		if err != nil {
			return nil, err
		}
		if cr.Type != "" {
			c.needsType = true
		}
		c.rules = append(c.rules, cr)
	}
	c.ix = newRuleIndex(c.rules)
	return c, nil
}

// NeedsType reports whether some rule depends on the key's Redis type, in
// which case Classify must be given it.
func (c *Classifier) NeedsType() bool { return c.needsType }

// Rules returns the rules in evaluation order.
func (c *Classifier) Rules() []Rule {
	out := make([]Rule, len(c.rules))
	for i, r := range c.rules {
		out[i] = r.Rule
	}
	return out
}

// Classify returns the bucket of key; typ is its Redis type ("string",
// "hash", ...) or "" when unknown, in which case rules that require a type do
// not match. The first matching rule wins.
func (c *Classifier) Classify(key, typ string) Match {
	cands, ok := c.ix.candidates(key, typ)
	if !ok { // a type no rule can name: only untyped rules can match
		for _, r := range c.rules {
			if r.matches(key, typ) {
				return Match{Bucket: r.Bucket, Rule: &r.Rule}
			}
		}
		return Match{Bucket: Unknown}
	}
	for _, i := range cands {
		if r := c.rules[i]; r.matches(key, typ) {
			return Match{Bucket: r.Bucket, Rule: &r.Rule}
		}
	}
	return Match{Bucket: Unknown}
}

// ClassifyName routes key by its name alone when its type cannot change the
// outcome, and then returns the same Match as Classify(key, t) for every
// type t. ok is false when a rule that names a type may match key before
// the first rule that matches the name whatever the type: only then does
// the caller need the key's TYPE (one command on legacy saved per key
// otherwise).
func (c *Classifier) ClassifyName(key string) (m Match, ok bool) {
	if !c.needsType {
		return c.Classify(key, ""), true
	}
	for _, i := range c.ix.anyCandidates(key) {
		r := c.rules[i]
		if !r.matchesName(key) {
			continue
		}
		if r.Type != "" {
			return Match{}, false
		}
		return Match{Bucket: r.Bucket, Rule: &r.Rule}, true
	}
	return Match{Bucket: Unknown}, true
}

// MatchAll returns every rule that matches key, in evaluation order: the
// first is the one Classify applies, the others are shadowed by it. It
// explains routing (redisplit classify shows what a user rule overrides);
// it is not for the hot path.
func (c *Classifier) MatchAll(key, typ string) []Match {
	var out []Match
	for _, r := range c.rules {
		if r.matches(key, typ) {
			out = append(out, Match{Bucket: r.Bucket, Rule: &r.Rule})
		}
	}
	return out
}

// routableTypes are the types rules may name, and "" (type unknown).
var routableTypes = []string{"", "string", "hash", "list", "set", "zset", "stream"}

// PossibleBuckets returns, without duplicates and in report order (Unknown
// last), every bucket key could be routed to whatever its type. A name whose
// rules do not depend on the type has exactly one. Use it where the type is
// not known, e.g. to route the deletion or expiry of a key that no longer
// exists: the key may only be in the targets of these buckets.
func (c *Classifier) PossibleBuckets(key string) []Bucket {
	if m, ok := c.ClassifyName(key); ok {
		return []Bucket{m.Bucket}
	}
	seen := map[Bucket]bool{}
	for _, t := range routableTypes {
		seen[c.Classify(key, t).Bucket] = true
		if !c.needsType {
			break
		}
	}
	var out []Bucket
	for _, b := range append(append([]Bucket{}, Buckets...), Unknown) {
		if seen[b] {
			out = append(out, b)
		}
	}
	return out
}
