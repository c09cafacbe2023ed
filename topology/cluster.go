package topology

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of masters with no replicas; slots are split
// evenly.
type Cluster struct {
	Nodes []Server
}

// Addrs returns the nodes' addresses (cluster seed list).
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// StartCluster starts n masters and bootstraps them: ADDSLOTSRANGE, MEET,
// then waits for cluster_state:ok on every node.
func StartCluster(ctx context.Context, b Backend, name string, n int, args ...string) (*Cluster, error) {
	c := &Cluster{}
	for i := 0; i < n; i++ {
		nodeName := fmt.Sprintf("%s-%d", name, i+1)
		s, err := startRetrying(ctx, b, ServerSpec{Name: nodeName}, func(port int) ServerSpec {
			bus := port + 10000
			if bus > 65535 {
				bus = port - 10000
			}
			a := append(baseArgs(port), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", "2000", "--cluster-announce-ip", "127.0.0.1",
				"--cluster-port", strconv.Itoa(bus))
			return ServerSpec{Name: nodeName, Port: port, Args: append(a, args...)}
		})
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, s)
	}
	per := 16384 / n
	for i, s := range c.Nodes {
		lo, hi := i*per, (i+1)*per-1
		if i == n-1 {
			hi = 16383
		}
		cl := redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true})
		err := cl.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err()
		if err == nil && i > 0 {
			first := c.Nodes[0]
			err = cl.Do(ctx, "CLUSTER", "MEET", "127.0.0.1", first.Port()).Err()
		}
		cl.Close()
		if err != nil {
			return nil, fmt.Errorf("bootstrap %s: %w", s.Name(), err)
		}
	}
	return c, c.WaitOK(ctx, 30*time.Second)
}

// WaitOK waits until every reachable node reports cluster_state:ok and
// knows all nodes.
func (c *Cluster) WaitOK(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		for _, s := range c.Nodes {
			cl := redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true, MaxRetries: -1})
			info, err := cl.ClusterInfo(ctx).Result()
			cl.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") ||
				!strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", len(c.Nodes))) {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster did not reach cluster_state:ok within %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
