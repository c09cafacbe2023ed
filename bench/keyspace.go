package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/topology"
)

// Benchmark keyspace (deterministic): of n keys,
//
//	60% strings cache:api:v1:item:{i}  (100–600-byte values, TTL 1 day)
//	20% hashes  sess:{i as 12 hex}     (5 fields, TTL 1 day)
//	10% strings rl:login:{i}           (small integers, TTL 1 day)
//	 5% lists   queue:jobs:{i}         (10 JSON items)
//	 3% sets    user:{i}:tags          (8 members)
//	 2% zsets   lb:{i}                 (8 members)
const day = 24 * time.Hour

// keyAt returns the kind and name of key i of the keyspace.
func keyAt(i int) (kind, name string) {
	switch r := i % 100; {
	case r < 60:
		return "cache", "cache:api:v1:item:" + strconv.Itoa(i)
	case r < 80:
		return "sess", fmt.Sprintf("sess:%012x", i)
	case r < 90:
		return "rl", "rl:login:" + strconv.Itoa(i)
	case r < 95:
		return "queue", "queue:jobs:" + strconv.Itoa(i)
	case r < 98:
		return "tags", "user:" + strconv.Itoa(i) + ":tags"
	default:
		return "lb", "lb:" + strconv.Itoa(i)
	}
}

// value400 is the filler for cache values; sizes cycle through 100..600.
var filler = strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789", 20)

func writeKey(ctx context.Context, p redis.Pipeliner, i int) {
	kind, k := keyAt(i)
	switch kind {
	case "cache":
		size := 100 + (i*7919)%501
		p.Set(ctx, k, filler[:size], day)
	case "sess":
		p.HSet(ctx, k, "user_id", i, "created", 1700000000+i, "ip", "10.0.0.1", "ua", "Mozilla/5.0", "csrf", fmt.Sprintf("%016x", i*31))
		p.Expire(ctx, k, day)
	case "rl":
		p.Set(ctx, k, i%50, day)
	case "queue":
		items := make([]any, 10)
		for j := range items {
			items[j] = fmt.Sprintf(`{"jid":"%d-%d","class":"Job","args":[%d]}`, i, j, j)
		}
		p.RPush(ctx, k, items...)
	case "tags":
		m := make([]any, 8)
		for j := range m {
			m[j] = "tag" + strconv.Itoa(j)
		}
		p.SAdd(ctx, k, m...)
	case "lb":
		z := make([]redis.Z, 8)
		for j := range z {
			z[j] = redis.Z{Score: float64(j * i), Member: "player" + strconv.Itoa(j)}
		}
		p.ZAdd(ctx, k, z...)
	}
}

// Generate writes keys [0, n) of the benchmark keyspace into addr with
// pipelined batches on a few connections.
func Generate(ctx context.Context, addr string, n int) error {
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 8, DisableIdentity: true})
	defer c.Close()
	const batch = 2000
	workers := 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for start := w * batch; start < n; start += workers * batch {
				p := c.Pipeline()
				for i := start; i < min(start+batch, n); i++ {
					writeKey(ctx, p, i)
				}
				if _, err := p.Exec(ctx); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// StartLegacy starts a local redis-server holding the benchmark keyspace of
// n keys. The returned stop function removes it.
func StartLegacy(ctx context.Context, n int) (topology.Server, func(), error) {
	dir, err := os.MkdirTemp("", "redisplit-bench-")
	if err != nil {
		return nil, nil, err
	}
	b, err := topology.NewProcessBackend(dir)
	if err != nil {
		return nil, nil, err
	}
	stop := func() { b.Close(); os.RemoveAll(dir) }
	s, err := topology.Standalone(ctx, b, "legacy")
	if err != nil {
		stop()
		return nil, nil, err
	}
	t0 := time.Now()
	if err := Generate(ctx, s.Addr(), n); err != nil {
		stop()
		return nil, nil, err
	}
	fmt.Fprintf(os.Stderr, "bench: generated %d keys in %s on %s\n", n, time.Since(t0).Round(time.Millisecond), s.Addr())
	return s, stop, nil
}

// PeakRSS returns this process's peak resident set size in bytes (VmHWM).
func PeakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// ServerCPU returns the user+system CPU seconds a redis-server has used
// (INFO cpu), to report the load a run put on legacy.
func ServerCPU(ctx context.Context, addr string) float64 {
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer c.Close()
	s, err := c.Info(ctx, "cpu").Result()
	if err != nil {
		return 0
	}
	var total float64
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}

func init() {
	modes["generate"] = func(ctx context.Context, args []string) error {
		if len(args) != 2 {
			return fmt.Errorf("usage: bench generate ADDR N")
		}
		n, err := strconv.Atoi(args[1])
		if err != nil {
			return err
		}
		return Generate(ctx, args[0], n)
	}
}
