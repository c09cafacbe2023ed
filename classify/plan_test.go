package classify

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/redisplit/redisplit/config"
)

func samplePlan(t *testing.T) *Plan {
	t.Helper()
	p, err := PlanFromConfig(&config.Config{Rules: []config.Rule{{Name: "ours", Glob: "tmp:*", Bucket: "cache"}}})
	if err != nil {
		t.Fatal(err)
	}
	p.Rules = append(p.Rules, Rule{Glob: "cache:api:*", Type: "string", Bucket: Cache, Source: "proposal",
		Comment: "600000 keys, all strings, TTL 1h–1d\nsamples: cache:api:v1:item:1, cache:api:v1:item:2"})
	return p
}

func writePlan(t *testing.T, p *Plan, header string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WritePlan(&buf, p, header); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPlanRoundTrip(t *testing.T) {
	p := samplePlan(t)
	out := writePlan(t, p, "redisplit plan for legacy 10.0.0.5:6379\nreview before migrate")
	path := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadPlan(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(got, p) {
		for i := range p.Rules {
			if i < len(got.Rules) && !reflect.DeepEqual(got.Rules[i], p.Rules[i]) {
				t.Errorf("rule %d: got %+v want %+v", i+1, got.Rules[i], p.Rules[i])
			}
		}
		t.Fatalf("round trip differs (%d vs %d rules)", len(got.Rules), len(p.Rules))
	}
	// Stable: writing the loaded plan gives the same bytes.
	if again := writePlan(t, got, "redisplit plan for legacy 10.0.0.5:6379\nreview before migrate"); !bytes.Equal(again, out) {
		t.Fatalf("rewrite differs:\n%s\n---\n%s", out, again)
	}
	text := string(out)
	for _, want := range []string{
		"# redisplit plan for legacy 10.0.0.5:6379\n",
		"  # 600000 keys, all strings, TTL 1h–1d\n  # samples: cache:api:v1:item:1",
		"- {name: ours, glob: 'tmp:*', bucket: cache, from: 'rules[1]'}",
		"from: preset sidekiq}",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("plan does not contain %q:\n%s", want, text)
		}
	}
	// The loaded plan routes as the config did, with the same hash.
	c, err := got.Classifier()
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Classify("cache:api:v1:item:9", "string"); m.Bucket != Cache || m.Rule.Source != "proposal" {
		t.Fatalf("proposal: %s by %v", m.Bucket, m.Rule)
	}
	if got.Hash() != p.Hash() {
		t.Fatal("hash changed across write/load")
	}
}

func TestPlanHash(t *testing.T) {
	base := samplePlan(t)
	h := base.Hash()
	if len(h) != 64 {
		t.Fatalf("hash %q", h)
	}
	mutate := func(f func(p *Plan)) string {
		p := samplePlan(t)
		f(p)
		return p.Hash()
	}
	same := map[string]func(p *Plan){
		"comment":      func(p *Plan) { p.Rules[3].Comment = "other evidence" },
		"name":         func(p *Plan) { p.Rules[0].Name = "renamed" },
		"source":       func(p *Plan) { p.Rules[1].Source = "plan rules[2]" },
		"zero version": func(p *Plan) { p.Version = 0 },
	}
	for name, f := range same {
		if mutate(f) != h {
			t.Errorf("%s changed the hash", name)
		}
	}
	differ := map[string]func(p *Plan){
		"reorder":      func(p *Plan) { p.Rules[1], p.Rules[2] = p.Rules[2], p.Rules[1] },
		"bucket":       func(p *Plan) { p.Rules[0].Bucket = Queue },
		"type":         func(p *Plan) { p.Rules[0].Type = "hash" },
		"matcher kind": func(p *Plan) { p.Rules[0].Prefix, p.Rules[0].Glob = p.Rules[0].Glob, "" },
		"regex":        func(p *Plan) { p.Rules[2].Regex += "x" },
		"drop rule":    func(p *Plan) { p.Rules = p.Rules[1:] },
		"add rule":     func(p *Plan) { p.Rules = append(p.Rules, Rule{Prefix: "z", Bucket: Cache}) },
	}
	for name, f := range differ {
		if mutate(f) == h {
			t.Errorf("%s did not change the hash", name)
		}
	}
}

// TestRouterHashMatchesWrittenPlan: routing without a plan and routing with
// the plan written from the same config give the same hash and routes.
func TestRouterHashMatchesWrittenPlan(t *testing.T) {
	cfg := &config.Config{Presets: config.Presets{Disabled: []string{"wordpress"}}}
	c1, h1, err := Router(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := PlanFromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(path, writePlan(t, p, "h"), 0o600); err != nil {
		t.Fatal(err)
	}
	c2, h2, err := Router(&config.Config{Plan: path, Rules: []config.Rule{{Prefix: "x", Bucket: "cache"}}})
	if err != nil {
		t.Fatal(err)
	}
	if h1 != h2 {
		t.Fatalf("hash %s without plan, %s with the written plan", h1, h2)
	}
	if !reflect.DeepEqual(c1.Rules(), c2.Rules()) {
		t.Fatal("the written plan routes differently")
	}
	// With a plan, config rules are not consulted.
	if m := c2.Classify("xyz", "string"); m.Bucket != Unknown {
		t.Fatalf("config rule used despite plan: %v", m.Rule)
	}
	_, h3, _ := Router(nil)
	if h3 == h1 {
		t.Fatal("disabling a preset did not change the hash")
	}
}

func TestLoadPlanErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		rule    bool // *RuleError, else *config.Error
		want    string
	}{
		{"not yaml", "version: 1\nrules: [\n", false, "plan.yaml: malformed YAML"},
		{"empty", "", false, "empty plan file"},
		{"not a mapping", "- a\n", false, "expected a mapping"},
		{"no version", "rules:\n  - {prefix: a, bucket: cache}\n", false, "missing version"},
		{"future version", "version: 2\nrules: []\n", false, "plan version 2 is not supported"},
		{"unknown key", "version: 1\nrule:\n  - {prefix: a, bucket: cache}\n", false, `plan.yaml:2: unknown key "rule"`},
		{"no rules", "version: 1\n", false, "missing rules"},
		{"rules not a list", "version: 1\nrules: {prefix: a}\n", false, "rules: must be a list"},
		{"rule not a mapping", "version: 1\nrules:\n  - {prefix: a, bucket: cache}\n  - queue:*\n", true, "plan.yaml:4: rules[2]: a rule must be a mapping"},
		{"unknown field", "version: 1\nrules:\n  - {prefix: a, bucket: cache}\n  - {glob: 'a*', bucket: cache, ttl: 5}\n", true, `plan.yaml:4: rules[2]: unknown field "ttl"`},
		{"bad regex", "version: 1\nrules:\n  - {prefix: a, bucket: cache}\n  # evidence\n  - {prefix: b, bucket: queue}\n  - {regex: '(', bucket: queue}\n", true, "plan.yaml:6: rules[3]: invalid regex"},
		{"bad bucket", "version: 1\nrules:\n  - {prefix: a, bucket: evictable}\n", true, `plan.yaml:3: rules[1]: bucket "evictable" is not one of`},
		{"two matchers", "version: 1\nrules:\n  - {prefix: a, glob: 'a*', bucket: cache}\n", true, "rules[1]: exactly one of glob, prefix or regex must be set (found 2)"},
		{"bad type", "version: 1\nrules:\n  - {prefix: a, type: hashes, bucket: cache}\n", true, `rules[1]: type "hashes" is not one of`},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "plan.yaml")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadPlan(path)
			if err == nil {
				t.Fatal("no error")
			}
			var re *RuleError
			var ce *config.Error
			if tt.rule && !errors.As(err, &re) || !tt.rule && !errors.As(err, &ce) {
				t.Fatalf("error type %T: %v", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, _, err := Router(&config.Config{Plan: filepath.Join(dir, "nope.yaml")})
		var ce *config.Error
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "nope.yaml does not exist") {
			t.Fatalf("got %T %v", err, err)
		}
	})
}

// TestPlanRoundTripAwkwardValues: values YAML would otherwise reinterpret
// (null, yes, numbers, ~, ': ', '#', leading spaces, control bytes, tabs)
// come back byte for byte.
func TestPlanRoundTripAwkwardValues(t *testing.T) {
	p := &Plan{Version: 1, Rules: []Rule{
		{Name: "yes", Glob: "null", Bucket: Cache},
		{Name: "123", Prefix: "123", Bucket: Queue, Source: "~"},
		{Name: "no", Regex: "~", Bucket: Session},
		{Glob: "*: x", Bucket: Cache, Comment: "has # hash and ünïcode\n\nand an empty line"},
		{Prefix: " leading space", Bucket: RateLimit},
		{Prefix: "tab\there", Bucket: Cache},
		{Prefix: "celery\x06\x16", Type: "list", Bucket: Queue},
		{Prefix: "'quoted' \"double\"", Bucket: Cache},
		{Regex: `^a\\b\.c$`, Bucket: Cache, Name: "- dash"},
	}}
	out := writePlan(t, p, "header: with colon\n# and hash")
	path := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadPlan(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(got, p) {
		for i := range p.Rules {
			if !reflect.DeepEqual(got.Rules[i], p.Rules[i]) {
				t.Errorf("rule %d: got %#v\nwant %#v", i+1, got.Rules[i], p.Rules[i])
			}
		}
		t.Fatalf("plan:\n%s", out)
	}
}

// TestWritePlanRefusesBinaryText: a matcher that is not valid UTF-8 cannot be
// written as YAML text; WritePlan says so instead of writing a plan that
// would route differently once read back.
func TestWritePlanRefusesBinaryText(t *testing.T) {
	p := &Plan{Version: 1, Rules: []Rule{{Prefix: "ok", Bucket: Cache}, {Prefix: "bin\xff", Bucket: Cache}}}
	var buf bytes.Buffer
	err := WritePlan(&buf, p, "")
	if err == nil || !strings.Contains(err.Error(), "rules[2]") || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("err %v; wrote:\n%s", err, buf.String())
	}
}
