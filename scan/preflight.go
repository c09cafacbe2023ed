package scan

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/dualwrite"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/store"
)

// Verdict statuses, from good to bad. Critical is reserved for facts that
// put users' data at risk right now (legacy already evicting).
const (
	StatusOK       = "ok"
	StatusInfo     = "info"
	StatusWarn     = "warn"
	StatusFail     = "fail"
	StatusCritical = "critical"
)

// Verdict is the outcome of one preflight check.
type Verdict struct {
	Check   string `json:"check"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// Permission is whether the connected user may run one command a
// redisplit step needs.
type Permission struct {
	Command string `json:"command"` // e.g. "MEMORY USAGE"
	ACL     string `json:"acl"`     // the ACL rule granting it, e.g. "+memory|usage"
	For     string `json:"for"`     // which step needs it
	Status  string `json:"status"`  // "allowed", "denied", "unchecked"
	Detail  string `json:"detail,omitempty"`
}

// Needed lists the legacy commands each redisplit step needs (docs/permissions.md
// is the human version), each with a harmless probe: arguments that touch
// only a key that does not exist and change nothing. Probe nil means the
// command cannot be tried harmlessly (it is checked with ACL DRYRUN only).
var Needed = []struct {
	Command, ACL, For string
	Probe             []any
}{
	{"SCAN", "+scan", "scan, migrate, verify", []any{"scan", "0", "count", "1"}},
	{"TYPE", "+type", "scan, migrate, verify", []any{"type", probeKey}},
	{"PTTL", "+pttl", "scan, migrate, verify", []any{"pttl", probeKey}},
	{"DBSIZE", "+dbsize", "scan (progress)", []any{"dbsize"}},
	{"INFO", "+info", "scan (preflight)", []any{"info", "server"}},
	{"OBJECT ENCODING", "+object|encoding", "scan (counter detection)", []any{"object", "encoding", probeKey}},
	{"MEMORY USAGE", "+memory|usage", "scan (bytes per key)", []any{"memory", "usage", probeKey}},
	{"GETRANGE", "+getrange", "scan (first value bytes of a few keys per unknown pattern)", []any{"getrange", probeKey, "0", "0"}},
	{"LINDEX", "+lindex", "scan (first item of a few lists per unknown pattern)", []any{"lindex", probeKey, "0"}},
	{"HRANDFIELD", "+hrandfield", "scan (field names of a few hashes per unknown pattern; HSCAN otherwise)", []any{"hrandfield", probeKey, "1"}},
	{"HSCAN", "+hscan", "scan (field names of hashes where HRANDFIELD is refused)", []any{"hscan", probeKey, "0", "count", "1"}},
	{"ZRANGE", "+zrange", "scan (first member of a few sorted sets per unknown pattern)", []any{"zrange", probeKey, "0", "0"}},
	{"XRANGE", "+xrange", "scan (first entry of a few streams per unknown pattern)", []any{"xrange", probeKey, "-", "+", "count", "1"}},
	{"CONFIG GET", "+config|get", "scan, migrate (read notify-keyspace-events)", []any{"config", "get", "notify-keyspace-events"}},
	{"DUMP", "+dump", "migrate, verify", []any{"dump", probeKey}},
	{"PEXPIRETIME", "+pexpiretime", "migrate", []any{"pexpiretime", probeKey}},
	{"TIME", "+time", "migrate (absolute expiry)", []any{"time"}},
	{"MULTI/EXEC", "+multi +exec", "migrate (atomic key read)", nil},
	{"EVALSHA, EVAL", "+evalsha +eval", "migrate (the read script: size check and read in one step on Redis 7+; MULTI/EXEC without it)", []any{"evalsha", "0000000000000000000000000000000000000000", "0"}},
	{"MGET", "+mget", "verify (strings of a batch in one read; GET without it)", []any{"mget", probeKey}},
	{"HGETALL, LRANGE, SMEMBERS, ZRANGE", "+@read", "verify (logical comparison)", []any{"hgetall", probeKey}},
	{"PSUBSCRIBE", "+psubscribe (and &__keyevent@<db>__:*, literally)", "migrate --dual-write (change capture)", nil},
	{"CONFIG SET", "+config|set", "migrate (set notify-keyspace-events; optional)", nil},
	{"SET", "+set", "migrate (lease and catch-up marker keys)", []any{"set", probeKey, "x", "xx"}},
	{"DEL", "+del", "migrate (lease and marker keys), rollback", []any{"del", probeKey}},
	{"RESTORE", "+restore", "cutover, rollback (sync back to legacy)", []any{"restore", probeKey, "0", "x"}},
	{"LMOVE", "+lmove", "migrate (moving queue items)", []any{"lmove", probeKey, probeKey, "left", "left"}},
}

// probeKey is a key name no application uses; probes never create it.
const probeKey = "__redisplit_preflight_probe__"

// preflightResult is what scan learns before scanning.
type preflightResult struct {
	Verdicts    []Verdict
	Permissions []Permission
	Info        map[string]string
	caps        caps
	Version     string
	Role        string
	Cluster     bool
	DB          int
}

// preflight checks legacy: version, memory policy, eviction, keyspace
// notifications, replica and cluster mode, other databases, and which
// commands the user may run. It fails only when the scan itself cannot run
// (INFO, SCAN, TYPE or PTTL refused, server unreachable).
func preflight(ctx context.Context, c *redis.Client) (*preflightResult, error) {
	addr := c.Options().Addr
	r := &preflightResult{DB: c.Options().DB}
	add := func(check, status, format string, args ...any) {
		r.Verdicts = append(r.Verdicts, Verdict{check, status, fmt.Sprintf(format, args...)})
	}
	s, err := c.Info(ctx, "server", "memory", "stats", "replication", "cluster", "keyspace", "modules").Result()
	if err != nil && !strings.HasPrefix(err.Error(), "NOPERM") {
		s, err = c.Info(ctx).Result() // Redis < 7 takes one section only; the default set has them all
	}
	if err != nil {
		return nil, redisconn.Explain(err, "legacy", addr)
	}
	f := store.ParseInfo(s)
	r.Info = f
	// Without modules, a "raw" encoding can only be a string (module values
	// report "raw" too); a missing section leaves it ambiguous.
	r.caps.noModules = strings.Contains(s, "# Modules") && f["module"] == ""
	r.Version, r.Role = f["redis_version"], f["role"]
	r.Cluster = f["cluster_enabled"] == "1"

	major, _ := strconv.Atoi(strings.SplitN(r.Version, ".", 2)[0])
	switch {
	case major >= 7:
		add("version", StatusOK, "Redis %s", r.Version)
	case major >= 4:
		add("version", StatusWarn, "Redis %s: PEXPIRETIME and ACL DRYRUN need 7.0; migrate falls back to PTTL+TIME", r.Version)
	default:
		add("version", StatusFail, "Redis %s is too old (MEMORY USAGE needs 4.0)", r.Version)
	}

	mm, _ := strconv.ParseInt(f["maxmemory"], 10, 64)
	policy := f["maxmemory_policy"]
	used, _ := strconv.ParseInt(f["used_memory"], 10, 64)
	switch {
	case mm == 0:
		add("maxmemory", StatusInfo, "no maxmemory; used_memory %s; policy %s", HumanBytes(used), policy)
	case used*10 >= mm*9:
		add("maxmemory", StatusWarn, "used_memory %s is %.0f%% of maxmemory %s; policy %s", HumanBytes(used), 100*float64(used)/float64(mm), HumanBytes(mm), policy)
	default:
		add("maxmemory", StatusOK, "maxmemory %s, used %s (%.0f%%), policy %s", HumanBytes(mm), HumanBytes(used), 100*float64(used)/float64(mm), policy)
	}
	switch {
	case strings.HasPrefix(policy, "allkeys-"):
		add("maxmemory-policy", StatusWarn, "%s may evict any key, sessions and queued jobs included: this is what the split fixes", policy)
	case strings.HasPrefix(policy, "volatile-"):
		add("maxmemory-policy", StatusWarn, "%s evicts keys that have a TTL: sessions and rate-limit counters are the first candidates", policy)
	}
	if ev, _ := strconv.ParseInt(f["evicted_keys"], 10, 64); ev > 0 {
		add("eviction", StatusCritical, "LEGACY IS ALREADY EVICTING: evicted_keys=%d since the last restart or CONFIG RESETSTAT (policy %s). Sessions, jobs and rate limits may be among them.", ev, policy)
	} else {
		add("eviction", StatusOK, "evicted_keys=0")
	}

	switch {
	case r.Cluster:
		add("cluster", StatusFail, "legacy runs in cluster mode: redisplit splits a standalone (or replicated) instance; this scan covers only the keys of the node it is connected to (%s)", addr)
	default:
		add("cluster", StatusOK, "standalone (cluster_enabled:0)")
	}
	if r.Role == "slave" {
		add("replica", StatusInfo, "connected to a replica of %s:%s: fine for scan (read-only); migrate needs the master", f["master_host"], f["master_port"])
	}
	var others []string
	for k, v := range f {
		if strings.HasPrefix(k, "db") && k != fmt.Sprintf("db%d", r.DB) {
			others = append(others, k+" ("+strings.SplitN(strings.TrimPrefix(v, "keys="), ",", 2)[0]+" keys)")
		}
	}
	if len(others) > 0 {
		add("databases", StatusWarn, "this scan covers db %d only; other databases hold keys: %s", r.DB, strings.Join(others, ", "))
	}

	// Permissions first: CONFIG GET may be refused.
	r.Permissions = checkPermissions(ctx, c)
	perm := map[string]Permission{}
	var denied []string
	for _, p := range r.Permissions {
		perm[p.Command] = p
		if p.Status == "denied" {
			denied = append(denied, fmt.Sprintf("%s (%s, for %s)", p.Command, p.ACL, p.For))
		}
	}
	for _, must := range []string{"SCAN", "TYPE", "PTTL"} {
		if perm[must].Status == "denied" {
			return nil, &redisconn.Error{Role: "legacy", Addr: addr, Kind: redisconn.NoPerm, Command: strings.ToLower(must),
				Hint: fmt.Sprintf("scan cannot run without it: grant it with ACL SETUSER <user> %s; see docs/permissions.md", perm[must].ACL)}
		}
	}
	r.caps.memoryUsage = perm["MEMORY USAGE"].Status != "denied"
	r.caps.objectEncoding = perm["OBJECT ENCODING"].Status != "denied"
	var refused []string
	for i, name := range sniffCmdNames {
		if perm[name].Status == "denied" {
			r.caps.sniffRefused[i] = true
			refused = append(refused, sniffCmdACL[i])
		}
	}
	if len(denied) > 0 {
		add("permissions", StatusWarn, "the connected user may not run: %s. See docs/permissions.md", strings.Join(denied, "; "))
	} else {
		add("permissions", StatusOK, "every command checked is allowed")
	}
	if !r.caps.memoryUsage {
		add("memory usage", StatusWarn, "MEMORY USAGE is refused (grant +memory|usage): bytes are not measured, sizing advice is unavailable")
	}
	if len(refused) > 0 {
		add("value sniffing", StatusInfo, "%s refused (grant %s): proposals for unknown patterns read no values of those types (HSCAN replaces HRANDFIELD where allowed) and use names, types, TTLs and encodings for them",
			strings.Join(refused, " "), strings.Join(refused, " "))
	}
	if !r.caps.objectEncoding {
		add("object encoding", StatusWarn, "OBJECT ENCODING is refused (grant +object|encoding): counters cannot be recognised")
	}

	nke, err := c.ConfigGet(ctx, "notify-keyspace-events").Result()
	switch {
	case err != nil:
		e := redisconn.Explain(err, "legacy", addr)
		var re *redisconn.Error
		if errors.As(e, &re) && re.Kind == redisconn.NoPerm {
			add("notify-keyspace-events", StatusWarn, "cannot read it: CONFIG GET refused (grant +config|get); migrate --dual-write needs notify-keyspace-events to include E and all classes (EA; K is not needed); set it yourself if CONFIG is not available")
		} else {
			add("notify-keyspace-events", StatusWarn, "cannot read it (%v); migrate --dual-write needs E and all classes (EA; K is not needed)", e)
		}
	default:
		v := nke["notify-keyspace-events"]
		if dualwrite.NotifySufficient(v) {
			add("notify-keyspace-events", StatusOK, "%q already publishes every key event", v)
		} else {
			add("notify-keyspace-events", StatusInfo, "%q: migrate --dual-write needs E and all classes (EA; K is not needed); it sets it when CONFIG SET is allowed and restores %q afterwards", v, v)
		}
	}
	return r, nil
}

// checkPermissions asks ACL DRYRUN (Redis ≥ 7.0) whether the connected user
// may run each Needed command; when DRYRUN itself is not allowed it sends the
// harmless probe and looks for NOPERM (ACL is checked before a command
// runs, so the probe's own outcome does not matter).
func checkPermissions(ctx context.Context, c *redis.Client) []Permission {
	out := make([]Permission, len(Needed))
	user, err := c.Do(ctx, "acl", "whoami").Text()
	dryrun := err == nil
	for i, n := range Needed {
		p := Permission{Command: n.Command, ACL: n.ACL, For: n.For, Status: "unchecked"}
		args := n.Probe
		if args == nil {
			switch n.Command {
			case "PSUBSCRIBE":
				args = []any{"psubscribe", "__keyevent@0__:*"}
			case "CONFIG SET":
				args = []any{"config", "set", "notify-keyspace-events", "EA"}
			case "MULTI/EXEC":
				args = []any{"multi"}
			}
		}
		if dryrun {
			res, err := c.Do(ctx, append([]any{"acl", "dryrun", user}, args...)...).Text()
			switch {
			case err == nil && res == "OK":
				p.Status = "allowed"
			case err == nil:
				p.Status, p.Detail = "denied", res
			default:
				// ACL DRYRUN refused (NOPERM) or unavailable: probe instead.
				dryrun = false
			}
		}
		if p.Status == "unchecked" && !dryrun && n.Probe != nil {
			err := c.Do(ctx, n.Probe...).Err()
			switch {
			case err != nil && strings.HasPrefix(err.Error(), "NOPERM"):
				p.Status, p.Detail = "denied", err.Error()
			case err != nil && strings.HasPrefix(err.Error(), "ERR unknown command"):
				p.Status, p.Detail = "denied", "command disabled or renamed on this server"
			default:
				p.Status = "allowed"
			}
		}
		if p.Status == "unchecked" && p.Detail == "" {
			p.Detail = "cannot be checked without ACL DRYRUN (needs +acl|dryrun)"
		}
		out[i] = p
	}
	return out
}
