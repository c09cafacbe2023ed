package migrate_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/redisplit/redisplit/topology/topotest"
)

// migrate's preflight and `targets check` run one implementation of the
// target profile (layout.Check): a property migrate never checked before
// (persistence on a session target) is a failure of targets check and,
// word for word, a warning of migrate (which goes on: exit 0); fixing it on
// the live target clears both.
func TestProfileChecksReachMigrate(t *testing.T) {
	tg := targets(t)
	flush(t, tg)
	ctx := ctxT(t)
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	fill(t, lc, 5)
	sess := topotest.Standalone(t, "--maxmemory-policy", "noeviction", "--appendonly", "no")
	sc := topotest.Client(t, sess.Addr())
	cfg, _ := writeConfig(t, leg.Addr(), "", map[string]string{"session": standaloneTarget(sess.Addr())})

	type verdict struct{ Bucket, Check, Status, Found, Fix string }
	check := func() (code int, failed []verdict) {
		t.Helper()
		code, out, errs := run(t, "--config", cfg, "targets", "check", "--bucket", "session", "-o", "json")
		var r struct{ Verdicts []verdict }
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("targets check JSON: %v\n%s\n%s", err, out, errs)
		}
		for _, v := range r.Verdicts {
			if v.Status == "fail" {
				failed = append(failed, v)
			}
		}
		return code, failed
	}
	warnings := func() []string {
		t.Helper()
		code, out, errs := run(t, "--config", cfg, "migrate", "--dry-run", "-o", "json")
		if code != 0 {
			t.Fatalf("migrate --dry-run: exit %d (a profile failure that does not block must only warn)\n%s\n%s", code, out, errs)
		}
		var r struct {
			Buckets []struct {
				Bucket   string
				Warnings []string
			}
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("migrate JSON: %v\n%s", err, out)
		}
		for _, b := range r.Buckets {
			if b.Bucket == "session" {
				return b.Warnings
			}
		}
		t.Fatalf("no session bucket in %s", out)
		return nil
	}
	persistence := func(vs []verdict) *verdict {
		for i := range vs {
			if vs[i].Check == "persistence" {
				return &vs[i]
			}
		}
		return nil
	}

	code, failed := check()
	p := persistence(failed)
	if code != 5 || p == nil || !strings.Contains(p.Found, "AOF no") {
		t.Fatalf("targets check on a session target without AOF: exit %d, failed %+v", code, failed)
	}
	want := "persistence: " + p.Found + " -> " + p.Fix
	if w := warnings(); !slices.Contains(w, want) {
		t.Fatalf("migrate's warnings lack targets check's verdict %q:\n%q", want, w)
	}

	if err := sc.ConfigSet(ctx, "appendonly", "yes").Err(); err != nil {
		t.Fatal(err)
	}
	if _, failed := check(); persistence(failed) != nil {
		t.Fatalf("AOF on, targets check still fails on persistence: %+v", failed)
	}
	for _, w := range warnings() {
		if strings.HasPrefix(w, "persistence") {
			t.Errorf("AOF on, migrate still warns: %q", w)
		}
	}
}
