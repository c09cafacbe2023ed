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
