package classify

import (
	"errors"
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/redisplit/redisplit/config"
)

// fixture is classify/testdata/library-keys.yaml.
type fixture struct {
	Libraries []struct {
		Library string       `yaml:"library"`
		Preset  string       `yaml:"preset"`
		Bucket  Bucket       `yaml:"bucket"`
		Keys    []fixtureKey `yaml:"keys"`
	} `yaml:"libraries"`
	Unclaimed []fixtureKey `yaml:"unclaimed"`
}

type fixtureKey struct {
	Key  string `yaml:"key"`
	Type string `yaml:"type"`
	Why  string `yaml:"why"`
}

func loadFixture(t *testing.T) fixture { return loadFixtureTB(t) }

func loadFixtureTB(t testing.TB) fixture {
	t.Helper()
	b, err := os.ReadFile("testdata/library-keys.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Libraries) == 0 || len(f.Unclaimed) == 0 {
		t.Fatal("empty fixture")
	}
	return f
}

func defaultRouter(t *testing.T, cfg *config.Config) *Classifier {
	t.Helper()
	c, _, err := Router(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPresetsRouteLibraryKeys: with zero configuration, every key a library
// writes goes to its bucket, decided by that library's preset.
func TestPresetsRouteLibraryKeys(t *testing.T) {
	c := defaultRouter(t, nil)
	n := 0
	for _, lib := range loadFixture(t).Libraries {
		for _, k := range lib.Keys {
			t.Run(lib.Library+"/"+k.Key, func(t *testing.T) {
				m := c.Classify(k.Key, k.Type)
				if m.Bucket != lib.Bucket {
					t.Fatalf("%q (%s) → %s by %v; want %s by preset %s", k.Key, k.Type, m.Bucket, m.Rule, lib.Bucket, lib.Preset)
				}
				if m.Rule == nil || m.Rule.Source != "preset "+lib.Preset {
					t.Fatalf("%q (%s) decided by %v; want preset %s", k.Key, k.Type, m.Rule, lib.Preset)
				}
			})
			n++
		}
	}
	t.Logf("%d library keys", n)
}

// TestPresetsLeaveGenericShapesUnknown: keys whose shape no library owns stay
// unknown, for scan's heuristics.
func TestPresetsLeaveGenericShapesUnknown(t *testing.T) {
	c := defaultRouter(t, nil)
	for _, k := range loadFixture(t).Unclaimed {
		t.Run(k.Key, func(t *testing.T) {
			if m := c.Classify(k.Key, k.Type); m.Bucket != Unknown {
				t.Fatalf("%q (%s) → %s by %v; want unknown (%s)", k.Key, k.Type, m.Bucket, m.Rule, k.Why)
			}
		})
	}
}

// TestNoDurableKeyEverRoutedToCache is the safety property: a session, queue
// or rate-limit key of any library is never classified cache — whatever type
// it is given (including none), with every preset on, and with any single
// preset switched off (its own included: its keys may then be unknown, but
// never cache).
func TestNoDurableKeyEverRoutedToCache(t *testing.T) {
	types := []string{"", "string", "hash", "list", "set", "zset", "stream"}
	configs := []*config.Config{nil}
	for _, name := range PresetNames() {
		configs = append(configs, &config.Config{Presets: config.Presets{Disabled: []string{name}}})
	}
	checked := 0
	for _, cfg := range configs {
		c := defaultRouter(t, cfg)
		for _, lib := range loadFixture(t).Libraries {
			if lib.Bucket == Cache {
				continue
			}
			for _, k := range lib.Keys {
				for _, typ := range types {
					if m := c.Classify(k.Key, typ); m.Bucket == Cache {
						var off []string
						if cfg != nil {
							off = cfg.Presets.Disabled
						}
						t.Errorf("%s key %q (%s; type %q) → cache by %v with presets %v off", lib.Bucket, k.Key, lib.Library, typ, m.Rule, off)
					}
					checked++
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("nothing checked")
	}
}

// TestEveryPresetIsExercised: each preset decides at least one fixture key,
// and each of its rules decides one when every preset is on or one is off.
func TestEveryPresetIsExercised(t *testing.T) {
	decided := map[string]bool{} // rule String()
	configs := []*config.Config{nil}
	for _, name := range PresetNames() {
		configs = append(configs, &config.Config{Presets: config.Presets{Disabled: []string{name}}})
	}
	f := loadFixture(t)
	for _, cfg := range configs {
		c := defaultRouter(t, cfg)
		for _, lib := range f.Libraries {
			for _, k := range lib.Keys {
				if m := c.Classify(k.Key, k.Type); m.Rule != nil {
					decided[m.Rule.String()] = true
				}
			}
		}
	}
	for _, p := range Presets() {
		for _, r := range p.Rules {
			if !decided[r.String()] {
				t.Errorf("rule %v decides no key of testdata/library-keys.yaml: add the key it is for", r)
			}
		}
	}
}

func TestPresetCatalog(t *testing.T) {
	seen := map[string]bool{}
	ps := Presets()
	if len(ps) < 30 {
		t.Fatalf("only %d presets", len(ps))
	}
	for i, p := range ps {
		if p.Name == "" || seen[p.Name] {
			t.Errorf("preset %d: empty or duplicate name %q", i, p.Name)
		}
		seen[p.Name] = true
		if !strings.Contains(p.Description, "Sources:") {
			t.Errorf("preset %s: description names no sources", p.Name)
		}
		if len(p.Rules) == 0 {
			t.Errorf("preset %s: no rules", p.Name)
		}
		for j, r := range p.Rules {
			if r.Source != "preset "+p.Name {
				t.Errorf("preset %s rule %d: Source %q", p.Name, j, r.Source)
			}
			if r.Name == "" {
				t.Errorf("preset %s rule %d: no name", p.Name, j)
			}
			if _, err := compile(r, r.Source, j+1); err != nil {
				t.Errorf("preset %s: %v", p.Name, err)
			}
		}
	}
	// Presets returns a copy: changing it does not change routing.
	ps[0].Rules[0].Bucket = Cache
	if Presets()[0].Rules[0].Bucket == Cache {
		t.Fatal("Presets shares its slices")
	}
}

func TestPresetSwitches(t *testing.T) {
	tests := []struct {
		name    string
		presets config.Presets
		key     string
		typ     string
		want    Bucket
	}{
		{"all on", config.Presets{}, "queue:default", "list", Queue},
		{"sidekiq off", config.Presets{Disabled: []string{"sidekiq"}}, "queue:default", "list", Unknown},
		{"other preset off", config.Presets{Disabled: []string{"celery"}}, "queue:default", "list", Queue},
		{"none", config.Presets{None: true}, "queue:default", "list", Unknown},
		{"none, sessions too", config.Presets{None: true}, "sess:abc", "string", Unknown},
		{"rmq off: guard keeps rmq keys out of cache", config.Presets{Disabled: []string{"rmq"}}, "rmq::connection::c1::heartbeat", "string", Queue},
		{"django off", config.Presets{Disabled: []string{"django"}}, ":1:views.decorators.cache.cache_page.x", "string", Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultRouter(t, &config.Config{Presets: tt.presets})
			if m := c.Classify(tt.key, tt.typ); m.Bucket != tt.want {
				t.Fatalf("%q → %s by %v, want %s", tt.key, m.Bucket, m.Rule, tt.want)
			}
		})
	}
}

// TestUserRulesComeFirst: a config rule overrides a preset, and its Source
// names its position.
func TestUserRulesComeFirst(t *testing.T) {
	cfg := &config.Config{Rules: []config.Rule{
		{Glob: "x:*", Bucket: "cache"},
		{Prefix: "sess:", Bucket: "cache", Name: "our sess: keys are a cache"},
	}}
	c := defaultRouter(t, cfg)
	m := c.Classify("sess:abc", "string")
	if m.Bucket != Cache || m.Rule.Source != "rules[2]" || m.Rule.Name != "our sess: keys are a cache" {
		t.Fatalf("got %s by %+v", m.Bucket, m.Rule)
	}
	if m := c.Classify("rl:1.2.3.4", "string"); m.Bucket != RateLimit || m.Rule.Source != "preset express-rate-limit" {
		t.Fatalf("preset after user rules: got %s by %v", m.Bucket, m.Rule)
	}
}

func TestInvalidConfigRules(t *testing.T) {
	ok := config.Rule{Prefix: "a:", Bucket: "cache"}
	tests := []struct {
		name    string
		cfg     config.Config
		rule    bool // *RuleError (else *config.Error)
		wantMsg string
	}{
		{"bad regex", config.Config{Rules: []config.Rule{ok, ok, {Regex: "a(", Bucket: "queue"}}}, true, "rules[3]: invalid regex"},
		{"bad glob", config.Config{Rules: []config.Rule{ok, {Glob: "a[bc", Bucket: "queue"}}}, true, "rules[2]: invalid glob"},
		{"two matchers", config.Config{Rules: []config.Rule{{Glob: "a*", Prefix: "a", Bucket: "queue"}}}, true, "rules[1]: exactly one of glob, prefix or regex"},
		{"no matcher", config.Config{Rules: []config.Rule{ok, {Bucket: "queue"}}}, true, "rules[2]: exactly one of glob, prefix or regex"},
		{"unknown bucket", config.Config{Rules: []config.Rule{{Prefix: "a", Bucket: "sessions"}}}, true, `rules[1]: bucket "sessions" is not one of`},
		{"unknown type", config.Config{Rules: []config.Rule{{Prefix: "a", Type: "json", Bucket: "cache"}}}, true, `rules[1]: type "json" is not one of`},
		{"unknown preset", config.Config{Presets: config.Presets{Disabled: []string{"sidekiq", "sidekik"}}}, false, `presets.disabled[2]: "sidekik" is not a preset; presets are: sidekiq, resque`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Router(&tt.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			var re *RuleError
			var ce *config.Error
			if tt.rule && !errors.As(err, &re) || !tt.rule && !errors.As(err, &ce) {
				t.Fatalf("error type %T: %v", err, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %q does not contain %q", err, tt.wantMsg)
			}
		})
	}
}

// TestPresetsDocumented: docs/rules.md lists every preset (by its name in
// backquotes), so the user's guide cannot silently fall behind the code.
func TestPresetsDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/rules.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range PresetNames() {
		if !strings.Contains(string(b), "| `"+name+"` |") {
			t.Errorf("docs/rules.md has no table row for preset %s", name)
		}
	}
}
