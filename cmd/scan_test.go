package cmd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/scan"
	"github.com/redisplit/redisplit/topology"
	"github.com/redisplit/redisplit/topology/topotest"
)

// scanEmptyConfig returns an empty config file: the default redisplit.yaml is
// optional, and tests must not read a stray one.
func scanEmptyConfig(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "redisplit.yaml")
	if err := os.WriteFile(p, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// scanCLI runs `redisplit scan args...` in-process with in-memory streams
// (not a terminal).
func scanCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	app := &App{In: strings.NewReader(""), Out: &out, Err: &errb}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hasConfig := false
	for _, a := range args {
		hasConfig = hasConfig || a == "--config"
	}
	if !hasConfig {
		args = append([]string{"--config", scanEmptyConfig(t)}, args...)
	}
	code := Run(ctx, app, append([]string{"scan"}, args...))
	return code, out.String(), errb.String()
}

func scanJSON(t *testing.T, args ...string) (*scan.Report, string) {
	t.Helper()
	code, out, errs := scanCLI(t, append(args, "-o", "json", "--no-progress")...)
	if code != 0 {
		t.Fatalf("scan exit %d: %s", code, errs)
	}
	var r scan.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	return &r, errs
}

func bucketOf(r *scan.Report, b string) scan.BucketReport {
	for _, x := range r.Buckets {
		if x.Bucket == b {
			return x
		}
	}
	return scan.BucketReport{}
}

func verdict(r *scan.Report, check string) scan.Verdict {
	for _, v := range r.Preflight {
		if v.Check == check {
			return v
		}
	}
	return scan.Verdict{}
}

// writeMixed writes a keyspace mixing framework keys (routed by presets),
// application keys the heuristics must route (myapp:throttle:{ip} counters),
// keys with no evidence (analytics zsets) and binary key names. It returns
// the number of keys and the names that must never be routed to cache.
func writeMixed(t *testing.T, c *redis.Client) (int, map[string]bool) {
	t.Helper()
	ctx := context.Background()
	durable := map[string]bool{}
	p := c.Pipeline()
	n := 0
	for i := 0; i < 20; i++ {
		k := fmt.Sprintf("sess:Xk3pQ9zR2mN8vB5cL1wT7yH4jF6gD%02d", i) // connect-redis
		p.Set(ctx, k, `{"cookie":{"originalMaxAge":86400000}}`, 24*time.Hour)
		durable[k] = true
		k = fmt.Sprintf("rl:10.0.0.%d", i) // express-rate-limit
		p.Set(ctx, k, i, time.Minute)
		durable[k] = true
		k = fmt.Sprintf("keyv:user:%d", i) // keyv cache
		p.Set(ctx, k, `{"value":1}`, time.Hour)
		n += 3
	}
	for _, k := range []string{"queue:default", "bull:emails:wait"} {
		p.RPush(ctx, k, `{"jid":"1","class":"Mailer","args":[]}`)
		durable[k] = true
		n++
	}
	for i := 0; i < 30; i++ {
		k := fmt.Sprintf("myapp:throttle:192.168.%d.%d", i/10, i)
		p.Set(ctx, k, i%7, 2*time.Minute)
		durable[k] = true
		p.ZAdd(ctx, fmt.Sprintf("analytics:%d:events", i), redis.Z{Score: 1, Member: "view"})
		n += 2
	}
	for i := 0; i < 5; i++ {
		p.Set(ctx, fmt.Sprintf("bin:\xff\x00\x01%c", 'a'+i), "x", 0)
		n++
	}
	for i := 0; i < 10; i++ { // express sessions under a prefix no preset knows: only the values tell
		k := fmt.Sprintf("web:Qm9vN2xZ3kR8vTq1Ws5Xe4Jd0Hb6%02d", i)
		p.Set(ctx, k, `{"cookie":{"originalMaxAge":86400000,"httpOnly":true,"path":"/"},"user":7}`, 24*time.Hour)
		durable[k] = true
		n++
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	return n, durable
}

func readKeyLines(t *testing.T, path string) []scan.KeyLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []scan.KeyLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kl scan.KeyLine
		if err := json.Unmarshal(sc.Bytes(), &kl); err != nil {
			t.Fatalf("keys-out line %q: %v", sc.Text(), err)
		}
		out = append(out, kl)
	}
	return out
}

func lineName(kl scan.KeyLine) string {
	if kl.KeyB64 != "" {
		b, _ := base64.StdEncoding.DecodeString(kl.KeyB64)
		return string(b)
	}
	return kl.Key
}

// TestScan runs every scan scenario against one real redis-server.
func TestScan(t *testing.T) {
	srv := topotest.Standalone(t)
	admin := topotest.Client(t, srv.Addr())
	ctx := context.Background()
	// db 3 holds the mixed keyspace every subtest may read; others use their own db.
	db3 := redis.NewClient(&redis.Options{Addr: srv.Addr(), DB: 3, DisableIdentity: true})
	defer db3.Close()
	n, durable := writeMixed(t, db3)

	t.Run("routes, proposes, writes plan and keys on db 3", func(t *testing.T) {
		dir := t.TempDir()
		plan, keys := filepath.Join(dir, "plan.yaml"), filepath.Join(dir, "keys.jsonl")
		r, _ := scanJSON(t, "--legacy", "redis://"+srv.Addr()+"/3", "--plan-out", plan, "--keys-out", keys, "--count", "7")

		if r.SchemaVersion != scan.SchemaVersion || r.Legacy.DB != 3 || r.DBSize != int64(n) || r.Scanned != int64(n) {
			t.Fatalf("schema %d db %d dbsize %d scanned %d, want db 3 and %d keys", r.SchemaVersion, r.Legacy.DB, r.DBSize, r.Scanned, n)
		}
		var sum int64
		for _, b := range r.Buckets {
			sum += b.Keys
		}
		if sum != r.Scanned {
			t.Fatalf("buckets sum to %d, scanned %d", sum, r.Scanned)
		}
		if got := bucketOf(r, "ratelimit"); got.Keys != 50 || got.KeysByProposals != 30 {
			t.Fatalf("ratelimit: %d keys, %d by proposals; want 50 and 30", got.Keys, got.KeysByProposals)
		}
		if got := bucketOf(r, "unknown"); got.Keys != 35 {
			t.Fatalf("unknown: %d keys, want 35 (analytics zsets and binary names)", got.Keys)
		}
		if !r.Sampling.Exact || bucketOf(r, "session").Bytes <= 0 {
			t.Fatalf("bytes not measured exactly: %+v", r.Sampling)
		}
		var accepted []scan.Proposal
		for _, p := range r.Proposals {
			if p.Accepted {
				accepted = append(accepted, p)
			}
		}
		want := map[string]classify.Bucket{"myapp:throttle:*": classify.RateLimit, "web:*": classify.Session}
		for _, p := range accepted {
			if want[p.Glob] != p.Bucket || len(p.Evidence) == 0 {
				t.Fatalf("unexpected accepted proposal %+v", p)
			}
			delete(want, p.Glob)
		}
		if len(want) > 0 {
			t.Fatalf("missing accepted proposals %v; accepted %+v", want, accepted)
		}
		if got := bucketOf(r, "session"); got.KeysByProposals != 10 {
			t.Fatalf("session by proposals: %d, want the 10 web: sessions", got.KeysByProposals)
		}
		foundBin := false
		for _, p := range r.UnknownPatterns {
			for _, s := range p.Samples {
				foundBin = foundBin || s.KeyB64 != ""
			}
		}
		if !foundBin {
			t.Fatalf("binary names missing from the unknown samples: %+v", r.UnknownPatterns)
		}

		// keys-out: one line per key; the plan routes every key exactly as
		// keys-out says; nothing durable is cache.
		lines := readKeyLines(t, keys)
		if len(lines) != n {
			t.Fatalf("keys-out has %d lines, want %d", len(lines), n)
		}
		p, err := classify.LoadPlan(plan)
		if err != nil {
			t.Fatal(err)
		}
		cl, err := p.Classifier()
		if err != nil {
			t.Fatal(err)
		}
		b64 := 0
		for _, kl := range lines {
			name := lineName(kl)
			if kl.KeyB64 != "" {
				b64++
			}
			m := cl.Classify(name, kl.Type)
			if string(m.Bucket) != kl.Bucket {
				t.Errorf("%q: keys-out says %s, the written plan routes it to %s", name, kl.Bucket, m.Bucket)
			}
			if (m.Rule == nil) != (kl.Rule == "") {
				t.Errorf("%q: rule %q vs plan %v", name, kl.Rule, m.Rule)
			}
			if durable[name] && kl.Bucket == "cache" {
				t.Errorf("%q (session/queue/ratelimit) routed to cache", name)
			}
			if kl.Bytes == nil || *kl.Bytes <= 0 || kl.Type == "none" || kl.TTLMs < -1 {
				t.Errorf("%q: bad facts %+v", name, kl)
			}
		}
		if b64 != 5 {
			t.Errorf("%d key_b64 lines, want the 5 binary names", b64)
		}
		if p.Hash() != r.PlanHash {
			t.Errorf("report plan hash %s, written plan %s", r.PlanHash, p.Hash())
		}

		// Scanning again with the written plan routes the proposals as rules
		// and writes the same plan back: the plan is a fixed point.
		plan2 := filepath.Join(dir, "plan2.yaml")
		r2, _ := scanJSON(t, "--legacy", "redis://"+srv.Addr()+"/3", "--plan", plan, "--plan-out", plan2)
		if r2.PlanHash != r.PlanHash || bucketOf(r2, "ratelimit").KeysByRules != 50 || bucketOf(r2, "ratelimit").KeysByProposals != 0 {
			t.Fatalf("rescan with the plan: hash %s (was %s), ratelimit %+v", r2.PlanHash, r.PlanHash, bucketOf(r2, "ratelimit"))
		}
	})

	t.Run("text report and plain progress", func(t *testing.T) {
		code, out, errs := scanCLI(t, "--legacy", "redis://"+srv.Addr()+"/3")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		for _, want := range []string{"bucket", "ratelimit", "== unknown patterns", "analytics:{n}:events", "ACCEPTED", "myapp:throttle:*", "== preflight", "== sizing advice", "allkeys-lru", "noeviction"} {
			if !strings.Contains(out, want) {
				t.Errorf("text report lacks %q:\n%s", want, out)
			}
		}
		if !strings.Contains(errs, fmt.Sprintf("scan: %d/%d (100%%)", n, n)) {
			t.Errorf("no plain progress line on stderr: %q", errs)
		}
		_, _, errs = scanCLI(t, "--legacy", "redis://"+srv.Addr()+"/3", "--no-progress")
		if errs != "" {
			t.Errorf("--no-progress printed %q", errs)
		}
	})

	t.Run("sampling extrapolates and states its margin", func(t *testing.T) {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DB: 4, DisableIdentity: true})
		defer c.Close()
		p := c.Pipeline()
		for i := 0; i < 4000; i++ {
			p.Set(ctx, fmt.Sprintf("keyv:item:%d", i), strings.Repeat("v", 100+i%200), time.Hour)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		full, _ := scanJSON(t, "--legacy", "redis://"+srv.Addr()+"/4")
		r, _ := scanJSON(t, "--legacy", "redis://"+srv.Addr()+"/4", "--sample", "10")
		exact, est := bucketOf(full, "cache").Bytes, bucketOf(r, "cache")
		if r.Sampling.Exact || r.Sampling.MeasuredKeys < 200 || r.Sampling.MeasuredKeys > 600 || est.BytesMargin95 <= 0 {
			t.Fatalf("sampling %+v margin %d", r.Sampling, est.BytesMargin95)
		}
		if d := est.Bytes - exact; d > 3*est.BytesMargin95 || -d > 3*est.BytesMargin95 {
			t.Fatalf("estimate %d ± %d, exact %d", est.Bytes, est.BytesMargin95, exact)
		}
		again, _ := scanJSON(t, "--legacy", "redis://"+srv.Addr()+"/4", "--sample", "10")
		if again.Sampling.MeasuredKeys != r.Sampling.MeasuredKeys || bucketOf(again, "cache").Bytes != est.Bytes {
			t.Fatal("the sample is not deterministic")
		}
		// The same setting from the config file and from the environment.
		cfg := filepath.Join(t.TempDir(), "redisplit.yaml")
		os.WriteFile(cfg, []byte("legacy:\n  url: redis://"+srv.Addr()+"/4\nscan:\n  sample: 10\n  count: 50\n"), 0o600)
		fromFile, _ := scanJSON(t, "--config", cfg)
		t.Setenv("REDISPLIT_SCAN_SAMPLE", "10")
		fromEnv, _ := scanJSON(t, "--legacy", "redis://"+srv.Addr()+"/4")
		if fromFile.Sampling.Percent != 10 || fromEnv.Sampling.Percent != 10 || fromFile.Sampling.MeasuredKeys != r.Sampling.MeasuredKeys {
			t.Fatalf("scan.sample from file %+v, from env %+v", fromFile.Sampling, fromEnv.Sampling)
		}
	})

	t.Run("max-ops caps the command rate", func(t *testing.T) {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DB: 7, DisableIdentity: true})
		defer c.Close()
		p := c.Pipeline()
		for i := 0; i < 500; i++ {
			p.Set(ctx, fmt.Sprintf("keyv:slow:%d", i), "v", time.Hour)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		// 500 keys × 3 commands (PTTL, OBJECT ENCODING, MEMORY USAGE; the
		// encoding embstr tells the type) + SCANs at 500/s with a burst of
		// 500: at least two seconds whatever the machine's speed.
		r, _ := scanJSON(t, "--legacy", "redis://"+srv.Addr()+"/7", "--max-ops", "500", "--count", "100")
		if r.Scanned != 500 || r.DurationMs < 1500 {
			t.Fatalf("%d keys in %d ms with --max-ops 500", r.Scanned, r.DurationMs)
		}
	})

	t.Run("keys expiring between SCAN and TYPE", func(t *testing.T) {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DB: 5, DisableIdentity: true})
		defer c.Close()
		p := c.Pipeline()
		for i := 0; i < 3000; i++ {
			p.Set(ctx, fmt.Sprintf("keyv:stable:%d", i), "v", time.Hour)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		// Keys with 1-5 ms TTLs appear all the time while the scan runs.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := c.Pipeline()
				for j := 0; j < 200; j++ {
					p.Set(ctx, fmt.Sprintf("rl:flash:%d:%d", i, j), 1, time.Duration(1+j%5)*time.Millisecond)
				}
				p.Exec(ctx)
			}
		}()
		keys := filepath.Join(t.TempDir(), "keys.jsonl")
		r, _ := scanJSON(t, "--legacy", "redis://"+srv.Addr()+"/5", "--count", "50", "--max-ops", "40000", "--keys-out", keys)
		close(stop)
		wg.Wait()
		var sum int64
		for _, b := range r.Buckets {
			sum += b.Keys
		}
		lines := readKeyLines(t, keys)
		if sum != r.Scanned || int64(len(lines)) != r.Scanned || r.Scanned < 3000 {
			t.Fatalf("buckets %d, keys-out %d, scanned %d (want ≥ 3000 and all equal)", sum, len(lines), r.Scanned)
		}
		for _, kl := range lines {
			if kl.Type == "none" || kl.TTLMs < -1 || kl.Bytes == nil {
				t.Fatalf("misreported key %+v", kl)
			}
		}
		if r.ExpiredDuringScan == 0 {
			t.Fatal("no key expired between SCAN and TYPE although 1-5 ms keys were written throughout")
		}
		t.Logf("scanned %d, expired during scan %d", r.Scanned, r.ExpiredDuringScan)
	})

	t.Run("every type and encoding gets the type TYPE answers", func(t *testing.T) {
		// The scan takes the type from OBJECT ENCODING where only one type
		// has that encoding and asks TYPE otherwise; without +object it
		// asks TYPE for every key. Both must give TYPE's answer.
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DB: 9, DisableIdentity: true})
		defer c.Close()
		big := strings.Repeat("x", 100)
		p := c.Pipeline()
		p.Set(ctx, "t:int", 42, 0)
		p.Set(ctx, "t:embstr", "short", 0)
		p.Set(ctx, "t:raw", big, 0)
		p.HSet(ctx, "t:hash:listpack", "f", "v")
		p.HSet(ctx, "t:hash:hashtable", "f", big)
		p.SAdd(ctx, "t:set:intset", 1, 2, 3)
		p.SAdd(ctx, "t:set:hashtable", "a", big)
		p.ZAdd(ctx, "t:zset:listpack", redis.Z{Score: 1, Member: "a"})
		p.ZAdd(ctx, "t:zset:skiplist", redis.Z{Score: 1, Member: big})
		p.RPush(ctx, "t:list", "a", "b")
		p.XAdd(ctx, &redis.XAddArgs{Stream: "t:stream", Values: []any{"f", "v"}})
		cmds, err := p.Exec(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := admin.Do(ctx, "acl", "setuser", "noobject", "on", ">pw9", "~*", "&*", "+@all", "-object").Err(); err != nil {
			t.Fatal(err)
		}
		for _, user := range []string{"", "noobject:pw9@"} {
			keys := filepath.Join(t.TempDir(), "keys.jsonl")
			r, _ := scanJSON(t, "--legacy", "redis://"+user+srv.Addr()+"/9", "--keys-out", keys)
			lines := readKeyLines(t, keys)
			if int(r.Scanned) != len(cmds) || len(lines) != len(cmds) {
				t.Fatalf("user %q: scanned %d, keys-out %d, want %d", user, r.Scanned, len(lines), len(cmds))
			}
			for _, kl := range lines {
				want, err := c.Type(ctx, kl.Key).Result()
				if err != nil {
					t.Fatal(err)
				}
				if kl.Type != want {
					t.Errorf("user %q: %s has type %q in keys-out, TYPE says %q", user, kl.Key, kl.Type, want)
				}
			}
		}
	})

	t.Run("sibling patterns: timers and locks", func(t *testing.T) {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DB: 11, DisableIdentity: true})
		defer c.Close()
		p := c.Pipeline()
		for i := 0; i < 40; i++ {
			// a limiter with a custom name: counter + window timer, nothing else
			p.Set(ctx, fmt.Sprintf("acme:u:%d", i), i, time.Minute)
			p.Set(ctx, fmt.Sprintf("acme:u:%d:timer", i), 1767225600+i, time.Minute)
			// orders go to session by a rule that does not match their locks
			p.Set(ctx, fmt.Sprintf("orders:%d", i), "o", time.Hour)
			p.Set(ctx, fmt.Sprintf("orders:%d:lock", i), "1", 30*time.Second)
			// a counter a rule sends to cache, with a timer sibling
			p.Set(ctx, fmt.Sprintf("widgets:%d", i), i, time.Minute)
			p.Set(ctx, fmt.Sprintf("widgets:%d:timer", i), 1767225600+i, time.Minute)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(t.TempDir(), "redisplit.yaml")
		rules := "rules:\n  - {regex: '^orders:[0-9]+$', bucket: session}\n  - {regex: '^widgets:[0-9]+$', bucket: cache}\n"
		if err := os.WriteFile(cfg, []byte(rules), 0o600); err != nil {
			t.Fatal(err)
		}
		r, _ := scanJSON(t, "--config", cfg, "--legacy", "redis://"+srv.Addr()+"/11")
		want := map[string]classify.Bucket{
			"acme:u:{n}":        classify.RateLimit,
			"acme:u:{n}:timer":  classify.RateLimit,
			"orders:{n}:lock":   classify.Session,
			"widgets:{n}:timer": classify.RateLimit,
		}
		got := map[string]classify.Bucket{}
		for _, pr := range r.Proposals {
			if pr.Accepted {
				for _, pat := range strings.Split(pr.Pattern, " | ") { // grouped proposals list their patterns
					got[pat] = pr.Bucket
				}
			}
		}
		for pat, b := range want {
			if got[pat] != b {
				t.Errorf("pattern %s: accepted proposal %q, want %s (proposals %+v)", pat, got[pat], b, r.Proposals)
			}
		}
		if bucketOf(r, "unknown").Keys != 0 {
			t.Errorf("%d keys left unknown", bucketOf(r, "unknown").Keys)
		}
		if v := verdict(r, "siblings"); v.Status != scan.StatusWarn || !strings.Contains(v.Message, "widgets:{n}") {
			t.Errorf("no warning about the cache-routed counter with a :timer sibling: %+v", v)
		}
	})

	t.Run("ACL user without +memory: degraded, named", func(t *testing.T) {
		if err := admin.Do(ctx, "acl", "setuser", "nomem", "on", ">pw1", "~*", "&*", "+@all", "-memory", "-getrange").Err(); err != nil {
			t.Fatal(err)
		}
		r, _ := scanJSON(t, "--legacy", "redis://nomem:pw1@"+srv.Addr()+"/3")
		if r.Sampling.MemoryUsage || bucketOf(r, "session").Bytes != -1 || r.Scanned == 0 {
			t.Fatalf("sampling %+v session bytes %d", r.Sampling, bucketOf(r, "session").Bytes)
		}
		v := verdict(r, "memory usage")
		if v.Status != scan.StatusWarn || !strings.Contains(v.Message, "+memory|usage") {
			t.Fatalf("memory verdict %+v", v)
		}
		if p := verdict(r, "permissions"); !strings.Contains(p.Message, "MEMORY USAGE") {
			t.Fatalf("permissions verdict %+v", p)
		}
		if v := verdict(r, "value sniffing"); !strings.Contains(v.Message, "+getrange") {
			t.Fatalf("value sniffing verdict %+v", v)
		}
	})

	t.Run("ACL user without +config: verdict, not a crash", func(t *testing.T) {
		if err := admin.Do(ctx, "acl", "setuser", "noconf", "on", ">pw2", "~*", "&*", "+@all", "-config", "-acl").Err(); err != nil {
			t.Fatal(err)
		}
		r, _ := scanJSON(t, "--legacy", "redis://noconf:pw2@"+srv.Addr()+"/3")
		v := verdict(r, "notify-keyspace-events")
		if v.Status != scan.StatusWarn || !strings.Contains(v.Message, "+config|get") {
			t.Fatalf("notify-keyspace-events verdict %+v", v)
		}
		if p := verdict(r, "permissions"); !strings.Contains(p.Message, "CONFIG GET") {
			t.Fatalf("permissions verdict (probed without ACL DRYRUN) %+v", p)
		}
	})

	t.Run("ACL user without +scan: fails naming the command", func(t *testing.T) {
		if err := admin.Do(ctx, "acl", "setuser", "noscan", "on", ">pw3", "~*", "+@all", "-scan").Err(); err != nil {
			t.Fatal(err)
		}
		code, _, errs := scanCLI(t, "--legacy", "redis://noscan:pw3@"+srv.Addr(), "--no-progress")
		if code != ExitRuntime || !strings.Contains(errs, "SCAN") || !strings.Contains(errs, "+scan") {
			t.Fatalf("exit %d: %s", code, errs)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		code, out, errs := scanCLI(t, "--legacy", "redis://nomem:Sup3rSecretWrong@"+srv.Addr(), "--no-progress")
		if code != ExitRuntime || !strings.Contains(errs, "authentication failed") || !strings.Contains(errs, srv.Addr()) {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if strings.Contains(errs+out, "Sup3rSecretWrong") {
			t.Fatalf("password printed: %s", errs)
		}
	})

	t.Run("replica", func(t *testing.T) {
		host, port, _ := strings.Cut(srv.Addr(), ":")
		rep := topotest.Standalone(t, "--replicaof", host, port)
		rc := topotest.Client(t, rep.Addr())
		deadline := time.Now().Add(20 * time.Second)
		for {
			info, _ := rc.Info(ctx, "replication").Result()
			if strings.Contains(info, "master_link_status:up") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica never synced: %s", info)
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		r, _ := scanJSON(t, "--legacy", "redis://"+rep.Addr()+"/3")
		if r.Legacy.Role != "slave" || verdict(r, "replica").Status != scan.StatusInfo || r.Scanned != int64(n) {
			t.Fatalf("role %s, replica verdict %+v, scanned %d", r.Legacy.Role, verdict(r, "replica"), r.Scanned)
		}
	})

	t.Run("legacy already evicting is critical", func(t *testing.T) {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DB: 6, DisableIdentity: true})
		defer c.Close()
		if err := admin.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err(); err != nil {
			t.Fatal(err)
		}
		if err := admin.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil { // forces evictions on the next write
			t.Fatal(err)
		}
		c.Set(ctx, "keyv:evictme", strings.Repeat("x", 1000), 0)
		if err := admin.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
			t.Fatal(err)
		}
		defer admin.ConfigSet(ctx, "maxmemory-policy", "noeviction")
		code, out, errs := scanCLI(t, "--legacy", "redis://"+srv.Addr()+"/6", "--no-progress")
		if code != 0 || !strings.Contains(out, "!!! LEGACY IS ALREADY EVICTING") {
			t.Fatalf("exit %d: %s\n%s", code, errs, out)
		}
	})
}

// TestScanBadInput covers the inputs that must fail cleanly before any scan.
func TestScanBadInput(t *testing.T) {
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badYAML, []byte("legacy:\n  url: [unclosed\n"), 0o600)
	badRule := filepath.Join(dir, "rule.yaml")
	os.WriteFile(badRule, []byte("legacy:\n  url: redis://127.0.0.1:1\nrules:\n  - {glob: 'a:*', bucket: cache}\n  - {bucket: session}\n"), 0o600)
	badBucket := filepath.Join(dir, "bucket.yaml")
	os.WriteFile(badBucket, []byte("rules:\n  - {glob: 'a:*', bucket: cache}\n  - {glob: 'b:*', bucket: cahce}\n"), 0o600)
	badRegex := filepath.Join(dir, "regex.yaml")
	os.WriteFile(badRegex, []byte("rules:\n  - {regex: '(', bucket: cache}\n"), 0o600)
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"unreachable", []string{"--legacy", "redis://127.0.0.1:1"}, ExitRuntime, []string{"unreachable", "127.0.0.1:1"}},
		{"malformed YAML", []string{"--config", badYAML}, ExitUsage, []string{"malformed config", "bad.yaml"}},
		{"rule without matcher", []string{"--config", badRule}, ExitUsage, []string{"rules[2]", "exactly one of glob, prefix or regex"}},
		{"rule with a bad bucket", []string{"--config", badBucket}, ExitUsage, []string{"rules[2]", "cahce"}},
		{"rule with a bad regex", []string{"--config", badRegex}, ExitUsage, []string{"rules[1]", "invalid regex"}},
		{"sample out of range", []string{"--legacy", "redis://127.0.0.1:1", "--sample", "150"}, ExitUsage, []string{"--sample", "0.01 to 100"}},
		{"unwritable plan-out", []string{"--legacy", "redis://127.0.0.1:1", "--plan-out", filepath.Join(dir, "no", "such", "plan.yaml")}, ExitUsage, []string{"--plan-out", "cannot write"}},
		{"missing plan", []string{"--legacy", "redis://127.0.0.1:1", "--plan", filepath.Join(dir, "nope.yaml")}, ExitUsage, []string{"nope.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := scanCLI(t, append([]string{"--no-progress"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q: %s", w, errs)
				}
			}
		})
	}
}

// TestScanClusterLegacy: a legacy in cluster mode is reported as unsupported
// (a fail verdict naming the node), and the node's own keys are scanned.
func TestScanClusterLegacy(t *testing.T) {
	cl := topotest.Cluster(t)
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), DisableIdentity: true})
	defer cc.Close()
	for i := 0; i < 60; i++ {
		if err := cc.Set(ctx, fmt.Sprintf("keyv:%d", i), "v", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	node := cl.Nodes[0].Addr()
	own, err := topotest.Client(t, node).DBSize(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	r, _ := scanJSON(t, "--legacy", "redis://"+node)
	v := verdict(r, "cluster")
	if !r.Legacy.Cluster || v.Status != scan.StatusFail || !strings.Contains(v.Message, node) || r.Scanned != own {
		t.Fatalf("cluster %v verdict %+v scanned %d, node holds %d", r.Legacy.Cluster, v, r.Scanned, own)
	}
}

// TestScanLegacyRestarts: a restart of legacy mid-scan (SCAN cursors do not
// survive it) never yields a silently wrong report: either the scan fails
// naming legacy, or the report carries a fail verdict.
func TestScanLegacyRestarts(t *testing.T) {
	srv := topotest.Standalone(t)
	ctx := context.Background()
	c := topotest.Client(t, srv.Addr())
	p := c.Pipeline()
	for i := 0; i < 3000; i++ {
		p.Set(ctx, fmt.Sprintf("keyv:r:%d", i), "v", time.Hour)
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(1500 * time.Millisecond)
		srv.Kill()
		srv.Start(ctx)
	}()
	// 3000 keys × 4 commands at 3000/s: about 4 s, restarted after 1.5 s.
	code, out, errs := scanCLI(t, "--legacy", "redis://"+srv.Addr(), "--max-ops", "3000", "--count", "100", "-o", "json", "--no-progress")
	<-done
	if code != 0 {
		if !strings.Contains(errs, srv.Addr()) {
			t.Fatalf("exit %d without naming legacy: %s", code, errs)
		}
		t.Logf("scan failed cleanly: %s", errs)
		return
	}
	var r scan.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if v := verdict(&r, "restart"); v.Status != scan.StatusFail {
		t.Fatalf("scan of a restarted legacy succeeded without a restart verdict: %d keys scanned, verdicts %+v", r.Scanned, r.Preflight)
	}
	t.Logf("restart verdict after %d keys", r.Scanned)
}

// writeTestCA writes a throw-away CA and a server certificate for 127.0.0.1
// into dir and returns the paths.
func writeTestCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redisplit test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caTmpl, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}

// TestScanTLS scans over rediss:// with a CA file and a password, end to end
// (both the general client and the per-key pipeline speak TLS), and checks
// that a wrong CA is a TLS failure.
func TestScanTLS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeTestCA(t, dir)
	port, err := topology.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	srv := topotest.Standalone(t, "--tls-port", strconv.Itoa(port), "--tls-cert-file", cert, "--tls-key-file", key,
		"--tls-ca-cert-file", ca, "--tls-auth-clients", "no", "--requirepass", "tls-Secret-1")
	ctx := context.Background()
	plain := redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: "tls-Secret-1", DB: 2, DisableIdentity: true})
	defer plain.Close()
	for i := 0; i < 500; i++ {
		plain.Set(ctx, fmt.Sprintf("sess:Xk3pQ9zR2mN8vB5cL1wT7yH4jF6g%04d", i), "{}", time.Hour)
	}
	cfg := filepath.Join(dir, "redisplit.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("legacy:\n  url: rediss://127.0.0.1:%d/2\n  password_file: %s\n  tls:\n    ca_file: %s\n", port, filepath.Join(dir, "pw"), ca)), 0o600)
	os.WriteFile(filepath.Join(dir, "pw"), []byte("tls-Secret-1\n"), 0o600)
	r, _ := scanJSON(t, "--config", cfg)
	if r.Scanned != 500 || bucketOf(r, "session").Keys != 500 || bucketOf(r, "session").Bytes <= 0 {
		t.Fatalf("scanned %d, session %+v", r.Scanned, bucketOf(r, "session"))
	}

	otherCA, _, _ := writeTestCA(t, t.TempDir())
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(fmt.Sprintf("legacy:\n  url: rediss://127.0.0.1:%d/2\n  password: tls-Secret-1\n  tls:\n    ca_file: %s\n", port, otherCA)), 0o600)
	code, out, errs := scanCLI(t, "--config", bad, "--no-progress")
	if code != ExitRuntime || !strings.Contains(errs, "TLS failure") || strings.Contains(errs+out, "tls-Secret-1") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}
