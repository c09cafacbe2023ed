package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// DefaultFile is the configuration file read when --config is not given.
const DefaultFile = "redisplit.yaml"

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
	v := viper.New()
	d := Defaults()
	v.SetDefault("unknown", d.Unknown)
	v.SetDefault("state_dir", d.StateDir)
	v.SetDefault("scan.count", d.Scan.Count)
	v.SetDefault("scan.sample", d.Scan.Sample)
	v.SetDefault("legacy.connect_timeout", d.Legacy.ConnectTimeout)
	v.SetDefault("legacy.read_timeout", d.Legacy.ReadTimeout)
	v.SetEnvPrefix("REDISPLIT")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	for _, k := range scalarKeys {
		_ = v.BindEnv(k)
	}
	return v
}

// Load reads path into v (a missing default file is not an error; a missing
// explicit file is), decodes and validates the result.
func Load(v *viper.Viper, path string, explicit bool) (*Config, error) {
	if path == "" {
		path = DefaultFile
	}
	v.SetConfigFile(path)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		var pe *fs.PathError
		switch {
		case errors.As(err, &pe) && errors.Is(pe.Err, fs.ErrNotExist) && !explicit:
			// no file: defaults, environment and flags only
		case errors.As(err, &pe) || errors.Is(err, os.ErrNotExist):
			return nil, &Error{Msg: fmt.Sprintf("cannot read config file %s: %v", path, err)}
		default:
			return nil, &Error{Msg: fmt.Sprintf("malformed config file %s: %v", path, err)}
		}
	}
	var c Config
	dec := viper.DecoderConfigOption(func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		)
	})
	if err := v.Unmarshal(&c, dec); err != nil {
		return nil, &Error{Msg: fmt.Sprintf("invalid config %s: %v", path, err)}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}
