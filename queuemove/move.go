package queuemove

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/redisplit/redisplit/keyname"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store/sqsstore"
)

type mover struct {
	o     *Options
	j     *state.Journal
	epoch string
	srcs  []*source
}

// stats are one source's counters, read by the progress goroutine.
type stats struct {
	baseMoved, baseParked, baseResent int64 // from the journal, before this run
	moved, parked, resent             atomic.Int64
	waits, waited, anomalies          atomic.Int64
	waitingSince                      atomic.Int64 // unix ns; 0 = not waiting

	mu      sync.Mutex
	lastErr string
	sample  []ParkedItem
	rate    []rateSample
}

type rateSample struct {
	at    time.Time
	moved int64
}

// item is one item of a batch.
type item struct {
	raw    string // the element of the in-flight list
	body   string // the message body
	score  float64
	seq    uint64
	hash   hash16
	state  byte // 0 pending, recMoved, recParked
	reason string
	msgID  string
	// recorded: its outcome is journaled already (recovery)
	recorded bool
	// resend: sent again after a crash; dup: sent again after a send whose
	// outcome is unknown (a timeout, an unreported batch entry), so the
	// queue may hold it twice
	resend, dup bool
}

func (m *mover) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				snap := m.snapshot(gctx)
				if m.o.State != nil {
					_ = m.o.State.WriteQueueStatus(m.o.Bucket, snap)
				}
				if m.o.Progress != nil {
					m.o.Progress(snap)
				}
			}
		}
	}()
	for _, s := range m.srcs {
		g.Go(func() error {
			err := m.loop(gctx, s)
			if err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("queue %s (%s %q): %w", s.queue.Name(), s.kindName(), s.key, err)
			}
			return err
		})
	}
	err := g.Wait()
	close(done)
	wg.Wait()
	return err
}

func (m *mover) loop(ctx context.Context, s *source) error {
	if err := m.recover(ctx, s); err != nil {
		return err
	}
	idle := false
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// an idle list is polled with one LMOVE, not a batch of them
		n := batchItems
		if idle {
			n = 1
		}
		items, err := m.take(ctx, s, n)
		if err != nil {
			return err
		}
		if idle && len(items) == 1 {
			more, err := m.take(ctx, s, batchItems-1)
			if err != nil {
				return err
			}
			items = append(items, more...)
		}
		idle = len(items) == 0
		if len(items) == 0 {
			if m.o.Drain {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(m.o.Poll):
			}
			continue
		}
		if err := m.hook("taken", s); err != nil {
			return err
		}
		if err := m.process(ctx, s, items); err != nil {
			return err
		}
	}
}

func (m *mover) hook(stage string, s *source) error {
	if m.o.hook == nil {
		return nil
	}
	return m.o.hook(stage, s.key)
}

func (m *mover) popEnd() string {
	if m.o.Target.PopFrom == "left" {
		return "LEFT"
	}
	return "RIGHT"
}

// encodeDelayed is the in-flight form of a delayed job: its score (float64
// bits, so rollback restores it exactly) and its member.
func encodeDelayed(score float64, member string) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], math.Float64bits(score))
	return string(b[:]) + member
}

func decodeDelayed(raw string) (float64, string, bool) {
	if len(raw) < 8 {
		return 0, raw, false
	}
	return math.Float64frombits(binary.BigEndian.Uint64([]byte(raw[:8]))), raw[8:], true
}

// take moves the next batch (up to n items) into the in-flight list.
func (m *mover) take(ctx context.Context, s *source, n int) ([]*item, error) {
	if s.kind == kindDelayed {
		return m.takeDelayed(ctx, s, n)
	}
	p := m.o.Legacy.Pipeline()
	cmds := make([]*redis.StringCmd, n)
	for i := range cmds {
		cmds[i] = p.LMove(ctx, s.key, s.inflight, m.popEnd(), "LEFT")
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, m.o.legacyErr(err)
	}
	var items []*item
	for _, c := range cmds {
		v, err := c.Result()
		if errors.Is(err, redis.Nil) {
			break
		}
		if err != nil {
			return nil, m.o.legacyErr(err)
		}
		items = append(items, &item{raw: v, body: v})
	}
	return items, nil
}

// dueLimit is the latest score moved now: due within MaxDelay on standard
// queues, due now on FIFO queues (no per-message delay).
func (m *mover) dueLimit(s *source) float64 {
	horizon := time.Now()
	if !s.queue.FIFO() {
		horizon = horizon.Add(MaxDelay)
	}
	return float64(horizon.UnixNano()) / float64(m.o.scoreUnit())
}

func (m *mover) takeDelayed(ctx context.Context, s *source, n int) ([]*item, error) {
	var items []*item
	for attempt := 0; attempt < 20; attempt++ {
		items = nil
		err := m.o.Legacy.Watch(ctx, func(tx *redis.Tx) error {
			zs, err := tx.ZRangeByScoreWithScores(ctx, s.key, &redis.ZRangeBy{Min: "-inf",
				Max: strconv.FormatFloat(m.dueLimit(s), 'f', -1, 64), Count: int64(n)}).Result()
			if err != nil || len(zs) == 0 {
				return err
			}
			members := make([]any, len(zs))
			raws := make([]any, len(zs))
			for i, z := range zs {
				member := z.Member.(string)
				members[i] = member
				raws[i] = encodeDelayed(z.Score, member)
				items = append(items, &item{raw: raws[i].(string), body: member, score: z.Score})
			}
			err = txErr(tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.ZRem(ctx, s.key, members...)
				p.LPush(ctx, s.inflight, raws...) // ascending scores: the earliest ends up rightmost, as LMOVE leaves a list's
				return nil
			}))
			return err
		}, s.key)
		if errors.Is(err, redis.TxFailedErr) {
			continue // the set changed under us: read it again
		}
		if err != nil {
			return nil, m.o.legacyErr(err)
		}
		return items, nil
	}
	return nil, nil // busy: next round
}

func (m *mover) parseMoved(ctx context.Context, s *source) (uint64, error) {
	v, err := m.o.Legacy.Get(ctx, s.movedKey).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, m.o.legacyErr(err)
	}
	epoch, seq, ok := strings.Cut(v, ":")
	if !ok || epoch != m.epoch {
		return 0, nil // an earlier move's: this move removed no batch yet
	}
	n, _ := strconv.ParseUint(seq, 10, 64)
	return n, nil
}

// recover sends again what a previous run left in flight (inflightItems),
// before anything else is taken.
func (m *mover) recover(ctx context.Context, s *source) error {
	items, anomalies, err := m.inflightItems(ctx, s)
	if err != nil {
		return err
	}
	s.st.anomalies.Add(int64(anomalies))
	if len(items) == 0 {
		return nil
	}
	return m.process(ctx, s, items)
}

// inflightItems reads s's in-flight list, oldest first, and gives each
// item its identity. Items journaled after the last removed batch (seq >
// the moved mark) are matched in order to the in-flight items by hash;
// their journaled outcome is kept (moved or parked: only the removal is
// left to do), open ones are marked for re-sending with their seq (so with
// the same deduplication id). In-flight items without an intent (a crash
// came before it) have seq 0: new items. Journaled items that are not in
// flight are counted as anomalies.
func (m *mover) inflightItems(ctx context.Context, s *source) ([]*item, int, error) {
	raws, err := m.o.Legacy.LRange(ctx, s.inflight, 0, -1).Result()
	if err != nil {
		return nil, 0, m.o.legacyErr(err)
	}
	mark, err := m.parseMoved(ctx, s)
	if err != nil {
		return nil, 0, err
	}
	var tail []tailItem
	for _, t := range s.sum.tail {
		if t.seq > mark {
			tail = append(tail, t)
		}
	}
	used := make([]bool, len(tail))
	var items []*item
	// LRANGE lists left to right; the oldest in-flight item is rightmost
	for i := len(raws) - 1; i >= 0; i-- {
		it := &item{raw: raws[i], body: raws[i]}
		if s.kind == kindDelayed {
			var ok bool
			if it.score, it.body, ok = decodeDelayed(raws[i]); !ok {
				it.body = raws[i]
			}
		}
		h := itemHash(it.body)
		k := len(items)
		match := -1
		if k < len(tail) && !used[k] && tail[k].hash == h {
			match = k
		} else {
			for x := range tail {
				if !used[x] && tail[x].hash == h {
					match = x
					break
				}
			}
		}
		if match >= 0 {
			used[match] = true
			t := tail[match]
			it.seq, it.hash = t.seq, t.hash
			switch t.outcome {
			case recMoved:
				it.state, it.recorded = recMoved, true
			case recParked:
				it.state, it.recorded, it.reason = recParked, true, "parked before a restart"
			default:
				it.resend = true
			}
		}
		items = append(items, it)
	}
	anomalies := 0
	for x := range tail {
		if !used[x] {
			anomalies++
		}
	}
	return items, anomalies, nil
}

// process sends one batch (already in flight) and removes it from flight.
func (m *mover) process(ctx context.Context, s *source, items []*item) error {
	var recs []string
	for _, it := range items {
		if it.seq == 0 {
			s.sum.maxSeq++
			it.seq, it.hash = s.sum.maxSeq, itemHash(it.body)
			recs = append(recs, rec{kind: recIntent, src: s.key, seq: it.seq, hash: it.hash}.encode())
		}
		if it.resend {
			recs = append(recs, rec{kind: recResent, src: s.key, seq: it.seq}.encode())
			s.st.resent.Add(1)
		}
	}
	if len(recs) > 0 {
		if _, err := m.j.Append(recs...); err != nil {
			return err
		}
	}
	if err := m.hook("journaled", s); err != nil {
		return err
	}
	for _, it := range items {
		if it.state == 0 {
			if reason := m.refusal(s, it); reason != "" {
				it.state, it.reason = recParked, reason
			}
		}
	}
	if err := m.send(ctx, s, items); err != nil {
		return err
	}
	recs = recs[:0]
	for _, it := range items {
		if it.recorded {
			continue
		}
		if it.state == recMoved {
			recs = append(recs, rec{kind: recMoved, src: s.key, seq: it.seq, str: it.msgID}.encode())
		} else {
			recs = append(recs, rec{kind: recParked, src: s.key, seq: it.seq, str: it.reason}.encode())
		}
		if it.dup {
			recs = append(recs, rec{kind: recResent, src: s.key, seq: it.seq}.encode())
			s.st.resent.Add(1)
		}
	}
	if len(recs) > 0 {
		if _, err := m.j.Append(recs...); err != nil {
			return err
		}
	}
	// the journal is on disk before legacy forgets the batch: after a
	// machine crash too, a removed batch has its outcomes journaled
	if err := m.j.Sync(); err != nil {
		return err
	}
	if err := m.hook("recorded", s); err != nil {
		return err
	}
	var last uint64
	err := txErr(m.o.Legacy.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, it := range items {
			if it.state == recParked {
				if s.kind == kindDelayed {
					p.ZAdd(ctx, s.parked, redis.Z{Score: it.score, Member: it.body})
				} else {
					p.LPush(ctx, s.parked, it.body)
				}
			}
			p.LRem(ctx, s.inflight, 1, it.raw)
			last = max(last, it.seq)
		}
		p.Set(ctx, s.movedKey, m.epoch+":"+seqString(last), 0)
		return nil
	}))
	if err != nil {
		return m.o.legacyErr(err)
	}
	for _, it := range items {
		if it.recorded {
			continue
		}
		if it.state == recMoved {
			s.st.moved.Add(1)
		} else {
			s.st.parked.Add(1)
			s.st.mu.Lock()
			if len(s.st.sample) < 3 {
				s.st.sample = append(s.st.sample, ParkedItem{Item: preview(it.body), Bytes: len(it.body), Reason: it.reason})
			}
			s.st.mu.Unlock()
		}
	}
	return m.hook("removed", s)
}

func preview(b string) string {
	if len(b) > 64 {
		return strconv.Quote(b[:64]) + "..."
	}
	return strconv.Quote(b)
}

func (m *mover) entry(s *source, it *item) sqsstore.Entry {
	e := sqsstore.Entry{ID: seqString(it.seq), Body: it.body,
		Attrs: map[string]sqsstore.Attr{AttrSeq: {Number: true, Value: seqString(it.seq)}}}
	if s.kind == kindDelayed {
		e.Attrs[AttrDue] = sqsstore.Attr{Number: true, Value: strconv.FormatFloat(it.score, 'f', -1, 64)}
		if !s.queue.FIFO() {
			due := time.Unix(0, int64(it.score*float64(m.o.scoreUnit())))
			if d := time.Until(due); d > 0 {
				e.DelaySeconds = int32(min(sqsstore.MaxDelaySeconds, int64(math.Ceil(d.Seconds()))))
			}
		}
	}
	if s.queue.FIFO() {
		e.GroupID = s.group
		e.DedupID = dedupID(m.epoch, s.key, it.seq, it.body)
	}
	return e
}

// refusal says why SQS cannot take the item ("" when it can): SQS carries
// a non-empty body of XML characters (#x9 #xA #xD #x20-#xD7FF
// #xE000-#xFFFD #x10000-#x10FFFF, valid UTF-8) within the queue's size
// limit. Checked here, not left to the service: the SDK would replace
// invalid UTF-8 with U+FFFD and SQS would store a different job.
func (m *mover) refusal(s *source, it *item) string {
	if it.body == "" {
		return "empty: an SQS message needs at least one character"
	}
	for i, r := range it.body {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(it.body[i:]); n <= 1 {
				return fmt.Sprintf("not text: byte 0x%02x at offset %d is not valid UTF-8 (SQS carries text only)", it.body[i], i)
			}
		}
		if !(r == 0x9 || r == 0xA || r == 0xD || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF) {
			return fmt.Sprintf("invalid character U+%04X at offset %d (SQS carries only XML characters)", r, i)
		}
	}
	if n, max := m.entry(s, it).Size(), s.queue.MaxMessageBytes(); n > max {
		return fmt.Sprintf("too large: %d bytes with attributes; queue %s takes at most %d", n, s.queue.Name(), max)
	}
	return ""
}

// send sends every pending item, waiting out SQS failures, until each is
// moved or parked.
func (m *mover) send(ctx context.Context, s *source, items []*item) error {
	backoff := m.o.BackoffMin
	batchMax := max(sqsstore.MaxBatchBytes, s.queue.MaxMessageBytes())
	for {
		var pend []*item
		for _, it := range items {
			if it.state == 0 {
				pend = append(pend, it)
			}
		}
		if len(pend) == 0 {
			m.waited(s, nil)
			return nil
		}
		var failure error
		for len(pend) > 0 && failure == nil {
			var chunk []*item
			var entries []sqsstore.Entry
			size := 0
			for _, it := range pend {
				e := m.entry(s, it)
				if len(entries) > 0 && (len(entries) == sqsstore.MaxBatchEntries || size+e.Size() > batchMax) {
					break
				}
				chunk, entries, size = append(chunk, it), append(entries, e), size+e.Size()
			}
			pend = pend[len(chunk):]
			outs, err := s.queue.SendBatch(ctx, entries)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				for _, it := range chunk {
					it.dup = it.dup || sqsstore.MaybeDelivered(err)
				}
				if sqsstore.ClassOf(err) == sqsstore.Fatal {
					return err
				}
				failure = err
				break
			}
			var fatal error
			for i, o := range outs {
				it := chunk[i]
				switch {
				case o.Err == nil:
					it.state, it.msgID, it.dup = recMoved, o.MessageID, it.dup || o.Unreported
				case sqsstore.ClassOf(o.Err) == sqsstore.Reject:
					it.state, it.reason = recParked, "rejected by SQS: "+o.Err.Error()
				case sqsstore.ClassOf(o.Err) == sqsstore.Fatal:
					fatal = o.Err
				default:
					it.dup = it.dup || sqsstore.MaybeDelivered(o.Err)
					failure = o.Err
				}
			}
			if fatal != nil {
				// the acknowledged ones are sent again by the next run
				return fatal
			}
			if err := m.hook("sent", s); err != nil {
				return err
			}
		}
		if failure == nil {
			backoff = m.o.BackoffMin
			continue
		}
		m.waited(s, failure)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		s.st.waited.Add(int64(backoff))
		backoff = min(2*backoff, m.o.BackoffMax)
	}
}

// waited records that s waits on err (nil: it does not wait any more).
func (m *mover) waited(s *source, err error) {
	if err == nil {
		s.st.waitingSince.Store(0)
		return
	}
	if s.st.waitingSince.CompareAndSwap(0, time.Now().UnixNano()) {
		s.st.waits.Add(1)
	}
	s.st.mu.Lock()
	s.st.lastErr = err.Error()
	s.st.mu.Unlock()
}

// snapshot reads every source's counters and legacy lengths (one pipeline).
func (m *mover) snapshot(ctx context.Context) Snapshot {
	now := time.Now()
	snap := Snapshot{At: now.UTC(), Bucket: m.o.Bucket, Epoch: m.epoch}
	p := m.o.Legacy.Pipeline()
	type lens struct{ rem, inflight, later *redis.IntCmd }
	ls := make([]lens, len(m.srcs))
	var firsts = make([]*redis.ZSliceCmd, len(m.srcs))
	for i, s := range m.srcs {
		ls[i].inflight = p.LLen(ctx, s.inflight)
		if s.kind == kindDelayed {
			ls[i].rem = p.ZCard(ctx, s.key)
			lim := strconv.FormatFloat(m.dueLimit(s), 'f', -1, 64)
			ls[i].later = p.ZCount(ctx, s.key, "("+lim, "+inf")
			firsts[i] = p.ZRangeByScoreWithScores(ctx, s.key, &redis.ZRangeBy{Min: "(" + lim, Max: "+inf", Count: 1})
		} else {
			ls[i].rem = p.LLen(ctx, s.key)
		}
	}
	_, _ = p.Exec(ctx)
	for i, s := range m.srcs {
		qs := QueueStatus{JSON: keyname.Of(s.key), Kind: s.kindName(), List: s.list, Queue: s.queue.Name(),
			Moved:  s.st.baseMoved + s.st.moved.Load(),
			Parked: s.st.baseParked + s.st.parked.Load(),
			Resent: s.st.baseResent + s.st.resent.Load(),
		}
		qs.InFlight, _ = ls[i].inflight.Result()
		qs.Remaining, _ = ls[i].rem.Result()
		if ls[i].later != nil {
			qs.Later, _ = ls[i].later.Result()
			if zs, err := firsts[i].Result(); err == nil && len(zs) > 0 {
				qs.NextDue = time.Unix(0, int64(zs[0].Score*float64(m.o.scoreUnit()))).UTC()
			}
		}
		if ws := s.st.waitingSince.Load(); ws != 0 {
			qs.Waiting, qs.WaitingSince = true, time.Unix(0, ws).UTC()
		}
		s.st.mu.Lock()
		qs.LastError = s.st.lastErr
		moved := s.st.moved.Load()
		s.st.rate = append(s.st.rate, rateSample{at: now, moved: moved})
		for len(s.st.rate) > 1 && now.Sub(s.st.rate[0].at) > 10*time.Second {
			s.st.rate = s.st.rate[1:]
		}
		if r := s.st.rate; len(r) > 1 {
			if d := r[len(r)-1].at.Sub(r[0].at).Seconds(); d > 0 {
				qs.Rate = float64(r[len(r)-1].moved-r[0].moved) / d
			}
		}
		s.st.mu.Unlock()
		snap.Queues = append(snap.Queues, qs)
	}
	return snap
}

// txErr returns the error of a MULTI: the first queued command's own error
// (a NOPERM names the command) rather than EXECABORT.
func txErr(cmds []redis.Cmder, err error) error {
	if err == nil {
		return nil
	}
	for _, c := range cmds {
		if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) && !strings.HasPrefix(e.Error(), "EXECABORT") {
			return e
		}
	}
	return err
}
