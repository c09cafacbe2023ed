package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/go-redis/cache/v9"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Library writers: real Go libraries writing their own keys, the way an
// application does, through their own client code paths. Each call is one
// round trip (the libraries do not pipeline), so each writer is its own
// goroutine.
//
//   - go-redis/cache: cache.Set of an item whose Seq field is the key's
//     version (msgpack, s2-compressed above 64 bytes, a TTL of an hour).
//   - redis_rate: Limiter.Allow on rate:lg:<i> (GCRA, a Lua script on
//     legacy). Its state is the TAT; an allowed request moves it, so it is
//     read back (GET and PTTL, in one round trip after the call, the key
//     having one writer) as the write's version. The key expires when idle
//     (its TTL is the TAT's distance from now) and is created again by the
//     next request, with a higher TAT. A denied request changes nothing and
//     is not a write.

// rateLimit allows 1000 requests in a burst and one every 3 s after: the
// load never reaches it (no request is denied); each request adds 3 s to
// the key's TTL.
var rateLimit = redis_rate.Limit{Rate: 1000, Burst: 1000, Period: 3000 * time.Second}

type libWriter struct {
	g       *Generator
	id, of  int
	r       *rand.Rand
	client  *redis.Client
	cache   *cache.Cache
	limiter *redis_rate.Limiter
	n       map[int]int
	seq     map[string]uint64 // go-redis/cache: the key's last Seq; redis_rate: the last TAT version
	burnt   map[string]bool
	turn    int
}

func newLibWriter(g *Generator, id, of int, nkeys map[int]int) *libWriter {
	c := redis.NewClient(&redis.Options{Addr: g.cfg.Addr, Password: g.cfg.Password, DisableIdentity: true,
		PoolSize: 2, MaxRetries: -1, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	return &libWriter{g: g, id: id, of: of, r: rand.New(rand.NewPCG(g.cfg.Seed, 1000+uint64(id))), client: c,
		cache: cache.New(&cache.Options{Redis: c}), limiter: redis_rate.NewLimiter(c), n: nkeys,
		seq: map[string]uint64{}, burnt: map[string]bool{}}
}

func (l *libWriter) close() { l.client.Close() }

// key picks one of the writer's keys of fam (key i belongs to writer i mod
// of).
func (l *libWriter) key(fam int) string {
	n := (l.n[fam] - l.id + l.of - 1) / l.of
	if n <= 0 {
		return ""
	}
	for try := 0; try < 8; try++ {
		k := keyName(fam, l.id+l.of*l.r.IntN(n))
		if !l.burnt[k] {
			return k
		}
	}
	return ""
}

func (l *libWriter) item(seq uint64) goCacheItem {
	bio := filler[:l.r.IntN(len(filler))]
	return goCacheItem{Seq: seq, Name: "user " + strconv.FormatUint(seq, 10), Bio: bio + bio}
}

// step makes n library writes, one round trip each (two for redis_rate).
func (l *libWriter) step(ctx context.Context, n int, t *tally) int {
	var out []Write
	for i := 0; i < n; i++ {
		var w Write
		var ok bool
		l.turn++
		if l.turn%2 == 0 {
			w, ok = l.goCache(ctx, l.key(fGoCache), t)
		} else {
			w, ok = l.rate(ctx, l.key(fRate), t)
		}
		if ok {
			out = append(out, w)
		}
	}
	if r := l.g.cfg.Recorder; r != nil && len(out) > 0 {
		r.Record(out)
	}
	return len(out)
}

func (l *libWriter) fail(k string, at time.Time, err error, t *tally) (Write, bool) {
	t.fail(fmt.Errorf("%s: %w", k, err))
	t.uncertain++
	l.burnt[k] = true
	delete(l.seq, k)
	return Write{Key: k, At: at, Uncertain: true}, true
}

func (l *libWriter) goCache(ctx context.Context, k string, t *tally) (Write, bool) {
	if k == "" {
		return Write{}, false
	}
	seq := l.seq[k] + 1
	at := time.Now()
	t.commands++
	if err := l.cache.Set(&cache.Item{Ctx: ctx, Key: k, Value: l.item(seq), TTL: time.Hour}); err != nil {
		if ctx.Err() != nil {
			return Write{}, false
		}
		return l.fail(k, at, err, t)
	}
	l.seq[k] = seq
	t.writes++
	t.byOp[OpGoCache]++
	return Write{Key: k, Version: seq, Op: OpGoCache, At: at}, true
}

// rateKey is the name redis_rate gives the limiter key of load key k.
func rateKey(k string) string { return k[len("rate:"):] }

func (l *libWriter) rate(ctx context.Context, k string, t *tally) (Write, bool) {
	if k == "" {
		return Write{}, false
	}
	at := time.Now()
	t.commands += 2
	res, err := l.limiter.Allow(ctx, rateKey(k), rateLimit)
	if err != nil {
		if ctx.Err() != nil {
			return Write{}, false
		}
		return l.fail(k, at, err, t)
	}
	if res.Allowed == 0 {
		t.denied++
		return Write{}, false
	}
	var get *redis.StringCmd
	var pttl *redis.DurationCmd
	_, err = l.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		get, pttl = p.Get(ctx, k), p.PTTL(ctx, k)
		return nil
	})
	read := time.Now()
	s, err := get.Result()
	if err != nil {
		if errors.Is(err, redis.Nil) {
			err = errors.New("redis_rate allowed but wrote no state")
		}
		return l.fail(k, at, err, t)
	}
	v, err := rateVersion(s)
	if err != nil || v <= l.seq[k] {
		t.model++
		return l.fail(k, at, fmt.Errorf("redis_rate state %q does not follow %d", s, l.seq[k]), t)
	}
	var expires time.Time
	if d := pttl.Val(); d > 0 {
		expires = read.Add(d)
	}
	l.seq[k] = v
	t.writes++
	t.byOp[OpRate]++
	return Write{Key: k, Version: v, Op: OpRate, At: at, Expires: expires}, true
}

// prefill writes every key of the writer once.
func (l *libWriter) prefill(ctx context.Context) error {
	var t tally
	for i := l.id; i < l.n[fGoCache]; i += l.of {
		if l.goCache(ctx, keyName(fGoCache, i), &t); t.errors > 0 {
			return fmt.Errorf("loadgen: prefill (go-redis/cache) on %s: %s", l.g.cfg.Addr, t.firstErr)
		}
	}
	for i := l.id; i < l.n[fRate]; i += l.of {
		if l.rate(ctx, keyName(fRate, i), &t); t.errors > 0 {
			return fmt.Errorf("loadgen: prefill (redis_rate) on %s: %s", l.g.cfg.Addr, t.firstErr)
		}
	}
	return nil
}
