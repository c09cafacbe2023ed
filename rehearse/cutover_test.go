package rehearse

import (
	"context"
	"strings"
	"testing"

	"github.com/redisplit/redisplit/topology/topotest"
)

// checkWrites, the after-cutover check of the application's writes, finds
// every way a side can lack them: a key missing, another value, a hash
// field not written, a deleted key still there; a side that holds them all
// passes.
func TestCheckWritesFindsMissingWrites(t *testing.T) {
	s := topotest.Standalone(t)
	c := topotest.Client(t, s.Addr())
	ctx := context.Background()
	want := map[string]expect{
		"sess:1":    {bucket: "session", field: "rehearse_app", value: "app-write-3"},
		"sess:2":    {bucket: "session", value: "app-write-2"},
		"sess:3":    {bucket: "session", gone: true},
		"sess:4":    {bucket: "session", value: "7"},
		"other:bkt": {bucket: "cache", value: "x"},
	}
	c.HSet(ctx, "sess:1", "rehearse_app", "app-write-3", "f", "v")
	c.Set(ctx, "sess:2", "app-write-2", 0)
	c.Set(ctx, "sess:4", "7", 0)
	n, bad, err := checkWrites(ctx, c, want, "session")
	if err != nil || n != 4 || len(bad) != 0 {
		t.Fatalf("every write present: n %d, bad %q, %v", n, bad, err)
	}
	c.HSet(ctx, "sess:1", "rehearse_app", "app-write-2") // an older write
	c.Del(ctx, "sess:2")                                 // lost
	c.Set(ctx, "sess:3", "back", 0)                      // a delete undone
	c.Set(ctx, "sess:4", "6", 0)                         // an increment lost
	n, bad, err = checkWrites(ctx, c, want, "session")
	if err != nil || n != 4 || len(bad) != 4 {
		t.Fatalf("four writes lacking: n %d, bad %q, %v", n, bad, err)
	}
	got := strings.Join(bad, "; ")
	for _, s := range []string{`sess:1 ("app-write-2", want "app-write-3")`, "sess:2 (missing)", "sess:3 (deleted by the application, still there)", `sess:4 ("6", want "7")`} {
		if !strings.Contains(got, s) {
			t.Errorf("no %q in %s", s, got)
		}
	}
}
