package layout

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/config/configfile"
	"github.com/redisplit/redisplit/safety"
	"github.com/redisplit/redisplit/scan"
	"github.com/redisplit/redisplit/topology"
)

func fixtureReport() *scan.Report {
	return &scan.Report{SchemaVersion: scan.SchemaVersion,
		Legacy: scan.Legacy{Addr: "10.0.0.5:6379", DB: 2, Version: "7.2.4"},
		Buckets: []scan.BucketReport{
			{Bucket: "cache", Keys: 1000, Bytes: 300 << 20},
			{Bucket: "session", Keys: 100, Bytes: 40 << 20},
			{Bucket: "queue", Keys: 10, Bytes: 1 << 20, TopPatterns: []scan.PatternReport{
				{Pattern: "queue:{n}", Types: map[string]int64{"list": 5}},
				{Pattern: "sidekiq:stat:processed", Types: map[string]int64{"string": 1}},
				{Pattern: "bull:{id}:wait", Types: map[string]int64{"list": 3}}}},
			{Bucket: "ratelimit", Keys: 10, Bytes: 10 << 10},
		},
		Sizing: []scan.Sizing{
			{Bucket: "cache", DataBytes: 300 << 20, MaxMemory: 450 << 20, Headroom: "x1.5 of measured bytes"},
			{Bucket: "session", DataBytes: 40 << 20, MaxMemory: 80 << 20, Headroom: "x2.0 of measured bytes"},
			{Bucket: "queue", DataBytes: 1 << 20, MaxMemory: 64 << 20, Headroom: "x2.0 of measured bytes"},
			{Bucket: "ratelimit", DataBytes: 10 << 10, MaxMemory: 64 << 20, Headroom: "x2.0 of measured bytes"},
		}}
}

func options(t *testing.T) Options {
	o := DefaultOptions()
	o.InstallDir = "/srv/redis-layout"
	o.Secrets = "/etc/redisplit/secrets"
	return o
}

func file(t *testing.T, l *Layout, path string) string {
	t.Helper()
	for _, f := range l.Files {
		if f.Path == path {
			return string(f.Content)
		}
	}
	t.Fatalf("no file %s", path)
	return ""
}

// The contract names, the sizing (scan's advice + growth, split over the
// masters), every password as a file reference or a hash.
func TestGenerateDefaultLayout(t *testing.T) {
	o := options(t)
	o.Hashes = map[string]string{"/etc/redisplit/secrets/cache-redisplit.password": strings.Repeat("ab", 32)}
	l, err := Generate(fixtureReport(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"redisplit.yaml", "compose.yaml", "cache/node-1.conf", "cache/node-6.conf", "cache/create-cluster.sh",
		"session/master.conf", "session/replica-1.conf", "session/sentinel-1.conf", "session/sentinel-3.conf",
		"queue/queue.conf", "ratelimit/ratelimit.conf", "acl/cache.acl", "acl/session.acl", "install-secrets.sh", "README.md"} {
		file(t, l, p)
	}
	if l.Version != "7.2" {
		t.Errorf("version %s, want legacy's 7.2", l.Version)
	}
	// 450 MiB advised x1.25 growth over 3 masters = 187.5 -> 188 MiB per node.
	node := file(t, l, "cache/node-1.conf")
	for _, want := range []string{"maxmemory 188mb", "maxmemory-policy allkeys-lru", `save ""`, "appendonly no", "cluster-enabled yes",
		"cluster-announce-hostname cache-1", "aclfile /srv/redis-layout/acl/cache.acl", "include /etc/redisplit/secrets/cache-replication.conf"} {
		if !strings.Contains(node, want+"\n") {
			t.Errorf("cache/node-1.conf lacks %q", want)
		}
	}
	master := file(t, l, "session/master.conf")
	for _, want := range []string{"maxmemory 100mb", "maxmemory-policy noeviction", "appendonly yes", "appendfsync everysec",
		"auto-aof-rewrite-percentage 100", "save \"3600 1 300 100 60 10000\"", "notify-keyspace-events EA"} {
		if !strings.Contains(master, want+"\n") {
			t.Errorf("session/master.conf lacks %q", want)
		}
	}
	sentinel := file(t, l, "session/sentinel-2.conf")
	for _, want := range []string{"sentinel monitor session session-master 6379 2", "sentinel down-after-milliseconds session 5000",
		"sentinel failover-timeout session 60000", "sentinel parallel-syncs session 1", "include /etc/redisplit/secrets/session-sentinel.conf", "port 26379"} {
		if !strings.Contains(sentinel, want+"\n") {
			t.Errorf("session/sentinel-2.conf lacks %q", want)
		}
	}
	acl := file(t, l, "acl/cache.acl")
	if !strings.Contains(acl, "user redisplit on #"+strings.Repeat("ab", 32)+" ~* resetchannels -@all ") || !strings.Contains(acl, "+cluster|shards") {
		t.Errorf("acl/cache.acl:\n%s", acl)
	}
	if strings.Contains(acl, "user default on #") || strings.Contains(acl, "nopass") {
		t.Errorf("the default user got a password it was not given, or nopass:\n%s", acl)
	}
	var missing int
	for _, w := range l.Warnings {
		if strings.Contains(w, "has no password") {
			missing++
		}
	}
	if want := len(PasswordFiles(fixtureReport(), o)) - 1; missing != want {
		t.Errorf("%d missing-password warnings, want %d: %q", missing, want, l.Warnings)
	}
	// Every config line a comment explains: no two directives in a row
	// without a comment before the first of a group.
	for _, f := range l.Files {
		if !strings.HasSuffix(f.Path, ".conf") && !strings.HasSuffix(f.Path, ".sh") && !strings.HasSuffix(f.Path, ".yaml") {
			continue
		}
		if !strings.HasPrefix(string(f.Content), "#") && !strings.HasPrefix(string(f.Content), "#!/bin/sh\n#") {
			t.Errorf("%s does not start with its comment", f.Path)
		}
	}

	// redisplit.yaml is a valid configuration naming the layout.
	dir := t.TempDir()
	if err := Write(dir, l, false); err != nil {
		t.Fatal(err)
	}
	cfg, err := configfile.Load(configfile.NewViper(), filepath.Join(dir, "redisplit.yaml"), true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Legacy.URL != "redis://10.0.0.5:6379/2" {
		t.Errorf("legacy %q", cfg.Legacy.URL)
	}
	c := cfg.Targets["cache"]
	if c.Kind != config.KindCluster || len(c.Addrs) != 6 || c.Addrs[0] != "cache-1:6379" || c.Username != "redisplit" ||
		c.PasswordFile != "/etc/redisplit/secrets/cache-redisplit.password" {
		t.Errorf("cache target %+v", c)
	}
	s := cfg.Targets["session"]
	if s.Kind != config.KindSentinel || s.Master != "session" || len(s.Sentinels) != 3 || s.Sentinels[0] != "session-sentinel-1:26379" {
		t.Errorf("session target %+v", s)
	}
	if q := cfg.Targets["queue"]; q.Kind != config.KindStandalone || q.URL != "redis://queue:6379/0" {
		t.Errorf("queue target %+v", q)
	}
	if fi, err := os.Stat(filepath.Join(dir, "cache/create-cluster.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("create-cluster.sh mode: %v %v", fi.Mode(), err)
	}

	// Written once; a second write needs force.
	var ref *safety.Refusal
	if err := Write(dir, l, false); !errors.As(err, &ref) {
		t.Errorf("second Write: %v, want a refusal", err)
	}
	if err := Write(dir, l, true); err != nil {
		t.Errorf("Write with force: %v", err)
	}
}

func TestGenerateSQS(t *testing.T) {
	o := options(t)
	o.Queue = "sqs"
	o.NoAuth = true
	l, err := Generate(fixtureReport(), o)
	if err != nil {
		t.Fatal(err)
	}
	var qs []struct {
		QueueName  string
		Attributes map[string]string
	}
	if err := json.Unmarshal([]byte(file(t, l, "queue/sqs-queues.json")), &qs); err != nil {
		t.Fatal(err)
	}
	if len(qs) != 4 {
		t.Fatalf("%d queues, want 2 list patterns x (queue + DLQ): %+v", len(qs), qs)
	}
	if qs[0].QueueName != "queue-n-dlq.fifo" || qs[1].QueueName != "queue-n.fifo" || qs[3].QueueName != "bull-id-wait.fifo" {
		t.Errorf("names: %+v", qs)
	}
	var redrive struct{ DeadLetterTargetArn, MaxReceiveCount string }
	if err := json.Unmarshal([]byte(qs[1].Attributes["RedrivePolicy"]), &redrive); err != nil {
		t.Fatal(err)
	}
	if redrive.DeadLetterTargetArn != "arn:aws:sqs:us-east-1:000000000000:queue-n-dlq.fifo" || redrive.MaxReceiveCount != "5" {
		t.Errorf("redrive %+v", redrive)
	}
	a := qs[1].Attributes
	if a["FifoQueue"] != "true" || a["VisibilityTimeout"] != "300" || a["MessageRetentionPeriod"] != "1209600" || a["ContentBasedDeduplication"] != "false" {
		t.Errorf("attributes %v", a)
	}
	for _, f := range l.Files {
		if f.Path == "queue/queue.conf" || f.Path == "acl/queue.acl" {
			t.Errorf("%s written with --queue sqs", f.Path)
		}
	}
	if !strings.Contains(file(t, l, "redisplit.yaml"), "  queue:\n    # Amazon SQS: queue/sqs-queues.json defines the queues.\n    kind: sqs\n") {
		t.Errorf("redisplit.yaml:\n%s", file(t, l, "redisplit.yaml"))
	}
	o.SQS.Standard = true
	l, _ = Generate(fixtureReport(), o)
	if js := file(t, l, "queue/sqs-queues.json"); strings.Contains(js, "fifo") || strings.Contains(js, "FifoQueue") {
		t.Errorf("standard queues:\n%s", js)
	}
}

func TestGenerateRejectsBadOptions(t *testing.T) {
	for name, mod := range map[string]func(*Options){
		"2 masters":        func(o *Options) { o.CacheMasters = 2 },
		"no replica":       func(o *Options) { o.SessionReplicas = 0 },
		"4 sentinels":      func(o *Options) { o.Sentinels = 4 },
		"relative secrets": func(o *Options) { o.Secrets = "secrets" },
		"relative install": func(o *Options) { o.InstallDir = "layout" },
		"bind a name":      func(o *Options) { o.Bind = "localhost" },
		"old redis":        func(o *Options) { o.RedisVersion = "6.0" },
		"hostnames on 6.2": func(o *Options) { o.RedisVersion = "6.2" },
		"bus port":         func(o *Options) { o.Bind, o.BasePort = "127.0.0.1", 60000 },
		"queue kind":       func(o *Options) { o.Queue = "kafka" },
		"visibility":       func(o *Options) { o.SQS.VisibilitySeconds = 50000 },
	} {
		o := options(t)
		mod(&o)
		_, err := Generate(fixtureReport(), o)
		var ce *config.Error
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v, want a *config.Error", name, err)
		}
	}
	o := options(t)
	o.RedisVersion, o.Bind = "6.2", "127.0.0.1"
	l, err := Generate(fixtureReport(), o)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(file(t, l, "acl/cache.acl"), "cluster|shards") {
		t.Error("a 6.2 layout grants cluster|shards (7.0+)")
	}
}

// The host-name layout's data server configs are valid for the installed
// redis-server: each starts as it is (only its port moved to a free one
// and bound to loopback). Sentinels need their master's name to resolve at
// start, so they are started by the --bind layout tests instead.
func TestHostnameConfigsStart(t *testing.T) {
	b, err := topology.NewProcessBackend(t.TempDir())
	if err != nil {
		t.Skip(err)
	}
	o := options(t)
	o.NoAuth = true
	l, err := Generate(fixtureReport(), o)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Write(dir, l, false); err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Servers {
		if s.Sentinel() {
			continue
		}
		port, err := topology.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		args := []string{filepath.Join(dir, s.Conf), "--dir", t.TempDir(), "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--logfile", ""}
		if s.Bucket == "cache" {
			bus, err := topology.FreePort()
			if err != nil || bus == port {
				t.Fatal("no bus port", err)
			}
			args = append(args, "--cluster-port", strconv.Itoa(bus))
		}
		cmd := exec.Command(b.Binary, args...)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = topology.WaitPing(ctx, "127.0.0.1:"+strconv.Itoa(port), "")
		cancel()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if err != nil {
			t.Errorf("%s does not start: %v\n%s", s.Conf, err, out)
		}
	}
}

func TestForecastKeysReadsExport(t *testing.T) {
	in := `{"key":"a{t}1","type":"string","ttl_ms":-1,"bytes":10,"bucket":"cache","rule":""}
{"key_b64":"/wB7dH0y","type":"string","ttl_ms":-1,"bytes":null,"bucket":"cache","rule":""}
{"key":"sess:1","type":"hash","ttl_ms":5,"bytes":99,"bucket":"session","rule":""}
`
	fc, err := ForecastKeys(strings.NewReader(in), "cache", 3)
	if err != nil {
		t.Fatal(err)
	}
	if fc.Keys != 2 || !fc.BytesEstimated || len(fc.HashTags) != 1 || fc.HashTags[0].Tag != "t" || fc.HashTags[0].Keys != 2 {
		t.Errorf("%+v", fc)
	}
	_, err = ForecastKeys(strings.NewReader("{\"key\":1}\n"), "cache", 3)
	var ce *config.Error
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad line: %v", err)
	}
}
