package topology

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinel is a master and one replica watched by three sentinels.
type Sentinel struct {
	MasterName string
	Master     Server // the initial master; after a failover, ask CurrentMaster
	Replica    Server
	Sentinels  []Server
}

// SentinelAddrs returns the sentinels' addresses.
func (s *Sentinel) SentinelAddrs() []string {
	out := make([]string, len(s.Sentinels))
	for i, n := range s.Sentinels {
		out[i] = n.Addr()
	}
	return out
}

// StartSentinel starts a master, a replica and three sentinels (quorum 2),
// and waits until the sentinels have quorum and know the replica.
func StartSentinel(ctx context.Context, b Backend, name, masterName string, args ...string) (*Sentinel, error) {
	s := &Sentinel{MasterName: masterName}
	var err error
	if s.Master, err = Standalone(ctx, b, name+"-master", args...); err != nil {
		return nil, err
	}
	rargs := append([]string{"--replicaof", "127.0.0.1", fmt.Sprint(s.Master.Port())}, args...)
	if s.Replica, err = Standalone(ctx, b, name+"-replica", rargs...); err != nil {
		return nil, err
	}
	for i := 0; i < 3; i++ {
		sn := fmt.Sprintf("%s-sentinel-%d", name, i+1)
		srv, err := startRetrying(ctx, b, ServerSpec{Name: sn}, func(port int) ServerSpec {
			conf := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\nsentinel announce-ip 127.0.0.1\n"+
				"sentinel monitor %s 127.0.0.1 %d 2\nsentinel down-after-milliseconds %s 1000\n"+
				"sentinel failover-timeout %s 5000\nsentinel parallel-syncs %s 1\n",
				port, masterName, s.Master.Port(), masterName, masterName, masterName)
			return ServerSpec{Name: sn, Port: port, Sentinel: true, SentinelConf: conf}
		})
		if err != nil {
			return nil, err
		}
		s.Sentinels = append(s.Sentinels, srv)
	}
	return s, s.WaitReady(ctx, 60*time.Second)
}

// WaitReady waits until every sentinel reports quorum and lists a replica.
func (s *Sentinel) WaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ready := true
		for _, sn := range s.Sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), DisableIdentity: true})
			q, err := sc.CkQuorum(ctx, s.MasterName).Result()
			reps, err2 := sc.Replicas(ctx, s.MasterName).Result()
			sc.Close()
			if err != nil || err2 != nil || !strings.HasPrefix(q, "OK") || len(reps) == 0 {
				ready = false
				break
			}
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sentinels for %s not ready within %v", s.MasterName, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// CurrentMaster asks the first reachable sentinel for the master's address.
func (s *Sentinel) CurrentMaster(ctx context.Context) (string, error) {
	var last error
	for _, sn := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), DisableIdentity: true})
		a, err := sc.GetMasterAddrByName(ctx, s.MasterName).Result()
		sc.Close()
		if err == nil && len(a) == 2 {
			return a[0] + ":" + a[1], nil
		}
		last = err
	}
	return "", fmt.Errorf("no sentinel knows master %s: %v", s.MasterName, last)
}

// Failover forces a failover and waits until the sentinels report a new
// master that accepts writes.
func (s *Sentinel) Failover(ctx context.Context) (newMaster string, err error) {
	old, err := s.CurrentMaster(ctx)
	if err != nil {
		return "", err
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinels[0].Addr(), DisableIdentity: true})
	defer sc.Close()
	if err := sc.Failover(ctx, s.MasterName).Err(); err != nil {
		return "", fmt.Errorf("SENTINEL FAILOVER: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cur, err := s.CurrentMaster(ctx); err == nil && cur != old {
			c := redis.NewClient(&redis.Options{Addr: cur, DisableIdentity: true})
			role, err := c.Do(ctx, "ROLE").Slice()
			c.Close()
			if err == nil && len(role) > 0 && role[0] == "master" {
				return cur, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("failover of %s did not complete in 30s", s.MasterName)
}
