package scan

import (
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
	}
	for _, tt := range tests {
		if got := sigsOf(tt.typ, []byte(tt.v)); !got[tt.sig] {
			t.Errorf("signals of %s %q = %v, want %d", tt.typ, tt.v, got, tt.sig)
		}
	}
	for _, v := range []string{`{"score":1}`, "hello world", "42"} {
		for sig := range sigsOf("list", []byte(v)) {
			if signatures[sig].bucket != "" {
				t.Errorf("%q shows %s", v, signatures[sig].desc)
			}
		}
	}
}
