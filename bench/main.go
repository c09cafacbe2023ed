// Command bench is redisplit's benchmark harness: it generates the benchmark
// keyspace (DESIGN/issue: 1M keys unless scaled) into a local redis-server
// and measures one engine against it, printing keys/s and peak RSS.
//
//	go run ./bench scan    [-keys N]
//	go run ./bench migrate [-keys N]
//	go run ./bench verify  [-keys N]
//	go run ./bench live    [-keys N] [-rate W] [-duration D] [-runs N] [-binary path/to/redisplit]
//
// Each mode lives in its own file and registers itself in init.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sort"
)

// modes maps a mode name to its entry point; args are the remaining arguments.
var modes = map[string]func(ctx context.Context, args []string) error{}

func main() {
	if len(os.Args) < 2 || modes[os.Args[1]] == nil {
		var names []string
		for n := range modes {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: bench MODE [flags]; modes: %v\n", names)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := modes[os.Args[1]](ctx, os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
