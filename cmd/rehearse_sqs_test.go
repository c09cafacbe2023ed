package cmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redisplit/redisplit/rehearse"
)

// The queue bucket on SQS (the in-process emulator, the real SDK): the
// producer pushes jobs onto legacy's lists while migrate --dual-write
// moves them, the consumer works on SQS from the start, cutover --bucket
// queue records the producers' switch, the switched producer sends to SQS,
// complete --bucket queue drains and ends the mover; verify's conservation
// holds per list and the rehearsal's own count agrees, every job produced
// was received; the Redis buckets run the cutover flow as before and
// migrate ends by itself.
func TestRehearseQueueOnSQS(t *testing.T) {
	sqsTestEnv(t)
	code, res, errs := rehearseJSON(t, "--synthetic", "300", "--live-for", "3s", "--live-rate", "500", "--queue-target", "sqs")
	for _, c := range res.Cases {
		if !c.OK && !c.Skipped {
			t.Errorf("%s/%s failed: %s %v\n%s", c.Phase, c.Bucket, c.Detail, c.Keys, c.Output)
		}
	}
	if code != ExitOK || !res.OK {
		t.Fatalf("rehearsal with the queue on SQS: exit %d, OK %v\n%s", code, res.OK, errs)
	}
	cs := casesOf(res)
	if res.Queue == nil || len(res.Queue.Lists) < 3 {
		t.Fatalf("queue figures: %+v", res.Queue)
	}
	for l, f := range res.Queue.Lists {
		c, ok := cs[rehearse.PhaseQueueConservation][l]
		if !ok || !strings.Contains(c.Detail, "(conserved)") {
			t.Errorf("queue/conservation/%s: %+v", l, c)
		}
		if _, ok := cs[rehearse.PhaseQueueDelivered][l]; !ok {
			t.Errorf("no queue/delivered case for %s", l)
		}
		if f.Distinct != f.Initial+f.Pushed+f.Direct {
			t.Errorf("%s: %d distinct jobs received, %d produced", l, f.Distinct, f.Initial+f.Pushed+f.Direct)
		}
	}
	var pushed int
	for _, f := range res.Queue.Lists {
		pushed += f.Pushed
	}
	if pushed == 0 {
		t.Errorf("the producer pushed nothing onto legacy during the move")
	}
	for _, ph := range []string{rehearse.PhaseQueueCutover, rehearse.PhaseQueueComplete} {
		if _, ok := cs[ph]["queue"]; !ok {
			t.Errorf("no %s case", ph)
		}
	}
	for _, ph := range []string{rehearse.PhaseLiveCompare, rehearse.PhaseCutover, rehearse.PhaseAfterCutover} {
		if _, ok := cs[ph]["queue"]; ok {
			t.Errorf("%s has a case for the queue bucket on SQS", ph)
		}
		for _, b := range []string{"cache", "session", "ratelimit"} {
			if _, ok := cs[ph][b]; !ok {
				t.Errorf("no %s case for %s", ph, b)
			}
		}
	}
	if d := cs[rehearse.PhaseLiveStop][""].Detail; !strings.Contains(d, "ended by itself") {
		t.Errorf("migrate did not end by itself: %s", d)
	}
}

// A job taken off a queue list on legacy by something else than the mover
// (fault drop-queue-item) makes that list's conservation and delivery
// fail: exit 3.
func TestRehearseQueueOnSQSDroppedItemFails(t *testing.T) {
	sqsTestEnv(t)
	code, res, errs := rehearseJSON(t, "--synthetic", "300", "--live-for", "2s", "--live-rate", "300", "--queue-target", "sqs", "--fault", "drop-queue-item")
	if code != ExitDifferences || res.OK || !res.Lost {
		t.Fatalf("rehearsal with a dropped queue item: exit %d, OK %v, lost %v; want exit 3\n%s", code, res.OK, res.Lost, errs)
	}
	var dropped string
	for l, f := range res.Queue.Lists {
		if f.Dropped > 0 {
			dropped = l
		}
	}
	if dropped == "" {
		t.Fatalf("no list lost an item: %+v", res.Queue.Lists)
	}
	cs := casesOf(res)
	if c := cs[rehearse.PhaseQueueConservation][dropped]; c.OK || !strings.Contains(c.Detail, "1 items UNACCOUNTED FOR") {
		t.Errorf("queue/conservation/%s: %+v, want 1 unaccounted for", dropped, c)
	}
	if c := cs[rehearse.PhaseQueueDelivered][dropped]; c.OK || !strings.Contains(c.Detail, "1 NEVER RECEIVED") {
		t.Errorf("queue/delivered/%s: %+v, want 1 never received", dropped, c)
	}
	for l := range res.Queue.Lists {
		if l != dropped && !cs[rehearse.PhaseQueueConservation][l].OK {
			t.Errorf("queue/conservation/%s failed too: %+v", l, cs[rehearse.PhaseQueueConservation][l])
		}
	}
}

// --queue-target is checked before any server starts.
func TestRehearseQueueTargetFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--queue-target", "kafka"},
		{"--queue-target", "sqs", "--no-live"},
		{"--fault", "drop-queue-item"},
	} {
		code, _, errs := cli(t, append([]string{"rehearse", "--backend", "process", "--synthetic", "10"}, args...)...)
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, ExitUsage, errs)
		}
	}
}

// A config whose queue target is kind: sqs with fifo: true is rehearsed on
// the emulator with FIFO queues (its endpoint and queue names replaced):
// every job is received exactly once.
func TestRehearseQueueOnSQSFromConfigFIFO(t *testing.T) {
	sqsTestEnv(t)
	cfg := filepath.Join(t.TempDir(), "redisplit.yaml")
	if err := os.WriteFile(cfg, []byte(`unknown: skip
targets:
  session: {kind: standalone, url: "redis://127.0.0.1:1/0"}
  queue: {kind: sqs, region: eu-west-1, endpoint: "https://sqs.eu-west-1.amazonaws.com", queue_name: "jobs-{key}", fifo: true}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, res, errs := rehearseJSON(t, "--config", cfg, "--synthetic", "200", "--live-for", "2s", "--live-rate", "300")
	for _, c := range res.Cases {
		if !c.OK && !c.Skipped {
			t.Errorf("%s/%s failed: %s %v\n%s", c.Phase, c.Bucket, c.Detail, c.Keys, c.Output)
		}
	}
	if code != ExitOK || res.Queue == nil {
		t.Fatalf("FIFO rehearsal: exit %d\n%s", code, errs)
	}
	for l, f := range res.Queue.Lists {
		if !strings.HasSuffix(f.Queue, ".fifo") || strings.HasPrefix(f.Queue, "jobs-") {
			t.Errorf("%s went to queue %q, want the rehearsal's own FIFO queue", l, f.Queue)
		}
		if f.Received != f.Initial+f.Pushed+f.Direct || f.Distinct != f.Received {
			t.Errorf("%s: %d received (%d distinct), %d produced: a FIFO queue delivers each once", l, f.Received, f.Distinct, f.Initial+f.Pushed+f.Direct)
		}
	}
}
