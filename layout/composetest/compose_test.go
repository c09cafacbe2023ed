// Package composetest starts the compose file `redisplit targets init`
// writes, with Docker, and checks the layout it runs. It is its own package
// because it needs a Docker daemon and builds an image (skipped without).
package composetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redisplit/redisplit/cmd"
	"github.com/redisplit/redisplit/layout"
	"github.com/redisplit/redisplit/scan"
	"github.com/redisplit/redisplit/topology"
	"github.com/redisplit/redisplit/topology/containers"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	app := &cmd.App{In: strings.NewReader(""), Out: &out, Err: &errb}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return cmd.Run(ctx, app, args), out.String(), errb.String()
}

func compose() []string {
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	if err := exec.Command("docker", "compose", "version").Run(); err == nil {
		return []string{"docker", "compose"}
	}
	return nil
}

func freeBase(t *testing.T, n, cluster int) int {
	free := func(p int) bool {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		l.Close()
		return true
	}
	for i := 0; i < 200; i++ {
		p, err := topology.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if p < 20000 || p+n+10000 > 55000 {
			continue
		}
		ok := true
		for j := 0; j < n && ok; j++ {
			ok = free(p+j) && (j >= cluster || free(p+j+10000))
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free port range")
	return 0
}

// The compose file runs the very configs of the layout (host networking,
// the image built from the host's redis-server when no registry is
// reachable), the cluster forms, and targets check passes against it.
func TestComposeLayoutRuns(t *testing.T) {
	dc := compose()
	if dc == nil {
		t.Skip("no docker-compose or docker compose")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b, err := containers.New(ctx, containers.Options{Build: containers.BuildAlways})
	if err != nil {
		t.Skipf("no Docker image to run: %v", err)
	}
	image := b.Image
	b.Close()

	dir := t.TempDir()
	rep := &scan.Report{SchemaVersion: scan.SchemaVersion, Legacy: scan.Legacy{Version: "7.0.15"},
		Buckets: []scan.BucketReport{{Bucket: "cache", Keys: 10, Bytes: 1000}, {Bucket: "session", Keys: 10, Bytes: 1000}},
		Sizing:  []scan.Sizing{{Bucket: "cache", DataBytes: 1000, MaxMemory: 64 << 20}, {Bucket: "session", DataBytes: 1000, MaxMemory: 64 << 20}}}
	rj, _ := json.Marshal(rep)
	report := filepath.Join(dir, "report.json")
	if err := os.WriteFile(report, rj, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "layout")
	base := freeBase(t, 13, 6)
	code, js, errs := run(t, "targets", "init", "--scan", report, "--out", out, "--no-auth", "--bind", "127.0.0.1",
		"--base-port", strconv.Itoa(base), "--image", image, "-o", "json")
	if code != 0 {
		t.Fatalf("targets init: %d %s", code, errs)
	}
	var l struct{ Servers []layout.Server }
	if err := json.Unmarshal([]byte(js), &l); err != nil {
		t.Fatal(err)
	}
	project := fmt.Sprintf("redisplit-layout-%d", base)
	dcmd := func(ctx context.Context, args ...string) ([]byte, error) {
		c := exec.CommandContext(ctx, dc[0], append(append(dc[1:], "-p", project, "-f", filepath.Join(out, "compose.yaml")), args...)...)
		return c.CombinedOutput()
	}
	if o, err := dcmd(ctx, "config", "-q"); err != nil {
		t.Fatalf("compose config: %v: %s", err, o)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if o, err := dcmd(ctx, "down", "-v", "--timeout", "2"); err != nil {
			t.Logf("compose down: %v: %s", err, o)
		}
	})
	// Every server; the cluster is created from the host (the image built
	// from redis-server holds no redis-cli for the cache-create service).
	var services []string
	for _, s := range l.Servers {
		services = append(services, s.Name)
	}
	if o, err := dcmd(ctx, append([]string{"up", "-d"}, services...)...); err != nil {
		t.Fatalf("compose up: %v: %s", err, o)
	}
	for _, s := range l.Servers {
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err := topology.WaitPing(wctx, s.Addr(), "")
		cancel()
		if err != nil {
			o, _ := dcmd(ctx, "logs", s.Name)
			t.Fatalf("%s: %v\n%s", s.Name, err, o)
		}
	}
	if o, err := exec.CommandContext(ctx, "sh", filepath.Join(out, "cache", "create-cluster.sh")).CombinedOutput(); err != nil {
		t.Fatalf("create-cluster.sh: %v: %s", err, o)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		code, o, errs := run(t, "--config", filepath.Join(out, "redisplit.yaml"), "targets", "check")
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("targets check on the compose layout: exit %d\n%s%s", code, o, errs)
		}
		time.Sleep(time.Second)
	}
}

// Both kinds of compose file (host networking with --bind; service names
// as host names, with passwords) are valid compose files.
func TestComposeConfigValid(t *testing.T) {
	dc := compose()
	if dc == nil {
		t.Skip("no docker-compose or docker compose")
	}
	dir := t.TempDir()
	rj, _ := json.Marshal(&scan.Report{SchemaVersion: scan.SchemaVersion, Legacy: scan.Legacy{Version: "7.0.15"}})
	report := filepath.Join(dir, "report.json")
	if err := os.WriteFile(report, rj, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"bind":  {"--no-auth", "--bind", "127.0.0.1"},
		"hosts": {"--secrets", filepath.Join(dir, "secrets"), "--queue", "sqs"},
	} {
		out := filepath.Join(dir, name)
		if code, _, errs := run(t, append([]string{"targets", "init", "--scan", report, "--out", out}, args...)...); code != 0 {
			t.Fatalf("%s: targets init: %d %s", name, code, errs)
		}
		c := exec.Command(dc[0], append(dc[1:], "-f", filepath.Join(out, "compose.yaml"), "config", "-q")...)
		if o, err := c.CombinedOutput(); err != nil {
			t.Errorf("%s: compose config: %v: %s", name, err, o)
		}
	}
}
