package scan

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/redisplit/redisplit/classify"
)

// durableOracle says, independently of Propose, whether a pattern has any
// evidence that fits session, queue or ratelimit: a durable word in its
// name, an IP segment, or any durable value signature among the values read
// (even a minority).
func durableOracle(text string, s *Stats) bool {
	ws, phs := patternWords(text)
	for _, w := range ws {
		if sessionWords[w] || queueWords[w] || rateWords[w] {
			return true
		}
	}
	if phs[PhIP] && !urlHostIP(text) { // a URL's host is the server asked, not a client
		return true
	}
	for sig, n := range s.Signals {
		if b := signatures[sig].bucket; n > 0 && b != "" && b != classify.Cache {
			return true
		}
	}
	return false
}

var fuzzNames = []string{"cache:{n}", "views:{hex}", "user:{n}:profile", "{id}", "{uuid}", "sess:{id}", "page:{n}",
	"app:session:{id}", "jobs:{n}", "rl:{ip}", "x:{ip}", "cache:sess:{n}", "memo:{email}_{ip}", "tenant:acme:{n}",
	"fragment:{n}:rl", "keyv:{n}", "{n}:{hex}", ":{n}:cart:{n}", "dash:{code}",
	"/products/{n}?color=red", "/api/{ip}", "/shop/{n}_GET", "GET:/sess/{n}", "beaker_cache:{hex}:session", "cache:{hex}:jobs",
	"{hex40}", "{id26}", "http://{ip}:{n}/api/{n}"}

var fuzzTypes = []string{"string", "hash", "list", "set", "zset", "stream"}
var fuzzTTLs = []int64{-1, 30 * 1000, 59 * minute, 2 * hour, day - minute, 3 * day, 20 * day, 400 * day}

// randomStats builds a pattern's stats with a random shape and random value
// signatures, durable and cache ones mixed.
func randomStats(r *rand.Rand) *Stats {
	s := &Stats{}
	n := 1 + r.Intn(50)
	typ := fuzzTypes[r.Intn(len(fuzzTypes))]
	enc := "raw"
	if typ == "string" && r.Intn(3) == 0 {
		enc = "int"
	}
	for i := 0; i < n; i++ {
		t := typ
		if r.Intn(10) == 0 {
			t = fuzzTypes[r.Intn(len(fuzzTypes))]
		}
		s.add(&KeyInfo{Key: "k", Type: t, PTTL: fuzzTTLs[r.Intn(len(fuzzTTLs))], Encoding: enc, Bytes: 100})
	}
	s.Sniffed = int64(r.Intn(4))
	if r.Intn(3) == 0 {
		s.Sniffed = int64(4 + r.Intn(9)) // a bare id's pattern: up to maxSniffShapes classes read
	}
	for k := int64(0); k < s.Sniffed; k++ {
		if r.Intn(4) > 0 {
			s.Signals[r.Intn(nSignals)]++
		}
	}
	return s
}

// TestProposeNeverCacheWithDurableEvidenceRandom is the safety property over
// names, types, TTLs, encodings and value signatures: whenever any evidence
// fits session, queue or ratelimit, the proposal is never cache; when cache
// evidence and durable evidence are both strong, the pattern is unknown and
// the evidence shows both sides.
func TestProposeNeverCacheWithDurableEvidenceRandom(t *testing.T) {
	r := rand.New(rand.NewSource(13))
	cacheSeen := 0
	for i := 0; i < 20000; i++ {
		name := fuzzNames[r.Intn(len(fuzzNames))]
		s := randomStats(r)
		p := Propose(Pattern{Text: name, Glob: strings.NewReplacer("{n}", "*", "{hex}", "*", "{id}", "*", "{uuid}", "*", "{ip}", "*", "{email}", "*", "{code}", "*").Replace(name)}, s)
		if p.Bucket == classify.Cache {
			cacheSeen++
			if durableOracle(name, s) {
				t.Fatalf("SAFETY: %s with signals %v, %s → cache: %q", name, s.Signals, typeMix(s), p.Evidence)
			}
		}
		if p.Bucket != classify.Unknown && (p.Reason != "") == p.Accepted {
			t.Fatalf("%s: accepted=%v but reason %q", name, p.Accepted, p.Reason)
		}
		if p.Bucket == classify.Unknown && p.Fix == "" && s.Keys > 0 {
			t.Fatalf("%s unknown without a fix", name)
		}
		if strings.HasPrefix(strings.Join(p.Evidence, ""), "conflicting evidence") && p.Bucket != classify.Unknown {
			t.Fatalf("%s: conflicting evidence but bucket %s", name, p.Bucket)
		}
	}
	if cacheSeen == 0 {
		t.Fatal("the generator never produced a cache proposal: the property checked nothing")
	}
}

// TestMergedProposalsNeverCoverDurable: over random sets of similar
// patterns, no accepted cache proposal (merged or not) routes a sample of a
// pattern with durable evidence.
func TestMergedProposalsNeverCoverDurable(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	tenants := []string{"acme", "globex", "initech", "umbrella", "hooli", "stark"}
	shapes := []string{"tenant:%s:dashboard", "%s:profile:{n}", "store:%s:item:{n}", "feed:%s", "/%s/items/{n}"}
	for round := 0; round < 300; round++ {
		var pats []*patternAgg
		for _, sh := range shapes {
			for _, tn := range tenants[:2+r.Intn(len(tenants)-1)] {
				text := strings.Replace(sh, "%s", tn, 1)
				glob := strings.ReplaceAll(text, "{n}", "*")
				pa := &patternAgg{Pattern: Pattern{Text: text, Glob: glob}, Bucket: classify.Unknown, Stats: *randomStats(r)}
				if r.Intn(2) == 0 { // a cache envelope on most values
					pa.Stats.Sniffed, pa.Stats.Signals = 3, [nSignals]int64{}
					pa.Stats.Signals[sigGoRedisCache] = 3
					if r.Intn(5) == 0 {
						pa.Stats.Signals[sigSessionJSON] = 1 // a minority session payload
					}
				}
				pa.Samples = []string{strings.ReplaceAll(text, "{n}", "42")}
				pats = append(pats, pa)
			}
		}
		durable := map[string]bool{}
		for _, p := range pats {
			durable[p.Samples[0]] = durableOracle(p.Text, &p.Stats)
		}
		_, props := proposeUnknown(pats)
		rules := proposalRules(props, true)
		if len(rules) == 0 {
			continue
		}
		cl, err := classify.New(rules)
		if err != nil {
			t.Fatal(err)
		}
		for k, d := range durable {
			if m := cl.Classify(k, ""); d && m.Bucket == classify.Cache {
				t.Fatalf("SAFETY: %s has durable evidence but the accepted %v routes it to cache", k, m.Rule)
			}
		}
	}
}

// FuzzPropose explores names and value signatures beyond the fixed
// generator (`go test -fuzz FuzzPropose ./scan/`); the seeds run always.
func FuzzPropose(f *testing.F) {
	f.Add("cache:sess:1", byte(0), int64(60000), []byte{sigGoRedisCache, sigSessionJSON})
	f.Add("views:42", byte(1), int64(-1), []byte{sigRailsCache})
	f.Add("7f3a9c2e-aaaa-bbbb-cccc-0123456789ab", byte(1), int64(1200000), []byte{sigASPNetHash})
	f.Add("/products/1?color=red", byte(0), int64(600000), []byte{sigHTTPResponse, sigRateFields})
	f.Add("beaker_cache:0a1b2c3d4e5f60718293a4b5c6d7e8f9:session", byte(0), int64(-1), []byte{sigSessionFields, sigClassCache})
	f.Fuzz(func(t *testing.T, key string, typ byte, pttl int64, sigs []byte) {
		s := &Stats{}
		for i := 0; i < 5; i++ {
			s.add(&KeyInfo{Key: key, Type: fuzzTypes[int(typ)%len(fuzzTypes)], PTTL: pttl, Encoding: "raw", Bytes: 10})
		}
		for _, g := range sigs {
			s.Signals[int(g)%nSignals]++
			s.Sniffed++
		}
		pat := Normalize(key)
		if p := Propose(pat, s); p.Bucket == classify.Cache && durableOracle(pat.Text, s) {
			t.Fatalf("SAFETY: %q → cache with durable evidence: %q", key, p.Evidence)
		}
	})
}

// TestGuardCacheDemotesCoveringProposal: a cache proposal whose glob also
// matches the keys of a pattern with durable evidence is not accepted.
func TestGuardCacheDemotesCoveringProposal(t *testing.T) {
	cacheLike := keys(40, "string", hour, "raw")
	cacheLike.Sniffed, cacheLike.Signals[sigGoRedisCache] = 3, 3
	sessionish := keys(10, "string", hour, "raw")
	sessionish.Sniffed, sessionish.Signals[sigGoRedisCache], sessionish.Signals[sigSessionJSON] = 3, 2, 1
	pats := []*patternAgg{
		{Pattern: Normalize("feed:1"), Bucket: classify.Unknown, Stats: *cacheLike, Samples: []string{"feed:1"}},
		{Pattern: Normalize("feed:1:x"), Bucket: classify.Unknown, Stats: *sessionish, Samples: []string{"feed:1:x"}},
	}
	_, props := proposeUnknown(pats)
	for _, p := range props {
		if p.Pattern == "feed:{n}" {
			if p.Accepted || p.Reason == "" {
				t.Fatalf("cache proposal covering feed:{n}:x (durable evidence) is accepted: %+v", p)
			}
			return
		}
	}
	t.Fatalf("no proposal for feed:{n}: %+v", props)
}

// TestValueLayerNeverCacheWithDurableBytes: values that carry cache markers
// (an HTTP response's fields, a cache-named type) and durable ones (session
// fields, a job envelope, rate-limit state, a session-named type), read
// through the real sniffer, never make a cache proposal, whatever the name.
func TestValueLayerNeverCacheWithDurableBytes(t *testing.T) {
	values := []string{
		`{"status":200,"headers":{},"body":"x","_csrf_token":"t"}`,                                                                                          // a session holding a response
		`{"job":"deliver","headers":{},"body":"x","status":"pending","attempts":0}`,                                                                         // a webhook delivery job
		"\x85\xa6status\xcc\xc8\xa7headers\x80\xa4body\xc4\x00\xa6tokens\x05\xablast_refill\x01",                                                            // response fields and a token bucket
		";\xff\x87\x03\x01\x01\x0cSessionCache\x01\xff\x88\x00\x01\x03\x01\x06Status\x01\x04\x00\x01\x06Header\x01\x04\x00\x01\x04Data\x01\x0a\x00\x00\x00", // a gob type named Session...
		"\x80\x04\x95\x30\x00\x8c\x16myapp.cache.RateLimiter\x94\x8c\x06status\x8c\x06header\x8c\x04body",                                                   // cache and rate in one class name
	}
	for _, v := range values {
		s := keys(20, "string", 10*minute, "raw")
		for i := 0; i < 3; i++ {
			s.Sniffed++
			sniffString([]byte(v), 0, true, func(sig int) { s.Signals[sig]++ })
		}
		for _, name := range []string{"/products/{n}?color=red", "{id}", "cache:{n}", "views:{hex}"} {
			p := Propose(Pattern{Text: name, Glob: "*"}, s)
			if p.Bucket == classify.Cache {
				t.Errorf("SAFETY: %q under %s → cache: %q", v, name, p.Evidence)
			}
			if !durableOracle(name, s) {
				t.Errorf("%q under %s: the sniffer found no durable evidence (signals %v)", v, name, s.Signals)
			}
		}
	}
}

// TestSniffedSessionMarkerNeverCache: whatever bytes surround it (random,
// or the start of a cache envelope, an HTTP response, a cache-named gob), a
// session field name within the bytes read makes the real sniffer report a
// durable signal, and Propose never proposes cache for it under any name.
func TestSniffedSessionMarkerNeverCache(t *testing.T) {
	r := rand.New(rand.NewSource(17))
	prefixes := [][]byte{nil, []byte("\x04\bo: ActiveSupport::Cache::Entry"), []byte(`{"value":`), []byte("\x85\xa6status\xcc\xc8\xa7headers\x80\xa4body\xc4\x00"),
		[]byte(";\xff\x87\x03\x01\x01\x0dResponseCache\x01"), []byte("\x80\x05\x95"), []byte("!\x80\x05"),
		[]byte(`{"ct": 1796314618.52, "v": 2}|` + "\x80\x04\x95")}
	for i := 0; i < 5000; i++ {
		v := append([]byte{}, prefixes[r.Intn(len(prefixes))]...)
		for n := r.Intn(40); n > 0; n-- {
			v = append(v, byte(r.Intn(256)))
		}
		marker := sessionNames[r.Intn(len(sessionNames))]
		v = append(v, marker...)
		for n := r.Intn(40); n > 0; n-- {
			v = append(v, byte(r.Intn(256)))
		}
		if len(v) > sniffBytes {
			continue // the marker may lie beyond the bytes read
		}
		s := keys(10, "string", 10*minute, "raw")
		for k := 0; k < 3; k++ {
			s.Sniffed++
			sniffString(v, 0, true, func(sig int) { s.Signals[sig]++ })
		}
		for _, name := range []string{"cache:{n}", "/p/{n}?x=1", "{id}"} {
			if p := Propose(Pattern{Text: name, Glob: "*"}, s); p.Bucket == classify.Cache {
				t.Fatalf("SAFETY: %q (marker %s) under %s → cache: %q", v, marker, name, p.Evidence)
			}
		}
		if !durableOracle("{id}", s) {
			t.Fatalf("%q (marker %s): no durable signal (%v)", v, marker, s.Signals)
		}
	}
}

// TestGuardCacheKeepsUnknownOut: a bare-{id} cache proposal (go-redis/cache
// user keys) whose regex also matches the keys of a bare-{hex} pattern that
// nothing decided (signal-less values with session-like TTLs) is not
// accepted: cache only on positive evidence, and those keys have none.
func TestGuardCacheKeepsUnknownOut(t *testing.T) {
	cacheLike := keys(40, "string", hour, "raw")
	cacheLike.Sniffed, cacheLike.Signals[sigGoRedisCache] = 3, 3
	undecided := keys(30, "string", 2*day, "raw")
	hexKey := "0a0258698b8e6d2c4c9e1b3fe903b980078395f2"
	idKey := "Yq8wX2vN5kLmP0rT3sU6zA9bYq8wX2vN5kLmP0rT" // as long as hexKey: its regex matches hexKey too
	pats := []*patternAgg{
		{Pattern: Normalize(idKey), Bucket: classify.Unknown, Stats: *cacheLike, Samples: []string{idKey}},
		{Pattern: Normalize(hexKey), Bucket: classify.Unknown, Stats: *undecided, Samples: []string{hexKey}},
	}
	if pats[0].Text != "{id40}" || pats[1].Text != "{hex40}" {
		t.Fatalf("patterns %s, %s: want {id40}, {hex40}", pats[0].Text, pats[1].Text)
	}
	_, props := proposeUnknown(pats)
	cl, err := classify.New(proposalRules(props, true))
	if err != nil {
		t.Fatal(err)
	}
	if m := cl.Classify(hexKey, "string"); m.Bucket == classify.Cache {
		t.Fatalf("SAFETY: %s (no evidence) routed to cache by %v: %+v", hexKey, m.Rule, props)
	}
	for _, p := range props {
		if p.Pattern == "{id40}" && (p.Accepted || p.Reason == "") {
			t.Fatalf("bare {id} cache proposal covering {hex} accepted: %+v", p)
		}
	}
}
