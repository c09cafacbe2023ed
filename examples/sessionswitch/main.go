// Command sessionswitch is an application that keeps its sessions and its
// cache in one Redis and uses redisplit's client so that the session bucket
// can be moved to its own store while it runs: when the control key on
// legacy says "cutover", every instance sends its session reads and writes
// to the session target; "rolled-back" sends them back. Nothing restarts.
//
// Run it against local servers:
//
//	redis-server --port 6379 --save "" &   # legacy
//	redis-server --port 6380 --save "" &   # session target
//	go run ./examples/sessionswitch -legacy redis://127.0.0.1:6379 -session redis://127.0.0.1:6380
//
// and, in another terminal, play the part of `redisplit cutover` and
// `redisplit rollback` (which write the same control key):
//
//	go run ./examples/sessionswitch -legacy redis://127.0.0.1:6379 -set-phase session=cutover
//	go run ./examples/sessionswitch -legacy redis://127.0.0.1:6379 -set-phase session=rolled-back
//
// The status line shows the switch: the session bucket's phase and store,
// and the commands each store received. Without `redisplit migrate
// --dual-write` running, nothing copies the sessions between the stores, so
// logins made before a switch are not found after it (the demo counts them
// as "lost sessions"); with it running, none are.
//
// The session target may be a sentinel-backed master (-session-master and
// -session-sentinels) and the cache target a cluster (-cache-cluster).
// Failure policy, as the client's guide recommends: a cache failure is a
// miss (the page is rendered from the database), a session failure fails
// the request.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/dualwrite/client"
	"github.com/redisplit/redisplit/state"
)

// plan is the application's routing; in production it is the file
// `redisplit scan --plan-out` wrote, passed with -plan.
const plan = `version: 1
rules:
  - {prefix: "session:", bucket: session}
  - {prefix: "cache:", bucket: cache}
`

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sessionswitch:", err)
		os.Exit(1)
	}
}

func run() error {
	legacyURL := flag.String("legacy", "redis://127.0.0.1:6379", "legacy Redis URL")
	planFile := flag.String("plan", "", "plan file (default: a built-in plan routing session:* and cache:*)")
	session := flag.String("session", "", "session target URL (standalone)")
	sessionMaster := flag.String("session-master", "", "session target: sentinel master name")
	sessionSentinels := flag.String("session-sentinels", "", "session target: comma-separated sentinel addresses")
	cache := flag.String("cache", "", "cache target URL (standalone)")
	cacheCluster := flag.String("cache-cluster", "", "cache target: comma-separated cluster seed addresses")
	workers := flag.Int("workers", 4, "concurrent request loops")
	shadow := flag.Bool("shadow", true, "compare reads on the target while a bucket is syncing")
	setPhase := flag.String("set-phase", "", "write BUCKET=PHASE into the control key and exit (what redisplit cutover/rollback do)")
	flag.Parse()

	legacy, err := client.Endpoint{URL: *legacyURL}.Connect()
	if err != nil {
		return err
	}
	defer legacy.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	if *setPhase != "" {
		bucket, phase, ok := strings.Cut(*setPhase, "=")
		if !ok {
			return fmt.Errorf("-set-phase wants BUCKET=PHASE, e.g. session=cutover")
		}
		v, err := client.SetPhase(ctx, legacy, bucket, state.Phase(phase), "", time.Now())
		if err != nil {
			return err
		}
		fmt.Printf("%s: %s (epoch %d)\n", bucket, v.Phase, v.Epoch)
		return nil
	}

	targets := map[string]redis.UniversalClient{}
	add := func(bucket string, e client.Endpoint) error {
		c, err := e.Connect()
		if err != nil {
			return fmt.Errorf("%s target: %w", bucket, err)
		}
		targets[bucket] = c
		return nil
	}
	switch {
	case *sessionMaster != "":
		err = add("session", client.Endpoint{Kind: client.KindSentinel, Master: *sessionMaster, Sentinels: strings.Split(*sessionSentinels, ",")})
	case *session != "":
		err = add("session", client.Endpoint{URL: *session})
	}
	if err != nil {
		return err
	}
	switch {
	case *cacheCluster != "":
		err = add("cache", client.Endpoint{Kind: client.KindCluster, Addrs: strings.Split(*cacheCluster, ",")})
	case *cache != "":
		err = add("cache", client.Endpoint{URL: *cache})
	}
	if err != nil {
		return err
	}

	opts := client.Options{Legacy: legacy, Targets: targets, CloseStores: true, ShadowReads: *shadow,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	if *planFile != "" {
		opts.Plan = *planFile
	} else {
		opts.PlanYAML = []byte(plan)
	}
	rdb, err := client.New(ctx, opts)
	if err != nil {
		return err
	}
	defer rdb.Close()

	app := &app{rdb: rdb}
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Go(func() { app.loop(ctx, w) })
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			app.status()
			return nil
		case <-t.C:
			app.status()
		}
	}
}

// app is the application: requests log users in, read their session, and
// render a page from the cache.
type app struct {
	rdb                                 redis.UniversalClient // *client.Client, used like any go-redis client
	requests, failed, lost, cacheErrors atomic.Int64
}

func (a *app) loop(ctx context.Context, worker int) {
	users := make([]string, 50)
	for i := range users {
		users[i] = fmt.Sprintf("session:%d-%d", worker, i)
	}
	known := map[string]bool{}
	for ctx.Err() == nil {
		id := users[rand.IntN(len(users))]
		if err := a.request(ctx, id, known); err != nil && ctx.Err() == nil {
			a.failed.Add(1)
			slog.Error("request failed", "session", id, "err", err)
		}
		a.requests.Add(1)
		time.Sleep(2 * time.Millisecond)
	}
}

// request is one page view: the session must work (an error fails the
// request); the cache may fail (the page is then built without it).
func (a *app) request(ctx context.Context, id string, known map[string]bool) error {
	_, err := a.rdb.Get(ctx, id).Result()
	switch {
	case errors.Is(err, redis.Nil):
		if known[id] {
			a.lost.Add(1) // written before a switch, not copied: run the mirror
		}
		if err := a.rdb.Set(ctx, id, time.Now().Format(time.RFC3339Nano), 30*time.Minute).Err(); err != nil {
			return fmt.Errorf("login: %w", err)
		}
		known[id] = true
	case err != nil:
		return fmt.Errorf("session: %w", err)
	default:
		if err := a.rdb.Expire(ctx, id, 30*time.Minute).Err(); err != nil {
			return fmt.Errorf("session refresh: %w", err)
		}
	}
	page := "cache:page:" + id[len("session:"):]
	if _, err := a.rdb.Get(ctx, page).Result(); err != nil && !errors.Is(err, redis.Nil) {
		a.cacheErrors.Add(1) // degrade: render without the cache
	} else if errors.Is(err, redis.Nil) {
		if err := a.rdb.Set(ctx, page, "<html>...</html>", time.Minute).Err(); err != nil {
			a.cacheErrors.Add(1)
		}
	}
	return nil
}

func (a *app) status() {
	st := a.rdb.(*client.Client).Stats()
	var b strings.Builder
	for _, name := range []string{"session", "cache"} {
		bs := st.Buckets[name]
		phase := string(bs.Phase)
		if phase == "" {
			phase = "planned"
		}
		fmt.Fprintf(&b, "%s %s→%s  ", name, phase, bs.Store)
	}
	fmt.Printf("%srequests %d failed %d lost-sessions %d cache-errors %d commands %v shadow %d/%d mismatched\n",
		b.String(), a.requests.Load(), a.failed.Load(), a.lost.Load(), a.cacheErrors.Load(), st.Commands,
		st.ShadowMismatches, st.ShadowReads)
}
