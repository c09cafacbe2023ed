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
