package libtest

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	scsredis "github.com/alexedwards/scs/redisstore"
	"github.com/boj/redistore"
	"github.com/go-redis/cache/v9"
	"github.com/go-redis/redis_rate/v10"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/topology/topotest"
)

// One database per library, so that every key in it is known to be the
// library's own, including keys this test did not anticipate.
const (
	dbFixture = iota
	dbAsynq
	dbRedisRate
	dbGoCache
	dbUnclaimed // fixture keys no preset may claim; some share a name with a library key
	dbRediStore
	dbSCS
)

type scanned struct {
	key, typ string
	m        classify.Match
}

// scanDB SCANs db and classifies every key with zero-configuration routing.
func scanDB(t *testing.T, ctx context.Context, addr string, db int) []scanned {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: db, DisableIdentity: true})
	defer rdb.Close()
	c, _, err := classify.Router(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []scanned
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, "", 200).Result()
		if err != nil {
			t.Fatal(err)
		}
		pipe := rdb.Pipeline()
		cmds := make([]*redis.StatusCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.Type(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		for i, k := range keys {
			typ := cmds[i].Val()
			if typ == "none" { // expired between SCAN and TYPE
				continue
			}
			out = append(out, scanned{key: k, typ: typ, m: c.Classify(k, typ)})
		}
		if cursor = next; cursor == 0 {
			return out
		}
	}
}

// durable reports whether b is a bucket whose keys eviction must never touch.
func durable(b classify.Bucket) bool {
	return b == classify.Session || b == classify.Queue || b == classify.RateLimit
}

func TestLibraryKeyspaces(t *testing.T) {
	srv := topotest.Standalone(t)
	addr := srv.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("asynq", func(t *testing.T) { testAsynq(t, ctx, addr) })
	t.Run("redis_rate", func(t *testing.T) { testRedisRate(t, ctx, addr) })
	t.Run("go-redis-cache", func(t *testing.T) { testGoRedisCache(t, ctx, addr) })
	t.Run("boj-redistore", func(t *testing.T) { testRediStore(t, ctx, addr) })
	t.Run("scs-redisstore", func(t *testing.T) { testSCS(t, ctx, addr) })
	t.Run("fixture", func(t *testing.T) { testFixture(t, ctx, addr) })
}

// testAsynq lets asynq write its whole key family: a client enqueueing
// immediate, scheduled, unique, grouped and retained tasks on two queues, a
// server processing them (successes, failures to retry, a task kept active so
// that worker state is written) and a scheduler. The keyspace is scanned while
// the server and scheduler run, so their heartbeat keys are present.
func testAsynq(t *testing.T, ctx context.Context, addr string) {
	opt := asynq.RedisClientOpt{Addr: addr, DB: dbAsynq}
	client := asynq.NewClient(opt)
	defer client.Close()
	enqueue := func(typ string, opts ...asynq.Option) {
		t.Helper()
		if _, err := client.Enqueue(asynq.NewTask(typ, []byte(`{"user":42}`)), opts...); err != nil {
			t.Fatalf("enqueue %s: %v", typ, err)
		}
	}
	for i := 0; i < 5; i++ {
		enqueue("email:ok", asynq.Retention(time.Hour))
	}
	enqueue("email:fail", asynq.MaxRetry(3))
	enqueue("email:fail", asynq.MaxRetry(0), asynq.Queue("critical")) // archived at once
	enqueue("report:slow", asynq.Queue("critical"))
	enqueue("email:later", asynq.ProcessIn(time.Hour))
	enqueue("email:unique", asynq.Unique(time.Hour), asynq.ProcessIn(time.Hour))
	enqueue("digest:add", asynq.Group("digest"))

	release := make(chan struct{})
	var slowStarted atomic.Bool
	mux := asynq.NewServeMux()
	mux.HandleFunc("email:ok", func(context.Context, *asynq.Task) error { return nil })
	mux.HandleFunc("email:fail", func(context.Context, *asynq.Task) error { return errors.New("smtp refused") })
	mux.HandleFunc("report:slow", func(ctx context.Context, _ *asynq.Task) error {
		slowStarted.Store(true)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency:    4,
		Queues:         map[string]int{"default": 1, "critical": 2},
		RetryDelayFunc: func(int, error, *asynq.Task) time.Duration { return time.Hour },
		Logger:         quietLogger{},
		LogLevel:       asynq.FatalLevel,
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			close(release)
			srv.Shutdown()
		}
	}
	defer stop()
	sched := asynq.NewScheduler(opt, &asynq.SchedulerOpts{HeartbeatInterval: 200 * time.Millisecond, Logger: quietLogger{}, LogLevel: asynq.FatalLevel})
	if _, err := sched.Register("@every 1s", asynq.NewTask("email:ok", nil)); err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(); err != nil {
		t.Fatal(err)
	}
	defer sched.Shutdown()

	// Wait (polling, bounded) until asynq has written the keys of every
	// kind of its state: worker state appears at the server's second
	// heartbeat (5 s), scheduler history after the first scheduled enqueue.
	want := []string{"asynq:servers:", "asynq:workers:", "asynq:schedulers:", "asynq:scheduler_history:",
		":processed:", ":failed:", ":retry", ":archived", ":completed", ":scheduled", ":active", ":lease", ":g:digest", ":t:"}
	var keys []scanned
	deadline := time.Now().Add(30 * time.Second)
	for {
		keys = scanDB(t, ctx, addr, dbAsynq)
		missing := missingFragments(keys, want)
		if len(missing) == 0 && slowStarted.Load() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("asynq did not write keys containing %v within 30 s; keys: %v", missing, keyNames(keys))
		}
		time.Sleep(250 * time.Millisecond)
	}
	assertAll(t, keys, classify.Queue, "preset asynq")
	t.Logf("asynq wrote %d keys, all routed to queue by preset asynq", len(keys))

	// After shutdown asynq clears its server state; what remains is still queue.
	sched.Shutdown()
	stop()
	assertAll(t, scanDB(t, ctx, addr, dbAsynq), classify.Queue, "preset asynq")
}

func testRedisRate(t *testing.T, ctx context.Context, addr string) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: dbRedisRate, DisableIdentity: true})
	defer rdb.Close()
	limiter := redis_rate.NewLimiter(rdb)
	for _, k := range []string{"user:42", "ip:203.0.113.9", "login:alice@example.com"} {
		for i := 0; i < 3; i++ {
			if _, err := limiter.Allow(ctx, k, redis_rate.PerMinute(10)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := limiter.AllowAtMost(ctx, "burst:api", redis_rate.PerSecond(100), 5); err != nil {
		t.Fatal(err)
	}
	keys := scanDB(t, ctx, addr, dbRedisRate)
	if len(keys) != 4 {
		t.Fatalf("redis_rate wrote %v", keyNames(keys))
	}
	assertAll(t, keys, classify.RateLimit, "preset redis-rate")
}

// testGoRedisCache: go-redis/cache writes the user's keys bare. Their shape
// is the application's, so zero-configuration routing may not claim them;
// what it must never do is call them session, queue or rate limit (unknown
// keys go to scan's heuristics, which sniff the msgpack value).
func testGoRedisCache(t *testing.T, ctx context.Context, addr string) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: dbGoCache, DisableIdentity: true})
	defer rdb.Close()
	c := cache.New(&cache.Options{Redis: rdb})
	type profile struct {
		ID   int
		Name string
		Bio  string
	}
	items := map[string]any{
		"user:42:profile":       profile{42, "alice", strings.Repeat("x", 200)}, // compressed (s2) above 64 bytes
		"product:7":             profile{7, "lamp", ""},
		"settings":              map[string]string{"theme": "dark"},
		"feed:home:page:1":      []int{1, 2, 3},
		"v1/products?page=2":    "rendered",
		"tenant:acme:dashboard": profile{1, "acme", "x"},
	}
	for k, v := range items {
		if err := c.Set(&cache.Item{Ctx: ctx, Key: k, Value: v, TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	keys := scanDB(t, ctx, addr, dbGoCache)
	if len(keys) != len(items) {
		t.Fatalf("go-redis/cache wrote %v", keyNames(keys))
	}
	for _, k := range keys {
		if _, ok := items[k.key]; !ok {
			t.Errorf("unexpected key %q", k.key)
		}
		if durable(k.m.Bucket) {
			t.Errorf("go-redis/cache key %q (%s) routed to %s by %v", k.key, k.typ, k.m.Bucket, k.m.Rule)
		}
	}
}

// testRediStore: gorilla sessions saved through boj/redistore (the store
// gin-contrib/sessions uses) are sessions.
func testRediStore(t *testing.T, ctx context.Context, addr string) {
	store, err := redistore.NewRediStoreWithDB(4, "tcp", addr, "", "", strconv.Itoa(dbRediStore), []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for i := 0; i < 5; i++ {
		req := httptest.NewRequest("GET", "/login", nil)
		rec := httptest.NewRecorder()
		sess, err := store.New(req, "app-session")
		if err != nil {
			t.Fatal(err)
		}
		sess.Values["user_id"] = i
		if err := store.Save(req, rec, sess); err != nil {
			t.Fatal(err)
		}
	}
	keys := scanDB(t, ctx, addr, dbRediStore)
	if len(keys) != 5 {
		t.Fatalf("redistore wrote %v", keyNames(keys))
	}
	assertAll(t, keys, classify.Session, "preset gorilla")
}

// testSCS: sessions committed through alexedwards/scs's Redis store are
// sessions.
func testSCS(t *testing.T, ctx context.Context, addr string) {
	pool := &redigo.Pool{Dial: func() (redigo.Conn, error) { return redigo.Dial("tcp", addr, redigo.DialDatabase(dbSCS)) }}
	defer pool.Close()
	store := scsredis.New(pool)
	for i := 0; i < 3; i++ {
		token := fmt.Sprintf("Yq8wX2vN5kLmP0rT3sU6zA9bC1dE4fGhJ7iK0lMnO%02d", i)
		if err := store.Commit(token, []byte("gob-encoded session"), time.Now().Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	keys := scanDB(t, ctx, addr, dbSCS)
	if len(keys) != 3 {
		t.Fatalf("scs wrote %v", keyNames(keys))
	}
	assertAll(t, keys, classify.Session, "preset scs")
}

// fixtureFile mirrors classify/testdata/library-keys.yaml.
type fixtureFile struct {
	Libraries []struct {
		Library string          `yaml:"library"`
		Preset  string          `yaml:"preset"`
		Bucket  classify.Bucket `yaml:"bucket"`
		Keys    []fixtureKey    `yaml:"keys"`
	} `yaml:"libraries"`
	Unclaimed []fixtureKey `yaml:"unclaimed"`
}

type fixtureKey struct {
	Key   string `yaml:"key"`
	Type  string `yaml:"type"`
	TTL   int    `yaml:"ttl"`
	Value string `yaml:"value"`
}

// testFixture writes every key of the fixture with its library's type, TTL
// and value shape, SCANs the database back (binary names included) and checks
// each key's bucket and deciding preset, and that no durable key is cache.
func testFixture(t *testing.T, ctx context.Context, addr string) {
	b, err := os.ReadFile("../testdata/library-keys.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f fixtureFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	type expect struct {
		bucket  classify.Bucket
		preset  string
		library string
	}
	libs := map[string]expect{}
	var libKeys []fixtureKey
	for _, lib := range f.Libraries {
		for _, k := range lib.Keys {
			if _, dup := libs[k.Key]; dup {
				t.Fatalf("fixture lists %q twice", k.Key)
			}
			libs[k.Key] = expect{lib.Bucket, "preset " + lib.Preset, lib.Library}
			libKeys = append(libKeys, k)
		}
	}
	unclaimed := map[string]expect{}
	for _, k := range f.Unclaimed {
		unclaimed[k.Key] = expect{classify.Unknown, "", "unclaimed"}
	}
	for _, ks := range []struct {
		db   int
		keys []fixtureKey
		want map[string]expect
	}{{dbFixture, libKeys, libs}, {dbUnclaimed, f.Unclaimed, unclaimed}} {
		writeFixture(t, ctx, addr, ks.db, ks.keys)
		keys := scanDB(t, ctx, addr, ks.db)
		if len(keys) != len(ks.want) {
			t.Fatalf("db %d: wrote %d distinct keys, scanned %d", ks.db, len(ks.want), len(keys))
		}
		perBucket := map[classify.Bucket]int{}
		for _, k := range keys {
			w, ok := ks.want[k.key]
			if !ok {
				t.Errorf("scanned a key that was not written: %q", k.key)
				continue
			}
			perBucket[k.m.Bucket]++
			src := ""
			if k.m.Rule != nil {
				src = k.m.Rule.Source
			}
			if k.m.Bucket != w.bucket || src != w.preset {
				t.Errorf("%s: %q (%s) → %s by %q; want %s by %q", w.library, k.key, k.typ, k.m.Bucket, src, w.bucket, w.preset)
			}
			if durable(w.bucket) && k.m.Bucket == classify.Cache {
				t.Errorf("SAFETY: %s key %q routed to cache", w.bucket, k.key)
			}
		}
		t.Logf("db %d: %d keys, per bucket %v", ks.db, len(keys), perBucket)
	}
}

// writeFixture writes keys into db as their libraries do: type, a value of
// the library's shape, TTL.
func writeFixture(t *testing.T, ctx context.Context, addr string, db int, keys []fixtureKey) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: db, DisableIdentity: true})
	defer rdb.Close()
	pipe := rdb.Pipeline()
	for _, k := range keys {
		v := k.Value
		if v == "" {
			v = "x"
		}
		switch k.Type {
		case "string":
			pipe.Set(ctx, k.Key, k.Value, 0)
		case "hash":
			pipe.HSet(ctx, k.Key, v, "1")
		case "list":
			pipe.RPush(ctx, k.Key, v)
		case "set":
			pipe.SAdd(ctx, k.Key, v)
		case "zset":
			pipe.ZAdd(ctx, k.Key, redis.Z{Score: 1764063720, Member: v})
		case "stream":
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: k.Key, Values: []string{"event", "added"}})
		default:
			t.Fatalf("fixture key %q: unknown type %q", k.Key, k.Type)
		}
		if k.TTL > 0 {
			pipe.Expire(ctx, k.Key, time.Duration(k.TTL)*time.Second)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

func assertAll(t *testing.T, keys []scanned, b classify.Bucket, source string) {
	t.Helper()
	if len(keys) == 0 {
		t.Fatal("no keys")
	}
	for _, k := range keys {
		if k.m.Bucket != b || k.m.Rule == nil || k.m.Rule.Source != source {
			t.Errorf("%q (%s) → %s by %v; want %s by %s", k.key, k.typ, k.m.Bucket, k.m.Rule, b, source)
		}
	}
}

func missingFragments(keys []scanned, frags []string) []string {
	var missing []string
	for _, f := range frags {
		found := false
		for _, k := range keys {
			if strings.Contains(k.key, f) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, f)
		}
	}
	return missing
}

func keyNames(keys []scanned) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%q(%s)", k.key, k.typ)
	}
	return out
}

// quietLogger keeps asynq's logs out of the test output.
type quietLogger struct{}

func (quietLogger) Debug(...any) {}
func (quietLogger) Info(...any)  {}
func (quietLogger) Warn(...any)  {}
func (quietLogger) Error(...any) {}
func (quietLogger) Fatal(...any) {}
