package verify_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/verify/verifytest"
)

// bucketCounts returns the counts of bucket b in r.
func bucketCounts(t *testing.T, r jsonResult, b string) map[string]int {
	t.Helper()
	for _, x := range r.Buckets {
		if x.Bucket == b {
			return x.Counts
		}
	}
	t.Fatalf("no bucket %s in the report", b)
	return nil
}

func mustDo(t *testing.T, errs ...error) {
	t.Helper()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A key the target held before the migration, that legacy holds with
// another value, is refused by migrate --allow-nonempty: verify reports it as
// foreign, which does not fail parity, in JSON, text, JUnit and the state.
func TestForeignKeysAfterAllowNonempty(t *testing.T) {
	env.Flush(t)
	ctx := context.Background()
	verifytest.Seed(t, env.LegacyClient(t), 20)
	binKey := "queue:bin:\xff\x00foreign"
	mustDo(t,
		env.LegacyClient(t).Set(ctx, binKey, "legacy's", 0).Err(),
		env.Target(t, "session").Set(ctx, "sess:str:1", "the target's own value", 0).Err(),
		env.Target(t, "queue").Set(ctx, binKey, "the target's own", 0).Err(),
		// a foreign key legacy does not have: foreign too, not extra
		env.Target(t, "session").Set(ctx, "sess:only-on-target", "the target's own", 0).Err(),
	)
	cfg := env.Config(t, "")
	verifytest.Migrate(t, cfg, "--allow-nonempty")

	code, r := runVerify(t, cfg, "--rounds", "2", "--interval", "100ms")
	if code != 0 || !r.Parity {
		t.Fatalf("exit %d parity %v, want 0 true; differences %+v", code, r.Parity, r.Differences)
	}
	got := map[string]string{}
	for _, d := range r.Differences {
		got[d.name()] = d.Bucket + " " + d.Category
		if !strings.Contains(d.Detail, "existed on the target before the migration") {
			t.Errorf("foreign key %q: detail %q does not give the refusal", d.name(), d.Detail)
		}
	}
	want := map[string]string{"sess:str:1": "session foreign", "sess:only-on-target": "session foreign", binKey: "queue foreign"}
	if fmtPairs(got) != fmtPairs(want) {
		t.Errorf("differences %v, want %v", sortedPairs(got), sortedPairs(want))
	}
	for _, d := range r.Differences {
		if d.name() == binKey && (d.KeyB64 == "" || d.Key != "") {
			t.Errorf("binary foreign key not given as key_b64: %+v", d)
		}
	}
	if c := bucketCounts(t, r, "session"); c["foreign"] != 2 || c["value"] != 0 || c["extra"] != 0 {
		t.Errorf("session counts %v, want 2 foreign, 0 value, 0 extra", c)
	}
	st, _ := mustState(t, cfg).Load()
	if st.LastVerify == nil || st.LastVerify.Buckets["session"].Foreign != 2 || st.Buckets["session"].Phase != state.Verified {
		t.Errorf("state: last verify %+v, session %+v", st.LastVerify, st.Buckets["session"])
	}

	// Text and JUnit count them separately.
	junit := filepath.Join(t.TempDir(), "verify.xml")
	code, out, _ := verifytest.Run(t, "verify", "--config", cfg, "--rounds", "1", "--junit", junit)
	if code != 0 || !strings.Contains(out, "FOREIGN") || !strings.Contains(out, "session: 2 keys existed on the target before the migration") || !strings.Contains(out, "result: PARITY") {
		t.Errorf("text verify exit %d:\n%s", code, out)
	}
	if x, err := os.ReadFile(junit); err != nil || !strings.Contains(string(x), `failures="0"`) || !strings.Contains(string(x), "2 foreign") {
		t.Errorf("junit: %v\n%s", err, x)
	}

	// A real difference still fails; the foreign key stays foreign.
	mustDo(t, env.Target(t, "session").Del(ctx, "sess:hash:1").Err())
	code, r = runVerify(t, cfg, "--rounds", "1")
	if c := bucketCounts(t, r, "session"); code != 3 || c["missing"] != 1 || c["foreign"] != 2 {
		t.Errorf("exit %d, session counts %v; want 3 with 1 missing and 2 foreign", code, c)
	}

	// Rollback leaves every target holding exactly its foreign keys, and
	// verify after it exits 0.
	if code, out, errs := verifytest.Run(t, "rollback", "--config", cfg, "--yes"); code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s", code, out, errs)
	}
	for b, want := range map[string][]string{"session": {"sess:only-on-target", "sess:str:1"}, "queue": {binKey}, "ratelimit": nil} {
		keys, err := env.Target(t, b).Keys(ctx, "*").Result()
		mustDo(t, err)
		keys = slices.DeleteFunc(keys, func(k string) bool { return strings.HasPrefix(k, "redisplit:") })
		slices.Sort(keys)
		if !slices.Equal(keys, want) {
			t.Errorf("%s target after rollback holds %q, want exactly its foreign keys %q", b, keys, want)
		}
	}
	if code, r := runVerify(t, cfg, "--rounds", "1"); code != 0 {
		t.Errorf("verify after rollback: exit %d, differences %+v", code, r.Differences)
	}
}

// After rollback, verify checks rollback's promise instead of parity: the
// targets hold none of redisplit's keys (foreign ones are kept), exit 0;
// a migrated key written back by hand is named as left behind, exit 3. A
// bucket rolled back alone is checked so while the others are checked for
// parity.
func TestVerifyAfterRollback(t *testing.T) {
	env.Flush(t)
	ctx := context.Background()
	lc := env.LegacyClient(t)
	verifytest.Seed(t, lc, 50)
	ctl := "queue:ctl:\x01\x1b[31mred"
	mustDo(t,
		lc.RPush(ctx, ctl, "a control character in the name").Err(),
		env.Target(t, "session").Set(ctx, "sess:str:0", "the target's own value", 0).Err(), // legacy has it too
		env.Target(t, "session").HSet(ctx, "sess:pre:1", "user", "42").Err(),               // only on the target
		env.Target(t, "cache").Set(ctx, "cache:pre:1", "was here before", 0).Err(),
	)
	cfg := env.Config(t, "")
	verifytest.Migrate(t, cfg, "--allow-nonempty")

	// One bucket rolled back: it is checked for rollback's promise, the others for parity.
	if code, _, errs := verifytest.Run(t, "rollback", "--config", cfg, "--yes", "--bucket", "session"); code != 0 {
		t.Fatalf("rollback exit %d: %s", code, errs)
	}
	code, out, errs := verifytest.Run(t, "verify", "--config", cfg, "--rounds", "1", "--bucket", "session", "--bucket", "queue", "--bucket", "ratelimit")
	if code != 0 || !strings.Contains(out, "result: PARITY (queue, ratelimit), ROLLED BACK (session)") {
		t.Fatalf("verify after rolling back session: exit %d\n%s%s", code, out, errs)
	}

	if code, _, errs := verifytest.Run(t, "rollback", "--config", cfg, "--yes"); code != 0 {
		t.Fatalf("rollback exit %d: %s", code, errs)
	}
	code, r := runVerify(t, cfg)
	if code != 0 || r.Parity || len(r.Differences) != 0 {
		t.Fatalf("verify after rollback: exit %d parity %v differences %+v; want 0, false (not in parity), none", code, r.Parity, r.Differences)
	}
	var rep struct {
		OK      bool `json:"ok"`
		Buckets []struct {
			Bucket    string `json:"bucket"`
			Check     string `json:"check"`
			OK        bool   `json:"ok"`
			Statement string `json:"statement"`
		} `json:"buckets"`
	}
	_, jout, _ := verifytest.Run(t, "verify", "--config", cfg, "-o", "json", "--rounds", "1")
	mustDo(t, json.Unmarshal([]byte(jout), &rep))
	if !rep.OK || len(rep.Buckets) != 4 {
		t.Fatalf("report: %s", jout)
	}
	for _, b := range rep.Buckets {
		if b.Check != "rolled_back" || !b.OK || !strings.HasPrefix(b.Statement, "rolled back: target holds none of redisplit's keys") {
			t.Errorf("bucket %+v", b)
		}
	}
	if c := bucketCounts(t, r, "session"); c["foreign"] != 2 || c["left_behind"] != 0 {
		t.Errorf("session counts %v, want the 2 foreign keys kept", c)
	}
	if c := bucketCounts(t, r, "cache"); c["foreign"] != 1 {
		t.Errorf("cache counts %v, want 1 foreign key kept", c)
	}
	code, out, _ = verifytest.Run(t, "verify", "--config", cfg)
	if code != 0 || !strings.Contains(out, "result: ROLLED BACK") || !strings.Contains(out, "session: rolled back: target holds none of redisplit's keys; 2 foreign keys kept") {
		t.Errorf("text verify after rollback: exit %d\n%s", code, out)
	}

	// Migrated keys written back by hand are left behind: exit 3, named.
	copyKey := func(bucket, key string) {
		t.Helper()
		d, err := lc.Dump(ctx, key).Result()
		mustDo(t, err)
		mustDo(t, env.Target(t, bucket).RestoreReplace(ctx, key, 0, d).Err())
	}
	bin := "cache:bin:\xff\xfe\x00k"
	copyKey("queue", "queue:list:1")
	copyKey("queue", ctl)
	copyKey("cache", bin)
	mustDo(t, env.Target(t, "session").Set(ctx, "sess:str:1", "value-sess:-1", 0).Err()) // legacy's value, its TTL not
	junit := filepath.Join(t.TempDir(), "verify.xml")
	code, r = runVerify(t, cfg, "--junit", junit)
	got := map[string]string{}
	for _, d := range r.Differences {
		got[d.name()] = d.Bucket + " " + d.Category
	}
	want := map[string]string{"queue:list:1": "queue left_behind", ctl: "queue left_behind", bin: "cache left_behind", "sess:str:1": "session left_behind"}
	if code != 3 || fmtPairs(got) != fmtPairs(want) {
		t.Errorf("exit %d differences %v; want 3 and %v", code, sortedPairs(got), sortedPairs(want))
	}
	st, _ := mustState(t, cfg).Load()
	if v := st.LastVerify.Buckets["queue"]; !v.RolledBack || v.LeftBehind != 2 || st.Buckets["queue"].Phase != state.RolledBack {
		t.Errorf("state: queue verify %+v, phase %s", v, st.Buckets["queue"].Phase)
	}
	// JUnit is valid XML and names every key losslessly.
	x, err := os.ReadFile(junit)
	mustDo(t, err)
	var doc struct {
		Cases []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Body string `xml:",chardata"`
			} `xml:"failure"`
		} `xml:"testsuite>testcase"`
	}
	mustDo(t, xml.Unmarshal(x, &doc))
	var bodies strings.Builder
	for _, c := range doc.Cases {
		if c.Failure != nil {
			bodies.WriteString(c.Failure.Body)
		}
	}
	for _, k := range []string{ctl, bin} {
		if !strings.Contains(bodies.String(), strconv.Quote(k)) {
			t.Errorf("junit does not name %q losslessly:\n%s", k, bodies.String())
		}
	}
	code, out, _ = verifytest.Run(t, "verify", "--config", cfg, "--rounds", "1")
	if code != 3 || !strings.Contains(out, "queue:list:1") || !strings.Contains(out, strconv.Quote(ctl)) || !strings.Contains(out, "NOT rolled back") {
		t.Errorf("text: exit %d\n%s", code, out)
	}
}

// A session target whose maxmemory-policy evicts is never marked verified,
// even in parity, unless the migration accepted it (state AllowEvictingTarget):
// verify names the bucket, the target, the policy and the fix, and exits 4.
func TestEvictingSessionTargetNotVerified(t *testing.T) {
	env.Flush(t)
	ctx := context.Background()
	verifytest.Seed(t, env.LegacyClient(t), 10)
	cfg := env.Config(t, "")
	verifytest.Migrate(t, cfg)
	master := verifytest.Client(t, env.Sentinel.Master.Addr())
	mustDo(t, master.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err())
	t.Cleanup(func() { master.ConfigSet(context.Background(), "maxmemory-policy", "noeviction") })

	code, out, errs := verifytest.Run(t, "verify", "--config", cfg, "--rounds", "1")
	if code != 4 {
		t.Fatalf("exit %d, want 4\n%s%s", code, out, errs)
	}
	line := strings.TrimSpace(errs)
	for _, s := range []string{"bucket session", "sentinel sessions@" + env.Sentinel.SentinelAddrs()[0], "allkeys-lru", "noeviction", "--allow-evicting-target session"} {
		if !strings.Contains(line, s) {
			t.Errorf("the refusal does not say %q: %s", s, line)
		}
	}
	if strings.Count(line, "\n") != 0 || !strings.Contains(out, "NOT VERIFIED") {
		t.Errorf("want one line on stderr and the report on stdout:\n%s\n%s", errs, out)
	}
	st, _ := mustState(t, cfg).Load()
	if p := st.Buckets["session"].Phase; p == state.Verified || st.LastVerify.Parity {
		t.Errorf("session phase %s, last verify parity %v: an evicting session target was marked verified", p, st.LastVerify.Parity)
	}
	if p := st.Buckets["queue"].Phase; p != state.Verified {
		t.Errorf("queue phase %s, want verified", p)
	}

	// The migration accepted the evicting target: verified.
	mustDo(t, mustState(t, cfg).Update(func(s *state.State) error { s.Buckets["session"].AllowEvictingTarget = true; return nil }))
	if code, out, errs := verifytest.Run(t, "verify", "--config", cfg, "--rounds", "1"); code != 0 {
		t.Fatalf("with the override: exit %d\n%s%s", code, out, errs)
	}
	st, _ = mustState(t, cfg).Load()
	if p := st.Buckets["session"].Phase; p != state.Verified {
		t.Errorf("with the override: session phase %s, want verified", p)
	}
	// Without it again, the verified bucket goes back to syncing.
	mustDo(t, mustState(t, cfg).Update(func(s *state.State) error { s.Buckets["session"].AllowEvictingTarget = false; return nil }))
	if code, _, _ := verifytest.Run(t, "verify", "--config", cfg, "--rounds", "1"); code != 4 {
		t.Errorf("exit %d, want 4", code)
	}
	st, _ = mustState(t, cfg).Load()
	if p := st.Buckets["session"].Phase; p != state.Syncing {
		t.Errorf("session phase %s, want syncing", p)
	}
}

func fmtPairs(m map[string]string) string { return strings.Join(sortedPairs(m), " ") }
