package libtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	scsredis "github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/boj/redistore"
	gincache "github.com/chenyahui/gin-cache"
	gincachepersist "github.com/chenyahui/gin-cache/persist"
	"github.com/gin-gonic/gin"
	"github.com/go-redis/cache/v9"
	redisv8 "github.com/go-redis/redis/v8"
	"github.com/go-redis/redis_rate/v10"
	"github.com/gofiber/fiber/v2"
	fibercache "github.com/gofiber/fiber/v2/middleware/cache"
	fiberlimiter "github.com/gofiber/fiber/v2/middleware/limiter"
	fibersession "github.com/gofiber/fiber/v2/middleware/session"
	fiberredis "github.com/gofiber/storage/redis/v3"
	redigo "github.com/gomodule/redigo/redis"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/throttled/throttled/v2"
	goredisstore "github.com/throttled/throttled/v2/store/goredisstore.v9"
	"github.com/ulule/limiter/v3"
	limiterredis "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/scan"
	"github.com/redisplit/redisplit/topology/topotest"
)

// writer is one library, in one configuration, writing its own keys through
// its public API into a staging database. Every key it writes belongs to
// bucket (the library's workload, key-patterns.md's "Bucket" column).
type writer struct {
	lib    string
	listed bool // the library is in key-patterns.md
	bucket classify.Bucket
	write  func(t *testing.T, ctx context.Context, addr string, db int) error
	// holdout is 0 for the libraries the evidence layer was developed
	// against, else the round (1 to 8) in which the library was added and
	// measured once before any change it prompted: its keys may stay
	// unknown (the test logs its accuracy), never land in a wrong bucket.
	holdout int
}

// errSkip: the library (an interpreter or a module) is not installed.
var errSkip = errors.New("not installed")

const stagingDB = 15

// TestScanAccuracy builds one keyspace from real libraries (each writes into
// a staging database through its public API; its keys are then COPYed into
// db 0, labelled with the library), runs the real scan on db 0 with zero
// configuration and checks where every key ends up: presets first, then the
// scan's proposals (accepted ones route, as the plan and --keys-out do).
//
// Done-when criteria of issue 13, measured here: ≥ 99% of the keys of
// libraries key-patterns.md lists in the right bucket (default settings, no
// prefix, custom prefixes), ≥ 95% for libraries it does not list, no
// session/queue/ratelimit key routed to cache, every unknown pattern with a
// reason and a fix, and at most a few dozen patterns to review.
//
// Libraries of other languages run through their interpreters (python3,
// php, ruby) when installed (scripts/deps.sh installs them); a missing one
// is skipped and named in the log.
func TestScanAccuracy(t *testing.T) {
	srv := topotest.Standalone(t)
	addr := srv.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := redis.NewClient(&redis.Options{Addr: addr, DB: 0, DisableIdentity: true})
	defer root.Close()
	staging := redis.NewClient(&redis.Options{Addr: addr, DB: stagingDB, DisableIdentity: true})
	defer staging.Close()

	label := map[string]*writer{}
	perLib := map[string]int{}
	var skipped []string
	collisions := 0
	// REDISPLIT_LIBTEST_SKIP_ROUND=N leaves holdout round N's libraries out:
	// for tuning on the other rounds without reading N's evidence
	skipRound, _ := strconv.Atoi(os.Getenv("REDISPLIT_LIBTEST_SKIP_ROUND"))
	for i := range writers {
		w := &writers[i]
		if skipRound > 0 && w.holdout == skipRound {
			skipped = append(skipped, w.lib+" (REDISPLIT_LIBTEST_SKIP_ROUND)")
			continue
		}
		if err := staging.FlushDB(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		err := w.write(t, ctx, addr, stagingDB)
		if errors.Is(err, errSkip) {
			skipped = append(skipped, w.lib)
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", w.lib, err)
		}
		keys, err := allKeys(ctx, staging)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			t.Fatalf("%s wrote no keys", w.lib)
		}
		for _, k := range keys {
			ok, err := staging.Copy(ctx, k, k, 0, false).Result()
			if err != nil {
				t.Fatal(err)
			}
			if ok == 0 {
				collisions++ // another library wrote the same name first
				continue
			}
			label[k] = w
			perLib[w.lib]++
		}
	}
	if err := staging.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if len(skipped) > 0 {
		t.Logf("skipped (not installed here; scripts/deps.sh installs them): %s", strings.Join(skipped, ", "))
	}

	cl, _, err := classify.Router(nil)
	if err != nil {
		t.Fatal(err)
	}
	keysOut := filepath.Join(t.TempDir(), "keys.jsonl")
	r, err := scan.Run(ctx, root, cl, scan.Options{KeysOut: keysOut, Count: 200})
	if err != nil {
		t.Fatal(err)
	}
	routed := readKeysOut(t, keysOut)

	type tally struct{ keys, right, unknown, wrong int }
	tallies := map[string]*tally{}
	var listed, unlisted tally
	holdouts := map[int]*tally{}
	var wrongs []string
	for k, w := range label {
		got, ok := routed[k]
		if !ok {
			continue // expired during the scan
		}
		ta := tallies[w.lib]
		if ta == nil {
			ta = &tally{}
			tallies[w.lib] = ta
		}
		agg := &unlisted
		switch {
		case w.holdout > 0:
			if holdouts[w.holdout] == nil {
				holdouts[w.holdout] = &tally{}
			}
			agg = holdouts[w.holdout]
		case w.listed:
			agg = &listed
		}
		ta.keys++
		agg.keys++
		switch {
		case got.Bucket == string(w.bucket):
			ta.right++
			agg.right++
		case got.Bucket == string(classify.Unknown):
			ta.unknown++
			agg.unknown++
		default:
			ta.wrong++
			agg.wrong++
			wrongs = append(wrongs, fmt.Sprintf("%s: %q → %s by %s (want %s)", w.lib, k, got.Bucket, got.Rule, w.bucket))
		}
		if got.Bucket == string(classify.Cache) && w.bucket != classify.Cache {
			t.Errorf("SAFETY: %s key %q (%s) routed to cache by %s", w.lib, k, w.bucket, got.Rule)
		}
	}
	sort.Strings(wrongs)
	for _, s := range wrongs {
		t.Errorf("wrong bucket: %s", s)
	}
	var libs []string
	for l := range tallies {
		libs = append(libs, l)
	}
	sort.Strings(libs)
	var table strings.Builder
	fmt.Fprintf(&table, "| library (configuration) | listed | holdout round | bucket | keys | right | unknown | wrong |\n|---|---|---|---|---|---|---|---|\n")
	for _, l := range libs {
		ta := tallies[l]
		var w *writer
		for i := range writers {
			if writers[i].lib == l {
				w = &writers[i]
			}
		}
		round := "-"
		if w.holdout > 0 {
			round = strconv.Itoa(w.holdout)
		}
		fmt.Fprintf(&table, "| %s | %v | %s | %s | %d | %d | %d | %d |\n", l, w.listed, round, w.bucket, ta.keys, ta.right, ta.unknown, ta.wrong)
	}
	pct := func(ta tally) float64 { return 100 * float64(ta.right) / float64(max(ta.keys, 1)) }
	fmt.Fprintf(&table, "\nlisted libraries: %d/%d keys right (%.1f%%); unlisted, developed against: %d/%d (%.1f%%); name collisions skipped: %d\n",
		listed.right, listed.keys, pct(listed), unlisted.right, unlisted.keys, pct(unlisted), collisions)
	all := unlisted
	for round := 1; round <= 8; round++ {
		if h := holdouts[round]; h != nil {
			fmt.Fprintf(&table, "holdout round %d (unlisted; see the writers' comments for the first, untuned measurement): now %d/%d right (%.1f%%), %d unknown, %d wrong\n", round, h.right, h.keys, pct(*h), h.unknown, h.wrong)
			all.keys, all.right, all.unknown, all.wrong = all.keys+h.keys, all.right+h.right, all.unknown+h.unknown, all.wrong+h.wrong
		}
	}
	fmt.Fprintf(&table, "all unlisted libraries (developed against and holdouts): %d/%d right (%.1f%%), %d unknown, %d wrong\n", all.right, all.keys, pct(all), all.unknown, all.wrong)
	review := len(r.Proposals)
	fmt.Fprintf(&table, "patterns to review (proposals, accepted or not): %d; unknown patterns: %d\n", review, len(r.UnknownPatterns))
	t.Log("\n" + table.String())
	for _, p := range r.Proposals {
		t.Logf("proposal %-9s %.2f accepted=%-5v %5d keys  %s  [%s]", p.Bucket, p.Confidence, p.Accepted, p.Keys, p.Pattern, p.DecidedBy)
	}
	for _, p := range r.UnknownPatterns {
		if p.Proposal == nil || p.Proposal.Reason == "" || p.Proposal.Fix == "" {
			t.Errorf("unknown pattern %s has no reason or fix: %+v", p.Pattern, p.Proposal)
			continue
		}
		t.Logf("unknown %s (%d keys): %s; fix: %s", p.Pattern, p.Keys, p.Proposal.Reason, p.Proposal.Fix)
	}
	if dir := os.Getenv("REDISPLIT_LIBTEST_OUT"); dir != "" {
		b, _ := json.MarshalIndent(r, "", "  ")
		os.WriteFile(filepath.Join(dir, "accuracy-report.json"), b, 0o644)
		os.WriteFile(filepath.Join(dir, "accuracy-table.md"), []byte(table.String()), 0o644)
	}
	if bin := os.Getenv("REDISPLIT_LIBTEST_COMPARE_BIN"); bin != "" {
		// the same keyspace through another redisplit binary (e.g. a
		// baseline build), for a before/after figure
		f := filepath.Join(t.TempDir(), "other.jsonl")
		out, err := exec.CommandContext(ctx, bin, "scan", "--legacy", "redis://"+addr+"/0", "--keys-out", f, "--config", "/dev/null", "-o", "json", "--no-progress").CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", bin, err, out)
		}
		other := readKeysOut(t, f)
		byGroup := map[string]*tally{}
		for k, w := range label {
			got, ok := other[k]
			if !ok {
				continue
			}
			g := "unlisted, developed against"
			switch {
			case w.holdout > 0:
				g = fmt.Sprintf("holdout round %d", w.holdout)
			case w.listed:
				g = "listed"
			}
			if byGroup[g] == nil {
				byGroup[g] = &tally{}
			}
			ta := byGroup[g]
			ta.keys++
			switch got.Bucket {
			case string(w.bucket):
				ta.right++
			case string(classify.Unknown):
				ta.unknown++
			default:
				ta.wrong++
			}
		}
		for g, ta := range byGroup {
			t.Logf("%s on this keyspace, %s: %d/%d right (%.1f%%), %d unknown, %d wrong", bin, g, ta.right, ta.keys, pct(*ta), ta.unknown, ta.wrong)
		}
	}
	if listed.keys > 0 && pct(listed) < 99 {
		t.Errorf("listed libraries: %.1f%% of keys in the right bucket, want ≥ 99%%", pct(listed))
	}
	if unlisted.keys > 0 && pct(unlisted) < 95 {
		t.Errorf("unlisted libraries: %.1f%% of keys in the right bucket, want ≥ 95%%", pct(unlisted))
	}
	if review > 40 {
		t.Errorf("%d patterns to review, want at most a few dozen", review)
	}
	if listed.keys == 0 {
		t.Fatal("no listed library wrote keys")
	}
}

func allKeys(ctx context.Context, c *redis.Client) ([]string, error) {
	var out []string
	iter := c.Scan(ctx, 0, "", 500).Iterator()
	for iter.Next(ctx) {
		out = append(out, iter.Val())
	}
	return out, iter.Err()
}

func readKeysOut(t *testing.T, path string) map[string]scan.KeyLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]scan.KeyLine{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l scan.KeyLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		k := l.Key
		if l.KeyB64 != "" {
			continue // binary names are not written by these libraries
		}
		out[k] = l
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// script runs a writer of another language: interp script WRITER HOST PORT DB.
// Exit status 77 (library missing) or a missing interpreter is errSkip.
func script(interp, file, name string) func(*testing.T, context.Context, string, int) error {
	return func(t *testing.T, ctx context.Context, addr string, db int) error {
		bin := interp
		if interp == "python3" {
			if _, err := os.Stat("/usr/bin/python3"); err == nil {
				bin = "/usr/bin/python3" // Debian's, with Debian's python3-* packages
			}
		}
		if _, err := exec.LookPath(bin); err != nil {
			return errSkip
		}
		host, port, _ := net.SplitHostPort(addr)
		cmd := exec.CommandContext(ctx, bin, filepath.Join("testdata", "writers", file), name, host, port, strconv.Itoa(db))
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 77 {
			return errSkip
		}
		if err != nil {
			return fmt.Errorf("%s %s %s: %v\n%s", bin, file, name, err, out)
		}
		return nil
	}
}

var writers = []writer{
	// ---- Go libraries (key-patterns.md lists them) ----
	{"asynq", true, classify.Queue, writeAsynq, 0},
	{"go-redis/redis_rate", true, classify.RateLimit, writeRedisRate, 0},
	{"go-redis/cache (bare application keys)", true, classify.Cache, writeGoRedisCache, 0},
	{"boj/redistore (default prefix)", true, classify.Session, writeRediStore(""), 0},
	{"boj/redistore (prefix gs:)", true, classify.Session, writeRediStore("gs:"), 0},
	{"alexedwards/scs (default prefix)", true, classify.Session, writeSCS(""), 0},
	{"alexedwards/scs (prefix app:)", true, classify.Session, writeSCS("app:"), 0},
	// ---- Python, PHP, Ruby libraries from Debian packages (listed) ----
	{"celery+kombu (defaults)", true, classify.Queue, script("python3", "python_libs.py", "celery"), 0},
	{"celery+kombu (global_keyprefix shop:)", true, classify.Queue, script("python3", "python_libs.py", "celery-prefix"), 0},
	{"django-redis cache (default KEY_PREFIX)", true, classify.Cache, script("python3", "python_libs.py", "django-cache"), 0},
	{"django-redis cache (KEY_PREFIX shop)", true, classify.Cache, script("python3", "python_libs.py", "django-cache-prefix"), 0},
	{"django cache sessions (default)", true, classify.Session, script("python3", "python_libs.py", "django-sessions"), 0},
	{"django cache sessions (KEY_PREFIX shop)", true, classify.Session, script("python3", "python_libs.py", "django-sessions-prefix"), 0},
	{"limits (fixed and moving windows)", true, classify.RateLimit, script("python3", "python_libs.py", "limits"), 0},
	{"Flask-Session (default prefix)", true, classify.Session, script("python3", "python_libs.py", "flask-session"), 0},
	{"Flask-Session (SESSION_KEY_PREFIX shop_auth:)", true, classify.Session, script("python3", "python_libs.py", "flask-session-prefix"), 0},
	{"phpredis session handler (default prefix)", true, classify.Session, script("php", "php_sessions.php", "phpredis"), 0},
	{"phpredis session handler (prefix shop_web:)", true, classify.Session, script("php", "php_sessions.php", "phpredis-prefix"), 0},
	{"Rails RedisCacheStore (no namespace)", true, classify.Cache, script("ruby", "rails_cache.rb", "rails-cache"), 0},
	{"Rails RedisCacheStore (namespace shop)", true, classify.Cache, script("ruby", "rails_cache.rb", "rails-cache-namespace"), 0},
	// ---- libraries key-patterns.md does not list (not tuned for) ----
	// rq was measured before the family rule (family.go) existed: 29/51
	{"python-rq", false, classify.Queue, script("python3", "python_libs.py", "rq"), 0},
	{"ulule/limiter (default prefix)", false, classify.RateLimit, writeUlule(""), 0},
	{"ulule/limiter (prefix api)", false, classify.RateLimit, writeUlule("api"), 0},
	// holdouts: added after the evidence layer was written and measured once,
	// before any change they prompted. First measurement: Flask-Caching
	// 62/62, cacheops 0/30, Symfony Cache 0/60 (the misses unknown, none wrong).
	{"Flask-Caching RedisCache (defaults)", false, classify.Cache, script("python3", "python_libs.py", "flask-caching"), 1},
	{"django-cacheops @cached", false, classify.Cache, script("python3", "python_libs.py", "cacheops"), 1},
	{"Symfony Cache RedisAdapter (namespace shop)", false, classify.Cache, script("php", "symfony_cache.php", "symfony"), 1},
	// second holdouts: added after the first holdouts' measurement and the
	// changes it prompted. First measurement: RateLimiter 0/45, Messenger 1/2
	// (unknown, none wrong); then class names in serialised values and JSON
	// envelopes in stream entries became evidence (tuned on them since).
	{"Symfony RateLimiter (cache-pool storage, defaults)", false, classify.RateLimit, script("php", "symfony_limits_messenger.php", "symfony-rate-limiter"), 2},
	{"Symfony Messenger Redis transport (defaults)", false, classify.Queue, script("php", "symfony_limits_messenger.php", "symfony-messenger"), 2},
	// third holdouts: added after the second holdouts' changes, measured
	// once, untouched since. First measurement: gin-cache 0/30, Fiber 0/25
	// (unknown, none wrong).
	{"gin-cache response cache (defaults)", false, classify.Cache, writeGinCache, 3},
	{"Fiber session middleware + gofiber/storage redis (defaults)", false, classify.Session, writeFiberSession, 3},
	// fourth holdouts: added after the third holdouts' failures were read
	// but before any evidence changed (the proof that what round 3 prompted
	// generalises), measured once, untouched since. First measurement:
	// dogpile.cache 0/60, Beaker sessions 0/25 (session 0.30, below
	// confidence), Beaker cache 30/30, Fiber limiter 0/25 (ratelimit 0.40,
	// below confidence), Fiber cache 0/30: 30/170 (17.6%), the misses
	// unknown, none wrong. Not a blind round: its values were read while
	// the writers were written, and the changes that followed used them
	// (hits, Beaker's _accessed_time, values over a cache name); without
	// those it measures 60/171 (Fiber cache decided by round 3's changes).
	{"dogpile.cache redis backend (defaults)", false, classify.Cache, script("python3", "python_libs.py", "dogpile"), 4},
	{"Beaker sessions, ext:redis (defaults)", false, classify.Session, script("python3", "python_libs.py", "beaker-sessions"), 4},
	{"Beaker cache regions, ext:redis (defaults)", false, classify.Cache, script("python3", "python_libs.py", "beaker-cache"), 4},
	{"Fiber limiter middleware + gofiber/storage redis (defaults)", false, classify.RateLimit, writeFiberLimiter, 4},
	{"Fiber cache middleware + gofiber/storage redis (defaults)", false, classify.Cache, writeFiberCache, 4},
	// fifth holdouts: added after every evidence change of this pass was
	// made (round 4's values had been read while writing its writers, so
	// round 4 is not a clean generalisation check), measured once, untouched
	// since. First measurement: Predis sessions 25/25, redis-activesupport
	// 46/46, cachelib 0/30 (unknown): 71/101 (70.3%), none wrong; but the
	// Predis sessions' {id} proposal (regex ^[A-Za-z0-9+/=_-]+$) routed
	// dogpile's front_page (round 4) to session: a placeholder regex wider
	// than the placeholder, fixed after this measurement.
	{"Predis session handler (defaults: no prefix)", false, classify.Session, script("php", "php_predis_sessions.php", "predis"), 5},
	{"redis-activesupport ActiveSupport::Cache::RedisStore (defaults)", false, classify.Cache, script("ruby", "redis_activesupport.rb", "redis-store"), 5},
	{"cachelib RedisCache (defaults: no prefix)", false, classify.Cache, script("python3", "python_libs.py", "cachelib"), 5},
	// sixth holdouts: added before any change of this pass (issue 13's
	// second pass), their keys counted but their values not read while the
	// writers were written, measured once before any evidence changed:
	// CacheControl 0/30 (ratelimit 0.40 from the IP in its URL keys, below
	// confidence), requests-cache 0/25 (cache 0.50, below confidence),
	// django-redis-sessions 0/25, Django Q 0/1, sidekiq-cron 21/21 (family
	// cron_job:): 21/102 (20.6%), the misses unknown, none wrong. Collateral:
	// django-redis-sessions' bare ids share the {id} pattern with Predis's
	// sessions (round 5), and the three values read of it were no longer a
	// majority of PHP sessions: round 5 fell from 71/101 to 46/101, and
	// the patterns to review rose from 40 to 46.
	// Then tuned on rounds 1-5 only (cachelib's and dogpile's envelopes,
	// bare ids read per key length, wide placeholders ordered last, one
	// review item per accepted family): 46/102, django-redis-sessions 25/25
	// only through the {id} pattern shared with Predis's sessions (their own
	// signed base64 JSON shows no signature); the rest still unknown.
	{"CacheControl RedisCache (HTTP client cache, defaults)", false, classify.Cache, script("python3", "python_libs.py", "cachecontrol"), 6},
	{"requests-cache redis backend (defaults)", false, classify.Cache, script("python3", "python_libs.py", "requests-cache"), 6},
	{"django-redis-sessions (defaults: no prefix)", false, classify.Session, script("python3", "python_libs.py", "django-redis-sessions"), 6},
	{"Django Q redis broker (cluster name shop)", false, classify.Queue, script("python3", "python_libs.py", "django-q"), 6},
	{"sidekiq-cron job definitions (defaults)", false, classify.Queue, script("ruby", "sidekiq_cron.rb", "sidekiq-cron"), 6},
	// seventh holdouts (issue 13's third pass): added before any change of
	// this pass, their values not read while the writers were written (only
	// their key counts), measured once before any evidence changed:
	// cachy 0/30, aiohttp-session 0/25, Moneta sessions 0/25, CHI 0/32,
	// Channels 0/16: 0/128, all unknown, none wrong. Collateral: their keys
	// share patterns with earlier rounds' and outvote the few values read,
	// so Symfony RateLimiter (round 2) fell from 45/45 to 0/45, Predis
	// sessions (round 5) from 25/25 to 0/25, django-redis-sessions (round 6)
	// from 25/25 to 0/25, all to unknown; all unlisted 513/882 (58.2%); the
	// patterns to review rose from 40 to 42 (over the test's 40).
	// Then tuned on rounds 1-6 and that collateral (bare ids per length,
	// read classes and two-writer detection, signed and headered payloads,
	// URL hosts, review grouping), round 7 measured again once: 0/128 (none
	// decided), 0 wrong; Predis back to 25/25, django-redis-sessions 25/25 on
	// their own signed payloads; Symfony RateLimiter 0/45, unknown: its
	// 40-hex keys share {hex40} with cachy's SHA-1 keys (two writers, no name
	// rule separates them); 594/882 unlisted, 32 patterns to review.
	// Then (issue 13's fourth pass, after round 8's untuned measurement)
	// tuned on rounds 1-7 (CHI's packed expiry header, aiohttp-session's
	// {created, session} record and its AIOHTTP_SESSION_ name, 256 bytes
	// read, message members of sorted sets): round 7 55/128 (CHI 30/32,
	// aiohttp-session 25/25; cachy, Moneta and Channels still unknown),
	// requests-cache (round 6) 25/25; 0 wrong.
	{"cachy RedisStore (defaults: no prefix)", false, classify.Cache, script("python3", "python_libs.py", "cachy"), 7},
	{"aiohttp-session RedisStorage (defaults)", false, classify.Session, script("python3", "python_libs.py", "aiohttp-session"), 7},
	{"Rack::Session::Moneta over Moneta's Redis adapter (defaults)", false, classify.Session, script("ruby", "moneta_sessions.rb", "moneta"), 7},
	{"CHI Redis driver (Perl, defaults)", false, classify.Cache, script("perl", "chi_cache.pl", "chi"), 7},
	// channels_redis's channel keys expire 60 s after their last message
	{"Django Channels redis channel layer (defaults)", false, classify.Queue, script("python3", "python_libs.py", "channels"), 7},
	// eighth holdouts (issue 13's fourth pass): added before any change of
	// this pass, their values not read (only their key counts: APScheduler 2,
	// cachalot 36, Catalyst 50, Geocoder 30), measured once before any
	// evidence changed: APScheduler 0/2, cachalot 36/36, Catalyst 25/50,
	// Geocoder 0/30:
	// 61/118 (51.7%), the misses unknown, none wrong; no other round moved
	// (all unlisted 655/1000), 37 patterns to review. Then, after tuning on
	// rounds 1-7 only (their values and evidence unread), measured once
	// more: 61/118 again (the same keys), 0 wrong: none of that pass's
	// evidence reached them.
	{"APScheduler RedisJobStore (defaults)", false, classify.Queue, script("python3", "python_libs.py", "apscheduler"), 8},
	{"django-cachalot over django-redis (defaults)", false, classify.Cache, script("python3", "python_libs.py", "cachalot"), 8},
	{"Catalyst::Plugin::Session::Store::Redis (Perl, defaults)", false, classify.Session, script("perl", "catalyst_sessions.pl", "catalyst"), 8},
	{"Geocoder lookup cache over redis-rb (Ruby, defaults)", false, classify.Cache, script("ruby", "geocoder_cache.rb", "geocoder"), 8},
	// last: throttled's GCRA state lives about 18 s, less than the writers
	// above take; written earlier, it expired before the scan read it
	{"throttled/throttled GCRA (prefix throttled:)", false, classify.RateLimit, writeThrottled, 0},
}

func writeAsynq(t *testing.T, ctx context.Context, addr string, db int) error {
	opt := asynq.RedisClientOpt{Addr: addr, DB: db}
	client := asynq.NewClient(opt)
	defer client.Close()
	for i := 0; i < 20; i++ {
		if _, err := client.Enqueue(asynq.NewTask("email:welcome", []byte(`{"user":42}`)), asynq.Retention(time.Hour)); err != nil {
			return err
		}
	}
	for i := 0; i < 5; i++ {
		if _, err := client.Enqueue(asynq.NewTask("report:daily", nil), asynq.ProcessIn(time.Hour), asynq.Queue("critical")); err != nil {
			return err
		}
	}
	if _, err := client.Enqueue(asynq.NewTask("email:unique", nil), asynq.Unique(time.Hour)); err != nil {
		return err
	}
	return nil
}

func writeRedisRate(t *testing.T, ctx context.Context, addr string, db int) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: db, DisableIdentity: true})
	defer rdb.Close()
	l := redis_rate.NewLimiter(rdb)
	for i := 0; i < 20; i++ {
		for _, k := range []string{fmt.Sprintf("user:%d", i), fmt.Sprintf("ip:203.0.113.%d", i)} {
			if _, err := l.Allow(ctx, k, redis_rate.PerHour(10)); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeGoRedisCache: go-redis/cache writes the application's keys bare;
// here a shop's: profiles by user id and e-mail, products by SKU, per-tenant
// dashboards, a few singletons.
func writeGoRedisCache(t *testing.T, ctx context.Context, addr string, db int) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: db, DisableIdentity: true})
	defer rdb.Close()
	c := cache.New(&cache.Options{Redis: rdb})
	type profile struct {
		ID    int
		Name  string
		Email string
		Bio   string
	}
	set := func(k string, v any) error {
		return c.Set(&cache.Item{Ctx: ctx, Key: k, Value: v, TTL: time.Hour})
	}
	for i := 0; i < 30; i++ {
		bio := ""
		if i%2 == 0 {
			bio = strings.Repeat("likes lamps ", 10) // compressed (s2) above 64 bytes
		}
		if err := set(fmt.Sprintf("user:%d:profile", i), profile{i, fmt.Sprintf("user %d", i), "", bio}); err != nil {
			return err
		}
		if err := set(fmt.Sprintf("profile-by-email:user%d@example.com", i), profile{ID: i}); err != nil {
			return err
		}
	}
	for i := 0; i < 20; i++ {
		if err := set(fmt.Sprintf("product:SKU-%05d-XL", i*37), map[string]any{"stock": i, "price": 9.5}); err != nil {
			return err
		}
	}
	for _, tenant := range []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka"} {
		if err := set("tenant:"+tenant+":dashboard", []int{1, 2, 3}); err != nil {
			return err
		}
	}
	for _, k := range []string{"settings", "feature-flags", "homepage"} {
		if err := set(k, map[string]string{"theme": "dark"}); err != nil {
			return err
		}
	}
	return nil
}

// writeRediStore: gorilla sessions saved through boj/redistore, with its
// default prefix or an application's.
func writeRediStore(prefix string) func(*testing.T, context.Context, string, int) error {
	return func(t *testing.T, ctx context.Context, addr string, db int) error {
		store, err := redistore.NewRediStoreWithDB(4, "tcp", addr, "", "", strconv.Itoa(db), []byte("0123456789abcdef0123456789abcdef"))
		if err != nil {
			return err
		}
		defer store.Close()
		if prefix != "" {
			store.SetKeyPrefix(prefix)
		}
		for i := 0; i < 20; i++ {
			req := httptest.NewRequest("GET", "/login", nil)
			sess, err := store.New(req, "app-session")
			if err != nil {
				return err
			}
			sess.Values["user_id"] = i
			sess.Values["role"] = "customer"
			if err := store.Save(req, httptest.NewRecorder(), sess); err != nil {
				return err
			}
		}
		return nil
	}
}

// writeSCS: sessions committed through alexedwards/scs's Redis store, with
// scs's own codec (gob of its session record).
func writeSCS(prefix string) func(*testing.T, context.Context, string, int) error {
	return func(t *testing.T, ctx context.Context, addr string, db int) error {
		pool := &redigo.Pool{Dial: func() (redigo.Conn, error) { return redigo.Dial("tcp", addr, redigo.DialDatabase(db)) }}
		defer pool.Close()
		store := scsredis.New(pool)
		if prefix != "" {
			store = scsredis.NewWithPrefix(pool, prefix)
		}
		for i := 0; i < 20; i++ {
			token := fmt.Sprintf("Yq8wX2vN5kLmP0rT3sU6zA9bC1dE4fGhJ7iK0lMnO%02d", i)
			b, err := scs.GobCodec{}.Encode(time.Now().Add(24*time.Hour), map[string]any{"userID": i, "flash": "welcome"})
			if err != nil {
				return err
			}
			if err := store.Commit(token, b, time.Now().Add(24*time.Hour)); err != nil {
				return err
			}
		}
		return nil
	}
}

func writeUlule(prefix string) func(*testing.T, context.Context, string, int) error {
	return func(t *testing.T, ctx context.Context, addr string, db int) error {
		rdb := redis.NewClient(&redis.Options{Addr: addr, DB: db, DisableIdentity: true})
		defer rdb.Close()
		opts := limiter.StoreOptions{Prefix: limiter.DefaultPrefix}
		if prefix != "" {
			opts.Prefix = prefix
		}
		store, err := limiterredis.NewStoreWithOptions(rdb, opts)
		if err != nil {
			return err
		}
		lim := limiter.New(store, limiter.Rate{Period: time.Minute, Limit: 100})
		for i := 0; i < 25; i++ {
			if _, err := lim.Get(ctx, fmt.Sprintf("198.51.100.%d", i)); err != nil {
				return err
			}
		}
		return nil
	}
}

func writeThrottled(t *testing.T, ctx context.Context, addr string, db int) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: db, DisableIdentity: true})
	defer rdb.Close()
	store, err := goredisstore.NewCtx(rdb, "throttled:")
	if err != nil {
		return err
	}
	rl, err := throttled.NewGCRARateLimiterCtx(store, throttled.RateQuota{MaxRate: throttled.PerMin(20), MaxBurst: 5})
	if err != nil {
		return err
	}
	for i := 0; i < 25; i++ {
		if _, _, err := rl.RateLimitCtx(ctx, fmt.Sprintf("user-%d", i), 1); err != nil {
			return err
		}
	}
	return nil
}

// writeGinCache: gin-cache's response cache (CacheByRequestURI) over its
// Redis store, with its defaults, serving a shop's pages.
func writeGinCache(t *testing.T, ctx context.Context, addr string, db int) error {
	gin.SetMode(gin.ReleaseMode)
	rdb := redisv8.NewClient(&redisv8.Options{Addr: addr, DB: db})
	defer rdb.Close()
	r := gin.New()
	r.GET("/products/:id", gincache.CacheByRequestURI(gincachepersist.NewRedisStore(rdb), 10*time.Minute), func(c *gin.Context) {
		c.JSON(200, gin.H{"id": c.Param("id"), "name": "lamp"})
	})
	for i := 0; i < 30; i++ {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest("GET", fmt.Sprintf("/products/%d?color=red", i), nil))
		if w.Code != 200 {
			return fmt.Errorf("gin: %d", w.Code)
		}
	}
	return nil
}

// writeFiberSession: Fiber's session middleware over gofiber/storage's
// Redis storage, with their defaults.
func writeFiberSession(t *testing.T, ctx context.Context, addr string, db int) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: db, DisableIdentity: true})
	defer rdb.Close()
	store := fibersession.New(fibersession.Config{Storage: fiberredis.NewFromConnection(rdb)})
	app := fiber.New()
	app.Get("/login/:id", func(c *fiber.Ctx) error {
		sess, err := store.Get(c)
		if err != nil {
			return err
		}
		sess.Set("user_id", c.Params("id"))
		return sess.Save()
	})
	for i := 0; i < 25; i++ {
		resp, err := app.Test(httptest.NewRequest("GET", fmt.Sprintf("/login/%d", i), nil))
		if err != nil {
			return err
		}
		resp.Body.Close()
	}
	return nil
}

// writeFiberLimiter: Fiber's limiter middleware over gofiber/storage's Redis
// storage, with their defaults (the client's IP is the key; the app trusts
// X-Forwarded-For so that each simulated client has its own).
func writeFiberLimiter(t *testing.T, ctx context.Context, addr string, db int) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: db, DisableIdentity: true})
	defer rdb.Close()
	app := fiber.New(fiber.Config{ProxyHeader: fiber.HeaderXForwardedFor})
	app.Use(fiberlimiter.New(fiberlimiter.Config{Storage: fiberredis.NewFromConnection(rdb)}))
	app.Get("/api/orders", func(c *fiber.Ctx) error { return c.SendString("[]") })
	for i := 0; i < 25; i++ {
		req := httptest.NewRequest("GET", "/api/orders", nil)
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
		resp, err := app.Test(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
	}
	return nil
}

// writeFiberCache: Fiber's cache middleware over gofiber/storage's Redis
// storage, with their defaults, serving a shop's pages.
func writeFiberCache(t *testing.T, ctx context.Context, addr string, db int) error {
	rdb := redis.NewClient(&redis.Options{Addr: addr, DB: db, DisableIdentity: true})
	defer rdb.Close()
	app := fiber.New()
	app.Use(fibercache.New(fibercache.Config{Storage: fiberredis.NewFromConnection(rdb)}))
	app.Get("/shop/:id", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"id": c.Params("id"), "name": "lamp"}) })
	for i := 0; i < 15; i++ {
		resp, err := app.Test(httptest.NewRequest("GET", fmt.Sprintf("/shop/%d", i), nil))
		if err != nil {
			return err
		}
		resp.Body.Close()
	}
	return nil
}
