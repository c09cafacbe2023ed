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
	anyOf  []string // when set, the name must also contain one of these (from an alternation)
}

func (p prefilter) pass(key string) bool {
	if !strings.HasPrefix(key, p.prefix) || !strings.Contains(key, p.need) {
		return false
	}
	if p.anyOf == nil {
		return true
	}
	for _, s := range p.anyOf {
		if strings.Contains(key, s) {
			return true
		}
	}
	return false
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
	// Deeper: a literal required inside groups, repetitions and every branch
	// of an alternation (e.g. Laravel's "_cache" | "-cache-" prefixes).
	if set := required(re); len(set) == 1 && len(set[0]) > len(p.need) {
		p.need = set[0]
	} else if len(set) > 1 && shortest(set) > len(p.need) {
		p.anyOf = set
	}
	return p
}

// required returns literals one of which every match of re contains (nil
// when there is none): a literal; what a group or a repetition of at least
// one requires; the best requirement among a concatenation's parts; one of
// each alternative's requirements.
func required(re *syntax.Regexp) []string {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase == 0 {
			if lit := asciiPrefix(re.Rune); lit != "" {
				return []string{lit}
			}
		}
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
	case syntax.OpConcat:
		var best []string
		for _, s := range re.Sub {
			if set := required(s); set != nil && (best == nil || shortest(set) > shortest(best)) {
				best = set
			}
		}
		return best
	case syntax.OpAlternate:
		var all []string
		for _, s := range re.Sub {
			set := required(s)
			if set == nil {
				return nil
			}
			all = append(all, set...)
		}
		return all
	}
	return nil
}

func shortest(set []string) int {
	n := -1
	for _, s := range set {
		if n < 0 || len(s) < n {
			n = len(s)
		}
	}
	return n
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
