package scan

import (
	"strings"
	"testing"

	"github.com/redisplit/redisplit/classify"
)

// keys builds Stats from n keys of one shape.
func keys(n int, typ string, pttlMs int64, enc string) *Stats {
	s := &Stats{}
	for i := 0; i < n; i++ {
		s.add(&KeyInfo{Key: "k", Type: typ, PTTL: pttlMs, Encoding: enc, Bytes: 100})
	}
	return s
}

const (
	minute = int64(60 * 1000)
	hour   = 60 * minute
	day    = 24 * hour
)

func TestPropose(t *testing.T) {
	tests := []struct {
		name     string
		key      string
		stats    *Stats
		bucket   classify.Bucket
		accepted bool
	}{
		{"session hash with day TTL", "sess:00000000002a", keys(100, "hash", day-minute, "listpack"), classify.Session, true},
		{"session string with 30m TTL", "app:session:Xk3pQ9zR2mN8vB5cL1wT7yH4", keys(100, "string", 30*minute, "embstr"), classify.Session, true},
		{"session word but zset without TTL (analytics)", "session:1234", keys(100, "zset", -1, "listpack"), classify.Unknown, false},
		{"rate limit counters by IP", "myapp:throttle:10.0.0.1", keys(100, "string", minute, "int"), classify.RateLimit, true},
		{"rl counters", "rl:login:42", keys(100, "string", day-minute, "int"), classify.RateLimit, true},
		{"IP counter without name evidence", "x:10.0.0.1", keys(100, "string", minute, "int"), classify.RateLimit, true},
		{"stats counters with long TTL are not rate limits", "stat:processed:2024-01-02", keys(100, "string", 5*365*day, "int"), classify.Unknown, false},
		{"job lists", "queue:jobs:7", keys(100, "list", -1, "quicklist"), classify.Queue, true},
		{"bare lists without TTL: weak queue", "lb:7", keys(100, "list", -1, "quicklist"), classify.Unknown, false},
		{"cache strings with TTL", "cache:api:v1:item:9", keys(100, "string", day-minute, "raw"), classify.Cache, true},
		{"cache word, lists: not cache", "cache:queue:9", keys(100, "list", -1, "quicklist"), classify.Queue, true},
		{"cache word and session word: conflict, unknown", "cache:session:9", keys(100, "string", hour, "raw"), classify.Unknown, false},
		{"cache word and rl counters: conflict, unknown", "cache:rl:10.1.1.1", keys(100, "string", minute, "int"), classify.Unknown, false},
		{"no evidence at all", "user:42:tags", keys(100, "set", -1, "listpack"), classify.Unknown, false},
		{"strings with TTL but no name: not cache", "x:7", keys(100, "string", hour, "raw"), classify.Unknown, false},
		{"lock keys are discounted", "jobs:lock:7", keys(100, "string", minute, "embstr"), classify.Queue, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Propose(Normalize(tt.key), tt.stats)
			if p.Bucket != tt.bucket || p.Accepted != tt.accepted {
				t.Fatalf("Propose(%s) = %s accepted=%v conf %.2f, want %s accepted=%v; evidence %q",
					tt.key, p.Bucket, p.Accepted, p.Confidence, tt.bucket, tt.accepted, p.Evidence)
			}
			if p.Bucket != classify.Unknown && len(p.Evidence) == 0 {
				t.Fatal("a proposal without evidence")
			}
			if p.Accepted != (p.Confidence >= AcceptConfidence) {
				t.Fatalf("accepted=%v with confidence %.2f", p.Accepted, p.Confidence)
			}
		})
	}
}

// TestProposeNeverCacheWithDurableEvidence: whatever the stats, a pattern
// whose name carries session, queue or rate-limit words is never cache.
func TestProposeNeverCacheWithDurableEvidence(t *testing.T) {
	names := []string{"cache:sess:1", "cache:jobs:1", "cache:throttle:1", "page:queue:1", "views:ratelimit:1", "cache:10.0.0.1"}
	shapes := []*Stats{
		keys(10, "string", hour, "raw"), keys(10, "string", -1, "embstr"), keys(10, "hash", day, "listpack"),
		keys(10, "string", minute, "int"), keys(10, "list", -1, "quicklist"),
	}
	for _, n := range names {
		for _, s := range shapes {
			if p := Propose(Normalize(n), s); p.Bucket == classify.Cache {
				t.Errorf("%s %s proposed cache: %q", n, typeMix(s), p.Evidence)
			}
		}
	}
}

func withSignal(s *Stats, sig int, of, hits int64) *Stats {
	s.Sniffed, s.Signals[sig] = of, hits
	return s
}

// TestProposeValueSignals: value signals alone (no name hint) are evidence.
func TestProposeValueSignals(t *testing.T) {
	tests := []struct {
		name   string
		key    string
		stats  *Stats
		bucket classify.Bucket
	}{
		{"express session JSON under a bare id", "Xk3pQ9zR2mN8vB5cL1wT7yH4jF6gD0", withSignal(keys(50, "string", day, "raw"), sigSessionJSON, 3, 3), classify.Session},
		{"PHP session payloads", "app:{id}", withSignal(keys(50, "string", 20*minute, "raw"), sigPHPSession, 3, 2), classify.Session},
		{"JSON jobs in lists", "mail:pending", withSignal(keys(5, "list", -1, "quicklist"), sigJobJSON, 3, 3), classify.Queue},
		{"a minority of signals is not evidence", "x:{n}", withSignal(keys(50, "string", day, "raw"), sigSessionJSON, 3, 1), classify.Unknown},
		// scored by now with TTLs under 1 h, but the members are messages:
		// a message channel (Django Channels' layer), not a sliding-window log
		{"sorted sets of messages scored by now", "asgiemails", withSignal(withSignal(keys(1, "zset", minute, "listpack"), sigTimeZSet, 1, 1), sigMessageMember, 1, 1), classify.Queue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Propose(Normalize(tt.key), tt.stats)
			if p.Bucket != tt.bucket {
				t.Fatalf("%s: %s (%.2f), want %s; %q", tt.key, p.Bucket, p.Confidence, tt.bucket, p.Evidence)
			}
		})
	}
}

// TestProposeMessageZSetIsNoLog: members that are messages rule the
// sliding-window reading of now-scored sorted sets out (no rate-limit
// evidence left to halve the queue's).
func TestProposeMessageZSetIsNoLog(t *testing.T) {
	s := withSignal(withSignal(keys(1, "zset", minute, "listpack"), sigTimeZSet, 1, 1), sigMessageMember, 1, 1)
	p := Propose(Normalize("asgiemails"), s)
	if p.Bucket != classify.Queue || p.Confidence < 0.5 {
		t.Fatalf("%s %.2f, want queue ≥ 0.50; %q", p.Bucket, p.Confidence, p.Evidence)
	}
}

// sigsOf returns the signals a value shows, as scan's reads would see it:
// a string's first sniffBytes and its last byte, or an item.
func sigsOf(typ string, v []byte) map[int]bool {
	got := map[int]bool{}
	add := func(s int) { got[s] = true }
	switch typ {
	case "string":
		head, tail := v, byte(0)
		if len(v) > sniffBytes {
			head = v[:sniffBytes]
		}
		if len(v) > 0 {
			tail = v[len(v)-1]
		}
		sniffString(head, tail, len(v) < sniffBytes, add)
	default:
		sniffItem(typ, v, add)
	}
	return got
}

func TestSniff(t *testing.T) {
	tests := []struct {
		typ, v string
		sig    int
	}{
		{"string", `{"cookie":{"originalMaxAge":86400000,"expires":"2026-`, sigSessionJSON},
		{"string", `user_id|i:42;csrf|s:32:"abc";`, sigPHPSession},
		{"string", `a:3:{s:6:"_token";s:40:"`, sigPHPSession},
		{"list", `{"jid":"b4a577edbccf1d805744efa9","class":"HardJob","args":[1]}`, sigJobJSON},
		{"list", `{"uuid":"x","displayName":"App\\Jobs\\Mail","job":"Illuminate\\Queue"}`, sigJobJSON},
		{"list", `{"body":"W10=","headers":{"task":"t"},"properties":{},"content-type":"application/json"}`, sigJobJSON},
		{"string", `{"value":1,"expires":null}`, sigKeyvJSON},
		{"string", "1764063720123456789", sigCellTAT},
		{"string", `O:42:"Symfony\Component\RateLimiter\Policy\Window":3:{s:2:"id";`, sigClassRate},
		{"string", "\xac\xed\x00\x05sr\x00\x1ecom.example.session.UserSession\x00", sigClassSession},
		{"string", "\x80\x04\x95\x20\x00\x8c\x0fmyapp.jobs.Mail\x94", sigClassQueue},
		// the bytes below are what the libraries wrote in classify/libtest
		// gin-cache: gob of its ResponseCache{Status, Header, Data}
		{"string", ";\xff\x87\x03\x01\x01\rResponseCache\x01\xff\x88\x00\x01\x03\x01\x06Status\x01\x04\x00\x01\x06Header\x01\xff\x8c\x00\x01\x04Data\x01\n\x00\x00\x00", sigHTTPResponse},
		{"string", ";\xff\x87\x03\x01\x01\rResponseCache\x01\xff\x88\x00\x01\x03\x01\x06Status\x01\x04\x00\x01\x06Header\x01\xff\x8c\x00\x01\x04Data\x01\n\x00\x00\x00", sigClassCache},
		// Fiber's cache middleware: msgpack item {body, ctype, cencoding, status, exp, headers}
		{"string", "\x87\xa4body\xc4\x00\xa5ctype\xc4\x10application/json\xa9cencoding\xc4\x00\xa6status\xd1\x00\xc8\xa3exp\xcek\x11l\xae\xa7headers\x80\xa7heapidx\x00", sigHTTPResponse},
		// Fiber's limiter middleware: msgpack {currHits, prevHits, exp}
		{"string", "\x83\xa8currHits\x01\xa8prevHits\x00\xa3exp\xcek\x11l\xae", sigRateFields},
		// Fiber's session data: gob of map[string]interface{}, unnamed and named
		{"string", "\x0e\xff\x85\x04\x01\x02\xff\x86\x00\x01\x0c\x01\x10\x00\x00\x18\xff\x86\x00\x01\x07user_id\x06string\x0c\x03\x00\x013", sigGorillaGob},
		{"string", "'\xff\x85\x04\x01\x01\x17map[string]interface {}\x01\xff\x86\x00\x01\x0c\x01\x10\x00\x00\x18\xff\x86\x00\x01\x07user_id\x06string\x0c\x03\x00\x013", sigGorillaGob},
		// Beaker's session record (pickle of its dict)
		{"string", "\x80\x04\x95\x68\x00\x00\x00\x00\x00\x00\x00\x7d\x94\x28\x8c\x07\x5f\x64\x6f\x6d\x61\x69\x6e\x94\x4e\x8c\x05\x5f\x70\x61\x74\x68\x94\x8c\x01\x2f\x94\x8c\x0e\x5f\x61\x63\x63\x65\x73\x73\x65\x64\x5f\x74\x69\x6d\x65\x94\x47\x41\xda\x4c\x0a\x12\x20\x00\x00", sigSessionFields},
		{"string", `{"remaining":3,"reset":1764763720}`, sigRateFields},
	}
	for _, tt := range tests {
		if got := sigsOf(tt.typ, []byte(tt.v)); !got[tt.sig] {
			t.Errorf("signals of %s %q = %v, want %d", tt.typ, tt.v, got, tt.sig)
		}
	}
	// formats whose field names say nothing: no bucket; a gob struct with a
	// cache word in its type name but no response fields only says cache
	for _, v := range []string{`{"score":1}`, "hello world", "42", `{"status":"ok","data":[1]}`, "\x82\xa2id\x01\xa4name\xa4lamp",
		";\xff\x87\x03\x01\x01\x07Product\x01\xff\x88\x00\x01\x02\x01\x02ID\x01\x04\x00\x01\x04Name\x01\x0c\x00\x00\x00",
		// field names are not type names: a Listing{Page, Limit} says nothing
		";\xff\x87\x03\x01\x01\x07Listing\x01\xff\x88\x00\x01\x02\x01\x04Page\x01\x04\x00\x01\x05Limit\x01\x04\x00\x00\x00"} {
		for _, typ := range []string{"list", "string"} {
			for sig := range sigsOf(typ, []byte(v)) {
				if signatures[sig].bucket != "" {
					t.Errorf("%s %q shows %s", typ, v, signatures[sig].desc)
				}
			}
		}
	}
}

// TestProposeRequestURI: a key that is a request URI, with TTLs, is an HTTP
// response cache; not when its values are counters or anything durable, and
// not without TTLs.
func TestProposeRequestURI(t *testing.T) {
	for _, text := range []string{"/products/{n}?color=red", "/shop/{n}_GET_body", "GET:/api/v1/items/{n}", "https://example.com/{n}"} {
		p := Propose(Normalize(strings.ReplaceAll(text, "{n}", "7")), keys(20, "string", 10*minute, "raw"))
		if p.Bucket != classify.Cache || !p.Accepted {
			t.Errorf("%s: %s %.2f accepted=%v, want accepted cache: %q", text, p.Bucket, p.Confidence, p.Accepted, p.Evidence)
		}
	}
	counters := Propose(Normalize("/api/orders/7"), keys(20, "string", minute, "int"))
	if counters.Bucket == classify.Cache {
		t.Errorf("per-path counters → cache: %q", counters.Evidence)
	}
	limited := keys(20, "string", minute, "raw")
	limited.Sniffed, limited.Signals[sigRateFields] = 3, 3
	if p := Propose(Normalize("/api/orders/7"), limited); p.Bucket == classify.Cache {
		t.Errorf("per-path rate-limit state → cache: %q", p.Evidence)
	}
	if p := Propose(Normalize("/products/7?color=red"), keys(20, "string", -1, "raw")); p.Accepted {
		t.Errorf("request URIs without TTL accepted as %s: %q", p.Bucket, p.Evidence)
	}
	for _, text := range []string{"user:7", "a/b", "sess:/x", "/7"} {
		if requestURI(Normalize(text).Text) {
			t.Errorf("%s taken for a request URI", text)
		}
	}
}

// TestProposeDurableValuesUnderCacheName: a session kept through a cache
// layer (Beaker's beaker_cache:{id}:session, no TTL) is a session: the
// values decide over the name; a cache envelope under a session name stays
// a conflict.
func TestProposeDurableValuesUnderCacheName(t *testing.T) {
	s := keys(25, "string", -1, "raw")
	s.Sniffed, s.Signals[sigSessionFields], s.Signals[sigPickle] = 3, 3, 3
	p := Propose(Normalize("beaker_cache:41c1b32ddd9f45658609e3d217b43104:session"), s)
	if p.Bucket != classify.Session || !p.Accepted {
		t.Fatalf("%s %.2f, want accepted session: %q", p.Bucket, p.Confidence, p.Evidence)
	}
	named := keys(25, "string", -1, "raw") // the name only: both sides are names
	if p := Propose(Normalize("cache:sess:7"), named); p.Bucket != classify.Unknown {
		t.Errorf("cache:sess with no values read: %s, want unknown", p.Bucket)
	}
	env := keys(25, "string", hour, "raw")
	env.Sniffed, env.Signals[sigGoRedisCache] = 3, 3
	if p := Propose(Normalize("sess:7"), env); p.Bucket == classify.Cache || p.Bucket == classify.Session && p.Accepted && p.Reason == "" && !strings.Contains(strings.Join(p.Evidence, " "), "cache") {
		t.Errorf("cache envelope under a session name: %s %q", p.Bucket, p.Evidence)
	}
}

// TestProposeMixedWriters: a bare id's pattern whose values are of two
// serialisations (two writers of ids of one length) is unknown, with both
// sides in the reason and a fix, never cache; one serialisation decides as
// before.
func TestProposeMixedWriters(t *testing.T) {
	mixed := keys(55, "string", 59*minute, "raw")
	mixed.Sniffed = 12
	mixed.Signals[sigIgbinary], mixed.Signals[sigClassRate], mixed.Signals[sigPickle] = 9, 9, 3
	p := Propose(Normalize("0a0258698b8e6d2c4c9e1b3fe903b980078395f2"), mixed)
	if p.Bucket != classify.Unknown || p.Accepted || !strings.Contains(p.Reason, "two serialisations") || !strings.Contains(p.Reason, "ratelimit") || p.Fix == "" {
		t.Fatalf("mixed writers: %s accepted=%v reason %q fix %q", p.Bucket, p.Accepted, p.Reason, p.Fix)
	}
	if !p.durable {
		t.Fatal("mixed writers: not marked durable (a cache proposal could cover them)")
	}
	if !strings.HasSuffix(p.Fix, "bucket: one of ratelimit|cache|session|queue}") {
		t.Fatalf("mixed writers: fix %q, want the durable side first", p.Fix)
	}
	one := keys(55, "string", 59*minute, "raw")
	one.Sniffed = 12
	one.Signals[sigIgbinary], one.Signals[sigClassRate] = 12, 12
	if p := Propose(Normalize("0a0258698b8e6d2c4c9e1b3fe903b980078395f2"), one); p.Bucket != classify.RateLimit {
		t.Fatalf("one writer: %s, want ratelimit (%q)", p.Bucket, p.Evidence)
	}
	named := keys(55, "string", 59*minute, "raw") // a literal in the name: one application's keys, formats may differ
	named.Sniffed = 12
	named.Signals[sigPickle], named.Signals[sigMsgpack], named.Signals[sigCachelibPickle] = 6, 6, 6
	if p := Propose(Normalize("forecast:1234"), named); strings.Contains(p.Reason, "two serialisations") {
		t.Fatalf("a named pattern read as two writers: %q", p.Reason)
	}
}

// TestProposeURLHostIsNoClient: an IP that is a URL's host (an HTTP client
// cache keying by URL) is not a rate limiter's client.
func TestProposeURLHostIsNoClient(t *testing.T) {
	s := keys(30, "string", 10*minute, "raw")
	p := Propose(Normalize("http://127.0.0.1:8080/api/products/7?lang=en"), s)
	if p.Bucket == classify.RateLimit || strings.Contains(strings.Join(p.Evidence, ";"), "IP-shaped") {
		t.Fatalf("URL host read as a client: %s %q", p.Bucket, p.Evidence)
	}
	if p := Propose(Normalize("/api/203.0.113.7/limit"), s); !strings.Contains(strings.Join(p.Evidence, ";"), "IP-shaped") {
		t.Fatalf("a client IP in a path lost its evidence: %q", p.Evidence)
	}
}

// TestGroupAlikeReviewItems: accepted proposals decided by one value
// signature are one review item whatever their prefixes; bare ids of every
// length are one family; unknown patterns of one family group by their
// coarse reason and keep each one's own; different buckets never group.
func TestGroupAlikeReviewItems(t *testing.T) {
	mk := func(text string, b classify.Bucket, decided, reason string) (*patternAgg, Proposal) {
		pa := &patternAgg{Pattern: Pattern{Text: text, Glob: "*"}, Stats: *keys(10, "string", hour, "raw")}
		p := Proposal{Pattern: text, Glob: "*", Regex: regexOf(text), Bucket: b, DecidedBy: decided, Reason: reason, Keys: 10, Merged: 1}
		if b != classify.Unknown {
			p.Confidence, p.Accepted = 0.8, true
		} else {
			p.Fix = "x"
		}
		return pa, p
	}
	var pats []*patternAgg
	var props []Proposal
	for _, c := range []struct {
		text, decided, reason string
		b                     classify.Bucket
	}{
		{"user:{n}:profile", "values: go-redis/cache envelope, 3 of 3 read", "", classify.Cache},
		{"product:{code}", "values: go-redis/cache envelope, 8 of 8 read", "", classify.Cache},
		{"{id26}", "values: PHP session encoding, 3 of 3 read", "", classify.Session},
		{"sess:{id}", "values: PHP session encoding, 3 of 3 read", "", classify.Session},
		{"{hex40}", "", "no convincing evidence: serialised values (Python pickle)", classify.Unknown},
		{"{hex32}", "", "no convincing evidence: the name, types, TTLs and values read fit no bucket", classify.Unknown},
	} {
		pa, p := mk(c.text, c.b, c.decided, c.reason)
		pats, props = append(pats, pa), append(props, p)
	}
	_, out := groupAlike(pats, props)
	if len(out) != 3 {
		for _, p := range out {
			t.Logf("%s %s %q", p.Bucket, p.Pattern, p.Reason)
		}
		t.Fatalf("%d review items, want 3 (go-redis/cache's, the PHP sessions', the bare unknowns)", len(out))
	}
	for _, p := range out {
		switch p.Bucket {
		case classify.Unknown:
			if p.Reason != "no convincing evidence (each pattern's own reason in the evidence)" || !strings.Contains(strings.Join(p.Evidence, ";"), "{hex40}: no convincing evidence: serialised values") {
				t.Errorf("grouped unknowns: reason %q evidence %q", p.Reason, p.Evidence)
			}
		case classify.Session, classify.Cache:
			if p.Merged != 2 {
				t.Errorf("%s: %d members, want 2 (%s)", p.Bucket, p.Merged, p.Pattern)
			}
		}
	}
}
