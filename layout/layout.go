package layout

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/layout/skew"
	"github.com/redisplit/redisplit/safety"
	"github.com/redisplit/redisplit/scan"
)

// Options are the choices `redisplit targets init` leaves to the operator.
// Start from DefaultOptions; empty strings and a zero BasePort take the
// defaults described on each field.
type Options struct {
	CacheMasters    int     // cluster masters (>= 3)
	CacheReplicas   int     // replicas per cache master
	SessionReplicas int     // replicas of the session master (>= 1)
	Sentinels       int     // sentinels watching the session master (>= 3, odd)
	GrowthPercent   float64 // added to scan's sizing advice
	// RedisVersion is the target version (major.minor, >= 6.2): it selects
	// the directives and ACL rules written, and the compose image tag.
	// Default: legacy's, so that DUMP payloads restore as they are.
	RedisVersion string
	// NoAuth leaves every password out (a local trial). Otherwise Secrets
	// is the absolute directory, on the servers, holding one password file
	// per user (first line = the password) and the snippets
	// install-secrets.sh writes from them.
	NoAuth  bool
	Secrets string
	// Hashes maps a password file (as PasswordFiles names it) to the
	// SHA-256 of its password (HashFiles): the ACL files hold hashes only.
	// A missing entry leaves that user without a password (it cannot log
	// in) and adds a warning.
	Hashes map[string]string
	// Bind puts every server on this one address with consecutive ports from
	// BasePort (the whole layout on one machine). Without it every server
	// is its own host, named as its compose service, on BasePort (6379;
	// sentinels 26379).
	Bind     string
	BasePort int
	// InstallDir is where this layout lives on the servers (absolute, required):
	// the configs load their ACL file from there and the compose file mounts
	// the layout there. `targets init` defaults it to the output directory.
	InstallDir string
	Queue      string // "redis" (default) or "sqs"
	SQS        SQSOptions
	Image      string // compose image; default redis:<RedisVersion>
	MasterName string // sentinel master name; default "session"
	// Forecast, when set (from scan's per-key export), sizes every cache
	// node for the fullest node instead of an even share.
	Forecast *skew.Forecast
}

// SQSOptions shape the queue definitions written with --queue sqs.
type SQSOptions struct {
	Standard          bool // standard queues instead of FIFO
	VisibilitySeconds int  // default 300
	RetentionSeconds  int  // default 1209600 (14 days, the maximum)
	MaxReceiveCount   int  // deliveries before an item goes to the dead-letter queue; default 5
	Region, Account   string
}

// DefaultOptions returns the defaults of `redisplit targets init`: a
// 3-master cache cluster with one replica per master, a session master with
// one replica behind three sentinels, 25% growth, queue on Redis, FIFO SQS
// definitions (visibility 5 min, retention 14 days, 5 deliveries before the
// dead-letter queue).
func DefaultOptions() Options {
	return Options{CacheMasters: 3, CacheReplicas: 1, SessionReplicas: 1, Sentinels: 3, GrowthPercent: 25,
		Queue: "redis", Secrets: "/etc/redisplit/secrets", MasterName: "session",
		SQS: SQSOptions{VisibilitySeconds: 300, RetentionSeconds: 14 * 24 * 3600, MaxReceiveCount: 5,
			Region: "us-east-1", Account: "000000000000"}}
}

// withDefaults fills what depends on the report or on other options:
// the version, the image, the base port; and the zero strings.
func (o Options) withDefaults(rep *scan.Report) Options {
	d := DefaultOptions()
	if o.RedisVersion == "" {
		o.RedisVersion = defaultVersion(rep.Legacy.Version)
	}
	if o.Secrets == "" {
		o.Secrets = d.Secrets
	}
	if o.BasePort == 0 {
		o.BasePort = 6379
		if o.Bind != "" {
			o.BasePort = 7000
		}
	}
	if o.Queue == "" {
		o.Queue = d.Queue
	}
	if o.SQS.Region == "" {
		o.SQS.Region = d.SQS.Region
	}
	if o.SQS.Account == "" {
		o.SQS.Account = d.SQS.Account
	}
	if o.MasterName == "" {
		o.MasterName = d.MasterName
	}
	if o.Image == "" {
		o.Image = "redis:" + o.RedisVersion
	}
	return o
}

// defaultVersion is legacy's major.minor when a target can run it (>= 6.2:
// ACL subcommand rules, sentinel hostnames), else 7.0.
func defaultVersion(legacy string) string {
	v := parseVersion(legacy)
	if v.atLeast(6, 2) {
		return fmt.Sprintf("%d.%d", v.major, v.minor)
	}
	return "7.0"
}

func (o Options) validate() error {
	switch {
	case o.CacheReplicas < 0:
		return config.Errorf("--cache-replicas", "must not be negative, got %d", o.CacheReplicas)
	case o.GrowthPercent < 0:
		return config.Errorf("--growth", "must not be negative, got %g", o.GrowthPercent)
	case o.SQS.MaxReceiveCount < 1 || o.SQS.MaxReceiveCount > 1000:
		return config.Errorf("--sqs-max-receive", "SQS allows 1 to 1000, got %d", o.SQS.MaxReceiveCount)
	case o.CacheMasters < 3:
		return config.Errorf("--cache-masters", "a Redis Cluster needs at least 3 masters (a failover needs a majority of them), got %d", o.CacheMasters)
	case o.SessionReplicas < 1:
		return config.Errorf("--session-replicas", "sessions need at least one replica for Sentinel to fail over to, got %d", o.SessionReplicas)
	case o.Sentinels < 3 || o.Sentinels%2 == 0:
		return config.Errorf("--sentinels", "use an odd number of at least 3 sentinels (a majority must agree on a failover), got %d", o.Sentinels)
	case o.Queue != "redis" && o.Queue != "sqs":
		return config.Errorf("--queue", "%q is not redis or sqs", o.Queue)
	case o.BasePort < 1 || o.BasePort > 65535:
		return config.Errorf("--base-port", "%d is not a port", o.BasePort)
	case !o.NoAuth && !filepath.IsAbs(o.Secrets):
		return config.Errorf("--secrets", "%q must be an absolute path (the configs include files from it wherever the server starts)", o.Secrets)
	case !filepath.IsAbs(o.InstallDir):
		return config.Errorf("--install-dir", "%q must be an absolute path (the configs load their ACL file from there)", o.InstallDir)
	}
	if o.Bind != "" && net.ParseIP(o.Bind) == nil {
		return config.Errorf("--bind", "%q is not an IP address (servers announce it to clients, sentinels and each other)", o.Bind)
	}
	v := parseVersion(o.RedisVersion)
	if !v.atLeast(6, 2) {
		return config.Errorf("--redis-version", "%q: the layout needs Redis 6.2 or later (ACL subcommand rules, sentinel hostnames)", o.RedisVersion)
	}
	if o.Bind == "" && !v.atLeast(7, 0) {
		return config.Errorf("--redis-version", "%q: a cluster announcing host names needs Redis 7.0 or later; use 7.0+ or --bind ADDR", o.RedisVersion)
	}
	if o.SQS.VisibilitySeconds < 0 || o.SQS.VisibilitySeconds > 43200 {
		return config.Errorf("--sqs-visibility", "SQS allows 0 to 12 hours, got %ds", o.SQS.VisibilitySeconds)
	}
	if o.SQS.RetentionSeconds < 60 || o.SQS.RetentionSeconds > 1209600 {
		return config.Errorf("--sqs-retention", "SQS allows 1 minute to 14 days, got %ds", o.SQS.RetentionSeconds)
	}
	return nil
}

// File is one generated file, its path relative to the layout directory.
type File struct {
	Path    string      `json:"path"`
	Mode    fs.FileMode `json:"-"`
	Content []byte      `json:"-"`
}

// Server is one process of the layout.
type Server struct {
	Name   string `json:"name"` // also its compose service and, without --bind, its host name
	Bucket string `json:"bucket"`
	// Role: cluster-master, cluster-replica, master, replica, sentinel, standalone.
	Role string `json:"role"`
	Host string `json:"host"`
	Port int    `json:"port"`
	Conf string `json:"conf"` // config file, relative to the layout directory
	// Private: the config includes a secrets snippet (masterauth, a
	// sentinel's auth-pass), which the server writes into the config in
	// clear whenever it rewrites it (a sentinel at start, a data server at
	// the CONFIG REWRITE a failover sends), in a new file of mode 0644
	// minus its umask. Such a server must start under umask 077
	// (StartCommand) or the password becomes readable by every local user.
	Private bool `json:"private,omitempty"`
}

// StartCommand is how the server starts from its config, as the README and
// each config's header give it (DATA_DIR: its own data directory).
func (s Server) StartCommand() string {
	c := "redis-server " + s.Conf
	if s.Sentinel() {
		c += " --sentinel"
	}
	c += " --dir DATA_DIR"
	if s.Private {
		c = "umask 077 && " + c
	}
	return c
}

// private reports whether s's config includes a secrets snippet: every
// server that authenticates to another one (replicas of the session master
// and of cache masters; their masters, which a failover turns into
// replicas; the sentinels), unless --no-auth.
func (l *Layout) private(s Server) bool {
	if l.opts.NoAuth {
		return false
	}
	switch s.Bucket {
	case "session":
		return true
	case "cache":
		return l.opts.CacheReplicas > 0
	}
	return false
}

// Addr is host:port.
func (s Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Sentinel reports whether the server runs as a sentinel.
func (s Server) Sentinel() bool { return s.Role == "sentinel" }

// Store is one bucket's target in the layout.
type Store struct {
	Bucket    string `json:"bucket"`
	Kind      string `json:"kind"` // config.KindCluster, KindSentinel, KindStandalone, KindSQS
	DataBytes int64  `json:"data_bytes"`
	// MaxMemory is the maxmemory of each data server (per node for the
	// cache cluster); 0 for SQS.
	MaxMemory int64  `json:"maxmemory"`
	Sizing    string `json:"sizing"` // how MaxMemory was derived
}

// Layout is everything Generate produced.
type Layout struct {
	Version  string         `json:"redis_version"`
	Stores   []Store        `json:"stores"`
	Servers  []Server       `json:"servers"`
	Files    []File         `json:"files"`
	Warnings []string       `json:"warnings"`
	Forecast *skew.Forecast `json:"cache_forecast,omitempty"`

	opts Options
	rep  *scan.Report
}

// Generate builds the layout of rep with o. It reads and writes nothing.
// Errors are *config.Error (bad options or report).
func Generate(rep *scan.Report, o Options) (*Layout, error) {
	if rep == nil || rep.SchemaVersion != scan.SchemaVersion {
		v := 0
		if rep != nil {
			v = rep.SchemaVersion
		}
		return nil, config.Errorf("--scan", "the report has schema_version %d; this redisplit reads %d (redisplit scan -o json > report.json)", v, scan.SchemaVersion)
	}
	o = o.withDefaults(rep)
	if err := o.validate(); err != nil {
		return nil, err
	}
	l := &Layout{Version: o.RedisVersion, opts: o, rep: rep, Forecast: o.Forecast, Warnings: []string{}}
	if err := l.servers(); err != nil {
		return nil, err
	}
	for i := range l.Servers {
		l.Servers[i].Private = l.private(l.Servers[i])
	}
	l.size()
	l.Files = append(l.Files, l.cacheFiles()...)
	l.Files = append(l.Files, l.sessionFiles()...)
	l.Files = append(l.Files, l.queueFiles()...)
	l.Files = append(l.Files, l.ratelimitFiles()...)
	l.Files = append(l.Files, l.aclFiles()...)
	if !o.NoAuth {
		l.Files = append(l.Files, l.installSecrets())
	}
	l.Files = append(l.Files, l.configFile(), l.composeFile(), l.readme())
	if o.Forecast != nil {
		l.Files = append(l.Files, l.forecastFile())
		l.Warnings = append(l.Warnings, o.Forecast.Warnings...)
	}
	sort.Slice(l.Files, func(i, j int) bool { return l.Files[i].Path < l.Files[j].Path })
	return l, nil
}

// servers assigns every process its name, host and port: with --bind,
// consecutive ports from BasePort in the order cache nodes, session master,
// session replicas, sentinels, queue, ratelimit; without, each its own host.
func (l *Layout) servers() error {
	o := l.opts
	next := o.BasePort
	add := func(name, bucket, role, conf string, sentinel bool) {
		s := Server{Name: name, Bucket: bucket, Role: role, Conf: conf}
		if o.Bind != "" {
			s.Host, s.Port = o.Bind, next
			next++
		} else {
			s.Host, s.Port = name, o.BasePort
			if sentinel {
				s.Port = o.BasePort + 20000
			}
		}
		l.Servers = append(l.Servers, s)
	}
	nodes := o.CacheMasters * (1 + o.CacheReplicas)
	for i := 1; i <= nodes; i++ {
		role := "cluster-master"
		if i > o.CacheMasters {
			role = "cluster-replica"
		}
		add(fmt.Sprintf("cache-%d", i), "cache", role, fmt.Sprintf("cache/node-%d.conf", i), false)
	}
	add("session-master", "session", "master", "session/master.conf", false)
	for i := 1; i <= o.SessionReplicas; i++ {
		add(fmt.Sprintf("session-replica-%d", i), "session", "replica", fmt.Sprintf("session/replica-%d.conf", i), false)
	}
	for i := 1; i <= o.Sentinels; i++ {
		add(fmt.Sprintf("session-sentinel-%d", i), "session", "sentinel", fmt.Sprintf("session/sentinel-%d.conf", i), true)
	}
	if o.Queue == "redis" {
		add("queue", "queue", "standalone", "queue/queue.conf", false)
	}
	add("ratelimit", "ratelimit", "standalone", "ratelimit/ratelimit.conf", false)
	for _, s := range l.Servers {
		if s.Port > 65535 {
			return config.Errorf("--base-port", "%d leaves no room for %d servers", o.BasePort, len(l.Servers))
		}
		if strings.HasPrefix(s.Role, "cluster-") && s.Port+10000 > 65535 {
			return config.Errorf("--base-port", "cache node %s: port %d + 10000 (its cluster bus port) exceeds 65535; use a base port below %d", s.Name, s.Port, 65535-10000-nodes)
		}
	}
	return nil
}

// serversOf returns the servers of bucket with one of roles (all when none).
func (l *Layout) serversOf(bucket string, roles ...string) []Server {
	var out []Server
	for _, s := range l.Servers {
		if s.Bucket != bucket {
			continue
		}
		if len(roles) == 0 {
			out = append(out, s)
			continue
		}
		for _, r := range roles {
			if s.Role == r {
				out = append(out, s)
			}
		}
	}
	return out
}

func (l *Layout) store(bucket string) *Store {
	for i := range l.Stores {
		if l.Stores[i].Bucket == bucket {
			return &l.Stores[i]
		}
	}
	return nil
}

const (
	mib = 1 << 20
	// minMaxMemory is scan's floor of its sizing advice (64 MiB), used for a
	// bucket the scan found no key of.
	minMaxMemory = 64 * mib
)

// size derives maxmemory per store from scan's sizing advice (which holds
// the bucket's bytes, their 95% margin and the headroom of the bucket's
// profile), plus the growth margin; the cache's is split over its masters,
// by the fullest node's forecast share when a forecast is given.
func (l *Layout) size() {
	o := l.opts
	for _, b := range config.Buckets {
		st := Store{Bucket: b, Kind: config.KindStandalone}
		switch {
		case b == "cache":
			st.Kind = config.KindCluster
		case b == "session":
			st.Kind = config.KindSentinel
		case b == "queue" && o.Queue == "sqs":
			st.Kind = config.KindSQS
		}
		advised, how := int64(minMaxMemory), "no keys in the scan: the 64 MiB floor"
		for _, br := range l.rep.Buckets {
			if br.Bucket == b {
				st.DataBytes = br.Bytes
			}
		}
		for _, sz := range l.rep.Sizing {
			if sz.Bucket != b {
				continue
			}
			if sz.MaxMemory > 0 {
				advised = sz.MaxMemory
				how = fmt.Sprintf("scan measured %s (%s)", scan.HumanBytes(sz.DataBytes), sz.Headroom)
			} else {
				how = "bytes unknown in the scan (MEMORY USAGE refused): the 64 MiB floor; size it yourself"
				l.Warnings = append(l.Warnings, fmt.Sprintf("%s: the scan has no byte count; maxmemory is the 64 MiB floor, size it yourself", b))
			}
		}
		total := float64(advised) * (1 + o.GrowthPercent/100)
		how += fmt.Sprintf(", +%g%% growth", o.GrowthPercent)
		if b == "cache" {
			share := 1 / float64(o.CacheMasters)
			if f := o.Forecast; f != nil && f.Masters == o.CacheMasters {
				for _, n := range f.Nodes {
					share = max(share, n.ByteShare)
				}
				how += fmt.Sprintf(", per node: the fullest node's forecast share (%.0f%%) of it", 100*share)
			} else {
				how += fmt.Sprintf(", split over %d masters", o.CacheMasters)
			}
			total *= share
		}
		if st.Kind != config.KindSQS {
			st.MaxMemory = roundMiB(int64(total))
			st.Sizing = how
		}
		l.Stores = append(l.Stores, st)
	}
}

func roundMiB(n int64) int64 { return max((n+mib-1)/mib*mib, mib) }

// PasswordFiles lists the password files the layout of o references, in
// the Secrets directory: one per bucket and user.
func PasswordFiles(rep *scan.Report, o Options) []string {
	o = o.withDefaults(rep)
	if o.NoAuth {
		return nil
	}
	var out []string
	for _, b := range config.Buckets {
		if b == "queue" && o.Queue == "sqs" {
			continue
		}
		for _, u := range usersOf(b, o) {
			out = append(out, passwordFile(o, b, u))
		}
	}
	return out
}

func passwordFile(o Options, bucket, user string) string {
	return filepath.Join(o.Secrets, bucket+"-"+user+".password")
}

// HashFiles returns the SHA-256 (hex) of the password in each readable file
// (its first line, as redisplit's password_file reads it). Unreadable files
// are left out.
func HashFiles(paths []string) map[string]string {
	out := map[string]string{}
	for _, p := range paths {
		pw, err := config.Endpoint{PasswordFile: p}.ResolvePassword()
		if err != nil || pw == "" {
			continue
		}
		h := sha256.Sum256([]byte(pw))
		out[p] = hex.EncodeToString(h[:])
	}
	return out
}

// Write writes the layout into dir. It refuses (*safety.Refusal) to write
// into a directory that already holds files unless force: an operator's
// reviewed edits are never overwritten by accident. Files are written with
// their mode; shell scripts are executable.
func Write(dir string, l *Layout, force bool) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 && !force {
		return safety.Refusef("choose an empty directory, or pass --force to overwrite the generated files",
			"%s already holds %d entries", dir, len(entries))
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("layout: %w", err)
	}
	for _, f := range l.Files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("layout: %w", err)
		}
		if err := os.WriteFile(p, f.Content, f.Mode); err != nil {
			return fmt.Errorf("layout: %w", err)
		}
		if err := os.Chmod(p, f.Mode); err != nil { // WriteFile keeps the mode of an existing file
			return fmt.Errorf("layout: %w", err)
		}
	}
	return nil
}

// version is a parsed major.minor.patch.
type version struct{ major, minor, patch int }

func parseVersion(s string) version {
	var v version
	parts := strings.SplitN(strings.TrimSpace(s), ".", 3)
	nums := []*int{&v.major, &v.minor, &v.patch}
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimFunc(p, func(r rune) bool { return r < '0' || r > '9' }))
		if err != nil {
			break
		}
		*nums[i] = n
	}
	return v
}

func (v version) atLeast(major, minor int) bool {
	return v.major > major || v.major == major && v.minor >= minor
}

func (v version) String() string { return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch) }
