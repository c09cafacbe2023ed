package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/redisplit/redisplit/keyname"
	"github.com/redisplit/redisplit/scan"
	"github.com/redisplit/redisplit/topology/topotest"
)

// A binary key name in any JSON report — scan's samples (top and unknown
// patterns), migrate's unknown patterns — is given as key_b64 and decodes
// to exactly its bytes; valid UTF-8 names are given as key.
func TestBinaryKeyNamesInJSON(t *testing.T) {
	srv := topotest.Standalone(t)
	c := topotest.Client(t, srv.Addr())
	ctx := context.Background()
	names := []string{"\x00\x01raw\xffkey", "zz:\xfe\xff:bin", "sess:plain:1"}
	for _, n := range names {
		if err := c.Set(ctx, n, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "redisplit.yaml")
	target := topotest.Standalone(t)
	os.WriteFile(cfg, []byte(fmt.Sprintf("legacy: {url: 'redis://%s/0'}\nstate_dir: %s\nunknown: skip\npresets: {none: true}\nrules: [{prefix: 'sess:', bucket: session}]\ntargets: {session: {kind: standalone, url: 'redis://%s/0'}}\n",
		srv.Addr(), filepath.Join(dir, "state"), target.Addr())), 0o600)

	found := map[string]bool{}
	note := func(where string, j keyname.JSON) {
		t.Helper()
		name, err := j.Name()
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return
		}
		if (j.KeyB64 != "") == (j.Key != "") {
			t.Errorf("%s: exactly one of key and key_b64 must be set: %+v", where, j)
		}
		found[where+" "+name] = true
	}

	code, out, errs := cli(t, "--config", cfg, "scan", "-o", "json", "--no-progress")
	if code != 0 {
		t.Fatalf("scan: exit %d: %s", code, errs)
	}
	var r scan.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	for _, p := range r.UnknownPatterns {
		for _, s := range p.Samples {
			note("scan", s)
		}
	}
	for _, b := range r.Buckets {
		for _, p := range b.TopPatterns {
			for _, s := range p.Samples {
				note("scan", s)
			}
		}
	}

	code, out, errs = cli(t, "--config", cfg, "migrate", "--dry-run", "-o", "json", "--no-progress")
	if code != 0 {
		t.Fatalf("migrate --dry-run: exit %d: %s", code, errs)
	}
	var m struct {
		UnknownPatterns []struct {
			Sample keyname.JSON `json:"sample"`
		} `json:"unknown_patterns"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, p := range m.UnknownPatterns {
		note("migrate", p.Sample)
	}

	for _, want := range []string{"scan " + names[0], "scan " + names[1], "scan " + names[2], "migrate " + names[0], "migrate " + names[1]} {
		if !found[want] {
			t.Errorf("%q not found byte for byte; found %v", want, found)
		}
	}
}
