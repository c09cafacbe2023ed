package scan_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/scan"
	"github.com/redisplit/redisplit/store"
	"github.com/redisplit/redisplit/topology/topotest"
)

// TestEvidenceLayer runs the real scan on keys whose names say nothing:
// Spring Session hashes, express-session strings and job lists under
// application names. The evidence layer must propose their buckets from
// field names, values and items; read at most 3 keys per pattern over the
// whole scan; and, for a user refused GETRANGE or HRANDFIELD (managed
// Redis), degrade to HSCAN or to no values, saying so, never failing.
func TestEvidenceLayer(t *testing.T) {
	srv := topotest.Standalone(t)
	admin := topotest.Client(t, srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pipe := admin.Pipeline()
	for i := 0; i < 300; i++ {
		k := fmt.Sprintf("acct:%d:state", i)
		pipe.HSet(ctx, k, "creationTime", 1764063720000, "lastAccessedTime", 1764063720000, "maxInactiveInterval", 1800, "sessionAttr:user", "\xac\xed\x00\x05t\x00\x05alice")
		pipe.Expire(ctx, k, 30*time.Minute)
		pipe.Set(ctx, fmt.Sprintf("blob:%d", i), `{"cookie":{"originalMaxAge":86400000,"httpOnly":true,"path":"/"},"user":`+strconv.Itoa(i)+`}`, 24*time.Hour)
		pipe.RPush(ctx, fmt.Sprintf("mailer:%d", i), `{"class":"Mailer","args":[1],"jid":"`+strconv.Itoa(i)+`","enqueued_at":1764063720.1}`)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, user string) *scan.Report {
		t.Helper()
		opt := &redis.Options{Addr: srv.Addr(), DisableIdentity: true}
		if user != "" {
			opt.Username, opt.Password = user, "pw"
		}
		c := redis.NewClient(opt)
		defer c.Close()
		cl, _, err := classify.Router(nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := scan.Run(ctx, c, cl, scan.Options{Count: 50, Workers: 4})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	proposal := func(r *scan.Report, pattern string) scan.Proposal {
		for _, p := range r.Proposals {
			for _, x := range strings.Split(p.Pattern, " | ") {
				if x == pattern {
					return p
				}
			}
		}
		t.Fatalf("no proposal for %s in %+v", pattern, r.Proposals)
		return scan.Proposal{}
	}
	calls := func() map[string]int64 {
		info, err := admin.Info(ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for k, v := range store.ParseInfo(info) {
			if name, ok := strings.CutPrefix(k, "cmdstat_"); ok {
				c, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
				out[name], _ = strconv.ParseInt(c, 10, 64)
			}
		}
		return out
	}
	want := map[string]classify.Bucket{"acct:{n}:state": classify.Session, "blob:{n}": classify.Session, "mailer:{n}": classify.Queue}

	t.Run("all reads allowed: buckets from values and fields, reads bounded per pattern", func(t *testing.T) {
		before := calls()
		r := run(t, "")
		after := calls()
		for pat, b := range want {
			if p := proposal(r, pat); p.Bucket != b || !p.Accepted || p.DecidedBy == "" {
				t.Errorf("%s: %s accepted=%v decided by %q; want %s: %q", pat, p.Bucket, p.Accepted, p.DecidedBy, b, p.Evidence)
			}
		}
		// 3 patterns, at most 3 keys each, whatever the 4 workers see
		for cmd, max := range map[string]int64{"getrange": 2 * 3, "hrandfield": 3, "lindex": 3} {
			if n := after[cmd] - before[cmd]; n > max || n == 0 {
				t.Errorf("%s called %d times for 900 keys, want 1..%d", cmd, n, max)
			}
		}
	})
	t.Run("GETRANGE and HRANDFIELD refused: HSCAN for hashes, strings without values, said", func(t *testing.T) {
		if err := admin.Do(ctx, "acl", "setuser", "managed", "on", ">pw", "~*", "&*", "+@all", "-getrange", "-hrandfield").Err(); err != nil {
			t.Fatal(err)
		}
		r := run(t, "managed")
		if p := proposal(r, "acct:{n}:state"); p.Bucket != classify.Session || !p.Accepted {
			t.Errorf("hashes via HSCAN: %s %v %q", p.Bucket, p.Accepted, p.Evidence)
		}
		if p := proposal(r, "blob:{n}"); p.Bucket != classify.Unknown || p.Reason == "" || p.Fix == "" {
			t.Errorf("strings without their values: %s %q reason %q fix %q", p.Bucket, p.Evidence, p.Reason, p.Fix)
		}
		var v scan.Verdict
		for _, x := range r.Preflight {
			if x.Check == "value sniffing" {
				v = x
			}
		}
		if !strings.Contains(v.Message, "+getrange") || !strings.Contains(v.Message, "+hrandfield") {
			t.Errorf("value sniffing verdict %+v", v)
		}
	})
	t.Run("every read refused: proposals from names, types and TTLs only", func(t *testing.T) {
		if err := admin.Do(ctx, "acl", "setuser", "bare", "on", ">pw", "~*", "&*", "+@all", "-getrange", "-hrandfield", "-hscan", "-lindex").Err(); err != nil {
			t.Fatal(err)
		}
		r := run(t, "bare")
		for pat := range want {
			if p := proposal(r, pat); p.Bucket == classify.Cache {
				t.Errorf("%s proposed cache without evidence", pat)
			}
		}
		if r.Scanned != 900 {
			t.Errorf("scanned %d keys, want 900", r.Scanned)
		}
	})
}

// TestBareIDsPooled: keys that are bare ids pool several libraries in one
// pattern ({id}); here a few PHP sessions (26-character ids) among many
// signed blobs that show no signature (32-character ids). Each key length
// is read on its own budget, so the sessions' values are always read and
// the pattern is proposed session, whatever order SCAN returns. And a bare
// {hex} pattern (rate-limiter state) keeps its own bucket although the
// {id} rule, whose regex also matches hex, covers more keys: wide
// placeholders order after narrow ones.
func TestBareIDsPooled(t *testing.T) {
	srv := topotest.Standalone(t)
	admin := topotest.Client(t, srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rnd := func(n int, alphabet string, seed int) string {
		b := make([]byte, n)
		x := uint64(seed)*0x9e3779b97f4a7c15 + 1
		for i := range b {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			b[i] = alphabet[x%uint64(len(alphabet))]
		}
		return string(b)
	}
	pipe := admin.Pipeline()
	var phpIDs, hexIDs []string
	for i := 0; i < 20; i++ {
		id := rnd(26, "0123456789abcdefghijklmnopqrstuv", i)
		phpIDs = append(phpIDs, id)
		pipe.Set(ctx, id, `user_id|i:`+strconv.Itoa(i)+`;locale|s:2:"de";`, 24*time.Minute)
	}
	for i := 0; i < 200; i++ {
		pipe.Set(ctx, rnd(32, "abcdefghijklmnopqrstuvwxyz0123456789", 1000+i), "eyJhIjoxfQ:1t2x3y:"+rnd(43, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 5000+i), 14*24*time.Hour)
	}
	for i := 0; i < 30; i++ {
		id := rnd(40, "0123456789abcdef", 9000+i)
		hexIDs = append(hexIDs, id)
		pipe.Set(ctx, id, "\x00\x00\x00\x02\x17+Symfony\\Component\\RateLimiter\\Policy\\Window\x14\x02\x11\x12login-203.0.113.1", time.Minute)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	cl, _, err := classify.Router(nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := scan.Run(ctx, admin, cl, scan.Options{Count: 50, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	rules, _ := r.ProposalRules(true)
	routed, err := classify.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range phpIDs[:3] {
		if m := routed.Classify(k, "string"); m.Bucket != classify.Session {
			t.Errorf("PHP session %s → %s, want session (proposals %+v)", k, m.Bucket, r.Proposals)
		}
	}
	for _, k := range hexIDs[:3] {
		if m := routed.Classify(k, "string"); m.Bucket != classify.RateLimit {
			t.Errorf("rate-limit state %s → %s by %v, want ratelimit", k, m.Bucket, m.Rule)
		}
	}
}

// TestBareIDsTwoWriters: two writers of 40-hex ids in one database (rate-
// limiter state and a minority of pickled cache entries, of another TTL
// and size) share {hex40}; its reads are spread over the TTL bands and size
// classes of its keys, so the minority's values are read whatever order
// SCAN returns, and the pattern is unknown, with both sides, not routed to
// either bucket.
func TestBareIDsTwoWriters(t *testing.T) {
	srv := topotest.Standalone(t)
	admin := topotest.Client(t, srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hexID := func(i int) string { return fmt.Sprintf("%040x", uint64(i)*0x9e3779b97f4a7c15) }
	pipe := admin.Pipeline()
	for i := 0; i < 90; i++ {
		pipe.Set(ctx, hexID(i), "\x00\x00\x00\x02\x17+Symfony\\Component\\RateLimiter\\Policy\\Window\x14\x02\x11\x12login-203.0.113.1"+strings.Repeat("x", 40), 2*time.Hour)
	}
	for i := 90; i < 100; i++ {
		pipe.Set(ctx, hexID(i), "\x80\x04\x95\x1a\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x03sku\x94\x8c\x08SKU-0001\x94s.", 10*time.Minute)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	cl, _, err := classify.Router(nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := scan.Run(ctx, admin, cl, scan.Options{Count: 20, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range r.Proposals {
		if !strings.Contains(p.Pattern, "{hex40}") {
			continue
		}
		found = true
		if p.Bucket != classify.Unknown || p.Accepted || !strings.Contains(p.Reason, "two serialisations") || !strings.Contains(p.Reason, "ratelimit") {
			t.Fatalf("{hex40} of two writers: %s accepted=%v reason %q", p.Bucket, p.Accepted, p.Reason)
		}
	}
	if !found {
		t.Fatalf("no {hex40} proposal: %+v", r.Proposals)
	}
}
