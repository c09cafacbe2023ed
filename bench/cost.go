package main

import (
	"context"
	"crypto/sha1"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
)

// bench cost: what each command a backfill may send costs legacy per key.
// The keyspace's names are listed once (not measured); then every probe —
// one command, or a shape of commands per key such as MULTI ... EXEC per
// batch — runs over every key in pipelines of -batch keys on -workers
// connections, and legacy's CPU (INFO cpu) and INFO commandstats are read
// around it. It prints, per probe, legacy CPU per key (everything the server
// spends: parsing, the command, the reply, the syscalls) and the
// commandstats usec per call (the command alone).
//
//	go run ./bench cost -keys 200000
func init() { modes["cost"] = benchCost }

// probe is one shape of commands per key; per, when set, is appended per
// batch of keys instead of per key.
type probe struct {
	name   string
	key    func(rc *redisconn.Raw, k string) int // commands per key; returns replies
	batch  func(rc *redisconn.Raw, keys []string) int
	script string // loaded before the probe runs
}

func simple(name string, args ...string) probe {
	return probe{name: name, key: func(rc *redisconn.Raw, k string) int {
		a := make([]string, 0, len(args)+1)
		for _, x := range args {
			if x == "K" {
				x = k
			}
			a = append(a, x)
		}
		rc.Command(a...)
		return 1
	}}
}

func pair(name string, a, b []string) probe {
	pa, pb := simple("", a...), simple("", b...)
	return probe{name: name, key: func(rc *redisconn.Raw, k string) int { return pa.key(rc, k) + pb.key(rc, k) }}
}

// luaRead1 and luaRead2 are the shapes of a scripted read: PTTL and DUMP
// per key and one TIME, without and with a MEMORY USAGE probe before DUMP.
const (
	luaRead1 = `local out = {}
for i, k in ipairs(KEYS) do
  local t = redis.call('PTTL', k)
  out[#out+1] = t
  if t == -2 then out[#out+1] = false else out[#out+1] = redis.call('DUMP', k) end
end
local tm = redis.call('TIME')
out[#out+1] = tm[1]
return out`
	luaRead3 = `#!lua flags=no-writes
local out = {}
for i, k in ipairs(KEYS) do
  local t = redis.call('PEXPIRETIME', k)
  out[#out+1] = t
  if t == -2 then out[#out+1] = false
  elseif redis.call('MEMORY', 'USAGE', k, 'SAMPLES', '1') > 8388608 then out[#out+1] = redis.call('TYPE', k)['ok']
  else out[#out+1] = redis.call('DUMP', k) end
end
return out`
	luaReadEnc = `#!lua flags=no-writes
local out = {}
local bounded = {embstr=true, int=true, listpack=true, intset=true, ziplist=true}
for i, k in ipairs(KEYS) do
  local t = redis.call('PEXPIRETIME', k)
  out[#out+1] = t
  if t == -2 then out[#out+1] = false
  else
    local enc = redis.call('OBJECT', 'ENCODING', k)
    local size = 0
    if enc == 'raw' then size = redis.call('STRLEN', k)
    elseif not bounded[enc] then size = redis.call('MEMORY', 'USAGE', k, 'SAMPLES', '1') end
    if size > 8388608 then out[#out+1] = redis.call('TYPE', k)['ok'] else out[#out+1] = redis.call('DUMP', k) end
  end
end
return out`
	luaReadNone = `#!lua flags=no-writes
local out = {}
for i, k in ipairs(KEYS) do
  local t = redis.call('PEXPIRETIME', k)
  out[#out+1] = t
  if t == -2 then out[#out+1] = false else out[#out+1] = redis.call('DUMP', k) end
end
return out`
	luaRead2 = `local out = {}
for i, k in ipairs(KEYS) do
  local t = redis.call('PTTL', k)
  out[#out+1] = t
  if t == -2 then out[#out+1] = false
  elseif redis.call('MEMORY', 'USAGE', k, 'SAMPLES', '1') > 8388608 then out[#out+1] = redis.call('TYPE', k)
  else out[#out+1] = redis.call('DUMP', k) end
end
local tm = redis.call('TIME')
out[#out+1] = tm[1]
return out`
)

func luaProbe(name, script string) probe {
	sha := fmt.Sprintf("%x", sha1.Sum([]byte(script)))
	return probe{name: name, script: script, batch: func(rc *redisconn.Raw, keys []string) int {
		args := append([]string{"EVALSHA", sha, strconv.Itoa(len(keys))}, keys...)
		rc.Command(args...)
		return 1
	}}
}

func luaSizes(call string) string {
	return "local out = {}\nfor i, k in ipairs(KEYS) do\n  out[i] = " + call + "\nend\nreturn out"
}

var costProbes = []probe{
	luaProbe("EVALSHA loop only", luaSizes("1")),
	luaProbe("EVALSHA MEMORY USAGE", luaSizes("redis.call('MEMORY', 'USAGE', k, 'SAMPLES', '1') or false")),
	luaProbe("EVALSHA OBJECT ENCODING", luaSizes("redis.call('OBJECT', 'ENCODING', k) or false")),
	luaProbe("EVALSHA TYPE", luaSizes("redis.call('TYPE', k).ok")),
	luaProbe("EVALSHA EXISTS", luaSizes("redis.call('EXISTS', k)")),
	luaProbe("EVALSHA PTTL+DUMP.. TIME", luaRead1),
	luaProbe("EVALSHA PTTL+MEMUSAGE+DUMP.. TIME", luaRead2),
	simple("DUMP", "DUMP", "K"),
	simple("PTTL", "PTTL", "K"),
	simple("PEXPIRETIME", "PEXPIRETIME", "K"),
	simple("TYPE", "TYPE", "K"),
	simple("EXISTS", "EXISTS", "K"),
	simple("OBJECT ENCODING", "OBJECT", "ENCODING", "K"),
	simple("MEMORY USAGE SAMPLES 1", "MEMORY", "USAGE", "K", "SAMPLES", "1"),
	simple("MEMORY USAGE SAMPLES 0", "MEMORY", "USAGE", "K", "SAMPLES", "0"),
	pair("DUMP + PTTL (bare)", []string{"DUMP", "K"}, []string{"PTTL", "K"}),
	pair("PEXPIRETIME + DUMP", []string{"PEXPIRETIME", "K"}, []string{"DUMP", "K"}),
	{name: "MULTI PTTL+DUMP.. TIME EXEC", batch: multiRead("PTTL", true)},
	luaProbe("EVALSHA PEXPIRETIME+MEMUSAGE+DUMP..", luaRead3),
	luaProbe("EVALSHA PEXPIRETIME+ENCODING-gated+DUMP..", luaReadEnc),
	luaProbe("EVALSHA PEXPIRETIME+DUMP.. (no check)", luaReadNone),
	{name: "MEMUSAGE.. MULTI PEXPIRETIME+DUMP.. EXEC", batch: func(rc *redisconn.Raw, keys []string) int {
		for _, k := range keys {
			rc.Command("MEMORY", "USAGE", k, "SAMPLES", "1")
		}
		return len(keys) + multiRead("PEXPIRETIME", false)(rc, keys)
	}},
	{name: "MULTI PEXPIRETIME+DUMP.. EXEC", batch: multiRead("PEXPIRETIME", false)},
}

// multiRead is the copier's atomic read of a batch without its size check:
// MULTI, expiry (PTTL or PEXPIRETIME) and DUMP per key, TIME when withTime,
// EXEC.
func multiRead(expiry string, withTime bool) func(rc *redisconn.Raw, keys []string) int {
	return func(rc *redisconn.Raw, keys []string) int {
		rc.Command("MULTI")
		for _, k := range keys {
			rc.Command(expiry, k)
			rc.Command("DUMP", k)
		}
		n := 2*len(keys) + 2
		if withTime {
			rc.Command("TIME")
			n++
		}
		rc.Command("EXEC")
		return n
	}
}

func benchCost(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cost", flag.ContinueOnError)
	n := fs.Int("keys", 200000, "keys in the benchmark keyspace")
	workers := fs.Int("workers", 4, "connections")
	batch := fs.Int("batch", 1024, "keys per pipeline")
	rounds := fs.Int("rounds", 3, "passes per probe (the median is printed)")
	only := fs.String("only", "", "run only the probes whose name contains this")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addr, c, keys, stop, err := legacyWithKeys(ctx, *n)
	if err != nil {
		return err
	}
	defer stop()
	steal := readCPU()
	fmt.Printf("%-32s %12s %14s   %s\n", "probe", "µs/key CPU", "usec/call", "(commandstats: the command alone)")
	// SCAN alone: one full pass, COUNT 1000
	scan := func() error {
		var cursor uint64
		for {
			_, next, err := c.Scan(ctx, cursor, "", 1000).Result()
			if err != nil {
				return err
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if err := costRound(ctx, c, addr, "SCAN COUNT 1000 (one pass)", len(keys), *rounds, scan); err != nil {
		return err
	}
	for _, p := range costProbes {
		if *only != "" && !strings.Contains(p.name, *only) {
			continue
		}
		if p.script != "" {
			if err := c.ScriptLoad(ctx, p.script).Err(); err != nil {
				return err
			}
		}
		run := func() error { return runProbe(ctx, addr, p, keys, *workers, *batch) }
		if err := costRound(ctx, c, addr, p.name, len(keys), *rounds, run); err != nil {
			return err
		}
	}
	fmt.Println(machineLine(steal))
	return nil
}

// costRound runs fn rounds times, measuring legacy CPU and commandstats
// around each, and prints the medians per key.
func costRound(ctx context.Context, c *redis.Client, addr, name string, keys, rounds int, fn func() error) error {
	var cpu []float64
	stats := map[string][]float64{}
	for r := 0; r < rounds; r++ {
		if err := c.ConfigResetStat(ctx).Err(); err != nil {
			return err
		}
		cpu0 := ServerCPU(ctx, addr)
		if err := fn(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		cpu = append(cpu, (ServerCPU(ctx, addr)-cpu0)*1e6/float64(keys))
		cs, err := commandStats(ctx, c)
		if err != nil {
			return err
		}
		for k, v := range cs {
			stats[k] = append(stats[k], v)
		}
	}
	var parts []string
	for k, v := range stats {
		if k == "config|resetstat" || k == "info" {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.2f", k, median(v)))
	}
	sort.Strings(parts)
	fmt.Printf("%-32s %12.2f   %s\n", name, median(cpu), strings.Join(parts, ", "))
	return nil
}

// commandStats returns usec_per_call by command from INFO commandstats.
func commandStats(ctx context.Context, c *redis.Client) (map[string]float64, error) {
	s, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "usec_per_call="); ok {
				out[strings.TrimPrefix(name, "cmdstat_")], _ = strconv.ParseFloat(v, 64)
			}
		}
	}
	return out, nil
}

// runProbe sends p for every key, batch keys per pipeline, on workers
// connections, and reads every reply.
func runProbe(ctx context.Context, addr string, p probe, keys []string, workers, batch int) error {
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc, err := redisconn.DialRaw(ctx, &redis.Options{Addr: addr})
			if err != nil {
				errs <- err
				return
			}
			defer rc.Close()
			for start := w * batch; start < len(keys); start += workers * batch {
				ks := keys[start:min(start+batch, len(keys))]
				replies := 0
				if p.batch != nil {
					replies = p.batch(rc, ks)
				} else {
					for _, k := range ks {
						replies += p.key(rc, k)
					}
				}
				if err := rc.Flush(30 * time.Second); err != nil {
					errs <- err
					return
				}
				for i := 0; i < replies; i++ {
					if _, err := rc.ReplyFlat(nil); err != nil && redisconn.IsNetErr(err) {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// legacyWithKeys starts a legacy holding the benchmark keyspace of n keys
// and lists its names once (not measured): its address, a client, the
// names, and stop (which closes the client and stops legacy).
func legacyWithKeys(ctx context.Context, n int) (string, *redis.Client, []string, func(), error) {
	legacy, stopLegacy, err := StartLegacy(ctx, n)
	if err != nil {
		return "", nil, nil, nil, err
	}
	addr := legacy.Addr()
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	stop := func() { c.Close(); stopLegacy() }
	var keys []string
	var cursor uint64
	for {
		ks, next, err := c.Scan(ctx, cursor, "", 1000).Result()
		if err != nil {
			stop()
			return "", nil, nil, nil, err
		}
		keys = append(keys, ks...)
		if cursor = next; cursor == 0 {
			return addr, c, keys, stop, nil
		}
	}
}
