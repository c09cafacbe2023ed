package store

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
)

// RedisSource reads keys from one Redis server (legacy). It is the one read
// path of legacy's keys (migrate's copier reads through it). Per key it
// reads the absolute expiry and the DUMP payload atomically, so that no
// write of the application interleaves, and it never DUMPs a key whose
// size (MEMORY USAGE) is above BigBytes: such a key is read as Big (its
// TYPE only), to be copied in chunks. The payload bytes of one atomic read
// and of one fn call stay under ChunkBytes (a key above it alone excepted).
// Absent keys, and keys at their expiry, are Absent entries. Two ways,
// the same entries:
//
//   - A read of at most ScriptMaxKeys keys (the live phase's) on Redis ≥
//     7.0 (and Valkey): one script per chunk (EVALSHA, a read-only
//     script, flags=no-writes): per key MEMORY USAGE, then PEXPIRETIME and
//     DUMP (TYPE for a Big key), in one round trip and one atomic step —
//     the size check and the DUMP see the same value. The script stops at
//     the chunk's bytes and says how far it read; the rest is read by the
//     next call.
//   - Larger reads (the backfill's batches), and every read once the
//     server refused the script for good (an ACL without +evalsha,
//     scripting disabled, any error reply but a transient one): a MEMORY
//     USAGE pipeline per batch, then per chunk one MULTI/EXEC holding the
//     expiry and DUMP per key (TYPE for Big keys): PEXPIRETIME on Redis ≥
//     7.0, else PTTL per key and one TIME, the expiry being TIME + PTTL at
//     the same instant; the ACL refusing PEXPIRETIME makes it PTTL + TIME
//     for good.
//
// The per-key commands go through raw connections (redisconn.RawConn), one
// per concurrent Read, pooled.
type RedisSource struct {
	Client     *redis.Client // the server; also Pages, for logical copies
	BigBytes   int64         // above this (MEMORY USAGE) a key is Big; default 8 MiB
	ChunkBytes int64         // payload bytes per MULTI and per fn call; default 32 MiB
	Retry      Retry         // for transient legacy errors
	// NoTouch sends CLIENT NO-TOUCH ON before every read, so that reading a
	// key does not reset its LRU/LFU clock (Redis ≥ 7.2, Valkey ≥ 7.2; see
	// SupportsNoTouch; NoTouchOnConnect does the same for a Pages client).
	// A server without it fails the read rather than touching silently.
	NoTouch bool
	// NoScript reads without the read script (the MEMORY USAGE pipeline,
	// then MULTI), as on a server that refuses it; for comparisons.
	NoScript bool

	mu   sync.Mutex
	free []*redisconn.RawConn

	absOnce sync.Once
	abs     atomic.Bool // the server has PEXPIRETIME (Redis ≥ 7.0) and lets us run it
	noLua   atomic.Bool // the read script was refused: the MULTI path for good
}

// Scripted reports whether reads still go through the read script (see
// RedisSource): false once the server refused it.
func (s *RedisSource) Scripted(ctx context.Context) bool {
	return s.hasPexpiretime(ctx) && !s.noLua.Load() && !s.NoScript
}

// hasPexpiretime reports whether reads use PEXPIRETIME: the server has it
// (INFO server's redis_version ≥ 7.0, asked once; Valkey reports a
// redis_version ≥ 7.2) and no read was refused it by an ACL (Read then
// falls back to PTTL + TIME for good). A server that does not answer INFO
// is read with PTTL + TIME, which every version has.
func (s *RedisSource) hasPexpiretime(ctx context.Context) bool {
	s.absOnce.Do(func() {
		info, err := s.Client.Info(ctx, "server").Result()
		if err != nil {
			return
		}
		major, _, _ := strings.Cut(ParseInfo(info)["redis_version"], ".")
		n, err := strconv.Atoi(major)
		s.abs.Store(err == nil && n >= 7)
	})
	return s.abs.Load()
}

var _ PagedSource = (*RedisSource)(nil)

// Describe implements Source.
func (s *RedisSource) Describe() string { return "legacy " + s.Client.Options().Addr }

// Pages implements PagedSource.
func (s *RedisSource) Pages() *redis.Client { return s.Client }

// Close closes the pooled raw connections (not Client).
func (s *RedisSource) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.free {
		c.Close()
	}
	s.free = nil
}

func (s *RedisSource) conn() *redisconn.RawConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.free); n > 0 {
		c := s.free[n-1]
		s.free = s.free[:n-1]
		return c
	}
	return redisconn.NewRawConn(s.Client.Options())
}

func (s *RedisSource) put(c *redisconn.RawConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.free = append(s.free, c)
}

// Read implements Source.
func (s *RedisSource) Read(ctx context.Context, keys []string, fn func([]*Entry) error) error {
	if len(keys) == 0 {
		return nil
	}
	big, chunk := s.BigBytes, s.ChunkBytes
	if big <= 0 {
		big = 8 << 20
	}
	if chunk <= 0 {
		chunk = 32 << 20
	}
	abs := s.hasPexpiretime(ctx)
	lc := s.conn()
	defer s.put(lc)
	if abs && len(keys) <= ScriptMaxKeys && !s.noLua.Load() && !s.NoScript {
		rest, err := s.readScripted(ctx, lc, keys, big, chunk, fn)
		if err != nil || len(rest) == 0 {
			return err
		}
		keys = rest // the script was refused: the rest the MULTI way
	}
	var sizes []int64
	err := s.Retry.Do(ctx, func() error {
		var err error
		sizes, err = readSizes(ctx, lc, keys)
		return err
	})
	if err != nil {
		return redisconn.Explain(err, "legacy", s.Client.Options().Addr)
	}
	var absent []*Entry
	var ck []string
	var ckBig []bool
	var ckBytes int64
	flush := func() error {
		if len(ck) == 0 && len(absent) == 0 {
			return nil
		}
		var entries []*Entry
		if len(ck) > 0 {
			err := s.Retry.Do(ctx, func() error {
				var err error
				entries, err = readEntries(ctx, lc, ck, ckBig, s.NoTouch, abs)
				if abs && redisconn.Classify(err) == redisconn.NoPerm {
					// an ACL without +pexpiretime: PTTL + TIME, as before
					s.abs.Store(false)
					abs = false
					entries, err = readEntries(ctx, lc, ck, ckBig, s.NoTouch, false)
				}
				return err
			})
			if err != nil {
				return redisconn.Explain(err, "legacy", s.Client.Options().Addr)
			}
		}
		entries = append(entries, absent...)
		ck, ckBig, ckBytes, absent = ck[:0], ckBig[:0], 0, nil
		return fn(entries)
	}
	for i, k := range keys {
		if sizes[i] < 0 {
			absent = append(absent, Absent(k))
			continue
		}
		isBig := sizes[i] > big
		if !isBig && len(ck) > 0 && ckBytes+sizes[i] > chunk {
			if err := flush(); err != nil {
				return err
			}
		}
		ck = append(ck, k)
		ckBig = append(ckBig, isBig)
		if !isBig {
			ckBytes += sizes[i]
		}
	}
	return flush()
}

// readScript is the scripted read (see RedisSource). ARGV: BigBytes,
// ChunkBytes. Reply: the number of KEYS read (a prefix: the script stops
// before a key whose size would take the chunk's bytes past ChunkBytes),
// then per key read its kind (0 absent, 1 payload, 2 big), its
// PEXPIRETIME and its DUMP payload (its TYPE when big; false when
// absent). Inside a script time stands still, so a key is absent or not
// for all three reads.
const readScript = `#!lua flags=no-writes
local big, chunk = tonumber(ARGV[1]), tonumber(ARGV[2])
local out, used = {0}, 0
for i, k in ipairs(KEYS) do
  local size = redis.call('MEMORY', 'USAGE', k, 'SAMPLES', '1')
  if not size then
    out[#out+1] = 0; out[#out+1] = -2; out[#out+1] = false
  elseif size > big then
    out[#out+1] = 2; out[#out+1] = redis.call('PEXPIRETIME', k); out[#out+1] = redis.call('TYPE', k)['ok']
  else
    if used > 0 and used + size > chunk then break end
    used = used + size
    out[#out+1] = 1; out[#out+1] = redis.call('PEXPIRETIME', k); out[#out+1] = redis.call('DUMP', k)
  end
  out[1] = i
end
return out`

// ScriptMaxKeys: a Read of at most this many keys goes through the read
// script. Measured with bench read on the benchmark keyspace: at 1-4 keys
// per read the script costs legacy 18-37 % less CPU per key than the
// MEMORY USAGE pipeline and MULTI (one round trip instead of two), at 16
// or more 3-15 % more (Lua's cost per call). The live phase reads a few
// keys at a time; the backfill reads batches.
const ScriptMaxKeys = 8

// scriptChunkBytes bounds the payload bytes of one scripted read.
const scriptChunkBytes = 4 << 20

var readScriptSHA = func() string {
	h := sha1.Sum([]byte(readScript))
	return hex.EncodeToString(h[:])
}()

// readScripted reads keys with the read script, calling fn per chunk. It
// returns the keys left unread when the server refused the script for
// good (noLua is then set); a transient error is retried, any other error
// is returned.
func (s *RedisSource) readScripted(ctx context.Context, lc *redisconn.RawConn, keys []string, big, chunk int64, fn func([]*Entry) error) ([]string, error) {
	// the script's table and its reply are both on legacy's heap until
	// sent: a smaller chunk than MULTI's bounds that (one key above it is
	// still read alone)
	args := []string{strconv.FormatInt(big, 10), strconv.FormatInt(min(chunk, scriptChunkBytes), 10)}
	for len(keys) > 0 {
		var entries []*Entry
		refused := false
		err := s.Retry.Do(ctx, func() error {
			var err error
			entries, err = readScriptOnce(ctx, lc, keys, args, s.NoTouch, true)
			if redisconn.ReplyCode(err) == "NOSCRIPT" { // the script cache was flushed: EVAL caches it again
				entries, err = readScriptOnce(ctx, lc, keys, args, s.NoTouch, false)
			}
			var re redisconn.ReplyError
			if errors.As(err, &re) && !noTouchRefused(err) && redisconn.Classify(err) != redisconn.Transient {
				refused = true
				return nil
			}
			return err
		})
		if err != nil {
			return nil, redisconn.Explain(err, "legacy", s.Client.Options().Addr)
		}
		if refused {
			s.noLua.Store(true)
			return keys, nil
		}
		if err := fn(entries); err != nil {
			return nil, err
		}
		keys = keys[len(entries):]
	}
	return nil, nil
}

// errNoTouch is the error of a read whose CLIENT NO-TOUCH ON was refused.
type errNoTouch struct{ cause error }

func (e errNoTouch) Error() string {
	return fmt.Sprintf("CLIENT NO-TOUCH ON refused (%v): this server cannot read keys without touching them; run without no-touch", e.cause)
}

// noTouchReply reads CLIENT NO-TOUCH ON's reply when noTouch sent it: a
// refusal is returned as setup (the read's error once its replies are
// read), a broken connection as err.
func noTouchReply(rc *redisconn.Raw, noTouch bool) (setup, err error) {
	if !noTouch {
		return nil, nil
	}
	if _, _, _, err := rc.Reply(); err != nil {
		if redisconn.IsNetErr(err) {
			return nil, err
		}
		return errNoTouch{err}, nil
	}
	return nil, nil
}

// payloadEntry is key's entry for the DUMP payload b, a fresh buffer nobody
// else holds: the payload string shares it instead of copying it.
func payloadEntry(key string, b []byte) *Entry {
	payload := unsafe.String(unsafe.SliceData(b), len(b))
	return &Entry{Key: key, Payload: payload, Type: PayloadType(payload)}
}

func noTouchRefused(err error) bool {
	var e errNoTouch
	return errors.As(err, &e)
}

// readScriptOnce sends the read script once (EVALSHA, or EVAL with its
// body) and decodes its reply: the entries of the keys it read, a prefix
// of keys, at least one.
func readScriptOnce(ctx context.Context, lc *redisconn.RawConn, keys, args []string, noTouch, sha bool) ([]*Entry, error) {
	var out []*Entry
	err := lc.Exchange(ctx, len(keys), func(rc *redisconn.Raw) {
		if noTouch {
			rc.Command("CLIENT", "NO-TOUCH", "ON")
		}
		cmd := make([]string, 0, 3+len(keys)+len(args))
		if sha {
			cmd = append(cmd, "EVALSHA", readScriptSHA)
		} else {
			cmd = append(cmd, "EVAL", readScript)
		}
		cmd = append(cmd, strconv.Itoa(len(keys)))
		cmd = append(cmd, keys...)
		cmd = append(cmd, args...)
		rc.Command(cmd...)
	}, func(rc *redisconn.Raw) error {
		setup, err := noTouchReply(rc, noTouch)
		if err != nil {
			return err
		}
		n, err := rc.ArrayLen()
		if err != nil {
			return firstNonNil(setup, err)
		}
		if n < 1 || (n-1)%3 != 0 {
			return fmt.Errorf("legacy: the read script answered %d elements", n)
		}
		_, read, _, err := rc.Reply()
		if err != nil {
			return err
		}
		if int(read) != (n-1)/3 || read < 1 || int(read) > len(keys) {
			return fmt.Errorf("legacy: the read script read %d of %d keys in %d elements", read, len(keys), n)
		}
		out = make([]*Entry, read)
		for i := range out {
			k := keys[i]
			_, kind, _, err := rc.Reply()
			if err != nil {
				return err
			}
			_, exp, _, err := rc.Reply()
			if err != nil {
				return err
			}
			b, _, null, err := rc.Reply()
			if err != nil {
				return err
			}
			switch {
			case kind == 0 || null || exp == -2:
				out[i] = Absent(k)
			case kind == 2:
				out[i] = &Entry{Key: k, Big: true, Type: string(b)}
			default:
				out[i] = payloadEntry(k, b)
			}
			if !out[i].Absent() && exp >= 0 {
				out[i].ExpireAt = exp
			}
		}
		return setup
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readSizes returns MEMORY USAGE key SAMPLES 1 for each key, -1 for a key
// that does not exist (one pipeline).
func readSizes(ctx context.Context, lc *redisconn.RawConn, keys []string) ([]int64, error) {
	out := make([]int64, len(keys))
	err := lc.Exchange(ctx, len(keys), func(rc *redisconn.Raw) {
		for _, k := range keys {
			rc.Command("MEMORY", "USAGE", k, "SAMPLES", "1")
		}
	}, func(rc *redisconn.Raw) error {
		var first error // every reply is read, so the connection stays in step
		for i := range keys {
			_, n, null, err := rc.Reply()
			switch {
			case redisconn.IsNetErr(err):
				return err
			case err != nil:
				first = firstNonNil(first, err)
			case null:
				out[i] = -1
			default:
				out[i] = n
			}
		}
		return first
	})
	return out, err
}

// readEntries reads keys atomically (see RedisSource): one entry per key,
// Absent for a key missing or expired at read time. A key's type comes
// from its payload's RDB type byte (from TYPE for big keys). abs: the
// expiry is read with PEXPIRETIME (absolute, no TIME), else PTTL + TIME.
func readEntries(ctx context.Context, lc *redisconn.RawConn, keys []string, big []bool, noTouch, abs bool) ([]*Entry, error) {
	out := make([]*Entry, len(keys))
	expiry := "PTTL"
	extra := 1 // TIME
	if abs {
		expiry, extra = "PEXPIRETIME", 0
	}
	err := lc.Exchange(ctx, len(keys), func(rc *redisconn.Raw) {
		if noTouch {
			rc.Command("CLIENT", "NO-TOUCH", "ON")
		}
		rc.Command("MULTI")
		for i, k := range keys {
			rc.Command(expiry, k)
			if big[i] {
				rc.Command("TYPE", k)
			} else {
				rc.Command("DUMP", k)
			}
		}
		if !abs {
			rc.Command("TIME")
		}
		rc.Command("EXEC")
	}, func(rc *redisconn.Raw) error {
		setup, err := noTouchReply(rc, noTouch)
		if err != nil {
			return err
		}
		// +OK for MULTI, +QUEUED per command; an error here (e.g. NOPERM)
		// makes EXEC fail with EXECABORT: report the cause.
		queued := setup
		for i := 0; i < 2*len(keys)+1+extra; i++ {
			_, _, _, err := rc.Reply()
			if redisconn.IsNetErr(err) {
				return err
			}
			queued = firstNonNil(queued, err)
		}
		n, err := rc.ArrayLen()
		if err != nil {
			return firstNonNil(queued, err)
		}
		if n != 2*len(keys)+extra {
			return fmt.Errorf("legacy: EXEC answered %d replies for %d keys", n, len(keys))
		}
		exp := make([]int64, len(keys)) // PTTL or PEXPIRETIME: -1 none, -2 absent
		first := setup
		for i, k := range keys {
			_, x, _, err := rc.Reply()
			if redisconn.IsNetErr(err) {
				return err
			}
			first = firstNonNil(first, err)
			exp[i] = x
			b, _, null, err := rc.Reply()
			switch {
			case redisconn.IsNetErr(err):
				return err
			case err != nil:
				first = firstNonNil(first, err)
			case null || x == -2:
				out[i] = Absent(k)
			case big[i]:
				if t := string(b); t != TypeNone {
					out[i] = &Entry{Key: k, Big: true, Type: t}
				} else {
					out[i] = Absent(k)
				}
			default:
				out[i] = payloadEntry(k, b)
			}
		}
		if first != nil {
			if !abs {
				readTime(rc) // the connection stays in step
			}
			return first
		}
		if abs {
			// a key read by PEXPIRETIME was not expired at the read (the
			// server expires it on access): its expiry is absolute already
			for i, e := range out {
				if !e.Absent() && exp[i] >= 0 {
					e.ExpireAt = exp[i]
				}
			}
			return nil
		}
		now, err := readTime(rc)
		if err != nil {
			return err
		}
		for i, e := range out {
			if !e.Absent() && exp[i] >= 0 {
				e.ExpireAt = now + exp[i]
				if e.Expired(now) {
					out[i] = &Entry{Key: e.Key, Type: TypeNone, ExpireAt: e.ExpireAt} // expired, not yet reclaimed
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readTime reads a TIME reply as Unix milliseconds.
func readTime(rc *redisconn.Raw) (int64, error) {
	n, err := rc.ArrayLen()
	if err != nil {
		return 0, err
	}
	if n != 2 {
		return 0, fmt.Errorf("legacy: TIME answered %d elements", n)
	}
	var parts [2]int64
	for i := range parts {
		b, _, _, err := rc.Reply()
		if err != nil {
			return 0, err
		}
		if parts[i], err = strconv.ParseInt(string(b), 10, 64); err != nil {
			return 0, fmt.Errorf("legacy: TIME answered %q", b)
		}
	}
	return parts[0]*1000 + parts[1]/1000, nil
}
