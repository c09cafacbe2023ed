package classify

// ruleIndex maps a key's Redis type and the first byte of its name to the
// rules that can match it, in evaluation order. A rule that names a type is
// listed only under that type; a rule with a literal prefix (a prefix rule,
// or a glob/regex anchored on a literal) only under the prefix's first byte.
// Classify walks one list instead of every rule; first match wins exactly as
// over the full list, because each list keeps the rules' order and omits only
// rules that cannot match.
type ruleIndex struct {
	byType map[string]*firstByteLists // "" = type unknown: untyped rules only
	any    *firstByteLists            // every rule, typed or not (ClassifyName)
}

type firstByteLists struct {
	byFirst [256][]int32
	empty   []int32 // the empty name: rules without a literal prefix
}

// literalPrefix returns what every name c matches starts with.
func (c *compiled) literalPrefix() string {
	if c.re == nil {
		return c.Prefix
	}
	return c.pf.prefix
}

func newRuleIndex(rules []*compiled) *ruleIndex {
	ix := &ruleIndex{byType: map[string]*firstByteLists{}}
	const anyType = "*"
	for _, typ := range []string{"", "string", "hash", "list", "set", "zset", "stream", anyType} {
		l := &firstByteLists{}
		for i, r := range rules {
			if r.Type != "" && r.Type != typ && typ != anyType {
				continue
			}
			p := r.literalPrefix()
			if p == "" {
				l.empty = append(l.empty, int32(i))
				for b := range l.byFirst {
					l.byFirst[b] = append(l.byFirst[b], int32(i))
				}
				continue
			}
			l.byFirst[p[0]] = append(l.byFirst[p[0]], int32(i))
		}
		if typ == anyType {
			ix.any = l
		} else {
			ix.byType[typ] = l
		}
	}
	return ix
}

// candidates returns the rules to try for key of type typ, or nil when typ
// is not a Redis type this package knows (the caller then tries every rule).
func (ix *ruleIndex) candidates(key, typ string) ([]int32, bool) {
	l, ok := ix.byType[typ]
	if !ok {
		return nil, false
	}
	return l.of(key), true
}

// anyCandidates returns every rule, typed or not, that may match key's name.
func (ix *ruleIndex) anyCandidates(key string) []int32 { return ix.any.of(key) }

func (l *firstByteLists) of(key string) []int32 {
	if key == "" {
		return l.empty
	}
	return l.byFirst[key[0]]
}
