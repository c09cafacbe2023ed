package cmd

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redisplit/redisplit/topology/topotest"
)

// cli runs redisplit args in-process (no terminal) and returns the exit code
// and streams.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	app := &App{In: strings.NewReader(""), Out: &out, Err: &errb}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := Run(ctx, app, args)
	return code, out.String(), errb.String()
}

// Configurations that point at the wrong thing fail with one line that
// names the bucket or role and the host, says what was found and what to
// do, and exits with the documented code.
func TestMisdirectedConfigErrors(t *testing.T) {
	legacy := topotest.Standalone(t)
	plain := topotest.Standalone(t)
	sent := topotest.Sentinel(t) // monitors "sessions"
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "<!DOCTYPE HTML>\n<html>hello</html>\n")
	}))
	defer web.Close()
	webAddr := strings.TrimPrefix(web.URL, "http://")

	dir := t.TempDir()
	config := func(name, yaml string) string {
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte(fmt.Sprintf("legacy: {url: 'redis://%s/0'}\nstate_dir: %s\nunknown: skip\n%s", legacy.Addr(), filepath.Join(dir, name+"-state"), yaml)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sentinels := strings.Join(sent.SentinelAddrs(), ", ")
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"wrong sentinel master name",
			[]string{"--config", config("sentinel", "targets: {session: {kind: sentinel, master: sesions, sentinels: ["+sentinels+"]}}"), "migrate", "--dry-run"},
			ExitRuntime, []string{"target session sesions@" + sent.SentinelAddrs()[0], `no sentinel monitors a master named "sesions"`, "set targets.session.master: sessions"}},
		{"cluster kind on a standalone server",
			[]string{"--config", config("cluster", "targets: {cache: {kind: cluster, addrs: ['"+plain.Addr()+"']}}"), "migrate", "--dry-run"},
			ExitRuntime, []string{"target cache " + plain.Addr(), "cluster support disabled", "targets.cache.kind is cluster", "kind: standalone and url: redis://" + plain.Addr()}},
		{"legacy URL at a web server",
			[]string{"--config", config("web", ""), "scan", "--legacy", "redis://" + webAddr},
			ExitRuntime, []string{"legacy " + webAddr + ": not a Redis server", "HTTP/1.1 400", "a web server listens on this port"}},
		{"target URL at a web server",
			[]string{"--config", config("webtarget", "targets: {queue: {kind: standalone, url: 'redis://"+webAddr+"/0'}}"), "migrate", "--dry-run"},
			ExitRuntime, []string{"target queue " + webAddr + ": not a Redis server"}},
		{"unknown config key",
			[]string{"--config", config("typo", "targets: {queue: {kind: standalone, url: 'redis://"+plain.Addr()+"/0', read_timeuot: 5s}}"), "scan"},
			ExitUsage, []string{"targets.queue.read_timeuot: unknown key in " + filepath.Join(dir, "typo.yaml"), "did you mean read_timeout?"}},
		{"duration without a unit",
			[]string{"--config", config("unit", "targets: {queue: {kind: standalone, url: 'redis://"+plain.Addr()+"/0', connect_timeout: 5}}"), "scan"},
			ExitUsage, []string{"targets.queue.connect_timeout: 5 has no unit; write 5s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := cli(t, append([]string{"--no-progress"}, tt.args...)...)
			t.Logf("exit %d: %s", code, errs)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, errs)
			}
			if lines := strings.Split(strings.TrimSpace(errs), "\n"); len(lines) != 1 {
				t.Errorf("%d lines on stderr, want one:\n%s", len(lines), errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q: %s", w, errs)
				}
			}
		})
	}
}
