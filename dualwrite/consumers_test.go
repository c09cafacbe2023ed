package dualwrite

import (
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
