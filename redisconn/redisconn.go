// Package redisconn opens connections to legacy and target Redis servers from
// their configuration and turns low-level failures into errors that name the
// host, the cause and what to do. Passwords never appear in its errors.
package redisconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/config"
)

// goRedisLogger sends go-redis's own log lines (pool dial retries, ...) to
// slog at debug level: the operator sees one explained error, not the
// client library's retries (--verbose shows them).
type goRedisLogger struct{}

func (goRedisLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.DebugContext(ctx, "go-redis: "+redact(fmt.Sprintf(format, v...)))
}

func init() { redis.SetLogger(goRedisLogger{}) }

// Error is a connection or command failure explained for an operator: one
// line naming the server's role and address, the class of the failure, the
// cause and what to do.
type Error struct {
	Role    string // "legacy", "target cache", ...; decides Side
	Addr    string // host:port
	Kind    Class
	Command string // for NoPerm: the refused command, e.g. "config|get"
	Hint    string // what to do
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s", e.Role, e.Addr, e.Kind)
	if e.Command != "" {
		fmt.Fprintf(&b, " for command %s", strings.ToUpper(e.Command))
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", redact(e.Err.Error()))
	}
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	// one line, whatever the cause says (errors.Join separates with newlines)
	return strings.ReplaceAll(b.String(), "\n", "; ")
}

func (e *Error) Unwrap() error { return e.Err }

// Explain classifies err (Classify), raised while talking to addr in the
// given role, and returns an *Error with what to do for the classes an
// operator must act on: Unreachable, Timeout, Auth, NoPerm, TLSFailure and
// NotRedis. Any other error, nil, redis.Nil and errors already explained
// are returned unchanged.
func Explain(err error, role, addr string) error {
	if err == nil || err == redis.Nil {
		return err
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	out := &Error{Role: role, Addr: addr, Kind: Classify(err), Err: err}
	var opErr *net.OpError
	switch out.Kind {
	case Auth:
		out.Hint = "check the user and password (URL, *_PASSWORD environment variable or password_file)"
	case NoPerm:
		out.Command = refusedCommand(err.Error())
		out.Hint = permissionHint(out.Command)
	case TLSFailure:
		out.Hint = "check rediss:// versus redis://, the CA file, the client certificate and tls.server_name"
	case Timeout:
		out.Hint = "the server did not answer in time; raise connect_timeout/read_timeout or check its load"
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			out.Hint = "check the host and port, and that a firewall lets this machine through"
		}
	case Unreachable:
		out.Hint = "check the host and port, and that the server is running"
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			out.Hint = "check the host and port, and that a firewall lets this machine through"
		}
	case NotRedis:
		out.Hint = "something else listens on this port, it did not answer in the Redis protocol: check the host and port"
		if m := err.Error(); strings.Contains(m, "HTTP") || strings.Contains(m, "<") {
			out.Hint = "a web server listens on this port, it answered HTTP: check the host and port"
		}
	default:
		return err
	}
	return out
}

// Attribute is Explain that always attributes: it returns err as an *Error
// of role and addr (Explain's when it explains err, else one that carries
// Classify's class and no hint), so that the side the error came from
// travels with it (SideOf). nil stays nil; an *Error is returned unchanged.
func Attribute(err error, role, addr string) error {
	if err == nil {
		return nil
	}
	ex := Explain(err, role, addr)
	var e *Error
	if errors.As(ex, &e) {
		return ex
	}
	return &Error{Role: role, Addr: addr, Kind: Classify(err), Err: err}
}

// refusedCommand extracts the command from an ACL error such as
// "NOPERM User u has no permissions to run the 'config|get' command".
func refusedCommand(msg string) string {
	i := strings.Index(msg, "'")
	if i < 0 {
		return ""
	}
	j := strings.Index(msg[i+1:], "'")
	if j < 0 {
		return ""
	}
	return msg[i+1 : i+1+j]
}

// permissionHint names the ACL rule that grants cmd.
func permissionHint(cmd string) string {
	if cmd == "" {
		return "the Redis user lacks a permission; see docs/permissions.md"
	}
	return fmt.Sprintf("grant it with ACL SETUSER <user> +%s; see docs/permissions.md", strings.ToLower(cmd))
}

// redact removes any password that a URL inside msg may carry.
func redact(msg string) string {
	for _, scheme := range []string{"redis://", "rediss://"} {
		for off := 0; ; {
			i := strings.Index(msg[off:], scheme)
			if i < 0 {
				break
			}
			start := off + i + len(scheme)
			end := strings.IndexAny(msg[start:], " \t\n\"'")
			if end < 0 {
				end = len(msg) - start
			}
			msg = msg[:start] + RedactURL(scheme + msg[start:start+end])[len(scheme):] + msg[start+end:]
			off = start
		}
	}
	return msg
}

// RedactURL returns u with any password replaced by "xxxxx".
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return redactUserinfo(u)
	}
	if p.User == nil {
		return u
	}
	if _, ok := p.User.Password(); ok {
		p.User = url.UserPassword(p.User.Username(), "xxxxx")
	}
	return p.String()
}

// redactUserinfo hides the password of a URL that does not parse: whatever
// lies between the first ':' after "scheme://" and the last '@' of the
// authority.
func redactUserinfo(u string) string {
	i := strings.Index(u, "://")
	if i < 0 {
		return u
	}
	rest := u[i+3:]
	auth := rest
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		auth = rest[:j]
	}
	at := strings.LastIndex(auth, "@")
	if at < 0 {
		return u
	}
	c := strings.Index(auth[:at], ":")
	if c < 0 {
		return u
	}
	return u[:i+3] + auth[:c+1] + "xxxxx" + rest[at:]
}

// tlsConfig builds the TLS configuration of an endpoint, or nil when TLS is off.
func tlsConfig(t config.TLS, useTLS bool, host string) (*tls.Config, error) {
	if !useTLS && !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.ServerName != "" {
		c.ServerName = t.ServerName
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, config.Errorf("tls.ca_file", "cannot read %s: %v", t.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, config.Errorf("tls.ca_file", "%s holds no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, config.Errorf("tls.cert_file", "cannot load client certificate: %v", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Options turns an endpoint into go-redis options. field names the setting
// in errors ("legacy", "targets.ratelimit").
func Options(e config.Endpoint, field string) (*redis.Options, error) {
	if e.URL == "" {
		return nil, config.Errorf(field+".url", "missing; give redis://[user[:password]@]host:port[/db]")
	}
	opt, err := redis.ParseURL(e.URL)
	if err != nil {
		return nil, config.Errorf(field+".url", "%s: %v", RedactURL(e.URL), redact(err.Error()))
	}
	if opt.Password == "" {
		pw, err := e.ResolvePassword()
		if err != nil {
			return nil, err
		}
		opt.Password = pw
	}
	if opt.Username == "" {
		opt.Username = e.Username
	}
	host, _, _ := net.SplitHostPort(opt.Addr)
	tc, err := tlsConfig(e.TLS, opt.TLSConfig != nil, host)
	if err != nil {
		return nil, err
	}
	opt.TLSConfig = tc
	applyTimeouts(e, &opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout)
	opt.DisableIdentity = true
	opt.Protocol = Protocol
	return opt, nil
}

// Protocol is the RESP version of every connection redisplit opens: 2.
// Nothing here needs RESP3 push messages (keyspace notifications arrive on
// a RESP2 Pub/Sub connection as well), and on RESP3 connections go-redis
// looks for pending pushes before every reply, which cost about a tenth of
// migrate's CPU.
const Protocol = 2

func applyTimeouts(e config.Endpoint, dial, read, write *time.Duration) {
	*dial = orDefault(e.ConnectTimeout, 5*time.Second)
	*read = orDefault(e.ReadTimeout, 10*time.Second)
	*write = *read
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Legacy connects to the legacy instance and checks the connection with PING.
// The returned error is an *Error (or a *config.Error for bad settings).
func Legacy(ctx context.Context, e config.Endpoint) (*redis.Client, error) {
	opt, err := Options(e, "legacy")
	if err != nil {
		return nil, err
	}
	opt.PoolSize = 16
	opt.MaxRetries = 2
	opt.DialerRetries = 2 // fail fast on a wrong host or a TLS mismatch; commands still retry
	c := redis.NewClient(opt)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, explainTLS(Explain(err, "legacy", opt.Addr), opt.TLSConfig != nil)
	}
	return c, nil
}

// explainTLS turns a timeout on a TLS connection into a TLS failure: a plain
// (non-TLS) Redis port never answers a TLS ClientHello, so the handshake
// times out instead of failing.
func explainTLS(err error, useTLS bool) error {
	var e *Error
	if useTLS && errors.As(err, &e) && (e.Kind == Timeout || e.Kind == Unreachable && strings.Contains(e.Error(), "EOF")) {
		e.Kind = TLSFailure
		e.Hint = "no TLS handshake completed: is this a plain (non-TLS) port? use redis:// instead of rediss://, or check tls settings"
	}
	return err
}

// Target connects to the store of one bucket: a standalone server, a Redis
// Cluster (ClusterClient: follows MOVED/ASK and topology changes) or a
// Sentinel-managed master (FailoverClient: follows failovers). The connection
// is checked with PING.
func Target(ctx context.Context, bucket string, t config.Target) (redis.UniversalClient, error) {
	role := "target " + bucket
	field := "targets." + bucket
	var (
		c    redis.UniversalClient
		addr string
	)
	switch t.Kind {
	case config.KindStandalone:
		opt, err := Options(t.Endpoint, field)
		if err != nil {
			return nil, err
		}
		opt.PoolSize = 32
		opt.MaxRetries = 3
		c, addr = redis.NewClient(opt), opt.Addr
	case config.KindCluster:
		pw, err := t.ResolvePassword()
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(t.Addrs[0])
		tc, err := tlsConfig(t.TLS, false, host)
		if err != nil {
			return nil, err
		}
		opt := &redis.ClusterOptions{Addrs: t.Addrs, Username: t.Username, Password: pw, TLSConfig: tc,
			PoolSize: 32, MaxRedirects: 8, MaxRetries: 5, DisableIdentity: true, Protocol: Protocol}
		applyTimeouts(t.Endpoint, &opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout)
		c, addr = redis.NewClusterClient(opt), strings.Join(t.Addrs, ",")
	case config.KindSentinel:
		pw, err := t.ResolvePassword()
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(t.Sentinels[0])
		tc, err := tlsConfig(t.TLS, false, host)
		if err != nil {
			return nil, err
		}
		opt := &redis.FailoverOptions{MasterName: t.Master, SentinelAddrs: t.Sentinels,
			SentinelUsername: t.SentinelUsername, SentinelPassword: t.SentinelPassword,
			Username: t.Username, Password: pw, DB: t.DB, TLSConfig: tc, PoolSize: 32, MaxRetries: 5,
			DisableIdentity: true, Protocol: Protocol}
		applyTimeouts(t.Endpoint, &opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout)
		c, addr = redis.NewFailoverClient(opt), t.Master+"@"+strings.Join(t.Sentinels, ",")
	default:
		return nil, config.Errorf(field+".kind", "%q is not a Redis target kind", t.Kind)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		switch {
		case t.Kind == config.KindCluster && strings.Contains(err.Error(), "cluster support disabled"):
			return nil, &Error{Role: role, Addr: addr, Kind: Misconfigured, Err: err,
				Hint: fmt.Sprintf("%s.kind is cluster but this server runs without cluster mode: for a standalone server write kind: standalone and url: redis://%s; for a cluster list its nodes in %s.addrs", field, t.Addrs[0], field)}
		case t.Kind == config.KindSentinel:
			if e := unknownMaster(ctx, t, role, addr, field); e != nil {
				return nil, e
			}
		}
		return nil, Explain(err, role, addr)
	}
	return c, nil
}

// unknownMaster asks t's sentinels which masters they monitor and returns
// an *Error (Misconfigured) when those that answer know none named
// t.Master; nil when no sentinel answers or one knows the master (the
// failure is then the master's, for Explain).
func unknownMaster(ctx context.Context, t config.Target, role, addr, field string) error {
	host, _, _ := net.SplitHostPort(t.Sentinels[0])
	tc, _ := tlsConfig(t.TLS, false, host)
	var names []string
	answered := false
	for _, sa := range t.Sentinels {
		opt := &redis.Options{Addr: sa, Username: t.SentinelUsername, Password: t.SentinelPassword, TLSConfig: tc,
			DisableIdentity: true, Protocol: Protocol, MaxRetries: -1}
		applyTimeouts(t.Endpoint, &opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout)
		sc := redis.NewSentinelClient(opt)
		masters, err := sc.Masters(ctx).Result()
		sc.Close()
		if err != nil {
			continue
		}
		answered = true
		for _, m := range masters {
			fields, _ := m.([]any)
			for i := 0; i+1 < len(fields); i += 2 {
				if k, _ := fields[i].(string); k == "name" {
					name, _ := fields[i+1].(string)
					if name == t.Master {
						return nil
					}
					if !slices.Contains(names, name) {
						names = append(names, name)
					}
				}
			}
		}
	}
	if !answered {
		return nil
	}
	found := fmt.Sprintf("no sentinel monitors a master named %q", t.Master)
	hint := fmt.Sprintf("set %s.master to the name the sentinels monitor (SENTINEL MASTERS)", field)
	if len(names) == 0 {
		found += "; they monitor no master at all"
		hint = "configure the sentinels to monitor the master (sentinel monitor NAME HOST PORT QUORUM), or fix " + field + ".sentinels"
	} else {
		found += fmt.Sprintf("; they monitor %q", names)
		if len(names) == 1 {
			hint = fmt.Sprintf("set %s.master: %s", field, names[0])
		}
	}
	return &Error{Role: role, Addr: addr, Kind: Misconfigured, Err: errors.New(found), Hint: hint}
}
