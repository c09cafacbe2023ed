package rehearse

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/topology"
)

// Layout is the shape of the topology to rehearse on: the kind and node
// count of each bucket's target.
type Layout map[string]Store

// Store is one bucket's target shape.
type Store struct {
	Kind  string   // config.KindStandalone, KindCluster, KindSentinel, or KindSQS (the queue bucket only)
	Nodes int      // cluster masters; 1 otherwise
	Args  []string // extra redis-server arguments, after the bucket's defaults
	FIFO  bool     // KindSQS: FIFO queues
}

// SQSLayout is DefaultLayout with the queue bucket on SQS (the in-process
// emulator, sqs.go).
func SQSLayout() Layout {
	l := DefaultLayout()
	l["queue"] = Store{Kind: config.KindSQS}
	return l
}

// SQSBucket is the bucket l puts on SQS, "" when none.
func (l Layout) SQSBucket() string {
	for b, s := range l {
		if s.Kind == config.KindSQS {
			return b
		}
	}
	return ""
}

// DefaultLayout is DESIGN.md §1: a 3-master cache cluster, sessions on a
// master+replica behind 3 sentinels, standalone queue and ratelimit stores.
func DefaultLayout() Layout {
	return Layout{
		"cache":     {Kind: config.KindCluster, Nodes: 3},
		"session":   {Kind: config.KindSentinel, Nodes: 1},
		"queue":     {Kind: config.KindStandalone, Nodes: 1},
		"ratelimit": {Kind: config.KindStandalone, Nodes: 1},
	}
}

// LayoutOf returns the layout of cfg's targets: same kinds; a cluster gets as
// many masters as cfg lists seed addresses, at least 3. A sentinel target is
// always a master, a replica and 3 sentinels. A queue bucket on SQS is
// rehearsed on the in-process SQS emulator (same FIFO setting); SQS for
// another bucket is a *config.Error (migrate refuses it too).
func LayoutOf(cfg *config.Config) (Layout, error) {
	l := Layout{}
	for b, t := range cfg.Targets {
		switch t.Kind {
		case config.KindStandalone, config.KindSentinel:
			l[b] = Store{Kind: t.Kind, Nodes: 1}
		case config.KindCluster:
			l[b] = Store{Kind: t.Kind, Nodes: max(3, len(t.Addrs))}
		case config.KindSQS:
			if b != "queue" {
				return nil, config.Errorf("targets."+b+".kind", "only the queue bucket can go to SQS")
			}
			l[b] = Store{Kind: t.Kind, FIFO: t.FIFO}
		default:
			return nil, config.Errorf("targets."+b+".kind", "rehearse cannot run a %q target in containers yet", t.Kind)
		}
	}
	if len(l) == 0 {
		return nil, config.Errorf("targets", "the configuration names no target: nothing to rehearse (omit --config for the default layout)")
	}
	return l, nil
}

// storeArgs are the server settings DESIGN.md §1 gives each bucket's store.
var storeArgs = map[string][]string{
	"cache":     {"--maxmemory-policy", "allkeys-lru"},
	"session":   {"--maxmemory-policy", "noeviction"},
	"queue":     {"--maxmemory-policy", "noeviction"},
	"ratelimit": {"--maxmemory-policy", "noeviction"},
}

// Topology is the running ephemeral copy: the legacy server and the target
// of each bucket, as config targets pointing at them.
type Topology struct {
	Legacy    topology.Server
	Targets   map[string]config.Target
	Clusters  map[string]*topology.Cluster
	Sentinels map[string]*topology.Sentinel
	Servers   map[string][]topology.Server // every server of each bucket's target
	SQS       *SQSEmulator                 // the queue bucket's SQS, when the layout puts it there
}

// Close stops what Start runs in this process (the SQS emulator); the
// servers are the backend's to close.
func (t *Topology) Close() {
	if t != nil && t.SQS != nil {
		t.SQS.Close()
	}
}

// Start starts legacy and every target of l on b. Servers already started
// are left to b.Close on error.
func (l Layout) Start(ctx context.Context, b topology.Backend) (_ *Topology, err error) {
	t := &Topology{Targets: map[string]config.Target{}, Clusters: map[string]*topology.Cluster{},
		Sentinels: map[string]*topology.Sentinel{}, Servers: map[string][]topology.Server{}}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	if t.Legacy, err = topology.Standalone(ctx, b, "legacy"); err != nil {
		return nil, fmt.Errorf("legacy: %w", err)
	}
	for _, bucket := range config.Buckets {
		s, ok := l[bucket]
		if !ok {
			continue
		}
		args := append(append([]string{}, storeArgs[bucket]...), s.Args...)
		switch s.Kind {
		case config.KindSQS:
			if t.SQS, err = startSQS(); err != nil {
				return nil, fmt.Errorf("%s target: %w", bucket, err)
			}
			t.Targets[bucket] = t.SQS.target(s.FIFO)
		case config.KindStandalone:
			srv, err := topology.Standalone(ctx, b, bucket, args...)
			if err != nil {
				return nil, fmt.Errorf("%s target: %w", bucket, err)
			}
			t.Targets[bucket] = config.Target{Kind: s.Kind, Endpoint: config.Endpoint{URL: "redis://" + srv.Addr() + "/0"}}
			t.Servers[bucket] = []topology.Server{srv}
		case config.KindCluster:
			c, err := topology.StartCluster(ctx, b, bucket, s.Nodes, args...)
			if err != nil {
				return nil, fmt.Errorf("%s target: %w", bucket, err)
			}
			t.Clusters[bucket] = c
			t.Targets[bucket] = config.Target{Kind: s.Kind, Addrs: c.Addrs()}
			t.Servers[bucket] = c.Nodes
		case config.KindSentinel:
			sn, err := topology.StartSentinel(ctx, b, bucket, bucket, args...)
			if err != nil {
				return nil, fmt.Errorf("%s target: %w", bucket, err)
			}
			t.Sentinels[bucket] = sn
			t.Targets[bucket] = config.Target{Kind: s.Kind, Master: sn.MasterName, Sentinels: sn.SentinelAddrs()}
			t.Servers[bucket] = append([]topology.Server{sn.Master, sn.Replica}, sn.Sentinels...)
		}
	}
	return t, nil
}

// Describe lists the servers, one line per bucket.
func (t *Topology) Describe() []string {
	out := []string{"legacy: standalone " + t.Legacy.Addr()}
	for _, b := range config.Buckets {
		tg, ok := t.Targets[b]
		if !ok {
			continue
		}
		switch tg.Kind {
		case config.KindSQS:
			kind := "standard"
			if tg.FIFO {
				kind = "FIFO"
			}
			out = append(out, fmt.Sprintf("%s: SQS, %s queues %s, on the in-process emulator (goaws %s) %s", b, kind, tg.QueueName, goawsVersion, tg.SQSEndpoint))
		case config.KindCluster:
			out = append(out, fmt.Sprintf("%s: cluster of %d masters %s", b, len(tg.Addrs), strings.Join(tg.Addrs, " ")))
		case config.KindSentinel:
			sn := t.Sentinels[b]
			out = append(out, fmt.Sprintf("%s: sentinel master %s, replica %s, sentinels %s", b, sn.Master.Addr(), sn.Replica.Addr(),
				strings.Join(tg.Sentinels, " ")))
		default:
			out = append(out, fmt.Sprintf("%s: standalone %s", b, strings.TrimSuffix(strings.TrimPrefix(tg.URL, "redis://"), "/0")))
		}
	}
	return out
}

// LegacyDB is the database number of the user's legacy URL (0 without one):
// the rehearsal loads and migrates that database, as the real run would.
func LegacyDB(user *config.Config) int {
	if user == nil || user.Legacy.URL == "" {
		return 0
	}
	o, err := redis.ParseURL(user.Legacy.URL)
	if err != nil {
		return 0
	}
	return o.DB
}

// StateDir is the state directory of the rehearsal's commands, inside the
// rehearsal's directory dir.
func StateDir(dir string) string { return filepath.Join(dir, "state") }

// WriteConfig writes the configuration the rehearsal's commands run with to
// dir/redisplit.yaml: the user's routing settings (rules, presets, unknown,
// plan, scan and rate options) with legacy (same database number) and
// targets replaced by the ephemeral servers and the state directory inside
// dir.
func (t *Topology) WriteConfig(dir string, user *config.Config) (string, error) {
	doc := map[string]any{
		"legacy":    map[string]any{"url": fmt.Sprintf("redis://%s/%d", t.Legacy.Addr(), LegacyDB(user))},
		"state_dir": StateDir(dir),
	}
	targets := map[string]any{}
	for b, tg := range t.Targets {
		m := map[string]any{"kind": tg.Kind}
		switch tg.Kind {
		case config.KindSQS:
			m["region"], m["endpoint"], m["queue_name"], m["fifo"], m["create_queues"] = tg.Region, tg.SQSEndpoint, tg.QueueName, tg.FIFO, tg.CreateQueues
		case config.KindCluster:
			m["addrs"] = tg.Addrs
		case config.KindSentinel:
			m["master"], m["sentinels"] = tg.Master, tg.Sentinels
		default:
			m["url"] = tg.URL
		}
		targets[b] = m
	}
	doc["targets"] = targets
	if user != nil {
		if len(user.Rules) > 0 {
			doc["rules"] = user.Rules
		}
		if user.Presets.None || len(user.Presets.Disabled) > 0 {
			doc["presets"] = user.Presets
		}
		if user.Unknown != "" {
			doc["unknown"] = user.Unknown
		}
		if user.Plan != "" {
			p, err := filepath.Abs(user.Plan)
			if err != nil {
				return "", err
			}
			doc["plan"] = p
		}
		if user.MaxOps > 0 {
			doc["max_ops"] = user.MaxOps
		}
		scan := map[string]any{}
		if user.Scan.Count > 0 {
			scan["count"] = user.Scan.Count
		}
		if user.Scan.Sample > 0 {
			scan["sample"] = user.Scan.Sample
		}
		if user.Scan.MaxOps > 0 {
			scan["max_ops"] = user.Scan.MaxOps
		}
		if len(scan) > 0 {
			doc["scan"] = scan
		}
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "redisplit.yaml")
	header := "# Generated by redisplit rehearse: the ephemeral copy of the configured topology.\n"
	return path, os.WriteFile(path, append([]byte(header), b...), 0o600)
}
