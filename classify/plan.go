package classify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/redisplit/redisplit/config"
)

// PlanVersion is the version of the plan file format this package writes and
// reads.
const PlanVersion = 1

// Plan is the routing plan: one ordered list of rules, first match wins. It
// is the YAML file a person reviews and commits (written by scan --plan-out):
// the config's rules, the expanded preset rules, then accepted proposals
// (Source "proposal"). migrate, verify and rollback route with it alone.
type Plan struct {
	Version int    `yaml:"version"`
	Rules   []Rule `yaml:"rules"`
}

// ruleKeys are the keys a rule may have in a plan file, in the order WritePlan
// writes them.
var ruleKeys = []string{"name", "glob", "prefix", "regex", "type", "bucket", "from"}

// LoadPlan reads and validates the plan file at path. Every rule is compiled;
// an invalid one is a *RuleError naming the file, the line and the rule's
// position ("plan.yaml:12: rules[3]: invalid regex ..."). An unreadable or
// malformed file is a *config.Error. Comments above a rule are kept in its
// Comment, so that a plan rewritten with WritePlan keeps its evidence.
func LoadPlan(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, config.Errorf("plan", "plan file %s does not exist (write one with: redisplit scan --plan-out %s)", path, path)
		}
		return nil, config.Errorf("plan", "cannot read plan file %s: %v", path, err)
	}
	return parsePlan(path, data)
}

// ParsePlan parses a plan file's contents; name stands for the file in
// errors ("name:12: rules[3]: ..."). LoadPlan is ParsePlan of a file.
func ParsePlan(name string, data []byte) (*Plan, error) { return parsePlan(name, data) }

func parsePlan(path string, data []byte) (*Plan, error) {
	bad := func(line int, format string, args ...any) error {
		where := path
		if line > 0 {
			where += ":" + strconv.Itoa(line)
		}
		return config.Errorf("plan", "%s: %s", where, fmt.Sprintf(format, args...))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, bad(0, "malformed YAML: %v", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, bad(0, "empty plan file: expected version: %d and rules:", PlanVersion)
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, bad(top.Line, "expected a mapping with version: and rules:")
	}
	p := &Plan{}
	var rulesNode *yaml.Node
	seenVersion := false
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		switch k.Value {
		case "version":
			if err := v.Decode(&p.Version); err != nil {
				return nil, bad(v.Line, "version: %v", err)
			}
			seenVersion = true
		case "rules":
			rulesNode = v
		default:
			return nil, bad(k.Line, "unknown key %q (a plan has version: and rules:)", k.Value)
		}
	}
	if !seenVersion {
		return nil, bad(top.Line, "missing version: (this redisplit reads version %d)", PlanVersion)
	}
	if p.Version != PlanVersion {
		return nil, bad(top.Line, "plan version %d is not supported (this redisplit reads version %d)", p.Version, PlanVersion)
	}
	if rulesNode == nil || rulesNode.Kind == yaml.ScalarNode && rulesNode.Tag == "!!null" {
		return nil, bad(top.Line, "missing rules: (a plan without rules routes nothing)")
	}
	if rulesNode.Kind != yaml.SequenceNode {
		return nil, bad(rulesNode.Line, "rules: must be a list")
	}
	allowed := map[string]bool{}
	for _, k := range ruleKeys {
		allowed[k] = true
	}
	for i, rn := range rulesNode.Content {
		src := fmt.Sprintf("%s:%d: rules", path, rn.Line)
		ruleErr := func(format string, args ...any) error {
			return &RuleError{Source: src, Position: i + 1, Msg: fmt.Sprintf(format, args...)}
		}
		if rn.Kind != yaml.MappingNode {
			return nil, ruleErr("a rule must be a mapping like {glob: \"queue:*\", bucket: queue}")
		}
		for j := 0; j+1 < len(rn.Content); j += 2 {
			if k := rn.Content[j].Value; !allowed[k] {
				return nil, ruleErr("unknown field %q (fields: %s)", k, strings.Join(ruleKeys, ", "))
			}
		}
		var r Rule
		if err := rn.Decode(&r); err != nil {
			return nil, ruleErr("%v", err)
		}
		if _, err := compile(r, src, i+1); err != nil {
			return nil, err
		}
		r.Comment = uncomment(rn.HeadComment)
		p.Rules = append(p.Rules, r)
	}
	return p, nil
}

// uncomment turns a YAML head comment back into plain text.
func uncomment(c string) string {
	if c == "" {
		return ""
	}
	lines := strings.Split(c, "\n")
	for i, l := range lines {
		l = strings.TrimPrefix(strings.TrimSpace(l), "#")
		lines[i] = strings.TrimPrefix(l, " ")
	}
	return strings.Join(lines, "\n")
}

// comment turns plain text into YAML comment lines.
func comment(s string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l == "" {
			lines[i] = "#"
		} else {
			lines[i] = "# " + l
		}
	}
	return strings.Join(lines, "\n")
}

// WritePlan writes p as YAML: header as comment lines at the top, then
// version and the rules, one flow mapping per line, each preceded by its
// Comment as comment lines. The output is a pure function of its input (same
// plan and header → same bytes) and LoadPlan reads it back to an equal plan.
// A rule holding text that is not valid UTF-8 is an error naming it (YAML is
// text): nothing is written then.
func WritePlan(w io.Writer, p *Plan, header string) error {
	str := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }
	if !utf8.ValidString(header) {
		return fmt.Errorf("plan header %q is not valid UTF-8 text", header)
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode}
	for i, r := range p.Rules {
		for _, f := range [][2]string{{"name", r.Name}, {"glob", r.Glob}, {"prefix", r.Prefix}, {"regex", r.Regex},
			{"from", r.Source}, {"comment", r.Comment}} {
			if !utf8.ValidString(f[1]) {
				return fmt.Errorf("plan rules[%d]: %s %q is not valid UTF-8 text, which a plan file cannot hold; "+
					"match such names with a regex on their text parts", i+1, f[0], f[1])
			}
		}
		m := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle, HeadComment: comment(r.Comment)}
		for _, kv := range [][2]string{{"name", r.Name}, {"glob", r.Glob}, {"prefix", r.Prefix}, {"regex", r.Regex},
			{"type", r.Type}, {"bucket", string(r.Bucket)}, {"from", r.Source}} {
			if kv[1] == "" && kv[0] != "bucket" {
				continue
			}
			m.Content = append(m.Content, str(kv[0]), str(kv[1]))
		}
		seq.Content = append(seq.Content, m)
	}
	version := p.Version
	if version == 0 {
		version = PlanVersion
	}
	top := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		str("version"), {Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(version)},
		str("rules"), seq,
	}}
	doc := &yaml.Node{Kind: yaml.DocumentNode, HeadComment: comment(header), Content: []*yaml.Node{top}}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encoding plan: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encoding plan: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// Hash returns the hex SHA-256 of the plan's routing content: its version
// and, in order, each rule's matcher, type and bucket. Names, sources and
// comments do not change it; any change that can change where a key goes
// (a matcher, a type, a bucket, the order) does. The migration state records
// it so that a later command with a different plan refuses.
func (p *Plan) Hash() string {
	type canon struct {
		Glob, Prefix, Regex, Type, Bucket string
	}
	c := struct {
		Version int
		Rules   []canon
	}{Version: p.Version, Rules: make([]canon, 0, len(p.Rules))}
	if c.Version == 0 {
		c.Version = PlanVersion
	}
	for _, r := range p.Rules {
		c.Rules = append(c.Rules, canon{r.Glob, r.Prefix, r.Regex, r.Type, string(r.Bucket)})
	}
	b, _ := json.Marshal(c) // cannot fail: strings and ints only
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Classifier compiles the plan's rules in order. A rule without Source is
// named "plan rules[i]".
func (p *Plan) Classifier() (*Classifier, error) {
	rules := make([]Rule, len(p.Rules))
	copy(rules, p.Rules)
	for i := range rules {
		if rules[i].Source == "" {
			rules[i].Source = fmt.Sprintf("plan rules[%d]", i+1)
		}
	}
	return New(rules)
}
