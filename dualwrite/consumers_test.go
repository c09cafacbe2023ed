package dualwrite

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// PopWatch (pure logic): only pops count; a list popped within quiet is
// alive, most recent first; a watch younger than quiet proves nothing.
func TestPopWatchLive(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	w := NewPopWatch(t0)
	if c, short := w.Live(t0.Add(time.Second), 10*time.Second); c != nil || !short {
		t.Fatalf("young watch: %+v short=%v", c, short)
	}
	w.Observe(Mark{Key: "job_queue", Event: "rpop", At: t0.Add(5 * time.Second)})
	w.Observe(Mark{Key: "job_queue", Event: "rpop", At: t0.Add(6 * time.Second)})
	w.Observe(Mark{Key: "mail", Event: "lrem", At: t0.Add(8 * time.Second)})
	w.Observe(Mark{Key: "pushed", Event: "lpush", At: t0.Add(9 * time.Second)})
	w.Observe(Mark{Key: "old", Event: "lpop", At: t0.Add(-time.Minute)})
	c, short := w.Live(t0.Add(12*time.Second), 10*time.Second)
	if short || c == nil || c.Family != "lists" || c.Alive != 2 {
		t.Fatalf("Live: %+v short=%v", c, short)
	}
	if !strings.HasPrefix(c.Sample[0], "mail last popped 4s ago, 1 pops seen") || !strings.HasPrefix(c.Sample[1], "job_queue last popped 6s ago, 2 pops seen") {
		t.Errorf("samples %q", c.Sample)
	}
	if c, _ := w.Live(t0.Add(30*time.Second), 10*time.Second); c != nil {
		t.Errorf("quiet for 22s: %+v", c)
	}
}

// blockedPoppers (pure logic) picks the clients blocked in a blocking pop
// from a CLIENT LIST reply (Redis 7 format).
func TestBlockedPoppers(t *testing.T) {
	list := "id=3 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 fd=8 name=worker-1 age=9 idle=9 flags=b db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=brpop user=default\n" +
		"id=4 addr=127.0.0.1:5001 laddr=127.0.0.1:6379 fd=9 name= age=9 idle=0 flags=N db=0 sub=0 psub=0 multi=-1 cmd=client|list user=default\n" +
		"id=5 addr=127.0.0.1:5002 laddr=127.0.0.1:6379 fd=10 name= age=9 idle=3 flags=b db=0 cmd=blmove user=default\n" +
		"id=6 addr=127.0.0.1:5003 laddr=127.0.0.1:6379 fd=11 name= age=9 idle=3 flags=b db=0 cmd=wait user=default\n"
	got := blockedPoppers(list)
	want := []string{"127.0.0.1:5000 (worker-1) in BRPOP", "127.0.0.1:5002 in BLMOVE"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// LiveConsumers on a real server, with what Resque, Bull/BullMQ and a
// plain list's idle consumer leave there: Resque's workers set and its
// heartbeat hash (iso8601 times, as Resque's heartbeat! writes them),
// connections named as BullMQ's workers name theirs (CLIENT SETNAME
// <prefix>:<base64 queue>) beside the queue's keys, a client blocked in
// BRPOP. Stale heartbeats, a QueueEvents connection (":qe") and a name
// without a queue on legacy do not count.
func TestLiveConsumersResqueBullBlocked(t *testing.T) {
	ctx := ctxT(t)
	s, lc := legacy(t)
	now := time.Now()
	if live, err := LiveConsumers(ctx, lc, now); err != nil || len(live) != 0 {
		t.Fatalf("empty legacy: %+v %v", live, err)
	}
	lc.SAdd(ctx, "resque:workers", "web-1:4242:default,mailers", "web-2:77:default")
	lc.HSet(ctx, "resque:workers:heartbeat", "web-1:4242:default,mailers", now.Add(-30*time.Second).Format(time.RFC3339),
		"web-2:77:default", now.Add(-10*time.Minute).Format(time.RFC3339))
	lc.Set(ctx, "resque:worker:web-1:4242:default,mailers:started", now.String(), 0)
	lc.Set(ctx, "bull:emails:id", "41", 0)
	lc.HSet(ctx, "bull:emails:meta", "opts.maxLenEvents", "10000")
	named := func(name string) {
		c := client(t, s.Addr(), "", "", 0)
		if err := c.Do(ctx, "CLIENT", "SETNAME", name).Err(); err != nil {
			t.Fatal(err)
		}
	}
	named("bull:ZW1haWxz")    // base64("emails"): a worker
	named("bull:ZW1haWxz:qe") // QueueEvents
	named("bull:b3RoZXI=")    // base64("other"): no such queue on legacy
	bc := client(t, s.Addr(), "", "", 0)
	bc.Do(ctx, "CLIENT", "SETNAME", "idle-worker")
	go bc.BRPop(context.Background(), 3*time.Second, "job_queue:idle")
	var live []Consumers
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		var err error
		if live, err = LiveConsumers(ctx, lc, now); err != nil {
			t.Fatal(err)
		}
		if len(live) == 3 {
			break
		}
	}
	got := map[string][]string{}
	for _, c := range live {
		got[c.Family] = c.Sample
	}
	if s := got["resque"]; len(s) != 1 || s[0] != "web-1:4242:default,mailers" {
		t.Errorf("resque: %q", s)
	}
	if s := got["bullmq"]; len(s) != 1 || !strings.HasSuffix(s[0], " on bull:emails") {
		t.Errorf("bullmq: %q", s)
	}
	if s := got["blocked clients"]; len(s) != 1 || !strings.HasSuffix(s[0], " (idle-worker) in BRPOP") {
		t.Errorf("blocked clients: %q", s)
	}
	if len(live) != 3 {
		t.Errorf("families: %+v", live)
	}
	err := ConsumersRefusal("queue", live)
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "consumers still work on legacy for bucket queue: resque: 1 alive (web-1:4242:default,mailers;") {
		t.Errorf("refusal: %v", err)
	}
}
