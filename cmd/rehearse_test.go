package cmd

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/rehearse"
	"github.com/redisplit/redisplit/store"
	"github.com/redisplit/redisplit/topology/topotest"
)

// A rehearsal runs on its own throw-away servers with their own (empty)
// credentials: the REDISPLIT_* variables of the real migration — the
// production legacy's URL and password, its state directory — reach
// neither the rehearsal's commands nor the production server.
func TestRehearseIgnoresTheProductionEnvironment(t *testing.T) {
	const secret = "pr0duction-Secret"
	prod := topotest.Standalone(t, "--requirepass", secret)
	pc := redis.NewClient(&redis.Options{Addr: prod.Addr(), Password: secret, DisableIdentity: true})
	defer pc.Close()
	ctx := context.Background()
	if err := pc.Set(ctx, "sess:prod", "do not touch", 0).Err(); err != nil {
		t.Fatal(err)
	}
	before := store.ParseInfo(pc.Info(ctx, "stats").Val())["total_connections_received"]

	dir := t.TempDir()
	prodState := filepath.Join(dir, "production-state")
	t.Setenv("REDISPLIT_LEGACY_URL", "redis://"+prod.Addr()+"/0")
	t.Setenv("REDISPLIT_LEGACY_PASSWORD", secret)
	t.Setenv("REDISPLIT_STATE_DIR", prodState)
	cfg := filepath.Join(dir, "redisplit.yaml")
	// one standalone target keeps the topology small; keys of the other
	// buckets are not migrated, which the rehearsal accepts
	if err := os.WriteFile(cfg, []byte("unknown: skip\ntargets:\n  queue: {kind: standalone, url: 'redis://127.0.0.1:1/0'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cli(t, "--config", cfg, "rehearse", "--backend", "process", "--synthetic", "200", "--live-for", "1s", "--no-progress")
	if code != ExitOK {
		t.Fatalf("rehearsal with the production environment set: exit %d\n%s\n%s", code, errs, out)
	}
	if strings.Contains(out+errs, "AUTH") || strings.Contains(out+errs, secret) {
		t.Errorf("the production password reached the rehearsal:\n%s\n%s", errs, out)
	}
	after := store.ParseInfo(pc.Info(ctx, "stats").Val())["total_connections_received"]
	if before != after {
		t.Errorf("the production legacy received connections during the rehearsal (%s before, %s after)", before, after)
	}
	if n := pc.DBSize(ctx).Val(); n != 1 {
		t.Errorf("the production legacy holds %d keys, want its 1", n)
	}
	if _, err := os.Stat(prodState); !os.IsNotExist(err) {
		t.Errorf("the production state directory was used: %v", err)
	}
}

// rehearseJSON runs `redisplit rehearse ... -o json` on local processes and
// decodes its result.
func rehearseJSON(t *testing.T, args ...string) (int, *rehearse.Result, string) {
	t.Helper()
	code, out, errs := cli(t, append([]string{"rehearse", "--backend", "process", "--no-progress", "-o", "json"}, args...)...)
	var res rehearse.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("rehearse: exit %d, JSON: %v\n%s\n%s", code, err, errs, out)
	}
	return code, &res, errs
}

// casesOf indexes a result's cases by phase and bucket.
func casesOf(res *rehearse.Result) map[string]map[string]rehearse.Case {
	m := map[string]map[string]rehearse.Case{}
	for _, c := range res.Cases {
		if m[c.Phase] == nil {
			m[c.Phase] = map[string]rehearse.Case{}
		}
		m[c.Phase][c.Bucket] = c
	}
	return m
}

var allBuckets = []string{"cache", "session", "queue", "ratelimit"}

// The default flow is the live phase: migrate --dual-write under a live
// load, caught up, verify's parity and the independent comparison both
// ways while it mirrors; then the cutover flow: cutover of every bucket,
// the application's writes on the targets, rollback after cutover of
// session (legacy holds the writes, its target is empty), complete
// --purge-legacy of the others (their targets hold the writes, legacy none
// of their keys), and migrate ends by itself with exit 0. Every case
// passes, with the figures in the details; no rollback of every bucket.
func TestRehearseLive(t *testing.T) {
	code, res, errs := rehearseJSON(t, "--synthetic", "2000", "--live-for", "3s", "--live-rate", "1000")
	for _, c := range res.Cases {
		if !c.OK {
			t.Errorf("%s/%s failed: %s %v\n%s", c.Phase, c.Bucket, c.Detail, c.Keys, c.Output)
		}
	}
	if code != ExitOK || !res.OK {
		t.Fatalf("live rehearsal: exit %d, OK %v\n%s", code, res.OK, errs)
	}
	cs := casesOf(res)
	for _, ph := range []string{rehearse.PhaseLiveCaughtUp, rehearse.PhaseLiveVerify, rehearse.PhaseLiveCompare, rehearse.PhaseCutover, rehearse.PhaseAfterCutover} {
		for _, b := range allBuckets {
			if _, ok := cs[ph][b]; !ok {
				t.Errorf("no %s case for %s", ph, b)
			}
		}
	}
	for _, ph := range []string{rehearse.PhaseLiveLoad, rehearse.PhaseLiveStop, rehearse.PhaseAppWrites} {
		if _, ok := cs[ph][""]; !ok {
			t.Errorf("no %s case", ph)
		}
	}
	if len(cs[rehearse.PhaseRollbackCut]) != 1 || cs[rehearse.PhaseRollbackCut]["session"].Phase == "" {
		t.Errorf("rollback after cutover: %+v, want session only", cs[rehearse.PhaseRollbackCut])
	}
	for _, b := range []string{"cache", "queue", "ratelimit"} {
		c := cs[rehearse.PhaseComplete][b]
		if !strings.Contains(c.Detail, "purged legacy") {
			t.Errorf("complete %s: %+v", b, c)
		}
		if !strings.Contains(cs[rehearse.PhaseAfterCutover][b].Detail, "the target holds the application's last write") {
			t.Errorf("after cutover %s: %s", b, cs[rehearse.PhaseAfterCutover][b].Detail)
		}
	}
	if d := cs[rehearse.PhaseLiveStop][""].Detail; !strings.Contains(d, "ended by itself") {
		t.Errorf("migrate did not end by itself after the cutover flow: %s", d)
	}
	if len(cs[rehearse.PhaseComplete]) != 3 {
		t.Errorf("complete cases: %+v", cs[rehearse.PhaseComplete])
	}
	if d := cs[rehearse.PhaseAfterCutover]["session"].Detail; !strings.Contains(d, "legacy holds the application's last write") || !strings.Contains(d, "target holds no key") {
		t.Errorf("after cutover session: %s", d)
	}
	if d := cs[rehearse.PhaseAppWrites][""].Detail; !strings.Contains(d, "HSET") || strings.Contains(d, "INCR 0") || strings.Contains(d, "DEL 0") || strings.Contains(d, "SET 0") {
		t.Errorf("app writes: %s", d)
	}
	for _, ph := range []string{rehearse.PhaseMigrate, rehearse.PhaseRollback, rehearse.PhaseFinal} {
		if _, ok := cs[ph]; ok {
			t.Errorf("the cutover flow has %s cases", ph)
		}
	}
	lv := res.Live
	if lv == nil || lv.Compare == nil || lv.Migrate == nil {
		t.Fatalf("live figures: %+v", lv)
	}
	// the load wrote every kind of change, and the mirror followed them
	for _, op := range []string{"INCR", "HSET+EXPIRE", "LPUSH", "RPOP", "DEL", "RENAME(from)", "SET+PEXPIRE", "go-redis/cache", "redis_rate"} {
		if lv.Load.ByOp[op] == 0 {
			t.Errorf("the load made no %s: %v", op, lv.Load.ByOp)
		}
	}
	if lv.Load.Writes < 500 || lv.Migrate.Events == 0 || lv.Migrate.Copies == 0 || len(lv.Migrate.Gaps) != 0 {
		t.Errorf("figures: %d writes, %d events, %d copies, gaps %q", lv.Load.Writes, lv.Migrate.Events, lv.Migrate.Copies, lv.Migrate.Gaps)
	}
	for _, b := range allBuckets {
		if lv.Compare.Routed[b] == 0 || lv.CaughtUp[b] == nil {
			t.Errorf("%s: %d keys compared, caught-up figures %+v", b, lv.Compare.Routed[b], lv.CaughtUp[b])
		}
		if !strings.Contains(cs[rehearse.PhaseLiveCaughtUp][b].Detail, "lag ") {
			t.Errorf("%s: no lag in %q", b, cs[rehearse.PhaseLiveCaughtUp][b].Detail)
		}
	}
	want := []string{"migrate --dual-write", "cutover --bucket cache --yes", "rollback --bucket session --yes", "complete --bucket ratelimit --purge-legacy"}
	var all []string
	for _, c := range res.Commands {
		all = append(all, strings.Join(c.Args, " "))
	}
	for _, w := range want {
		if !strings.Contains(strings.Join(all, "\n"), w) {
			t.Errorf("no %q among the commands: %q", w, all)
		}
	}
}

// --no-cutover is the live flow ending as before cutover existed: a clean
// stop of migrate, then rollback of every bucket to legacy as it was
// before rollback; no cutover case.
func TestRehearseLiveNoCutover(t *testing.T) {
	code, res, errs := rehearseJSON(t, "--synthetic", "500", "--live-for", "1s", "--no-cutover")
	for _, c := range res.Cases {
		if !c.OK {
			t.Errorf("%s/%s failed: %s %v\n%s", c.Phase, c.Bucket, c.Detail, c.Keys, c.Output)
		}
	}
	if code != ExitOK || !res.OK {
		t.Fatalf("live rehearsal without cutover: exit %d, OK %v\n%s", code, res.OK, errs)
	}
	cs := casesOf(res)
	for _, ph := range []string{rehearse.PhaseLiveCompare, rehearse.PhaseRollback, rehearse.PhaseFinal} {
		for _, b := range allBuckets {
			if !cs[ph][b].OK {
				t.Errorf("no passed %s case for %s", ph, b)
			}
		}
	}
	for _, ph := range []string{rehearse.PhaseCutover, rehearse.PhaseAppWrites, rehearse.PhaseRollbackCut, rehearse.PhaseComplete, rehearse.PhaseAfterCutover} {
		if _, ok := cs[ph]; ok {
			t.Errorf("--no-cutover ran %s", ph)
		}
	}
}

// A mirror that does not follow the load (migrate without --dual-write
// while the load writes) must fail the rehearsal as a loss: not caught up,
// and the comparison finds the writes that were never copied.
func TestRehearseLiveNoCaptureFails(t *testing.T) {
	code, res, errs := rehearseJSON(t, "--synthetic", "500", "--live-for", "2s", "--fault", "no-capture")
	if code != ExitDifferences || res.OK || !res.Lost {
		t.Fatalf("rehearsal with no capture: exit %d, OK %v, Lost %v\n%s", code, res.OK, res.Lost, errs)
	}
	cs := casesOf(res)
	failed := 0
	for _, b := range allBuckets {
		if c := cs[rehearse.PhaseLiveCaughtUp][b]; c.OK {
			t.Errorf("%s caught up without a mirror: %s", b, c.Detail)
		}
		if c := cs[rehearse.PhaseLiveCompare][b]; !c.OK {
			failed++
			if !strings.Contains(c.Detail, "DIFFERENT") || len(c.Keys) == 0 {
				t.Errorf("%s compare failed without differences: %+v", b, c)
			}
		}
	}
	// the load's long-lived keys of cache, session and queue are rewritten
	// all the time: those buckets differ at least
	if failed < 3 {
		t.Errorf("only %d compare cases failed: %+v", failed, cs[rehearse.PhaseLiveCompare])
	}
	if len(res.Live.Compare.Differences) == 0 {
		t.Error("no differences in the live figures")
	}
}

// A key deleted from a target after catch-up is a change the copier cannot
// see (legacy did not change): verify and the comparison both report it,
// in its bucket only, and the rehearsal fails as a loss.
func TestRehearseLiveLostKeyFails(t *testing.T) {
	code, res, errs := rehearseJSON(t, "--synthetic", "500", "--live-for", "1s", "--fault", "lose-key")
	if code != ExitDifferences || !res.Lost {
		t.Fatalf("rehearsal with a lost key: exit %d, Lost %v\n%s", code, res.Lost, errs)
	}
	cs := casesOf(res)
	for _, b := range allBuckets {
		v, c := cs[rehearse.PhaseLiveVerify][b], cs[rehearse.PhaseLiveCompare][b]
		if b == "session" {
			if v.OK || c.OK || !strings.Contains(strings.Join(c.Keys, " "), "missing on target session") {
				t.Errorf("session: verify %+v\ncompare %+v", v, c)
			}
			continue
		}
		if !v.OK || !c.OK {
			t.Errorf("%s failed, only session lost a key: verify %s; compare %s %v", b, v.Detail, c.Detail, c.Keys)
		}
	}
}

// The live flags are checked before any server starts.
func TestRehearseLiveFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--synthetic", "10", "--no-live", "--fault", "no-capture"},
		{"--synthetic", "10", "--live-for", "0s"},
		{"--synthetic", "10", "--live-rate", "0"},
		{"--synthetic", "10", "--fault", "nope"},
	} {
		code, _, errs := cli(t, append([]string{"rehearse", "--backend", "process"}, args...)...)
		if code != ExitUsage || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
			t.Errorf("%q: exit %d, want %d with one line: %s", args, code, ExitUsage, errs)
		}
	}
}

// --no-live is the one-pass flow: migrate --yes, its presence check and
// verify, no live case.
func TestRehearseNoLive(t *testing.T) {
	code, res, errs := rehearseJSON(t, "--synthetic", "300", "--no-live")
	if code != ExitOK || !res.OK {
		t.Fatalf("one-pass rehearsal: exit %d\n%s", code, errs)
	}
	cs := casesOf(res)
	for _, b := range allBuckets {
		if !cs[rehearse.PhaseMigrate][b].OK || !cs[rehearse.PhaseVerify][b].OK {
			t.Errorf("%s: migrate %+v, verify %+v", b, cs[rehearse.PhaseMigrate][b], cs[rehearse.PhaseVerify][b])
		}
	}
	for ph := range cs {
		if strings.HasPrefix(ph, "live") {
			t.Errorf("live case in the one-pass flow: %s", ph)
		}
	}
	for _, c := range res.Commands {
		if a := strings.Join(c.Args, " "); strings.Contains(a, "--dual-write") {
			t.Errorf("one-pass flow ran %s", a)
		}
	}
	if res.Live != nil {
		t.Errorf("live figures in the one-pass flow: %+v", res.Live)
	}
}
