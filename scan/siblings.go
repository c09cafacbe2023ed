package scan

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/redisplit/redisplit/classify"
)

// Sibling structure (key-patterns.md, "signals"): what the patterns next to
// a pattern say about it, used after the scan, when every pattern is known.
//
//   - A rate limiter keeps a window timer next to its counter: a pattern
//     P:timer next to P (Laravel's RateLimiter; custom limiter names have
//     nothing else to tell them from cache entries). Both are rate limits.
//   - A lock belongs with its owner: P:lock (also _lock, ~lock, :mutex,
//     :lease) goes where P's keys go.
//
// Guarantees: a sibling only ever proposes ratelimit, or the bucket its
// owner is routed to; it never overrides a rule (rules come first), and a
// counter that rules send to cache while it has a :timer sibling is reported
// as a warning verdict instead (eviction would reset the limit).

// siblingConfidence is the confidence of a proposal from a sibling: enough
// to be active in the plan, and stated as such in the evidence.
const siblingConfidence = 0.8

var lockSuffix = regexp.MustCompile(`(?i)^(.+?)(?::|_|~|\.)(?:lock|locks|mutex|lease)$`)

// siblingProposals revises the proposals of unknown patterns (props, by
// pattern text) with their siblings; routed gives every pattern's bucket by
// the rules (Unknown when none matched). It returns warnings for counters
// routed to cache by a rule while a :timer sibling exists.
func siblingProposals(props map[string]*Proposal, routed map[string]classify.Bucket) []string {
	// a pattern's bucket as the plan would route it: rules, then accepted proposals
	bucket := func(text string) (classify.Bucket, bool) {
		b, ok := routed[text]
		if !ok {
			return "", false
		}
		if b == classify.Unknown {
			if p := props[text]; p != nil && p.Accepted {
				return p.Bucket, true
			}
		}
		return b, true
	}
	raise := func(p *Proposal, b classify.Bucket, evidence string) {
		if p.Accepted && p.Bucket == b {
			p.Evidence = append(p.Evidence, evidence)
			return
		}
		if p.Accepted && p.Confidence >= siblingConfidence {
			return // stronger evidence of its own
		}
		p.Bucket, p.Confidence, p.Accepted = b, siblingConfidence, true
		p.Evidence = append(p.Evidence, evidence)
		p.DecidedBy, p.Reason, p.Fix = evidence, "", ""
	}
	var warnings []string
	for text, b := range routed {
		parent, isTimer := strings.CutSuffix(text, ":timer")
		if isTimer {
			pb, ok := routed[parent]
			if !ok {
				continue
			}
			if p := props[text]; p != nil {
				raise(p, classify.RateLimit, fmt.Sprintf("sibling of pattern %s: a rate limiter's window timer next to its counter", parent))
			}
			if p := props[parent]; p != nil && pb == classify.Unknown {
				raise(p, classify.RateLimit, fmt.Sprintf("has a sibling %s: a rate limiter's counter next to its window timer", text))
			}
			if pb == classify.Cache {
				warnings = append(warnings, fmt.Sprintf("pattern %s is routed to cache by a rule but has a :timer sibling (%s): probably a rate-limit counter with a custom name; eviction would reset it: add a rule routing it to ratelimit", parent, text))
			}
			continue
		}
		if b != classify.Unknown || props[text] == nil {
			continue
		}
		if m := lockSuffix.FindStringSubmatch(text); m != nil {
			if ob, ok := bucket(m[1]); ok && ob != classify.Unknown {
				raise(props[text], ob, fmt.Sprintf("lock of pattern %s, whose keys go to %s: a lock belongs with its owner", m[1], ob))
			}
		}
	}
	return warnings
}
