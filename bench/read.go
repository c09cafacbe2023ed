package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/redisplit/redisplit/store"
)

// bench read: the latency and legacy CPU of one read of the copier
// (store.RedisSource.Read) as the live phase does it — a few keys at a
// time — with the read script (one round trip: size check and read in one
// step) and without it (the MEMORY USAGE pipeline, then MULTI: two round
// trips), alternating in rounds against the same legacy so that both see
// the same machine. Per way it prints the latency of a Read call (p50,
// p90, p99, max) and legacy's CPU per key.
//
//	go run ./bench read -keys 200000 -reads 20000 -per 1
func init() { modes["read"] = benchRead }

func benchRead(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("read", flag.ContinueOnError)
	n := fs.Int("keys", 200000, "keys in the benchmark keyspace")
	reads := fs.Int("reads", 20000, "Read calls per way and round")
	per := fs.Int("per", 1, "keys per Read call (the live phase reads a few at a time)")
	rounds := fs.Int("rounds", 4, "rounds; the ways alternate which goes first")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr, c, keys, stop, err := legacyWithKeys(ctx, *n)
	if err != nil {
		return err
	}
	defer stop()
	steal := readCPU()
	type way struct {
		name string
		src  *store.RedisSource
		lat  []time.Duration
		cpu  float64
		keys int
	}
	ways := []*way{
		{name: "read script (one round trip)", src: &store.RedisSource{Client: c}},
		{name: "MEMORY USAGE, then MULTI (two round trips)", src: &store.RedisSource{Client: c, NoScript: true}},
	}
	for _, w := range ways {
		defer w.src.Close()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for r := 0; r < *rounds; r++ {
		order := ways
		if r%2 == 1 {
			order = []*way{ways[1], ways[0]}
		}
		for _, w := range order {
			cpu0 := ServerCPU(ctx, addr)
			for i := 0; i < *reads; i++ {
				batch := make([]string, *per)
				for j := range batch {
					batch[j] = keys[rng.IntN(len(keys))]
				}
				t0 := time.Now()
				if err := w.src.Read(ctx, batch, func([]*store.Entry) error { return nil }); err != nil {
					return fmt.Errorf("%s: %w", w.name, err)
				}
				w.lat = append(w.lat, time.Since(t0))
			}
			w.cpu += ServerCPU(ctx, addr) - cpu0
			w.keys += *reads * *per
		}
	}
	fmt.Printf("%d Read calls of %d key(s) per way (%d rounds, alternating), keyspace %d keys\n", *reads**rounds, *per, *rounds, len(keys))
	for _, w := range ways {
		sort.Slice(w.lat, func(i, j int) bool { return w.lat[i] < w.lat[j] })
		q := func(f float64) time.Duration { return w.lat[int(f*float64(len(w.lat)-1))] }
		fmt.Printf("  %-44s latency p50 %v p90 %v p99 %v max %v; legacy CPU %.2f µs/key\n", w.name,
			q(0.5).Round(time.Microsecond), q(0.9).Round(time.Microsecond), q(0.99).Round(time.Microsecond), w.lat[len(w.lat)-1].Round(time.Microsecond),
			w.cpu*1e6/float64(w.keys))
	}
	fmt.Println(machineLine(steal))
	return nil
}
