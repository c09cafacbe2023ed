// Package topology starts real Redis topologies — standalone servers, a Redis
// Cluster, a master+replica pair watched by Sentinels — for tests, benchmarks
// and `redisplit rehearse`. Servers run on a Backend: local redis-server
// processes (ProcessBackend) or containers (added by the container backend).
// Every address is 127.0.0.1:port so that nodes, sentinels and clients agree.
package topology

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ServerSpec describes one redis-server (or sentinel) to start.
type ServerSpec struct {
	Name     string   // unique within the topology, e.g. "cache-1"
	Port     int      // 127.0.0.1 port
	Args     []string // extra redis-server arguments, e.g. "--maxmemory", "10mb"
	Sentinel bool     // run as a sentinel; SentinelConf is its config file content
	// SentinelConf is written to the sentinel's own writable config file.
	SentinelConf string
}

// Server is one running Redis process or container.
type Server interface {
	Name() string
	Addr() string // 127.0.0.1:port
	Port() int
	// Stop ends the server gracefully (SIGTERM).
	Stop(ctx context.Context) error
	// Kill ends the server at once (SIGKILL).
	Kill() error
	// Start starts a stopped server again on the same port and data directory.
	Start(ctx context.Context) error
}

// Backend starts servers.
type Backend interface {
	StartServer(ctx context.Context, spec ServerSpec) (Server, error)
	// Close stops every server the backend started and frees its resources.
	Close() error
}

// baseArgs are the arguments every data server gets.
func baseArgs(port int) []string {
	return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--protected-mode", "no", "--enable-debug-command", "yes"}
}

// FreePort returns a port that was free a moment ago on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePorts returns n distinct free ports; cluster nodes need a bus port too,
// and bus port = port+10000 must stay under 65536, so we ask for explicit ones.
func freePorts(n int) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for len(out) < n {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// WaitPing polls addr until it answers PING or ctx ends.
func WaitPing(ctx context.Context, addr, password string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, Password: password, DialTimeout: time.Second, MaxRetries: -1, DisableIdentity: true})
	defer c.Close()
	var last error
	for {
		if last = c.Ping(ctx).Err(); last == nil || strings.HasPrefix(last.Error(), "NOAUTH") || strings.HasPrefix(last.Error(), "WRONGPASS") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer PING: %v", addr, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startRetrying starts a server on fresh free ports, retrying when the port
// was taken in between (another process won the race).
func startRetrying(ctx context.Context, b Backend, spec ServerSpec, mk func(port int) ServerSpec) (Server, error) {
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		s, err := b.StartServer(ctx, mk(port))
		if err == nil {
			return s, nil
		}
		last = err
	}
	return nil, fmt.Errorf("start %s: %w", spec.Name, last)
}

// Standalone starts one standalone server with extra args.
func Standalone(ctx context.Context, b Backend, name string, args ...string) (Server, error) {
	return startRetrying(ctx, b, ServerSpec{Name: name}, func(port int) ServerSpec {
		return ServerSpec{Name: name, Port: port, Args: append(baseArgs(port), args...)}
	})
}
