package migrate_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/topology/topotest"
)

// With --allow-nonempty, the keys redisplit wrote stay its own for the whole
// migration: when a later run sees them again (here a resume from an
// earlier cursor after the whole bucket was copied: SCAN may return keys
// again, change capture will), they are rewritten, not refused; and a
// rollback afterwards leaves each target holding exactly its foreign keys.
func TestAllowNonEmptyKeysStayOursAcrossRuns(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	ctx := ctxT(t)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	fill(t, lc, 200)
	// foreign keys on the queue target: one legacy has too, one it has not
	tg["queue"].Set(ctx, "queue:str", "theirs", 0)
	tg["queue"].Set(ctx, "queue:theirs-only", "theirs", 0)
	cfg, stateDir := writeConfig(t, leg.Addr(), "", nil)
	if code, out, errs := run(t, "--config", cfg, "migrate", "--yes", "--allow-nonempty"); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	sd, _ := state.Open(stateDir)
	refusedOf := func(b string) []string {
		var ks []string
		if err := sd.ReadRefused(b, func(k string) error { ks = append(ks, k); return nil }); err != nil {
			t.Fatal(err)
		}
		sort.Strings(ks)
		return ks
	}
	// both foreign keys are refused (listed before the first write), none
	// of redisplit's
	if got := refusedOf("queue"); len(got) != 2 || got[0] != "queue:str" || got[1] != "queue:theirs-only" {
		t.Fatalf("refused after the first run: %q", got)
	}
	// every bucket resumes from the start of the SCAN with its journal and
	// counts as saved: every key it sees is on the target already
	err := sd.Update(func(s *state.State) error {
		for _, sb := range s.Buckets {
			*sb = state.Bucket{Phase: sb.Phase, Target: sb.Target, StartedAt: sb.StartedAt}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, "--config", cfg, "migrate", "--yes", "--allow-nonempty", "-o", "json")
	if code != 0 {
		t.Fatalf("second run: exit %d\n%s\n%s", code, out, errs)
	}
	for _, b := range []string{"cache", "session", "queue", "ratelimit"} {
		want := 0
		if b == "queue" {
			want = 2 // both foreign keys, listed by the first run's preflight
		}
		if got := refusedOf(b); len(got) != want {
			t.Errorf("%s: %d keys on the refusal list after the second run, want %d (e.g. %q)", b, len(got), want, got[:min(len(got), 3)])
		}
	}
	res := parseMigrate(t, out)
	assertReconciled(t, cfg, res, lc, tg, map[string]int64{"queue": 2})
	if q := res.bucket("queue"); q.Total.Refused != 1 {
		t.Errorf("queue: %+v", q.Total)
	}

	if code, out, errs := run(t, "--config", cfg, "rollback", "--yes"); code != 0 {
		t.Fatalf("rollback: exit %d\n%s\n%s", code, out, errs)
	}
	for b, c := range tg {
		keys := scanAll(ctx, c)
		sort.Strings(keys)
		want := ""
		if b == "queue" {
			want = "queue:str queue:theirs-only"
		}
		if got := strings.Join(keys, " "); got != want {
			t.Errorf("after rollback, target %s holds %.300q, want its foreign keys %q", b, got, want)
		}
	}
	if v := tg["queue"].Get(ctx, "queue:str").Val(); v != "theirs" {
		t.Errorf("foreign key overwritten: %q", v)
	}
}
