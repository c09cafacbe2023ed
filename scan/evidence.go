package scan

import (
	"bytes"
	"context"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redisplit/redisplit/redisconn"
)

// The value/structure evidence layer: for a few keys of each pattern no rule
// routes, one bounded read per key, chosen by type, in one pipeline per SCAN
// batch:
//
//	string  GETRANGE k 0 127 and GETRANGE k -1 -1  (first bytes, last byte)
//	list    LINDEX k 0                             (first item)
//	hash    HRANDFIELD k 8, or HSCAN k 0 COUNT 8   (field names)
//	zset    ZRANGE k 0 0 WITHSCORES                (first member and score)
//	stream  XRANGE k - + COUNT 1                   (first entry's fields)
//
// At most maxSniffPerPattern keys per pattern are read over the whole scan
// (not per worker, not per key), so the cost is bounded by the number of
// unknown patterns, never by the keyspace. A pattern that is one
// placeholder ({id}, {hex}...: keys that are bare ids) pools every
// library that writes bare ids, and three reads could all fall on one of
// them: there each key length (one id generator's) has its own
// maxSniffPerPattern reads, for at most maxSniffShapes lengths, so that
// one library's values cannot hide another's (their signals are pooled:
// a durable minority still rules out cache); every read takes its share of the
// ops budget. A command refused by ACL (NOPERM) or unknown to the server
// (HRANDFIELD before Redis 6.2) is switched off for the rest of the scan
// (HSCAN replaces HRANDFIELD), and the report says which; the scan never
// fails because of it. Only the kind of signal is kept (signature.go).

// sniff commands that can be refused.
const (
	cmdGetRange = iota
	cmdLIndex
	cmdHRandField
	cmdHScan
	cmdZRange
	cmdXRange
	nSniffCmds
)

var sniffCmdNames = [nSniffCmds]string{"GETRANGE", "LINDEX", "HRANDFIELD", "HSCAN", "ZRANGE", "XRANGE"}
var sniffCmdACL = [nSniffCmds]string{"+getrange", "+lindex", "+hrandfield", "+hscan", "+zrange", "+xrange"}

// maxSniffShapes bounds the classes of keys (shapeOf) read separately in a
// pattern that is one placeholder.
const maxSniffShapes = 4

// sniffState is the scan-wide state of the evidence layer: the reads left
// per pattern and the commands switched off.
type sniffState struct {
	mu      sync.Mutex
	taken   map[string]uint8 // reads taken per pattern text (per text and key length for bare placeholders)
	shapes  map[string]uint8 // key lengths read per bare-placeholder pattern
	cap     int              // patterns tracked at most
	refused [nSniffCmds]atomic.Bool
}

func newSniffState(maxPatterns int) *sniffState {
	return &sniffState{taken: map[string]uint8{}, shapes: map[string]uint8{}, cap: maxPatterns}
}

// barePlaceholder reports a pattern text that is one placeholder and nothing
// else: keys that are bare ids.
func barePlaceholder(text []byte) bool {
	if len(text) < 3 || text[0] != '{' || text[len(text)-1] != '}' || bytes.IndexByte(text[1:], '{') >= 0 {
		return false
	}
	for _, ph := range placeholders {
		if string(text) == ph {
			return true
		}
	}
	_, _, ok := bareLen(string(text))
	return ok
}

// shapeOf is the budget class of a key of a bare-placeholder pattern (its
// length is in the pattern already, {hex40}): its TTL band and its size
// class (a quarter of a power of two of MEMORY USAGE, when measured), folded
// into 0..63. Two writers of ids of one length rarely share both: reading
// each class on its own budget reads the values of both.
func shapeOf(k *KeyInfo) int {
	q := 0
	if k.Bytes > 0 { // 4·log2(bytes), by the leading bit and the two after it
		l := bits.Len64(uint64(k.Bytes))
		q = 4 * l
		if l >= 3 {
			q += int(k.Bytes>>(l-3)) & 3
		}
	}
	return (ttlBand(k.PTTL)*16 + q) % 64
}

// take reports whether one more key of pattern may be read: ok, and
// whether this worker may stop asking for keys of pattern (done) or, for
// a bare placeholder, for keys of this key's length (shapeDone).
func (st *sniffState) take(pattern []byte, k *KeyInfo) (ok, done, shapeDone bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	budget := string(pattern)
	bare := barePlaceholder(pattern)
	if bare {
		budget += "\x00" + strconv.Itoa(shapeOf(k))
	}
	n, seen := st.taken[budget]
	if !seen && len(st.taken) >= st.cap {
		return false, true, true
	}
	if bare && !seen {
		if st.shapes[string(pattern)] >= maxSniffShapes {
			return false, true, true
		}
		st.shapes[string(pattern)]++
	}
	if n >= maxSniffPerPattern {
		return false, !bare, true
	}
	st.taken[budget] = n + 1
	return true, false, false
}

// giveBack returns a read of a key of shape that was refused to its
// pattern's budget.
func (st *sniffState) giveBack(pattern string, shape int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	budget := pattern
	if barePlaceholder([]byte(pattern)) {
		budget += "\x00" + strconv.Itoa(shape)
	}
	if n := st.taken[budget]; n > 0 {
		st.taken[budget] = n - 1
	}
}

// sniffReq is a key of an unknown pattern whose value is read.
type sniffReq struct {
	key, typ string
	shape    int // shapeOf the key
	cmd      int // the command sent (cmd* constants)
	pa       *patternAgg
}

// commands returns the number of commands sent for r.
func (r *sniffReq) commands() int {
	if r.cmd == cmdGetRange {
		return 2
	}
	return 1
}

// plan chooses the read for r, or reports false when none is allowed.
func (st *sniffState) plan(r *sniffReq) bool {
	switch r.typ {
	case "string":
		r.cmd = cmdGetRange
	case "list":
		r.cmd = cmdLIndex
	case "hash":
		r.cmd = cmdHRandField
		if st.refused[cmdHRandField].Load() {
			r.cmd = cmdHScan
		}
	case "zset":
		r.cmd = cmdZRange
	case "stream":
		r.cmd = cmdXRange
	default:
		return false
	}
	return !st.refused[r.cmd].Load()
}

// sniffValues reads the values of w.sniffs and records their signals in
// their patterns' stats.
func (w *worker) sniffValues(ctx context.Context) error {
	s := w.s
	n := 0
	for i := range w.sniffs {
		n += w.sniffs[i].commands()
	}
	if err := s.wait(ctx, n); err != nil {
		return err
	}
	last := strconv.Itoa(sniffBytes - 1)
	return w.rc.Exchange(ctx, n, func(rc *redisconn.Raw) {
		for _, r := range w.sniffs {
			switch r.cmd {
			case cmdGetRange:
				rc.Command("GETRANGE", r.key, "0", last)
				rc.Command("GETRANGE", r.key, "-1", "-1")
			case cmdLIndex:
				rc.Command("LINDEX", r.key, "0")
			case cmdHRandField:
				rc.Command("HRANDFIELD", r.key, strconv.Itoa(hashFields))
			case cmdHScan:
				rc.Command("HSCAN", r.key, "0", "COUNT", strconv.Itoa(hashFields))
			case cmdZRange:
				rc.Command("ZRANGE", r.key, "0", "0", "WITHSCORES")
			case cmdXRange:
				rc.Command("XRANGE", r.key, "-", "+", "COUNT", "1")
			}
		}
	}, func(rc *redisconn.Raw) error {
		for i := range w.sniffs {
			r := &w.sniffs[i]
			st := &r.pa.Stats
			add := func(sig int) { st.Signals[sig]++ }
			refused := func(err error) {
				msg := err.Error()
				if strings.HasPrefix(msg, "NOPERM") || strings.Contains(msg, "unknown command") {
					s.sniff.refused[r.cmd].Store(true)
					s.sniff.giveBack(r.pa.Text, r.shape) // the pattern may still be read another way (HSCAN)
				}
			}
			var err error
			w.flat, err = rc.ReplyFlat(w.flat[:0])
			if redisconn.IsNetErr(err) {
				return err
			}
			if r.cmd == cmdGetRange {
				head, headErr := w.flat, err
				w.tail, err = rc.ReplyFlat(w.tail[:0])
				if redisconn.IsNetErr(err) {
					return err
				}
				if headErr != nil {
					err = headErr
				}
				if err != nil {
					refused(err)
					continue
				}
				if len(head) == 1 && len(head[0]) > 0 {
					var tail byte
					if len(w.tail) == 1 && len(w.tail[0]) == 1 {
						tail = w.tail[0][0]
					}
					st.Sniffed++
					sniffString(head[0], tail, len(head[0]) < sniffBytes, add)
				}
				continue
			}
			if err != nil {
				refused(err)
				continue
			}
			if len(w.flat) == 0 {
				continue // gone, or empty
			}
			st.Sniffed++
			switch r.cmd {
			case cmdLIndex:
				sniffItem("list", w.flat[0], add)
			case cmdHRandField:
				sniffFields("hash", w.flat, add)
			case cmdHScan: // cursor, then field, value, ...
				var fs [][]byte
				for j := 1; j < len(w.flat); j += 2 {
					fs = append(fs, w.flat[j])
				}
				sniffFields("hash", fs, add)
			case cmdZRange:
				sniffItem("zset", w.flat[0], add)
				if len(w.flat) > 1 {
					sniffScore(w.flat[1], add)
				}
			case cmdXRange: // id, then field, value, ...
				var fs [][]byte
				job := false
				for j := 1; j < len(w.flat); j += 2 {
					fs = append(fs, w.flat[j])
					if j+1 < len(w.flat) && jsonish(w.flat[j+1]) && jobJSON(w.flat[j+1]) {
						job = true // an entry value that is a JSON job envelope (perhaps serialised again)
					}
				}
				if job {
					add(sigJobStream)
				} else {
					sniffFields("stream", fs, add)
				}
			}
		}
		return nil
	})
}

// verdict says which evidence reads were refused during the scan beyond
// those preflight already reported (pre), or nil.
func (st *sniffState) verdict(pre [nSniffCmds]bool) *Verdict {
	var cmds []string
	for i := range st.refused {
		if st.refused[i].Load() && !pre[i] {
			cmds = append(cmds, sniffCmdNames[i]+" ("+sniffCmdACL[i]+")")
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	return &Verdict{"value sniffing", StatusInfo, "refused during the scan (ACL, or not supported by this server): " + strings.Join(cmds, ", ") +
		"; proposals used names, types, TTLs and encodings for the values they would have read (HSCAN replaces HRANDFIELD where allowed)"}
}
