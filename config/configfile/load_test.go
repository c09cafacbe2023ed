package configfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redisplit/redisplit/config"
)

func load(t *testing.T, yaml string, env map[string]string) (*config.Config, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	p := filepath.Join(t.TempDir(), "redisplit.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(NewViper(), p, true)
}

// Every duration key, from the file or the environment, takes a Go
// duration; a bare number is a config error naming the key, never
// nanoseconds.
func TestDurations(t *testing.T) {
	ok := []struct {
		name, yaml string
		env        map[string]string
		get        func(*config.Config) time.Duration
		want       time.Duration
	}{
		{"file", "legacy: {connect_timeout: 2s, read_timeout: 1500ms}", nil, func(c *config.Config) time.Duration { return c.Legacy.ReadTimeout }, 1500 * time.Millisecond},
		{"env", "{}", map[string]string{"REDISPLIT_LEGACY_CONNECT_TIMEOUT": "3s"}, func(c *config.Config) time.Duration { return c.Legacy.ConnectTimeout }, 3 * time.Second},
		{"default", "{}", nil, func(c *config.Config) time.Duration { return c.Legacy.ConnectTimeout }, 5 * time.Second},
		{"target", "targets: {queue: {kind: standalone, url: 'redis://h:1', read_timeout: 1m}}", nil,
			func(c *config.Config) time.Duration { return c.Targets["queue"].ReadTimeout }, time.Minute},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.yaml, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.get(c); got != tt.want {
				t.Fatalf("%v, want %v", got, tt.want)
			}
		})
	}
	bad := []struct {
		name, yaml string
		env        map[string]string
		field      string
		want       []string
	}{
		{"bare integer", "legacy: {connect_timeout: 5}", nil, "legacy.connect_timeout", []string{"5 has no unit; write 5s", "redisplit.yaml"}},
		{"bare zero", "legacy: {read_timeout: 0}", nil, "legacy.read_timeout", []string{"0 has no unit; write 0s"}},
		{"bare float", "targets: {cache: {kind: cluster, addrs: ['h:1'], read_timeout: 2.5}}", nil, "targets.cache.read_timeout", []string{"2.5 has no unit; write 2.5s"}},
		{"bare string", "legacy: {connect_timeout: '10'}", nil, "legacy.connect_timeout", []string{"10 has no unit; write 10s"}},
		{"bare number in the environment", "{}", map[string]string{"REDISPLIT_LEGACY_READ_TIMEOUT": "5"}, "legacy.read_timeout",
			[]string{"5 has no unit; write 5s", "from REDISPLIT_LEGACY_READ_TIMEOUT"}},
		{"not a duration", "legacy: {connect_timeout: soon}", nil, "legacy.connect_timeout", []string{`"soon" is not a duration`}},
		{"negative", "legacy: {connect_timeout: -1s}", nil, "legacy.connect_timeout", []string{"-1s is out of range"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.yaml, tt.env)
			assertConfigError(t, err, tt.field, tt.want...)
		})
	}
}

// An unknown key, a value of the wrong type or out of its range is one line
// naming the key (and for unknown keys the file and the nearest known key).
func TestUnknownKeysAndBadValues(t *testing.T) {
	tests := []struct {
		name, yaml, field string
		want              []string
	}{
		{"typo in legacy", "legacy: {url: 'redis://h:1', conect_timeout: 5s}", "legacy.conect_timeout",
			[]string{"unknown key in", "redisplit.yaml", "did you mean connect_timeout?"}},
		{"typo in a target", "targets: {cache: {kind: standalone, url: 'redis://h:1', pasword: x}}", "targets.cache.pasword",
			[]string{"did you mean password?"}},
		{"typo in tls", "legacy: {tls: {ca_fil: x}}", "legacy.tls.ca_fil", []string{"did you mean ca_file?"}},
		{"typo in a rule", "rules: [{glob: 'a:*', bucket: cache}, {globb: 'b:*', bucket: cache}]", "rules[2].globb",
			[]string{"did you mean glob?"}},
		{"unknown top-level key", "legacyy: {url: x}\nfrobnicate: 1\n", "frobnicate",
			[]string{"the top level takes legacy, targets,", "and 1 more unknown keys: legacyy"}},
		{"wrong type", "scan: {count: many}", "scan.count", []string{`cannot read "many" as int`, "redisplit.yaml"}},
		{"out of range", "scan: {count: 0}", "scan.count", []string{"0 is out of range; valid values are 1 to 1000000"}},
		{"negative db", "targets: {session: {kind: sentinel, master: m, sentinels: ['h:1'], db: -1}}", "targets.session.db", []string{"-1 is out of range; valid values are 0 or more"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.yaml, nil)
			assertConfigError(t, err, tt.field, tt.want...)
		})
	}
}

func assertConfigError(t *testing.T, err error, field string, want ...string) {
	t.Helper()
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%T %v, want *config.Error", err, err)
	}
	if ce.Field != field {
		t.Errorf("field %q, want %q: %v", ce.Field, field, err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("not one line: %q", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%q lacks %q", msg, w)
		}
	}
}
