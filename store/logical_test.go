package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/topology/topotest"
)

// Legacy dies in the middle of the logical copy of a big key: the error is
// legacy's (it names legacy and its address, and SideOf says so), and the
// target's retry loop neither retries it nor reports it to the target's
// health.
func TestLogicalCopyLegacyFailureIsLegacys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leg := topotest.Standalone(t)
	lc := topotest.Client(t, leg.Addr())
	for i := 0; i < 20; i++ { // 20 pages
		args := make([]any, LogicalPage)
		for j := range args {
			args[j] = fmt.Sprintf("item-%d-%d", i, j)
		}
		if err := lc.RPush(ctx, "big", args...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	dst := topotest.Standalone(t)
	r, err := Open(ctx, "queue", config.Target{Kind: config.KindStandalone, Endpoint: config.Endpoint{URL: "redis://" + dst.Addr() + "/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src, err := redisconn.Legacy(ctx, config.Endpoint{URL: "redis://" + leg.Addr() + "/0", ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	var retried []error
	retry := Retry{Initial: 10 * time.Millisecond, For: 5 * time.Second, OnRetry: func(err error) { retried = append(retried, err) }}
	pages := 0
	wait := func(int) error {
		if pages++; pages == 3 {
			leg.Kill() // two pages are on the target
		}
		return nil
	}
	_, err = r.CopyLogical(ctx, src, &Entry{Key: "big", Type: "list"}, retry, wait)
	if err == nil {
		t.Fatal("the copy succeeded although legacy was killed")
	}
	if side := redisconn.SideOf(err); side != redisconn.SideLegacy {
		t.Errorf("side %q, want legacy: %v", side, err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "legacy "+leg.Addr()+": ") || !strings.Contains(msg, `"big"`) {
		t.Errorf("error does not name legacy, its address and the key: %s", msg)
	}
	if len(retried) > 0 {
		t.Errorf("legacy's failure was retried as the target's %d times: %v", len(retried), retried[0])
	}
	if pages != 3 {
		t.Errorf("legacy was read %d times: the key was restarted", pages)
	}
}
