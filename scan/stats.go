package scan

import (
	"math"
	"sort"

	"github.com/redisplit/redisplit/classify"
)

// TTLBands are the TTL histogram bands of the report (RedisInsight's, plus
// "no expiry"). The lower bound of each band is inclusive.
var TTLBands = []string{"no expiry", "<1h", "1-4h", "4-12h", "12-24h", "1-7d", "7d-1mo", ">1mo"}

const (
	bandNone = iota
	bandLT1h
	band1to4h
	band4to12h
	band12to24h
	band1to7d
	band7dto1mo
	bandGT1mo
	nBands
)

// ttlBand returns the band of a PTTL in milliseconds (-1: no expiry).
func ttlBand(pttl int64) int {
	const h = int64(3600 * 1000)
	switch {
	case pttl < 0:
		return bandNone
	case pttl < h:
		return bandLT1h
	case pttl < 4*h:
		return band1to4h
	case pttl < 12*h:
		return band4to12h
	case pttl < 24*h:
		return band12to24h
	case pttl < 7*24*h:
		return band1to7d
	case pttl < 30*24*h:
		return band7dto1mo
	default:
		return bandGT1mo
	}
}

// Types are the Redis types counted in the report; "other" holds module types.
var Types = []string{"string", "hash", "list", "set", "zset", "stream", "other"}

const (
	tString = iota
	tHash
	tList
	tSet
	tZSet
	tStream
	tOther
	nTypes
)

func typeIndex(t string) int {
	switch t {
	case "string":
		return tString
	case "hash":
		return tHash
	case "list":
		return tList
	case "set":
		return tSet
	case "zset":
		return tZSet
	case "stream":
		return tStream
	}
	return tOther
}

// Encodings are the OBJECT ENCODING values counted; "other" holds the rest.
var Encodings = []string{"int", "embstr", "raw", "listpack", "ziplist", "quicklist", "hashtable", "intset", "skiplist", "stream", "other"}

const encInt = 0

func encIndex(e string) int {
	for i, x := range Encodings[:len(Encodings)-1] {
		if x == e {
			return i
		}
	}
	return len(Encodings) - 1
}

// Stats aggregates keys: counts by type, TTL band and encoding, and memory.
// Bytes are summed over the keys that got MEMORY USAGE (Measured); the
// estimate for all Keys is extrapolated from them.
type Stats struct {
	Keys      int64
	Types     [nTypes]int64
	TTL       [nBands]int64
	Enc       [11]int64
	Measured  int64   // keys with a MEMORY USAGE figure
	Bytes     int64   // sum of MEMORY USAGE over Measured keys
	bytesSq   float64 // sum of squares, for the sampling error
	TTLMinMs  int64   // smallest PTTL among keys with one (0 if none)
	TTLMaxMs  int64
	withTTL   int64
	IntKeys   int64 // OBJECT ENCODING int
	ShortTTL  int64 // TTL ≤ 1 day
	StrOrHash int64
	// Sniffed counts the keys whose first value bytes were read (a few per
	// unknown pattern); Signals counts what they showed, by signal.
	Sniffed int64
	Signals [nSignals]int64
}

// KeyInfo is what one pipeline round learns about a key.
type KeyInfo struct {
	Key      string
	Type     string // "string", "hash", ...
	PTTL     int64  // ms; -1 when the key has no expiry
	Encoding string // "" when not known
	Bytes    int64  // -1 when not measured (sampling, no permission)
}

func (s *Stats) add(k *KeyInfo) {
	s.Keys++
	ti := typeIndex(k.Type)
	s.Types[ti]++
	if ti == tString || ti == tHash {
		s.StrOrHash++
	}
	s.TTL[ttlBand(k.PTTL)]++
	if k.PTTL >= 0 {
		if s.withTTL == 0 || k.PTTL < s.TTLMinMs {
			s.TTLMinMs = k.PTTL
		}
		if k.PTTL > s.TTLMaxMs {
			s.TTLMaxMs = k.PTTL
		}
		s.withTTL++
		if k.PTTL <= 24*3600*1000 {
			s.ShortTTL++
		}
	}
	if k.Encoding != "" {
		ei := encIndex(k.Encoding)
		s.Enc[ei]++
		if ei == encInt {
			s.IntKeys++
		}
	}
	if k.Bytes >= 0 {
		s.Measured++
		s.Bytes += k.Bytes
		s.bytesSq += float64(k.Bytes) * float64(k.Bytes)
	}
}

func (s *Stats) merge(o *Stats) {
	if o.withTTL > 0 && (s.withTTL == 0 || o.TTLMinMs < s.TTLMinMs) {
		s.TTLMinMs = o.TTLMinMs
	}
	s.TTLMaxMs = max(s.TTLMaxMs, o.TTLMaxMs)
	s.withTTL += o.withTTL
	s.Keys += o.Keys
	for i := range s.Types {
		s.Types[i] += o.Types[i]
	}
	for i := range s.TTL {
		s.TTL[i] += o.TTL[i]
	}
	for i := range s.Enc {
		s.Enc[i] += o.Enc[i]
	}
	s.Measured += o.Measured
	s.Bytes += o.Bytes
	s.bytesSq += o.bytesSq
	s.IntKeys += o.IntKeys
	s.ShortTTL += o.ShortTTL
	s.StrOrHash += o.StrOrHash
	s.Sniffed += o.Sniffed
	for i := range s.Signals {
		s.Signals[i] += o.Signals[i]
	}
}

// EstimatedBytes extrapolates the measured bytes to all keys (exact when
// every key was measured; -1 when none was).
func (s *Stats) EstimatedBytes() int64 {
	if s.Measured == 0 {
		if s.Keys == 0 {
			return 0
		}
		return -1
	}
	if s.Measured == s.Keys {
		return s.Bytes
	}
	return int64(math.Round(float64(s.Bytes) * float64(s.Keys) / float64(s.Measured)))
}

// Margin95 is the half-width of the 95% confidence interval of
// EstimatedBytes under simple random sampling without replacement (0 when
// every key was measured).
func (s *Stats) Margin95() int64 {
	n, N := float64(s.Measured), float64(s.Keys)
	if s.Measured < 2 || s.Measured >= s.Keys {
		return 0
	}
	mean := float64(s.Bytes) / n
	variance := (s.bytesSq - n*mean*mean) / (n - 1)
	if variance < 0 {
		variance = 0
	}
	return int64(math.Ceil(1.96 * N * math.Sqrt((1-n/N)*variance/n)))
}

// variance returns the sample variance of the measured bytes (n-1
// denominator); ok is false with fewer than two measured keys.
func (s *Stats) variance() (v float64, ok bool) {
	if s.Measured < 2 {
		return 0, false
	}
	n := float64(s.Measured)
	mean := float64(s.Bytes) / n
	v = (s.bytesSq - n*mean*mean) / (n - 1)
	return max(v, 0), true
}

// stratified estimates the bytes of a bucket from its parts (its patterns):
// each part's measured bytes are extrapolated within the part, and the 95%
// margin combines the parts' variances (stratified sampling). A part with
// fewer than two measured keys borrows the whole bucket's mean and variance.
// It returns -1, 0 when no key of the bucket was measured.
func stratified(parts []*Stats, all *Stats) (bytes, margin95 int64) {
	if all.Keys == 0 {
		return 0, 0
	}
	if all.Measured == 0 {
		return -1, 0
	}
	allMean := float64(all.Bytes) / float64(all.Measured)
	allVar, _ := all.variance()
	var est, varSum float64
	for _, p := range parts {
		N, n := float64(p.Keys), float64(p.Measured)
		switch v, ok := p.variance(); {
		case p.Keys == 0:
		case p.Measured == p.Keys:
			est += float64(p.Bytes)
		case ok:
			est += float64(p.Bytes) * N / n
			varSum += N * N * (1 - n/N) * v / n
		case p.Measured == 1:
			est += float64(p.Bytes) * N
			varSum += N * N * (1 - n/N) * allVar
		default:
			est += N * allMean
			varSum += N * N * allVar
		}
	}
	return int64(math.Round(est)), int64(math.Ceil(1.96 * math.Sqrt(varSum)))
}

// maxSamples is the number of sample key names kept per pattern; names
// longer than maxSampleLen bytes are not kept as samples.
const (
	maxSamples   = 5
	maxSampleLen = 1024
)

// OtherPattern names the entry into which patterns beyond the cap are folded.
const OtherPattern = "(other patterns)"

// patternAgg is one pattern's aggregate within a bucket.
type patternAgg struct {
	Pattern
	Bucket  classify.Bucket
	Rule    string // the deciding rule (Rule.String()), "" for unknown
	Stats   Stats
	Samples []string
	// sniffDone: the evidence layer has read all it may of this pattern
	// (evidence.go); this worker's copy stops asking. sniffSpent: for a
	// pattern that is one placeholder, the classes of keys whose reads are
	// spent (bit shapeOf).
	sniffDone  bool
	sniffSpent uint64
}

// aggregator accumulates per-bucket and per-pattern statistics with bounded
// memory: at most maxPatterns distinct patterns are tracked, the rest are
// folded into one OtherPattern entry per bucket. Not safe for concurrent use;
// each worker owns one and they are merged at the end.
type aggregator struct {
	maxPatterns int
	buckets     map[classify.Bucket]*Stats
	patterns    map[classify.Bucket]map[string]*patternAgg // by bucket, by pattern text
	nPatterns   int
	other       map[classify.Bucket]*patternAgg
	folded      int64 // keys folded into other entries
}

func newAggregator(maxPatterns int) *aggregator {
	return &aggregator{maxPatterns: maxPatterns, buckets: map[classify.Bucket]*Stats{},
		patterns: map[classify.Bucket]map[string]*patternAgg{}, other: map[classify.Bucket]*patternAgg{}}
}

func (a *aggregator) bucket(b classify.Bucket) *Stats {
	s := a.buckets[b]
	if s == nil {
		s = &Stats{}
		a.buckets[b] = s
	}
	return s
}

func (a *aggregator) otherOf(b classify.Bucket) *patternAgg {
	o := a.other[b]
	if o == nil {
		o = &patternAgg{Pattern: Pattern{Text: OtherPattern}, Bucket: b}
		a.other[b] = o
	}
	return o
}

func (a *aggregator) byBucket(b classify.Bucket) map[string]*patternAgg {
	m := a.patterns[b]
	if m == nil {
		m = map[string]*patternAgg{}
		a.patterns[b] = m
	}
	return m
}

// each calls fn for every tracked pattern.
func (a *aggregator) each(fn func(*patternAgg)) {
	for _, m := range a.patterns {
		for _, p := range m {
			fn(p)
		}
	}
}

// add counts key k, routed to bucket b by rule, whose pattern is in n, and
// returns the pattern's entry (nil when folded into "other").
func (a *aggregator) add(k *KeyInfo, b classify.Bucket, rule string, n *normaliser) *patternAgg {
	a.bucket(b).add(k)
	m := a.byBucket(b)
	pa := m[string(n.text)]
	if pa == nil {
		if a.nPatterns >= a.maxPatterns {
			a.folded++
			a.otherOf(b).Stats.add(k)
			return nil
		}
		pa = &patternAgg{Pattern: n.pattern(), Bucket: b, Rule: rule}
		m[pa.Text] = pa
		a.nPatterns++
	}
	pa.Stats.add(k)
	if len(pa.Samples) < maxSamples && len(k.Key) <= maxSampleLen {
		pa.Samples = append(pa.Samples, k.Key)
	}
	return pa
}

// merge folds o into a, keeping the cap: the patterns with the most keys win.
func (a *aggregator) merge(o *aggregator) {
	for b, s := range o.buckets {
		a.bucket(b).merge(s)
	}
	a.folded += o.folded
	for b, x := range o.other {
		a.otherOf(b).Stats.merge(&x.Stats)
	}
	// Existing entries absorb matching ones; new ones compete for the cap by size.
	var fresh []*patternAgg
	o.each(func(x *patternAgg) {
		if pa := a.byBucket(x.Bucket)[x.Text]; pa != nil {
			pa.Stats.merge(&x.Stats)
			for _, s := range x.Samples {
				if len(pa.Samples) < maxSamples {
					pa.Samples = append(pa.Samples, s)
				}
			}
			return
		}
		fresh = append(fresh, x)
	})
	sort.Slice(fresh, func(i, j int) bool { return fresh[i].Stats.Keys > fresh[j].Stats.Keys })
	for _, x := range fresh {
		if a.nPatterns < a.maxPatterns {
			a.byBucket(x.Bucket)[x.Text] = x
			a.nPatterns++
			continue
		}
		a.folded += x.Stats.Keys
		a.otherOf(x.Bucket).Stats.merge(&x.Stats)
	}
}
