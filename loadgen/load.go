// Package loadgen is a live write load against a legacy Redis whose every
// write can be recognised from outside, and a watcher that measures, on the
// targets, when each write arrived: the benchmark's and the tests' own
// measure of the live phase, independent of redisplit's figures
// (TESTING.md, "Measuring the live phase honestly").
//
// The load (Generator) is rate-limited, bounded by time or count, and mixes
// every Redis type and the commands applications use on them: SET, GETSET,
// APPEND, INCR counters, HSET sessions touched with EXPIRE, LPUSH+RPOP
// queues, SADD/SREM, ZADD/ZINCRBY, XADD, DEL, short PEXPIRE/EXPIRE TTLs,
// RENAME from a cache key to a session key, a few hot keys, and optionally
// real libraries (go-redis/cache, redis_rate) writing their own keys. Key
// names follow frameworks the built-in presets route (Families). Each write
// is reported to a Recorder with the version it left the key in.
//
// The Watcher subscribes to every target node's keyspace notifications,
// reads a key when it changes, and records when each write (or a later
// one) arrived; after a settle period the writes never seen are lost.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config configures a Generator.
type Config struct {
	// Addr is legacy's host:port (database 0); Password its password.
	Addr     string
	Password string
	// Rate is the target of writes per second (Write records, all families
	// together). Required.
	Rate float64
	// Workers is the number of connections of the plain-command load,
	// default 4. Keys are partitioned onto them: one writer per key.
	Workers int
	// Keys is the number of long-lived keys, spread over the families that
	// are written again and again (default 20000). Expiring, staged and
	// counter-window keys come on top, with fresh names.
	Keys int
	// HotKeys keys (default 4; negative: none) take HotShare (default 0.1)
	// of the writes.
	HotKeys  int
	HotShare float64
	// Libraries adds go-redis/cache and redis_rate writers, each taking
	// LibShare (default 0.05) of the writes.
	Libraries bool
	LibShare  float64
	// Seed makes the choice of keys and operations repeatable.
	Seed uint64
	// Recorder receives every write (may be nil).
	Recorder Recorder
	// SkipBuckets are buckets whose families the load does not write
	// (e.g. queue, when a rehearsal moves the queue bucket to SQS, which
	// carries plain lists only): their share goes to the other families.
	SkipBuckets []string
}

// skipped reports whether family f belongs to a bucket of SkipBuckets.
func (c *Config) skipped(f int) bool { return slices.Contains(c.SkipBuckets, families[f].Bucket) }

func (c *Config) defaults() error {
	if c.Addr == "" {
		return errors.New("loadgen: Config.Addr is required")
	}
	if !(c.Rate > 0) || math.IsInf(c.Rate, 0) {
		return fmt.Errorf("loadgen: Config.Rate must be a positive number of writes/s, not %v", c.Rate)
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Keys <= 0 {
		c.Keys = 20000
	}
	if c.HotKeys == 0 {
		c.HotKeys = 4
	}
	if c.HotKeys < 0 {
		c.HotKeys, c.HotShare = 0, 0
	} else if c.HotShare == 0 {
		c.HotShare = 0.1
	}
	if c.LibShare == 0 {
		c.LibShare = 0.05
	}
	if !c.Libraries {
		c.LibShare = 0
	}
	if c.HotShare < 0 || c.LibShare < 0 || c.HotShare+2*c.LibShare >= 1 {
		return fmt.Errorf("loadgen: HotShare %v and twice LibShare %v must leave room for the rest", c.HotShare, c.LibShare)
	}
	return nil
}

// mix is the share of the plain-command writes (hot keys and libraries
// apart) each family takes, in percent of Write records.
var mix = []struct {
	fam    int
	weight int
}{
	{fString, 20}, {fTmp, 5}, {fStage, 4}, {fTags, 6}, {fBoard, 6},
	{fSession, 18}, {fSessTmp, 4}, {fQueue, 13}, {fStream, 6}, {fCounter, 18},
}

// longLived are the families whose keys are written again and again; Keys
// is spread over them by weight (libraries included when on).
var longLived = map[int]int{fString: 20, fTags: 6, fBoard: 6, fSession: 18, fQueue: 13, fStream: 6, fGoCache: 5, fRate: 5}

// Stats are one Run's figures.
type Stats struct {
	Writes   int64            `json:"writes"`   // Write records (what Rate counts)
	Commands int64            `json:"commands"` // commands sent (a write may take two: SET+PEXPIRE, HSET+EXPIRE)
	ByOp     map[string]int64 `json:"by_op"`
	// Errors are failed commands; their keys were written no more
	// (Uncertain writes).
	Errors    int64 `json:"errors"`
	Uncertain int64 `json:"uncertain"`
	// ModelErrors are replies that contradict the generator's model of its
	// own keys (an INCR that did not return the next value, an RPOP of the
	// wrong job, a DEL of a key that was not there): something else wrote
	// the load's keys. Zero on a healthy run.
	ModelErrors int64 `json:"model_errors"`
	// Denied redis_rate requests changed nothing and are not writes.
	Denied int64 `json:"denied"`
	// Behind counts writes skipped because the load fell more than a second
	// behind its schedule (legacy too slow): the rate is not caught up in a
	// burst.
	Behind     int64         `json:"behind"`
	FirstError string        `json:"first_error,omitempty"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	Rate       float64       `json:"rate"` // achieved writes/s
}

// Generator is the load. Create it with New; Prefill once (optional), then
// Run as many times as wanted: each Run continues from the state the last
// one left (the model of every key is kept), so a baseline and a measured
// run can share one keyspace.
type Generator struct {
	cfg     Config
	client  *redis.Client
	workers []*worker
	libs    []*libWriter
	running atomic.Bool
}

// New validates cfg and connects (lazily) to legacy.
func New(cfg Config) (*Generator, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	g := &Generator{cfg: cfg}
	g.client = redis.NewClient(&redis.Options{Addr: cfg.Addr, Password: cfg.Password, DisableIdentity: true,
		PoolSize: cfg.Workers + 4, MaxRetries: -1, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	sum := 0
	for f, w := range longLived {
		if (f == fGoCache || f == fRate) && !cfg.Libraries || cfg.skipped(f) {
			continue
		}
		sum += w
	}
	nkeys := map[int]int{}
	for f, w := range longLived {
		if !cfg.skipped(f) {
			nkeys[f] = max(cfg.Workers, cfg.Keys*w/sum)
		}
	}
	nkeys[fHot] = cfg.HotKeys
	for i := 0; i < cfg.Workers; i++ {
		g.workers = append(g.workers, newWorker(g, i, nkeys))
	}
	if cfg.Libraries {
		n := max(2, int(math.Ceil(cfg.Rate*2*cfg.LibShare/libRate)))
		for i := 0; i < n; i++ {
			g.libs = append(g.libs, newLibWriter(g, i, n, nkeys))
		}
	}
	return g, nil
}

// SetRecorder replaces Config.Recorder for the next Run (not during one).
func (g *Generator) SetRecorder(r Recorder) {
	if g.running.Load() {
		panic("loadgen: SetRecorder during Run")
	}
	g.cfg.Recorder = r
}

// Close closes the generator's connections.
func (g *Generator) Close() error {
	for _, l := range g.libs {
		l.close()
	}
	return g.client.Close()
}

// Prefill writes every long-lived key once (version 1), so that the load
// updates keys a backfill has copied rather than only creating new ones.
// The prefill's writes are not recorded. Call it before the first Run.
func (g *Generator) Prefill(ctx context.Context) error {
	for _, w := range g.workers {
		if err := w.prefill(ctx); err != nil {
			return err
		}
	}
	for _, l := range g.libs {
		if err := l.prefill(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Run writes at Config.Rate until d has passed (d > 0) or count writes have
// been made (count > 0), or ctx ends, and returns the run's figures. It
// returns an error only when not one write succeeded. Runs must not
// overlap.
func (g *Generator) Run(ctx context.Context, d time.Duration, count int64) (Stats, error) {
	if d <= 0 && count <= 0 {
		return Stats{}, errors.New("loadgen: Run needs a duration or a count")
	}
	if !g.running.CompareAndSwap(false, true) {
		return Stats{}, errors.New("loadgen: Run is already running")
	}
	defer g.running.Store(false)
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	budget := &atomic.Int64{}
	if count > 0 {
		budget.Store(count)
	} else {
		budget.Store(math.MaxInt64)
	}
	plain := g.cfg.Rate * (1 - 2*g.cfg.LibShare)
	t0 := time.Now()
	var wg sync.WaitGroup
	tallies := make([]*tally, 0, len(g.workers)+len(g.libs))
	for _, w := range g.workers {
		t := newTally()
		tallies = append(tallies, t)
		wg.Add(1)
		go func() { defer wg.Done(); pace(ctx, t0, plain/float64(len(g.workers)), maxBatch, budget, t, w.step) }()
	}
	for _, l := range g.libs {
		t := newTally()
		tallies = append(tallies, t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			pace(ctx, t0, g.cfg.Rate*2*g.cfg.LibShare/float64(len(g.libs)), libBatch, budget, t, l.step)
		}()
	}
	wg.Wait()
	st := Stats{ByOp: map[string]int64{}, Elapsed: time.Since(t0)}
	for _, t := range tallies {
		t.addTo(&st)
	}
	if st.Elapsed > 0 {
		st.Rate = float64(st.Writes) / st.Elapsed.Seconds()
	}
	if st.Writes == 0 && st.Errors > 0 {
		return st, fmt.Errorf("loadgen: no write succeeded against %s: %s", g.cfg.Addr, st.FirstError)
	}
	return st, nil
}

// tally is one writer's share of Stats.
type tally struct {
	writes, commands, errors, uncertain, model, denied, behind int64
	byOp                                                       [numOps]int64
	firstErr                                                   string
}

func newTally() *tally { return &tally{} }

func (t *tally) fail(err error) {
	t.errors++
	if t.firstErr == "" {
		t.firstErr = err.Error()
	}
}

func (t *tally) addTo(s *Stats) {
	s.Writes += t.writes
	s.Commands += t.commands
	s.Errors += t.errors
	s.Uncertain += t.uncertain
	s.ModelErrors += t.model
	s.Denied += t.denied
	s.Behind += t.behind
	for op, n := range t.byOp {
		if n > 0 {
			s.ByOp[Op(op).String()] += n
		}
	}
	if s.FirstError == "" {
		s.FirstError = t.firstErr
	}
}

// maxBatch bounds the writes of one pipeline; libBatch the library calls
// (one round trip each) made before the stop is checked again.
const (
	maxBatch = 256
	libBatch = 16
)

// libRate is the most library calls per second one library writer is
// given (each takes one or two round trips): there are as many writers as
// the rate needs, at least two.
const libRate = 250

// pace calls step with the number of writes due (at most batch), so that
// the writes made follow rate from t0; step returns how many it made (a
// write may count more than one record). A writer that falls more than a
// second behind forgets the excess (Stats.Behind) instead of bursting to
// catch up. When ctx ends no step starts; the one under way completes (its
// context is not cancelled), so that no write is left half-known.
func pace(ctx context.Context, t0 time.Time, rate float64, batch int64, budget *atomic.Int64, t *tally, step func(ctx context.Context, n int, t *tally) int) {
	if rate <= 0 {
		return
	}
	opCtx := context.WithoutCancel(ctx)
	var done int64
	for ctx.Err() == nil {
		elapsed := time.Since(t0)
		due := int64(elapsed.Seconds()*rate) - done
		if due <= 0 {
			wait := time.Duration(float64(done+1)/rate*float64(time.Second)) - elapsed
			sleep(ctx, min(max(wait, 200*time.Microsecond), 5*time.Millisecond))
			continue
		}
		if lag := int64(rate); due > lag && lag > 0 {
			t.behind += due - lag
			done += due - lag
			due = lag
		}
		n := min(due, batch)
		if left := budget.Add(-n); left < 0 {
			n += left // the part of the budget that was there
			if n <= 0 {
				return
			}
		}
		made := int64(step(opCtx, int(n), t))
		done += max(made, n)
		if made < n {
			budget.Add(n - made)
		}
		if budget.Load() <= 0 {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
}

// keyState is the generator's model of one key it owns.
type keyState struct {
	seq    uint64 // the version counter
	exists bool
	strLen int
	items  []uint64 // list jobs oldest first, or set members ascending
	scores [boardSize]uint64
	// counter window
	window  int64
	count   uint64
	expires time.Time
}

const boardSize = 8

// worker is one connection of the plain-command load and the keys it owns.
type worker struct {
	g      *Generator
	id     int
	r      *rand.Rand
	n      map[int]int // keys per long-lived family
	keys   map[string]*keyState
	burnt  map[string]bool
	fresh  uint64
	window int64 // the counter window last seen
	pick   []int // family per percent of the mix
}

func newWorker(g *Generator, id int, nkeys map[int]int) *worker {
	w := &worker{g: g, id: id, r: rand.New(rand.NewPCG(g.cfg.Seed, uint64(id)+1)), n: nkeys,
		keys: map[string]*keyState{}, burnt: map[string]bool{}}
	for _, m := range mix {
		if g.cfg.skipped(m.fam) {
			continue
		}
		for i := 0; i < m.weight; i++ {
			w.pick = append(w.pick, m.fam)
		}
	}
	return w
}

func keyName(fam, i int) string { return families[fam].Prefix + strconv.Itoa(i) }

// owned picks one of the worker's keys of a long-lived family (key i
// belongs to worker i mod Workers), avoiding burnt ones; "" when it has
// none left.
func (w *worker) owned(fam int) string {
	W := len(w.g.workers)
	n := (w.n[fam] - w.id + W - 1) / W
	if n <= 0 {
		return ""
	}
	for try := 0; try < 8; try++ {
		k := keyName(fam, w.id+W*w.r.IntN(n))
		if !w.burnt[k] {
			return k
		}
	}
	return ""
}

func (w *worker) state(k string) *keyState {
	st := w.keys[k]
	if st == nil {
		st = &keyState{}
		w.keys[k] = st
	}
	return st
}

const filler = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func (w *worker) fill() string {
	n := 16 + w.r.IntN(180)
	var b []byte
	for len(b) < n {
		b = append(b, filler...)
	}
	return string(b[:n])
}

// planned is one write in a pipeline: its records and how to check the
// replies.
type planned struct {
	writes []Write
	ttl    time.Duration // Expires = At + ttl for the writes that have one
	keys   []string
	cmds   []redis.Cmder
	check  func() bool // false: the reply contradicts the model
	// sent runs with the send time before the batch is recorded (in batch
	// order); deadline, when set, gives the writes its expires.
	sent     func(at time.Time)
	deadline *keyState
}

// step plans writes (about n records), sends them in one pipeline and
// records them.
func (w *worker) step(ctx context.Context, n int, t *tally) int {
	p := w.g.client.Pipeline()
	var batch []*planned
	records := 0
	now := time.Now()
	for records < n {
		pl := w.plan(ctx, p, now)
		if pl == nil {
			continue
		}
		batch = append(batch, pl)
		records += len(pl.writes)
	}
	at := time.Now()
	_, _ = p.Exec(ctx)
	return w.finish(batch, at, t)
}

// finish checks a sent batch and records it; it returns the records made.
func (w *worker) finish(batch []*planned, at time.Time, t *tally) int {
	var out []Write
	for _, pl := range batch {
		var err error
		for _, c := range pl.cmds {
			t.commands++
			if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) && err == nil {
				err = e
			}
		}
		if err == nil && pl.check != nil && !pl.check() {
			t.model++
			err = errors.New("reply contradicts the model")
		}
		if err != nil {
			t.fail(fmt.Errorf("%s: %w", pl.keys[0], err))
			for _, k := range pl.keys {
				w.burn(k)
				t.uncertain++
				out = append(out, Write{Key: k, At: at, Uncertain: true})
			}
			continue
		}
		if pl.sent != nil {
			pl.sent(at)
		}
		for _, wr := range pl.writes {
			wr.At = at
			if pl.deadline != nil {
				wr.Expires = pl.deadline.expires
			}
			if pl.ttl > 0 {
				wr.Expires = at.Add(pl.ttl)
			}
			out = append(out, wr)
			t.byOp[wr.Op]++
		}
	}
	t.writes += int64(len(out)) - countUncertain(out)
	if r := w.g.cfg.Recorder; r != nil && len(out) > 0 {
		r.Record(out)
	}
	return len(out)
}

func countUncertain(ws []Write) (n int64) {
	for _, w := range ws {
		if w.Uncertain {
			n++
		}
	}
	return n
}

// burn retires a key whose state is no longer known.
func (w *worker) burn(k string) {
	w.burnt[k] = true
	delete(w.keys, k)
}

// plan adds one write to p; nil when the chosen family had no key to write.
func (w *worker) plan(ctx context.Context, p redis.Pipeliner, now time.Time) *planned {
	if w.g.cfg.HotShare > 0 && w.r.Float64() < w.g.cfg.HotShare/(1-2*w.g.cfg.LibShare) {
		if k := w.owned(fHot); k != "" {
			return w.planHot(ctx, p, k)
		}
	}
	switch fam := w.pick[w.r.IntN(len(w.pick))]; fam {
	case fString:
		return w.planString(ctx, p, w.owned(fam))
	case fTmp:
		return w.planTmp(ctx, p)
	case fStage:
		return w.planStage(ctx, p)
	case fTags:
		return w.planTags(ctx, p, w.owned(fam))
	case fBoard:
		return w.planBoard(ctx, p, w.owned(fam))
	case fSession:
		return w.planSession(ctx, p, w.owned(fam), now)
	case fSessTmp:
		return w.planSessTmp(ctx, p, now)
	case fQueue:
		return w.planQueue(ctx, p, w.owned(fam))
	case fStream:
		return w.planStream(ctx, p, w.owned(fam))
	case fCounter:
		return w.planCounter(ctx, p, now)
	}
	return nil
}

func one(k string, v uint64, op Op, cmds ...redis.Cmder) *planned {
	return &planned{writes: []Write{{Key: k, Version: v, Op: op}}, keys: []string{k}, cmds: cmds}
}

func (w *worker) planString(ctx context.Context, p redis.Pipeliner, k string) *planned {
	if k == "" {
		return nil
	}
	st := w.state(k)
	r := w.r.IntN(100)
	switch {
	case st.exists && r < 10:
		st.exists = false
		c := p.Del(ctx, k)
		pl := &planned{writes: []Write{{Key: k, Version: st.seq, Absent: true, Op: OpDel}}, keys: []string{k}, cmds: []redis.Cmder{c}}
		pl.check = func() bool { return c.Val() == 1 }
		return pl
	case st.exists && r < 25 && st.strLen < 1024:
		st.seq++
		piece := appendPiece(st.seq)
		st.strLen += len(piece)
		c := p.Append(ctx, k, piece)
		pl := one(k, st.seq, OpAppend, c)
		want := int64(st.strLen)
		pl.check = func() bool { return c.Val() == want }
		return pl
	case st.exists && r < 40:
		st.seq++
		v := seqString(w.fill(), st.seq)
		st.strLen = len(v)
		return one(k, st.seq, OpGetSet, p.GetSet(ctx, k, v))
	default:
		st.seq++
		v := seqString(w.fill(), st.seq)
		st.strLen, st.exists = len(v), true
		return one(k, st.seq, OpSet, p.Set(ctx, k, v, time.Hour))
	}
}

func (w *worker) planHot(ctx context.Context, p redis.Pipeliner, k string) *planned {
	st := w.state(k)
	st.seq++
	st.exists = true
	return one(k, st.seq, OpSet, p.Set(ctx, k, seqString("hot", st.seq), 0))
}

// freshName is a new key name of fam that no one wrote before.
func (w *worker) freshName(fam int) string {
	w.fresh++
	return families[fam].Prefix + strconv.Itoa(w.id) + "-" + strconv.FormatUint(w.fresh, 10)
}

func (w *worker) planTmp(ctx context.Context, p redis.Pipeliner) *planned {
	k := w.freshName(fTmp)
	ttl := time.Duration(300+w.r.IntN(2700)) * time.Millisecond
	pl := one(k, 1, OpSetExpire, p.Set(ctx, k, seqString(w.fill(), 1), 0), p.PExpire(ctx, k, ttl))
	pl.ttl = ttl
	return pl
}

// planStage writes a cache key and renames it to a session key (two
// buckets): the source is then absent, the destination holds version 1.
func (w *worker) planStage(ctx context.Context, p redis.Pipeliner) *planned {
	src := w.freshName(fStage)
	dst := families[fRenamed].Prefix + src[len(families[fStage].Prefix):]
	set := p.Set(ctx, src, seqString(w.fill(), 1), 0)
	ren := p.Rename(ctx, src, dst)
	return &planned{
		writes: []Write{{Key: src, Version: 1, Op: OpSet}, {Key: src, Version: 1, Absent: true, Op: OpRenameFrom},
			{Key: dst, Version: 1, Op: OpRenameTo}},
		keys: []string{src, dst}, cmds: []redis.Cmder{set, ren},
	}
}

func (w *worker) planTags(ctx context.Context, p redis.Pipeliner, k string) *planned {
	if k == "" {
		return nil
	}
	st := w.state(k)
	if n := len(st.items); n < 2 || (n < 8 && w.r.IntN(100) < 55) {
		st.seq++
		st.items = append(st.items, st.seq)
		c := p.SAdd(ctx, k, member(st.seq))
		pl := one(k, pack(st.seq, st.items[0]), OpSAdd, c)
		pl.check = func() bool { return c.Val() == 1 }
		return pl
	}
	gone := st.items[0]
	st.items = st.items[1:]
	c := p.SRem(ctx, k, member(gone))
	pl := one(k, pack(st.items[len(st.items)-1], st.items[0]), OpSRem, c)
	pl.check = func() bool { return c.Val() == 1 }
	return pl
}

func (w *worker) planBoard(ctx context.Context, p redis.Pipeliner, k string) *planned {
	if k == "" {
		return nil
	}
	st := w.state(k)
	r := w.r.IntN(100)
	if st.exists && r < 5 {
		st.exists, st.scores = false, [boardSize]uint64{}
		c := p.Del(ctx, k)
		pl := &planned{writes: []Write{{Key: k, Version: st.seq, Absent: true, Op: OpDel}}, keys: []string{k}, cmds: []redis.Cmder{c}}
		pl.check = func() bool { return c.Val() == 1 }
		return pl
	}
	st.seq++
	st.exists = true
	var present []int
	for j, s := range st.scores {
		if s > 0 {
			present = append(present, j)
		}
	}
	if len(present) > 0 && r < 55 {
		j := present[w.r.IntN(len(present))]
		delta := st.seq - st.scores[j]
		st.scores[j] = st.seq
		c := p.ZIncrBy(ctx, k, float64(delta), "p"+strconv.Itoa(j))
		pl := one(k, st.seq, OpZIncrBy, c)
		want := float64(st.seq)
		pl.check = func() bool { return c.Val() == want }
		return pl
	}
	j := int(st.seq % boardSize)
	st.scores[j] = st.seq
	return one(k, st.seq, OpZAdd, p.ZAdd(ctx, k, redis.Z{Score: float64(st.seq), Member: "p" + strconv.Itoa(j)}))
}

func (w *worker) planSession(ctx context.Context, p redis.Pipeliner, k string, now time.Time) *planned {
	if k == "" {
		return nil
	}
	st := w.state(k)
	if st.exists && w.r.IntN(100) < 10 { // logout
		st.exists = false
		c := p.Del(ctx, k)
		pl := &planned{writes: []Write{{Key: k, Version: st.seq, Absent: true, Op: OpDel}}, keys: []string{k}, cmds: []redis.Cmder{c}}
		pl.check = func() bool { return c.Val() == 1 }
		return pl
	}
	st.seq++
	st.exists = true
	return one(k, st.seq, OpHSet,
		p.HSet(ctx, k, "seq", st.seq, "last_seen", now.UnixMilli(), "user_id", k[len(families[fSession].Prefix):], "csrf", w.fill()[:16]),
		p.Expire(ctx, k, 30*time.Minute))
}

func (w *worker) planSessTmp(ctx context.Context, p redis.Pipeliner, now time.Time) *planned {
	k := w.freshName(fSessTmp)
	ttl := time.Duration(1+w.r.IntN(3)) * time.Second
	pl := one(k, 1, OpHSetExpire, p.HSet(ctx, k, "seq", 1, "created", now.UnixMilli()), p.Expire(ctx, k, ttl))
	pl.ttl = ttl
	return pl
}

func (w *worker) planQueue(ctx context.Context, p redis.Pipeliner, k string) *planned {
	if k == "" {
		return nil
	}
	st := w.state(k)
	if n := len(st.items); n < 2 || (n < 8 && w.r.IntN(100) < 55) {
		st.seq++
		st.items = append(st.items, st.seq)
		c := p.LPush(ctx, k, jobItem(st.seq))
		pl := one(k, pack(st.seq, st.items[0]), OpLPush, c)
		want := int64(len(st.items))
		pl.check = func() bool { return c.Val() == want }
		return pl
	}
	job := st.items[0]
	st.items = st.items[1:]
	c := p.RPop(ctx, k)
	pl := one(k, pack(st.items[len(st.items)-1], st.items[0]), OpRPop, c)
	pl.check = func() bool { return c.Val() == jobItem(job) }
	return pl
}

func (w *worker) planStream(ctx context.Context, p redis.Pipeliner, k string) *planned {
	if k == "" {
		return nil
	}
	st := w.state(k)
	st.seq++
	st.exists = true
	return one(k, st.seq, OpXAdd, p.XAdd(ctx, &redis.XAddArgs{Stream: k, MaxLen: 100, Approx: true,
		Values: []any{"seq", st.seq, "job", "email:send"}}))
}

// counterWindow is the length of a rate-limit counter's window; its key
// lives counterTTL from its first INCR, and is written only within the
// window, so every write to it is at least counterTTL-counterWindow from
// its expiry.
const (
	counterWindow = time.Second
	counterTTL    = 3 * time.Second
)

func (w *worker) planCounter(ctx context.Context, p redis.Pipeliner, now time.Time) *planned {
	W := len(w.g.workers)
	n := max(1, (w.g.cfg.Keys/10-w.id+W-1)/W)
	idx := w.id + W*w.r.IntN(n)
	win := now.UnixNano() / int64(counterWindow)
	k := families[fCounter].Prefix + strconv.Itoa(idx) + ":" + strconv.FormatInt(win, 10)
	if w.burnt[k] {
		return nil
	}
	st := w.keys[k]
	if st == nil {
		st = &keyState{window: win}
		w.keys[k] = st
		if win != w.window {
			w.window = win
			w.dropOldWindows(win)
		}
	}
	st.count++
	c := p.Incr(ctx, k)
	pl := one(k, st.count, OpIncr, c)
	if st.count == 1 {
		pl.cmds = append(pl.cmds, p.Expire(ctx, k, counterTTL))
		pl.sent = func(at time.Time) { st.expires = at.Add(counterTTL) }
	}
	pl.deadline = st // every write of the window carries the deadline its first set
	want := int64(st.count)
	pl.check = func() bool { return c.Val() == want }
	return pl
}

// dropOldWindows forgets counter windows older than the previous one.
func (w *worker) dropOldWindows(win int64) {
	for k, st := range w.keys {
		if st.window > 0 && st.window < win-1 {
			delete(w.keys, k)
		}
	}
}

// prefill writes version 1 of every long-lived key the worker owns.
func (w *worker) prefill(ctx context.Context) error {
	W := len(w.g.workers)
	p := w.g.client.Pipeline()
	flush := func(force bool) error {
		if p.Len() == 0 || (!force && p.Len() < 1000) {
			return nil
		}
		_, err := p.Exec(ctx)
		return err
	}
	for _, fam := range []int{fString, fHot, fTags, fBoard, fSession, fQueue, fStream} {
		for i := w.id; i < w.n[fam]; i += W {
			k := keyName(fam, i)
			st := w.state(k)
			st.seq, st.exists = 1, true
			switch fam {
			case fString, fHot:
				v := seqString(w.fill(), 1)
				st.strLen = len(v)
				p.Set(ctx, k, v, 0)
			case fTags:
				st.items = []uint64{1}
				p.SAdd(ctx, k, member(1))
			case fBoard:
				st.scores[1] = 1
				p.ZAdd(ctx, k, redis.Z{Score: 1, Member: "p1"})
			case fSession:
				p.HSet(ctx, k, "seq", 1, "created", time.Now().UnixMilli())
				p.Expire(ctx, k, 30*time.Minute)
			case fQueue:
				st.items = []uint64{1}
				p.LPush(ctx, k, jobItem(1))
			case fStream:
				p.XAdd(ctx, &redis.XAddArgs{Stream: k, Values: []any{"seq", 1, "job", "email:send"}})
			}
			if err := flush(false); err != nil {
				return fmt.Errorf("loadgen: prefill on %s: %w", w.g.cfg.Addr, err)
			}
		}
	}
	if err := flush(true); err != nil {
		return fmt.Errorf("loadgen: prefill on %s: %w", w.g.cfg.Addr, err)
	}
	return nil
}
