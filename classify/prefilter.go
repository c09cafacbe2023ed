package classify

import (
	"regexp/syntax"
	"strings"
)

// prefilter is a cheap necessary condition for a regex (or glob) rule to
// match: the name must start with prefix (when the expression is anchored
// and begins with a literal) and contain need (the longest literal the
// expression requires at its top level). It lets Classify skip most rules
// with strings.HasPrefix/Contains instead of running the regex engine; it
// never changes a result, because a name failing it cannot match.
type prefilter struct {
	prefix string
	need   string
}

func (p prefilter) pass(key string) bool {
	return strings.HasPrefix(key, p.prefix) && strings.Contains(key, p.need)
}

// newPrefilter analyses expr. Only case-sensitive ASCII literals are used, so
// that byte comparisons agree with the regex engine on any key bytes.
func newPrefilter(expr string) prefilter {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return prefilter{}
	}
	re = re.Simplify()
	for re.Op == syntax.OpCapture && len(re.Sub) == 1 {
		re = re.Sub[0]
	}
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	var p prefilter
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
		lit := asciiPrefix(s.Rune)
		if anchored && i == 1 {
			p.prefix = lit
		}
		if len(lit) > len(p.need) {
			p.need = lit
		}
		if len(lit) < len(s.Rune) {
			anchored = false
		}
	}
	return p
}

func asciiPrefix(rs []rune) string {
	var b strings.Builder
	for _, r := range rs {
		if r >= 0x80 {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
