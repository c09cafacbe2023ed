package migrate_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/topology/topotest"
)

func standaloneTarget(addr string) string {
	return fmt.Sprintf("{kind: standalone, url: \"redis://%s/0\"}", addr)
}

// A session target that evicts is refused (exit 4, naming the bucket, the
// target, its policy and both fixes), in --dry-run as in a real run, and
// nothing is written; --allow-evicting-target lets it through and the state
// records the override for verify.
func TestEvictingTargetRefused(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	fill(t, lc, 20)
	ev := topotest.Standalone(t, "--maxmemory-policy", "allkeys-lru")
	evc := topotest.Client(t, ev.Addr())
	cfg, stateDir := writeConfig(t, leg.Addr(), "", map[string]string{"session": standaloneTarget(ev.Addr())})
	for _, args := range [][]string{{"--dry-run"}, {"--yes"}} {
		code, out, errs := run(t, append([]string{"--config", cfg, "migrate"}, args...)...)
		if code != 4 {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errs)
		}
		for _, want := range []string{"target session (standalone redis://" + ev.Addr(), "maxmemory-policy allkeys-lru",
			"CONFIG SET maxmemory-policy noeviction", "--allow-evicting-target session"} {
			if !strings.Contains(errs, want) {
				t.Errorf("%v: refusal lacks %q: %s", args, want, errs)
			}
		}
		if n := strings.Count(strings.TrimSpace(errs), "\n"); n != 0 {
			t.Errorf("%v: the refusal is not one line: %s", args, errs)
		}
		if n := dbsizes(t, tg) + dbsizeOf(t, evc); n != 0 {
			t.Fatalf("%v: wrote %d keys before refusing", args, n)
		}
	}
	if code, _, errs := run(t, "--config", cfg, "migrate", "--dry-run", "--allow-evicting-target", "sessions"); code != 2 || !strings.Contains(errs, "not a bucket") {
		t.Errorf("bad bucket name: exit %d: %s", code, errs)
	}

	code, out, errs := run(t, "--config", cfg, "migrate", "--yes", "--allow-evicting-target", "session", "-o", "json")
	if code != 0 {
		t.Fatalf("with the override: exit %d\n%s\n%s", code, out, errs)
	}
	if s := parseMigrate(t, out).bucket("session"); s.Status != "copied" || !s.AllowEvicting {
		t.Errorf("session with the override: %+v", s)
	}
	tg["session"] = evc
	assertMigrated(t, lc, tg, "session")
	sd, _ := state.Open(stateDir)
	st, _ := sd.Load()
	if s := st.Buckets["session"]; !s.AllowEvictingTarget || s.TargetPolicy != "allkeys-lru" {
		t.Errorf("session state does not record the override: %+v", s)
	}
	if q := st.Buckets["queue"]; q.AllowEvictingTarget || q.TargetPolicy != "noeviction" {
		t.Errorf("queue state: %+v", q)
	}
	if code, out, _ := run(t, "--config", cfg, "status"); code != 0 || !strings.Contains(out, "WARNING session: copied into a target that evicts (maxmemory-policy allkeys-lru") {
		t.Errorf("status:\n%s", out)
	}
}

// A target without room for its bucket is refused, in --dry-run too; a
// cache target that evicts (allkeys-*) is only warned about.
func TestNoRoomRefused(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	ctx := ctxT(t)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	fill(t, lc, 20)
	pl := lc.Pipeline()
	for i := 0; i < 3000; i++ {
		pl.Set(ctx, fmt.Sprintf("queue:fat:%d", i), strings.Repeat("q", 1000), 0)
		pl.Set(ctx, fmt.Sprintf("cache:fat:%d", i), strings.Repeat("c", 1000), 0)
	}
	if _, err := pl.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// about 1 MiB of room for about 3.5 MiB per bucket
	tight := topotest.Standalone(t, "--maxmemory-policy", "noeviction")
	lru := topotest.Standalone(t, "--maxmemory-policy", "allkeys-lru")
	for _, s := range []string{tight.Addr(), lru.Addr()} {
		c := topotest.Client(t, s)
		if err := c.ConfigSet(ctx, "maxmemory", fmt.Sprint(usedMemory(t, c)+1<<20)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _ := writeConfig(t, leg.Addr(), "", map[string]string{"queue": standaloneTarget(tight.Addr()), "cache": standaloneTarget(lru.Addr())})
	for _, args := range [][]string{{"--dry-run"}, {"--yes"}} {
		code, out, errs := run(t, append([]string{"--config", cfg, "migrate"}, args...)...)
		if code != 4 || !strings.Contains(errs, "target queue (standalone redis://"+tight.Addr()+"/0) has no room") ||
			!strings.Contains(errs, "CONFIG SET maxmemory") || strings.Contains(errs, "target cache") {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errs)
		}
		if !strings.Contains(out, "WARNING cache:") || !strings.Contains(out, "evict cache keys") {
			t.Errorf("%v: no warning for the evicting cache target:\n%s", args, out)
		}
		if n := dbsizes(t, tg) + dbsizeOf(t, topotest.Client(t, tight.Addr())) + dbsizeOf(t, topotest.Client(t, lru.Addr())); n != 0 {
			t.Fatalf("%v: wrote %d keys before refusing", args, n)
		}
	}
	if err := topotest.Client(t, tight.Addr()).ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := run(t, "--config", cfg, "migrate", "--dry-run"); code != 0 {
		t.Errorf("room added: exit %d\n%s\n%s", code, out, errs)
	}
}
