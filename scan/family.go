package scan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/redisplit/redisplit/classify"
)

// Key families (key-patterns.md, "pattern co-occurrence at the prefix
// level"; DESIGN.md §8: framework families are multi-key and always one
// bucket): patterns that share a literal first segment (P:) are one
// application's or one framework's. When at least familyMin patterns of a
// family are routed (by rules or accepted proposals) and all to one durable
// bucket B, the family's patterns without an accepted proposal go to B too,
// provided their own evidence fits no cache (evidence for another durable
// bucket below acceptance gives way: both buckets keep their keys, and one
// framework's keys are one bucket; the evidence says what gave way).
//
// Guarantees: a family never proposes cache; a family with patterns routed
// to two buckets proposes nothing; it never overrides a rule or an accepted
// proposal.

const (
	familyMin        = 2
	familyConfidence = 0.75
)

// family returns the literal first segment of a pattern text with its ':',
// or "".
func family(text string) string {
	i := strings.IndexByte(text, ':')
	if i < 2 || strings.ContainsAny(text[:i], "{}*") {
		return ""
	}
	return text[:i+1]
}

// familyProposals revises the proposals of unknown patterns (props, by
// pattern text) with their families; routed gives every pattern's bucket by
// the rules (Unknown when none matched).
func familyProposals(props map[string]*Proposal, routed map[string]classify.Bucket) {
	type fam struct {
		buckets map[classify.Bucket][]string // routed members by bucket
		open    []string                     // members without an accepted proposal
	}
	fams := map[string]*fam{}
	get := func(f string) *fam {
		if fams[f] == nil {
			fams[f] = &fam{buckets: map[classify.Bucket][]string{}}
		}
		return fams[f]
	}
	for text, b := range routed {
		f := family(text)
		if f == "" {
			continue
		}
		if b != classify.Unknown {
			get(f).buckets[b] = append(get(f).buckets[b], text)
			continue
		}
		p := props[text]
		if p == nil {
			continue
		}
		if p.Accepted {
			get(f).buckets[p.Bucket] = append(get(f).buckets[p.Bucket], text)
		} else {
			get(f).open = append(get(f).open, text)
		}
	}
	for name, f := range fams {
		if len(f.buckets) != 1 || len(f.open) == 0 {
			continue
		}
		var b classify.Bucket
		var members []string
		for b, members = range f.buckets {
		}
		if b == classify.Cache || len(members) < familyMin {
			continue
		}
		sort.Strings(members)
		eg := strings.Join(members[:min(3, len(members))], ", ")
		for _, text := range f.open {
			p := props[text]
			if p.cacheEv || p.Bucket == classify.Cache {
				continue
			}
			was := ""
			if p.Bucket != classify.Unknown && p.Bucket != b {
				was = fmt.Sprintf(" (over weaker evidence for %s, %.2f)", p.Bucket, p.Confidence)
			}
			p.Bucket, p.Confidence, p.Accepted = b, familyConfidence, true
			p.DecidedBy = fmt.Sprintf("family %s: %d other patterns under %s go to %s and none elsewhere (%s)", name, len(members), name, b, eg)
			p.Evidence = append([]string{p.DecidedBy + ": one application's or framework's keys belong to one bucket" + was}, p.Evidence...)
			p.Reason, p.Fix = "", ""
			p.durable = true
		}
	}
}
