package dualwrite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/safety"
)

// Keyspace notifications on legacy.
//
// Change capture follows __keyevent@<db>__:* and needs notify-keyspace-events
// to hold E (keyevent channel) and every class: g$lshzxet, which A stands
// for. K (the keyspace channel) is not needed: it doubles what legacy
// publishes for nothing capture reads. Flags already set (K, m, n, ...) are
// kept, so that the applications relying on them see no change.

const notifyParam = "notify-keyspace-events"

// classFlags are the event classes change capture needs; 'A' is their alias
// (on Redis ≥ 7 it also covers d, module key types).
const classFlags = "g$lshzxet"

// NotifySufficient reports whether a notify-keyspace-events value delivers
// every event change capture needs: E and every class of classFlags.
func NotifySufficient(v string) bool {
	f := expandFlags(v)
	if !f['E'] {
		return false
	}
	for _, c := range classFlags {
		if !f[c] {
			return false
		}
	}
	return true
}

// NotifyValue returns the value to set for change capture given legacy's
// current one: v itself when it is sufficient, else "EA" followed by the
// flags of v that are not classes (K, m, n, ...), in their order.
func NotifyValue(v string) string {
	if NotifySufficient(v) {
		return v
	}
	var b strings.Builder
	b.WriteString("EA")
	for _, c := range v {
		if c == 'A' || c == 'E' || c == 'd' || strings.ContainsRune(classFlags, c) || strings.ContainsRune(b.String(), c) {
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func expandFlags(v string) map[rune]bool {
	f := map[rune]bool{}
	for _, c := range v {
		if c == 'A' {
			for _, a := range classFlags + "d" {
				f[a] = true
			}
			continue
		}
		f[c] = true
	}
	return f
}

func sameFlags(a, b string) bool {
	fa, fb := expandFlags(a), expandFlags(b)
	if len(fa) != len(fb) {
		return false
	}
	for c := range fa {
		if !fb[c] {
			return false
		}
	}
	return true
}

// NotifySetting is what EnableNotifications found on legacy and did. The
// caller persists it (the migration state) before the live phase starts, so
// that RestoreNotifications can undo the change when the live phase ends,
// also after kill -9 (the next run or rollback restores it). A rerun that
// finds a setting already persisted keeps the first one: its Old is the
// value from before the migration.
type NotifySetting struct {
	// Old is legacy's value before EnableNotifications ("" is a value: off).
	// Meaningful only when Known.
	Old string `json:"old"`
	// Known is false when CONFIG GET was refused (managed services): the
	// value could not be read, and Probed says the events were proven by a
	// probe instead.
	Known bool `json:"known"`
	// Set is the value EnableNotifications wrote with CONFIG SET; "" when it
	// changed nothing (the value was already sufficient, or CONFIG refused).
	Set string `json:"set,omitempty"`
	// Probed: CONFIG GET was refused and a probe saw an event of every class
	// but evictions (e), which cannot be provoked harmlessly.
	Probed bool `json:"probed,omitempty"`
}

// Changed reports whether EnableNotifications changed legacy's setting.
func (s NotifySetting) Changed() bool { return s.Set != "" }

// ErrNotifyChanged is wrapped by RestoreNotifications' error when legacy's
// value is no longer the one redisplit set: someone changed it since, and it
// is left as is.
var ErrNotifyChanged = errors.New("notify-keyspace-events changed since redisplit set it")

// EnableNotifications makes legacy publish the keyspace events change capture
// needs, keeping every flag already set. When CONFIG GET shows a sufficient
// value it changes nothing. Otherwise it sets NotifyValue(old) with CONFIG
// SET and reads it back. Where CONFIG SET is refused (ACL NOPERM, or CONFIG
// disabled as on managed services) it returns a *safety.Refusal naming the
// exact value to set in legacy's parameter group. Where CONFIG GET itself is
// refused, it probes: it subscribes, writes a few keys of every type under
// ownPrefix+"probe:" (deleted again) and checks that an event of every class
// arrives; the refusal then asks for "EA" plus the flags legacy already has.
//
// Call it before Start; persist the returned setting before anything else
// depends on it.
func EnableNotifications(ctx context.Context, legacy *redis.Client, ownPrefix string) (NotifySetting, error) {
	addr := legacy.Options().Addr
	cur, err := configGetNotify(ctx, legacy)
	if err != nil {
		if !configRefused(err) {
			return NotifySetting{}, redisconn.Explain(err, "legacy", addr)
		}
		missing, perr := probeNotifications(ctx, legacy, ownPrefix)
		if perr != nil {
			return NotifySetting{}, perr
		}
		if missing == "" {
			return NotifySetting{Probed: true}, nil
		}
		return NotifySetting{}, &safety.Refusal{
			Reason: fmt.Sprintf("legacy %s: change capture needs keyspace notifications with E and every class (A), but CONFIG is not allowed (%s) and a probe saw no events of class %s",
				addr, firstLine(err), missing),
			Hint: `set notify-keyspace-events = "EA" in legacy's parameter group (managed service) or redis.conf, keeping any flag it already has (e.g. "EAK"), then rerun`,
		}
	}
	if NotifySufficient(cur) {
		return NotifySetting{Old: cur, Known: true}, nil
	}
	want := NotifyValue(cur)
	if err := legacy.ConfigSet(ctx, notifyParam, want).Err(); err != nil {
		if configRefused(err) {
			return NotifySetting{}, notifyRefusal(addr, cur, want, firstLine(err))
		}
		return NotifySetting{}, redisconn.Explain(err, "legacy", addr)
	}
	got, err := configGetNotify(ctx, legacy)
	if err != nil {
		return NotifySetting{}, redisconn.Explain(err, "legacy", addr)
	}
	if !NotifySufficient(got) {
		return NotifySetting{}, notifyRefusal(addr, cur, want, fmt.Sprintf("CONFIG SET %s %q was accepted but it reads back %q", notifyParam, want, got))
	}
	return NotifySetting{Old: cur, Known: true, Set: want}, nil
}

func notifyRefusal(addr, cur, want, why string) error {
	return &safety.Refusal{
		Reason: fmt.Sprintf("legacy %s: change capture needs keyspace notifications with E and every class (A), but notify-keyspace-events is %q and it cannot be changed (%s)",
			addr, cur, why),
		Hint: fmt.Sprintf(`set notify-keyspace-events = "%s" in legacy's parameter group (managed service) or redis.conf, or grant +config|set, then rerun`, want),
	}
}

// RestoreNotifications puts back the value EnableNotifications found, when it
// changed it (s.Changed()) and legacy still holds the value it set. When
// legacy holds another value (someone changed it since, or a restart reset
// it) it changes nothing and returns an error wrapping ErrNotifyChanged. It
// is idempotent: restoring twice changes nothing the second time.
func RestoreNotifications(ctx context.Context, legacy *redis.Client, s NotifySetting) error {
	if !s.Changed() || !s.Known {
		return nil
	}
	addr := legacy.Options().Addr
	cur, err := configGetNotify(ctx, legacy)
	if err != nil {
		return redisconn.Explain(err, "legacy", addr)
	}
	if sameFlags(cur, s.Old) {
		return nil
	}
	if !sameFlags(cur, s.Set) {
		return fmt.Errorf("legacy %s: notify-keyspace-events is %q, not the %q redisplit set; left as is (it was %q before the migration): %w",
			addr, cur, s.Set, s.Old, ErrNotifyChanged)
	}
	if err := legacy.ConfigSet(ctx, notifyParam, s.Old).Err(); err != nil {
		return redisconn.Explain(err, "legacy", addr)
	}
	return nil
}

func configGetNotify(ctx context.Context, c *redis.Client) (string, error) {
	m, err := c.ConfigGet(ctx, notifyParam).Result()
	if err != nil {
		return "", err
	}
	v, ok := m[notifyParam]
	if !ok {
		return "", fmt.Errorf("CONFIG GET %s returned no value", notifyParam)
	}
	return v, nil
}

// configRefused reports whether err says CONFIG may not be used at all here:
// an ACL refusal, or the command disabled or renamed (managed services).
func configRefused(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "NOPERM") || strings.Contains(msg, "unknown command") ||
		strings.Contains(msg, "unknown subcommand") || strings.Contains(msg, "unsupported command")
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// probeStep writes one probe key; event is the keyevent it must publish and
// class the notify-keyspace-events flag that enables it.
type probeStep struct {
	event string
	class string
	do    func(ctx context.Context, p redis.Pipeliner, key string)
}

var probeSteps = []probeStep{
	{"set", "$", func(ctx context.Context, p redis.Pipeliner, k string) { p.Set(ctx, k, "1", time.Minute) }},
	{"expire", "g", func(ctx context.Context, p redis.Pipeliner, k string) {
		p.Set(ctx, k, "1", 0)
		p.Expire(ctx, k, time.Minute)
	}},
	{"rpush", "l", func(ctx context.Context, p redis.Pipeliner, k string) {
		p.RPush(ctx, k, "1")
		p.Expire(ctx, k, time.Minute)
	}},
	{"sadd", "s", func(ctx context.Context, p redis.Pipeliner, k string) {
		p.SAdd(ctx, k, "1")
		p.Expire(ctx, k, time.Minute)
	}},
	{"hset", "h", func(ctx context.Context, p redis.Pipeliner, k string) {
		p.HSet(ctx, k, "f", "1")
		p.Expire(ctx, k, time.Minute)
	}},
	{"zadd", "z", func(ctx context.Context, p redis.Pipeliner, k string) {
		p.ZAdd(ctx, k, redis.Z{Score: 1, Member: "1"})
		p.Expire(ctx, k, time.Minute)
	}},
	{"xadd", "t", func(ctx context.Context, p redis.Pipeliner, k string) {
		p.XAdd(ctx, &redis.XAddArgs{Stream: k, Values: []any{"f", "1"}})
		p.Expire(ctx, k, time.Minute)
	}},
	// A key with a 1 ms TTL, read after it expired: the read reclaims it
	// and publishes "expired".
	{"expired", "x", func(ctx context.Context, p redis.Pipeliner, k string) { p.Set(ctx, k, "1", time.Millisecond) }},
}

const probeTimeout = 5 * time.Second

// probeNotifications proves the classes change capture needs by provoking
// one event of each on keys of redisplit's namespace, and returns the classes
// whose event did not arrive ("" when all did). Evictions (e) cannot be
// provoked harmlessly and are not probed.
func probeNotifications(ctx context.Context, legacy *redis.Client, ownPrefix string) (string, error) {
	addr := legacy.Options().Addr
	db := legacy.Options().DB
	prefix := ownPrefix + "probe:"
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	ps := legacy.PSubscribe(ctx, fmt.Sprintf("__keyevent@%d__:*", db))
	defer ps.Close()
	if _, err := ps.ReceiveTimeout(ctx, probeTimeout); err != nil { // the subscription's confirmation
		return "", redisconn.Explain(err, "legacy", addr)
	}
	want := map[string]string{} // key -> event
	_, err := legacy.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, s := range probeSteps {
			k := prefix + s.event
			want[k] = s.event
			p.Del(ctx, k)
			s.do(ctx, p, k)
		}
		return nil
	})
	if err != nil && !strings.Contains(err.Error(), "unknown command") { // XADD before Redis 5
		return "", redisconn.Explain(err, "legacy", addr)
	}
	time.Sleep(5 * time.Millisecond)
	if err := legacy.Exists(ctx, prefix+"expired").Err(); err != nil {
		return "", redisconn.Explain(err, "legacy", addr)
	}
	defer func() {
		keys := make([]string, 0, len(want))
		for k := range want {
			keys = append(keys, k)
		}
		legacy.Del(context.WithoutCancel(ctx), keys...)
	}()
	// A PING on the subscription after the writes is a barrier: legacy
	// answers it on the same connection after every event published before
	// it, so when the PONG arrives, what has not arrived is missing.
	if err := ps.Ping(ctx, "redisplit-probe"); err != nil {
		return "", redisconn.Explain(err, "legacy", addr)
	}
	seen := map[string]bool{}
	for {
		msg, err := ps.ReceiveTimeout(ctx, probeTimeout)
		if err != nil {
			return "", redisconn.Explain(err, "legacy", addr)
		}
		if _, ok := msg.(*redis.Pong); ok {
			break
		}
		if m, ok := msg.(*redis.Message); ok {
			if ev, ok := want[m.Payload]; ok && strings.HasSuffix(m.Channel, ":"+ev) {
				seen[m.Payload] = true
			}
		}
	}
	var missing []string
	for _, s := range probeSteps {
		if !seen[prefix+s.event] {
			missing = append(missing, s.class)
		}
	}
	return strings.Join(missing, ","), nil
}
