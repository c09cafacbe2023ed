package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/dualwrite/client"
	"github.com/redisplit/redisplit/state"
)

// TestRoutesByPlan: each command goes to the store the plan and the phase
// say — a cluster, a sentinel-backed and a standalone target, legacy —
// including typed rules (the command's implied type), generic commands on
// a name whose bucket depends on its type (TYPE lookup), scripts, WATCH and
// Do.
func TestRoutesByPlan(t *testing.T) {
	flush(t)
	ctx := context.Background()
	setPhase(t, "cache", state.Cutover)
	setPhase(t, "session", state.Completed)
	setPhase(t, "queue", state.Syncing)
	s := newStores(t)
	c := newClient(t, s, func(o *client.Options) { o.Plan, o.PlanYAML = writePlanFile(t), nil })

	p, err := classify.LoadPlan(writePlanFile(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.PlanHash() != p.Hash() {
		t.Errorf("plan hash %s, the tool's %s", c.PlanHash(), p.Hash())
	}

	for _, err := range []error{
		c.Set(ctx, "cache:1", "a", 0).Err(),
		c.Set(ctx, "sess:1", "b", 0).Err(),        // typed rule: a string sess:* is a session
		c.HSet(ctx, "sess:h", "f", "v").Err(),     // a hash sess:* matches no rule: legacy
		c.Set(ctx, "session:2", "c", 0).Err(),     // untyped prefix rule
		c.RPush(ctx, "q:1", "x").Err(),            // syncing: still legacy
		c.Set(ctx, "rl:1", 1, 0).Err(),            // no phase: legacy
		c.Set(ctx, "other", "x", 0).Err(),         // no rule: legacy
		c.Set(ctx, "redisplit:own", "x", 0).Err(), // redisplit's namespace: legacy
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	where := map[string]redis.Cmdable{"legacy": s.legacy, "cache": s.targets["cache"], "session": s.targets["session"], "queue": s.targets["queue"]}
	for key, want := range map[string]string{"cache:1": "cache", "sess:1": "session", "sess:h": "legacy", "session:2": "session",
		"q:1": "legacy", "rl:1": "legacy", "other": "legacy", "redisplit:own": "legacy"} {
		for name, st := range where {
			if got := exists(t, st, key); got != (name == want) {
				t.Errorf("%s on %s: %v, want it on %s only", key, name, got, want)
			}
		}
	}

	if v, err := c.Get(ctx, "cache:1").Result(); err != nil || v != "a" {
		t.Errorf("GET cache:1 = %q, %v", v, err)
	}
	if v, err := c.HGet(ctx, "sess:h", "f").Result(); err != nil || v != "v" {
		t.Errorf("HGET sess:h = %q, %v", v, err)
	}
	if _, err := c.Get(ctx, "cache:absent").Result(); err != redis.Nil {
		t.Errorf("GET of an absent key: %v, want redis.Nil unchanged", err)
	}
	if v, err := c.Do(ctx, "GET", "session:2").Text(); err != nil || v != "c" {
		t.Errorf("Do GET session:2 = %q, %v", v, err)
	}

	// EXPIRE names no type: sess:1 (a string) and sess:h (a hash) are found
	// by TYPE on the stores of their possible buckets.
	before := c.Stats().TypeLookups
	for _, k := range []string{"sess:1", "sess:h"} {
		if ok, err := c.Expire(ctx, k, time.Hour).Result(); err != nil || !ok {
			t.Fatalf("EXPIRE %s = %v, %v", k, ok, err)
		}
	}
	if ttl := s.targets["session"].TTL(ctx, "sess:1").Val(); ttl <= 0 {
		t.Errorf("sess:1 on the session target has TTL %v", ttl)
	}
	if ttl := s.legacy.TTL(ctx, "sess:h").Val(); ttl <= 0 {
		t.Errorf("sess:h on legacy has TTL %v", ttl)
	}
	if c.Stats().TypeLookups == before {
		t.Error("no TYPE lookup counted")
	}
	// In a transaction, a generic command on a key another command of it
	// types needs no lookup: SET makes sess:t a string, so a session.
	lookups := c.Stats().TypeLookups
	if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "sess:t", "1", 0)
		p.Expire(ctx, "sess:t", time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !exists(t, s.targets["session"], "sess:t") || c.Stats().TypeLookups != lookups {
		t.Errorf("transaction on sess:t: on the session target %v, lookups %d → %d",
			exists(t, s.targets["session"], "sess:t"), lookups, c.Stats().TypeLookups)
	}
	if n, err := c.Del(ctx, "sess:absent").Result(); err != nil || n != 0 {
		t.Errorf("DEL of an absent ambiguous key = %d, %v", n, err)
	}

	// A script runs where its KEYS are; EVALSHA's NOSCRIPT falls back to EVAL there.
	script := redis.NewScript(`return redis.call('GET', KEYS[1])`)
	if v, err := script.Run(ctx, c, []string{"session:2"}).Text(); err != nil || v != "c" {
		t.Errorf("script on session:2 = %q, %v", v, err)
	}
	// SCRIPT LOAD reaches every store, so EVALSHA works wherever the keys are.
	sha, err := c.ScriptLoad(ctx, `return redis.call('INCR', KEYS[1])`).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cache:n", "rl:n", "q:n"} {
		if err := c.EvalSha(ctx, sha, []string{k}).Err(); err != nil {
			t.Errorf("EVALSHA on %s: %v", k, err)
		}
	}
	if get(t, s.targets["cache"], "cache:n") != "1" || get(t, s.legacy, "rl:n") != "1" {
		t.Error("EVALSHA did not run where its keys are")
	}

	// WATCH runs on the store of its keys.
	err = c.Watch(ctx, func(tx *redis.Tx) error {
		n, err := tx.Get(ctx, "session:ctr").Int()
		if err != nil && err != redis.Nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error { return p.Set(ctx, "session:ctr", n+1, 0).Err() })
		return err
	}, "session:ctr")
	if err != nil {
		t.Fatal(err)
	}
	if get(t, s.targets["session"], "session:ctr") != "1" {
		t.Error("WATCH transaction did not run on the session target")
	}

	for _, tc := range [][3]string{{"cache:1", "", "cache"}, {"sess:1", "string", "session"}, {"sess:1", "hash", "unknown"},
		{"sess:1", "", ""}, {"other", "", "unknown"}, {"redisplit:own", "", "redisplit"}} {
		if got := c.BucketOf(tc[0], tc[1]); got != tc[2] {
			t.Errorf("BucketOf(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
	if st, err := c.For(ctx, "cache:1"); err != nil || st != s.targets["cache"] {
		t.Errorf("For(cache:1) = %v, %v", st, err)
	}

	// Commands that name no key, or that the table does not know, are refused.
	for name, err := range map[string]error{
		"KEYS":     c.Keys(ctx, "*").Err(),
		"SCAN":     c.Scan(ctx, 0, "", 10).Err(),
		"FLUSHDB":  c.FlushDB(ctx).Err(),
		"JSON.GET": c.Do(ctx, "json.get", "cache:1").Err(),
		"SELECT":   c.Do(ctx, "select", 1).Err(),
	} {
		if !errors.Is(err, client.ErrUnroutable) {
			t.Errorf("%s: %v, want ErrUnroutable", name, err)
		}
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Errorf("PING: %v", err)
	}

	st := c.Stats()
	for _, name := range []string{"legacy", "cache target", "session target"} {
		if st.Commands[name] == 0 {
			t.Errorf("no command counted for %s: %v", name, st.Commands)
		}
	}
	if st.Buckets["cache"].Store != "cache target" || st.Buckets["queue"].Store != "legacy" || st.Buckets["ratelimit"].Phase != "" {
		t.Errorf("bucket stats: %+v", st.Buckets)
	}
}

// TestUnknownBucket: with Options.Unknown naming a bucket (redisplit.yaml's
// unknown:), keys of no rule follow that bucket, as the tool copies them.
func TestUnknownBucket(t *testing.T) {
	flush(t)
	ctx := context.Background()
	setPhase(t, "cache", state.Cutover)
	s := newStores(t)
	c := newClient(t, s, func(o *client.Options) { o.Unknown = "cache" })
	if err := c.Set(ctx, "norule", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if !exists(t, s.targets["cache"], "norule") || exists(t, s.legacy, "norule") {
		t.Error("a key of no rule did not follow the unknown: bucket")
	}
	if err := c.MGet(ctx, "{x}norule", "cache:{x}1").Err(); err != nil { // one slot: the target is a cluster
		t.Errorf("MGET of an unknown key and a cache key, both cache: %v", err)
	}
}

// TestCrossBucketRefused: commands, transactions, scripts, WATCH and
// pipelines naming keys of two buckets fail with ErrCrossBucket before
// anything is sent — also while every bucket is still on legacy — and
// single-bucket ones go to that bucket's store.
func TestCrossBucketRefused(t *testing.T) {
	flush(t)
	ctx := context.Background()
	s := newStores(t)
	c := newClient(t, s, nil)

	type call struct {
		name string
		run  func() error
	}
	cross := []call{
		{"MGET", func() error { return c.MGet(ctx, "cache:1", "sess:1").Err() }},
		{"MSET", func() error { return c.MSet(ctx, "cache:1", "a", "session:1", "b").Err() }},
		{"DEL", func() error { return c.Del(ctx, "cache:1", "q:1").Err() }},
		{"RENAME", func() error { return c.Rename(ctx, "cache:1", "session:1").Err() }},
		{"SUNIONSTORE", func() error { return c.SUnionStore(ctx, "q:dst", "cache:s", "q:s").Err() }},
		{"EVAL", func() error { return c.Eval(ctx, "return 1", []string{"cache:1", "session:1"}).Err() }},
		{"MULTI/EXEC", func() error {
			_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "cache:1", "a", 0)
				p.Set(ctx, "session:1", "b", 0)
				return nil
			})
			return err
		}},
		{"WATCH", func() error { return c.Watch(ctx, func(*redis.Tx) error { return nil }, "cache:1", "session:1") }},
		{"pipeline", func() error {
			cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "q:ok", "a", 0)
				p.MGet(ctx, "cache:1", "rl:1")
				return nil
			})
			for _, cmd := range cmds {
				if !errors.Is(cmd.Err(), client.ErrCrossBucket) {
					t.Errorf("pipeline: %s carries %v, want the refusal", cmd.Name(), cmd.Err())
				}
			}
			return err
		}},
	}
	for _, phases := range []string{"before cutover", "after cutover"} {
		if phases == "after cutover" {
			setPhase(t, "cache", state.Cutover)
			setPhase(t, "queue", state.Cutover)
			waitPhase(t, state.Cutover, "queue", c)
		}
		for _, tc := range cross {
			err := tc.run()
			var ce *client.CrossBucketError
			if !errors.Is(err, client.ErrCrossBucket) || !errors.As(err, &ce) || len(ce.Buckets) != 2 {
				t.Errorf("%s %s: %v, want ErrCrossBucket naming two buckets", phases, tc.name, err)
				continue
			}
			for _, b := range ce.Buckets {
				if !strings.Contains(err.Error(), b) {
					t.Errorf("%s: %q does not name bucket %s", tc.name, err, b)
				}
			}
		}
		for name, st := range map[string]redis.UniversalClient{"legacy": s.legacy, "queue": s.targets["queue"]} {
			keys, _ := st.Keys(ctx, "*").Result()
			var data []string
			for _, k := range keys {
				if !strings.HasPrefix(k, "redisplit:") {
					data = append(data, k)
				}
			}
			if len(data) > 0 {
				t.Errorf("%s: refused commands wrote %v on %s", phases, data, name)
			}
		}
	}
	if c.Stats().CrossBucket == 0 {
		t.Error("refusals not counted")
	}

	// Single-bucket multi-key commands, transactions and scripts run on the
	// bucket's store (queue is cut over).
	if err := c.MSet(ctx, "q:1", "1", "q:2", "2").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "q:1")
		p.Expire(ctx, "q:1", time.Hour)
		p.Ping(ctx)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Eval(ctx, "return redis.call('GET', KEYS[1]) .. redis.call('GET', KEYS[2])", []string{"q:1", "q:2"}).Text(); err != nil || v != "22" {
		t.Errorf("EVAL on two queue keys = %q, %v", v, err)
	}
	if got := s.targets["queue"].MGet(ctx, "q:1", "q:2").Val(); len(got) != 2 || got[0] != "2" || got[1] != "2" {
		t.Errorf("queue target holds %v", got)
	}
	if exists(t, s.legacy, "q:1") {
		t.Error("q:1 reached legacy after the queue cutover")
	}
}

// TestPipelineSplit: a pipeline is split per store (cluster, sentinel,
// standalone target, legacy) and every command's result is in its own
// Cmder, in order; the pipeline's error is the first command error, as on a
// plain client.
func TestPipelineSplit(t *testing.T) {
	flush(t)
	ctx := context.Background()
	for _, b := range []string{"cache", "session", "queue"} {
		setPhase(t, b, state.Cutover)
	}
	s := newStores(t)
	c := newClient(t, s, nil)
	if err := s.legacy.Set(ctx, "rl:seed", "legacy", 0).Err(); err != nil {
		t.Fatal(err)
	}

	p := c.Pipeline()
	sets := []*redis.StatusCmd{}
	for i := 0; i < 20; i++ { // keys on every cluster node
		sets = append(sets, p.Set(ctx, "cache:p"+string(rune('a'+i)), i, 0))
	}
	sess := p.Set(ctx, "session:p", "s", 0)
	incr := p.Incr(ctx, "q:p")
	missing := p.Get(ctx, "nobucket:p")
	rl := p.Get(ctx, "rl:seed")
	back := p.Get(ctx, "cache:pc")
	sessBack := p.Get(ctx, "session:p")
	incr2 := p.Incr(ctx, "q:p")
	cmds, err := p.Exec(ctx)
	if err != redis.Nil {
		t.Errorf("Exec error %v, want redis.Nil (the first command error: GET nobucket:p)", err)
	}
	if len(cmds) != 27 {
		t.Fatalf("%d commands back", len(cmds))
	}
	for _, s := range sets {
		if s.Err() != nil {
			t.Fatal(s.Err())
		}
	}
	if sess.Err() != nil || incr.Val() != 1 || incr2.Val() != 2 || missing.Err() != redis.Nil ||
		rl.Val() != "legacy" || back.Val() != "2" || sessBack.Val() != "s" {
		t.Errorf("results: sess %v, incr %d/%d, missing %v, rl %q, back %q, sessBack %q",
			sess.Err(), incr.Val(), incr2.Val(), missing.Err(), rl.Val(), back.Val(), sessBack.Val())
	}
	if get(t, s.targets["cache"], "cache:pt") != "19" || get(t, s.targets["session"], "session:p") != "s" ||
		get(t, s.targets["queue"], "q:p") != "2" {
		t.Error("pipeline writes not on their targets")
	}
	for _, k := range []string{"cache:pa", "session:p", "q:p"} {
		if exists(t, s.legacy, k) {
			t.Errorf("%s reached legacy", k)
		}
	}
}

// TestHooksSeeCommandsBeforeRouting: a hook added to the client sees every
// command and pipeline, as on a plain go-redis client.
func TestHooksSeeCommandsBeforeRouting(t *testing.T) {
	flush(t)
	ctx := context.Background()
	c := newClient(t, newStores(t), nil)
	h := &countHook{}
	c.AddHook(h)
	c.Set(ctx, "cache:h", "1", 0)
	c.Pipelined(ctx, func(p redis.Pipeliner) error { p.Get(ctx, "cache:h"); return nil })
	if h.cmds != 1 || h.pipes != 1 {
		t.Errorf("hook saw %d commands, %d pipelines", h.cmds, h.pipes)
	}
}

type countHook struct{ cmds, pipes int }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.cmds++; return next(ctx, cmd) }
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.pipes++; return next(ctx, cmds) }
}
