package plan

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config"
)

// userRules exercise every matcher kind, typed rules in front of untyped
// ones, and names shadowed by earlier rules.
var userRules = []config.Rule{
	{Glob: "sess:*", Type: "string", Bucket: "session"},
	{Glob: "sess:*", Type: "hash", Bucket: "queue"},
	{Prefix: "cache:", Bucket: "cache"},
	{Regex: `^rl:[0-9]+$`, Bucket: "ratelimit"},
	{Glob: "q:[a-c]?:*", Type: "list", Bucket: "queue"},
	{Glob: `odd\*name*`, Bucket: "cache"},
	{Regex: `(?i)^MiXeD:`, Bucket: "session"},
	{Glob: "*:tmp", Bucket: "cache"},
}

// keys returns every key of classify's library fixture plus names around the
// user rules.
func keys(t *testing.T) []string {
	data, err := os.ReadFile("../../../../classify/testdata/library-keys.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Libraries []struct {
			Keys []struct {
				Key string `yaml:"key"`
			} `yaml:"keys"`
		} `yaml:"libraries"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	out := []string{"", "sess:1", "sess:", "cache:x", "cachex", "rl:12", "rl:12a", "q:a1:x", "q:d1:x",
		"odd*name", "oddxname", "mixed:1", "MIXED:1", "a:tmp", "tmp", "redisplit:control", "\xff\xfe:tmp", "sess:\x00"}
	for _, l := range f.Libraries {
		for _, k := range l.Keys {
			out = append(out, k.Key, k.Key+"x", "x"+k.Key)
		}
	}
	if len(out) < 300 {
		t.Fatalf("only %d keys from the fixture", len(out))
	}
	return out
}

func writePlan(t *testing.T, cfg *config.Config) string {
	p, err := classify.PlanFromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := classify.WritePlan(&buf, p, "test plan"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSameRoutingAsClassify keeps this copy honest: for the zero-config plan
// (every preset) and a plan with user rules in front, every key routes to the
// same bucket as classify's, for every type and by name alone, and the plan
// hash is the same.
func TestSameRoutingAsClassify(t *testing.T) {
	for name, cfg := range map[string]*config.Config{
		"presets":            nil,
		"user rules+presets": {Rules: userRules},
		"user rules only":    {Rules: userRules, Presets: config.Presets{None: true}},
	} {
		t.Run(name, func(t *testing.T) {
			path := writePlan(t, cfg)
			want, err := classify.LoadPlan(path)
			if err != nil {
				t.Fatal(err)
			}
			wc, err := want.Classifier()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if got.Hash() != want.Hash() {
				t.Errorf("hash %s, classify's %s", got.Hash(), want.Hash())
			}
			if got.NeedsType() != wc.NeedsType() {
				t.Errorf("NeedsType %v, classify's %v", got.NeedsType(), wc.NeedsType())
			}
			for _, k := range keys(t) {
				for _, typ := range routableTypes {
					if g, w := got.Classify(k, typ), string(wc.Classify(k, typ).Bucket); g != w {
						t.Errorf("Classify(%q, %q) = %s, classify's %s", k, typ, g, w)
					}
				}
				gb, gok := got.ClassifyName(k)
				wm, wok := wc.ClassifyName(k)
				if gok != wok || gok && gb != string(wm.Bucket) {
					t.Errorf("ClassifyName(%q) = %s %v, classify's %s %v", k, gb, gok, wm.Bucket, wok)
				}
				var wp []string
				for _, b := range wc.PossibleBuckets(k) {
					wp = append(wp, string(b))
				}
				if gp := got.PossibleBuckets(k); !slices.Equal(gp, wp) {
					t.Errorf("PossibleBuckets(%q) = %v, classify's %v", k, gp, wp)
				}
			}
		})
	}
}

func TestConstantsMatchClassify(t *testing.T) {
	if Version != classify.PlanVersion || Unknown != string(classify.Unknown) {
		t.Fatal("version or unknown bucket differs from classify")
	}
	var want []string
	for _, b := range classify.Buckets {
		want = append(want, string(b))
	}
	if !slices.Equal(Buckets, want) {
		t.Fatalf("buckets %v, classify's %v", Buckets, want)
	}
}

func TestRejectsWhatClassifyRejects(t *testing.T) {
	for name, src := range map[string]string{
		"no version":     "rules: [{glob: 'a*', bucket: cache}]\n",
		"bad version":    "version: 2\nrules: [{glob: 'a*', bucket: cache}]\n",
		"no rules":       "version: 1\n",
		"two matchers":   "version: 1\nrules: [{glob: 'a*', prefix: a, bucket: cache}]\n",
		"bad bucket":     "version: 1\nrules: [{glob: 'a*', bucket: nosuch}]\n",
		"bad type":       "version: 1\nrules: [{glob: 'a*', type: json, bucket: cache}]\n",
		"bad regex":      "version: 1\nrules: [{regex: '(', bucket: cache}]\n",
		"bad glob":       "version: 1\nrules: [{glob: 'a[', bucket: cache}]\n",
		"unknown field":  "version: 1\nrules: [{glob: 'a*', bucket: cache, colour: red}]\n",
		"unknown key":    "version: 1\nrules: []\nextra: 1\n",
		"malformed yaml": "version: [1\n",
	} {
		path := filepath.Join(t.TempDir(), "plan.yaml")
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := classify.LoadPlan(path); err == nil {
			t.Fatalf("%s: classify accepts it; the case is wrong", name)
		}
		if _, err := Load(path); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
