package migrate_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/topology/topotest"
)

// scanCalls is legacy's count of SCAN calls since the last CONFIG RESETSTAT.
func scanCalls(t *testing.T, c *redis.Client) int {
	t.Helper()
	s, err := c.Info(ctxT(t), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(s, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_scan:calls="); ok {
			n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
			return n
		}
	}
	return 0
}

// A migrate run without --dual-write SCANs legacy once: the backfill copies
// the pages of the pre-pass's SCAN (its spill) instead of SCANning again,
// and still copies every key.
func TestMigrateScansLegacyOnce(t *testing.T) {
	ctx := ctxT(t)
	tg := targets(t)
	flush(t, tg)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	fill(t, lc, 2000)
	// one SCAN pass of this keyspace at migrate's COUNT
	lc.ConfigResetStat(ctx)
	var cursor uint64
	for {
		_, next, err := lc.Scan(ctx, cursor, "", 1000).Result()
		if err != nil {
			t.Fatal(err)
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	pass := scanCalls(t, lc)
	if pass < 5 {
		t.Fatalf("one pass is %d SCAN calls: too few to tell one pass from two", pass)
	}
	lc.ConfigResetStat(ctx)
	cfg, _ := writeConfig(t, leg.Addr(), "", nil)
	code, out, errs := run(t, "--config", cfg, "migrate", "--yes", "--big-bytes", "16384")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if got := scanCalls(t, lc); got > pass {
		t.Errorf("migrate sent %d SCANs to legacy; one pass is %d", got, pass)
	}
	assertMigrated(t, lc, tg, "cache", "session", "queue", "ratelimit")
}
