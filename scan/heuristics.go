package scan

import (
	"fmt"
	"math"
	"regexp"
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

// Proposal is a suggested routing rule for one unmatched key pattern (or for
// several similar patterns merged into one, see mergeSimilar).
type Proposal struct {
	Pattern string `json:"pattern"`
	Glob    string `json:"glob"`
	// Regex, when set, is the rule's matcher instead of Glob: for patterns
	// made of placeholders only (a bare {id}, {uuid}, {n}...), whose glob
	// would be "*" and match every name.
	Regex      string          `json:"regex,omitempty"`
	Bucket     classify.Bucket `json:"bucket"` // Unknown when nothing is convincing
	Confidence float64         `json:"confidence"`
	Accepted   bool            `json:"accepted"` // Confidence ≥ AcceptConfidence
	// DecidedBy is the strongest single piece of evidence for Bucket ("" for
	// unknown); Evidence lists all of it, the winning bucket's first.
	DecidedBy string   `json:"decided_by,omitempty"`
	Evidence  []string `json:"evidence"`
	// Reason and Fix, for a pattern left unknown or below the acceptance
	// threshold: why, and the one-line rule that would route it.
	Reason string `json:"reason,omitempty"`
	Fix    string `json:"fix,omitempty"`
	// Merged is the number of normalised patterns this proposal covers (1
	// unless similar patterns were merged).
	Merged int   `json:"merged_patterns,omitempty"`
	Keys   int64 `json:"keys"`
	Bytes  int64 `json:"bytes"`

	// durable: some evidence (even a minority value signal) fits session,
	// queue or ratelimit; such a pattern is never cache, nor covered by a
	// cache proposal. cacheEv: some evidence fits cache.
	durable, cacheEv bool
}

// Rule returns the proposal as a glob (or regex) rule, Source "proposal";
// its Comment holds the confidence and the evidence, for the plan's reviewer.
func (p Proposal) Rule() classify.Rule {
	r := classify.Rule{Glob: p.Glob, Bucket: p.Bucket, Source: "proposal", Name: p.Pattern, Comment: p.Comment()}
	if p.Regex != "" {
		r.Glob, r.Regex = "", p.Regex
	}
	return r
}

// Matcher is the rule's matcher as text: the regex when set, else the glob.
func (p Proposal) Matcher() string {
	if p.Regex != "" {
		return "regex " + p.Regex
	}
	return "glob " + p.Glob
}

// Comment is the proposal's evidence as plan-comment text.
func (p Proposal) Comment() string {
	var b strings.Builder
	fmt.Fprintf(&b, "proposal for %s -> %s, confidence %.2f", p.Pattern, p.Bucket, p.Confidence)
	if !p.Accepted {
		fmt.Fprintf(&b, " (below %.2f: not active)", AcceptConfidence)
	}
	if p.DecidedBy != "" {
		b.WriteString("\n  decided by: " + p.DecidedBy)
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

// signalWord reports whether w is a word any bucket's evidence uses: such a
// literal is never merged away (mergeSimilar).
func signalWord(w string) bool {
	w = strings.ToLower(w)
	return sessionWords[w] || queueWords[w] || rateWords[w] || cacheWords[w] || lockWords[w]
}

// placeholders lists every placeholder a pattern may hold.
var placeholders = []string{PhNumber, PhUUID, PhHex, PhID, PhTS, PhIP, PhEmail, PhPhone, PhCode, PhBinary, PhLong, PhVar}

// patternWords returns the lowercase literal words of a pattern text and the
// placeholders it contains.
func patternWords(text string) (ws []string, phs map[string]bool) {
	phs = map[string]bool{}
	if ph, _, ok := bareLen(text); ok {
		phs[ph] = true // a bare id of one length ({hex40})
		return nil, phs
	}
	for _, ph := range placeholders {
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

// djangoKey: Django's default key function, {KEY_PREFIX}:{VERSION}:{key}.
var djangoKey = regexp.MustCompile(`^[^:{]*:\{n\}:`)

// conflictScore is the score from which evidence for a second bucket makes
// the pattern unknown ("conflicting evidence") instead of lowering the
// confidence.
const conflictScore = 0.5

// evidence accumulates a pattern's evidence per bucket.
type evidence struct {
	score map[classify.Bucket]float64
	lines map[classify.Bucket][]string
	best  map[classify.Bucket]struct {
		w    float64
		text string
	}
	other   []string // evidence for no bucket (formats, facts)
	formats []string // serialisation formats seen on most values
	// durableSeen: some positive evidence for session, queue or ratelimit
	// was added, whatever evidence against it came later.
	durableSeen bool
	// fromValues: the buckets for which a majority of the values read is
	// evidence (not the name, types or TTLs only).
	fromValues map[classify.Bucket]bool
}

func newEvidence() *evidence {
	return &evidence{score: map[classify.Bucket]float64{}, lines: map[classify.Bucket][]string{}, fromValues: map[classify.Bucket]bool{},
		best: map[classify.Bucket]struct {
			w    float64
			text string
		}{}}
}

// add records evidence of weight w (negative: against b).
func (e *evidence) add(b classify.Bucket, w float64, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	e.score[b] += w
	if w > 0 && b != classify.Cache {
		e.durableSeen = true
	}
	e.lines[b] = append(e.lines[b], text)
	if w > e.best[b].w {
		e.best[b] = struct {
			w    float64
			text string
		}{w, text}
	}
}

func (e *evidence) note(format string, args ...any) {
	e.other = append(e.other, fmt.Sprintf(format, args...))
}

// Propose suggests a bucket for an unmatched pattern from its name, the
// statistics of its keys and the value signatures read from a few of them,
// following the signals of key-patterns.md:
//
//   - name segments (sess/session, queue/jobs, rl/ratelimit/throttle, cache...),
//     identifier-shaped segments (IP, email, phone, UUID, hex, ids), and
//     names that are request URIs (HTTP response caches),
//   - TYPE (list, zset and stream are almost never cache or session),
//   - TTL bands (sessions live 20 min to 31 days; rate-limit windows are short),
//   - OBJECT ENCODING int (a counter: rate limit or stats),
//   - value signatures (signature.go): library envelopes, session payloads,
//     jobs, GCRA state, hash and stream field names, field and type names
//     inside serialised values (HTTP responses, rate-limit state, class
//     names), time-scored sets.
//
// Guarantees: cache is proposed only on positive evidence (a cache-like name
// or a cache library's envelope) and never when any session, queue or
// rate-limit evidence exists, not even a minority value signal; when two
// buckets both have strong evidence (≥ conflictScore, cache included), the
// pattern is unknown and the evidence lists both sides, except that values
// which are evidence for the leading durable bucket decide against cache
// evidence from the name alone (a session kept through a cache layer: only
// ever the durable direction); a pattern with no convincing evidence gets
// bucket Unknown. The result carries the reason and a one-line fix whenever
// it is not accepted.
func Propose(p Pattern, s *Stats) Proposal {
	out := Proposal{Pattern: p.Text, Glob: p.Glob, Regex: regexOf(p.Text), Bucket: classify.Unknown, Keys: s.Keys, Bytes: s.EstimatedBytes(), Merged: 1}
	if s.Keys == 0 {
		return out
	}
	ws, phs := patternWords(p.Text)
	e := newEvidence()
	mixedWriters := false
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
	hourTTL := share(s.TTL[bandLT1h])
	// Session band: 20 minutes to 31 days.
	sessBand := share(s.TTL[band1to4h] + s.TTL[band4to12h] + s.TTL[band12to24h] + s.TTL[band1to7d] + s.TTL[band7dto1mo])
	longTTL := share(s.TTL[band7dto1mo] + s.TTL[bandGT1mo])
	ident := ""
	for _, ph := range []string{PhIP, PhEmail, PhPhone, PhUUID, PhHex, PhID, PhCode} {
		if phs[ph] {
			ident = ph
			break
		}
	}

	// Bare ids of one length written by two libraries: their values show two
	// serialisations. No name rule can tell their keys apart, so the
	// pattern is for a person (evidence of both, and of any bucket, kept).
	if mixed := mixedFormats(s); mixed != nil && barePlaceholder([]byte(p.Text)) {
		out.durable = true // never cache: one of the writers may be durable
		e.note("values of two serialisations (%s): the keys of two writers share this name shape", strings.Join(mixed, ", "))
		mixedWriters = true
	}

	// Value signatures: a majority of the values read decides; a minority
	// durable signal still forbids cache.
	sessVal := false
	if s.Sniffed > 0 {
		for sig, n := range s.Signals {
			if n == 0 {
				continue
			}
			sg := signatures[sig]
			major := 2*n >= s.Sniffed
			if !major {
				if sg.bucket != "" && sg.bucket != classify.Cache {
					out.durable = true
					e.note("%d of %d values read: %s (a minority, but enough to rule out cache)", n, s.Sniffed, sg.desc)
				}
				continue
			}
			w := sg.weight
			if n == s.Sniffed && n >= 2 {
				w += 0.1 // every value read agrees
			}
			switch sig {
			case sigASPNetHash:
				if phs[PhUUID] {
					e.add(classify.Session, 0.6, "%s under a GUID-named key (ASP.NET Core Session), %d of %d read", sg.desc, n, s.Sniffed)
					e.fromValues[classify.Session] = true
				} else {
					e.add(classify.Cache, 0.6, "%s under an application key (ASP.NET Core cache entry), %d of %d read", sg.desc, n, s.Sniffed)
					e.fromValues[classify.Cache] = true
				}
				continue
			case sigTimeZSet:
				switch {
				case 2*s.Signals[sigMessageMember] >= s.Sniffed && s.Signals[sigMessageMember] > 0:
					e.note("%s whose members are messages (a message channel, not a sliding-window log)", sg.desc)
				case hourTTL >= 0.9:
					e.add(classify.RateLimit, 0.4, "%s with TTLs under 1h (a sliding-window log)", sg.desc)
				case noTTL >= 0.9:
					e.add(classify.Queue, 0.2, "%s without TTL (a schedule or a job registry)", sg.desc)
				default:
					e.note("%s", sg.desc)
				}
				continue
			case sigPickle:
				if djangoKey.MatchString(p.Text) && s.Types[tString] == s.Keys {
					e.add(classify.Cache, 0.6, "Python pickle values under Django's {prefix}:{version}: key grammar (Django cache), %d of %d read", n, s.Sniffed)
					e.fromValues[classify.Cache] = true
					continue
				}
			}
			if sg.bucket == "" {
				e.note("values are %s (%d of %d read)", sg.desc, n, s.Sniffed)
				if sig != sigTimestamp && sig != sigBase64 {
					e.formats = append(e.formats, sg.desc)
				}
				continue
			}
			e.add(sg.bucket, w, "values: %s, %d of %d read", sg.desc, n, s.Sniffed)
			e.fromValues[sg.bucket] = true
			if sg.bucket == classify.Session {
				sessVal = true
			}
		}
	}
	if sessW != "" {
		e.add(classify.Session, 0.5, "name segment %q", sessW)
	}
	if sessW != "" || sessVal {
		if strHash >= 0.9 && sessBand+hourTTL >= 0.9 && noTTL < 0.1 {
			e.add(classify.Session, 0.25, "%s with session-like TTLs (%s)", typeMix(s), ttlRange(s))
		}
		if structural > 0.5 || noTTL > 0.5 {
			e.add(classify.Session, -0.3, "but %s: sessions are strings or hashes with a TTL", mixOrTTL(s))
		}
		if phs[PhUUID] || phs[PhHex] || phs[PhID] {
			e.add(classify.Session, 0.1, "id-shaped segment")
		}
	}
	if queueW != "" {
		e.add(classify.Queue, 0.5, "name segment %q", queueW)
		if n := countHits(ws, queueWords); n > 1 {
			e.add(classify.Queue, 0.1, "%d queue words in the name", n)
		}
	}
	switch {
	case structural >= 0.9 && noTTL >= 0.9:
		e.add(classify.Queue, 0.2, "%s without TTL (queue structures)", typeMix(s))
	case queueW != "" && structural+share(s.Types[tSet]) >= 0.9 && noTTL >= 0.9:
		e.add(classify.Queue, 0.2, "%s without TTL under a queue name (queue registries)", typeMix(s))
	}
	if 2*s.Signals[sigJobHash] >= s.Sniffed && s.Signals[sigJobHash] > 0 && s.Types[tHash] == s.Keys && noTTL >= 0.9 {
		e.add(classify.Queue, 0.1, "job hashes without TTL (job records live until a worker removes them)")
	}
	if rateW != "" {
		e.add(classify.RateLimit, 0.5, "name segment %q", rateW)
	}
	if phs[PhIP] && !urlHostIP(p.Text) {
		e.add(classify.RateLimit, 0.4, "IP-shaped segment")
	}
	if e.score[classify.RateLimit] > 0 && shortTTL >= 0.9 && (s.Signals[sigRateHash] > 0 || s.Signals[sigCellTAT] > 0 || s.Signals[sigGCRAFloat] > 0 || s.Signals[sigClassRate] > 0 || s.Signals[sigRateFields] > 0) {
		e.add(classify.RateLimit, 0.2, "short TTLs (%s)", ttlRange(s))
	}
	if strings_ > 0 && intShare >= 0.9 {
		e.note("OBJECT ENCODING int on %.0f%% of strings (counters)", 100*intShare)
		switch {
		case shortTTL >= 0.9:
			e.add(classify.RateLimit, 0.2, "counters with short TTLs (%s)", ttlRange(s))
			if rateW != "" || phs[PhIP] || phs[PhTS] {
				e.add(classify.RateLimit, 0.1, "a limiter's name, client or window segment")
			}
			if hourTTL >= 0.9 {
				e.add(classify.RateLimit, 0.3, "every counter expires within the hour (a rate-limit window)")
			}
			if ident != "" {
				e.add(classify.RateLimit, 0.2, "counters per identifier (%s segment)", ident)
			}
		case noTTL > 0.5 || longTTL > 0.5:
			e.add(classify.RateLimit, -0.3, "but long or no TTL: counters like these are usually statistics, not rate limits")
		}
	}
	uri := requestURI(p.Text) && intShare < 0.5
	switch {
	case cacheW != "":
		e.add(classify.Cache, 0.5, "name segment %q", cacheW)
	case uri:
		e.add(classify.Cache, 0.5, "the name is a request URI (a path or a query string): HTTP response caches key by it")
	}
	if (cacheW != "" || uri) && strHash >= 0.9 && noTTL < 0.5 {
		e.add(classify.Cache, 0.2, "%s with TTLs", typeMix(s))
	}
	if e.score[classify.Cache] > 0 && cacheW == "" && !uri {
		if strHash >= 0.9 && noTTL < 0.5 {
			e.add(classify.Cache, 0.1, "%s with TTLs", typeMix(s))
		} else if strHash == 1 {
			e.add(classify.Cache, 0.1, "%s (a cache entry's types)", typeMix(s))
		}
	}
	if e.score[classify.Cache] > 0 && structural > 0.5 {
		e.add(classify.Cache, -0.3, "but %s are rarely cache", typeMix(s))
	}
	out.durable = out.durable || e.durableSeen
	if mixedWriters {
		out = decide(out, e, s, lockW)
		side, fix := "the values of each show no bucket", "cache|session|queue|ratelimit"
		if out.Bucket != classify.Unknown {
			side = fmt.Sprintf("%s: %s VS the others, which show no such evidence", out.Bucket, out.DecidedBy)
			others := []string{string(out.Bucket)}
			for _, b := range []classify.Bucket{classify.Cache, classify.Session, classify.Queue, classify.RateLimit} {
				if b != out.Bucket {
					others = append(others, string(b))
				}
			}
			fix = "one of " + strings.Join(others, "|")
		}
		out.Bucket, out.Confidence, out.Accepted, out.DecidedBy = classify.Unknown, 0, false, ""
		out.Reason = "conflicting evidence: values of two serialisations, two writers' keys in one name shape (no name rule can tell them apart: give the shape the durable one's bucket, or rename one writer's keys); " + side
		out.Fix = fixLine(out, fix)
		return out
	}
	return decide(out, e, s, lockW)
}

// exclusiveFormats are serialisations a value has one of at most.
var exclusiveFormats = []int{sigPickle, sigMarshal, sigPHPSerialize, sigIgbinary, sigJava, sigMsgpack, sigGob}

// mixedFormats returns the exclusive serialisations each seen on at least
// a quarter of the values read (at least 2 of them: a class of keys read
// on its own budget, shapeOf), when two or more are.
func mixedFormats(s *Stats) []string {
	if s.Sniffed < 4 {
		return nil
	}
	var out []string
	for _, f := range exclusiveFormats {
		if n := s.Signals[f]; n >= 2 && 4*n >= s.Sniffed {
			out = append(out, signatures[f].desc)
		}
	}
	if len(out) < 2 {
		return nil
	}
	return out
}

// requestURI reports a pattern text that is a request URI: a path of at
// least two segments ("/products/{n}"), a query string ("?color=red"), or a
// URL, optionally behind one literal prefix segment ("GET:/products/...").
// Response caches key by the URI; sessions, queues and rate limiters key by
// ids and clients (a per-path limiter also names its client, or counts).
func requestURI(text string) bool {
	if strings.Contains(text, "://") {
		return true
	}
	if i := strings.IndexByte(text, ':'); i > 0 && i+1 < len(text) && text[i+1] == '/' && !strings.ContainsAny(text[:i], "{}/") {
		text = text[i+1:] // one literal prefix segment
	}
	switch {
	case strings.HasPrefix(text, "/") && len(text) > 1 && text[1] != '/' && strings.Count(text, "/") >= 2:
		return true
	case strings.HasPrefix(text, "/") && strings.Contains(text, "?") && strings.Contains(text, "="):
		return true
	}
	return false
}

// urlHostIP reports a pattern whose only IP is a URL's host
// ("http://{ip}:{n}/..."): the server a client asked, not a client a
// limiter counts.
func urlHostIP(text string) bool {
	return strings.Count(text, PhIP) == 1 && strings.Contains(text, "://"+PhIP)
}

// countHits counts the distinct words of ws in set.
func countHits(ws []string, set map[string]bool) int {
	seen := map[string]bool{}
	for _, w := range ws {
		if set[w] {
			seen[w] = true
		}
	}
	return len(seen)
}

// decide turns the evidence into the proposal: the best bucket, unless
// evidence conflicts.
func decide(out Proposal, e *evidence, s *Stats, lockW string) Proposal {
	facts := fmt.Sprintf("%d keys, %s, TTL %s", s.Keys, typeMix(s), ttlRange(s))
	cacheScore := e.score[classify.Cache]
	out.cacheEv = cacheScore > 0
	if out.durable && cacheScore > 0 {
		e.lines[classify.Cache] = append(e.lines[classify.Cache], "not cache: session, queue or rate-limit evidence present")
		delete(e.score, classify.Cache)
	}
	type bs struct {
		b classify.Bucket
		v float64
	}
	var ranked []bs
	for _, b := range classify.Buckets {
		if v := e.score[b]; v > 0 {
			ranked = append(ranked, bs{b, v})
		}
	}
	sort.SliceStable(ranked, func(i, j int) bool { return ranked[i].v > ranked[j].v })
	explain := func(b classify.Bucket) string { return string(b) + ": " + strings.Join(e.lines[b], "; ") }
	var ev []string
	if len(ranked) > 0 {
		ev = append(ev, e.lines[ranked[0].b]...)
	}
	for _, b := range classify.Buckets {
		if len(ranked) > 0 && b == ranked[0].b || len(e.lines[b]) == 0 {
			continue
		}
		ev = append(ev, explain(b))
	}
	ev = append(ev, e.other...)
	out.Evidence = append(ev, facts)

	// Conflicts: strong evidence for two buckets (a durable one against
	// cache counts too) is for a person to decide.
	rivals := []classify.Bucket{}
	for _, r := range ranked {
		if r.v >= conflictScore {
			rivals = append(rivals, r.b)
		}
	}
	if out.durable && cacheScore >= conflictScore && len(rivals) >= 1 {
		if !e.fromValues[classify.Cache] && e.fromValues[rivals[0]] {
			// the name says cache, the values say a durable workload: a
			// session (job, limit) kept through a cache layer, as Django's
			// cache sessions, Laravel's cache driver and Beaker keep them;
			// routing it as cache is the outage, so the values decide
			e.lines[classify.Cache] = append(e.lines[classify.Cache], fmt.Sprintf("the name says cache, the values say %s: a %s kept through a cache layer", rivals[0], rivals[0]))
		} else {
			rivals = append(rivals, classify.Cache)
		}
	}
	if len(rivals) >= 2 {
		var sides []string
		for _, b := range rivals {
			sides = append(sides, explain(b))
		}
		out.Evidence = append(append([]string{"conflicting evidence: " + strings.Join(sides, " VS ")}, e.other...), facts)
		out.Reason = "conflicting evidence for " + joinBuckets(rivals)
		out.Fix = fixLine(out, "one of "+joinBuckets(rivals))
		return out
	}
	if len(ranked) == 0 && len(e.formats) > 0 {
		out.Reason = fmt.Sprintf("no convincing evidence: serialised values (%s), %s, TTL %s, no name or envelope that tells a cache from a session or job store with an application prefix",
			strings.Join(e.formats, ", "), typeMix(s), ttlRange(s))
		out.Fix = fixLine(out, "cache|session|queue|ratelimit")
		return out
	}
	if len(ranked) == 0 {
		out.Reason = "no convincing evidence: the name, types, TTLs and values read fit no bucket"
		out.Fix = fixLine(out, "cache|session|queue|ratelimit")
		return out
	}
	best, bestScore, second := ranked[0].b, ranked[0].v, 0.0
	if len(ranked) > 1 {
		second = ranked[1].v
	}
	conf := bestScore - second/2
	if lockW != "" {
		conf *= 0.8
		out.Evidence = append(out.Evidence, fmt.Sprintf("lock key %q: belongs with its owner's bucket; check the owner", lockW))
	}
	conf = math.Min(0.99, math.Round(conf*100)/100)
	if conf < minConfidence {
		out.Reason = fmt.Sprintf("weak evidence only (best: %s, %.2f)", best, conf)
		out.Fix = fixLine(out, string(best))
		return out
	}
	if second > 0 {
		out.Evidence = append(out.Evidence, "conflicting evidence for another bucket lowers the confidence")
	}
	out.Bucket, out.Confidence, out.Accepted = best, conf, conf >= AcceptConfidence
	out.DecidedBy = e.best[best].text
	if !out.Accepted {
		out.Reason = fmt.Sprintf("evidence for %s below confidence %.2f", best, AcceptConfidence)
		out.Fix = fixLine(out, string(best))
	}
	return out
}

func joinBuckets(bs []classify.Bucket) string {
	var s []string
	for _, b := range bs {
		s = append(s, string(b))
	}
	return strings.Join(s, " or ")
}

// fixLine is the one-line rule that routes the pattern's keys.
func fixLine(p Proposal, bucket string) string {
	m := fmt.Sprintf("glob: '%s'", strings.ReplaceAll(p.Glob, "'", "''"))
	if p.Regex != "" {
		m = fmt.Sprintf("regex: '%s'", strings.ReplaceAll(p.Regex, "'", "''"))
	}
	return fmt.Sprintf("add to rules: in the config: - {%s, bucket: %s}", m, bucket)
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
	plural := func(t string) string {
		if t == "hash" {
			return "hashes"
		}
		return t + "s"
	}
	if len(ts) == 1 {
		return plural(ts[0].t)
	}
	var parts []string
	for _, x := range ts {
		parts = append(parts, fmt.Sprintf("%.0f%% %s", 100*float64(x.n)/float64(s.Keys), plural(x.t)))
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
