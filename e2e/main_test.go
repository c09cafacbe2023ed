// Package e2e runs redisplit end to end: the built binary against a legacy
// Redis and per-bucket targets in Docker containers (the container backend
// of package topology), with faults injected in the containers. One
// topology is shared by the whole package (TestMain); every test starts
// from empty servers and its own state directory.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/rehearse"
	"github.com/redisplit/redisplit/store"
	"github.com/redisplit/redisplit/topology/containers"
)

var (
	bin     string // the redisplit binary built for this run
	backend *containers.Backend
	topo    *rehearse.Topology
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	containers.SetEnvDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a cold build takes minutes on 2 cores
	defer cancel()
	tmp, err := os.MkdirTemp("", "redisplit-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	bin = filepath.Join(tmp, "redisplit")
	t0 := time.Now()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/redisplit/redisplit")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build redisplit: %v\n%s", err, out)
		return 1
	}
	tBuild := time.Since(t0)
	t0 = time.Now()
	backend, err = containers.New(ctx, containers.Options{Dir: filepath.Join(tmp, "servers")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "container backend:", err)
		return 1
	}
	defer backend.Close()
	layout := rehearse.DefaultLayout()
	// The cache nodes persist (AOF) so that stopping one is an availability
	// fault only: its keys come back with it.
	cache := layout["cache"]
	cache.Args = []string{"--appendonly", "yes"}
	layout["cache"] = cache
	topo, err = layout.Start(ctx, backend)
	if err != nil {
		fmt.Fprintln(os.Stderr, "topology:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: binary built in %v; image %s (%s); legacy + cluster + sentinel + 2 standalone ready in %v\n",
		tBuild.Round(time.Millisecond), backend.Image, backend.How, time.Since(t0).Round(time.Millisecond))
	return m.Run()
}

// env is one test's view of the shared topology: empty servers, its own
// config file and state directory.
type env struct {
	t       *testing.T
	dir     string
	cfg     string
	legacy  *redis.Client
	targets map[string]*store.Redis
	router  *classify.Classifier
}

// newEnv empties every server and writes a config for the shared topology.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, dir: t.TempDir(), targets: map[string]*store.Redis{}}
	e.legacy = redis.NewClient(&redis.Options{Addr: topo.Legacy.Addr(), DisableIdentity: true, ReadTimeout: 30 * time.Second})
	t.Cleanup(func() { e.legacy.Close() })
	if err := e.legacy.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for _, b := range config.Buckets {
		tg, err := store.Open(ctx, b, topo.Targets[b])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tg.Close() })
		err = tg.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.FlushAll(ctx).Err() })
		if err != nil {
			t.Fatal(err)
		}
		e.targets[b] = tg
	}
	var err error
	if e.cfg, err = topo.WriteConfig(e.dir, nil); err != nil {
		t.Fatal(err)
	}
	if e.router, _, err = classify.Router(nil); err != nil {
		t.Fatal(err)
	}
	return e
}

// load writes the synthetic keyspace into legacy.
func (e *env) load(s rehearse.Synthetic) rehearse.Generated {
	e.t.Helper()
	g, err := s.Generate(context.Background(), e.legacy)
	if err != nil {
		e.t.Fatal(err)
	}
	return g
}

// result is one run of the binary.
type result struct {
	code           int
	stdout, stderr string
	ended          time.Time // set by asynchronous runs
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, tailStr(r.stdout, 3000), tailStr(r.stderr, 3000))
}

func tailStr(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// command returns the binary's command line with the test's config; it runs
// in the test's directory.
func (e *env) command(ctx context.Context, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	full := append([]string{"--config", e.cfg, "--no-progress"}, args...)
	c := exec.CommandContext(ctx, bin, full...)
	c.Dir = e.dir
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	return c, &out, &errb
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1000
}

// run runs the binary to completion.
func (e *env) run(args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, out, errb := e.command(ctx, args...)
	err := c.Run()
	return result{code: exitCode(err), stdout: out.String(), stderr: errb.String()}
}

// mustRun runs the binary and fails the test unless it exits with want.
func (e *env) mustRun(want int, args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != want {
		e.t.Fatalf("redisplit %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

// migrateJSON decodes migrate -o json output into bucket → status.
func migrateStatus(t *testing.T, stdout string) map[string]string {
	t.Helper()
	var res struct {
		Buckets []struct {
			Bucket string `json:"bucket"`
			Status string `json:"status"`
			Error  string `json:"error"`
		} `json:"buckets"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("migrate JSON: %v\n%s", err, tailStr(stdout, 2000))
	}
	out := map[string]string{}
	for _, b := range res.Buckets {
		out[b.Bucket] = b.Status
		if b.Error != "" {
			t.Logf("migrate: bucket %s: %s", b.Bucket, b.Error)
		}
	}
	return out
}

// targetKeys counts the keys on each target.
func (e *env) targetKeys() map[string]int64 {
	e.t.Helper()
	out := map[string]int64{}
	for b, tg := range e.targets {
		var n int64
		err := tg.ForEachMaster(context.Background(), func(ctx context.Context, c *redis.Client) error {
			k, err := c.DBSize(ctx).Result()
			n += k
			return err
		})
		if err != nil {
			e.t.Fatal(err)
		}
		out[b] = n
	}
	return out
}

// snapshot records legacy for a later unchanged check.
func (e *env) snapshot() *rehearse.Snapshot {
	e.t.Helper()
	s, err := rehearse.TakeSnapshot(context.Background(), e.legacy, e.router)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// assertNothingLost checks directly on the servers that every snapshot key
// is on its target unless it expired.
func (e *env) assertNothingLost(s *rehearse.Snapshot) {
	e.t.Helper()
	checks, err := rehearse.Presence(context.Background(), s, e.targets)
	if err != nil {
		e.t.Fatal(err)
	}
	for b, c := range checks {
		if !c.OK {
			e.t.Errorf("bucket %s: %s %v", b, c.Detail, c.Keys)
		}
	}
}
