package migrate

import (
	"context"
	"fmt"
	"strconv"
	"unsafe"

	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/store"
)

// The per-key commands on legacy (the size check, the MULTI/DUMP read) go
// through one redisconn.RawConn per goroutine: go-redis's per-command
// objects cost more CPU there than the rest of the copy.

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
				first = firstErr(first, err)
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

// readBatch reads keys from legacy atomically: one MULTI/EXEC holding, per
// key, PTTL and DUMP (TYPE instead of DUMP for big keys, which are copied
// in chunks), then TIME, so no write of the application interleaves and
// the absolute expiry is TIME + PTTL at the same instant. It returns
// legacy's clock (Unix ms) and one entry per key; nil for keys absent at
// read time. A key's type comes from its payload's RDB type byte.
//
// (A Lua script could decide "big" per key inside the transaction, but
// costs legacy about as much CPU as the separate MEMORY USAGE pipeline and
// needs +@scripting; the size check is done just before, by the scanner.)
func readBatch(ctx context.Context, lc *redisconn.RawConn, keys []string, big []bool) (int64, []*store.Entry, error) {
	var now int64
	out := make([]*store.Entry, len(keys))
	err := lc.Exchange(ctx, len(keys), func(rc *redisconn.Raw) {
		rc.Command("MULTI")
		for i, k := range keys {
			rc.Command("PTTL", k)
			if big[i] {
				rc.Command("TYPE", k)
			} else {
				rc.Command("DUMP", k)
			}
		}
		rc.Command("TIME")
		rc.Command("EXEC")
	}, func(rc *redisconn.Raw) error {
		// +OK for MULTI, +QUEUED per command; an error here (e.g. NOPERM)
		// makes EXEC fail with EXECABORT: report the cause.
		var queued error
		for i := 0; i < 2*len(keys)+2; i++ {
			_, _, _, err := rc.Reply()
			if redisconn.IsNetErr(err) {
				return err
			}
			queued = firstErr(queued, err)
		}
		n, err := rc.ArrayLen()
		if err != nil {
			return firstErr(queued, err)
		}
		if n != 2*len(keys)+1 {
			return fmt.Errorf("legacy: EXEC answered %d replies for %d keys", n, len(keys))
		}
		pttls := make([]int64, len(keys))
		var first error
		for i, k := range keys {
			_, pttl, _, err := rc.Reply()
			if redisconn.IsNetErr(err) {
				return err
			}
			first = firstErr(first, err)
			pttls[i] = pttl
			b, _, null, err := rc.Reply()
			switch {
			case redisconn.IsNetErr(err):
				return err
			case err != nil:
				first = firstErr(first, err)
			case null || pttl == -2: // absent
			case big[i]:
				if t := string(b); t != "none" {
					out[i] = &store.Entry{Key: k, Big: true, Type: t}
				}
			default:
				// b is a fresh buffer nobody else holds: the payload
				// string shares it instead of copying it.
				payload := unsafe.String(unsafe.SliceData(b), len(b))
				out[i] = &store.Entry{Key: k, Payload: payload, Type: store.PayloadType(payload)}
			}
		}
		if now, err = readTime(rc); err != nil || first != nil {
			return firstErr(first, err)
		}
		for i, e := range out {
			if e != nil && pttls[i] >= 0 {
				e.ExpireAt = now + pttls[i]
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return now, out, nil
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

// firstErr returns first if it is an error, else err.
func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
