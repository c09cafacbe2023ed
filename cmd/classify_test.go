package cmd

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runClassifyCLI runs redisplit in-process with the config file of dir (an
// empty one unless the test wrote it) and returns exit code, stdout and stderr.
func runClassifyCLI(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	return runClassifyStdin(t, dir, "", args...)
}

func runClassifyStdin(t *testing.T, dir, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	app := &App{In: strings.NewReader(stdin), Out: &out, Err: &errb}
	if dir != "" {
		cfg := filepath.Join(dir, "redisplit.yaml")
		if _, err := os.Stat(cfg); err != nil {
			if err := os.WriteFile(cfg, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		args = append(args, "--config", cfg)
	}
	code := Run(context.Background(), app, args)
	return code, out.String(), errb.String()
}

func TestClassifyCommandText(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // lines or fragments of stdout, in order
	}{
		{"typed queue", []string{"classify", "queue:default", "--type", "list"},
			[]string{"queue:default (list) → queue  by preset sidekiq (job queue): glob queue:* type list"}},
		{"session, no type needed", []string{"classify", ":1:django.contrib.sessions.cachez8k2m4n6p8q0r2s4t6v8x0y2a4b6c8d0"},
			[]string{"→ session  by preset django (session (cache/cached_db backend)): regex ^[^:]*:[0-9]+:django"}},
		{"unknown", []string{"classify", "user:42:profile", "--type", "string"},
			[]string{"user:42:profile (string) → unknown: no rule matches"}},
		{"untyped shows what types change", []string{"classify", "queue:default"},
			[]string{"queue:default → unknown: no rule matches without a type", "    as list   → queue  by preset sidekiq"}},
		{"several keys in order", []string{"classify", "rl:203.0.113.9", "sess:abc", "--type", "string"},
			[]string{"rl:203.0.113.9 (string) → ratelimit  by preset express-rate-limit", "sess:abc (string) → session  by preset connect-redis"}},
		{"binary key via --b64", []string{"classify", "--b64", base64.StdEncoding.EncodeToString([]byte("celery\x06\x163")), "--type", "list"},
			[]string{`"celery\x06\x163" (list) → queue  by preset celery (priority sub-queue)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runClassifyCLI(t, t.TempDir(), tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			rest := out
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order):\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestClassifyCommandJSON(t *testing.T) {
	bin := "\xff\xfebin"
	code, out, errs := runClassifyCLI(t, t.TempDir(), "classify", "-o", "json", "--type", "string",
		"rate:user:42", bin, "--b64="+"false")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(got) != 2 {
		t.Fatalf("%d elements:\n%s", len(got), out)
	}
	if got[0]["key"] != "rate:user:42" || got[0]["bucket"] != "ratelimit" ||
		!strings.HasPrefix(got[0]["rule"].(string), "preset redis-rate") || got[0]["type"] != "string" {
		t.Fatalf("first: %v", got[0])
	}
	if _, ok := got[1]["key"]; ok || got[1]["key_b64"] != base64.StdEncoding.EncodeToString([]byte(bin)) ||
		got[1]["bucket"] != "unknown" || got[1]["rule"] != nil {
		t.Fatalf("binary key: %v", got[1])
	}
}

// TestClassifyCommandConfig: config rules come first; --plan routes with the
// plan alone; bad configuration exits 2 with a message naming the setting.
func TestClassifyCommandConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("redisplit.yaml", "rules:\n  - {glob: 'sess:*', bucket: cache, name: ours}\npresets:\n  disabled: [express-rate-limit]\n")
	code, out, errs := runClassifyCLI(t, dir, "classify", "sess:abc", "rl:1.2.3.4", "--type", "string")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "sess:abc (string) → cache  by rules[1] (ours): glob sess:*\n"+
		"    overrides → session  by preset connect-redis (express session): prefix sess:\n"+
		"    WARNING: rules[1] routes this key to cache, where eviction can delete it, but preset connect-redis says session\n") ||
		!strings.Contains(out, "rl:1.2.3.4 (string) → unknown: no rule matches") {
		t.Fatalf("output:\n%s", out)
	}

	code, out, _ = runClassifyCLI(t, dir, "classify", "sess:abc", "-o", "json")
	var js []struct {
		Bucket    string `json:"bucket"`
		Overrides []struct {
			Bucket string `json:"bucket"`
			Rule   string `json:"rule"`
		} `json:"overrides"`
		Warning string `json:"warning"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil || code != 0 {
		t.Fatalf("exit %d %v\n%s", code, err, out)
	}
	if len(js) != 1 || js[0].Bucket != "cache" || len(js[0].Overrides) != 1 || js[0].Overrides[0].Bucket != "session" ||
		!strings.Contains(js[0].Warning, "preset connect-redis says session") {
		t.Fatalf("json: %+v", js)
	}

	plan := write("plan.yaml", "version: 1\nrules:\n  - {prefix: 'rl:', bucket: ratelimit, from: proposal}\n")
	code, out, errs = runClassifyCLI(t, dir, "classify", "--plan", plan, "sess:abc", "rl:1.2.3.4")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "sess:abc → unknown") || !strings.Contains(out, "rl:1.2.3.4 → ratelimit  by proposal: prefix rl:") {
		t.Fatalf("with plan:\n%s", out)
	}

	bad := []struct {
		name, config string
		args         []string
		want         string
	}{
		{"bad rule", "rules:\n  - {prefix: a, bucket: cache}\n  - {regex: '(', bucket: queue}\n", []string{"classify", "x"}, "rules[2]: invalid regex"},
		{"unknown preset", "presets:\n  disabled: [sidekik]\n", []string{"classify", "x"}, `presets.disabled[1]: "sidekik" is not a preset`},
		{"bad type", "", []string{"classify", "x", "--type", "json"}, `--type: "json" is not one of`},
		{"no key", "", []string{"classify"}, "classify needs at least one KEY"},
		{"bad base64", "", []string{"classify", "--b64", "!!"}, "is not base64"},
		{"bad plan", "", []string{"classify", "--plan", write("bad-plan.yaml", "version: 1\nrules:\n  - {glob: '[', bucket: cache}\n"), "x"}, "bad-plan.yaml:3: rules[1]: invalid glob"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			write("redisplit.yaml", tt.config)
			code, _, errs := runClassifyCLI(t, dir, tt.args...)
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d: %s", code, ExitUsage, errs)
			}
			if !strings.Contains(errs, tt.want) {
				t.Fatalf("stderr %q lacks %q", errs, tt.want)
			}
		})
	}
}

func TestClassifyListPresets(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "redisplit.yaml"), []byte("presets:\n  disabled: [wordpress]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runClassifyCLI(t, dir, "classify", "--list-presets", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got []struct {
		Name    string `json:"name"`
		Enabled bool   `json:"enabled"`
		Rules   []struct {
			Bucket string `json:"bucket"`
			From   string `json:"from"`
		} `json:"rules"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	states := map[string]bool{}
	for _, p := range got {
		states[p.Name] = p.Enabled
		if len(p.Rules) == 0 || p.Rules[0].Bucket == "" || p.Rules[0].From != "preset "+p.Name {
			t.Errorf("%s: rules %+v", p.Name, p.Rules)
		}
	}
	if len(got) < 30 || states["wordpress"] || !states["sidekiq"] {
		t.Fatalf("%d presets, states %v", len(got), states)
	}
	code, out, _ = runClassifyCLI(t, dir, "classify", "--list-presets")
	if code != 0 || !strings.Contains(out, "wordpress (off)") || !strings.Contains(out, "laravel (on)") {
		t.Fatalf("text list:\n%s", out)
	}
}

func TestClassifyStdin(t *testing.T) {
	in := "queue:default\tlist\nsess:abc\n\nuser:42:profile\tstring\nwith\ttab\n" +
		base64.StdEncoding.EncodeToString([]byte("x")) // last line without newline
	code, out, errs := runClassifyStdin(t, t.TempDir(), in, "classify", "--stdin")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := []string{
		"queue:default (list) → queue  by preset sidekiq",
		"sess:abc → session  by preset connect-redis",
		"user:42:profile (string) → unknown: no rule matches",
		`"with\ttab" → unknown`, // a tab not followed by a type is part of the key
		"eA== → unknown",
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %q, want prefix %q", i+1, lines[i], w)
		}
	}

	// JSON: one array, streamed; --b64 decodes each line; --type is the default type.
	in = base64.StdEncoding.EncodeToString([]byte("celery\x06\x163")) + "\n" + base64.StdEncoding.EncodeToString([]byte("rl:1.2.3.4")) + "\tstring\n"
	code, out, errs = runClassifyStdin(t, t.TempDir(), in, "classify", "--stdin", "--b64", "--type", "list", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(got) != 2 || got[0]["bucket"] != "queue" || got[0]["type"] != "list" || got[1]["bucket"] != "ratelimit" || got[1]["type"] != "string" {
		t.Fatalf("got %v", got)
	}

	code, out, _ = runClassifyStdin(t, t.TempDir(), "", "classify", "--stdin", "-o", "json")
	if code != 0 || out != "[]\n" {
		t.Fatalf("empty input: exit %d, %q", code, out)
	}
	code, _, errs = runClassifyStdin(t, t.TempDir(), "a\n", "classify", "--stdin", "k")
	if code != ExitUsage || !strings.Contains(errs, "not both") {
		t.Fatalf("args and --stdin: exit %d %s", code, errs)
	}
	code, _, errs = runClassifyStdin(t, t.TempDir(), "b2s=\n%%%\n", "classify", "--stdin", "--b64")
	if code != ExitUsage || !strings.Contains(errs, "line 2") {
		t.Fatalf("bad base64 line: exit %d %s", code, errs)
	}
}

func TestClassifyNotesPlanOverridesConfig(t *testing.T) {
	dir := t.TempDir()
	plan := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(plan, []byte("version: 1\nrules:\n  - {prefix: 'a', bucket: cache}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "redisplit.yaml"), []byte("plan: "+plan+"\nrules:\n  - {prefix: b, bucket: queue}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runClassifyCLI(t, dir, "classify", "b1")
	if code != 0 || !strings.Contains(out, "b1 → unknown") || !strings.Contains(errs, "routing with the plan "+plan+" alone") {
		t.Fatalf("exit %d\nout %s\nerr %s", code, out, errs)
	}
}

// TestPresetSwitchesFromEnvironment: REDISPLIT_PRESETS_DISABLED and
// REDISPLIT_PRESETS_NONE switch presets without a config file edit (CI).
func TestPresetSwitchesFromEnvironment(t *testing.T) {
	t.Setenv("REDISPLIT_PRESETS_DISABLED", "wordpress,apollo")
	code, out, errs := runClassifyCLI(t, t.TempDir(), "classify", "--type", "string", "wp:options:alloptions", "sess:x")
	if code != 0 || !strings.Contains(out, "wp:options:alloptions (string) → unknown") || !strings.Contains(out, "sess:x (string) → session") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	t.Setenv("REDISPLIT_PRESETS_DISABLED", "")
	t.Setenv("REDISPLIT_PRESETS_NONE", "true")
	code, out, errs = runClassifyCLI(t, t.TempDir(), "classify", "sess:x")
	if code != 0 || !strings.Contains(out, "sess:x → unknown") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	t.Setenv("REDISPLIT_PRESETS_NONE", "")
	t.Setenv("REDISPLIT_PRESETS_DISABLED", "wordpres")
	code, _, errs = runClassifyCLI(t, t.TempDir(), "classify", "sess:x")
	if code != ExitUsage || !strings.Contains(errs, `"wordpres" is not a preset`) {
		t.Fatalf("exit %d %s", code, errs)
	}
}

// TestClassifyExplainsProposalEvidence: a key routed by a scan proposal kept
// in the plan is explained with the proposal's confidence, deciding evidence
// and evidence (text and JSON).
func TestClassifyExplainsProposalEvidence(t *testing.T) {
	dir := t.TempDir()
	plan := filepath.Join(dir, "plan.yaml")
	doc := "version: 1\nrules:\n" +
		"  # proposal for web:{id} -> session, confidence 0.95\n" +
		"  #   decided by: values: express-session JSON ({\"cookie\":...}), 3 of 3 read\n" +
		"  #   - strings with session-like TTLs (23h..23h)\n" +
		"  - {name: 'web:{id}', glob: 'web:*', bucket: session, from: proposal}\n"
	if err := os.WriteFile(plan, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "redisplit.yaml"), []byte("plan: "+plan+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runClassifyCLI(t, dir, "classify", "web:Xk3pQ9zR2mN8vB5cL1wT7yH4")
	if code != 0 || !strings.Contains(out, "→ session  by proposal (web:{id})") ||
		!strings.Contains(out, "# decided by: values: express-session JSON") || !strings.Contains(out, "confidence 0.95") {
		t.Fatalf("exit %d\nout %s\nerr %s", code, out, errs)
	}
	code, out, _ = runClassifyCLI(t, dir, "classify", "web:x", "-o", "json")
	if code != 0 || !strings.Contains(out, `"evidence": [`) || !strings.Contains(out, "session-like TTLs") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}
