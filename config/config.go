// Package config is redisplit's configuration and its validation: the legacy
// endpoint, the per-bucket targets, classification rules and the options of
// each command. Package configfile reads it from a YAML file and REDISPLIT_*
// environment variables through viper (command-line flags override both);
// this package imports no viper, so classify and the application client do
// not either.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// DefaultFile is the configuration file read when --config is not given.
const DefaultFile = "redisplit.yaml"

// EvictingPolicy reports whether a maxmemory-policy evicts keys when memory
// is full (anything but noeviction; "" is unknown, not evicting).
func EvictingPolicy(policy string) bool { return policy != "" && policy != "noeviction" }

// MustNotEvict reports whether a bucket's store must never evict: every
// bucket but cache, whose lost key costs only a slower response. The one
// rule behind migrate's refusal, verify's and targets check's verdicts.
func MustNotEvict(bucket string) bool { return bucket != "cache" }

// Error is a configuration or usage error: the command exits with code 2.
type Error struct {
	Field string // dotted path of the setting, e.g. "targets.cache.kind"
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return "config: " + e.Msg
	}
	return fmt.Sprintf("config: %s: %s", e.Field, e.Msg)
}

// Errorf returns a *Error for field.
func Errorf(field, format string, args ...any) error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// InRange is the one rule for a numeric setting or flag with bounds: nil
// when lo <= v <= hi, else a *Error for field that gives the valid range.
func InRange[T cmp.Ordered](field string, v, lo, hi T) error {
	if v < lo || v > hi {
		return Errorf(field, "%v is out of range; valid values are %v to %v", v, lo, hi)
	}
	return nil
}

// AtLeast is InRange without an upper bound.
func AtLeast[T cmp.Ordered](field string, v, lo T) error {
	if v < lo {
		return Errorf(field, "%v is out of range; valid values are %v or more", v, lo)
	}
	return nil
}

// Bounds of the numeric settings that both the file (or environment) and a
// flag can set; cmd's flags use the same.
const (
	MaxScanCount = 1_000_000 // scan.count, --count
	MinSample    = 0.01      // scan.sample, --sample: scan's resolution is 1/10000 of the keys
	MaxSample    = 100
)

// TLS holds the TLS settings of one endpoint. TLS is used when the URL scheme
// is rediss:// or Enabled is true.
type TLS struct {
	Enabled            bool   `mapstructure:"enabled" yaml:"enabled,omitempty"`
	CAFile             string `mapstructure:"ca_file" yaml:"ca_file,omitempty"`
	CertFile           string `mapstructure:"cert_file" yaml:"cert_file,omitempty"`
	KeyFile            string `mapstructure:"key_file" yaml:"key_file,omitempty"`
	ServerName         string `mapstructure:"server_name" yaml:"server_name,omitempty"`
	InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify" yaml:"insecure_skip_verify,omitempty"`
}

// Endpoint is one Redis server to connect to, described by a URL
// (redis://[user[:password]@]host:port[/db] or rediss:// for TLS). The password
// may instead come from Password (REDISPLIT_LEGACY_PASSWORD for legacy) or
// PasswordFile; the URL wins when it carries one.
type Endpoint struct {
	URL            string        `mapstructure:"url" yaml:"url,omitempty"`
	Username       string        `mapstructure:"username" yaml:"username,omitempty"`
	Password       string        `mapstructure:"password" yaml:"-"`
	PasswordFile   string        `mapstructure:"password_file" yaml:"password_file,omitempty"`
	TLS            TLS           `mapstructure:"tls" yaml:"tls,omitempty"`
	ConnectTimeout time.Duration `mapstructure:"connect_timeout" yaml:"connect_timeout,omitempty"`
	ReadTimeout    time.Duration `mapstructure:"read_timeout" yaml:"read_timeout,omitempty"`
}

// Target kinds.
const (
	KindStandalone = "standalone"
	KindCluster    = "cluster"
	KindSentinel   = "sentinel"
	KindSQS        = "sqs"
)

// Target is the store of one bucket.
//
//	standalone: URL
//	cluster:    Addrs (seed nodes)
//	sentinel:   Master + Sentinels (+ DB)
//	sqs:        SQS (region, endpoint, queue_name, ...)
type Target struct {
	Kind             string   `mapstructure:"kind" yaml:"kind"`
	Addrs            []string `mapstructure:"addrs" yaml:"addrs,omitempty"`
	Master           string   `mapstructure:"master" yaml:"master,omitempty"`
	Sentinels        []string `mapstructure:"sentinels" yaml:"sentinels,omitempty"`
	SentinelUsername string   `mapstructure:"sentinel_username" yaml:"sentinel_username,omitempty"`
	SentinelPassword string   `mapstructure:"sentinel_password" yaml:"-"`
	DB               int      `mapstructure:"db" yaml:"db,omitempty"`
	Endpoint         `mapstructure:",squash" yaml:",inline"`
	SQS              `mapstructure:",squash" yaml:",inline"`
	// Copy is the cache bucket's copy policy (CopyAll, CopyHot, CopyNone;
	// "" is CopyAll); WarmBytes the byte budget of CopyHot (0: what fits
	// the target's maxmemory with headroom). Other buckets are always
	// copied in full.
	Copy      string `mapstructure:"copy" yaml:"copy,omitempty"`
	WarmBytes int64  `mapstructure:"warm_bytes" yaml:"warm_bytes,omitempty"`
}

// Copy policies of the cache bucket (targets.cache.copy).
const (
	CopyAll  = "all"  // every key (the default)
	CopyHot  = "hot"  // the most recently or frequently used keys, up to a byte budget
	CopyNone = "none" // no key: the target starts cold
)

// MaxWarmBytes bounds targets.cache.warm_bytes (1 PiB: no store is larger).
const MaxWarmBytes = int64(1) << 50

// CopyPolicy returns the copy policy of bucket b's target: CopyAll unless
// the cache's target names another.
func (c *Config) CopyPolicy(b string) string {
	if t, ok := c.Targets[b]; ok && t.Copy != "" {
		return t.Copy
	}
	return CopyAll
}

// Rule is a classification rule as written in the config or the plan. See
// package classify for its semantics; it is validated there.
type Rule struct {
	Name   string `mapstructure:"name" yaml:"name,omitempty"`
	Glob   string `mapstructure:"glob" yaml:"glob,omitempty"`
	Prefix string `mapstructure:"prefix" yaml:"prefix,omitempty"`
	Regex  string `mapstructure:"regex" yaml:"regex,omitempty"`
	Type   string `mapstructure:"type" yaml:"type,omitempty"`
	Bucket string `mapstructure:"bucket" yaml:"bucket"`
}

// Presets switches the built-in framework presets. All are on by default.
type Presets struct {
	Disabled []string `mapstructure:"disabled" yaml:"disabled,omitempty"` // preset names to switch off
	None     bool     `mapstructure:"none" yaml:"none,omitempty"`         // switch every preset off
}

// Scan holds the options of `redisplit scan`.
type Scan struct {
	Count  int     `mapstructure:"count"`   // SCAN COUNT hint
	MaxOps int     `mapstructure:"max_ops"` // commands per second against legacy; 0 = unlimited
	Sample float64 `mapstructure:"sample"`  // percent of keys given MEMORY USAGE; 100 = all
}

// Config is the whole configuration.
type Config struct {
	Legacy   Endpoint          `mapstructure:"legacy"`
	Targets  map[string]Target `mapstructure:"targets"`
	Unknown  string            `mapstructure:"unknown"` // block | cache | session | queue | ratelimit | skip
	Plan     string            `mapstructure:"plan"`
	StateDir string            `mapstructure:"state_dir"`
	Rules    []Rule            `mapstructure:"rules"`
	Presets  Presets           `mapstructure:"presets"`
	Scan     Scan              `mapstructure:"scan"`
	MaxOps   int               `mapstructure:"max_ops"` // commands per second against legacy for migrate/verify; 0 = unlimited
}

// Buckets are the workload buckets, in report order.
var Buckets = []string{"cache", "session", "queue", "ratelimit"}

// IsBucket reports whether b names a bucket.
func IsBucket(b string) bool {
	for _, x := range Buckets {
		if x == b {
			return true
		}
	}
	return false
}

// Defaults returns a Config holding every default.
func Defaults() Config {
	return Config{
		Unknown:  "block",
		StateDir: ".redisplit",
		Scan:     Scan{Count: 1000, Sample: 100},
		Legacy:   Endpoint{ConnectTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second},
	}
}

// Validate checks the settings that do not need a server.
func (c *Config) Validate() error {
	switch c.Unknown {
	case "", "block", "skip", "cache", "session", "queue", "ratelimit":
	default:
		return Errorf("unknown", "%q is not one of block, skip, cache, session, queue, ratelimit", c.Unknown)
	}
	if err := errors.Join(
		InRange("scan.count", c.Scan.Count, 1, MaxScanCount),
		InRange("scan.sample", c.Scan.Sample, MinSample, MaxSample),
		AtLeast("scan.max_ops", c.Scan.MaxOps, 0),
		AtLeast("max_ops", c.MaxOps, 0),
		c.Legacy.validate("legacy"),
	); err != nil {
		return first(err)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Targets)) {
		t := c.Targets[name]
		if !IsBucket(name) {
			return Errorf("targets."+name, "%q is not a bucket (cache, session, queue, ratelimit)", name)
		}
		if err := t.validate("targets." + name); err != nil {
			return err
		}
		if err := t.validateCopy(name); err != nil {
			return err
		}
	}
	for i, r := range c.Rules {
		if !IsBucket(r.Bucket) {
			return Errorf(fmt.Sprintf("rules[%d]", i+1), "bucket %q is not one of cache, session, queue, ratelimit", r.Bucket)
		}
	}
	return nil
}

// first returns the first error of a join (one line per error is one too
// many for an operator).
func first(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 0 {
		return j.Unwrap()[0]
	}
	return err
}

func (e Endpoint) validate(field string) error {
	return first(errors.Join(
		AtLeast(field+".connect_timeout", e.ConnectTimeout, 0),
		AtLeast(field+".read_timeout", e.ReadTimeout, 0),
	))
}

func (t Target) validate(field string) error {
	if err := first(errors.Join(t.Endpoint.validate(field), AtLeast(field+".db", t.DB, 0))); err != nil {
		return err
	}
	switch t.Kind {
	case KindStandalone:
		if t.URL == "" {
			return Errorf(field+".url", "a standalone target needs url: redis://host:port/db")
		}
	case KindCluster:
		if len(t.Addrs) == 0 {
			return Errorf(field+".addrs", "a cluster target needs addrs: [host:port, ...]")
		}
	case KindSentinel:
		if t.Master == "" || len(t.Sentinels) == 0 {
			return Errorf(field, "a sentinel target needs master: NAME and sentinels: [host:port, ...]")
		}
	case KindSQS:
		return t.SQS.validate(field)
	case "":
		return Errorf(field+".kind", "missing; one of standalone, cluster, sentinel, sqs")
	default:
		return Errorf(field+".kind", "%q is not one of standalone, cluster, sentinel, sqs", t.Kind)
	}
	return nil
}

// validateCopy checks the copy policy of bucket b's target: only the cache
// may be warmed instead of copied; sessions, queues and rate limits are
// always copied in full.
func (t Target) validateCopy(b string) error {
	field := "targets." + b + ".copy"
	switch t.Copy {
	case "", CopyAll:
	case CopyHot, CopyNone:
		if b != "cache" {
			return Errorf(field, "%q: only the cache bucket can be warmed instead of copied; %s keys are always copied in full (remove the key)", t.Copy, b)
		}
	default:
		return Errorf(field, "%q is not one of all, hot, none", t.Copy)
	}
	if t.WarmBytes != 0 {
		if err := InRange("targets."+b+".warm_bytes", t.WarmBytes, 1, MaxWarmBytes); err != nil {
			return err
		}
		if t.Copy != CopyHot {
			return Errorf("targets."+b+".warm_bytes", "is the budget of copy: hot; set copy: hot or remove warm_bytes")
		}
	}
	return nil
}

// ResolvePassword returns the password of e: the URL's, else Password, else
// the first line of PasswordFile. It never logs the value.
func (e Endpoint) ResolvePassword() (string, error) {
	if e.Password != "" {
		return e.Password, nil
	}
	if e.PasswordFile != "" {
		b, err := os.ReadFile(e.PasswordFile)
		if err != nil {
			return "", Errorf("password_file", "cannot read %s: %v", e.PasswordFile, err)
		}
		return strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r"), nil
	}
	return "", nil
}
