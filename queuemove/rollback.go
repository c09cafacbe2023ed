package queuemove

import (
	"context"
	"encoding/binary"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/keyname"
	"github.com/redisplit/redisplit/store/sqsstore"
)

// RollbackOptions configure Rollback.
type RollbackOptions struct {
	Config
	// Wait is the long-polling wait of each ReceiveMessage (default 2s, at
	// most 20s).
	Wait time.Duration
	// Visibility hides a received message from other receivers until
	// rollback deleted it (default 60s).
	Visibility time.Duration
	// MaxWait bounds the wait for messages SQS still holds but does not
	// hand out: delayed ones, or ones received by a consumer and neither
	// deleted nor visible again yet (default 2m). What is left then is
	// reported (LeftInSQS) and a later Rollback fetches it. One wait goes
	// beyond MaxWait: after a receive of rollback's own that failed once
	// its request may have reached SQS (the answer lost), the messages it
	// made in flight are rollback's, not a consumer's, and come back when
	// its Visibility ends; rollback waits for them until then (plus Wait
	// and a second) before it reports anything as left.
	MaxWait time.Duration
}

// RollbackResult is what Rollback returned to legacy, per list.
type RollbackResult struct {
	// Complete: every queue was emptied and every item pushed back.
	Complete bool           `json:"complete"`
	Lists    []ListRollback `json:"lists"`
}

// ListRollback is one list's part of a RollbackResult.
type ListRollback struct {
	keyname.JSON
	Queue string `json:"queue"`
	// FromSQS counts the items received back (distinct: a message
	// received twice — a standard queue's duplicate — is one item, counted
	// in Duplicates).
	FromSQS    int64 `json:"from_sqs"`
	Duplicates int64 `json:"duplicates"`
	// FromInFlight and FromParked came from redisplit's lists on legacy.
	FromInFlight int64 `json:"from_in_flight"`
	FromParked   int64 `json:"from_parked"`
	// Foreign messages carry no redisplit-seq: producers sent them to SQS
	// directly. They go back after the moved ones, in SentTimestamp order.
	Foreign int64 `json:"foreign"`
	// Delayed jobs went back into the delayed set with their score.
	Delayed int64 `json:"delayed"`
	// Pushed is what went onto the list.
	Pushed int64 `json:"pushed"`
	// Consumed counts items moved to SQS that did not come back: a
	// consumer took and deleted them (they ran), they are not lost. When
	// LeftInSQS is not zero, what SQS still holds is not counted as
	// consumed: Consumed is then a lower bound (exact when every message
	// left is one of redisplit's items).
	Consumed int64 `json:"consumed"`
	// LeftInSQS is what the queue still held when MaxWait ran out.
	LeftInSQS sqsstore.Counts `json:"left_in_sqs"`
}

// Rollback moves every item back from SQS onto its legacy list: receive
// (long polling, Visibility) → stage on legacy (a sorted set per list,
// redisplit:rollback:<list>, scored by the item's seq; ZADD is idempotent,
// so a message received twice is staged once) → DeleteMessage only after
// legacy acknowledged the staging. In-flight and parked items on legacy
// join the same staging. When a queue is empty, the staged items are
// pushed onto the consumers' end of the list in their original order (the
// oldest is popped first, before anything producers pushed to legacy
// since), foreign messages after them, in chunks of one MULTI each (a
// crash leaves every item staged or pushed, never both). Delayed jobs go
// back into their set with their original score.
//
// Run it with the mover stopped (the caller holds the lease) and, for a
// complete rollback, with consumers on SQS stopped: what they took is
// reported as Consumed, never as lost. A rerun after a crash finishes the
// job (staged items stay staged; deleted messages are gone from SQS, their
// items on legacy).
func Rollback(ctx context.Context, o RollbackOptions) (*RollbackResult, error) {
	o.defaults()
	if o.Wait <= 0 {
		o.Wait = 2 * time.Second
	}
	o.Wait = min(o.Wait, 20*time.Second)
	if o.Visibility <= 0 {
		o.Visibility = 60 * time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 2 * time.Minute
	}
	js, err := replay(o.State, o.Bucket, true)
	if err != nil {
		return nil, err
	}
	j, err := o.State.OpenQueueJournal(o.Bucket)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	srcs, err := o.sources(ctx, false)
	if err != nil {
		return nil, err
	}
	m := &mover{o: &Options{Config: o.Config}, j: j, epoch: js.epoch, srcs: srcs}
	res := &RollbackResult{Complete: true}
	for _, s := range srcs {
		s.sum = js.src(s.key)
	}
	for _, s := range srcs {
		if s.kind != kindList {
			continue
		}
		var z *source
		for _, d := range srcs {
			if d.kind == kindDelayed && d.list == s.key {
				z = d
			}
		}
		lr, err := m.rollbackList(ctx, &o, s, z)
		if err != nil {
			return res, err
		}
		if lr.LeftInSQS.Total() > 0 {
			res.Complete = false
		}
		res.Lists = append(res.Lists, *lr)
	}
	return res, nil
}

func stageMember(seq uint64, body string) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return string(b[:]) + body
}

func (m *mover) rollbackList(ctx context.Context, o *RollbackOptions, s, z *source) (*ListRollback, error) {
	lr := &ListRollback{JSON: keyname.Of(s.key), Queue: s.queue.Name()}
	stage, stageNew := stagePrefix+s.key, stageNewPrefix+s.key
	rdb := o.Legacy
	var returned []string // 'B' records not yet journaled
	markReturned := func(seq uint64) {
		returned = append(returned, rec{kind: recReturned, src: s.key, seq: seq}.encode())
		setBit(&s.sum.returnedBits, seq)
	}
	var delayedBack int64 // delayed jobs received back from SQS

	// 1. redisplit's own lists on legacy: in flight and parked.
	items, _, err := m.inflightItems(ctx, s)
	if err != nil {
		return nil, err
	}
	next := s.sum.maxSeq
	newSeq := func() uint64 { next++; return next }
	var zs []redis.Z
	for _, it := range items {
		if it.seq == 0 {
			it.seq = newSeq()
		} else {
			markReturned(it.seq)
		}
		zs = append(zs, redis.Z{Score: float64(it.seq), Member: stageMember(it.seq, it.body)})
	}
	lr.FromInFlight = int64(len(items))
	parked, err := rdb.LRange(ctx, s.parked, 0, -1).Result()
	if err != nil {
		return nil, o.legacyErr(err)
	}
	byHash := map[hash16][]uint64{}
	for seq, h := range s.sum.parkedHash {
		byHash[h] = append(byHash[h], seq)
	}
	for i := len(parked) - 1; i >= 0; i-- { // oldest (rightmost) first
		body := parked[i]
		var seq uint64
		if seqs := byHash[itemHash(body)]; len(seqs) > 0 {
			k := 0
			for x := range seqs {
				if seqs[x] < seqs[k] {
					k = x
				}
			}
			seq = seqs[k]
			byHash[itemHash(body)] = append(seqs[:k], seqs[k+1:]...)
		} else {
			seq = newSeq()
		}
		zs = append(zs, redis.Z{Score: float64(seq), Member: stageMember(seq, body)})
	}
	lr.FromParked = int64(len(parked))
	var zback []redis.Z // delayed jobs back to their set
	var zin []string
	if z != nil {
		if zin, err = rdb.LRange(ctx, z.inflight, 0, -1).Result(); err != nil {
			return nil, o.legacyErr(err)
		}
		for _, raw := range zin {
			if score, member, ok := decodeDelayed(raw); ok {
				zback = append(zback, redis.Z{Score: score, Member: member})
			}
		}
		zp, err := rdb.ZRangeWithScores(ctx, z.parked, 0, -1).Result()
		if err != nil {
			return nil, o.legacyErr(err)
		}
		zback = append(zback, zp...)
	}
	if err := txErr(rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if len(zs) > 0 {
			p.ZAdd(ctx, stage, zs...)
		}
		p.Del(ctx, s.inflight, s.parked)
		if z != nil {
			if len(zback) > 0 {
				p.ZAdd(ctx, z.key, zback...)
			}
			p.Del(ctx, z.inflight, z.parked)
		}
		return nil
	})); err != nil {
		return nil, o.legacyErr(err)
	}
	lr.Delayed += int64(len(zback))
	if len(returned) > 0 {
		if _, err := m.j.Append(returned...); err != nil {
			return nil, err
		}
		returned = returned[:0]
	}

	// 2. Everything SQS holds.
	start := time.Now()
	backoff := 200 * time.Millisecond
	// ownUntil: a receive of ours failed after it may have reached SQS;
	// the messages it made in flight reappear by then.
	var ownUntil time.Time
	for {
		msgs, err := s.queue.Receive(ctx, sqsstore.MaxBatchEntries, o.Wait, o.Visibility)
		if err != nil {
			if ctx.Err() != nil || sqsstore.ClassOf(err) != sqsstore.Retry {
				return nil, err
			}
			if sqsstore.MaybeDelivered(err) {
				ownUntil = time.Now().Add(o.Visibility + o.Wait + time.Second)
			}
			if time.Since(start) > o.MaxWait {
				return nil, err
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 200 * time.Millisecond
		if len(msgs) == 0 {
			c, err := s.queue.Counts(ctx)
			if err != nil {
				return nil, err
			}
			if c.Total() == 0 {
				break
			}
			// Messages in flight may be ours until ownUntil: wait for them
			// rather than report them left (and their items consumed).
			if time.Since(start) > o.MaxWait && time.Now().After(ownUntil) {
				lr.LeftInSQS = c
				break
			}
			continue
		}
		type staged struct {
			cmd   *redis.IntCmd
			known bool
		}
		var st []staged
		receipts := make([]string, 0, len(msgs))
		if err := txErr(rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, msg := range msgs {
				receipts = append(receipts, msg.ReceiptHandle)
				if due, ok := msg.Attrs[AttrDue]; ok && z != nil {
					score, err := strconv.ParseFloat(due, 64)
					if err == nil {
						p.ZAdd(ctx, z.key, redis.Z{Score: score, Member: msg.Body})
						lr.Delayed++
						delayedBack++
						continue
					}
				}
				if v, ok := msg.Attrs[AttrSeq]; ok {
					if seq, err := strconv.ParseUint(v, 10, 64); err == nil && seq > 0 {
						st = append(st, staged{p.ZAdd(ctx, stage, redis.Z{Score: float64(seq), Member: stageMember(seq, msg.Body)}), true})
						markReturned(seq)
						continue
					}
				}
				at := msg.SentAt
				if at.IsZero() {
					at = time.Now()
				}
				st = append(st, staged{p.ZAdd(ctx, stageNew, redis.Z{Score: float64(at.UnixMilli()), Member: msg.MessageID + "\x00" + msg.Body}), false})
			}
			return nil
		})); err != nil {
			return nil, o.legacyErr(err)
		}
		for _, x := range st {
			added, _ := x.cmd.Result()
			switch {
			case !x.known:
				lr.Foreign += added
			case added == 1:
				lr.FromSQS++
			default:
				lr.Duplicates++
			}
		}
		if len(returned) > 0 {
			if _, err := m.j.Append(returned...); err != nil {
				return nil, err
			}
			returned = returned[:0]
		}
		// legacy holds them now: delete them from SQS
		if err := s.queue.Delete(ctx, receipts); err != nil {
			return nil, err
		}
	}

	// 3. Onto the list, newest first to the consumers' end: foreign
	// messages (the newest), then the moved items from the highest seq down,
	// so that the oldest ends up where consumers pop next.
	push := "RPUSH"
	if m.o.Target.PopFrom == "left" {
		push = "LPUSH"
	}
	for _, key := range []string{stageNew, stage} {
		for {
			members, err := rdb.ZRevRange(ctx, key, 0, 99).Result()
			if err != nil {
				return nil, o.legacyErr(err)
			}
			if len(members) == 0 {
				break
			}
			args := []any{push, s.key}
			rm := make([]any, len(members))
			for i, mb := range members {
				rm[i] = mb
				if key == stage {
					args = append(args, mb[8:])
				} else {
					_, body, _ := strings.Cut(mb, "\x00")
					args = append(args, body)
				}
			}
			if err := txErr(rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Do(ctx, args...)
				p.ZRem(ctx, key, rm...)
				return nil
			})); err != nil {
				return nil, o.legacyErr(err)
			}
			lr.Pushed += int64(len(members))
		}
	}
	if lr.LeftInSQS.Total() == 0 {
		if err := rdb.Del(ctx, s.movedKey).Err(); err != nil {
			return nil, o.legacyErr(err)
		}
		if z != nil {
			if err := rdb.Del(ctx, z.movedKey).Err(); err != nil {
				return nil, o.legacyErr(err)
			}
		}
	}
	lr.Consumed = int64(andNotCount(s.sum.movedBits, s.sum.returnedBits))
	if z != nil {
		lr.Consumed += max(0, z.sum.moved-delayedBack)
	}
	// what SQS still holds was not consumed (not yet, at least)
	lr.Consumed = max(0, lr.Consumed-lr.LeftInSQS.Total())
	return lr, nil
}

// andNotCount counts the bits set in a and not in b.
func andNotCount(a, b []uint64) int {
	n := 0
	for i, w := range a {
		if i < len(b) {
			w &^= b[i]
		}
		n += bits.OnesCount64(w)
	}
	return n
}
