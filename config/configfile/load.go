// Package configfile loads redisplit's configuration (package config) from
// the YAML file, REDISPLIT_* environment variables and command-line flags
// through viper. It is apart from package config so that config, and what
// imports it (classify, the application client), does not pull viper in.
package configfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/redisplit/redisplit/config"
)

// scalarKeys are the settings that can be set through REDISPLIT_* environment
// variables (dots become underscores: legacy.password → REDISPLIT_LEGACY_PASSWORD).
var scalarKeys = []string{
	"legacy.url", "legacy.username", "legacy.password", "legacy.password_file",
	"legacy.tls.enabled", "legacy.tls.ca_file", "legacy.tls.cert_file", "legacy.tls.key_file",
	"legacy.tls.server_name", "legacy.tls.insecure_skip_verify",
	"legacy.connect_timeout", "legacy.read_timeout",
	"unknown", "plan", "state_dir", "max_ops",
	"scan.count", "scan.max_ops", "scan.sample",
	"presets.none", "presets.disabled", // REDISPLIT_PRESETS_DISABLED=wordpress,apollo
}

// NewViper returns a viper instance with redisplit's defaults and environment
// binding. Commands bind their flags to it before calling Load.
func NewViper() *viper.Viper {
	v := NewFileViper()
	v.SetEnvPrefix("REDISPLIT")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	for _, k := range scalarKeys {
		_ = v.BindEnv(k)
	}
	return v
}

// NewFileViper is NewViper without the REDISPLIT_* environment: defaults,
// the file and flags only. A rehearsal's commands use it, so that the real
// legacy's URL, password and other settings in the environment never reach
// its throw-away servers.
func NewFileViper() *viper.Viper {
	v := viper.New()
	d := config.Defaults()
	v.SetDefault("unknown", d.Unknown)
	v.SetDefault("state_dir", d.StateDir)
	v.SetDefault("scan.count", d.Scan.Count)
	v.SetDefault("scan.sample", d.Scan.Sample)
	v.SetDefault("legacy.connect_timeout", d.Legacy.ConnectTimeout)
	v.SetDefault("legacy.read_timeout", d.Legacy.ReadTimeout)
	return v
}

// Load reads path into v (a missing default file is not an error; a missing
// explicit file is), decodes and validates the result.
func Load(v *viper.Viper, path string, explicit bool) (*config.Config, error) {
	if path == "" {
		path = config.DefaultFile
	}
	v.SetConfigFile(path)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		var pe *fs.PathError
		switch {
		case errors.As(err, &pe) && errors.Is(pe.Err, fs.ErrNotExist) && !explicit:
			// no file: defaults, environment and flags only
		case errors.As(err, &pe) || errors.Is(err, os.ErrNotExist):
			return nil, &config.Error{Msg: fmt.Sprintf("cannot read config file %s: %v", path, err)}
		default:
			return nil, &config.Error{Msg: fmt.Sprintf("malformed config file %s: %v", path, err)}
		}
	}
	var c config.Config
	var md mapstructure.Metadata
	dec := viper.DecoderConfigOption(func(dc *mapstructure.DecoderConfig) {
		dc.Metadata = &md
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			durationHook,
			mapstructure.StringToSliceHookFunc(","),
		)
	})
	if err := v.Unmarshal(&c, dec); err != nil {
		return nil, decodeError(err, path)
	}
	if len(md.Unused) > 0 {
		return nil, unknownKey(md.Unused, path)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// durationHook is the one rule for every duration setting, in the file and
// in REDISPLIT_* variables alike: a Go duration with its unit ("500ms",
// "5s", "2m"). A bare number is refused, never read as nanoseconds.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[time.Duration]() || from == to {
		return data, nil
	}
	switch from.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return nil, fmt.Errorf("%v has no unit; write %vs, or another Go duration such as 500ms or 2m", data, data)
	case reflect.String:
		s := strings.TrimSpace(data.(string))
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return nil, fmt.Errorf("%s has no unit; write %ss, or another Go duration such as 500ms or 2m", s, s)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration; write e.g. 5s, 500ms or 2m", s)
		}
		return d, nil
	}
	return nil, fmt.Errorf("%v is not a duration; write e.g. 5s, 500ms or 2m", data)
}

// decodeError turns mapstructure's multi-line report into one line naming
// the first offending key (and how many more there are) and where it comes
// from.
func decodeError(err error, path string) error {
	var des []*mapstructure.DecodeError
	var walk func(error)
	walk = func(e error) {
		var de *mapstructure.DecodeError
		if errors.As(e, &de) {
			if inner := errors.Unwrap(de); inner != nil {
				var deeper *mapstructure.DecodeError
				if errors.As(inner, &deeper) {
					walk(inner)
					return
				}
			}
			des = append(des, de)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	if len(des) == 0 {
		return &config.Error{Msg: fmt.Sprintf("invalid config %s: %s", path, strings.ReplaceAll(err.Error(), "\n", " "))}
	}
	de := des[0]
	inner := errors.Unwrap(de)
	msg := inner.Error()
	var pe *mapstructure.ParseError
	var ue *mapstructure.UnconvertibleTypeError
	switch {
	case errors.As(inner, &pe):
		msg = fmt.Sprintf("cannot read %q as %s", fmt.Sprint(pe.Value), pe.Expected.Type())
	case errors.As(inner, &ue):
		msg = fmt.Sprintf("cannot read %q (%T) as %s", fmt.Sprint(ue.Value), ue.Value, ue.Expected.Type())
	}
	if len(des) > 1 {
		msg += fmt.Sprintf(" (and %d more errors)", len(des)-1)
	}
	key := keyPath(de.Name())
	return &config.Error{Field: key, Msg: msg + " (" + source(key, path) + ")"}
}

// unknownKey reports the first of the keys no setting reads, with the
// nearest known name at its level, in one line.
func unknownKey(unused []string, path string) error {
	keys := make([]string, len(unused))
	for i, u := range unused {
		keys[i] = keyPath(u)
	}
	slices.Sort(keys)
	key := keys[0]
	parent, name := "", key
	if i := strings.LastIndexAny(key, ".["); i >= 0 && key[i] == '.' {
		parent, name = key[:i], key[i+1:]
	}
	msg := "unknown key in " + path
	known := knownKeys(parent)
	if s := nearest(name, known); s != "" {
		msg += "; did you mean " + s + "?"
	} else if len(known) > 0 {
		where := parent
		if where == "" {
			where = "the top level"
		}
		msg += fmt.Sprintf("; %s takes %s", where, strings.Join(known, ", "))
	}
	if len(keys) > 1 {
		msg += fmt.Sprintf(" (and %d more unknown keys: %s)", len(keys)-1, strings.Join(keys[1:], ", "))
	}
	return &config.Error{Field: key, Msg: msg}
}

// keyPath writes mapstructure's field names as the settings are written:
// targets[cache].url → targets.cache.url, rules[0].glob → rules[1].glob
// (rules are numbered from 1, as Validate numbers them).
func keyPath(name string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(name, '[')
		if i < 0 {
			b.WriteString(name)
			return b.String()
		}
		j := strings.IndexByte(name[i:], ']')
		if j < 0 {
			b.WriteString(name)
			return b.String()
		}
		b.WriteString(name[:i])
		idx := name[i+1 : i+j]
		if n, err := strconv.Atoi(idx); err == nil {
			fmt.Fprintf(&b, "[%d]", n+1)
		} else {
			b.WriteString("." + idx)
		}
		name = name[i+j+1:]
	}
}

// source says where the value of key comes from: its REDISPLIT_* variable
// when that is set, else the file.
func source(key, path string) string {
	if slices.Contains(scalarKeys, key) {
		env := "REDISPLIT_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
		if _, ok := os.LookupEnv(env); ok {
			return "from " + env
		}
	}
	return "in " + path
}

// knownKeys lists the settings under parent ("" for the top level,
// "targets.cache", "legacy.tls", "rules[2]") from Config's fields.
func knownKeys(parent string) []string {
	t := reflect.TypeFor[config.Config]()
	if parent != "" {
		for _, part := range strings.Split(parent, ".") {
			if i := strings.IndexByte(part, '['); i >= 0 {
				part = part[:i]
				t = fieldType(t, part)
				if t != nil && t.Kind() == reflect.Slice {
					t = t.Elem()
				}
			} else if t != nil && t.Kind() == reflect.Map {
				t = t.Elem()
			} else {
				t = fieldType(t, part)
			}
			if t == nil {
				return nil
			}
		}
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	var add func(reflect.Type)
	add = func(t reflect.Type) {
		for f := range t.Fields() {
			tag, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
			if opts == "squash" {
				add(f.Type)
				continue
			}
			if tag != "" && tag != "-" {
				out = append(out, tag)
			}
		}
	}
	add(t)
	return out
}

func fieldType(t reflect.Type, name string) reflect.Type {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	for f := range t.Fields() {
		tag, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if opts == "squash" {
			if ft := fieldType(f.Type, name); ft != nil {
				return ft
			}
		}
		if tag == name {
			return f.Type
		}
	}
	return nil
}

// nearest returns the known name within two edits of name, if any.
func nearest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
