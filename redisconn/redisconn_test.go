package redisconn

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/topology/topotest"
)

const secret = "Hunter2-Sup3r-Secret"

// TestLegacyErrors connects to real servers with bad settings and checks each
// failure is an *Error of the right kind that names the host, the refused
// command and what to do, and never contains a password.
func TestLegacyErrors(t *testing.T) {
	srv := topotest.Standalone(t, "--requirepass", secret)
	addr := srv.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := Legacy(ctx, config.Endpoint{URL: "redis://:" + secret + "@" + addr})
	if err != nil {
		t.Fatalf("good password refused: %v", err)
	}
	defer admin.Close()
	for _, u := range [][]any{
		{"acl", "setuser", "scanner", "on", ">" + secret, "~*", "&*", "+@all", "-config", "-memory"},
	} {
		if err := admin.Do(ctx, u...).Err(); err != nil {
			t.Fatal(err)
		}
	}

	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		ep      config.Endpoint
		command []any // run after connecting; nil: the connection itself must fail
		kind    Class
		want    []string
	}{
		{name: "unreachable host", ep: config.Endpoint{URL: "redis://127.0.0.1:1", ConnectTimeout: time.Second},
			kind: Unreachable, want: []string{"legacy 127.0.0.1:1", "check the host and port"}},
		{name: "wrong requirepass password", ep: config.Endpoint{URL: "redis://:wrong" + secret + "@" + addr},
			kind: Auth, want: []string{addr, "check the user and password"}},
		{name: "no password", ep: config.Endpoint{URL: "redis://" + addr},
			kind: Auth, want: []string{addr}},
		{name: "wrong ACL user password", ep: config.Endpoint{URL: "redis://scanner:wrong" + secret + "@" + addr},
			kind: Auth, want: []string{addr, "WRONGPASS"}},
		{name: "unknown ACL user", ep: config.Endpoint{URL: "redis://nobody:" + secret + "@" + addr},
			kind: Auth, want: []string{addr}},
		{name: "password from the environment setting, wrong", ep: config.Endpoint{URL: "redis://scanner@" + addr, Password: "x" + secret},
			kind: Auth, want: []string{addr}},
		{name: "ACL refuses CONFIG GET (password from password_file)", ep: config.Endpoint{URL: "redis://scanner@" + addr, PasswordFile: pwFile},
			command: []any{"config", "get", "maxmemory"}, kind: NoPerm, want: []string{"CONFIG|GET", "+config|get", "docs/permissions.md"}},
		{name: "ACL refuses MEMORY USAGE", ep: config.Endpoint{URL: "redis://scanner:" + secret + "@" + addr},
			command: []any{"memory", "usage", "k"}, kind: NoPerm, want: []string{"MEMORY|USAGE", "+memory|usage"}},
		{name: "TLS against a plain server", ep: config.Endpoint{URL: "rediss://:" + secret + "@" + addr, ConnectTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second},
			kind: TLSFailure, want: []string{addr, "rediss://"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Legacy(ctx, tt.ep)
			if tt.command != nil {
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				defer c.Close()
				err = Explain(c.Do(ctx, tt.command...).Err(), "legacy", addr)
			} else if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T %v is not an *Error", err, err)
			}
			if e.Kind != tt.kind {
				t.Fatalf("kind %q, want %q: %v", e.Kind, tt.kind, err)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, secret) {
				t.Fatalf("password in error: %s", msg)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, out string }{
		{"redis://user:pw@h:1/2", "redis://user:xxxxx@h:1/2"},
		{"rediss://:pw@h:1", "rediss://:xxxxx@h:1"},
		{"redis://h:1", "redis://h:1"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.out {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.out)
		}
	}
	msg := redact(`dial "redis://u:` + secret + `@h:1/0" failed; again redis://:` + secret + `@h:2`)
	if strings.Contains(msg, secret) {
		t.Fatalf("redact left the password: %s", msg)
	}
}

// TestBadURL: a malformed URL is a config error that does not echo the password.
func TestBadURL(t *testing.T) {
	_, err := Options(config.Endpoint{URL: "redis://u:" + secret + "@h:notaport/x"}, "legacy")
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%T %v, want *config.Error", err, err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("password in error: %v", err)
	}
}
