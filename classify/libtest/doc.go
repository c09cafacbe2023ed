// Package libtest checks zero-configuration routing against keyspaces that
// real libraries write into a real redis-server: the Go libraries write their
// own keys (asynq, go-redis/redis_rate, go-redis/cache, gorilla sessions
// through boj/redistore, alexedwards/scs); for frameworks with
// no Go library, the keys, types and TTLs of classify/testdata/library-keys.yaml
// are written as those libraries write them. Each keyspace is then SCANned
// and every key found is classified with classify.Router and no config.
package libtest
