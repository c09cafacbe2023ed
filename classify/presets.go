package classify

import "strings"

// Preset is a named, built-in set of rules recognising the keys one library
// family writes, including its bookkeeping keys (stats, heartbeats, locks,
// results, process identities), which belong to their owner's bucket.
//
// Guarantees, checked by this package's tests against the keys listed in
// key-patterns.md:
//   - every rule is a pure function of the key name and, where it names one,
//     the Redis type; never TTL or value;
//   - no preset routes a session, queue or rate-limit key to cache, whatever
//     type the key is given and even with any one preset switched off (its
//     own keys may then be unknown, never cache):
//     where a key shape is too generic to claim safely, the preset leaves it
//     unknown (scan's heuristics then propose a bucket with evidence);
//   - presets are evaluated in the order Presets returns them, specific
//     before generic, so that a framework's session and rate-limit rules win
//     over its cache catch-all.
type Preset struct {
	Name        string
	Description string // what the preset routes and the sources it was read from
	Rules       []Rule // Source is "preset <Name>"
}

// Presets returns all built-in presets in evaluation order. The result is a
// fresh copy; callers may modify it.
func Presets() []Preset {
	ps := builtin()
	for i := range ps {
		for j := range ps[i].Rules {
			ps[i].Rules[j].Source = "preset " + ps[i].Name
		}
	}
	return ps
}

// PresetNames returns the names of the built-in presets in evaluation order.
func PresetNames() []string {
	var out []string
	for _, p := range builtin() {
		out = append(out, p.Name)
	}
	return out
}

// rule constructors; the matcher kind is chosen by the constructor.
func pfx(name, prefix string, b Bucket) Rule { return Rule{Name: name, Prefix: prefix, Bucket: b} }
func glob(name, g, typ string, b Bucket) Rule {
	return Rule{Name: name, Glob: g, Type: typ, Bucket: b}
}
func rx(name, expr, typ string, b Bucket) Rule {
	return Rule{Name: name, Regex: expr, Type: typ, Bucket: b}
}

// Shared key shapes.
const (
	uuidRe = `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
	// Laravel's cache prefix, with an optional Redis connection prefix, over
	// the whole prefix matrix of key-patterns.md (5.8–8 "x_cache:", 9–10
	// "x_cache_:", 11 "x_cache_", 12 "x-cache-").
	laravelCacheOpt = `(?:(?:[a-z0-9_]+_database_)?[a-z0-9_]+_cache(?:_?:|_)|(?:[a-z0-9-]+-database-)?[a-z0-9-]+-cache-)`
	// The same prefix with the connection prefix required: what the cache
	// catch-all claims (a bare "x_cache_" prefix is too generic to call cache).
	laravelCacheReq = `(?:[a-z0-9_]+_database_[a-z0-9_]+_cache(?:_?:|_)|[a-z0-9-]+-database-[a-z0-9-]+-cache-)`
)

func builtin() []Preset {
	return []Preset{
		// ---- queues: library-owned prefixes and literal names first ----
		{
			Name: "sidekiq",
			Description: "Sidekiq (7+, no namespace; ≤6 under the sidekiq: namespace): queues, schedule/retry/dead sets, " +
				"process identities and their work/signals keys, stats and metrics. " +
				"Metrics and stats key formats changed across 6.5–7.x; all are matched. " +
				"Sources: sidekiq/sidekiq lib/sidekiq/client.rb, fetch.rb, job_retry.rb, launcher.rb, component.rb, api.rb, " +
				"metrics/tracking.rb, metrics/shared.rb.",
			Rules: []Rule{
				pfx("namespace (Sidekiq ≤6 redis-namespace)", "sidekiq:", Queue),
				rx("queue set / process set", `^(?:queues|processes)$`, "set", Queue),
				rx("schedule, retry and dead sets", `^(?:schedule|retry|dead)$`, "zset", Queue),
				glob("job queue", "queue:*", "list", Queue),
				rx("stats counters", `^stat:(?:processed|failed)(?::[0-9]{4}-?[0-9]{2}-?[0-9]{2})?$`, "", Queue),
				rx("process identity hostname:pid:nonce", `^[^:\s]+:[0-9]+:[0-9a-f]{12}$`, "hash", Queue),
				rx("process work hash (:workers before 7)", `^[^:\s]+:[0-9]+:[0-9a-f]{12}:work(?:ers)?$`, "hash", Queue),
				rx("process signals", `^[^:\s]+:[0-9]+:[0-9a-f]{12}-signals$`, "list", Queue),
				rx("job and queue metrics (daily, hourly, per minute)", `^[jq]\|[0-9]{6,8}(?:\|[0-9]{1,2}(?::[0-9]{1,2})?)?$`, "hash", Queue),
				rx("job execution histogram", `^h\|[A-Za-z_][A-Za-z0-9_:]*-.+$`, "string", Queue),
				rx("job execution histogram (7.0: no h| prefix)", `^[A-Z][A-Za-z0-9_:]*-[0-9]{2}-[0-9]{1,2}:[0-9]{1,2}$`, "string", Queue),
			},
		},
		{
			Name: "resque",
			Description: "Resque (default namespace resque:): queues, workers, heartbeats, stats, failures. " +
				"Sources: resque/resque lib/resque/data_store.rb, lib/resque.rb, worker.rb, failure.rb, failure/redis.rb.",
			Rules: []Rule{pfx("everything under the resque namespace", "resque:", Queue)},
		},
		{
			Name: "celery",
			Description: "Celery with the kombu Redis transport (no global_keyprefix) and the Celery Redis result backend: " +
				"the default queue list `celery` and priority sub-queues, exchange bindings, unacked bookkeeping, " +
				"pidbox replies, task and group results. Other queue names are bare lists and are left to scan. " +
				"Sources: celery/kombu kombu/transport/redis.py, kombu/pidbox.py; celery/celery celery/backends/base.py, " +
				"backends/redis.py, app/defaults.py.",
			Rules: []Rule{
				rx("default queue", `^celery$`, "list", Queue),
				rx("priority sub-queue", `^.+\x06\x16[0-9]+$`, "list", Queue),
				pfx("exchange bindings", "_kombu.binding.", Queue),
				rx("unacked messages", `^unacked$`, "hash", Queue),
				rx("unacked index", `^unacked_index$`, "zset", Queue),
				rx("unacked mutex", `^unacked_mutex$`, "string", Queue),
				rx("pidbox reply queue", `\.reply\.celery\.pidbox$`, "", Queue),
				pfx("task result", "celery-task-meta-", Queue),
				pfx("group/chord result", "celery-taskset-meta-", Queue),
			},
		},
		{
			Name: "bullmq",
			Description: "BullMQ and Bull v3 (prefix bull:): wait/active/paused lists, delayed/prioritized/completed/failed sets, " +
				"job hashes, locks, logs, events streams, metrics, limiter and stalled-check keys. " +
				"Sources: taskforcesh/bullmq src/classes/queue-keys.ts, src/commands/*.lua; OptimalBits/bull lib/queue.js, lib/commands/*.lua.",
			Rules: []Rule{pfx("everything under the bull prefix", "bull:", Queue)},
		},
		{
			Name: "asynq",
			Description: "asynq (prefix asynq:): queues, task hashes, pending/active lists, scheduled/retry/archived/completed/lease sets, " +
				"stats, servers, workers, schedulers, unique locks, groups. " +
				"Sources: hibiken/asynq internal/base/base.go, internal/rdb/rdb.go.",
			Rules: []Rule{pfx("everything under the asynq prefix", "asynq:", Queue)},
		},
		{
			Name: "machinery",
			Description: "machinery (Go): the default queue list machinery_tasks, delayed_tasks, task/chord/group state. " +
				"Queues named by another routing key are bare lists, left to scan. " +
				"Sources: RichardKnop/machinery v2/config/config.go, v2/brokers/redis/goredis.go, v2/brokers/redis/redis.go, " +
				"v2/tasks/signature.go, v2/tasks/workflow.go, v2/backends/redis/goredis.go.",
			Rules: []Rule{
				rx("default queue", `^machinery_tasks$`, "list", Queue),
				rx("delayed tasks", `^delayed_tasks$`, "zset", Queue),
				rx("task/chord/group state", `^(?:task|chord|group)_`+uuidRe+`$`, "string", Queue),
			},
		},
		{
			Name:        "dramatiq",
			Description: "dramatiq (namespace dramatiq:): queues, message hashes, delay and dead-letter queues, heartbeats, acks. Sources: Bogdanp/dramatiq dramatiq/brokers/redis.py, brokers/redis/dispatch.lua.",
			Rules:       []Rule{pfx("everything under the dramatiq namespace", "dramatiq:", Queue)},
		},
		{
			Name:        "arq",
			Description: "arq (prefix arq:): the queue zset, jobs, in-progress markers, results, retries, aborts, health checks. Sources: python-arq/arq arq/constants.py.",
			Rules:       []Rule{pfx("everything under the arq prefix", "arq:", Queue)},
		},
		{
			Name:        "huey",
			Description: "huey: queue, schedule, results, counters and notification keys (huey.redis.{name}, huey.schedule.{name}, ...). Sources: coleifer/huey huey/storage.py.",
			Rules:       []Rule{rx("huey storage keys", `^huey\.(?:redis|schedule|results|counters|notify|r|c)\.`, "", Queue)},
		},
		{
			Name:        "rmq",
			Description: "adjust/rmq (Go): queues, ready/rejected/unacked lists, connections and heartbeats (rmq::...). Sources: adjust/rmq redis_keys.go.",
			Rules:       []Rule{pfx("everything under rmq::", "rmq::", Queue)},
		},
		{
			Name:        "bee-queue",
			Description: "bee-queue (prefix bq:): jobs hash, waiting/active lists, succeeded/failed/stalling sets, delayed set, id counter, stall block. Sources: bee-queue/bee-queue lib/queue.js, lib/defaults.js, lib/lua/addJob.lua.",
			Rules:       []Rule{pfx("everything under the bq prefix", "bq:", Queue)},
		},
		{
			Name: "gocraft-work",
			Description: "gocraft/work (Go; keys under a required namespace, e.g. work:): job lists, in-progress lists, locks, " +
				"known jobs, retry/dead/scheduled sets, worker pools and worker observations, unique-job markers, periodic enqueue marker. " +
				"Sources: gocraft/work redis.go, observer.go.",
			Rules: []Rule{
				rx("job queue", `^(?:.+:)?jobs:[^:]+$`, "list", Queue),
				rx("in-progress list", `^(?:.+:)?jobs:[^:]+:[^:]+:inprogress$`, "list", Queue),
				rx("job lock and concurrency control", `^(?:.+:)?jobs:[^:]+:(?:lock|lock_info|max_concurrency|paused)$`, "", Queue),
				rx("known jobs", `^(?:.+:)?known_jobs$`, "set", Queue),
				rx("retry, dead and scheduled sets", `^(?:.+:)?(?:retry|dead|scheduled)$`, "zset", Queue),
				rx("worker pools", `^(?:.+:)?worker_pools$`, "set", Queue),
				rx("worker pool heartbeat", `^(?:.+:)?worker_pools:[0-9a-f]+$`, "hash", Queue),
				rx("worker observation", `^(?:.+:)?worker:[0-9a-f]+$`, "hash", Queue),
				rx("unique job marker", `^(?:.+:)?unique:[^:]+:.*$`, "string", Queue),
				rx("periodic enqueue marker", `^(?:.+:)?last_periodic_enqueue$`, "", Queue),
			},
		},

		// ---- sessions ----
		{
			Name:        "connect-redis",
			Description: "connect-redis for express-session: sess:{sid}. Sources: tj/connect-redis index.ts.",
			Rules:       []Rule{pfx("express session", "sess:", Session)},
		},
		{
			Name: "spring-session",
			Description: "Spring Session, RedisSessionRepository and RedisIndexedSessionRepository (and the reactive indexed repository): " +
				"session hashes, expires markers, expiration sets, principal indexes, all under spring:session:; under a custom " +
				"redisNamespace, the session hashes and expires markers ({ns}:sessions:[expires:]{uuid}). " +
				"Sources: spring-projects/spring-session spring-session-data-redis RedisSessionRepository.java, RedisIndexedSessionRepository.java, " +
				"RedisSessionExpirationPolicy.java, ReactiveRedisSessionIndexer.java, SortedSetReactiveRedisSessionExpirationStore.java.",
			Rules: []Rule{
				pfx("everything under spring:session:", "spring:session:", Session),
				rx("session hash under a custom namespace", `^.+:sessions:`+uuidRe+`$`, "hash", Session),
				rx("session expiry marker under a custom namespace", `^.+:sessions:expires:`+uuidRe+`$`, "string", Session),
			},
		},
		{
			Name:        "phpredis",
			Description: "phpredis session handler: PHPREDIS_SESSION:{sid}, its _LOCK keys, and the cluster form PHPREDIS_CLUSTER_SESSION:{sid}. Sources: phpredis/phpredis redis_session.c.",
			Rules: []Rule{
				pfx("PHP session", "PHPREDIS_SESSION:", Session),
				pfx("PHP session (cluster handler)", "PHPREDIS_CLUSTER_SESSION:", Session),
			},
		},
		{
			Name:        "symfony",
			Description: "Symfony RedisSessionHandler: sf_s{sid} (a PHP session id). Sources: symfony/symfony src/Symfony/Component/HttpFoundation/Session/Storage/Handler/RedisSessionHandler.php.",
			Rules:       []Rule{rx("Symfony session", `^sf_s[A-Za-z0-9,-]{22,256}$`, "", Session)},
		},
		{
			Name: "gorilla",
			Description: "gorilla/sessions Redis stores: boj/redistore (also used by gin-contrib/sessions) session_{52 base32 chars} and " +
				"rbcervilla/redisstore session:{id}. Sources: boj/redistore redistore.go; rbcervilla/redisstore redisstore.go.",
			Rules: []Rule{
				rx("boj/redistore session", `^session_[A-Z2-7]{52}$`, "", Session),
				rx("rbcervilla/redisstore session (64 random bytes, base32)", `^session:[A-Z2-7]{103}$`, "", Session),
			},
		},
		{
			Name:        "scs",
			Description: "alexedwards/scs (Go session manager) Redis stores redisstore and goredisstore: scs:session:{token}. Sources: alexedwards/scs redisstore/redisstore.go.",
			Rules:       []Rule{pfx("scs session", "scs:session:", Session)},
		},
		{
			Name: "flask-session",
			Description: "Flask-Session (≥0.6 msgpack, older pickle) and any other session:{sid} string store. Only strings: an app may " +
				"reuse session: for hashes or sorted sets of analytics, which stay unknown. Sources: pallets-eco/flask-session " +
				"src/flask_session/defaults.py, redis/redis.py, base.py.",
			Rules: []Rule{glob("session string", "session:*", "string", Session)},
		},

		// ---- rate limits ----
		{
			Name:        "rack-attack",
			Description: "rack-attack throttles, fail2ban and allow2ban counters ([namespace:]rack::attack:...). Sources: rack/rack-attack lib/rack/attack/cache.rb, lib/rack/attack/fail2ban.rb.",
			Rules:       []Rule{rx("rack-attack counter", `^(?:.*:)?rack::attack:`, "", RateLimit)},
		},
		{
			Name:        "redis-rate",
			Description: "go-redis/redis_rate (GCRA): rate:{key}. Sources: go-redis/redis_rate rate.go, lua.go.",
			Rules:       []Rule{pfx("GCRA state", "rate:", RateLimit)},
		},
		{
			Name:        "rate-limiter-flexible",
			Description: "node rate-limiter-flexible with the default keyPrefix: rlflx:{key} (counters and block keys). Sources: animir/node-rate-limiter-flexible lib/RateLimiterAbstract.js, lib/RateLimiterRedis.js.",
			Rules:       []Rule{pfx("rate-limiter-flexible counter", "rlflx:", RateLimit)},
		},
		{
			Name:        "express-rate-limit",
			Description: "express-rate-limit with rate-limit-redis: rl:{client}. Also the common hand-rolled rl: limiters. Sources: express-rate-limit/rate-limit-redis source/lib.ts, source/scripts.ts.",
			Rules:       []Rule{pfx("rate-limit-redis counter", "rl:", RateLimit)},
		},
		{
			Name: "limits",
			Description: "limits / Flask-Limiter / slowapi: fixed, moving and sliding windows (LIMITS:LIMITER/... since limits 3.7, LIMITER/... before). " +
				"Sources: alisaifee/limits limits/limits.py, limits/storage/redis.py, limits/resources/redis/lua_scripts; alisaifee/flask-limiter flask_limiter/_extension.py.",
			Rules: []Rule{
				pfx("limits window (≥3.7)", "LIMITS:", RateLimit),
				pfx("limits window (<3.7)", "LIMITER/", RateLimit),
			},
		},
		{
			Name:        "spring-cloud-gateway",
			Description: "Spring Cloud Gateway RedisRateLimiter: request_rate_limiter.{id}.tokens and .timestamp. Sources: spring-cloud/spring-cloud-gateway RedisRateLimiter.java, META-INF/scripts/request_rate_limiter.lua.",
			Rules:       []Rule{pfx("token bucket", "request_rate_limiter.", RateLimit)},
		},
		{
			Name:        "kong",
			Description: "Kong rate-limiting and response-ratelimiting plugins with policy=redis. Sources: Kong/kong kong/plugins/rate-limiting/policies/init.lua, kong/plugins/response-ratelimiting/policies/init.lua.",
			Rules: []Rule{
				pfx("rate-limiting counter", "ratelimit:", RateLimit),
				pfx("response-ratelimiting counter", "response-ratelimit:", RateLimit),
			},
		},

		// ---- frameworks with several workloads in one namespace ----
		{
			Name: "django",
			Description: "Django: cache and cached_db sessions and django-ratelimit counters under any KEY_PREFIX and VERSION, " +
				"then the default cache namespace :{version}:{key} (empty KEY_PREFIX), including the page cache. " +
				"Sources: django/django django/contrib/sessions/backends/cache.py, cached_db.py, django/core/cache/backends/base.py, " +
				"redis.py; jazzband/django-redis django_redis/client/default.py; jsocol/django-ratelimit django_ratelimit/core.py.",
			Rules: []Rule{
				rx("session (cache/cached_db backend)", `^[^:]*:[0-9]+:django\.contrib\.sessions\.(?:cache|cached_db)`, "", Session),
				rx("django-ratelimit counter", `^[^:]*:[0-9]+:rl:(?:[0-9a-f]{32}|[0-9a-f]{64})$`, "", RateLimit),
				rx("page cache", `^:[0-9]+:views\.decorators\.cache\.`, "string", Cache),
				rx("cache entry (empty KEY_PREFIX)", `^:[0-9]+:`, "string", Cache),
			},
		},
		{
			Name: "laravel",
			Description: "Laravel (5.8–12, the whole prefix matrix of key-patterns.md) and Horizon: Horizon's namespace, Redis queues, " +
				"the queue-control keys that live in the cache namespace (queue restart, schedule mutexes incl. onOneServer, " +
				"unique-job and overlap locks, ThrottlesExceptions counters), RateLimiter counters (sha1/md5 keys, login|ip keys, every :timer), sessions (40 alphanumerics), " +
				"then the cache: tags and every string under the full <app>_database_<app>_cache prefix. RateLimiter counters with " +
				"custom names and no :timer suffix cannot be told from cache entries by name: write a rule for them. " +
				"Sources: laravel/framework src/Illuminate/Queue/RedisQueue.php, Queue/Console/RestartCommand.php, " +
				"Console/Scheduling/CallbackEvent.php, Bus/UniqueLock.php, Queue/Middleware/WithoutOverlapping.php, Queue/Middleware/ThrottlesExceptions.php, " +
				"Cache/RateLimiter.php, Routing/Middleware/ThrottleRequests.php, Session/CacheBasedSessionHandler.php, " +
				"Cache/RedisStore.php; laravel/laravel config/cache.php, config/database.php; laravel/horizon config/horizon.php, " +
				"src/Repositories/RedisJobRepository.php.",
			Rules: []Rule{
				rx("Horizon namespace", `^(?:[a-z0-9_-]+_)?horizon:`, "", Queue),
				rx("Redis queue", `^(?:[a-z0-9_]+_database_|[a-z0-9-]+-database-)?queues:[^:]+(?::(?:delayed|reserved|notify))?$`, "", Queue),
				rx("queue control in the cache namespace",
					`^`+laravelCacheOpt+`(?:illuminate:queue:restart$|framework/schedule-[0-9a-f]{32}|laravel_unique_job:|laravel-queue-overlap:|laravel_throttles_exceptions:)`, "", Queue),
				rx("RateLimiter counter (sha1/md5 key)", `^`+laravelCacheOpt+`(?:[0-9a-f]{40}|[0-9a-f]{32})(?::timer)?$`, "", RateLimit),
				rx("RateLimiter login|ip counter", `^`+laravelCacheOpt+`.*\|[0-9A-Fa-f.:]+(?::timer)?$`, "", RateLimit),
				rx("RateLimiter timer", `^`+laravelCacheOpt+`.+:timer$`, "", RateLimit),
				rx("session (40 alphanumerics)", `^`+laravelCacheOpt+`[A-Za-z0-9]{40}$`, "", Session),
				rx("cache tag", `^`+laravelCacheReq+`tag:`, "", Cache),
				rx("cache entry", `^`+laravelCacheReq, "string", Cache),
			},
		},
		{
			Name: "rails",
			Description: "Rails: Rack sessions (redis-session-store, redis-rack / redis-store, the :cache_store session store; private " +
				"ids 2::{sha256hex}) and RedisCacheStore fragment caching (views/...). Cache keys without a namespace have no " +
				"shape and are left to scan. Sources: roidrage/redis-session-store lib/redis-session-store.rb; redis-store/redis-rack " +
				"lib/rack/session/redis.rb; rails/rails actionpack/lib/action_dispatch/middleware/session/cache_store.rb, " +
				"activesupport/lib/active_support/cache/redis_cache_store.rb; rack/rack lib/rack/session/abstract/id.rb.",
			Rules: []Rule{
				rx("cache_store session", `^(?:.*:)?_session_id:`, "", Session),
				pfx("redis-rack session", "rack:session:", Session),
				rx("Rack private session id", `^.*2::[0-9a-f]{64}$`, "", Session),
				rx("fragment cache", `^(?:[^/:]+:)*views/`, "string", Cache),
			},
		},
		{
			Name: "aspnet",
			Description: "ASP.NET Core: Session on IDistributedCache with an empty InstanceName (a hash named by a bare GUID; with an " +
				"InstanceName the name has no claimable shape and the hash fields absexp/sldexp/data are left to scan), and " +
				"OutputCache entries and tags. Sources: dotnet/aspnetcore src/Caching/StackExchangeRedis/src/RedisCache.cs, " +
				"RedisOutputCacheStore.cs, src/Middleware/Session/src/DistributedSession.cs, SessionMiddleware.cs.",
			Rules: []Rule{
				rx("session (bare GUID hash)", `^`+uuidRe+`$`, "hash", Session),
				rx("output cache entry", `__MSOCV_`, "string", Cache),
				rx("output cache tag", `__MSOCT(?:_.*)?$`, "zset", Cache),
			},
		},

		// ---- caches: generic shapes last ----
		{
			Name:        "keyv",
			Description: "keyv / @keyv/redis / cache-manager: keyv:{key} (≤v4), keyv::{key} (v5) and the namespace:keyv key set of the default namespace (other namespace:* sets are too generic to claim). Sources: jaredwray/keyv packages/keyv/src/index.js, packages/redis/src/index.js, storage/redis/src/index.ts, core/keyv/src/keyv.ts.",
			Rules: []Rule{
				pfx("keyv entry", "keyv:", Cache),
				rx("keyv namespace set (default namespace)", `^namespace:keyv$`, "set", Cache),
			},
		},
		{
			Name: "spring-cache",
			Description: "Spring Cache (spring-data-redis, CacheKeyPrefix.simple): {cacheName}::{key} strings and {cacheName}~lock; " +
				"the same shape covers keyv v5 namespaces. Guards first: rmq:: and rack::attack: keys share the shape and are " +
				"never cache, nor are Sidekiq 7.0 histograms of Ruby classes (Billing::InvoiceJob-25-9:41). Sources: spring-projects/spring-data-redis src/main/java/org/springframework/data/redis/cache/" +
				"CacheKeyPrefix.java, RedisCacheConfiguration.java, DefaultRedisCacheWriter.java.",
			Rules: []Rule{
				pfx("guard: rmq keys are queue", "rmq::", Queue),
				pfx("guard: rack-attack counters are rate limits", "rack::attack:", RateLimit),
				rx("guard: Sidekiq 7.0 histograms of namespaced job classes are queue", `^[A-Z][A-Za-z0-9_:]*-[0-9]{2}-[0-9]{1,2}:[0-9]{1,2}$`, "string", Queue),
				rx("cache lock", `^[A-Za-z_][A-Za-z0-9_.-]*~lock$`, "string", Cache),
				rx("cache entry", `^[A-Za-z_][A-Za-z0-9_.-]*::.`, "string", Cache),
			},
		},
		{
			Name:        "apollo",
			Description: "Apollo Server response cache (fqc:{sha256}) and automatic persisted queries (apq:{sha256}). Sources: apollographql/apollo-server packages/plugin-response-cache/src/ApolloServerPluginResponseCache.ts, packages/server/src/requestPipeline.ts.",
			Rules:       []Rule{rx("response cache / persisted query", `^(?:fqc|apq):[0-9a-f]{64}$`, "", Cache)},
		},
		{
			Name: "wordpress",
			Description: "WordPress Redis Object Cache: wp:{group}:{key} (table prefix wp_) and, in multisite without a salt, the core " +
				"global groups :{group}:{key}. Sources: rhubarbgroup/redis-cache includes/object-cache.php.",
			Rules: []Rule{
				rx("object cache", `^wp:[^:]+:`, "string", Cache),
				rx("global group", `^:(?:`+strings.Join(wpGlobalGroups, "|")+`):`, "string", Cache),
			},
		},
	}
}

// wpGlobalGroups are WordPress core's global cache groups.
var wpGlobalGroups = []string{"blog-details", "blog-id-cache", "blog-lookup", "global-posts", "networks", "rss",
	"sites", "site-details", "site-options", "site-transient", "useremail", "userlogins", "usermeta", "user_meta",
	"userslugs", "users"}
