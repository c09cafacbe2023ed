package classify

import (
	"fmt"
	"testing"
)

// benchKeys mirrors the benchmark keyspace of issue 2 (cache:api strings,
// sess: hashes, rl: counters, queue lists, user tag sets, leaderboard zsets)
// plus framework keys: the mix scan classifies.
func benchKeys() (keys, types []string) {
	add := func(n int, typ string, f func(i int) string) {
		for i := 0; i < n; i++ {
			keys = append(keys, f(i))
			types = append(types, typ)
		}
	}
	add(60, "string", func(i int) string { return fmt.Sprintf("cache:api:v1:item:%d", i) })
	add(20, "hash", func(i int) string { return fmt.Sprintf("sess:%012x", i) })
	add(10, "string", func(i int) string { return fmt.Sprintf("rl:login:%d", i) })
	add(5, "list", func(i int) string { return fmt.Sprintf("queue:jobs:%d", i) })
	add(3, "set", func(i int) string { return fmt.Sprintf("user:%d:tags", i) })
	add(2, "zset", func(i int) string { return fmt.Sprintf("lb:%d", i) })
	add(5, "string", func(i int) string { return fmt.Sprintf("laravel_database_laravel_cache:users.%d", i) })
	add(5, "hash", func(i int) string { return fmt.Sprintf("asynq:{default}:t:%08x-0000-4000-8000-000000000000", i) })
	return keys, types
}

// BenchmarkClassify measures zero-configuration routing per key
// (go test -bench Classify ./classify/); keys/s is reported.
func BenchmarkClassify(b *testing.B) {
	c, _, err := Router(nil)
	if err != nil {
		b.Fatal(err)
	}
	keys, types := benchKeys()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(keys)
		c.Classify(keys[j], types[j])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "keys/s")
}
