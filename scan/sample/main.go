// Command sample loads the demo keyspace into a Redis server: framework keys
// of every bucket (the rehearse package's deterministic synthetic keyspace:
// Rails, Django, Spring, Laravel, Sidekiq, BullMQ, Celery, rack-attack, ...,
// all routed by the presets) plus application keys no preset knows, for which
// `redisplit scan` proposes rules from evidence:
//
//	myapp:throttle:{ip}          int counters, 60 s TTL     → ratelimit proposal
//	shop:cache:product:{n}       strings, 1 h TTL           → cache proposal
//	shop:worker:mail:backlog:{n} lists of JSON jobs, no TTL → queue proposal
//	web:{id}                     express-session JSON values,
//	                             1 day TTL                  → session proposal (from the values)
//	analytics:{n}:events         zsets, no TTL              → stays unknown
//	tmp:{uuid}                   strings, no TTL            → stays unknown
//
//	go run ./scan/sample [-keys N] HOST:PORT[/DB]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/rehearse"
)

func main() {
	n := flag.Int("keys", 20000, "framework keys (the application keys add about a quarter more)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: sample [-keys N] HOST:PORT[/DB]")
		os.Exit(2)
	}
	addr, db := flag.Arg(0), 0
	if i := strings.IndexByte(addr, '/'); i >= 0 {
		db, _ = strconv.Atoi(addr[i+1:])
		addr = addr[:i]
	}
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr, DB: db, DisableIdentity: true})
	defer c.Close()
	g, err := rehearse.Synthetic{Keys: *n, Seed: 1, NoBig: true, ShortTTL: -1}.Generate(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sample:", err)
		os.Exit(1)
	}
	app, err := appKeys(ctx, c, *n/4)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sample:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "sample: %d framework keys and %d application keys on %s db %d\n", g.Total, app, addr, db)
}

// appKeys writes the application keys and returns how many.
func appKeys(ctx context.Context, c *redis.Client, n int) (int, error) {
	p := c.Pipeline()
	written := 0
	for i := 0; i < n; i++ {
		if i%10 == 9 {
			p.Set(ctx, fmt.Sprintf("web:%016xQk3pZ9%08x", uint64(i)*0x9e3779b97f4a7c15, i),
				fmt.Sprintf(`{"cookie":{"originalMaxAge":86400000,"httpOnly":true,"path":"/"},"uid":%d}`, i), 24*time.Hour)
			written++
			continue
		}
		switch i % 5 {
		case 0:
			p.Set(ctx, fmt.Sprintf("myapp:throttle:10.%d.%d.%d", i>>16&255, i>>8&255, i&255), i%30, time.Minute)
		case 1:
			p.Set(ctx, fmt.Sprintf("shop:cache:product:%d", i), strings.Repeat("p", 200+i%300), time.Hour)
		case 2:
			k := fmt.Sprintf("shop:worker:mail:backlog:%d", i)
			p.RPush(ctx, k, fmt.Sprintf(`{"to":"u%d@example.com","tpl":"welcome"}`, i), `{"to":"ops@example.com","tpl":"digest"}`)
		case 3:
			p.ZAdd(ctx, fmt.Sprintf("analytics:%d:events", i), redis.Z{Score: float64(i), Member: "view"}, redis.Z{Score: float64(i + 1), Member: "click"})
		case 4:
			p.Set(ctx, fmt.Sprintf("tmp:%08x-%04x-4%03x-a%03x-%012x", i*7919, i%65536, i%4096, (i*31)%4096, i*104729), "x", 0)
		}
		written++
		if p.Len() >= 1000 {
			if _, err := p.Exec(ctx); err != nil {
				return written, err
			}
		}
	}
	_, err := p.Exec(ctx)
	return written, err
}
