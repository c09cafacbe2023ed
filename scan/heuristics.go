package scan

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/redisplit/redisplit/classify"
)

// AcceptConfidence is the confidence from which a proposal counts as routed:
// it is written as an active rule by --plan-out and routes keys in
// --keys-out. Lower proposals are written as comments only, for a person to
// decide.
const AcceptConfidence = 0.7

// minConfidence is the confidence below which no bucket is proposed at all:
// the pattern stays unknown ("no convincing evidence").
const minConfidence = 0.3

// Proposal is a suggested routing rule for one unmatched key pattern.
type Proposal struct {
	Pattern    string          `json:"pattern"`
	Glob       string          `json:"glob"`
	Bucket     classify.Bucket `json:"bucket"` // Unknown when nothing is convincing
	Confidence float64         `json:"confidence"`
	Accepted   bool            `json:"accepted"` // Confidence ≥ AcceptConfidence
	Evidence   []string        `json:"evidence"`
	Keys       int64           `json:"keys"`
	Bytes      int64           `json:"bytes"`
}

// Rule returns the proposal as a glob rule (Source "proposal"); its Comment
// holds the confidence and the evidence, for the plan's reviewer.
func (p Proposal) Rule() classify.Rule {
	return classify.Rule{Glob: p.Glob, Bucket: p.Bucket, Source: "proposal", Name: p.Pattern, Comment: p.Comment()}
}

// Comment is the proposal's evidence as plan-comment text.
func (p Proposal) Comment() string {
	var b strings.Builder
	fmt.Fprintf(&b, "proposal for %s -> %s, confidence %.2f", p.Pattern, p.Bucket, p.Confidence)
	if !p.Accepted {
		fmt.Fprintf(&b, " (below %.2f: not active)", AcceptConfidence)
	}
	for _, e := range p.Evidence {
		b.WriteString("\n  - " + e)
	}
	return b.String()
}

var (
	sessionWords = words("sess session sessions sid phpredis_session sessionid usersession")
	queueWords   = words("queue queues job jobs task tasks worker workers celery sidekiq resque bull bullmq asynq kombu delayed pending retry dead inflight unacked mq backlog")
	rateWords    = words("rl ratelimit ratelimiter ratelimits rate limit limiter limits throttle throttling throttled rlflx quota attempts")
	cacheWords   = words("cache cached caches cachekey views fragment fragments page pages memo memoize keyv apq fqc")
	lockWords    = words("lock locks mutex lease")
)

func words(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(s) {
		m[w] = true
	}
	return m
}

// patternWords returns the lowercase literal words of a pattern text and the
// placeholders it contains.
func patternWords(text string) (ws []string, phs map[string]bool) {
	phs = map[string]bool{}
	for _, ph := range []string{PhNumber, PhUUID, PhHex, PhID, PhTS, PhIP, PhBinary, PhLong} {
		if strings.Contains(text, ph) {
			phs[ph] = true
			text = strings.ReplaceAll(text, ph, " ")
		}
	}
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) {
		ws = append(ws, w)
	}
	return ws, phs
}

// Propose suggests a bucket for an unmatched pattern from its name and the
// statistics of its keys, following the signals of key-patterns.md:
//
//   - name segments (sess/session, queue/jobs, rl/ratelimit/throttle, cache...),
//   - TYPE (list, zset and stream are almost never cache or session),
//   - TTL bands (sessions live 20 min to 31 days; rate-limit windows are short),
//   - OBJECT ENCODING int (a counter: rate limit or stats),
//   - an IP-shaped segment (rate limiter keyed by client address).
//
// Guarantees: cache is proposed only on positive evidence (a cache-like name)
// and never when any session, queue or rate-limit evidence exists; a pattern
// with no convincing evidence gets bucket Unknown.
func Propose(p Pattern, s *Stats) Proposal {
	out := Proposal{Pattern: p.Text, Glob: p.Glob, Bucket: classify.Unknown, Keys: s.Keys, Bytes: s.EstimatedBytes()}
	if s.Keys == 0 {
		return out
	}
	ws, phs := patternWords(p.Text)
	score := map[classify.Bucket]float64{}
	var ev []string
	note := func(format string, args ...any) { ev = append(ev, fmt.Sprintf(format, args...)) }
	share := func(n int64) float64 { return float64(n) / float64(s.Keys) }

	hit := func(set map[string]bool) string {
		for _, w := range ws {
			if set[w] {
				return w
			}
		}
		return ""
	}
	sessW, queueW, rateW, cacheW, lockW := hit(sessionWords), hit(queueWords), hit(rateWords), hit(cacheWords), hit(lockWords)

	structural := share(s.Types[tList] + s.Types[tZSet] + s.Types[tStream])
	noTTL := share(s.TTL[bandNone])
	strHash := share(s.StrOrHash)
	strings_ := s.Types[tString]
	intShare := 0.0
	if strings_ > 0 {
		intShare = float64(s.IntKeys) / float64(strings_)
	}
	shortTTL := share(s.ShortTTL)
	// Session band: 20 minutes to 31 days.
	sessBand := share(s.TTL[band1to4h] + s.TTL[band4to12h] + s.TTL[band12to24h] + s.TTL[band1to7d] + s.TTL[band7dto1mo])
	longTTL := share(s.TTL[band7dto1mo] + s.TTL[bandGT1mo])

	// Value signals (first bytes of a few values): a majority of the values read.
	sessVal := false
	if s.Sniffed > 0 {
		major := func(sig int) bool { return s.Signals[sig] > 0 && 2*s.Signals[sig] >= s.Sniffed }
		sessVal = major(sigSessionJSON) || major(sigPHPSession)
		if major(sigSessionJSON) {
			score[classify.Session] += 0.5
			note("values are express-session JSON ({\"cookie\":...}) in %d of %d read", s.Signals[sigSessionJSON], s.Sniffed)
		}
		if major(sigPHPSession) {
			score[classify.Session] += 0.4
			note("values are PHP/Laravel session payloads in %d of %d read", s.Signals[sigPHPSession], s.Sniffed)
		}
		if major(sigJobJSON) {
			score[classify.Queue] += 0.4
			note("list items are JSON jobs in %d of %d read", s.Signals[sigJobJSON], s.Sniffed)
		}
	}
	if sessW != "" {
		score[classify.Session] += 0.5
		note("name segment %q", sessW)
	}
	if sessW != "" || sessVal {
		if strHash >= 0.9 && sessBand+share(s.TTL[bandLT1h]) >= 0.9 && noTTL < 0.1 {
			score[classify.Session] += 0.25
			note("%s with session-like TTLs (%s)", typeMix(s), ttlRange(s))
		}
		if structural > 0.5 || noTTL > 0.5 {
			score[classify.Session] -= 0.3
			note("but %s: sessions are strings or hashes with a TTL", mixOrTTL(s))
		}
		if phs[PhUUID] || phs[PhHex] || phs[PhID] {
			score[classify.Session] += 0.1
			note("id-shaped segment")
		}
	}
	if queueW != "" {
		score[classify.Queue] += 0.5
		note("name segment %q", queueW)
	}
	if structural >= 0.9 && noTTL >= 0.9 {
		score[classify.Queue] += 0.2
		note("%s without TTL (queue structures)", typeMix(s))
	}
	if rateW != "" {
		score[classify.RateLimit] += 0.5
		note("name segment %q", rateW)
	}
	if phs[PhIP] {
		score[classify.RateLimit] += 0.4
		note("IP-shaped segment")
	}
	if strings_ > 0 && intShare >= 0.9 {
		note("OBJECT ENCODING int on %.0f%% of strings (counters)", 100*intShare)
		switch {
		case shortTTL >= 0.9:
			score[classify.RateLimit] += 0.2
			if rateW != "" || phs[PhIP] || phs[PhTS] {
				score[classify.RateLimit] += 0.1
				note("short TTLs (%s)", ttlRange(s))
			}
		case noTTL > 0.5 || longTTL > 0.5:
			score[classify.RateLimit] -= 0.3
			note("but long or no TTL: counters like these are usually statistics, not rate limits")
		}
	}
	if cacheW != "" {
		score[classify.Cache] += 0.5
		note("name segment %q", cacheW)
		if strHash >= 0.9 && noTTL < 0.5 {
			score[classify.Cache] += 0.2
			note("%s with TTLs", typeMix(s))
		}
		if structural > 0.5 {
			score[classify.Cache] -= 0.3
			note("but %s are rarely cache", typeMix(s))
		}
	}
	// Cache requires positive evidence and no sign of any other workload:
	// eviction would destroy a session, a job or a limit.
	if score[classify.Session] > 0 || score[classify.Queue] > 0 || score[classify.RateLimit] > 0 {
		if score[classify.Cache] > 0 {
			note("not cache: session, queue or rate-limit evidence present")
		}
		delete(score, classify.Cache)
	}

	best, second := classify.Unknown, 0.0
	bestScore := 0.0
	for _, b := range classify.Buckets {
		v := score[b]
		if v > bestScore {
			second, bestScore, best = bestScore, v, b
		} else if v > second {
			second = v
		}
	}
	conf := bestScore - second/2
	if lockW != "" {
		conf *= 0.8
		note("lock key %q: belongs with its owner's bucket; check the owner", lockW)
	}
	conf = math.Min(0.99, math.Round(conf*100)/100)
	out.Evidence = append(ev, fmt.Sprintf("%d keys, %s, TTL %s", s.Keys, typeMix(s), ttlRange(s)))
	if conf < minConfidence || best == classify.Unknown {
		out.Confidence = 0
		return out
	}
	if second > 0 {
		out.Evidence = append(out.Evidence, "conflicting evidence for another bucket lowers the confidence")
	}
	out.Bucket, out.Confidence, out.Accepted = best, conf, conf >= AcceptConfidence
	return out
}

// typeMix describes the type mix, e.g. "strings" or "70% hashes, 30% strings".
func typeMix(s *Stats) string {
	type tc struct {
		t string
		n int64
	}
	var ts []tc
	for i, n := range s.Types {
		if n > 0 {
			ts = append(ts, tc{Types[i], n})
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].n > ts[j].n })
	if len(ts) == 1 {
		return ts[0].t + "s"
	}
	var parts []string
	for _, x := range ts {
		parts = append(parts, fmt.Sprintf("%.0f%% %ss", 100*float64(x.n)/float64(s.Keys), x.t))
	}
	return strings.Join(parts, ", ")
}

func mixOrTTL(s *Stats) string {
	if s.TTL[bandNone]*2 > s.Keys {
		return "mostly without TTL"
	}
	return typeMix(s)
}

// ttlRange describes the TTLs, e.g. "none", "12-24h" or "30s..2h (40% none)".
func ttlRange(s *Stats) string {
	if s.withTTL == 0 {
		return "none"
	}
	r := fmtDur(s.TTLMinMs) + ".." + fmtDur(s.TTLMaxMs)
	if s.TTL[bandNone] > 0 {
		r += fmt.Sprintf(" (%.0f%% none)", 100*float64(s.TTL[bandNone])/float64(s.Keys))
	}
	return r
}

func fmtDur(ms int64) string {
	sec := ms / 1000
	switch {
	case sec < 120:
		return fmt.Sprintf("%ds", sec)
	case sec < 2*3600:
		return fmt.Sprintf("%dm", sec/60)
	case sec < 2*86400:
		return fmt.Sprintf("%dh", sec/3600)
	default:
		return fmt.Sprintf("%dd", sec/86400)
	}
}
