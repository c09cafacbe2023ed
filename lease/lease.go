// Package lease is redisplit's one lease (DESIGN.md §5): a key on legacy,
// redisplit:lock, that at most one redisplit command that writes holds at a
// time — migrate, rollback (cutover and complete later) — so that no two of
// them ever write to the targets or the state concurrently.
//
// Guarantees and ordering contracts:
//   - Acquire takes the key with SET NX and a TTL, or refuses with a
//     *safety.Refusal naming the holder (command, host, pid, state dir,
//     since). Nothing is written before a command holds the lease.
//   - The holder renews the TTL every TTL/3 with a compare-and-set script;
//     when a renewal finds the key held by someone else, or legacy has not
//     answered the renewals until shortly before the key may expire, the
//     command's context is cancelled with the cause: a command never goes
//     on writing without the lease. (A renewal without an answer — legacy
//     restarting, a network blip — is tried again every TTL/15 meanwhile.) A renewal that finds the key gone
//     (FLUSHDB or FLUSHALL on legacy, a restart without persistence, or a
//     renewal so late that the key expired) takes it again in the same
//     script, as SET NX would: nobody else held it at that instant
//     (Lease.Retaken counts it).
//   - A lease left by a process on this host (same host name and pid
//     namespace) that is gone — no such pid, a zombie not yet reaped, or a
//     pid reused by another process (its start time differs from the one
//     recorded in the lease) — is taken over at once, and Lease.TookOver
//     says so. A lease from another host is only free once its TTL runs out.
//   - Release deletes the key only if this holder still owns it.
package lease

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/safety"
)

// OwnPrefix is the prefix of redisplit's own keys on legacy (the lease, and
// later the control and marker keys); they are never migrated or compared.
// Key is the lease.
const (
	OwnPrefix = "redisplit:"
	Key       = OwnPrefix + "lock"
)

// DefaultTTL is the lease's TTL unless Options.TTL says otherwise.
const DefaultTTL = 30 * time.Second

// Holder is the value of the lease key: who holds it.
type Holder struct {
	Command string `json:"command,omitempty"` // migrate, rollback, ...
	Host    string `json:"host"`
	PID     int    `json:"pid"`
	// ProcStart is the holder process's start time in clock ticks since
	// boot (/proc/PID/stat, field 22): a pid now running a process with
	// another start time was reused. 0 when unknown.
	ProcStart uint64 `json:"proc_start,omitempty"`
	// PIDNS is the holder's pid namespace (/proc/self/ns/pid): two
	// containers sharing a host name do not judge each other's pids.
	PIDNS   string    `json:"pid_ns,omitempty"`
	Dir     string    `json:"state_dir"`
	Started time.Time `json:"started"`
}

func (h Holder) describe() string {
	cmd := h.Command
	if cmd == "" {
		cmd = "a redisplit command"
	} else {
		cmd = "redisplit " + cmd
	}
	return fmt.Sprintf("%s (host %s, pid %d, state dir %s, since %s)", cmd, h.Host, h.PID, h.Dir, h.Started.Format(time.RFC3339))
}

// Takeover is the fact that Acquire took the lease over from a holder on
// this host whose process is gone.
type Takeover struct {
	Previous Holder `json:"previous"`
	// Reason is "gone" (no such process), "zombie" (killed, not yet reaped
	// by its parent) or "pid reused" (the pid runs another process now).
	Reason string `json:"reason"`
}

// String is the line a command prints about the takeover.
func (t *Takeover) String() string {
	cmd := t.Previous.Command
	if cmd == "" {
		cmd = "a command"
	}
	return fmt.Sprintf("took over the lease %s of redisplit %s pid %d on this host (%s; held since %s)",
		Key, cmd, t.Previous.PID, t.Reason, t.Previous.Started.Format(time.RFC3339))
}

// Options configure Acquire.
type Options struct {
	Command  string        // the command taking the lease, named to others it refuses
	StateDir string        // named to others it refuses
	TTL      time.Duration // default DefaultTTL; renewed every TTL/3
}

// Lease is a held lease.
type Lease struct {
	// TookOver is set when the lease was taken over from a dead holder on
	// this host; the command should say so.
	TookOver *Takeover

	c       *redis.Client
	token   string
	stop    chan struct{}
	done    chan struct{}
	retaken atomic.Int64
	// renewals that got no answer and were tried again
	failedRenewals atomic.Int64
}

// Retaken counts the renewals that found the key gone (a flush or restart
// of legacy) and took it again.
func (l *Lease) Retaken() int64 { return l.retaken.Load() }

var renewScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
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

// Acquire takes the lease on legacy c, or refuses (a *safety.Refusal,
// exit 4) naming the holder. While it is held it is renewed; if it is lost,
// lost is called with the cause (the command's context's cancel function),
// so that the command stops writing. Errors talking to legacy are
// *redisconn.Error naming legacy's address.
func Acquire(ctx context.Context, c *redis.Client, o Options, lost context.CancelCauseFunc) (*Lease, error) {
	ttl := o.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	me := self()
	me.Command, me.Dir, me.Started = o.Command, o.StateDir, time.Now().UTC()
	b, err := json.Marshal(me)
	if err != nil {
		return nil, err
	}
	token := string(b)
	l := &Lease{c: c, token: token, stop: make(chan struct{}), done: make(chan struct{})}
	// A few rounds: the key may expire, or another process may take over a
	// dead holder's lease, between our reads and writes.
	for attempt := 0; ; attempt++ {
		ok, err := c.SetNX(ctx, Key, token, ttl).Result()
		if err != nil {
			return nil, legacyErr(c, err)
		}
		if ok {
			break
		}
		cur, h, err := read(ctx, c)
		if err != nil {
			return nil, err
		}
		if cur == "" && attempt < 3 { // expired meanwhile
			continue
		}
		reason := deadReason(me, h)
		if reason == "" || attempt >= 3 {
			return nil, refusal(ctx, c, me, h)
		}
		stolen, err := stealScript.Run(ctx, c, []string{Key}, cur, token, ttl.Milliseconds()).Int()
		if err != nil {
			return nil, legacyErr(c, err)
		}
		if stolen == 1 {
			l.TookOver = &Takeover{Previous: h, Reason: reason}
			break
		}
	}
	go l.renew(ttl, lost)
	return l, nil
}

// Check refuses exactly as Acquire would while a live process holds the
// lease, and writes nothing: for commands that only read but must not run
// beside a writer (rollback --dry-run).
func Check(ctx context.Context, c *redis.Client) error {
	cur, h, err := read(ctx, c)
	if err != nil || cur == "" {
		return err
	}
	me := self()
	if deadReason(me, h) != "" {
		return nil
	}
	return refusal(ctx, c, me, h)
}

func read(ctx context.Context, c *redis.Client) (string, Holder, error) {
	cur, err := c.Get(ctx, Key).Result()
	if err == redis.Nil {
		return "", Holder{}, nil
	}
	if err != nil {
		return "", Holder{}, legacyErr(c, err)
	}
	var h Holder
	_ = json.Unmarshal([]byte(cur), &h) // an unreadable value is held by someone we cannot judge
	return cur, h, nil
}

func refusal(ctx context.Context, c *redis.Client, me, h Holder) error {
	hint := "stop it or wait for it to finish"
	if sameMachine(me, h) {
		hint = fmt.Sprintf("it is running on this host as pid %d: stop it or wait for it to finish", h.PID)
	} else if pttl, err := c.PTTL(ctx, Key).Result(); err == nil && pttl > 0 {
		hint += fmt.Sprintf("; if it died, the lease expires within %s", pttl.Round(time.Second))
	}
	return safety.Refusef(hint, "another redisplit command holds the lease lock %s on legacy: %s", Key, h.describe())
}

// sameMachine reports whether h ran where pids can be judged from here.
func sameMachine(me, h Holder) bool {
	return h.Host == me.Host && h.PID > 0 && (h.PIDNS == "" || me.PIDNS == "" || h.PIDNS == me.PIDNS)
}

// deadReason says why holder h is gone ("" when it may be alive, or when
// it cannot be judged from here).
func deadReason(me, h Holder) string {
	if !sameMachine(me, h) {
		return ""
	}
	return procGone(h.PID, h.ProcStart)
}

func (l *Lease) renew(ttl time.Duration, lost context.CancelCauseFunc) {
	defer close(l.done)
	every, again := ttl/3, max(ttl/15, 10*time.Millisecond)
	// a renewal that gets no answer is tried again until the key may have
	// expired (minus a margin): until then nobody else can hold it
	deadline := time.Now().Add(ttl - ttl/6)
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		start := time.Now()
		rctx, rc := context.WithTimeout(context.Background(), ttl/3)
		n, err := renewScript.Run(rctx, l.c, []string{Key}, l.token, ttl.Milliseconds()).Int()
		rc()
		switch {
		case err == nil && (n == 1 || n == 2):
			if n == 2 {
				l.retaken.Add(1)
			}
			deadline = start.Add(ttl - ttl/6)
			t.Reset(every)
			continue
		case err != nil && time.Now().Add(again).Before(deadline):
			l.failedRenewals.Add(1)
			t.Reset(again)
			continue
		case err == nil:
			err = fmt.Errorf("the lock was taken by someone else")
		default:
			err = fmt.Errorf("legacy did not answer the renewals for %s: %w", time.Since(deadline.Add(-(ttl - ttl/6))).Round(time.Millisecond), err)
		}
		if lost != nil {
			lost(fmt.Errorf("lost the lease lock %s on legacy (%v): stopped writing; rerun the command to resume", Key, err))
		}
		return
	}
}

// Release stops renewing and deletes the key if this holder still owns it.
// It may be called once.
func (l *Lease) Release() {
	close(l.stop)
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = releaseScript.Run(ctx, l.c, []string{Key}, l.token).Err()
}

// legacyErr explains an error of legacy c (role, host, hint).
func legacyErr(c *redis.Client, err error) error {
	return redisconn.Explain(err, "legacy", c.Options().Addr)
}

// self describes this process as a holder (without command, dir, start).
func self() Holder {
	host, _ := os.Hostname()
	pid := os.Getpid()
	st, _ := procStart(pid)
	ns, _ := os.Readlink("/proc/self/ns/pid")
	return Holder{Host: host, PID: pid, ProcStart: st, PIDNS: ns}
}
