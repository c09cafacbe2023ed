package layout

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/topology"
)

// freeRun returns a base port with n consecutive free ports (no cluster
// node is started here, so no bus ports are needed).
func freeRun(t *testing.T, n int) int {
	t.Helper()
	for attempt := 0; attempt < 200; attempt++ {
		p, err := topology.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if p < 20000 || p+n > 55000 {
			continue
		}
		ok := true
		for i := 0; i < n && ok; i++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+i))
			ok = err == nil
			if ok {
				l.Close()
			}
		}
		if ok {
			return p
		}
	}
	t.Fatal("no run of free ports")
	return 0
}

// The session layout with passwords, started from the generated files as
// they are (master, replica, three sentinels) after install-secrets.sh, by
// their StartCommand: the sentinels and the replica authenticate with what
// the snippets hold (quorum, the replica known, a failover done), and no
// generated file holds a password. Running servers write the included
// secrets into their own config (a sentinel at once, every data server at
// the failover's CONFIG REWRITE), in a file of mode 0644 minus their umask:
// every such server is Private and starts under umask 077, so no file
// holding a password is readable by others.
func TestSessionSecretsStartAndStayPrivate(t *testing.T) {
	b, err := topology.NewProcessBackend(t.TempDir())
	if err != nil {
		t.Skip(err)
	}
	dir, secrets := t.TempDir(), t.TempDir()
	o := DefaultOptions()
	o.Bind, o.BasePort, o.Secrets, o.InstallDir = "127.0.0.1", freeRun(t, 13), secrets, dir
	rep := fixtureReport()
	pw := map[string]string{}
	for i, p := range PasswordFiles(rep, o) {
		pw[p] = fmt.Sprintf("Pw%d-%d", i, time.Now().UnixNano())
		if err := os.WriteFile(p, []byte(pw[p]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	o.Hashes = HashFiles(PasswordFiles(rep, o))
	l, err := Generate(rep, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, l, false); err != nil {
		t.Fatal(err)
	}
	// holding lists the layout's files that hold a password, with their mode.
	holding := func() map[string]fs.FileMode {
		t.Helper()
		out := map[string]fs.FileMode{}
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			c, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			for _, v := range pw {
				if strings.Contains(string(c), v) {
					out[filepath.ToSlash(strings.TrimPrefix(p, dir+"/"))] = fi.Mode().Perm()
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if h := holding(); len(h) != 0 {
		t.Fatalf("generated files hold a password: %v", h)
	}
	if out, err := exec.Command("sh", filepath.Join(dir, "install-secrets.sh")).CombinedOutput(); err != nil {
		t.Fatalf("install-secrets.sh: %v: %s", err, out)
	}

	var master, replica Server
	var sentinels []string
	for _, s := range l.Servers {
		if s.Bucket != "session" {
			continue
		}
		switch s.Role {
		case "master":
			master = s
		case "replica":
			replica = s
		case "sentinel":
			sentinels = append(sentinels, s.Addr())
		}
		if !s.Private {
			t.Fatalf("%s authenticates with a snippet but is not Private", s.Name)
		}
		// StartCommand, with the binary and directory of this test
		start := strings.Replace(s.StartCommand(), "redis-server "+s.Conf, `exec "$0" "$1"`, 1)
		start = strings.Replace(start, "DATA_DIR", `"$2"`, 1)
		cmd := exec.Command("sh", "-c", start+" --daemonize no", b.Binary, filepath.Join(dir, s.Conf), t.TempDir())
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err := topology.WaitPing(ctx, s.Addr(), "")
		cancel()
		if err != nil && !strings.Contains(err.Error(), "NOAUTH") && !strings.Contains(err.Error(), "WRONGPASS") {
			t.Fatalf("%s does not start from %s: %v\n%s", s.Name, s.Conf, err, out)
		}
	}
	defaultPw := pw[passwordFile(o, "session", "default")]
	client := func(addr string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr, Password: defaultPw, DisableIdentity: true})
		t.Cleanup(func() { c.Close() })
		return c
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinels[0], DisableIdentity: true})
	t.Cleanup(func() { sc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitFor("the replica to sync with the master (masterauth)", func() bool {
		info, _ := client(replica.Addr()).Info(ctx, "replication").Result()
		return strings.Contains(info, "master_link_status:up")
	})
	waitFor("the sentinels' quorum and their view of the replica (auth-pass)", func() bool {
		q, _ := sc.CkQuorum(ctx, o.MasterName).Result()
		reps, _ := sc.Replicas(ctx, o.MasterName).Result()
		m, _ := sc.Master(ctx, o.MasterName).Result()
		return strings.HasPrefix(q, "OK") && len(reps) == 1 && m["flags"] == "master"
	})
	if err := sc.Failover(ctx, o.MasterName).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor("the failover to the replica", func() bool {
		a, _ := sc.GetMasterAddrByName(ctx, o.MasterName).Result()
		role, _ := client(replica.Addr()).Do(ctx, "role").Slice()
		return len(a) == 2 && net.JoinHostPort(a[0], a[1]) == replica.Addr() && len(role) > 0 && role[0] == "master"
	})
	waitFor("the old master to follow the new one", func() bool {
		info, _ := client(master.Addr()).Info(ctx, "replication").Result()
		return strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up")
	})

	h := holding()
	for _, want := range []string{"session/sentinel-1.conf", "session/sentinel-2.conf", "session/sentinel-3.conf", "session/master.conf"} {
		if _, ok := h[want]; !ok {
			t.Errorf("%s does not hold the password after the start and the failover: this test no longer sees the rewrite (holding: %v)", want, h)
		}
	}
	for f, mode := range h {
		if mode&0o077 != 0 {
			t.Errorf("%s holds a password after its server rewrote it, with mode %v: readable by others", f, mode)
		}
	}
}
