package scan

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/keyname"
)

// SchemaVersion is the version of the JSON report (docs/scan-report.md). It
// changes only when a field is removed or changes meaning; fields may be
// added within a version.
const SchemaVersion = 1

// Report limits.
const (
	topPatternsPerBucket = 10
	maxUnknownPatterns   = 50
)

// Report is the result of a scan: what `redisplit scan` prints as text and,
// field for field, as JSON (--output json).
type Report struct {
	SchemaVersion int       `json:"schema_version"`
	Legacy        Legacy    `json:"legacy"`
	StartedAt     time.Time `json:"started_at"`
	DurationMs    int64     `json:"duration_ms"`
	// DBSize is DBSIZE before the scan; Scanned the keys SCAN returned that
	// still existed when inspected; ExpiredDuringScan those that had expired
	// or were deleted between SCAN and TYPE/PTTL/MEMORY USAGE (not counted
	// anywhere else).
	DBSize            int64             `json:"dbsize"`
	Scanned           int64             `json:"keys_scanned"`
	ExpiredDuringScan int64             `json:"expired_during_scan"`
	Sampling          Sampling          `json:"sampling"`
	Buckets           []BucketReport    `json:"buckets"`
	UnknownPatterns   []PatternReport   `json:"unknown_patterns"`
	Proposals         []Proposal        `json:"proposals"`
	Patterns          PatternAccounting `json:"patterns"`
	Preflight         []Verdict         `json:"preflight"`
	Permissions       []Permission      `json:"permissions"`
	Sizing            []Sizing          `json:"sizing"`
	// CacheForecast is the cache bucket's predicted spread over a Redis
	// Cluster (forecast.go); its verdict is the "cache-skew" preflight line.
	CacheForecast *CacheForecast `json:"cache_forecast,omitempty"`
	KeysOut       string         `json:"keys_out,omitempty"`
	PlanOut       string         `json:"plan_out,omitempty"` // set by the command
	// PlanHash is the hash of the plan written by --plan-out, or of the
	// routing rules used when none was written (set by the command).
	PlanHash string `json:"plan_hash,omitempty"`
}

// Legacy describes the scanned server.
type Legacy struct {
	Addr    string `json:"addr"`
	DB      int    `json:"db"`
	Version string `json:"version"`
	Role    string `json:"role"` // master | slave
	Cluster bool   `json:"cluster"`
}

// Sampling states how bytes were obtained and how precise they are.
type Sampling struct {
	Percent      float64 `json:"percent"`       // requested share of keys given MEMORY USAGE
	MeasuredKeys int64   `json:"measured_keys"` // keys actually measured
	Exact        bool    `json:"exact"`         // every key measured: bytes are exact sums
	MemoryUsage  bool    `json:"memory_usage"`  // false when MEMORY USAGE was refused
	Note         string  `json:"note"`
}

// BandCount is one TTL histogram band.
type BandCount struct {
	Band string `json:"band"`
	Keys int64  `json:"keys"`
}

// BucketReport is one bucket's totals. Keys routed by accepted proposals are
// included (KeysByProposals), attributed by pattern.
type BucketReport struct {
	Bucket          string           `json:"bucket"`
	Keys            int64            `json:"keys"`
	KeysByRules     int64            `json:"keys_by_rules"`
	KeysByProposals int64            `json:"keys_by_proposals"`
	Bytes           int64            `json:"bytes"`           // -1 when unknown
	BytesMargin95   int64            `json:"bytes_margin_95"` // ± at 95% when sampled, else 0
	Types           map[string]int64 `json:"types"`
	TTL             []BandCount      `json:"ttl"`
	Encodings       map[string]int64 `json:"encodings"`
	TopPatterns     []PatternReport  `json:"top_patterns"`
}

// PatternReport is one key pattern's totals.
type PatternReport struct {
	Pattern   string           `json:"pattern"`
	Glob      string           `json:"glob,omitempty"`
	Rule      string           `json:"rule,omitempty"` // deciding rule; "" for unknown
	Keys      int64            `json:"keys"`
	Bytes     int64            `json:"bytes"`
	Types     map[string]int64 `json:"types"`
	TTL       []BandCount      `json:"ttl"`
	Encodings map[string]int64 `json:"encodings,omitempty"`
	Samples   []SampleKey      `json:"samples,omitempty"`
	Proposal  *Proposal        `json:"proposal,omitempty"`
}

// SampleKey is a sample key name: {key} or {key_b64} (keyname.JSON).
type SampleKey = keyname.JSON

// PatternAccounting says whether the pattern cap folded anything.
type PatternAccounting struct {
	Tracked   int   `json:"tracked"`
	Cap       int   `json:"cap"`
	KeysOther int64 `json:"keys_in_other"` // keys folded into "(other patterns)"
}

// Sizing is the advice for one bucket's target.
type Sizing struct {
	Bucket          string `json:"bucket"`
	DataBytes       int64  `json:"data_bytes"`
	MaxMemory       int64  `json:"maxmemory"`
	Headroom        string `json:"headroom"`
	MaxMemoryPolicy string `json:"maxmemory_policy"`
	Persistence     string `json:"persistence"`
	Note            string `json:"note,omitempty"`
}

func sampleKeys(names []string) []SampleKey {
	out := make([]SampleKey, len(names))
	for i, n := range names {
		out[i] = keyname.Of(n)
	}
	return out
}

func typesMap(s *Stats) map[string]int64 {
	m := map[string]int64{}
	for i, n := range s.Types {
		if n > 0 {
			m[Types[i]] = n
		}
	}
	return m
}

func encMap(s *Stats) map[string]int64 {
	m := map[string]int64{}
	for i, n := range s.Enc {
		if n > 0 {
			m[Encodings[i]] = n
		}
	}
	return m
}

func ttlBands(s *Stats) []BandCount {
	out := make([]BandCount, nBands)
	for i := range out {
		out[i] = BandCount{TTLBands[i], s.TTL[i]}
	}
	return out
}

func patternReport(p *patternAgg) PatternReport {
	return PatternReport{Pattern: p.Text, Glob: p.Glob, Rule: p.Rule, Keys: p.Stats.Keys, Bytes: p.Stats.EstimatedBytes(),
		Types: typesMap(&p.Stats), TTL: ttlBands(&p.Stats), Encodings: encMap(&p.Stats), Samples: sampleKeys(p.Samples)}
}

// buildReport turns the aggregate into the report: proposals for unknown
// patterns, their attribution to buckets, sizing.
func buildReport(a *aggregator, s *scanner, pf *preflightResult, dbsize int64) *Report {
	r := &Report{SchemaVersion: SchemaVersion, DBSize: dbsize, ExpiredDuringScan: s.expired.Load(),
		Legacy:    Legacy{Addr: s.addr, DB: pf.DB, Version: pf.Version, Role: pf.Role, Cluster: pf.Cluster},
		Patterns:  PatternAccounting{Tracked: len(a.patterns), Cap: s.opts.MaxPatterns, KeysOther: a.folded},
		Preflight: pf.Verdicts, Permissions: pf.Permissions}
	if v := s.sniff.verdict(s.caps.sniffRefused); v != nil {
		r.Preflight = append(r.Preflight, *v)
	}
	var measured int64
	for _, st := range a.buckets {
		r.Scanned += st.Keys
		measured += st.Measured
	}
	r.Sampling = Sampling{Percent: s.opts.SamplePercent, MeasuredKeys: measured, MemoryUsage: s.caps.memoryUsage,
		Exact: s.caps.memoryUsage && measured == r.Scanned}
	switch {
	case !s.caps.memoryUsage:
		r.Sampling.Note = "MEMORY USAGE refused by ACL: bytes unknown"
	case r.Sampling.Exact:
		r.Sampling.Note = "MEMORY USAGE SAMPLES 0 on every key: bytes are exact per-key sums (allocator overhead and fragmentation excluded)"
	default:
		r.Sampling.Note = fmt.Sprintf("MEMORY USAGE SAMPLES 0 on a deterministic %.4g%% hash sample of key names (%d keys); bytes are extrapolated within each pattern; each bucket states its 95%% margin", s.opts.SamplePercent, measured)
	}

	// Proposals for every unknown pattern; accepted ones move their pattern.
	var unknown []*patternAgg
	for _, p := range a.patterns[classify.Unknown] {
		unknown = append(unknown, p)
	}
	sort.Slice(unknown, func(i, j int) bool {
		if unknown[i].Stats.Keys != unknown[j].Stats.Keys {
			return unknown[i].Stats.Keys > unknown[j].Stats.Keys
		}
		return unknown[i].Text < unknown[j].Text
	})
	// similar patterns merged (merge.go): unknown now holds the merged ones
	unknown, r.Proposals = proposeUnknown(unknown)
	props := map[string]*Proposal{} // points into r.Proposals
	for i, p := range unknown {
		props[p.Text] = &r.Proposals[i]
	}
	routed := map[string]classify.Bucket{}
	a.each(func(p *patternAgg) { routed[p.Text] = p.Bucket })
	for _, p := range unknown {
		routed[p.Text] = classify.Unknown
	}
	for _, w := range siblingProposals(props, routed) {
		r.Preflight = append(r.Preflight, Verdict{"siblings", StatusWarn, w})
	}
	familyProposals(props, routed)
	guardCache(unknown, r.Proposals)
	unknown, r.Proposals = groupAlike(unknown, r.Proposals)
	for i, p := range unknown {
		props[p.Text] = &r.Proposals[i]
	}
	var acc *classify.Classifier
	if rules := r.acceptedRules(); len(rules) > 0 {
		acc, _ = classify.New(rules)
	}

	type bucketAcc struct {
		rules, all Stats
		props      int64
		patterns   []PatternReport
		parts      []*Stats // every pattern's stats, for the stratified byte estimate
	}
	bs := map[classify.Bucket]*bucketAcc{}
	get := func(b classify.Bucket) *bucketAcc {
		if bs[b] == nil {
			bs[b] = &bucketAcc{}
		}
		return bs[b]
	}
	for b, st := range a.buckets {
		if b != classify.Unknown {
			get(b).rules.merge(st)
			get(b).all.merge(st)
		}
	}
	a.each(func(p *patternAgg) {
		if p.Bucket != classify.Unknown {
			ba := get(p.Bucket)
			ba.patterns = append(ba.patterns, patternReport(p))
			ba.parts = append(ba.parts, &p.Stats)
		}
	})
	for b, o := range a.other {
		pr := patternReport(o)
		pr.Samples = nil
		ba := get(b)
		ba.patterns = append(ba.patterns, pr)
		ba.parts = append(ba.parts, &o.Stats)
		if b == classify.Unknown {
			ba.all.merge(&o.Stats)
		}
	}
	for _, p := range unknown {
		pr := patternReport(p)
		pr.Proposal = props[p.Text]
		dest := classify.Unknown
		// Attribute the pattern where the plan would route its keys: the
		// first accepted proposal matching its first sample name (an
		// earlier, more specific proposal may win over its own).
		if acc != nil && len(p.Samples) > 0 {
			if m := acc.Classify(p.Samples[0], ""); m.Rule != nil {
				dest = m.Bucket
				pr.Rule = m.Rule.String()
			}
		}
		ba := get(dest)
		ba.all.merge(&p.Stats)
		ba.parts = append(ba.parts, &p.Stats)
		if dest != classify.Unknown {
			ba.props += p.Stats.Keys
		} else if len(r.UnknownPatterns) < maxUnknownPatterns {
			r.UnknownPatterns = append(r.UnknownPatterns, pr)
		}
		ba.patterns = append(ba.patterns, pr)
	}
	for _, b := range append(append([]classify.Bucket{}, classify.Buckets...), classify.Unknown) {
		ba := get(b)
		sort.Slice(ba.patterns, func(i, j int) bool { return ba.patterns[i].Keys > ba.patterns[j].Keys })
		if len(ba.patterns) > topPatternsPerBucket {
			ba.patterns = ba.patterns[:topPatternsPerBucket]
		}
		bytes, margin := stratified(ba.parts, &ba.all)
		br := BucketReport{Bucket: string(b), Keys: ba.all.Keys, KeysByRules: ba.rules.Keys, KeysByProposals: ba.props,
			Bytes: bytes, BytesMargin95: margin, Types: typesMap(&ba.all),
			TTL: ttlBands(&ba.all), Encodings: encMap(&ba.all), TopPatterns: ba.patterns}
		if br.TopPatterns == nil {
			br.TopPatterns = []PatternReport{}
		}
		r.Buckets = append(r.Buckets, br)
		if b != classify.Unknown && br.Keys > 0 {
			r.Sizing = append(r.Sizing, advise(br))
		}
	}
	if r.UnknownPatterns == nil {
		r.UnknownPatterns = []PatternReport{}
	}
	if r.Proposals == nil {
		r.Proposals = []Proposal{}
	}
	return r
}

// acceptedRules returns the accepted proposals as rules in plan order: more
// specific globs (more literal characters) first, so that a broad proposal
// never shadows a narrower one.
func (r *Report) acceptedRules() []classify.Rule {
	return proposalRules(r.Proposals, true)
}

// ProposalRules returns the proposals as rules in plan order (see
// acceptedRules): the accepted ones when accepted is true, else the others
// that propose a bucket (written as comments by --plan-out).
func (r *Report) ProposalRules(accepted bool) ([]classify.Rule, []Proposal) {
	var ps []Proposal
	for _, p := range r.Proposals {
		if p.Accepted == accepted && p.Bucket != classify.Unknown {
			ps = append(ps, p)
		}
	}
	sortProposals(ps)
	rules := make([]classify.Rule, len(ps))
	for i, p := range ps {
		rules[i] = p.Rule()
	}
	return rules, ps
}

func proposalRules(all []Proposal, accepted bool) []classify.Rule {
	r := &Report{Proposals: all}
	rules, _ := r.ProposalRules(accepted)
	return rules
}

// sortProposals orders proposal rules most specific first: more literal
// bytes first; among equals, fewer wide placeholders ({id}, {var}, {long},
// {bin}: their regexes also match what {hex}, {n}, {uuid}... stand for),
// so that a bare-{id} rule never takes a bare-{hex} pattern's keys, whatever
// the key counts.
func sortProposals(ps []Proposal) {
	lit := func(g string) int { return len(strings.ReplaceAll(g, "*", "")) }
	wide := func(text string) int {
		n := 0
		for _, ph := range []string{PhID, PhVar, PhLong, PhBinary} {
			n += strings.Count(text, ph)
		}
		if ph, _, ok := bareLen(text); ok && ph == PhID {
			n++ // {id26}: wider than {hex26}
		}
		return n
	}
	sort.SliceStable(ps, func(i, j int) bool {
		if li, lj := lit(ps[i].Glob), lit(ps[j].Glob); li != lj {
			return li > lj
		}
		if wi, wj := wide(ps[i].Pattern), wide(ps[j].Pattern); wi != wj {
			return wi < wj
		}
		return ps[i].Glob < ps[j].Glob
	})
}

// Headroom factors applied to measured bytes for maxmemory. MEMORY USAGE
// counts the keys only: allocator fragmentation, replication and AOF-rewrite
// buffers and growth come on top. A noeviction store that reaches maxmemory
// refuses writes, so those get twice the data; cache evicts, so less.
const (
	headroomCache   = 1.5
	headroomDurable = 2.0
	minMaxMemory    = 64 << 20
)

func advise(b BucketReport) Sizing {
	s := Sizing{Bucket: b.Bucket, DataBytes: b.Bytes}
	h := headroomDurable
	switch b.Bucket {
	case "cache":
		h = headroomCache
		s.MaxMemoryPolicy, s.Persistence = "allkeys-lru", "none (appendonly no, save \"\")"
		s.Note = "Redis Cluster; losing a key costs a slower response"
	case "session":
		s.MaxMemoryPolicy, s.Persistence = "noeviction", "AOF appendfsync everysec"
		s.Note = "master + replica behind Sentinel; a full store refuses logins, so watch used_memory"
	case "queue":
		s.MaxMemoryPolicy, s.Persistence = "noeviction", "AOF appendfsync everysec (or Amazon SQS)"
		s.Note = "queues grow when consumers stall: size for the backlog you must absorb"
	case "ratelimit":
		s.MaxMemoryPolicy, s.Persistence = "noeviction", "optional (counters rebuild within one window)"
		s.Note = "counters expire by themselves; losing them briefly lifts limits"
	}
	s.Headroom = fmt.Sprintf("x%.1f of measured bytes", h)
	if b.Bytes < 0 {
		s.MaxMemory = -1
		s.Note = "bytes unknown (MEMORY USAGE refused); " + s.Note
		return s
	}
	mm := int64(float64(b.Bytes+b.BytesMargin95) * h)
	mm = max(mm, minMaxMemory)
	const mb = 1 << 20
	s.MaxMemory = (mm + mb - 1) / mb * mb
	return s
}

// HumanBytes formats n as B, KiB, MiB, GiB.
func HumanBytes(n int64) string {
	if n < 0 {
		return "?"
	}
	f := float64(n)
	for _, u := range []string{"B", "KiB", "MiB", "GiB", "TiB"} {
		if f < 1024 || u == "TiB" {
			if u == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
		f /= 1024
	}
	return ""
}
