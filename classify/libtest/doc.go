// Package libtest checks zero-configuration routing against keyspaces that
// real libraries write into a real redis-server.
//
// TestLibraryKeyspaces: the Go libraries write their own keys (asynq,
// go-redis/redis_rate, go-redis/cache, gorilla sessions through
// boj/redistore, alexedwards/scs); for frameworks with no Go library, the
// keys, types and TTLs of classify/testdata/library-keys.yaml are written as
// those libraries write them. Each keyspace is SCANned and every key found
// is classified with classify.Router and no config (presets only).
//
// TestScanAccuracy: one keyspace written by real libraries through their
// public APIs, with their defaults and with application prefixes: Go
// libraries through the module proxy, Python (Celery/kombu, Django +
// django-redis, python-rq, limits, Flask-Session), PHP (phpredis's session
// handler), Ruby (ActiveSupport's RedisCacheStore) and Perl from Debian packages
// (testdata/writers; scripts/deps.sh installs them, a missing one is skipped),
// and holdouts key-patterns.md does not list, added in rounds and measured
// once before any change they prompted (Flask-Caching, cacheops, Symfony
// Cache/RateLimiter/Messenger, gin-cache, Fiber's session, limiter and cache
// middlewares, dogpile.cache, Beaker, Predis's session handler,
// redis-activesupport, cachelib, and round 6: CacheControl, requests-cache,
// django-redis-sessions, Django Q, sidekiq-cron, and round 7: cachy,
// aiohttp-session, Rack::Session::Moneta, Perl's CHI, Django Channels'
// channel layer; their writers' comments hold the first measurement).
// The real scan runs on it with zero configuration, and every key's bucket
// (presets, then the scan's accepted proposals, as --keys-out routes it) is
// checked against the library's workload.
package libtest
