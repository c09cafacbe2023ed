package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/safety"
)

// LockKey is the lease lock on legacy that stops two migrations at once.
// Keys under OwnPrefix are redisplit's own and are never migrated.
const (
	LockKey   = "redisplit:lock"
	OwnPrefix = "redisplit:"
)

type holder struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Dir     string    `json:"state_dir"`
	Started time.Time `json:"started"`
}

var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

var stealScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`)

// lease is a held lease lock. It is renewed every ttl/3; when a renewal
// fails or finds the lock taken, the run's context is cancelled: redisplit
// never keeps writing without the lock.
type lease struct {
	c     *redis.Client
	token string
	stop  chan struct{}
	done  chan struct{}
}

// acquire takes the lease or refuses (exit 4) naming the holder. A lock
// left by a dead redisplit process on this same host is taken over.
func acquire(ctx context.Context, c *redis.Client, stateDir string, ttl time.Duration, cancel context.CancelCauseFunc) (*lease, error) {
	host, _ := os.Hostname()
	b, _ := json.Marshal(holder{Host: host, PID: os.Getpid(), Dir: stateDir, Started: time.Now().UTC()})
	token := string(b)
	ok, err := c.SetNX(ctx, LockKey, token, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("legacy: taking the lease lock %s: %w", LockKey, err)
	}
	if !ok {
		cur, err := c.Get(ctx, LockKey).Result()
		if err != nil && err != redis.Nil {
			return nil, fmt.Errorf("legacy: reading the lease lock %s: %w", LockKey, err)
		}
		var h holder
		_ = json.Unmarshal([]byte(cur), &h)
		if h.Host == host && h.PID > 0 && !alive(h.PID) {
			stolen, err := stealScript.Run(ctx, c, []string{LockKey}, cur, token, ttl.Milliseconds()).Int()
			if err != nil {
				return nil, fmt.Errorf("legacy: taking over the lease lock %s: %w", LockKey, err)
			}
			ok = stolen == 1
			if ok {
				slog.Warn("took over the lease lock of a redisplit process that is gone", "pid", h.PID, "started", h.Started)
			}
		}
		if !ok {
			pttl, _ := c.PTTL(ctx, LockKey).Result()
			return nil, safety.Refusef(fmt.Sprintf("wait for it to finish; if it died, the lock expires within %s", pttl.Round(time.Second)),
				"another migration holds the lease lock %s on legacy (host %s, pid %d, state dir %s, since %s)",
				LockKey, h.Host, h.PID, h.Dir, h.Started.Format(time.RFC3339))
		}
	}
	l := &lease{c: c, token: token, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
			}
			rctx, rc := context.WithTimeout(context.Background(), ttl/3)
			n, err := renewScript.Run(rctx, c, []string{LockKey}, token, ttl.Milliseconds()).Int()
			rc()
			if err != nil || n != 1 {
				if err == nil {
					err = fmt.Errorf("the lock was taken by someone else or expired")
				}
				cancel(fmt.Errorf("lost the lease lock %s on legacy (%v): stopped writing; rerun migrate to resume", LockKey, err))
				return
			}
		}
	}()
	return l, nil
}

// release stops renewing and deletes the lock if this run still holds it.
func (l *lease) release() {
	close(l.stop)
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = releaseScript.Run(ctx, l.c, []string{LockKey}, l.token).Err()
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
