package rehearse

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Synthetic is a deterministic legacy keyspace mixing every bucket the way
// one overloaded Redis does: framework-style keys of every Redis type
// (Rails/Django/Spring/keyv/WordPress/Apollo caches; connect-redis, Spring
// Session, Django, phpredis, Rack and Laravel sessions; Sidekiq, asynq,
// BullMQ and Celery queues; rack-attack, rate-limiter-flexible,
// express-rate-limit, redis_rate, Spring Cloud Gateway, Kong and limits
// counters), some binary key names, a few big keys (a 1 MiB string, a
// 20000-item list, a 5000-field hash, a 150000-member sorted set (about 13 MB: above migrate's chunking threshold), a
// 2000-entry stream) and some keys with TTLs of a few seconds. Every key is
// named so that the built-in presets route it: zero configuration is enough.
type Synthetic struct {
	Keys     int    // number of per-entity keys; the fixed framework keys and big keys come on top
	Seed     uint64 // same seed, same keyspace
	NoBig    bool   // leave out the big keys
	ShortTTL int    // per mille of keys with a TTL of 3–9 s; default 5 (0.5%); negative = none
	// QueueLists makes the queue bucket plain job lists only, as a queue
	// moved to SQS must be (SQS carries list items): Sidekiq's
	// queue:default and queue:mailers, Celery's celery list and, with the
	// big keys, queue:bulk of QueueBulk items (default 2000); no framework
	// sets, hashes, counters or streams, no per-entity queue keys.
	QueueLists bool
	QueueBulk  int
}

// QueueListNames are the lists of the queue bucket with QueueLists, in
// order (queue:bulk only with the big keys).
var QueueListNames = []string{"queue:default", "queue:mailers", "celery", "queue:bulk"}

// Generated describes what Generate wrote.
type Generated struct {
	Total    int            `json:"total"`     // keys written
	ByBucket map[string]int `json:"by_bucket"` // keys per bucket (as the presets route them)
	ShortTTL map[string]int `json:"short_ttl"` // of which keys whose TTL is under 10 s, per bucket: they may be gone by the time they are read
	Binary   int            `json:"binary"`    // keys whose name is not valid UTF-8 or holds control bytes
	Big      []string       `json:"big"`       // names of the big keys
	Duration time.Duration  `json:"duration_ns"`
}

// family is one framework's key shape.
type family struct {
	name   string
	bucket string
	weight int // share of the per-entity keys, in percent
	write  func(g *gen, p redis.Pipeliner, i int) (key string)
}

// gen holds the per-key random source.
type gen struct {
	r   *rand.Rand
	ctx context.Context
	ttl time.Duration // TTL override for this key (short TTL), 0 = family default
}

func (g *gen) hex(n int) string {
	b := make([]byte, (n+1)/2)
	for i := range b {
		b[i] = byte(g.r.UintN(256))
	}
	return hex.EncodeToString(b)[:n]
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func (g *gen) alnum(n int) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		if i == 0 { // guarantees a non-hex character: Laravel session ids must not look like sha1
			sb.WriteByte("GHIJKLMNOPQRSTUVWXYZghijklmnopqrstuvwxyz"[g.r.IntN(40)])
			continue
		}
		sb.WriteByte(alnum[g.r.IntN(len(alnum))])
	}
	return sb.String()
}

func (g *gen) uuid() string {
	h := g.hex(32)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (g *gen) ip() string {
	return fmt.Sprintf("10.%d.%d.%d", g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(254))
}

// ipOf returns a distinct address for each i < 2^24 (unique counters).
func ipOf(i int) string {
	return fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255)
}

func (g *gen) bytes(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.UintN(256))
	}
	return string(b)
}

// exp returns the TTL to give a key: the short TTL when one was drawn, else d.
func (g *gen) exp(d time.Duration) time.Duration {
	if g.ttl > 0 {
		return g.ttl
	}
	return d
}

func (g *gen) set(p redis.Pipeliner, k, v string, d time.Duration) string {
	p.Set(g.ctx, k, v, g.exp(d))
	return k
}

func (g *gen) expire(p redis.Pipeliner, k string, d time.Duration) {
	if d := g.exp(d); d > 0 {
		p.Expire(g.ctx, k, d)
	}
}

const (
	minute = time.Minute
	hour   = time.Hour
	day    = 24 * time.Hour
)

// families, by bucket; weights sum to 100.
var families = []family{
	// cache: 55%
	{"rails-fragment", "cache", 10, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, fmt.Sprintf("views/products/index:%s/products/%d-%d", g.hex(32), i, 20240101000000+i),
			"\x04\x08I\""+strings.Repeat("<li>product</li>", 4+g.r.IntN(20))+"\x06:\x06ET", hour)
	}},
	{"django-page-cache", "cache", 8, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, fmt.Sprintf(":1:views.decorators.cache.cache_page..GET.%s.%s.en-us.UTC", g.hex(32), g.hex(32)),
			"\x80\x05\x95"+g.bytes(40+g.r.IntN(400)), 5*minute)
	}},
	{"spring-cache", "cache", 10, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, "products::"+strconv.Itoa(i), "\xac\xed\x00\x05sr\x00\x1bcom.example.Product"+g.bytes(60+g.r.IntN(200)), 0)
	}},
	{"spring-cache-binary-name", "cache", 1, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, "blobs::\x00\xff\xfe"+g.bytes(8)+"\r\n"+strconv.Itoa(i), g.bytes(100), day)
	}},
	{"keyv", "cache", 10, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, "keyv:user:"+strconv.Itoa(i), fmt.Sprintf(`{"value":{"id":%d,"name":"user %d"},"expires":null}`, i, i), 30*minute)
	}},
	{"wordpress", "cache", 8, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, "wp:posts:"+strconv.Itoa(i), fmt.Sprintf(`O:7:"WP_Post":2:{s:2:"ID";i:%d;s:10:"post_title";s:4:"post";}`, i), 0)
	}},
	{"apollo", "cache", 8, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, "fqc:"+g.hex(64), `{"data":{"product":{"id":"`+strconv.Itoa(i)+`"}},"cachePolicy":{"maxAge":60}}`, 10*minute)
	}},
	// session: 25%
	{"connect-redis", "session", 6, func(g *gen, p redis.Pipeliner, i int) string {
		sid := g.alnum(32)
		return g.set(p, "sess:"+sid, fmt.Sprintf(`{"cookie":{"originalMaxAge":86400000,"expires":"2030-01-01T00:00:00.000Z","httpOnly":true,"path":"/"},"userId":%d}`, i), day)
	}},
	{"connect-redis-binary-sid", "session", 1, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, "sess:\xff\x00"+g.bytes(12)+strconv.Itoa(i), `{"cookie":{"originalMaxAge":null},"bin":true}`, day)
	}},
	{"spring-session", "session", 5, func(g *gen, p redis.Pipeliner, i int) string {
		id := g.uuid()
		k := "spring:session:sessions:" + id
		p.HSet(g.ctx, k, "creationTime", 1700000000000+i, "lastAccessedTime", 1700000600000+i,
			"maxInactiveInterval", 1800, "sessionAttr:SPRING_SECURITY_CONTEXT", "\xac\xed\x00\x05t\x00\x05user"+strconv.Itoa(i))
		g.expire(p, k, 35*minute)
		return k
	}},
	{"django-session", "session", 4, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, ":1:django.contrib.sessions.cache"+strings.ToLower(g.alnum(32)), "\x80\x05\x95"+g.bytes(80), 14*day)
	}},
	{"phpredis-session", "session", 4, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, "PHPREDIS_SESSION:"+strings.ToLower(g.alnum(26)), fmt.Sprintf(`user_id|i:%d;name|s:5:"alice";`, i), 24*minute)
	}},
	{"rack-session", "session", 3, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, "rack:session:2::"+g.hex(64), "\x04\x08{\x06I\"\x0cuser_id\x06:\x06ETi\x02"+string(rune('a'+i%26)), 2*hour)
	}},
	{"laravel-session", "session", 2, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, "laravel_database_laravel_cache_:"+g.alnum(40), `s:60:"a:1:{s:6:"_token";s:40:"`+g.alnum(40)+`";}";`, 2*hour)
	}},
	// ratelimit: 12%
	{"rack-attack", "ratelimit", 3, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, fmt.Sprintf("rack::attack:%d:req/ip:%s", 28333333+i%7, ipOf(i)), strconv.Itoa(1+g.r.IntN(100)), 30*minute)
	}},
	{"rate-limiter-flexible", "ratelimit", 2, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, "rlflx:login:"+g.ip()+":"+strconv.Itoa(i), strconv.Itoa(g.r.IntN(10)), 15*minute)
	}},
	{"express-rate-limit", "ratelimit", 2, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, "rl:"+g.ip()+":"+strconv.Itoa(i), strconv.Itoa(g.r.IntN(60)), 20*minute)
	}},
	{"redis-rate", "ratelimit", 2, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, "rate:user:"+strconv.Itoa(i), fmt.Sprintf("%.6f", 2.9e8+g.r.Float64()*1e6), hour)
	}},
	{"spring-cloud-gateway", "ratelimit", 1, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, fmt.Sprintf("request_rate_limiter.{route%d.%s}.tokens", i%50, ipOf(i)), strconv.Itoa(g.r.IntN(100)), 10*minute)
	}},
	{"kong", "ratelimit", 1, func(g *gen, p redis.Pipeliner, i int) string {
		return g.set(p, fmt.Sprintf("ratelimit:%s:%s:%s:%d:minute", g.uuid(), g.uuid(), g.ip(), 1700000000000+60000*int64(i%10)),
			strconv.Itoa(g.r.IntN(1000)), 20*minute)
	}},
	{"limits-moving-window", "ratelimit", 1, func(g *gen, p redis.Pipeliner, i int) string {
		k := fmt.Sprintf("LIMITS:LIMITER/%s/api/%d/10/1/minute", g.ip(), i)
		for j := 0; j < 5; j++ {
			p.LPush(g.ctx, k, strconv.FormatFloat(1700000000+float64(j)+g.r.Float64(), 'f', 6, 64))
		}
		g.expire(p, k, 30*minute)
		return k
	}},
	// queue: 8%
	{"asynq-task", "queue", 3, func(g *gen, p redis.Pipeliner, i int) string {
		k := "asynq:{default}:t:" + g.uuid()
		p.HSet(g.ctx, k, "msg", "\x0a\x0bemail:send\x12"+g.bytes(30), "state", "pending", "pending_since", 1700000000+i)
		return k
	}},
	{"bullmq-job", "queue", 3, func(g *gen, p redis.Pipeliner, i int) string {
		k := "bull:emails:" + strconv.Itoa(i)
		p.HSet(g.ctx, k, "name", "send", "data", fmt.Sprintf(`{"to":"u%d@example.com"}`, i), "opts", `{"attempts":3}`,
			"timestamp", 1700000000000+i, "delay", 0, "priority", 0)
		return k
	}},
	{"celery-result", "queue", 2, func(g *gen, p redis.Pipeliner, i int) string {
		id := g.uuid()
		return g.set(p, "celery-task-meta-"+id, `{"status":"SUCCESS","result":`+strconv.Itoa(i)+`,"traceback":null,"task_id":"`+id+`"}`, day)
	}},
}

// fixed writes the framework-level keys every deployment of those libraries
// has (queues, schedules, stats), once.
func fixed(g *gen, p redis.Pipeliner, out map[string]string, listsOnly bool) {
	ctx := g.ctx
	add := func(k, b string) { out[k] = b }
	if !listsOnly {
		p.SAdd(ctx, "queues", "default", "mailers")
		add("queues", "queue")
	}
	for _, qn := range []struct {
		q string
		n int
	}{{"default", 50}, {"mailers", 20}} { // a slice, not a map: the same seed must draw in the same order
		q, n := qn.q, qn.n
		k := "queue:" + q
		for j := 0; j < n; j++ {
			p.RPush(ctx, k, fmt.Sprintf(`{"class":"HardWorker","args":[%d],"jid":"%s","enqueued_at":1700000000.5}`, j, g.hex(24)))
		}
		add(k, "queue")
	}
	if listsOnly {
		celery(g, p, add)
		return
	}
	for _, k := range []string{"schedule", "retry", "dead"} {
		for j := 0; j < 10; j++ {
			p.ZAdd(ctx, k, redis.Z{Score: 1700000000 + float64(j), Member: fmt.Sprintf(`{"class":"HardWorker","jid":"%s"}`, g.hex(24))})
		}
		add(k, "queue")
	}
	p.Set(ctx, "stat:processed", 123456, 0)
	add("stat:processed", "queue")
	p.SAdd(ctx, "asynq:queues", "default")
	add("asynq:queues", "queue")
	for j := 0; j < 30; j++ {
		p.RPush(ctx, "asynq:{default}:pending", g.uuid())
		p.ZAdd(ctx, "asynq:{default}:scheduled", redis.Z{Score: 1700000000 + float64(j), Member: g.uuid()})
	}
	add("asynq:{default}:pending", "queue")
	add("asynq:{default}:scheduled", "queue")
	for j := 0; j < 40; j++ {
		p.LPush(ctx, "bull:emails:wait", strconv.Itoa(j))
	}
	add("bull:emails:wait", "queue")
	p.Set(ctx, "bull:emails:id", 100000, 0)
	add("bull:emails:id", "queue")
	p.HSet(ctx, "bull:emails:meta", "opts.maxLenEvents", 10000, "version", "bullmq:5.1.0")
	add("bull:emails:meta", "queue")
	celery(g, p, add)
}

// celery writes Celery's default queue, a plain list of task messages.
func celery(g *gen, p redis.Pipeliner, add func(k, b string)) {
	for j := 0; j < 25; j++ {
		p.RPush(g.ctx, "celery", fmt.Sprintf(`{"body":"%s","headers":{"task":"tasks.add","id":"%s"}}`, g.hex(40), g.uuid()))
	}
	add("celery", "queue")
}

// big writes the big keys; they exercise chunked copies and verification.
func big(g *gen, c redis.Cmdable, out map[string]string, s Synthetic) error {
	ctx := g.ctx
	if err := c.Set(ctx, "keyv:big:catalog", strings.Repeat(g.bytes(1024), 1024), 0).Err(); err != nil {
		return err
	}
	out["keyv:big:catalog"] = "cache"
	type batch func(p redis.Pipeliner, from, to int)
	fill := func(n int, f batch) error {
		for from := 0; from < n; from += 1000 {
			p := c.Pipeline()
			f(p, from, min(n, from+1000))
			if _, err := p.Exec(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	bulk := 20000
	if s.QueueLists {
		bulk = s.QueueBulk
		if bulk <= 0 {
			bulk = 2000
		}
	}
	err := fill(bulk, func(p redis.Pipeliner, from, to int) {
		items := make([]any, 0, to-from)
		for j := from; j < to; j++ {
			items = append(items, fmt.Sprintf(`{"class":"BulkJob","args":[%d],"jid":"%024x"}`, j, j))
		}
		p.RPush(ctx, "queue:bulk", items...)
	})
	if err != nil {
		return err
	}
	if !s.QueueLists {
		p := c.Pipeline()
		p.SAdd(ctx, "queues", "bulk")
		if _, err := p.Exec(ctx); err != nil {
			return err
		}
	}
	out["queue:bulk"] = "queue"
	err = fill(5000, func(p redis.Pipeliner, from, to int) {
		kv := make([]any, 0, 2*(to-from))
		for j := from; j < to; j++ {
			kv = append(kv, "sessionAttr:cart:"+strconv.Itoa(j), "\xac\xed\x00\x05"+g.bytes(20))
		}
		p.HSet(ctx, "spring:session:sessions:00000000-0000-4000-8000-00000000b16b", kv...)
	})
	if err != nil {
		return err
	}
	out["spring:session:sessions:00000000-0000-4000-8000-00000000b16b"] = "session"
	err = fill(150000, func(p redis.Pipeliner, from, to int) {
		zs := make([]redis.Z, 0, to-from)
		for j := from; j < to; j++ {
			zs = append(zs, redis.Z{Score: 1700000000 + float64(j)/1000, Member: fmt.Sprintf("req-%d", j)})
		}
		p.ZAdd(ctx, "rl:sliding:api:10.0.0.1", zs...)
	})
	if err != nil {
		return err
	}
	out["rl:sliding:api:10.0.0.1"] = "ratelimit"
	if s.QueueLists {
		return nil
	}
	err = fill(2000, func(p redis.Pipeliner, from, to int) {
		for j := from; j < to; j++ {
			p.XAdd(ctx, &redis.XAddArgs{Stream: "bull:emails:events", ID: fmt.Sprintf("1700000000000-%d", j),
				Values: []any{"event", "added", "jobId", strconv.Itoa(j)}})
		}
	})
	if err != nil {
		return err
	}
	out["bull:emails:events"] = "queue"
	return nil
}

// Generate writes the synthetic keyspace into c (a standalone legacy) with
// pipelined batches on a few connections. Keys are overwritten, never
// deleted; run it against an empty database to get exactly Generated.
func (s Synthetic) Generate(ctx context.Context, c *redis.Client) (Generated, error) {
	t0 := time.Now()
	shortPerMille := s.ShortTTL
	if shortPerMille == 0 {
		shortPerMille = 5
	}
	res := Generated{ByBucket: map[string]int{}, ShortTTL: map[string]int{}}
	named := map[string]string{}
	g := &gen{r: rand.New(rand.NewPCG(s.Seed, 1)), ctx: ctx}
	p := c.Pipeline()
	fixed(g, p, named, s.QueueLists)
	if _, err := p.Exec(ctx); err != nil {
		return res, err
	}
	if !s.NoBig {
		if err := big(g, c, named, s); err != nil {
			return res, err
		}
		for k := range named {
			if strings.HasPrefix(k, "keyv:big:") || k == "queue:bulk" || strings.HasPrefix(k, "spring:session:sessions:00000000") ||
				strings.HasPrefix(k, "rl:sliding:") || k == "bull:emails:events" {
				res.Big = append(res.Big, k)
			}
		}
	}
	for _, b := range named {
		res.ByBucket[b]++
	}
	// Cumulative weights → family of key i, independent of the worker split.
	var pick []int
	for fi, f := range families {
		if s.QueueLists && f.bucket == "queue" {
			continue // their share goes to the other families
		}
		for w := 0; w < f.weight; w++ {
			pick = append(pick, fi)
		}
	}
	const workers, batch = 4, 1000
	type tally struct {
		by, short map[string]int
		binary    int
		err       error
	}
	tallies := make([]tally, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			t := &tallies[w]
			t.by, t.short = map[string]int{}, map[string]int{}
			for start := w * batch; start < s.Keys; start += workers * batch {
				p := c.Pipeline()
				for i := start; i < min(start+batch, s.Keys); i++ {
					// One random source per key: the keyspace does not depend on scheduling.
					kg := &gen{r: rand.New(rand.NewPCG(s.Seed, uint64(i)+2)), ctx: ctx}
					f := families[pick[kg.r.IntN(len(pick))]]
					if shortPerMille > 0 && kg.r.IntN(1000) < shortPerMille {
						kg.ttl = time.Duration(3+kg.r.IntN(7)) * time.Second
						t.short[f.bucket]++
					}
					if strings.Contains(f.name, "binary") {
						t.binary++
					}
					f.write(kg, p, i)
					t.by[f.bucket]++
				}
				if _, err := p.Exec(ctx); err != nil {
					t.err = err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	for _, t := range tallies {
		if t.err != nil {
			return res, fmt.Errorf("generate: %w", t.err)
		}
		for b, n := range t.by {
			res.ByBucket[b] += n
		}
		for b, n := range t.short {
			res.ShortTTL[b] += n
		}
		res.Binary += t.binary
	}
	for _, n := range res.ByBucket {
		res.Total += n
	}
	res.Duration = time.Since(t0)
	return res, nil
}

// Families lists the framework key families of the synthetic keyspace with
// their bucket, for documentation and reports.
func Families() map[string]string {
	out := map[string]string{}
	for _, f := range families {
		out[f.name] = f.bucket
	}
	return out
}
