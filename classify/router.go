package classify

import (
	"fmt"
	"strings"

	"github.com/redisplit/redisplit/config"
)

// RulesFromConfig returns the routing rules of cfg when no plan file is used:
// the user's rules in order (Source "rules[i]", 1-based), then the rules of
// every enabled preset in Presets order. A nil cfg means zero configuration
// (every preset).
//
// Errors: a *RuleError naming the rule's position ("rules[3]: invalid regex
// ...") for an invalid user rule; a *config.Error for an unknown name in
// presets.disabled.
func RulesFromConfig(cfg *config.Config) ([]Rule, error) {
	if cfg == nil {
		cfg = &config.Config{}
	}
	var out []Rule
	for i, cr := range cfg.Rules {
		r := Rule{Name: cr.Name, Glob: cr.Glob, Prefix: cr.Prefix, Regex: cr.Regex, Type: cr.Type, Bucket: Bucket(cr.Bucket)}
		if _, err := compile(r, "rules", i+1); err != nil {
			return nil, err
		}
		r.Source = fmt.Sprintf("rules[%d]", i+1)
		out = append(out, r)
	}
	enabled, err := EnabledPresets(cfg.Presets)
	if err != nil {
		return nil, err
	}
	for _, p := range enabled {
		out = append(out, p.Rules...)
	}
	return out, nil
}

// EnabledPresets returns the presets that sw leaves on, in evaluation order.
// A name in sw.Disabled that is not a preset is a *config.Error listing the
// valid names (a typo must not silently leave a preset on).
func EnabledPresets(sw config.Presets) ([]Preset, error) {
	all := Presets()
	known := map[string]bool{}
	for _, p := range all {
		known[p.Name] = true
	}
	off := map[string]bool{}
	for i, n := range sw.Disabled {
		n = strings.TrimSpace(n)
		if !known[n] {
			return nil, config.Errorf(fmt.Sprintf("presets.disabled[%d]", i+1),
				"%q is not a preset; presets are: %s", n, strings.Join(PresetNames(), ", "))
		}
		off[n] = true
	}
	if sw.None {
		return nil, nil
	}
	var out []Preset
	for _, p := range all {
		if !off[p.Name] {
			out = append(out, p)
		}
	}
	return out, nil
}

// PlanFromConfig returns the plan equivalent to routing with cfg and no plan
// file: the user's rules and the enabled presets, expanded. The first rule of
// each preset carries the preset's description (what it routes, its sources)
// as its Comment, so that the written plan documents itself for a reviewer.
// scan appends its accepted proposals to it before writing it with WritePlan.
func PlanFromConfig(cfg *config.Config) (*Plan, error) {
	rules, err := RulesFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	desc := map[string]string{}
	for _, p := range Presets() {
		desc["preset "+p.Name] = "preset " + p.Name + ": " + p.Description
	}
	for i := range rules {
		if d, ok := desc[rules[i].Source]; ok && (i == 0 || rules[i-1].Source != rules[i].Source) {
			rules[i].Comment = wrap(d, 100)
		}
	}
	return &Plan{Version: PlanVersion, Rules: rules}, nil
}

// wrap breaks s into lines of at most width bytes at spaces.
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		if i > 0 {
			if n+1+len(w) > width {
				b.WriteByte('\n')
				n = 0
			} else {
				b.WriteByte(' ')
				n++
			}
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// Router returns the classifier every command routes with, and the hash of
// the plan it embodies. With cfg.Plan set it loads that plan file and uses it
// alone (config rules and presets are not consulted: the plan already holds
// them, reviewed); otherwise it routes with RulesFromConfig, and planHash is
// the hash of the equivalent plan, so that writing that plan with WritePlan
// and routing with it later yields the same hash.
func Router(cfg *config.Config) (c *Classifier, planHash string, err error) {
	var p *Plan
	if cfg != nil && cfg.Plan != "" {
		p, err = LoadPlan(cfg.Plan)
	} else {
		p, err = PlanFromConfig(cfg)
	}
	if err != nil {
		return nil, "", err
	}
	c, err = p.Classifier()
	if err != nil {
		return nil, "", err
	}
	return c, p.Hash(), nil
}
