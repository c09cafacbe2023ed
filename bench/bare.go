package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
)

// The bare copier: the floor of what a backfill costs legacy. One SCAN
// (COUNT -scan-count) feeds batches of -batch keys to -workers workers;
// each sends one pipeline of DUMP + PTTL per key to legacy and one of
// RESTORE key ttl payload REPLACE per present key to one standalone target.
// No type, no size probe, no MULTI, no absolute expiry, no big-key
// chunking, no journal, no checkpoint: nothing a real migration needs
// beyond the copy itself. It runs in a child process (bare-child) so that
// its peak RSS is its own.
//
//	go run ./bench bare -keys N   (a keyspace of its own, one target)
//
// bench migrate runs it as the baseline of every run (-bare, default on).
func init() {
	modes["bare"] = benchBare
	modes["bare-child"] = bareChild
}

// bareResult is what bare-child prints (JSON) on stdout.
type bareResult struct {
	Keys    int64         `json:"keys"`    // keys restored on the target
	Absent  int64         `json:"absent"`  // keys SCAN returned that DUMP found gone
	Elapsed time.Duration `json:"elapsed"` // first SCAN to last RESTORE reply
}

func benchBare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bare", flag.ContinueOnError)
	n := fs.Int("keys", 1000000, "keys in the benchmark keyspace")
	workers := fs.Int("workers", 8, "workers (one legacy and one target connection each)")
	batch := fs.Int("batch", 1024, "keys per pipeline")
	scanCount := fs.Int("scan-count", 1000, "SCAN COUNT")
	if err := fs.Parse(args); err != nil {
		return err
	}
	legacy, stopLegacy, err := StartLegacy(ctx, *n)
	if err != nil {
		return err
	}
	defer stopLegacy()
	target, stopTarget, err := startBaselineTarget(ctx)
	if err != nil {
		return err
	}
	defer stopTarget()
	f, err := runBare(ctx, legacy.Addr(), target.Addr(), *workers, *batch, *scanCount)
	if err != nil {
		return err
	}
	fmt.Println(f.line())
	return nil
}

// runBare runs the bare copier in a child process from legacyAddr into the
// (empty) standalone target and measures it.
func runBare(ctx context.Context, legacyAddr, targetAddr string, workers, batch, scanCount int) (figure, error) {
	var res bareResult
	f, err := measure(ctx, "bare copier", legacyAddr, func(out []byte) (int64, error) {
		if err := json.Unmarshal(out, &res); err != nil {
			return 0, fmt.Errorf("bare copier output: %v: %s", err, out)
		}
		return res.Keys, nil
	}, os.Args[0], "bare-child", legacyAddr, targetAddr, strconv.Itoa(workers), strconv.Itoa(batch), strconv.Itoa(scanCount))
	if err != nil {
		return f, err
	}
	if landed := dbsize(ctx, targetAddr); landed != res.Keys {
		return f, fmt.Errorf("bare copier: %d keys on the target, restored %d", landed, res.Keys)
	}
	return f, nil
}

func bareChild(ctx context.Context, args []string) error {
	if len(args) != 5 {
		return errors.New("usage: bench bare-child LEGACY TARGET WORKERS BATCH SCANCOUNT")
	}
	workers, _ := strconv.Atoi(args[2])
	batch, _ := strconv.Atoi(args[3])
	scanCount, _ := strconv.Atoi(args[4])
	res, err := bareCopy(ctx, args[0], args[1], max(workers, 1), max(batch, 1), max(scanCount, 1))
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// bareCopy is the bare copier itself (see the top of this file).
func bareCopy(ctx context.Context, legacyAddr, targetAddr string, workers, batch, scanCount int) (bareResult, error) {
	t0 := time.Now()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	batches := make(chan []string, 2*workers)
	var restored, absent atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := bareWorker(ctx, legacyAddr, targetAddr, batches, &restored, &absent); err != nil {
				cancel(err)
			}
		}()
	}
	scanErr := func() error {
		defer close(batches)
		c := redis.NewClient(&redis.Options{Addr: legacyAddr, DisableIdentity: true})
		defer c.Close()
		var cursor uint64
		var pend []string
		for {
			keys, next, err := c.Scan(ctx, cursor, "", int64(scanCount)).Result()
			if err != nil {
				return err
			}
			pend = append(pend, keys...)
			for len(pend) >= batch || next == 0 && len(pend) > 0 {
				k := min(batch, len(pend))
				select {
				case batches <- pend[:k:k]:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
				pend = pend[k:]
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}()
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return bareResult{}, err
	}
	if scanErr != nil {
		return bareResult{}, scanErr
	}
	return bareResult{Keys: restored.Load(), Absent: absent.Load(), Elapsed: time.Since(t0)}, nil
}

func bareWorker(ctx context.Context, legacyAddr, targetAddr string, batches <-chan []string, restored, absent *atomic.Int64) error {
	src, err := redisconn.DialRaw(ctx, &redis.Options{Addr: legacyAddr})
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := redisconn.DialRaw(ctx, &redis.Options{Addr: targetAddr})
	if err != nil {
		return err
	}
	defer dst.Close()
	for keys := range batches {
		for _, k := range keys {
			src.Command("DUMP", k)
			src.Command("PTTL", k)
		}
		if err := src.Flush(30 * time.Second); err != nil {
			return err
		}
		n := 0
		for _, k := range keys {
			payload, _, null, err := src.Reply()
			if err != nil {
				return err
			}
			_, pttl, _, err := src.Reply()
			if err != nil {
				return err
			}
			if null || pttl == -2 {
				absent.Add(1)
				continue
			}
			pttl = max(pttl, 0) // -1: no expiry
			dst.Command("RESTORE", k, strconv.FormatInt(pttl, 10), string(payload), "REPLACE")
			n++
		}
		if err := dst.Flush(30 * time.Second); err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if _, _, _, err := dst.Reply(); err != nil {
				return err
			}
		}
		restored.Add(int64(n))
	}
	return nil
}

// dbsize is the number of keys on one server (-1 when it cannot tell).
func dbsize(ctx context.Context, addr string) int64 {
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer c.Close()
	n, err := c.DBSize(ctx).Result()
	if err != nil {
		return -1
	}
	return n
}
