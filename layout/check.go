package layout

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/dualwrite"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/scan"
	"github.com/redisplit/redisplit/store"
)

// Status of a verdict. Only StatusFail fails `targets check`.
type Status string

const (
	StatusOK   Status = "ok"
	StatusInfo Status = "info"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
)

// Check names, stable: scripts and docs/targets.md rely on them.
const (
	CheckReachable      = "reachable"
	CheckVersion        = "version"
	CheckMaxMemory      = "maxmemory"
	CheckRoom           = "room"
	CheckPolicy         = "maxmemory-policy"
	CheckPersistence    = "persistence"
	CheckReplication    = "replication"
	CheckNotify         = "notify-keyspace-events"
	CheckSentinelCount  = "sentinel-count"
	CheckSentinelQuorum = "sentinel-quorum"
	CheckSentinelMaster = "sentinel-master"
	CheckClusterState   = "cluster-state"
	CheckClusterSlots   = "cluster-slots"
	CheckClusterMasters = "cluster-masters"
	CheckClusterMemory  = "cluster-memory"
)

// Verdict is the result of one check on one target (Node "") or one of its
// servers: what was found and, unless it passed, what to do.
type Verdict struct {
	Bucket string `json:"bucket"`
	Check  string `json:"check"`
	Node   string `json:"node,omitempty"`
	Status Status `json:"status"`
	Found  string `json:"found"`
	Fix    string `json:"fix,omitempty"`
	// Blocks: with this finding the target would lose or refuse the
	// bucket's keys, so nothing may be written to it for the bucket: an
	// evicting policy on a bucket that must not evict, no room for what is
	// about to be written. migrate refuses (exit 4; the policy only unless
	// --allow-evicting-target), verify does not mark the bucket verified.
	// Every other finding is a failure of `targets check` and a warning of
	// migrate.
	Blocks bool `json:"blocks,omitempty"`
}

func (v Verdict) String() string {
	s := fmt.Sprintf("%s %s %s", v.Status, v.Bucket, v.Check)
	if v.Node != "" {
		s += " " + v.Node
	}
	s += ": " + v.Found
	if v.Fix != "" {
		s += " (" + v.Fix + ")"
	}
	return s
}

// Failed reports whether any verdict is a failure.
func Failed(vs []Verdict) bool {
	for _, v := range vs {
		if v.Status == StatusFail {
			return true
		}
	}
	return false
}

// Profile is what the checks compare a target with, beyond its bucket's
// fixed profile (policy, persistence, replicas).
type Profile struct {
	Bucket string
	// DataBytes is what the bucket holds on legacy (scan's bytes plus their
	// margin, or migrate's planned bytes); <= 0 when unknown: then headroom
	// is not checked, only that maxmemory is set and not nearly full.
	DataBytes int64
	// LegacyVersion is legacy's redis_version ("" unknown): a target older
	// than legacy rejects its DUMP payloads.
	LegacyVersion string
	// Writing is what the caller is about to write for the bucket (migrate:
	// the bytes still to copy). When > 0 the room check runs on every
	// master: maxmemory − used_memory must hold its share × RoomMargin.
	// `targets check` leaves it 0: a target that already holds the bucket
	// needs no room for it again.
	Writing int64
}

// RoomMargin is the room asked of a target beyond the bytes about to be
// written (Profile.Writing): the copy's own allocations, fragmentation and
// the estimate's error (migrate samples MEMORY USAGE outside --dry-run).
const RoomMargin = 1.2

// ReplicaLagWarn is the replica lag (seconds since its last ack) above which
// replication is reported as lagging.
const ReplicaLagWarn = 10

// Check runs every check of p's bucket profile on the connected target t,
// whose configuration cfg gives the sentinel addresses and credentials. It
// only reads (INFO, CONFIG GET, CLUSTER INFO/NODES/SLOTS, SENTINEL ...), and
// never fails: a server it cannot reach or read is a failed verdict. Servers
// are found from the target: every node of a cluster (CLUSTER NODES), the
// master the sentinels agree on and its replicas, the standalone server.
// Verdicts come in a stable order; a check that passes on every server with
// the same finding is one verdict with Node "".
//
// This is the one implementation of the target profile: `targets check`
// fails on any StatusFail; migrate's preflight refuses on Verdict.Blocks and
// turns every other failure or warning into a warning; verify asks Policy.
func Check(ctx context.Context, t *store.Redis, cfg config.Target, p Profile) []Verdict {
	ch := &checker{p: p, prof: profiles[p.Bucket]}
	switch c := t.Client.(type) {
	case *redis.ClusterClient:
		ch.cluster(ctx, c)
	case *redis.Client:
		if cfg.Kind == config.KindSentinel {
			ch.sentinel(ctx, c, cfg)
		} else {
			ch.standalone(ctx, c)
		}
	default:
		ch.add(CheckReachable, "", StatusFail, fmt.Sprintf("unsupported client %T", t.Client), "")
	}
	return ch.result()
}

type checker struct {
	p    Profile
	prof profile
	mu   sync.Mutex
	vs   []Verdict
}

func (ch *checker) add(check, node string, st Status, found, fix string) {
	ch.addV(Verdict{Check: check, Node: node, Status: st, Found: found, Fix: fix})
}

func (ch *checker) addV(v Verdict) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	v.Bucket = ch.p.Bucket
	ch.vs = append(ch.vs, v)
}

var checkOrder = []string{CheckReachable, CheckVersion, CheckMaxMemory, CheckRoom, CheckPolicy, CheckPersistence, CheckNotify,
	CheckReplication, CheckSentinelCount, CheckSentinelQuorum, CheckSentinelMaster,
	CheckClusterState, CheckClusterSlots, CheckClusterMasters, CheckClusterMemory}

// result orders the verdicts (by check, then node) and merges a check that
// passed everywhere with one finding into one verdict.
func (ch *checker) result() []Verdict {
	rank := map[string]int{}
	for i, c := range checkOrder {
		rank[c] = i
	}
	sort.SliceStable(ch.vs, func(i, j int) bool {
		a, b := ch.vs[i], ch.vs[j]
		if rank[a.Check] != rank[b.Check] {
			return rank[a.Check] < rank[b.Check]
		}
		return a.Node < b.Node
	})
	var out []Verdict
	for i := 0; i < len(ch.vs); {
		j := i
		same := true
		for j < len(ch.vs) && ch.vs[j].Check == ch.vs[i].Check {
			v := ch.vs[j]
			if v.Status != StatusOK || v.Found != ch.vs[i].Found {
				same = false
			}
			j++
		}
		if same && j-i > 1 {
			v := ch.vs[i]
			v.Node = ""
			v.Found += fmt.Sprintf(" (all %d servers)", j-i)
			out = append(out, v)
		} else {
			out = append(out, ch.vs[i:j]...)
		}
		i = j
	}
	return out
}

// server is one data server of the target, with what was read from it.
type server struct {
	addr    string
	master  bool
	c       *redis.Client
	info    map[string]string
	conf    map[string]string // CONFIG GET results; missing when refused
	confErr error
}

// read fills s.info and s.conf. An error is s's to report as unreachable.
func (s *server) read(ctx context.Context, bucket string) error {
	raw, err := s.c.Info(ctx).Result()
	if err != nil {
		return redisconn.Explain(err, "target "+bucket, s.addr)
	}
	s.info = store.ParseInfo(raw)
	s.conf = map[string]string{}
	for _, k := range []string{"maxmemory", "maxmemory-policy", "appendonly", "appendfsync", "save", "notify-keyspace-events"} {
		m, err := s.c.ConfigGet(ctx, k).Result()
		if err != nil {
			s.confErr = redisconn.Explain(err, "target "+bucket, s.addr)
			break
		}
		if v, ok := m[k]; ok {
			s.conf[k] = v
		}
	}
	return nil
}

// value returns a CONFIG value, falling back to INFO's when CONFIG GET was
// refused (maxmemory, policy, AOF are in INFO).
func (s *server) value(k string) (string, bool) {
	if v, ok := s.conf[k]; ok {
		return v, true
	}
	switch k {
	case "maxmemory":
		v, ok := s.info["maxmemory"]
		return v, ok
	case "maxmemory-policy":
		v, ok := s.info["maxmemory_policy"]
		return v, ok
	case "appendonly":
		switch s.info["aof_enabled"] {
		case "1":
			return "yes", true
		case "0":
			return "no", true
		}
	}
	return "", false
}

func (s *server) int(k string) int64 {
	n, _ := strconv.ParseInt(s.info[k], 10, 64)
	return n
}

// serverChecks are the checks every data server gets; share is the part of
// the bucket's bytes it must hold, writing the part of Profile.Writing
// (masters only: a replica takes its master's writes and does not evict).
func (ch *checker) serverChecks(s *server, share, writing int64) {
	ch.version(s)
	ch.maxmemory(s, share)
	if s.master {
		ch.room(s, writing)
	}
	ch.policy(s)
	ch.persistence(s)
	ch.notify(s)
}

// rdbVersion is the RDB format version a Redis version writes in DUMP
// payloads; RESTORE accepts payloads of its own version or older. 0: unknown.
func rdbVersion(v version) int {
	switch {
	case v.major == 0:
		return 0
	case v.atLeast(7, 4):
		return 12
	case v.atLeast(7, 2):
		return 11
	case v.atLeast(7, 0):
		return 10
	case v.atLeast(5, 0):
		return 9
	case v.atLeast(4, 0):
		return 8
	case v.atLeast(3, 2):
		return 7
	default:
		return 6
	}
}

func (ch *checker) version(s *server) {
	tv := s.info["redis_version"]
	what := "Redis " + tv
	if vv := s.info["valkey_version"]; vv != "" {
		what = "Valkey " + vv + " (redis_version " + tv + ")"
	}
	if ch.p.LegacyVersion == "" {
		ch.add(CheckVersion, s.addr, StatusInfo, what+"; legacy's version unknown, DUMP compatibility not checked", "give targets check --scan report.json, or legacy.url in the config")
		return
	}
	t, l := rdbVersion(parseVersion(tv)), rdbVersion(parseVersion(ch.p.LegacyVersion))
	if t == 0 || l == 0 || t >= l {
		ch.add(CheckVersion, s.addr, StatusOK, fmt.Sprintf("%s restores legacy %s's DUMP payloads", what, ch.p.LegacyVersion), "")
		return
	}
	ch.add(CheckVersion, s.addr, StatusWarn,
		fmt.Sprintf("%s (RDB %d) is older than legacy %s (RDB %d): RESTORE rejects legacy's DUMP payloads, so migrate copies key by key (logical copy, slower)", what, t, ch.p.LegacyVersion, l),
		"run Redis "+ch.p.LegacyVersion+" or later on the target for a byte-exact copy, or accept the logical copy")
}

func (ch *checker) maxmemory(s *server, share int64) {
	v, ok := s.value("maxmemory")
	if !ok {
		ch.add(CheckMaxMemory, s.addr, StatusWarn, "cannot read maxmemory", "grant +info +config|get")
		return
	}
	mm, _ := strconv.ParseInt(v, 10, 64)
	used := s.int("used_memory")
	durable := !ch.prof.evicts
	if mm == 0 {
		what := "grows until the kernel kills it"
		if !durable {
			what = "never evicts: it grows until the kernel kills it"
		}
		ch.add(CheckMaxMemory, s.addr, StatusFail, "maxmemory 0 (unlimited): the server "+what,
			fmt.Sprintf("set maxmemory (CONFIG SET maxmemory %s and in its config; targets init sizes it)", suggest(share, ch.prof.headroom)))
		return
	}
	found := "maxmemory " + scan.HumanBytes(mm)
	if durable && float64(used) >= fullShare*float64(mm) {
		ch.add(CheckMaxMemory, s.addr, StatusFail, found+fmt.Sprintf(", used %s: over %.0f%% full, writes will soon be refused (OOM)", scan.HumanBytes(used), 100*fullShare),
			fmt.Sprintf("raise maxmemory to at least %s", suggest(max(share, used), ch.prof.headroom)))
		return
	}
	if share <= 0 {
		ch.add(CheckMaxMemory, s.addr, StatusOK, found+"; the bucket's bytes are unknown, headroom not checked", "")
		return
	}
	x := float64(mm) / float64(share)
	found += fmt.Sprintf(", for %s of %s data: x%.2f", scan.HumanBytes(share), ch.p.Bucket, x)
	switch {
	case x < minFit && durable:
		ch.add(CheckMaxMemory, s.addr, StatusFail, found+fmt.Sprintf(": below x%.2f the data does not fit with fragmentation; writes will be refused (OOM)", minFit),
			fmt.Sprintf("raise maxmemory to %s", suggest(share, ch.prof.headroom)))
	case x < minFit:
		ch.add(CheckMaxMemory, s.addr, StatusWarn, found+": the cache will evict much of what legacy holds (a lower hit rate)",
			fmt.Sprintf("raise maxmemory to %s", suggest(share, ch.prof.headroom)))
	case x < ch.prof.headroom:
		ch.add(CheckMaxMemory, s.addr, StatusWarn, found+fmt.Sprintf(": less than the advised x%.1f headroom", ch.prof.headroom),
			fmt.Sprintf("raise maxmemory to %s", suggest(share, ch.prof.headroom)))
	default:
		ch.add(CheckMaxMemory, s.addr, StatusOK, found, "")
	}
}

func suggest(bytes int64, headroom float64) string {
	if bytes <= 0 {
		return "the size scan advises"
	}
	return mb(roundMiB(int64(float64(bytes) * headroom)))
}

// room: the master s has room (maxmemory − used_memory) for writing ×
// RoomMargin. Without maxmemory there is no limit to run into (the
// maxmemory check judges that); writing <= 0 is not checked. A store that
// evicts any key when full (allkeys-*) only evicts from the start: a
// warning; any other refuses writes (noeviction) or evicts only keys with
// a TTL: the bucket's keys would not fit, and the verdict blocks.
func (ch *checker) room(s *server, writing int64) {
	v, ok := s.value("maxmemory")
	if !ok {
		return
	}
	mm, _ := strconv.ParseInt(v, 10, 64)
	policy, _ := s.value("maxmemory-policy")
	if r, ok := Room(ch.p.Bucket, policy, mm, s.int("used_memory"), writing); ok {
		r.Node = s.addr
		ch.addV(r)
	}
}

// Room is the room check on one master's figures (the checker runs it on
// each master; migrate also on store.Info's sums when the target's servers
// could not be read one by one). ok is false when it does not apply: no
// maxmemory (no limit to run into) or nothing to write.
func Room(bucket, policy string, maxmemory, used, writing int64) (v Verdict, ok bool) {
	if writing <= 0 || maxmemory <= 0 {
		return Verdict{}, false
	}
	v = Verdict{Bucket: bucket, Check: CheckRoom}
	need := int64(float64(writing) * RoomMargin)
	left := maxmemory - used
	have := fmt.Sprintf("%s left (maxmemory %s, used_memory %s)", mibs(left), mibs(maxmemory), mibs(used))
	if left <= 0 {
		have = fmt.Sprintf("no room left (used_memory %s, maxmemory %s)", mibs(used), mibs(maxmemory))
	}
	switch {
	case left >= need:
		v.Status, v.Found = StatusOK, fmt.Sprintf("room for about %s to write: %s", mibs(need), have)
	case strings.HasPrefix(policy, "allkeys-"):
		v.Status = StatusWarn
		v.Found = fmt.Sprintf("the bucket needs about %s (the bytes to write × %.1f) but the target has %s: with maxmemory-policy %s it will evict %s keys from the start",
			mibs(need), RoomMargin, have, policy, bucket)
		v.Fix = "raise its maxmemory (CONFIG SET maxmemory) or add capacity"
	default:
		v.Status, v.Blocks = StatusFail, true
		v.Found = fmt.Sprintf("no room for the bucket: it needs about %s (the bytes to write × %.1f) and has %s", mibs(need), RoomMargin, have)
		v.Fix = "raise its maxmemory (CONFIG SET maxmemory) or add capacity, then rerun"
	}
	return v, true
}

// mibs formats bytes as MiB with one decimal (room figures are compared
// with each other, so they share one unit).
func mibs(n int64) string {
	if n < 0 {
		return "-" + mibs(-n)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func (ch *checker) policy(s *server) {
	p, ok := s.value("maxmemory-policy")
	if !ok {
		ch.add(CheckPolicy, s.addr, StatusWarn, "cannot read maxmemory-policy", "grant +info +config|get")
		return
	}
	v := Policy(ch.p.Bucket, p)
	v.Node = s.addr
	ch.addV(v)
}

// Policy is the maxmemory-policy check of bucket's profile on a policy
// read from a target (`targets check`, migrate and verify all judge the
// policy with it): the cache must evict any key (allkeys-*); every other
// bucket must not evict (config.MustNotEvict), and an evicting policy
// there blocks. An empty policy (not read) is not judged: StatusInfo.
func Policy(bucket, policy string) Verdict {
	v := Verdict{Bucket: bucket, Check: CheckPolicy, Status: StatusOK, Found: policy}
	evicts := profiles[bucket].evicts
	switch {
	case policy == "":
		v.Status, v.Found = StatusInfo, "maxmemory-policy unknown"
	case evicts && strings.HasPrefix(policy, "allkeys-"):
	case evicts:
		v.Status = StatusFail
		v.Found = policy + ": when the cache is full, writes fail (OOM) or only keys with a TTL are evicted"
		v.Fix = "CONFIG SET maxmemory-policy allkeys-lru (and in its config)"
	case config.MustNotEvict(bucket) && config.EvictingPolicy(policy):
		v.Status, v.Blocks = StatusFail, true
		v.Found = fmt.Sprintf("%s: a full store deletes %s keys", policy, bucket)
		v.Fix = "CONFIG SET maxmemory-policy noeviction (and in its config): a full store must refuse writes, never drop keys"
	}
	return v
}

func (ch *checker) persistence(s *server) {
	aof, ok := s.value("appendonly")
	if !ok {
		ch.add(CheckPersistence, s.addr, StatusWarn, "cannot read the persistence settings", "grant +info +config|get")
		return
	}
	fsync, fok := s.conf["appendfsync"]
	save, sok := s.conf["save"]
	desc := "AOF " + aof
	if aof == "yes" && fok {
		desc += ", appendfsync " + fsync
	}
	if sok {
		if save == "" {
			desc += ", no RDB save points"
		} else {
			desc += ", save " + save
		}
	}
	switch ch.prof.aof {
	case persistAOF:
		switch {
		case aof != "yes":
			ch.add(CheckPersistence, s.addr, StatusFail, desc+": a restart or crash loses every "+ch.p.Bucket+" key written since the last snapshot",
				"CONFIG SET appendonly yes and appendfsync everysec (and in its config)")
		case !fok:
			ch.add(CheckPersistence, s.addr, StatusWarn, desc+"; appendfsync unreadable", "grant +config|get")
		case fsync == "no":
			ch.add(CheckPersistence, s.addr, StatusFail, desc+": the kernel decides when to flush; a crash loses tens of seconds of writes",
				"CONFIG SET appendfsync everysec (and in its config)")
		default:
			ch.add(CheckPersistence, s.addr, StatusOK, desc, "")
		}
	case persistNone:
		if aof == "yes" || sok && save != "" {
			ch.add(CheckPersistence, s.addr, StatusWarn, desc+": a cache needs no persistence; forks and disk writes cost latency",
				`CONFIG SET appendonly no and save "" (and in its config)`)
		} else {
			ch.add(CheckPersistence, s.addr, StatusOK, desc, "")
		}
	default:
		ch.add(CheckPersistence, s.addr, StatusOK, desc+" (optional for "+ch.p.Bucket+")", "")
	}
}

func (ch *checker) notify(s *server) {
	v, ok := s.conf["notify-keyspace-events"]
	switch {
	case !ok:
		ch.add(CheckNotify, s.addr, StatusWarn, "cannot read notify-keyspace-events", "grant +config|get")
	case dualwrite.NotifySufficient(v):
		ch.add(CheckNotify, s.addr, StatusOK, fmt.Sprintf("%q publishes every key event", v), "")
	default:
		ch.add(CheckNotify, s.addr, StatusWarn, fmt.Sprintf("%q: after cutover the reverse mirror cannot follow this store's writes", v),
			"CONFIG SET notify-keyspace-events EA (and in its config)")
	}
}

// replicaLine is one slaveN field of INFO replication.
type replicaLine struct {
	addr  string
	state string
	lag   int64
}

func replicasOf(s *server) []replicaLine {
	var out []replicaLine
	n, _ := strconv.Atoi(s.info["connected_slaves"])
	for i := 0; i < n; i++ {
		f := map[string]string{}
		for _, kv := range strings.Split(s.info[fmt.Sprintf("slave%d", i)], ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				f[k] = v
			}
		}
		lag, _ := strconv.ParseInt(f["lag"], 10, 64)
		out = append(out, replicaLine{addr: f["ip"] + ":" + f["port"], state: f["state"], lag: lag})
	}
	return out
}

// replication checks s's replicas against expected (addresses the
// sentinels know, or a count when >= 0 and no list); min is the number
// the profile requires.
func (ch *checker) replication(s *server, known []string, min int, st Status) {
	reps := replicasOf(s)
	online := map[string]replicaLine{}
	for _, r := range reps {
		if r.state == "online" {
			online[r.addr] = r
		}
	}
	var missing []string
	for _, k := range known {
		if _, ok := online[k]; !ok {
			missing = append(missing, k)
		}
	}
	switch {
	case len(missing) > 0:
		ch.add(CheckReplication, s.addr, st, fmt.Sprintf("%d of %d replicas online; not connected: %s", len(online), len(known), strings.Join(missing, ", ")),
			"start the replica (it resyncs by itself); until then a failover has fewer places to go")
		return
	case len(online) < min:
		ch.add(CheckReplication, s.addr, st, fmt.Sprintf("%d replicas online, the profile wants %d", len(online), min),
			"start a replica with replicaof "+strings.Replace(s.addr, ":", " ", 1))
		return
	}
	var lagging []string
	for _, r := range reps {
		if r.lag > ReplicaLagWarn {
			lagging = append(lagging, fmt.Sprintf("%s %ds", r.addr, r.lag))
		}
	}
	if len(lagging) > 0 {
		ch.add(CheckReplication, s.addr, StatusWarn, "replicas lagging: "+strings.Join(lagging, ", "), "check the replica's network and load")
		return
	}
	var addrs []string
	for a := range online {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	found := "no replica"
	if len(addrs) > 0 {
		found = fmt.Sprintf("%d replica(s) online, in sync: %s", len(addrs), strings.Join(addrs, ", "))
	}
	ch.add(CheckReplication, s.addr, StatusOK, found, "")
}

func (ch *checker) standalone(ctx context.Context, c *redis.Client) {
	s := &server{addr: c.Options().Addr, c: c, master: true}
	if err := s.read(ctx, ch.p.Bucket); err != nil {
		ch.add(CheckReachable, s.addr, StatusFail, err.Error(), "start the server, or fix the address and credentials in the config")
		return
	}
	ch.add(CheckReachable, s.addr, StatusOK, "answers", "")
	ch.serverChecks(s, ch.p.DataBytes, ch.p.Writing)
	if s.info["role"] == "slave" {
		ch.add(CheckReplication, s.addr, StatusFail, fmt.Sprintf("a replica of %s:%s: writes are refused (READONLY)", s.info["master_host"], s.info["master_port"]),
			"point the target at the master")
		return
	}
	ch.replication(s, nil, 0, StatusWarn)
}

// clientFor returns a client for addr with base's credentials, TLS and
// timeouts (base may be a FailoverClient's: its dialer is not kept).
func clientFor(base *redis.Options, addr string) *redis.Client {
	o := *base
	o.Addr, o.Dialer, o.OnConnect = addr, nil, nil
	o.PoolSize, o.MinIdleConns, o.MaxRetries = 1, 0, 0
	return redis.NewClient(&o)
}

func (ch *checker) sentinel(ctx context.Context, fc *redis.Client, cfg config.Target) {
	type answer struct {
		addr, master, quorum string
		replicas             []string
		err                  error
	}
	answers := make([]answer, len(cfg.Sentinels))
	var wg sync.WaitGroup
	for i, a := range cfg.Sentinels {
		wg.Add(1)
		go func(i int, a string) {
			defer wg.Done()
			ans := answer{addr: a}
			defer func() { answers[i] = ans }()
			opt, err := redisconn.Options(config.Endpoint{URL: "redis://" + a, Username: cfg.SentinelUsername, Password: cfg.SentinelPassword,
				TLS: cfg.TLS, ConnectTimeout: cfg.ConnectTimeout, ReadTimeout: cfg.ReadTimeout}, "targets."+ch.p.Bucket+".sentinels")
			if err != nil {
				ans.err = err
				return
			}
			opt.MaxRetries = 0
			sc := redis.NewSentinelClient(opt)
			defer sc.Close()
			m, err := sc.GetMasterAddrByName(ctx, cfg.Master).Result()
			if err != nil {
				ans.err = redisconn.Explain(err, "sentinel", a)
				return
			}
			if len(m) == 2 {
				ans.master = m[0] + ":" + m[1]
			}
			q, err := sc.CkQuorum(ctx, cfg.Master).Result()
			if err != nil {
				q = err.Error()
			}
			ans.quorum = q
			if reps, err := sc.Replicas(ctx, cfg.Master).Result(); err == nil {
				for _, r := range reps {
					ans.replicas = append(ans.replicas, r["ip"]+":"+r["port"])
				}
			}
		}(i, a)
	}
	wg.Wait()

	var up []answer
	var down []string
	for _, a := range answers {
		if a.err != nil {
			down = append(down, fmt.Sprintf("%s (%v)", a.addr, a.err))
		} else {
			up = append(up, a)
		}
	}
	switch {
	case len(down) > 0:
		ch.add(CheckSentinelCount, "", StatusFail, fmt.Sprintf("%d of %d sentinels answer; not: %s", len(up), len(answers), strings.Join(down, "; ")),
			"start the missing sentinels: with fewer, one more loss leaves no majority to fail over")
	case len(answers) < 3:
		ch.add(CheckSentinelCount, "", StatusFail, fmt.Sprintf("%d sentinel(s) configured", len(answers)),
			"run at least three sentinels on separate machines (a failover needs a majority)")
	default:
		ch.add(CheckSentinelCount, "", StatusOK, fmt.Sprintf("%d of %d sentinels answer", len(up), len(answers)), "")
	}
	masters := map[string][]string{}
	known := map[string]bool{}
	for _, a := range up {
		if strings.HasPrefix(a.quorum, "OK") {
			ch.add(CheckSentinelQuorum, a.addr, StatusOK, "CKQUORUM OK", "")
		} else {
			ch.add(CheckSentinelQuorum, a.addr, StatusFail, "CKQUORUM: "+a.quorum, "start sentinels until a majority can authorise a failover")
		}
		masters[a.master] = append(masters[a.master], a.addr)
		for _, r := range a.replicas {
			known[r] = true
		}
	}
	master := ""
	switch {
	case len(up) == 0:
		ch.add(CheckSentinelMaster, "", StatusFail, "no sentinel answers: the master is unknown", "start the sentinels")
	case len(masters) > 1:
		var parts []string
		for m, who := range masters {
			parts = append(parts, fmt.Sprintf("%s says %s", strings.Join(who, ","), m))
		}
		sort.Strings(parts)
		ch.add(CheckSentinelMaster, "", StatusFail, "the sentinels disagree on the master: "+strings.Join(parts, "; "),
			"wait for the failover to settle; if it persists, check that every sentinel monitors the same master name")
	default:
		for m := range masters {
			master = m
		}
	}
	if master == "" {
		return
	}
	base := fc.Options()
	mc := clientFor(base, master)
	defer mc.Close()
	ms := &server{addr: master, c: mc, master: true}
	if err := ms.read(ctx, ch.p.Bucket); err != nil {
		ch.add(CheckReachable, master, StatusFail, err.Error(), "the master the sentinels name does not answer: check it and the sentinels' view")
		return
	}
	if ms.info["role"] != "master" {
		ch.add(CheckSentinelMaster, "", StatusFail, fmt.Sprintf("the sentinels name %s, which is a %s", master, ms.info["role"]), "wait for the failover to settle")
		return
	}
	ch.add(CheckSentinelMaster, "", StatusOK, "the sentinels agree: master "+master, "")
	ch.add(CheckReachable, master, StatusOK, "answers", "")
	servers := []*server{ms}
	var knownList []string
	for k := range known {
		knownList = append(knownList, k)
	}
	sort.Strings(knownList)
	ch.replication(ms, knownList, 1, StatusFail)
	for _, r := range replicasOf(ms) {
		if r.state != "online" {
			continue
		}
		rc := clientFor(base, r.addr)
		defer rc.Close()
		rs := &server{addr: r.addr, c: rc}
		if err := rs.read(ctx, ch.p.Bucket); err != nil {
			ch.add(CheckReachable, r.addr, StatusFail, err.Error(), "the replica is connected to the master but does not answer redisplit: check its address and ACL")
			continue
		}
		ch.add(CheckReachable, r.addr, StatusOK, "answers", "")
		servers = append(servers, rs)
	}
	for _, s := range servers {
		ch.serverChecks(s, ch.p.DataBytes, ch.p.Writing)
	}
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	id, addr, masterID string
	flags              map[string]bool
	slots              int
}

func parseClusterNodes(s string) []clusterNode {
	var out []clusterNode
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		n := clusterNode{id: f[0], masterID: f[3], flags: map[string]bool{}}
		addr, host, _ := strings.Cut(f[1], ",")
		addr, _, _ = strings.Cut(addr, "@")
		if host != "" {
			_, port, _ := strings.Cut(addr, ":")
			addr = host + ":" + port
		}
		n.addr = addr
		for _, fl := range strings.Split(f[2], ",") {
			n.flags[fl] = true
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // migrating/importing marker
			}
			a, b, ok := strings.Cut(r, "-")
			lo, _ := strconv.Atoi(a)
			hi := lo
			if ok {
				hi, _ = strconv.Atoi(b)
			}
			n.slots += hi - lo + 1
		}
		out = append(out, n)
	}
	return out
}

func (ch *checker) cluster(ctx context.Context, cc *redis.ClusterClient) {
	raw, err := cc.ClusterNodes(ctx).Result()
	if err != nil {
		ch.add(CheckReachable, "", StatusFail, redisconn.Explain(err, "target "+ch.p.Bucket, strings.Join(cc.Options().Addrs, ",")).Error(),
			"start the cluster nodes, or fix the addresses and credentials in the config")
		return
	}
	nodes := parseClusterNodes(raw)
	co := cc.Options()
	base := &redis.Options{Username: co.Username, Password: co.Password, TLSConfig: co.TLSConfig, DialTimeout: co.DialTimeout,
		ReadTimeout: co.ReadTimeout, WriteTimeout: co.WriteTimeout, Protocol: co.Protocol, DisableIdentity: true}
	replicasOfMaster := map[string]int{}
	var masters []clusterNode
	var failed []string
	for _, n := range nodes {
		switch {
		case n.flags["fail"] || n.flags["noaddr"]:
			failed = append(failed, n.addr)
		case n.flags["master"]:
			if n.slots > 0 {
				masters = append(masters, n)
			}
		case n.flags["slave"]:
			replicasOfMaster[n.masterID]++
		}
	}
	servers := make([]*server, 0, len(nodes))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, n := range nodes {
		if n.flags["fail"] || n.flags["noaddr"] || n.flags["handshake"] {
			continue
		}
		wg.Add(1)
		go func(n clusterNode) {
			defer wg.Done()
			c := clientFor(base, n.addr)
			s := &server{addr: n.addr, c: c, master: n.flags["master"]}
			if err := s.read(ctx, ch.p.Bucket); err != nil {
				c.Close()
				ch.add(CheckReachable, n.addr, StatusFail, err.Error(), "start the node, or check its address and ACL")
				return
			}
			ci, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				c.Close()
				ch.add(CheckReachable, n.addr, StatusFail, redisconn.Explain(err, "target "+ch.p.Bucket, n.addr).Error(), "grant +cluster|info")
				return
			}
			for k, v := range store.ParseInfo(ci) {
				s.info[k] = v
			}
			if s.int("cluster_slots_assigned") < 16384 {
				s.info["_missing"] = missingSlots(ctx, c)
			}
			mu.Lock()
			servers = append(servers, s)
			mu.Unlock()
			ch.add(CheckReachable, n.addr, StatusOK, "answers", "")
		}(n)
	}
	wg.Wait()
	defer func() {
		for _, s := range servers {
			s.c.Close()
		}
	}()
	share, writing := int64(0), int64(0)
	if len(masters) > 0 {
		share = max(0, ch.p.DataBytes) / int64(len(masters))
		writing = max(0, ch.p.Writing) / int64(len(masters))
	}
	for _, s := range servers {
		ch.serverChecks(s, share, writing)
		if st := s.info["cluster_state"]; st != "ok" {
			ch.add(CheckClusterState, s.addr, StatusFail, "cluster_state:"+st, "see CLUSTER INFO on that node: a slot without a live master, or a partition")
		} else {
			ch.add(CheckClusterState, s.addr, StatusOK, "cluster_state:ok", "")
		}
		assigned, bad := s.int("cluster_slots_assigned"), s.int("cluster_slots_fail")
		switch {
		case assigned < 16384:
			ch.add(CheckClusterSlots, s.addr, StatusFail, fmt.Sprintf("%d of 16384 slots assigned; not covered: %s", assigned, s.info["_missing"]),
				"assign them (CLUSTER ADDSLOTSRANGE on a master, or redis-cli --cluster fix)")
		case bad > 0:
			ch.add(CheckClusterSlots, s.addr, StatusFail, fmt.Sprintf("%d slots on failed masters", bad), "bring the master back or let its replica take over")
		default:
			ch.add(CheckClusterSlots, s.addr, StatusOK, "every slot covered", "")
		}
	}
	ch.clusterMasters(masters, replicasOfMaster, failed)
	ch.clusterMemory(servers)
}

// missingSlots lists the slot ranges c's CLUSTER SLOTS does not cover.
func missingSlots(ctx context.Context, c *redis.Client) string {
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	var covered [16384]bool
	for _, s := range slots {
		for i := int(s.Start); i <= int(s.End) && i < 16384; i++ {
			covered[i] = true
		}
	}
	var parts []string
	for i := 0; i < 16384; i++ {
		if covered[i] {
			continue
		}
		j := i
		for j+1 < 16384 && !covered[j+1] {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(i))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", i, j))
		}
		i = j
		if len(parts) == 10 {
			parts = append(parts, "...")
			break
		}
	}
	return strings.Join(parts, ",")
}

func (ch *checker) clusterMasters(masters []clusterNode, replicas map[string]int, failed []string) {
	if len(masters) < 3 {
		ch.add(CheckClusterMasters, "", StatusFail, fmt.Sprintf("%d masters serve slots", len(masters)),
			"run at least 3 masters: a failover needs a majority of them")
		return
	}
	lo, hi := -1, 0
	var without []string
	for _, m := range masters {
		n := replicas[m.id]
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
		if n == 0 {
			without = append(without, m.addr)
		}
	}
	found := fmt.Sprintf("%d masters, %d-%d replicas each", len(masters), lo, hi)
	if lo == hi {
		found = fmt.Sprintf("%d masters, %d replica(s) each", len(masters), lo)
	}
	switch {
	case len(failed) > 0:
		ch.add(CheckClusterMasters, "", StatusWarn, found+"; nodes marked failed: "+strings.Join(failed, ", "),
			"restart them, or CLUSTER FORGET them on every node")
	case lo < hi && len(without) > 0:
		ch.add(CheckClusterMasters, "", StatusWarn, found+"; without a replica: "+strings.Join(without, ", "),
			"start the missing replica (redis-cli --cluster add-node --cluster-slave)")
	default:
		ch.add(CheckClusterMasters, "", StatusOK, found, "")
	}
}

// clusterMemory compares the masters' data: keys and used_memory_dataset.
func (ch *checker) clusterMemory(servers []*server) {
	var keys, data []int64
	var addrs []string
	for _, s := range servers {
		if !s.master {
			continue
		}
		k := int64(0)
		for _, kv := range strings.Split(s.info["db0"], ",") {
			if v, ok := strings.CutPrefix(kv, "keys="); ok {
				k, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		keys = append(keys, k)
		data = append(data, s.int("used_memory_dataset"))
		addrs = append(addrs, s.addr)
	}
	if len(addrs) == 0 {
		return
	}
	spread := func(xs []int64) (lo, hi int64, iMax int, ratio float64) {
		var sum int64
		lo = xs[0]
		for i, x := range xs {
			sum += x
			lo = min(lo, x)
			if x > hi {
				hi, iMax = x, i
			}
		}
		if sum > 0 {
			ratio = float64(hi) / (float64(sum) / float64(len(xs)))
		}
		return
	}
	klo, khi, ki, kr := spread(keys)
	dlo, dhi, di, dr := spread(data)
	found := fmt.Sprintf("keys %d-%d, dataset %s-%s per master", klo, khi, scan.HumanBytes(dlo), scan.HumanBytes(dhi))
	const skewed = 1.3
	switch {
	case dr > skewed && dhi > 16*mib:
		ch.add(CheckClusterMemory, addrs[di], StatusWarn, found+fmt.Sprintf("; %s holds x%.1f the mean", addrs[di], dr),
			"see targets init --keys's forecast: a hash tag or big keys pin data to its slots")
	case kr > skewed && khi > 1000:
		ch.add(CheckClusterMemory, addrs[ki], StatusWarn, found+fmt.Sprintf("; %s holds x%.1f the mean keys", addrs[ki], kr),
			"see targets init --keys's forecast: a hash tag pins a family of keys to its slots")
	default:
		ch.add(CheckClusterMemory, "", StatusOK, found, "")
	}
}
