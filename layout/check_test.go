package layout

import (
	"fmt"
	"testing"
)

// verdictOf runs one server check on facts and returns its only verdict.
func verdictOf(t *testing.T, bucket string, info, conf map[string]string, data int64, legacy string, run func(*checker, *server)) Verdict {
	t.Helper()
	ch := &checker{p: Profile{Bucket: bucket, DataBytes: data, LegacyVersion: legacy}, prof: profiles[bucket]}
	run(ch, &server{addr: "h:1", info: info, conf: conf})
	if len(ch.vs) != 1 {
		t.Fatalf("%d verdicts: %+v", len(ch.vs), ch.vs)
	}
	return ch.vs[0]
}

func TestServerChecks(t *testing.T) {
	mm := func(max, used int64) (map[string]string, map[string]string) {
		return map[string]string{"used_memory": fmt.Sprint(used)}, map[string]string{"maxmemory": fmt.Sprint(max)}
	}
	for _, c := range []struct {
		name   string
		bucket string
		info   map[string]string
		conf   map[string]string
		data   int64
		legacy string
		run    func(*checker, *server)
		want   Status
	}{
		{"same version", "cache", map[string]string{"redis_version": "7.0.15"}, nil, 0, "7.0.11", (*checker).version, StatusOK},
		{"newer target", "cache", map[string]string{"redis_version": "7.2.4"}, nil, 0, "6.2.14", (*checker).version, StatusOK},
		{"6.0 and 6.2 share RDB 9", "cache", map[string]string{"redis_version": "6.0.9"}, nil, 0, "6.2.14", (*checker).version, StatusOK},
		{"older target", "session", map[string]string{"redis_version": "6.2.14"}, nil, 0, "7.0.15", (*checker).version, StatusWarn},
		{"valkey 8 from redis 7.4", "session", map[string]string{"redis_version": "7.2.4", "valkey_version": "8.0.1"}, nil, 0, "7.4.1", (*checker).version, StatusWarn},
		{"legacy unknown", "session", map[string]string{"redis_version": "7.0.15"}, nil, 0, "", (*checker).version, StatusInfo},
	} {
		if v := verdictOf(t, c.bucket, c.info, c.conf, c.data, c.legacy, c.run); v.Status != c.want {
			t.Errorf("%s: %s, want %s", c.name, v, c.want)
		}
	}
	cases := []struct {
		name      string
		bucket    string
		max, used int64
		data      int64
		want      Status
	}{
		{"unset", "session", 0, 1 << 20, 1 << 20, StatusFail},
		{"cache unset", "cache", 0, 1 << 20, 1 << 20, StatusFail},
		{"nearly full", "queue", 10 << 20, 9500 << 10, 0, StatusFail},
		{"does not fit", "ratelimit", 100 << 20, 1 << 20, 90 << 20, StatusFail},
		{"cache too small only warns", "cache", 100 << 20, 1 << 20, 90 << 20, StatusWarn},
		{"under the advised headroom", "session", 150 << 20, 1 << 20, 100 << 20, StatusWarn},
		{"roomy", "session", 300 << 20, 1 << 20, 100 << 20, StatusOK},
		{"bytes unknown", "session", 64 << 20, 1 << 20, 0, StatusOK},
		{"a full cache is normal", "cache", 10 << 20, 10 << 20, 0, StatusOK},
	}
	for _, c := range cases {
		info, conf := mm(c.max, c.used)
		if v := verdictOf(t, c.bucket, info, conf, c.data, "", func(ch *checker, s *server) { ch.maxmemory(s, c.data) }); v.Status != c.want {
			t.Errorf("maxmemory %s: %s, want %s", c.name, v, c.want)
		}
	}
	for _, c := range []struct {
		bucket, policy string
		want           Status
	}{{"cache", "allkeys-lru", StatusOK}, {"cache", "allkeys-lfu", StatusOK}, {"cache", "volatile-lru", StatusFail}, {"cache", "noeviction", StatusFail},
		{"session", "noeviction", StatusOK}, {"session", "volatile-ttl", StatusFail}, {"queue", "allkeys-lru", StatusFail}, {"ratelimit", "allkeys-random", StatusFail}} {
		v := verdictOf(t, c.bucket, nil, map[string]string{"maxmemory-policy": c.policy}, 0, "", (*checker).policy)
		if v.Status != c.want {
			t.Errorf("policy %s %s: %s, want %s", c.bucket, c.policy, v, c.want)
		}
	}
	for _, c := range []struct {
		bucket, aof, fsync, save string
		want                     Status
	}{{"session", "yes", "everysec", "", StatusOK}, {"queue", "yes", "always", "", StatusOK}, {"queue", "yes", "no", "", StatusFail},
		{"session", "no", "everysec", "3600 1", StatusFail}, {"cache", "no", "everysec", "", StatusOK}, {"cache", "no", "everysec", "900 1", StatusWarn},
		{"cache", "yes", "everysec", "", StatusWarn}, {"ratelimit", "no", "everysec", "", StatusOK}} {
		v := verdictOf(t, c.bucket, nil, map[string]string{"appendonly": c.aof, "appendfsync": c.fsync, "save": c.save}, 0, "", (*checker).persistence)
		if v.Status != c.want {
			t.Errorf("persistence %+v: %s", c, v)
		}
	}
	// CONFIG GET refused: INFO's fields still decide what they can.
	v := verdictOf(t, "session", map[string]string{"aof_enabled": "0"}, map[string]string{}, 0, "", (*checker).persistence)
	if v.Status != StatusFail {
		t.Errorf("AOF off read from INFO: %s", v)
	}
}

// The room check (Profile.Writing > 0: migrate's preflight) and which
// verdicts block a writer: an evicting policy on a bucket that must not
// evict, no room on a store that does not evict every key.
func TestRoomAndBlocks(t *testing.T) {
	for _, c := range []struct {
		name, bucket, policy string
		max, used, writing   int64
		want                 Status
		blocks, none         bool
	}{
		{"fits", "queue", "noeviction", 100 << 20, 1 << 20, 10 << 20, StatusOK, false, false},
		{"no room", "queue", "noeviction", 10 << 20, 1 << 20, 10 << 20, StatusFail, true, false},
		{"margin counts", "session", "noeviction", 12 << 20, 1 << 20, 10 << 20, StatusFail, true, false},
		{"full", "ratelimit", "noeviction", 10 << 20, 11 << 20, 1 << 20, StatusFail, true, false},
		{"volatile evicts only keys with a TTL", "cache", "volatile-lru", 10 << 20, 1 << 20, 50 << 20, StatusFail, true, false},
		{"allkeys evicts from the start", "cache", "allkeys-lru", 10 << 20, 1 << 20, 50 << 20, StatusWarn, false, false},
		{"no maxmemory: no limit", "queue", "noeviction", 0, 1 << 20, 50 << 20, "", false, true},
		{"nothing to write", "queue", "noeviction", 10 << 20, 1 << 20, 0, "", false, true},
	} {
		ch := &checker{p: Profile{Bucket: c.bucket, Writing: c.writing}, prof: profiles[c.bucket]}
		ch.room(&server{addr: "h:1", master: true, info: map[string]string{"used_memory": fmt.Sprint(c.used)},
			conf: map[string]string{"maxmemory": fmt.Sprint(c.max), "maxmemory-policy": c.policy}}, c.writing)
		if c.none {
			if len(ch.vs) != 0 {
				t.Errorf("%s: %+v, want no verdict", c.name, ch.vs)
			}
			continue
		}
		if len(ch.vs) != 1 || ch.vs[0].Status != c.want || ch.vs[0].Blocks != c.blocks || ch.vs[0].Check != CheckRoom {
			t.Errorf("%s: %+v, want %s blocks=%v", c.name, ch.vs, c.want, c.blocks)
		}
	}
	for _, c := range []struct {
		bucket, policy string
		status         Status
		blocks         bool
	}{{"session", "allkeys-lru", StatusFail, true}, {"queue", "volatile-ttl", StatusFail, true}, {"ratelimit", "allkeys-random", StatusFail, true},
		{"session", "noeviction", StatusOK, false}, {"queue", "", StatusInfo, false},
		{"cache", "noeviction", StatusFail, false}, {"cache", "volatile-lru", StatusFail, false}, {"cache", "allkeys-lfu", StatusOK, false}} {
		if v := Policy(c.bucket, c.policy); v.Status != c.status || v.Blocks != c.blocks || v.Bucket != c.bucket || v.Check != CheckPolicy {
			t.Errorf("Policy(%s, %q) = %+v, want %s blocks=%v", c.bucket, c.policy, v, c.status, c.blocks)
		}
	}
}
