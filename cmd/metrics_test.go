package cmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redisplit/redisplit/topology/topotest"
)

// freeAddr returns a 127.0.0.1 address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// migrate --dual-write --metrics-addr serves the live figures while it
// runs, with the bucket's phase as a label, and exits 0 when stopped.
func TestMigrateMetricsAddr(t *testing.T) {
	leg, tgt := topotest.Standalone(t), topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	for i := 0; i < 20; i++ {
		lc.Set(context.Background(), fmt.Sprintf("cache:%d", i), "v", 0)
	}
	cfg := stateTestConfig(t, leg.Addr(), tgt.Addr(), filepath.Join(t.TempDir(), "state"))
	addr := freeAddr(t)

	var out, errb bytes.Buffer
	app := &App{In: strings.NewReader(""), Out: &out, Err: &errb}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, app, []string{"--no-progress", "--config", cfg, "migrate", "--dual-write", "--yes", "--metrics-addr", addr})
	}()

	want := `redisplit_bucket_phase{bucket="cache",phase="syncing"} 1`
	var body string
	for deadline := time.Now().Add(60 * time.Second); ; {
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			// the phase comes from the state, the lag from the live
			// figures migrate hands over just after saving them
			if strings.Contains(body, want) && strings.Contains(body, `redisplit_bucket_lag_seconds{bucket="cache"}`) {
				break
			}
		}
		select {
		case code := <-done:
			t.Fatalf("migrate exited %d before %s was served\n%s\n%s", code, want, out.String(), errb.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 60s; last scrape:\n%s", want, body)
		}
	}
	for _, s := range []string{`redisplit_bucket_keys_total{bucket="cache",outcome="copied"} 20`, `redisplit_bucket_lag_seconds{bucket="cache"}`} {
		if !strings.Contains(body, s) {
			t.Errorf("no %s in the scrape:\n%s", s, body)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("migrate stopped: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("metrics still served after migrate returned")
	}
}

// A --metrics-addr that cannot be listened on fails migrate at once with a
// config error (exit 2) naming the address, before anything is written.
func TestMigrateMetricsAddrTaken(t *testing.T) {
	leg, tgt := topotest.Standalone(t), topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	lc.Set(context.Background(), "cache:1", "v", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	cfg := stateTestConfig(t, leg.Addr(), tgt.Addr(), filepath.Join(t.TempDir(), "state"))
	code, out, errs := runCLI(t, "--config", cfg, "migrate", "--dual-write", "--yes", "--metrics-addr", addr)
	if code != 2 || !strings.Contains(errs, "--metrics-addr "+addr) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("exit %d, want 2 with one line naming %s\n%s\n%s", code, addr, out, errs)
	}
	if n := topotest.Client(t, tgt.Addr()).DBSize(context.Background()).Val(); n != 0 {
		t.Errorf("%d keys written on the target", n)
	}
	if n := lc.Exists(context.Background(), "redisplit:lock").Val(); n != 0 {
		t.Error("the lease lock was taken on legacy")
	}
}
