package loadgen

import (
	"sync"
	"time"
)

// Op names the command (or library call) a Write was made by.
type Op uint8

const (
	OpSet Op = iota
	OpGetSet
	OpAppend
	OpSetExpire // SET then PEXPIRE: the key expires soon
	OpDel
	OpRenameFrom // RENAME: the source, now absent
	OpRenameTo   // RENAME: the destination, holding the source's state
	OpIncr       // INCR (EXPIRE on the window's first)
	OpHSet       // HSET, then EXPIRE (a session touched)
	OpHSetExpire // HSET then EXPIRE with a short TTL
	OpLPush
	OpRPop
	OpSAdd
	OpSRem
	OpZAdd
	OpZIncrBy
	OpXAdd
	OpGoCache // go-redis/cache Set
	OpRate    // redis_rate Allow (allowed: the TAT moved)
	numOps
)

var opNames = [numOps]string{"SET", "GETSET", "APPEND", "SET+PEXPIRE", "DEL", "RENAME(from)", "RENAME(to)", "INCR",
	"HSET", "HSET+EXPIRE", "LPUSH", "RPOP", "SADD", "SREM", "ZADD", "ZINCRBY", "XADD", "go-redis/cache", "redis_rate"}

func (o Op) String() string {
	if o < numOps {
		return opNames[o]
	}
	return "op?"
}

// Write is one write the load made on legacy: after it, Key holds version
// Version (see version.go), or is absent when Absent.
//
// Ordering contract: the writes of one key reach a Recorder in the order
// legacy applied them (one writer per key), and Version never decreases
// along them; an Absent write's Version is the last version the key had
// counted to, and the key's next write has a higher one.
type Write struct {
	Key     string
	Version uint64
	Absent  bool
	Op      Op
	// At is when the command was sent to legacy: the write cannot reach a
	// target earlier, so a lag measured from At is an upper bound.
	At time.Time
	// Expires, when set, is the key's TTL deadline as of this write: legacy
	// drops the key then, unless a later write of the key comes first
	// (expiring families and counter windows are never written again;
	// redis_rate keys are, after they expire, with a higher version).
	Expires time.Time
	// Uncertain marks a key whose last command failed on the connection:
	// legacy may or may not have applied it. The key is written no more and
	// a watcher leaves it out of its verdicts.
	Uncertain bool
}

// Recorder receives the load's writes, in batches, as they are
// acknowledged by legacy. Record must be safe for concurrent use; it must
// not retain ws.
type Recorder interface {
	Record(ws []Write)
}

// Ring is a Recorder that keeps the last Cap writes (all of them when Cap
// is 0) and counts every one.
type Ring struct {
	Cap int

	mu    sync.Mutex
	buf   []Write
	next  int
	total int64
}

// Record implements Recorder.
func (r *Ring) Record(ws []Write) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total += int64(len(ws))
	for _, w := range ws {
		if r.Cap <= 0 || len(r.buf) < r.Cap {
			r.buf = append(r.buf, w)
			continue
		}
		r.buf[r.next] = w
		r.next = (r.next + 1) % r.Cap
	}
}

// Writes returns the kept writes, oldest first, and how many were recorded
// in all.
func (r *Ring) Writes() ([]Write, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]Write(nil), r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...), r.total
}

// Tee records every batch into each of rs, in order.
type Tee []Recorder

// Record implements Recorder.
func (t Tee) Record(ws []Write) {
	for _, r := range t {
		if r != nil {
			r.Record(ws)
		}
	}
}
