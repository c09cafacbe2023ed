package scan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/redisplit/redisplit/classify"
)

// Proposals a person can review in minutes: patterns of one family that
// differ only in one literal (a user name, a tenant, a product slug the
// normaliser cannot know is variable) are merged into one proposal, and no
// cache proposal may cover a pattern with durable evidence.
//
// Guarantees:
//   - a literal that is a signal word (session, queue, rl, cache, lock...) is
//     never merged away, nor a pattern's last literal word;
//   - patterns merge only when their own proposals agree (the same bucket,
//     or no bucket), never a cache proposal with a pattern whose evidence
//     fits session, queue or ratelimit; the merged proposal is re-proposed on
//     the pooled statistics and kept only if it agrees too;
//   - a merged proposal matches with an anchored regex in which the merged
//     literal is one segment ([^:]+), not a glob that would cross ':';
//   - an accepted cache proposal whose matcher also covers a sample of a
//     pattern with durable evidence, or of one nothing decided (not routed
//     by a more specific accepted proposal), is demoted to a comment, with
//     the reason.

// minMerge is the number of similar patterns from which they are merged.
const minMerge = 3

// proposeUnknown proposes a bucket for every unknown pattern, merges similar
// patterns and guards cache proposals. It returns the patterns (merged ones
// replacing their members) and their proposals, in step, most keys first.
func proposeUnknown(unknown []*patternAgg) ([]*patternAgg, []Proposal) {
	props := make([]Proposal, len(unknown))
	for i, p := range unknown {
		props[i] = Propose(p.Pattern, &p.Stats)
	}
	pats, props := mergeSimilar(unknown, props)
	guardCache(pats, props)
	idx := make([]int, len(pats))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		pa, pb := pats[idx[a]], pats[idx[b]]
		if pa.Stats.Keys != pb.Stats.Keys {
			return pa.Stats.Keys > pb.Stats.Keys
		}
		return pa.Text < pb.Text
	})
	outP := make([]*patternAgg, len(idx))
	outR := make([]Proposal, len(idx))
	for i, j := range idx {
		outP[i], outR[i] = pats[j], props[j]
	}
	return outP, outR
}

// splitTokens splits a pattern text (or its glob) at the separators,
// keeping them as tokens.
func splitTokens(s string) []string {
	var out []string
	from := 0
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(":./|_-", s[i]) >= 0 {
			if i > from {
				out = append(out, s[from:i])
			}
			out = append(out, s[i:i+1])
			from = i + 1
		}
	}
	if from < len(s) {
		out = append(out, s[from:])
	}
	return out
}

// mergeable: a plain literal token that is no signal word.
func mergeable(tok string) bool {
	if len(tok) == 0 || len(tok) > 64 || strings.ContainsAny(tok, "{}*\\?[]") || strings.IndexByte(":./|_-", tok[0]) >= 0 {
		return false
	}
	ws, _ := patternWords(tok)
	for _, w := range ws {
		if signalWord(w) {
			return false
		}
	}
	return true
}

// literalWords counts the tokens holding a literal letter.
func literalWords(toks []string) int {
	n := 0
	for _, t := range toks {
		ws, _ := patternWords(t)
		for _, w := range ws {
			if strings.IndexFunc(w, func(r rune) bool { return r >= 'a' && r <= 'z' }) >= 0 {
				n++
				break
			}
		}
	}
	return n
}

func mergeSimilar(pats []*patternAgg, props []Proposal) ([]*patternAgg, []Proposal) {
	alive := make([]bool, len(pats))
	for i := range alive {
		alive[i] = true
	}
	for pass := 0; pass < 2; pass++ {
		maxTok := 0
		toks := make([][]string, len(pats))
		for i, p := range pats {
			toks[i] = splitTokens(p.Text)
			maxTok = max(maxTok, len(toks[i]))
		}
		for pos := 0; pos < maxTok; pos++ {
			groups := map[string][]int{}
			var order []string
			for i := range pats {
				t := toks[i]
				if !alive[i] || pos >= len(t) || !mergeable(t[pos]) || len(splitTokens(pats[i].Glob)) != len(t) {
					continue
				}
				k := fmt.Sprintf("%d\x00%s\x00%s", len(t), strings.Join(t[:pos], ""), strings.Join(t[pos+1:], ""))
				if groups[k] == nil {
					order = append(order, k)
				}
				groups[k] = append(groups[k], i)
			}
			for _, k := range order {
				g := groups[k]
				if len(g) < minMerge {
					continue
				}
				merged, prop, ok := mergeGroup(pats, props, toks, g, pos)
				if !ok {
					continue
				}
				for _, i := range g {
					alive[i] = false
				}
				pats = append(pats, merged)
				props = append(props, prop)
				alive = append(alive, true)
				toks = append(toks, splitTokens(merged.Text))
			}
		}
	}
	var outP []*patternAgg
	var outR []Proposal
	for i := range pats {
		if alive[i] {
			outP, outR = append(outP, pats[i]), append(outR, props[i])
		}
	}
	return outP, outR
}

// mergeGroup merges the patterns g, which differ only in the literal at
// token pos, if their proposals agree.
func mergeGroup(pats []*patternAgg, props []Proposal, toks [][]string, g []int, pos int) (*patternAgg, Proposal, bool) {
	bucket := classify.Unknown
	durable := false
	members := 0
	for _, i := range g {
		p := props[i]
		durable = durable || p.durable
		members += max(p.Merged, 1)
		if p.Bucket == classify.Unknown {
			continue
		}
		if bucket != classify.Unknown && bucket != p.Bucket {
			return nil, Proposal{}, false
		}
		bucket = p.Bucket
	}
	if bucket == classify.Cache && durable {
		return nil, Proposal{}, false
	}
	t := append([]string{}, toks[g[0]]...)
	t[pos] = PhVar
	if literalWords(t) == 0 {
		return nil, Proposal{}, false
	}
	gt := splitTokens(pats[g[0]].Glob)
	gt[pos] = "*"
	m := &patternAgg{Pattern: Pattern{Text: strings.Join(t, ""), Glob: strings.Join(gt, "")}, Bucket: classify.Unknown}
	for round := 0; len(m.Samples) < maxSamples && round < maxSamples; round++ {
		for _, i := range g {
			if round < len(pats[i].Samples) && len(m.Samples) < maxSamples {
				m.Samples = append(m.Samples, pats[i].Samples[round])
			}
		}
	}
	for _, i := range g {
		m.Stats.merge(&pats[i].Stats)
	}
	prop := Propose(m.Pattern, &m.Stats)
	if bucket != classify.Unknown && prop.Bucket != bucket {
		return nil, Proposal{}, false
	}
	prop.Regex = mergedRegex(m.Text)
	if prop.Fix != "" {
		prop.Fix = fixLine(prop, bucketOrAny(prop))
	}
	prop.Merged = members
	prop.durable = prop.durable || durable
	prop.Evidence = append(prop.Evidence, fmt.Sprintf("merged from %d similar patterns (e.g. %s)", members, pats[g[0]].Text))
	return m, prop, true
}

func bucketOrAny(p Proposal) string {
	if p.Bucket != classify.Unknown {
		return string(p.Bucket)
	}
	return "cache|session|queue|ratelimit"
}

// mergedRegex is the anchored regex of a merged pattern: literals quoted,
// placeholders their classes, {var} one segment.
func mergedRegex(text string) string {
	re, _ := patternRegex(text, true)
	return re
}

// guardCache demotes accepted cache proposals whose matcher covers a sample
// of a pattern with durable evidence, or of a pattern nothing decided, that
// no more specific accepted proposal routes first.
func guardCache(pats []*patternAgg, props []Proposal) {
	for round := 0; round < 4; round++ {
		rules := proposalRules(props, true)
		if len(rules) == 0 {
			return
		}
		cl, err := classify.New(rules)
		if err != nil {
			return
		}
		changed := false
		for i, p := range pats {
			// patterns with durable evidence, and those nothing decided
			// (no proposal, or one below acceptance for a durable bucket):
			// cache only on positive evidence, and they have none
			undecided := !props[i].Accepted && props[i].Bucket != classify.Cache
			if !props[i].durable && !undecided {
				continue
			}
			for _, k := range p.Samples {
				m := cl.Classify(k, "")
				if m.Rule == nil || m.Bucket != classify.Cache {
					continue
				}
				for j := range props {
					if j != i && props[j].Accepted && props[j].Bucket == classify.Cache && props[j].Pattern == m.Rule.Name {
						props[j].Accepted = false
						why := "whose evidence fits " + durableOf(props[i])
						if !props[i].durable {
							why = "which no evidence decides"
						}
						props[j].Reason = fmt.Sprintf("its matcher also covers pattern %s, %s: a cache rule there would let eviction delete those keys", p.Text, why)
						props[j].Fix = fixLine(props[j], "cache") + " (after checking it cannot match " + p.Text + ")"
						props[j].Evidence = append(props[j].Evidence, "not accepted: "+props[j].Reason)
						changed = true
					}
				}
			}
		}
		if !changed {
			return
		}
	}
}

func durableOf(p Proposal) string {
	if p.Bucket != classify.Unknown && p.Bucket != classify.Cache {
		return string(p.Bucket)
	}
	return "session, queue or ratelimit"
}

// maxGroup bounds the patterns one grouped proposal lists.
const maxGroup = 24

// groupAlike folds proposals that a reviewer decides together into one:
// the same family (literal first segment, or none), the same bucket and
// acceptance, and the same deciding evidence (or, for unknown ones, the same
// reason); accepted proposals of one family and one bucket are one item
// whatever decided each (one application's or framework's keys, reviewed
// together; every member's evidence is listed), and so are accepted
// proposals decided by the same value signature, whatever their families
// (one library's keys under several prefixes). Bare ids of every length
// ({id26}, {id32}) are one family; unknown patterns of one family group by
// their coarse reason (coarseReason). The grouped proposal's matcher is the alternation of its members'
// anchored regexes, so it routes exactly the members' shapes, nothing
// broader. It returns the patterns and proposals in step, most keys first.
func groupAlike(pats []*patternAgg, props []Proposal) ([]*patternAgg, []Proposal) {
	type key struct {
		fam, decider, reason string
		bucket               classify.Bucket
		accepted             bool
	}
	groups := map[key][]int{}
	var order []key
	for i, p := range props {
		fam := family(p.Pattern)
		if ph, _, ok := bareLen(p.Pattern); ok {
			fam = ph // bare ids of every length: one family for review ({id26} | {id32})
		}
		k := key{fam, stripDigits(p.DecidedBy), p.Reason, p.Bucket, p.Accepted}
		switch {
		case p.Accepted && strings.HasPrefix(p.DecidedBy, "values:"):
			// decided by one value signature (a library's envelope, a
			// session payload): that library's keys, whatever their
			// prefixes, are one review item
			k.fam = "\x00values"
		case p.Bucket == classify.Unknown || p.Accepted && k.fam != "":
			k.decider = ""
		}
		if p.Bucket == classify.Unknown {
			k.reason = coarseReason(p.Reason) // each member's own reason stays in the evidence
		}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	var outP []*patternAgg
	var outR []Proposal
	for _, k := range order {
		g := groups[k]
		for len(g) > 0 {
			n := min(len(g), maxGroup)
			part := g[:n]
			g = g[n:]
			if len(part) == 1 {
				outP, outR = append(outP, pats[part[0]]), append(outR, props[part[0]])
				continue
			}
			outP, outR = appendGroup(outP, outR, pats, props, part)
		}
	}
	idx := make([]int, len(outP))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return outP[idx[a]].Stats.Keys > outP[idx[b]].Stats.Keys })
	p2, r2 := make([]*patternAgg, len(idx)), make([]Proposal, len(idx))
	for i, j := range idx {
		p2[i], r2[i] = outP[j], outR[j]
	}
	return p2, r2
}

func appendGroup(outP []*patternAgg, outR []Proposal, pats []*patternAgg, props []Proposal, part []int) ([]*patternAgg, []Proposal) {
	sort.SliceStable(part, func(a, b int) bool { return pats[part[a]].Stats.Keys > pats[part[b]].Stats.Keys })
	var texts, globs, res []string
	m := &patternAgg{Bucket: classify.Unknown}
	members, minConf := 0, 1.0
	var ev []string
	for _, i := range part {
		p := pats[i]
		texts = append(texts, p.Text)
		globs = append(globs, p.Glob)
		res = append(res, strings.TrimSuffix(strings.TrimPrefix(mergedRegex(p.Text), "^"), "$"))
		m.Stats.merge(&p.Stats)
		for _, s := range p.Samples {
			if len(m.Samples) < maxSamples {
				m.Samples = append(m.Samples, s)
			}
		}
		members += max(props[i].Merged, 1)
		minConf = min(minConf, props[i].Confidence)
		for _, e := range props[i].Evidence {
			if len(ev) < 12 && !containsStr(ev, e) {
				ev = append(ev, e)
			}
		}
	}
	m.Text = strings.Join(texts, " | ")
	m.Glob = strings.Join(globs, " | ")
	first := props[part[0]]
	g := first
	g.Pattern, g.Glob = m.Text, m.Glob
	g.Regex = "^(?:" + strings.Join(res, "|") + ")$"
	g.Confidence = minConf
	g.Keys, g.Bytes, g.Merged = m.Stats.Keys, m.Stats.EstimatedBytes(), members
	g.Evidence = append(ev, fmt.Sprintf("%d patterns with the same deciding evidence grouped into one rule", len(part)))
	for _, i := range part {
		g.durable = g.durable || props[i].durable
		g.cacheEv = g.cacheEv || props[i].cacheEv
	}
	for _, i := range part {
		if props[i].Reason != first.Reason {
			g.Reason = coarseReason(first.Reason) + " (each pattern's own reason in the evidence)"
			for _, j := range part {
				if r := props[j].Reason; r != "" && !containsStr(g.Evidence, pats[j].Text+": "+r) {
					g.Evidence = append(g.Evidence, pats[j].Text+": "+r)
				}
			}
			break
		}
	}
	if g.Fix != "" {
		g.Fix = fixLine(g, bucketOrAny(g))
	}
	return append(outP, m), append(outR, g)
}

// coarseReason is a reason without its particulars: "no convincing
// evidence", "evidence for cache below confidence 0.70", "conflicting
// evidence for cache, session"; the unknown patterns of one family that
// share it are one review item.
func coarseReason(r string) string {
	if i := strings.IndexByte(r, ':'); i > 0 {
		return r[:i]
	}
	return r
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func stripDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, s)
}
