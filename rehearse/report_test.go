package rehearse_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/rehearse"
)

func TestJUnitOneCasePerPhaseAndBucket(t *testing.T) {
	r := &rehearse.Result{Started: time.Unix(1700000000, 0), Duration: 3 * time.Second, Buckets: []string{"cache", "session"}}
	r.Cases = []rehearse.Case{
		{Phase: "topology", OK: true, Detail: "5 stores started"},
		{Phase: "migrate", Bucket: "cache", OK: true, Detail: "10 of 10 keys on the target"},
		{Phase: "migrate", Bucket: "session", OK: false, Detail: "9 of 10 keys, 1 LOST", Keys: []string{`"sess:\xff\x00"`},
			Output: "binary \x00 output"},
		{Phase: "fault", Bucket: "session", Skipped: true, Detail: "injected"},
	}
	var b bytes.Buffer
	if err := r.JUnit(&b); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suite    struct {
			Cases []struct {
				Classname string `xml:"classname,attr"`
				Name      string `xml:"name,attr"`
				Failure   *struct {
					Message string `xml:"message,attr"`
					Body    string `xml:",chardata"`
				} `xml:"failure"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b.String())
	}
	if doc.Tests != 4 || doc.Failures != 1 || len(doc.Suite.Cases) != 4 {
		t.Fatalf("tests=%d failures=%d cases=%d", doc.Tests, doc.Failures, len(doc.Suite.Cases))
	}
	c := doc.Suite.Cases[2]
	if c.Classname != "rehearse.migrate" || c.Name != "session" || c.Failure == nil ||
		!strings.Contains(c.Failure.Body, `sess:\xff\x00`) || !strings.Contains(c.Failure.Body, "binary  output") {
		t.Errorf("failed case: %+v", c)
	}
	if doc.Suite.Cases[0].Name != "topology" || doc.Suite.Cases[3].Skipped == nil {
		t.Errorf("cases: %+v", doc.Suite.Cases)
	}
}

func TestMarkdownVerdictAndFailures(t *testing.T) {
	r := &rehearse.Result{OK: false, Source: "synthetic", Cases: []rehearse.Case{
		{Phase: "verify", Bucket: "session", OK: false, Detail: "a|b", Keys: []string{`"k"`}, Output: "redisplit: boom"},
	}}
	var b bytes.Buffer
	if err := r.Markdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{"# redisplit rehearsal: FAILED", `| verify | session | **FAIL** | a\|b |`, `"k"`, "redisplit: boom"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestLayoutOf(t *testing.T) {
	l, err := rehearse.LayoutOf(&config.Config{Targets: map[string]config.Target{
		"cache":   {Kind: config.KindCluster, Addrs: []string{"a:1", "b:1", "c:1", "d:1", "e:1"}},
		"session": {Kind: config.KindSentinel, Master: "m", Sentinels: []string{"s:1"}},
		"queue":   {Kind: config.KindStandalone, Endpoint: config.Endpoint{URL: "redis://q:1"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if l["cache"].Nodes != 5 || l["session"].Kind != config.KindSentinel || l["queue"].Kind != config.KindStandalone || len(l) != 3 {
		t.Errorf("layout %+v", l)
	}
	l, _ = rehearse.LayoutOf(&config.Config{Targets: map[string]config.Target{"cache": {Kind: config.KindCluster, Addrs: []string{"a:1"}}}})
	if l["cache"].Nodes != 3 {
		t.Errorf("a one-seed cluster gets %d masters, want 3", l["cache"].Nodes)
	}
	// a queue on SQS is rehearsed on the in-process emulator, same FIFO
	// setting; SQS for another bucket is an error
	l, err = rehearse.LayoutOf(&config.Config{Targets: map[string]config.Target{"queue": {Kind: config.KindSQS, SQS: config.SQS{FIFO: true}}}})
	if err != nil || l["queue"].Kind != config.KindSQS || !l["queue"].FIFO || l.SQSBucket() != "queue" {
		t.Errorf("sqs queue target: %+v, %v", l, err)
	}
	_, err = rehearse.LayoutOf(&config.Config{Targets: map[string]config.Target{"cache": {Kind: config.KindSQS}}})
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Errorf("sqs cache target: %v, want a config error", err)
	}
	if _, err := rehearse.LayoutOf(&config.Config{}); !errors.As(err, &ce) {
		t.Errorf("no targets: %v, want a config error", err)
	}
}

func TestLegacyDB(t *testing.T) {
	for url, want := range map[string]int{"": 0, "redis://10.0.0.5:6379": 0, "redis://u:p@10.0.0.5:6379/3": 3, "rediss://h:1/15": 15} {
		if got := rehearse.LegacyDB(&config.Config{Legacy: config.Endpoint{URL: url}}); got != want {
			t.Errorf("LegacyDB(%q) = %d, want %d", url, got, want)
		}
	}
	if rehearse.LegacyDB(nil) != 0 {
		t.Error("LegacyDB(nil) != 0")
	}
}
