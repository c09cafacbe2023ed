package e2e

import (
	"context"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/redisplit/redisplit/topology/containers"
)

type junit struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Suites   []struct {
		Cases []struct {
			Classname string    `xml:"classname,attr"`
			Name      string    `xml:"name,attr"`
			Failure   *struct{} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readJUnit(t *testing.T, path string) junit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var j junit
	if err := xml.Unmarshal(b, &j); err != nil {
		t.Fatalf("JUnit XML: %v\n%s", err, b)
	}
	return j
}

// rehearse runs `redisplit rehearse` with args in a fresh directory.
func runRehearse(t *testing.T, args ...string) (result, string) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, bin, append([]string{"rehearse", "--no-progress",
		"--report", "report.md", "--junit", "junit.xml"}, args...)...)
	c.Dir = dir
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	return result{code: exitCode(err), stdout: out.String(), stderr: errb.String()}, dir
}

// otherRuns lists redisplit containers that do not belong to this package's
// shared topology.
func otherRuns(t *testing.T) []string {
	t.Helper()
	cli, err := testcontainers.NewDockerClientWithOpts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	res, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", containers.RunLabel)})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range res.Items {
		if c.Labels[containers.RunLabel] != backend.RunID {
			out = append(out, c.Names...)
		}
	}
	return out
}

// A key lost on a target after migrate makes the rehearsal fail with exit 3
// and a failed verify case for the bucket.
func TestRehearseFailsOnLostKey(t *testing.T) {
	r, dir := runRehearse(t, "--synthetic", "2000", "--fault", "lose-key")
	if r.code != 3 {
		t.Fatalf("rehearse --fault lose-key: want exit 3, got %s", r)
	}
	if !strings.Contains(r.stdout, "# redisplit rehearsal: FAILED") {
		t.Errorf("terminal summary:\n%s", r.stdout)
	}
	j := readJUnit(t, filepath.Join(dir, "junit.xml"))
	failed := map[string]bool{}
	for _, c := range j.Suites[0].Cases {
		if c.Failure != nil {
			failed[c.Classname+"/"+c.Name] = true
		}
	}
	if !failed["rehearse.live/verify/session"] || !failed["rehearse.live/compare/session"] {
		t.Errorf("no failed live verify and compare cases for the session bucket: %v", failed)
	}
	for k := range failed {
		if strings.HasSuffix(k, "/cache") || strings.HasSuffix(k, "/queue") || strings.HasSuffix(k, "/ratelimit") {
			t.Errorf("a key lost from the session target failed %s", k)
		}
	}
	if left := otherRuns(t); len(left) > 0 {
		t.Errorf("containers left behind: %v", left)
	}
}

// Ctrl-C during a rehearsal stops it and removes every container it started.
func TestRehearseInterruptedRemovesContainers(t *testing.T) {
	c := exec.Command(bin, "rehearse", "--no-progress", "--synthetic", "20000")
	c.Dir = t.TempDir()
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(otherRuns(t)) < 5 {
		if time.Now().After(deadline) {
			c.Process.Kill()
			t.Fatalf("rehearse started %d containers in 60s", len(otherRuns(t)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := c.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if exitCode(err) == 0 {
			t.Errorf("interrupted rehearse exited 0")
		}
	case <-time.After(90 * time.Second):
		c.Process.Kill()
		t.Fatal("rehearse did not stop within 90s of SIGINT")
	}
	if left := otherRuns(t); len(left) > 0 {
		t.Errorf("containers left after Ctrl-C: %v\nstderr: %s", left, errb.String())
	}
}
