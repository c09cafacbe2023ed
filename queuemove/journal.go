package queuemove

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/redisplit/redisplit/state"
)

// The queue journal (state.Dir's journal/BUCKET.queue) holds one record per
// item event, in the state package's record format; the payload is a kind
// byte and its fields (strings length-prefixed with a uvarint, integers as
// uvarints):
//
//	'E' epoch                    first record: the move's identity (random)
//	'S' src kind list initial    a source first seen: its kind ('l' list,
//	                             'd' delayed set), the list it feeds, its
//	                             length then
//	'I' src seq hash             an item taken (LMOVE'd) from src, before it
//	                             is sent; seq counts src's items from 1
//	'M' src seq messageID        SQS acknowledged it
//	'P' src seq reason           parked: SQS will not take it
//	'R' src seq                  sent again after a crash (a standard queue
//	                             may hold it twice)
//	'B' src seq                  rollback returned it to legacy
//
// Each seq has exactly one 'I', at most one 'M' or 'P' (never both).

const (
	recEpoch    = 'E'
	recSource   = 'S'
	recIntent   = 'I'
	recMoved    = 'M'
	recParked   = 'P'
	recResent   = 'R'
	recReturned = 'B'

	kindList    = 'l'
	kindDelayed = 'd'
)

type hash16 [16]byte

func itemHash(body string) hash16 {
	s := sha256.Sum256([]byte(body))
	var h hash16
	copy(h[:], s[:16])
	return h
}

// dedupID is the MessageDeduplicationId of an item: the same for every send
// of one item of one move, different for any other item (even with equal
// bytes: seq differs) and for the same item after a rollback (the epoch
// differs), so SQS's 5-minute deduplication drops re-sends only.
func dedupID(epoch, src string, seq uint64, body string) string {
	h := sha256.New()
	for _, s := range []string{epoch, src, strconv.FormatUint(seq, 10)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write([]byte(body))
	return hex.EncodeToString(h.Sum(nil))
}

func newEpoch() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type rec struct {
	kind    byte
	src     string
	seq     uint64
	str     string // epoch, list, messageID, reason
	srcKind byte
	initial int64
	hash    hash16
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (r rec) encode() string {
	b := []byte{r.kind}
	switch r.kind {
	case recEpoch:
		b = appendStr(b, r.str)
	case recSource:
		b = appendStr(b, r.src)
		b = append(b, r.srcKind)
		b = appendStr(b, r.str)
		b = binary.AppendUvarint(b, uint64(r.initial))
	case recIntent:
		b = appendStr(b, r.src)
		b = binary.AppendUvarint(b, r.seq)
		b = append(b, r.hash[:]...)
	case recMoved, recParked:
		b = appendStr(b, r.src)
		b = binary.AppendUvarint(b, r.seq)
		b = appendStr(b, r.str)
	case recResent, recReturned:
		b = appendStr(b, r.src)
		b = binary.AppendUvarint(b, r.seq)
	}
	return string(b)
}

var errRecord = errors.New("queuemove: corrupt journal record")

type reader struct {
	b   []byte
	err bool
}

func (d *reader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *reader) str() string {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *reader) byte1() byte {
	if len(d.b) < 1 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func decode(s string) (rec, error) {
	if len(s) == 0 {
		return rec{}, errRecord
	}
	r := rec{kind: s[0]}
	d := &reader{b: []byte(s[1:])}
	switch r.kind {
	case recEpoch:
		r.str = d.str()
	case recSource:
		r.src = d.str()
		r.srcKind = d.byte1()
		r.str = d.str()
		r.initial = int64(d.uvarint())
	case recIntent:
		r.src = d.str()
		r.seq = d.uvarint()
		if len(d.b) < 16 {
			d.err = true
		} else {
			copy(r.hash[:], d.b[:16])
		}
	case recMoved, recParked:
		r.src = d.str()
		r.seq = d.uvarint()
		r.str = d.str()
	case recResent, recReturned:
		r.src = d.str()
		r.seq = d.uvarint()
	default:
		return r, fmt.Errorf("%w (kind %q)", errRecord, r.kind)
	}
	if d.err {
		return r, fmt.Errorf("%w (kind %q)", errRecord, r.kind)
	}
	return r, nil
}

// tailLen is how many of a source's latest items replay remembers (with
// their hash and outcome): more than one batch, the most a crash can leave
// in flight.
const tailLen = 4 * batchItems

type tailItem struct {
	seq     uint64
	hash    hash16
	outcome byte // 0 (open), recMoved or recParked
}

// summary is one source's journal, replayed.
type summary struct {
	kind    byte
	list    string
	initial int64
	seen    bool // its 'S' record exists

	maxSeq                  uint64
	moved, parked, resent   int64
	returned                int64 // 'B' records (may repeat a seq)
	open                    map[uint64]hash16
	tail                    []tailItem // the latest items, oldest first
	parkedHash              map[uint64]hash16
	movedBits, returnedBits []uint64 // only when replay is asked for them
}

func (s *summary) openCount() int64 { return int64(s.maxSeq) - s.moved - s.parked }

// journalState is the whole journal, replayed.
type journalState struct {
	epoch   string
	sources map[string]*summary
}

func (j *journalState) src(key string) *summary {
	s := j.sources[key]
	if s == nil {
		s = &summary{open: map[uint64]hash16{}, parkedHash: map[uint64]hash16{}}
		j.sources[key] = s
	}
	return s
}

func setBit(b *[]uint64, i uint64) {
	w := i / 64
	for uint64(len(*b)) <= w {
		*b = append(*b, 0)
	}
	(*b)[w] |= 1 << (i % 64)
}

// replay streams bucket's queue journal. With bits it also keeps, per
// source, a bitmap of moved and of returned seqs (a bit per item taken).
// Memory: the sources' summaries, their open items and tails (bounded by
// the batch size), parked items' hashes, and the bitmaps when asked.
func replay(dir *state.Dir, bucket string, bits bool) (*journalState, error) {
	js := &journalState{sources: map[string]*summary{}}
	err := dir.ReadQueueJournal(bucket, func(raw string) error {
		r, err := decode(raw)
		if err != nil {
			return err
		}
		if r.kind == recEpoch {
			if js.epoch == "" {
				js.epoch = r.str
			}
			return nil
		}
		s := js.src(r.src)
		switch r.kind {
		case recSource:
			if !s.seen {
				s.seen, s.kind, s.list, s.initial = true, r.srcKind, r.str, r.initial
			}
		case recIntent:
			if r.seq > s.maxSeq {
				s.maxSeq = r.seq
			}
			s.open[r.seq] = r.hash
			s.tail = append(s.tail, tailItem{seq: r.seq, hash: r.hash})
			if len(s.tail) > tailLen {
				s.tail = append(s.tail[:0], s.tail[len(s.tail)-tailLen:]...)
			}
		case recMoved, recParked:
			h, ok := s.open[r.seq]
			if !ok {
				return nil // a second outcome of a seq: never written, ignore
			}
			delete(s.open, r.seq)
			if r.kind == recMoved {
				s.moved++
				if bits {
					setBit(&s.movedBits, r.seq)
				}
			} else {
				s.parked++
				s.parkedHash[r.seq] = h
			}
			for i := range s.tail {
				if s.tail[i].seq == r.seq {
					s.tail[i].outcome = r.kind
				}
			}
		case recResent:
			s.resent++
		case recReturned:
			s.returned++
			if bits {
				setBit(&s.returnedBits, r.seq)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queuemove: journal %s: %w", dir.QueueJournalPath(bucket), err)
	}
	return js, nil
}
