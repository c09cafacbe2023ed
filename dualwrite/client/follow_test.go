package client_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/dualwrite/client"
	"github.com/redisplit/redisplit/lease"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/topology/topotest"
)

// TestControlContract pins the control key's format: a hash field per
// bucket holding {"phase","epoch","at"} with the epoch counting writes, and
// a PUBLISH of the bucket's name on the channel.
func TestControlContract(t *testing.T) {
	flush(t)
	ctx := context.Background()
	if !strings.HasPrefix(client.ControlKey, lease.OwnPrefix) {
		t.Fatalf("control key %s is outside redisplit's namespace %s", client.ControlKey, lease.OwnPrefix)
	}
	s := newStores(t)
	sub := s.legacy.Subscribe(ctx, client.ControlChannel)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription confirmation
		t.Fatal(err)
	}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, p := range []state.Phase{state.Syncing, state.Cutover} {
		v, err := client.SetPhase(ctx, s.legacy, "session", p, "", at)
		if err != nil {
			t.Fatal(err)
		}
		if v.Epoch != int64(i+1) || v.Phase != p || !v.At.Equal(at) {
			t.Errorf("SetPhase returned %+v", v)
		}
		m, err := sub.ReceiveMessage(ctx)
		if err != nil || m.Channel != client.ControlChannel || m.Payload != "session" {
			t.Errorf("published %+v, %v; want the bucket name on %s", m, err, client.ControlChannel)
		}
	}
	raw := s.legacy.HGet(ctx, client.ControlKey, "session").Val()
	if want := `{"phase":"cutover","epoch":2,"at":"2025-01-02T03:04:05Z"}`; raw != want {
		t.Errorf("field value %s, want %s", raw, want)
	}
	if _, err := client.SetPhase(ctx, s.legacy, "cache", state.Syncing, "abc123", at); err != nil {
		t.Fatal(err)
	}
	if raw := s.legacy.HGet(ctx, client.ControlKey, "cache").Val(); !regexp.MustCompile(`^\{"phase":"syncing","epoch":1,"at":"[^"]+","plan":"abc123"\}$`).MatchString(raw) {
		t.Errorf("field with a plan hash: %s", raw)
	}
	if _, err := client.SetPhase(ctx, s.legacy, "cache", "nonsense", "", at); err == nil {
		t.Error("SetPhase accepted an unknown phase")
	}
}

// TestSwitchByPubSub: with polling effectively off, the PUBLISH alone
// switches the client.
func TestSwitchByPubSub(t *testing.T) {
	flush(t)
	c := newClient(t, newStores(t), func(o *client.Options) { o.PollInterval = time.Hour })
	eventually(t, "the subscription", func() bool { return c.Stats().Subscribed })
	setPhase(t, "cache", state.Cutover)
	waitPhase(t, state.Cutover, "cache", c)
	// no field at start (legacy) to cutover: one switch, as the tool's
	// first write of a bucket's field is its cutover
	if bs := c.Stats().Buckets["cache"]; bs.Switches != 1 || bs.Store != "cache target" {
		t.Errorf("after the cutover of a bucket absent at start: %+v", bs)
	}
}

// TestSwitchByPoll: a change written without PUBLISH (a lost message) is
// picked up by the poll.
func TestSwitchByPoll(t *testing.T) {
	flush(t)
	ctx := context.Background()
	s := newStores(t)
	c := newClient(t, s, func(o *client.Options) { o.PollInterval = 50 * time.Millisecond })
	if err := s.legacy.HSet(ctx, client.ControlKey, "cache", `{"phase":"cutover","epoch":1,"at":"2025-01-02T03:04:05Z"}`).Err(); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, state.Cutover, "cache", c)
	if err := c.Set(ctx, "cache:p", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if !exists(t, s.targets["cache"], "cache:p") {
		t.Error("write not on the cache target after the switch")
	}
}

// TestAbsentFieldKeepsPhase: once a client holds a phase, a deleted (or
// evicted) control key does not send the bucket back to legacy; an
// unparsable field keeps it too and is reported. At start, no field means
// legacy.
func TestAbsentFieldKeepsPhase(t *testing.T) {
	flush(t)
	ctx := context.Background()
	s := newStores(t)
	c := newClient(t, s, func(o *client.Options) { o.PollInterval = 50 * time.Millisecond })
	if c.Phase("session").Phase != "" || c.Stats().Buckets["session"].Store != "legacy" {
		t.Fatalf("no field: %+v", c.Stats().Buckets["session"])
	}
	setPhase(t, "session", state.Cutover)
	waitPhase(t, state.Cutover, "session", c)
	reads := c.Stats().ControlReads
	s.legacy.Del(ctx, client.ControlKey)
	eventually(t, "two more control reads", func() bool { return c.Stats().ControlReads >= reads+2 })
	if c.Phase("session").Phase != state.Cutover {
		t.Fatalf("deleted control key moved session to %q", c.Phase("session").Phase)
	}
	s.legacy.HSet(ctx, client.ControlKey, "session", `{"phase":"sideways"}`)
	eventually(t, "the bad field reported", func() bool { return strings.Contains(c.Stats().LastControlError, "sideways") })
	if c.Phase("session").Phase != state.Cutover {
		t.Fatalf("unparsable field moved session to %q", c.Phase("session").Phase)
	}
	if err := c.Set(ctx, "session:x", "1", 0).Err(); err != nil || !exists(t, s.targets["session"], "session:x") {
		t.Errorf("session write after the control key vanished: %v", err)
	}
}

// TestNoTarget: a bucket cut over without a target for it is an error — at
// New, and for its commands when the cutover comes later — never legacy.
func TestNoTarget(t *testing.T) {
	flush(t)
	ctx := context.Background()
	s := newStores(t)
	delete(s.targets, "queue")
	c := newClient(t, s, nil)
	setPhase(t, "queue", state.Cutover)
	waitPhase(t, state.Cutover, "queue", c)
	if err := c.RPush(ctx, "q:1", "job").Err(); !errors.Is(err, client.ErrNoTarget) {
		t.Errorf("RPUSH on a cut-over bucket without target: %v", err)
	}
	if exists(t, s.legacy, "q:1") {
		t.Error("the write went to legacy")
	}
	if _, err := client.New(ctx, client.Options{PlanYAML: []byte(testPlan), Legacy: s.legacy, Targets: s.targets,
		Logger: slog.New(slog.DiscardHandler)}); err == nil ||
		!strings.Contains(err.Error(), "queue") {
		t.Errorf("New with queue cut over and no queue target: %v", err)
	}
}

// TestStoreFailureIsReturned: when the store a bucket routes to fails, the
// caller gets its error and nothing goes to legacy; a shadow read on a dead
// target never fails the caller.
func TestStoreFailureIsReturned(t *testing.T) {
	flush(t)
	ctx := context.Background()
	dead := topotest.Standalone(t)
	s := newStores(t)
	s.targets["ratelimit"] = redis.NewClient(&redis.Options{Addr: dead.Addr(), DisableIdentity: true, MaxRetries: -1})
	s.targets["cache"] = redis.NewClient(&redis.Options{Addr: dead.Addr(), DisableIdentity: true, MaxRetries: -1})
	defer s.targets["ratelimit"].Close()
	defer s.targets["cache"].Close()
	setPhase(t, "ratelimit", state.Cutover)
	setPhase(t, "cache", state.Syncing)
	c := newClient(t, s, func(o *client.Options) { o.ShadowReads = true })
	if err := dead.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := c.Incr(ctx, "rl:1").Err(); err == nil {
		t.Fatal("INCR on a dead ratelimit target succeeded")
	} else if errors.Is(err, client.ErrCrossBucket) || errors.Is(err, client.ErrUnroutable) {
		t.Fatalf("INCR: %v, want the store's error", err)
	}
	if exists(t, s.legacy, "rl:1") {
		t.Error("the failed write fell back to legacy")
	}
	s.legacy.Set(ctx, "cache:1", "v", 0)
	if v, err := c.Get(ctx, "cache:1").Result(); err != nil || v != "v" {
		t.Fatalf("GET cache:1 with a dead shadow target = %q, %v", v, err)
	}
	eventually(t, "the shadow error counted", func() bool { return c.Stats().ShadowErrors > 0 })
}

// TestShadowReadsCountMismatches: while a bucket syncs, reads are compared
// on its target; a difference is counted, never returned.
func TestShadowReadsCountMismatches(t *testing.T) {
	flush(t)
	ctx := context.Background()
	setPhase(t, "session", state.Syncing)
	s := newStores(t)
	c := newClient(t, s, func(o *client.Options) { o.ShadowReads = true })
	tg := s.targets["session"]
	for _, err := range []error{
		s.legacy.Set(ctx, "session:same", "x", 0).Err(), tg.Set(ctx, "session:same", "x", 0).Err(),
		s.legacy.Set(ctx, "session:diff", "1", 0).Err(), tg.Set(ctx, "session:diff", "2", 0).Err(),
		s.legacy.SAdd(ctx, "session:set", "a", "b", "c").Err(), tg.SAdd(ctx, "session:set", "c", "b", "a").Err(),
		s.legacy.HSet(ctx, "session:h", "f", "1", "g", "2").Err(), tg.HSet(ctx, "session:h", "g", "2", "f", "1").Err(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if v, err := c.Get(ctx, "session:diff").Result(); err != nil || v != "1" {
		t.Fatalf("GET session:diff = %q, %v: the caller must get legacy's answer", v, err)
	}
	c.Get(ctx, "session:same")
	c.Get(ctx, "session:absent") // redis.Nil on both: equal
	c.SMembers(ctx, "session:set")
	c.HGetAll(ctx, "session:h")
	c.TTL(ctx, "session:same") // not shadowed: TTLs move
	eventually(t, "five shadow reads", func() bool { return c.Stats().ShadowReads >= 5 })
	if st := c.Stats(); st.ShadowReads != 5 || st.ShadowMismatches != 1 || st.ShadowErrors != 0 {
		t.Errorf("shadow reads %d, mismatches %d, errors %d; want 5, 1, 0", st.ShadowReads, st.ShadowMismatches, st.ShadowErrors)
	}
}

// TestDependencies: importing the client pulls in neither cobra, viper nor
// redisconn (which replaces go-redis's logger), and no package it imports
// calls redis.SetLogger.
func TestDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{join .GoFiles \" \"}}",
		"github.com/redisplit/redisplit/dualwrite/client").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, "\t", 3)
		pkg := f[0]
		for _, bad := range []string{"github.com/spf13/cobra", "github.com/spf13/viper", "github.com/redisplit/redisplit/redisconn", "github.com/redisplit/redisplit/config/configfile"} {
			if pkg == bad || strings.HasPrefix(pkg, bad+"/") {
				t.Errorf("the client imports %s", pkg)
			}
		}
		if !strings.HasPrefix(pkg, "github.com/redisplit/") {
			continue
		}
		seen++
		for _, file := range strings.Fields(f[2]) {
			src, err := os.ReadFile(filepath.Join(f[1], file))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(src, []byte("SetLogger(")) {
				t.Errorf("%s/%s calls SetLogger", pkg, file)
			}
		}
	}
	if seen < 2 {
		t.Fatalf("go list found %d redisplit packages:\n%s", seen, out)
	}
}
