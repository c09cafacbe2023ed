package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
)

// RedisSource reads keys from one Redis server (legacy): per batch, a
// MEMORY USAGE pipeline (absent keys end there; keys above BigBytes are
// read as Big), then per chunk of at most ChunkBytes one MULTI/EXEC holding
// the absolute expiry and DUMP per key (TYPE for Big keys), so that no
// write of the application interleaves: PEXPIRETIME on Redis ≥ 7.0 (and
// Valkey), else PTTL per key and one TIME, the expiry being TIME + PTTL at
// the same instant. The per-key commands go through raw connections
// (redisconn.RawConn), one per concurrent Read, pooled. It is the one read
// path of legacy's keys (migrate's copier reads through it).
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

	mu   sync.Mutex
	free []*redisconn.RawConn

	absOnce sync.Once
	abs     atomic.Bool // the server has PEXPIRETIME (Redis ≥ 7.0) and lets us run it
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
		var setup error
		if noTouch {
			if _, _, _, err := rc.Reply(); err != nil {
				if redisconn.IsNetErr(err) {
					return err
				}
				setup = fmt.Errorf("CLIENT NO-TOUCH ON refused (%v): this server cannot read keys without touching them; run without no-touch", err)
			}
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
				// b is a fresh buffer nobody else holds: the payload
				// string shares it instead of copying it.
				payload := unsafe.String(unsafe.SliceData(b), len(b))
				out[i] = &Entry{Key: k, Payload: payload, Type: PayloadType(payload)}
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
