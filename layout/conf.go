package layout

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// confWriter writes a redis.conf: directives, each after a short comment
// saying why it has that value for this workload.
type confWriter struct{ b strings.Builder }

// c writes a comment, wrapped at about 100 columns.
func (w *confWriter) c(text string) {
	line := "#"
	for _, word := range strings.Fields(text) {
		if len(line)+1+len(word) > 100 && line != "#" {
			w.b.WriteString(line + "\n")
			line = "#"
		}
		line += " " + word
	}
	w.b.WriteString(line + "\n")
}

// d writes a directive; arguments are quoted when Redis would split them.
func (w *confWriter) d(name string, args ...string) {
	w.b.WriteString(name)
	for _, a := range args {
		w.b.WriteString(" " + confQuote(a))
	}
	w.b.WriteString("\n")
}

func (w *confWriter) nl() { w.b.WriteString("\n") }

func (w *confWriter) bytes() []byte { return []byte(w.b.String()) }

func confQuote(a string) string {
	if a != "" && !strings.ContainsAny(a, " \t\"'\\#") {
		return a
	}
	return strconv.Quote(a)
}

func mb(n int64) string { return fmt.Sprintf("%dmb", n/mib) }

// header starts every server config: what it is, how it starts, the
// workload's profile.
func (l *Layout) header(w *confWriter, s Server, what string) {
	w.c(fmt.Sprintf("redisplit targets init: %s, %s.", what, s.Addr()))
	start := strings.Replace(s.StartCommand(), s.Conf, "THIS_FILE", 1)
	if s.Sentinel() {
		w.c("Start: " + start + ". A sentinel rewrites this file to record what it learns (epochs, replicas, other sentinels): it must stay writable.")
	} else {
		w.c("Start: " + start + " (one data directory per server).")
	}
	w.c(s.Bucket + ": " + profiles[s.Bucket].description + ".")
	w.nl()
}

// network writes port, bind, announce and keepalive settings.
func (l *Layout) network(w *confWriter, s Server) {
	o := l.opts
	w.d("port", strconv.Itoa(s.Port))
	if o.Bind != "" {
		w.c("The whole layout runs on one address (--bind), each server on its own port.")
		w.d("bind", o.Bind)
	} else {
		w.c("Listen on every interface: this server is the host " + s.Host + "; firewall the port to the application and redisplit.")
		w.d("bind", "0.0.0.0")
		if o.NoAuth {
			w.c("--no-auth trial: without a password, protected mode would refuse every client but localhost.")
			w.d("protected-mode", "no")
		}
	}
	if !s.Sentinel() {
		w.c("Find dead clients (and keep firewall and NAT state) within a minute.")
		w.d("tcp-keepalive", "60")
	}
	w.c("Relative to --dir: each server keeps its pid and log next to its data.")
	w.d("pidfile", "redis.pid")
	w.d("logfile", "redis.log")
	w.nl()
}

// memory writes maxmemory and the bucket's policy.
func (l *Layout) memory(w *confWriter, s Server) {
	st := l.store(s.Bucket)
	p := profiles[s.Bucket]
	w.c(fmt.Sprintf("Sized from the scan: %s.", st.Sizing))
	w.d("maxmemory", mb(st.MaxMemory))
	if p.evicts {
		w.c("When full, evict the least recently used key, whatever its TTL: every cache key may be lost.")
		w.d("maxmemory-policy", p.policy)
		w.c("Sample 10 keys per eviction: a closer LRU for a little CPU.")
		w.d("maxmemory-samples", "10")
		w.c("Free evicted and expired values in a background thread: eviction never stalls requests.")
		w.d("lazyfree-lazy-eviction", "yes")
		w.d("lazyfree-lazy-expire", "yes")
	} else {
		w.c("Never evict: when full, writes fail with OOM (loud) instead of " + s.Bucket + " keys vanishing (silent). Watch used_memory against maxmemory.")
		w.d("maxmemory-policy", p.policy)
		w.c("Free expired values in a background thread.")
		w.d("lazyfree-lazy-expire", "yes")
	}
	w.nl()
}

// persistence writes the bucket's persistence.
func (l *Layout) persistence(w *confWriter, s Server) {
	switch profiles[s.Bucket].aof {
	case persistNone:
		w.c("No persistence: a restarted node starts empty and refills from the application; no fork, no disk writes.")
		w.d("save", "")
		w.d("appendonly", "no")
	case persistAOF:
		what := "a session write"
		if s.Bucket == "queue" {
			what = "a pushed job"
		}
		w.c(fmt.Sprintf("AOF, fsync every second: a crash loses at most one second of writes, never %s acknowledged earlier. appendfsync always would lose none, at a large cost in throughput.", what))
		w.d("appendonly", "yes")
		w.d("appendfsync", "everysec")
		w.c("Rewrite the AOF when it doubles (and is over 64 MB), with an RDB preamble: restarts load fast.")
		w.d("auto-aof-rewrite-percentage", "100")
		w.d("auto-aof-rewrite-min-size", "64mb")
		w.d("aof-use-rdb-preamble", "yes")
		w.c("RDB snapshots too: backups, and a base for full resyncs.")
		w.d("save", "3600 1 300 100 60 10000")
	case persistOptional:
		w.c("Counters rebuild within one window, so no AOF; an RDB snapshot every minute (when 1000 counters changed) or 5 minutes limits what a restart resets.")
		w.d("appendonly", "no")
		w.d("save", "300 1 60 1000")
	}
	w.nl()
}

// events writes the keyspace notifications the live phase needs.
func (l *Layout) events(w *confWriter) {
	w.c("Key events of every class: after cutover redisplit follows this store's writes (__keyevent@*) to keep legacy current for a rollback.")
	w.d("notify-keyspace-events", "EA")
	w.nl()
}

// rewriteNote is written into every config that includes a secrets
// snippet (Server.Private).
const rewriteNote = "This file includes a secret snippet: when the server rewrites it (a sentinel at start, a data server at the CONFIG REWRITE a failover sends) the password lands here in clear, in a file Redis creates with mode 0644 minus its umask. Start it under umask 077 (as the Start line says), and keep the running copy out of version control."

// auth writes the ACL file reference and, for the servers that replicate
// with a password (Server.Private), the include of the snippet holding
// masterauth.
func (l *Layout) auth(w *confWriter, s Server) {
	o := l.opts
	if o.NoAuth {
		w.c("--no-auth: no password; for a local trial only. acl/" + s.Bucket + ".acl shows the users a real layout gets.")
		w.nl()
		return
	}
	users := strings.Join(usersOf(s.Bucket, o), ", ")
	w.c(fmt.Sprintf("Users %s: rules and SHA-256 password hashes in the ACL file (default = the application; redisplit = only the commands redisplit runs here, docs/permissions.md; replication = replicas and sentinels). Redis allows no comments in an ACL file, so they are here.", users))
	w.d("aclfile", filepath.Join(l.installDir(), "acl", s.Bucket+".acl"))
	if s.Private {
		w.c("masteruser/masterauth hold a password in clear, so they live in the secrets directory (install-secrets.sh writes them from the password files), never in this layout.")
		w.c(rewriteNote)
		w.d("include", l.snippet(s.Bucket+"-replication.conf"))
	}
	w.nl()
}

func (l *Layout) installDir() string { return l.opts.InstallDir }

func (l *Layout) snippet(name string) string { return filepath.Join(l.opts.Secrets, name) }

func (l *Layout) cacheFiles() []File {
	o := l.opts
	nodes := l.serversOf("cache")
	var files []File
	for i, s := range nodes {
		w := &confWriter{}
		role := "master"
		if s.Role == "cluster-replica" {
			role = "replica"
		}
		l.header(w, s, fmt.Sprintf("cache cluster node %d of %d (%s after create-cluster.sh)", i+1, len(nodes), role))
		l.network(w, s)
		w.c(fmt.Sprintf("Redis Cluster of %d masters with %d replica(s) each; every node has the same settings, so a failover changes nothing.", o.CacheMasters, o.CacheReplicas))
		w.d("cluster-enabled", "yes")
		w.c("Relative to --dir: each node keeps its own cluster state.")
		w.d("cluster-config-file", "nodes.conf")
		w.c("5 s: a dead master is replaced quickly; a needless failover costs only cache misses.")
		w.d("cluster-node-timeout", "5000")
		w.c("A shard that is down must not stop the others serving: the cache degrades instead of failing.")
		w.d("cluster-require-full-coverage", "no")
		if o.Bind != "" {
			w.c("Announce the address clients must use in MOVED replies and to the other nodes.")
			w.d("cluster-announce-ip", o.Bind)
		} else {
			w.c("Announce the host name in MOVED replies (clients resolve it), not an address that may change.")
			w.d("cluster-announce-hostname", s.Host)
			w.d("cluster-preferred-endpoint-type", "hostname")
		}
		w.nl()
		l.memory(w, s)
		l.persistence(w, s)
		l.events(w)
		l.auth(w, s)
		files = append(files, File{Path: fmt.Sprintf("cache/node-%d.conf", i+1), Mode: 0o644, Content: w.bytes()})
	}
	files = append(files, l.createCluster(nodes))
	return files
}

func (l *Layout) createCluster(nodes []Server) File {
	o := l.opts
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	fmt.Fprintf(&b, "# redisplit targets init: creates the cache cluster once every node runs: %d masters\n", o.CacheMasters)
	fmt.Fprintf(&b, "# (node-1..node-%d: redis-cli makes the first nodes masters, 16384/%d slots each)", o.CacheMasters, o.CacheMasters)
	if o.CacheReplicas > 0 {
		fmt.Fprintf(&b, "\n# and %d replica(s) per master (the other nodes)", o.CacheReplicas)
	}
	b.WriteString(".\n# Run it once; on a cluster already created it fails without changing anything.\nset -eu\n")
	if !o.NoAuth {
		b.WriteString("# As the default (application) user: redisplit's own user may not run CLUSTER ADDSLOTS or MEET.\n")
		fmt.Fprintf(&b, "REDISCLI_AUTH=$(head -n 1 %s)\nexport REDISCLI_AUTH\n", shQuote(passwordFile(o, "cache", "default")))
	}
	var addrs []string
	if o.Bind == "" {
		b.WriteString("# CLUSTER MEET needs addresses: resolve the node names.\n")
		b.WriteString("ip() { getent hosts \"$1\" | awk '{ print $1; exit }'; }\n")
		for _, s := range nodes {
			addrs = append(addrs, fmt.Sprintf("\"$(ip %s):%d\"", s.Host, s.Port))
		}
	} else {
		for _, s := range nodes {
			addrs = append(addrs, s.Addr())
		}
	}
	fmt.Fprintf(&b, "exec redis-cli --cluster create %s --cluster-replicas %d --cluster-yes\n", strings.Join(addrs, " "), o.CacheReplicas)
	return File{Path: "cache/create-cluster.sh", Mode: 0o755, Content: []byte(b.String())}
}

func (l *Layout) sessionFiles() []File {
	o := l.opts
	var files []File
	master := l.serversOf("session", "master")[0]
	replicas := l.serversOf("session", "replica")
	for _, s := range append([]Server{master}, replicas...) {
		w := &confWriter{}
		what := "session master"
		if s.Role == "replica" {
			what = "session replica"
		}
		l.header(w, s, what)
		l.network(w, s)
		if s.Role == "replica" {
			w.c("Replicate the master; Sentinel moves this line when it fails over.")
			w.d("replicaof", master.Host, strconv.Itoa(master.Port))
		}
		w.c("Replicas serve no writes: a write there would be lost at the next resync.")
		w.d("replica-read-only", "yes")
		if o.Bind == "" {
			w.c("Announce the host name: sentinels and clients reach this server by it.")
			w.d("replica-announce-ip", s.Host)
		}
		w.nl()
		l.memory(w, s)
		l.persistence(w, s)
		l.events(w)
		l.auth(w, s)
		name := "session/master.conf"
		if s.Role == "replica" {
			name = "session/" + strings.TrimPrefix(s.Name, "session-") + ".conf"
		}
		files = append(files, File{Path: name, Mode: 0o644, Content: w.bytes()})
	}
	sentinels := l.serversOf("session", "sentinel")
	quorum := len(sentinels)/2 + 1
	for i, s := range sentinels {
		w := &confWriter{}
		l.header(w, s, fmt.Sprintf("session sentinel %d of %d", i+1, len(sentinels)))
		l.network(w, s)
		if o.Bind != "" {
			w.c("Announce the address the other sentinels and clients must use.")
			w.d("sentinel", "announce-ip", o.Bind)
		} else {
			w.c("Use and announce host names: addresses may change, names do not.")
			w.d("sentinel", "resolve-hostnames", "yes")
			w.d("sentinel", "announce-hostnames", "yes")
			w.d("sentinel", "announce-ip", s.Host)
		}
		w.c(fmt.Sprintf("Quorum %d of %d: a failover needs a majority, so one sentinel (or its machine) lost changes nothing.", quorum, len(sentinels)))
		w.d("sentinel", "monitor", o.MasterName, master.Host, strconv.Itoa(master.Port), strconv.Itoa(quorum))
		w.c("5 s without an answer marks the master down: logins fail while it is gone, so fail over in seconds, not the default 30 s.")
		w.d("sentinel", "down-after-milliseconds", o.MasterName, "5000")
		w.c("Give up a stuck failover after 60 s and let another sentinel try.")
		w.d("sentinel", "failover-timeout", o.MasterName, "60000")
		w.c("One replica resyncs with the new master at a time: the others keep serving.")
		w.d("sentinel", "parallel-syncs", o.MasterName, "1")
		if s.Private {
			w.c("auth-user/auth-pass (the replication user) hold a password in clear: they live in the secrets directory (install-secrets.sh), never in this layout.")
			w.c(rewriteNote)
			w.d("include", l.snippet("session-sentinel.conf"))
		}
		files = append(files, File{Path: fmt.Sprintf("session/sentinel-%d.conf", i+1), Mode: 0o644, Content: w.bytes()})
	}
	return files
}

func (l *Layout) standalone(s Server, what string) []byte {
	w := &confWriter{}
	l.header(w, s, what)
	l.network(w, s)
	l.memory(w, s)
	l.persistence(w, s)
	l.events(w)
	l.auth(w, s)
	return w.bytes()
}

func (l *Layout) queueFiles() []File {
	if l.opts.Queue == "sqs" {
		return l.sqsFiles()
	}
	s := l.serversOf("queue")[0]
	return []File{{Path: "queue/queue.conf", Mode: 0o644, Content: l.standalone(s, "queue store")}}
}

func (l *Layout) ratelimitFiles() []File {
	s := l.serversOf("ratelimit")[0]
	return []File{{Path: "ratelimit/ratelimit.conf", Mode: 0o644, Content: l.standalone(s, "rate-limit store")}}
}

// usersOf returns the ACL users of a bucket's servers.
func usersOf(bucket string, o Options) []string {
	u := []string{"default", "redisplit"}
	if bucket == "session" || bucket == "cache" && o.CacheReplicas > 0 {
		u = append(u, "replication")
	}
	return u
}

// redisplitRules are the ACL rules of redisplit's own user on a target of
// bucket: exactly the target commands docs/permissions.md lists for
// migrate, verify, rollback and targets check, and no more.
func redisplitRules(bucket string, v version) string {
	r := []string{
		"~*", "resetchannels", "-@all",
		// connecting and selecting the database
		"+ping", "+hello", "+auth", "+select",
		// migrate: preflight, non-empty check, the copy, big keys and the logical fallback
		"+info", "+dbsize", "+scan", "+type", "+exists", "+restore",
		"+del", "+set", "+append", "+hset", "+sadd", "+zadd", "+rpush", "+xadd", "+xsetid", "+xgroup", "+xclaim", "+pexpireat",
		// verify: every read it compares with; never KEYS (it blocks the server; SCAN is used)
		"+@read", "-keys",
		// rollback
		"+unlink",
		// targets check
		"+config|get",
	}
	switch bucket {
	case "session":
		r = append(r, "+wait") // every batch acknowledged by the replica
	case "cache":
		r = append(r, "+cluster|slots", "+cluster|info", "+cluster|nodes")
		if v.atLeast(7, 0) {
			r = append(r, "+cluster|shards")
		}
	}
	return strings.Join(r, " ")
}

// replicationRules: replicas sync with PSYNC; sentinels monitor, reconfigure
// and fail over (the rules Redis's Sentinel documentation lists).
func replicationRules(bucket string) string {
	r := "resetchannels -@all +psync +replconf +ping"
	if bucket == "session" {
		r = "resetchannels &__sentinel__:hello -@all +psync +replconf +ping +multi +exec +slaveof +replicaof +config|rewrite +role +publish +subscribe +info +client|setname +client|kill +script|kill"
	}
	return r
}

func (l *Layout) aclFiles() []File {
	o := l.opts
	v := parseVersion(o.RedisVersion)
	var files []File
	for _, b := range []string{"cache", "session", "queue", "ratelimit"} {
		if b == "queue" && o.Queue == "sqs" {
			continue
		}
		var lines []string
		for _, u := range usersOf(b, o) {
			pw := ""
			if !o.NoAuth {
				if h := o.Hashes[passwordFile(o, b, u)]; h != "" {
					pw = " #" + h
				} else {
					l.Warnings = append(l.Warnings, fmt.Sprintf("acl/%s.acl: user %s has no password (it cannot log in): %s is missing or empty here; create it and rerun targets init, or set it at deploy with ACL SETUSER %s \">...\" and ACL SAVE",
						b, u, passwordFile(o, b, u), u))
				}
			}
			var rules string
			switch u {
			case "default":
				rules = "~* &* +@all"
			case "redisplit":
				rules = redisplitRules(b, v)
			case "replication":
				rules = replicationRules(b)
			}
			lines = append(lines, fmt.Sprintf("user %s on%s %s", u, pw, rules))
		}
		files = append(files, File{Path: "acl/" + b + ".acl", Mode: 0o644, Content: []byte(strings.Join(lines, "\n") + "\n")})
	}
	return files
}

func (l *Layout) installSecrets() File {
	o := l.opts
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	b.WriteString("# redisplit targets init: run on each server, as the user Redis runs as, once the password\n")
	b.WriteString("# files are in the secrets directory. It writes the snippets that must hold a password in\n")
	b.WriteString("# clear (masterauth for replicas, auth-pass for sentinels), mode 0600, next to them: nothing\n")
	b.WriteString("# secret is in this layout.\nset -eu\numask 077\n")
	fmt.Fprintf(&b, "S=%s\n", shQuote(o.Secrets))
	b.WriteString("pw() {\n\tp=$(head -n 1 \"$S/$1\" | tr -d '\\r')\n")
	b.WriteString("\tcase $p in ''|*'\"'*|*'\\'*) echo \"$S/$1: empty, or holds a quote or a backslash (not allowed in a Redis config)\" >&2; exit 1 ;; esac\n")
	b.WriteString("\tprintf '%s' \"$p\"\n}\n")
	snip := func(bucket string) {
		fmt.Fprintf(&b, "p=$(pw %s-replication.password)\n", bucket)
		fmt.Fprintf(&b, "printf 'masteruser replication\\nmasterauth \"%%s\"\\n' \"$p\" > \"$S/%s-replication.conf\"\n", bucket)
	}
	snip("session")
	fmt.Fprintf(&b, "printf 'sentinel auth-user %s replication\\nsentinel auth-pass %s \"%%s\"\\n' \"$p\" > \"$S/session-sentinel.conf\"\n", o.MasterName, o.MasterName)
	if o.CacheReplicas > 0 {
		snip("cache")
	}
	return File{Path: "install-secrets.sh", Mode: 0o755, Content: []byte(b.String())}
}

func shQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]#~=%;&|<>(){}!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
