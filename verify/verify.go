// Package verify proves key-level parity between the legacy instance and the
// target of every bucket (DESIGN.md §7): every legacy key the plan routes to
// a bucket is compared with the bucket's target (missing, type, value, TTL),
// and every key on the target that the plan routes there but legacy lacks is
// an extra. It only reads: it never writes to legacy or to a target.
// redisplit's own keys (migrate.OwnPrefix: the lease lock) are not compared.
//
// A key on the bucket's refusal list (migrate --allow-nonempty left it
// alone) that differs is Foreign, not a parity failure. A rolled-back bucket
// (Options.RolledBack) is not checked for parity but for rollback's promise
// (RolledBackCheck): its target holds no copy of a legacy key (LeftBehind).
// A bucket other than the cache whose target's maxmemory-policy evicts is
// refused (BucketResult.Refusal), even in parity, unless
// Options.AllowEvicting says the migration accepted it.
//
// Guarantees:
//   - Strings are read with MGET (one per batch, on a single server) or GET
//     (a cluster, or a legacy whose ACL refuses MGET) and compared byte for
//     byte; other types with DUMP. Equal DUMP payloads are equal values;
//     differing payloads are compared logically (unordered for hashes and
//     sets, with scores for sorted sets, entry by entry for streams, in
//     order for lists): from the payloads themselves for the hash-table,
//     intset and skiplist encodings (payloadCanonical), else with commands,
//     page by page, so a big key is never held whole in memory.
//   - Both directions: every legacy key routed to a bucket is compared with
//     its target, and every target key routed there that legacy lacks is an
//     Extra. Extras are found through per-bucket key digests of both passes
//     (keyDigest, constant memory), resolved key by key with EXISTS on
//     legacy only where they disagree, after both passes: a key created on
//     legacy while verify runs is never a false extra.
//   - A difference is reported only if it persists over every round: keys
//     are re-checked after Interval for Rounds rounds. A key whose legacy
//     value or expiry changed between two of its rounds is reported as
//     in_flux, never as a difference; a key that expired or was deleted on
//     both sides is no difference.
//   - Memory is bounded independently of the keyspace: keys stream in
//     batches, the digests are of constant size, and at most MaxDiffs
//     differing keys are kept for re-checks (Result.CapHit says when the cap
//     was hit; parity is then false).
//   - Legacy commands respect the MaxOps budget.
package verify

import (
	"context"
	"errors"
	"fmt"
	"hash/crc64"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/layout"
	"github.com/redisplit/redisplit/migrate"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
)

// Router routes a key to its bucket; *classify.Classifier is one.
type Router interface {
	Classify(key, typ string) classify.Match
	migrate.TypeRouter // which keys need their TYPE (migrate.TypesOf)
}

// Options configure a verify.
type Options struct {
	Legacy *redis.Client
	// Targets are the buckets to verify and their stores.
	Targets map[string]*store.Redis
	Router  Router
	// Unknown is the bucket of keys no rule matches (config "unknown"), or
	// "", "skip" or "block" for none.
	Unknown      string
	TTLTolerance time.Duration // default 1s
	Rounds       int           // default 3; 1 = no re-check
	Interval     time.Duration // between rounds; default 1s
	Sample       float64       // percent of keys, (0, 100]; default 100
	MaxOps       int           // legacy commands per second; 0 = unlimited
	MaxDiffs     int           // differing keys kept for re-checks; default 100000
	Batch        int           // keys per pipeline (and per target-read batch); default 1000
	Workers      int           // batches in flight; default 8
	// Progress, when set, is called with the number of legacy keys
	// compared so far (from several goroutines).
	Progress func(done int64)
	// Refused streams the keys migrate refused to overwrite on bucket's
	// target (state.Dir.ReadRefused); nil: none. A difference of such a
	// key is reported as Foreign. The lists are held in memory.
	Refused func(bucket string, fn func(key string) error) error
	// RolledBack are the buckets of Targets that were rolled back: they
	// get the RolledBackCheck instead of the parity check.
	RolledBack map[string]bool
	// AllowEvicting are the buckets whose migration accepted an evicting
	// target (migrate --allow-evicting-target): not refused for it.
	AllowEvicting map[string]bool
	// Warm is the cache's copy policy as migrate recorded it (nil: every
	// cache key was copied, and a missing one is missing). With a policy,
	// a cache key missing on its target that Warmed (migrate.Warmed: the
	// cache's journal) does not hold was left on legacy on purpose: it is
	// NotWarmed, counted (not listed), final at its first observation.
	Warm   *state.Warm
	Warmed func(key string) bool
}

func (o *Options) defaults() {
	if o.TTLTolerance <= 0 {
		o.TTLTolerance = time.Second
	}
	if o.Rounds <= 0 {
		o.Rounds = 3
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Sample <= 0 || o.Sample > 100 {
		o.Sample = 100
	}
	if o.MaxDiffs <= 0 {
		o.MaxDiffs = 100_000
	}
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	if o.MaxOps > 0 && o.Batch > o.MaxOps/4 {
		o.Batch = max(1, o.MaxOps/4)
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
}

// side is one observation of a key on one server.
type side struct {
	dump   string // DUMP payload, or the value itself when raw; "" when absent
	raw    bool   // dump holds a string's value (read with GET)
	exists bool
	pttl   int64 // -1 no expiry
	// expireAt is the absolute expiry in Unix milliseconds, estimated as the
	// midpoint of the pipeline's round trip plus pttl (0 = none): two
	// servers read at different moments agree on it, PTTLs would not.
	expireAt int64
}

// typ is the key's Redis type, "" when unknown (a module type).
func (s side) typ() string {
	if s.raw {
		return "string"
	}
	return payloadType(s.dump)
}

func (s side) facts() Facts {
	if !s.exists {
		return Facts{}
	}
	f := Facts{Exists: true, Type: s.typ(), TTLms: s.pttl, Bytes: len(s.dump)}
	if s.raw {
		f.Digest = fmt.Sprintf("%016x", crc64.Checksum([]byte(s.dump), crcTable))
	} else {
		f.Digest = payloadDigest(s.dump)
	}
	return f
}

var crcTable = crc64.MakeTable(crc64.ECMA)

// candidate is a key that differed in the last round it was checked.
type candidate struct {
	bucket  string
	cat     Category
	legacy  side
	target  side
	detail  string
	rounds  int
	changed bool // legacy changed between two of the key's rounds
}

type engine struct {
	o       Options
	sampler Sampler
	budget  *budget

	mu       sync.Mutex
	cands    map[string]*candidate
	overflow map[string]*Counts // per bucket: differences beyond the cap
	// fixed are differences final at their first observation (foreign,
	// left_behind): never re-checked, capped like cands.
	fixed   map[string]*candidate
	foreign map[string]map[string]struct{} // per bucket: the refusal list
	counts  map[string]*Counts
	tkeys   map[string]*int64

	// hash names keys for the digests: per parity bucket, onBoth sums
	// the keys the legacy pass found on legacy and on the target, onTarget
	// the keys the target pass found on the target (routed there); a
	// partition where they differ is resolved key by key (resolvePass).
	hash     keyHash
	onBoth   map[string]*keyDigest
	onTarget map[string]*keyDigest
	// noMGET is set when legacy's ACL refuses MGET: strings are then read
	// with GET, one command per key.
	noMGET   atomic.Bool
	legacy   *server
	targets  map[string]*target
	scanned  atomic.Int64
	compared atomic.Int64
	unrouted atomic.Int64
}

// Run verifies every bucket of o.Targets. It returns an error only when a
// server fails; differences are in the Result.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	if o.Legacy == nil || o.Router == nil || len(o.Targets) == 0 {
		return nil, errors.New("verify: legacy, router and at least one target are required")
	}
	e := &engine{o: o, sampler: NewSampler(o.Sample), budget: newBudget(o.MaxOps), hash: newKeyHash(),
		cands: map[string]*candidate{}, overflow: map[string]*Counts{}, counts: map[string]*Counts{}, tkeys: map[string]*int64{},
		fixed: map[string]*candidate{}, foreign: map[string]map[string]struct{}{},
		onBoth: map[string]*keyDigest{}, onTarget: map[string]*keyDigest{},
		legacy: newServer(o.Legacy, o.Legacy.Options(), true, o.Workers), targets: map[string]*target{}}
	defer e.legacy.close()
	for b, t := range o.Targets {
		e.targets[b] = newTarget(b, t.Describe(), t.Client, t.Kind == config.KindSentinel, o.Workers)
		defer e.targets[b].close()
	}
	parityBuckets := 0
	for b := range o.Targets {
		e.overflow[b] = &Counts{}
		e.counts[b] = &Counts{}
		e.tkeys[b] = new(int64)
		if !o.RolledBack[b] {
			parityBuckets++
			e.onBoth[b], e.onTarget[b] = new(keyDigest), new(keyDigest)
		}
		if o.Refused != nil {
			set := map[string]struct{}{}
			if err := o.Refused(b, func(k string) error { set[k] = struct{}{}; return nil }); err != nil {
				return nil, err
			}
			e.foreign[b] = set
		}
	}
	res := &Result{Rounds: o.Rounds, Interval: o.Interval, IntervalMs: o.Interval.Milliseconds(), Sample: o.Sample, MaxDiffs: o.MaxDiffs, Started: time.Now().UTC()}

	// Round 1: legacy → targets and targets → legacy at the same time;
	// then the partitions where the two passes' digests disagree are
	// resolved key by key. A rolled-back bucket's check needs no legacy
	// pass: it starts from the target's keys.
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	if parityBuckets > 0 {
		g.Go(func() error {
			err := e.legacyPass(gctx)
			mu.Lock()
			res.Phases.Legacy = time.Since(res.Started).Seconds()
			mu.Unlock()
			return err
		})
	}
	for b, t := range o.Targets {
		g.Go(func() error {
			err := e.targetPass(gctx, b, t)
			mu.Lock()
			res.Phases.Target = max(res.Phases.Target, time.Since(res.Started).Seconds())
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	t1 := time.Now()
	g, gctx = errgroup.WithContext(ctx)
	for b, t := range o.Targets {
		if e.onBoth[b] == nil {
			continue // rolled back: no digests
		}
		if m := e.onBoth[b].mismatch(e.onTarget[b]); len(m) > 0 {
			res.ResolvedPartitions += len(m)
			g.Go(func() error { return e.resolvePass(gctx, b, t, m) })
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	res.Phases.Resolve = time.Since(t1).Seconds()
	// Rounds 2..N: re-check only the differing keys.
	for r := 2; r <= o.Rounds && len(e.cands) > 0; r++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(o.Interval):
		}
		if err := e.recheck(ctx); err != nil {
			return nil, err
		}
	}
	if err := e.finish(ctx, res); err != nil {
		return nil, err
	}
	res.Duration = time.Since(res.Started)
	res.Seconds = res.Duration.Seconds()
	return res, nil
}

// route returns the verified bucket of key, or "" for a key of another
// bucket; unrouted is true when no rule (nor the unknown setting) routes it.
func (e *engine) route(key, typ string) (bucket string, unrouted bool) {
	m := e.o.Router.Classify(key, typ)
	b := string(m.Bucket)
	if m.Bucket == classify.Unknown {
		b = e.o.Unknown
		if b == "" || b == "skip" || b == "block" {
			return "", true
		}
	}
	if _, ok := e.o.Targets[b]; !ok {
		return "", false
	}
	return b, false
}

// legacyScanFactor: one legacy SCAN asks for this many batches' worth of
// keys (without a MaxOps budget). The legacy pass is one SCAN chain feeding
// Workers batches in flight; each SCAN waits behind the workers' pipelines
// on the single-threaded legacy, so with one batch per SCAN the chain of
// SCAN round trips bounded the pass wherever CPU did not (the workers were
// idle 45-50% of their time).
const legacyScanFactor = 4

// legacyScanCount is the COUNT of the legacy pass's SCAN: Batch ×
// legacyScanFactor, or Batch under a MaxOps budget (one SCAN counts one
// command there, so it stays as small as before).
func (e *engine) legacyScanCount() int {
	if e.o.MaxOps > 0 {
		return e.o.Batch
	}
	return e.o.Batch * legacyScanFactor
}

// legacyPass scans legacy (legacyScanCount keys per SCAN) and compares
// each batch of Batch keys with the targets, Workers batches at a time.
func (e *engine) legacyPass(ctx context.Context) error {
	batches := make(chan []string, e.o.Workers)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(batches)
		send := func(b []string) error {
			select {
			case batches <- b:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		var cursor uint64
		buf := make([]string, 0, e.o.Batch)
		for {
			if err := e.budget.wait(ctx, 1); err != nil {
				return err
			}
			keys, next, err := e.o.Legacy.Scan(ctx, cursor, "", int64(e.legacyScanCount())).Result()
			if err != nil {
				return redisconn.Explain(err, "legacy", e.o.Legacy.Options().Addr)
			}
			for _, k := range keys {
				if e.sampler.In(k) && !strings.HasPrefix(k, migrate.OwnPrefix) {
					buf = append(buf, k)
				}
				if len(buf) == e.o.Batch {
					if err := send(buf); err != nil {
						return err
					}
					buf = make([]string, 0, e.o.Batch)
				}
			}
			if next == 0 && len(buf) > 0 {
				if err := send(buf); err != nil {
					return err
				}
			}
			cursor = next
			if cursor == 0 {
				return nil
			}
		}
	})
	for w := 0; w < e.o.Workers; w++ {
		g.Go(func() error {
			for keys := range batches {
				if err := e.compareBatch(ctx, keys); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// compareBatch compares one batch of legacy keys with their targets.
func (e *engine) compareBatch(ctx context.Context, keys []string) error {
	legacy := make([]side, len(keys))
	if err := e.legacyRead(ctx, keys, legacy); err != nil {
		return err
	}
	e.scanned.Add(int64(len(keys)))
	byBucket := map[string][]int{}
	for i, k := range keys {
		if !legacy[i].exists {
			continue // deleted or expired since SCAN: not a key any more
		}
		b, unrouted := e.route(k, legacy[i].typ())
		if unrouted {
			e.unrouted.Add(1)
		}
		if b == "" || e.o.RolledBack[b] {
			continue
		}
		byBucket[b] = append(byBucket[b], i)
	}
	// The buckets' targets are read at the same time: each is its own
	// server (or servers), and a batch waits for the slowest only.
	g, ctx := errgroup.WithContext(ctx)
	for b, idx := range byBucket {
		g.Go(func() error { return e.compareBucket(ctx, b, keys, legacy, idx) })
	}
	return g.Wait()
}

// compareBucket compares the keys idx of a batch (keys, observed on legacy
// as legacy) that the plan routes to bucket b with b's target.
func (e *engine) compareBucket(ctx context.Context, b string, keys []string, legacy []side, idx []int) error {
	bk := make([]string, len(idx))
	for j, i := range idx {
		bk[j] = keys[i]
	}
	bl := make([]side, len(idx))
	for j, i := range idx {
		bl[j] = legacy[i]
	}
	tgt := make([]side, len(idx))
	if err := e.targetRead(ctx, b, bk, bl, tgt); err != nil {
		return err
	}
	for j, k := range bk {
		if tgt[j].exists {
			e.onBoth[b].add(e.hash.of(k))
		}
	}
	vs, err := e.judgeBatch(ctx, b, bk, bl, tgt)
	if err != nil {
		return err
	}
	var compared, notWarmed int64
	for j, v := range vs {
		if v.skip {
			continue
		}
		compared++
		switch {
		case v.cat == "":
		case v.cat == Missing && e.notWarmed(b, bk[j]):
			notWarmed++ // counted, not listed: final at its first observation
		case e.isForeign(b, bk[j]):
			e.addFixed(bk[j], &candidate{bucket: b, cat: Foreign, legacy: bl[j], target: tgt[j], detail: foreignDetail(v), rounds: 1})
		default:
			e.addCandidate(bk[j], &candidate{bucket: b, cat: v.cat, legacy: bl[j], target: tgt[j], detail: v.detail, rounds: 1})
		}
	}
	e.mu.Lock()
	e.counts[b].Compared += compared
	e.counts[b].NotWarmed += notWarmed
	e.mu.Unlock()
	if e.o.Progress != nil {
		e.o.Progress(e.compared.Add(compared))
	}
	return nil
}

// notWarmed reports whether key, a missing key of bucket b, was left on
// legacy by the cache's copy policy (Options.Warm): never journaled.
func (e *engine) notWarmed(b, key string) bool {
	w := e.o.Warm
	if w == nil || b != string(classify.Cache) || w.Policy == config.CopyAll {
		return false
	}
	return e.o.Warmed == nil || !e.o.Warmed(key)
}

// verdict is the judgement of one key: a category ("" when legacy and
// target agree) or skip when the key is not compared (about to expire).
type verdict struct {
	cat    Category
	detail string
	skip   bool
}

// smallPayload is the DUMP size up to which a key whose payloads differ is
// read whole (one pipelined command per side, batched); bigger keys are
// compared page by page.
const smallPayload = 32 << 10

// judgeBatch judges the keys of one bucket from their observations l
// (legacy) and t (target). Keys whose payloads differ are compared
// logically: small ones in one pipelined round trip per side for the whole
// batch, big ones page by page.
func (e *engine) judgeBatch(ctx context.Context, bucket string, keys []string, l, t []side) ([]verdict, error) {
	out := make([]verdict, len(keys))
	var small []int
	var smallTypes []string
	for i := range keys {
		v, logical := e.quickJudge(l[i], t[i])
		if !logical {
			out[i] = v
			continue
		}
		lt, tt := l[i].typ(), t[i].typ()
		if lt == "" || tt == "" {
			var err error
			if lt, tt, err = e.types(ctx, bucket, keys[i], lt, tt); err != nil {
				return nil, err
			}
		}
		switch {
		case lt != tt:
			out[i] = verdict{cat: Type, detail: fmt.Sprintf("legacy %s, target %s", lt, tt)}
		case l[i].raw && t[i].raw: // two string values: they differ
			out[i] = verdict{cat: Value, detail: fmt.Sprintf("bytes differ at offset %d (legacy %d bytes, target %d)",
				firstDiff(l[i].dump, t[i].dump), len(l[i].dump), len(t[i].dump))}
		case len(l[i].dump) > smallPayload || len(t[i].dump) > smallPayload:
			d, err := e.logicalDiff(ctx, bucket, keys[i], lt)
			if err != nil {
				return nil, err
			}
			out[i] = e.afterLogical(d, l[i], t[i])
		case samePayloadContent(l[i].dump, t[i].dump, &out[i]):
			out[i] = e.afterLogical(out[i].detail, l[i], t[i])
		case wholeRead[lt] != "":
			small = append(small, i)
			smallTypes = append(smallTypes, lt)
		default:
			d, err := e.logicalDiff(ctx, bucket, keys[i], lt)
			if err != nil {
				return nil, err
			}
			out[i] = e.afterLogical(d, l[i], t[i])
		}
	}
	if len(small) > 0 {
		sk := make([]string, len(small))
		for j, i := range small {
			sk[j] = keys[i]
		}
		details, err := e.compareWhole(ctx, bucket, sk, smallTypes)
		if err != nil {
			return nil, err
		}
		for j, i := range small {
			out[i] = e.afterLogical(details[j], l[i], t[i])
		}
	}
	return out, nil
}

// samePayloadContent compares two DUMP payloads of small keys by content
// (payloadCanonical), without asking either server: ok is false when
// either cannot be read that way; otherwise v.detail says where they
// differ ("" when equal).
func samePayloadContent(l, t string, v *verdict) (ok bool) {
	lt, la, ok := payloadCanonical(l)
	if !ok {
		return false
	}
	tt, ta, ok := payloadCanonical(t)
	if !ok || lt != tt {
		return false
	}
	v.detail = diffCanonical(la, ta)
	return true
}

// quickJudge judges a key from presence, payloads and expiry alone; logical
// is true when the payloads differ and the content must be compared.
func (e *engine) quickJudge(l, t side) (v verdict, logical bool) {
	tol := e.o.TTLTolerance.Milliseconds()
	switch {
	case !l.exists && !t.exists:
		return verdict{}, false
	case !l.exists:
		return verdict{cat: Extra}, false
	case !t.exists:
		if l.pttl >= 0 && l.pttl <= tol {
			return verdict{skip: true}, false // expires within the tolerance: may already be gone on the target
		}
		return verdict{cat: Missing}, false
	}
	if l.dump != t.dump || l.raw != t.raw {
		return verdict{}, true
	}
	return ttlVerdict(l, t, tol), false
}

// afterLogical turns the result of a logical comparison into a verdict.
func (e *engine) afterLogical(detail string, l, t side) verdict {
	if detail != "" {
		return verdict{cat: Value, detail: detail}
	}
	return ttlVerdict(l, t, e.o.TTLTolerance.Milliseconds())
}

// ttlVerdict compares the expiries of two equal values.
func ttlVerdict(l, t side, tol int64) verdict {
	if expiryClose(l, t, tol) {
		return verdict{}
	}
	if l.pttl >= 0 && t.pttl >= 0 {
		return verdict{cat: TTL, detail: fmt.Sprintf("expiry differs by %s (legacy ttl %s, target ttl %s)",
			time.Duration(t.expireAt-l.expireAt)*time.Millisecond, fmtTTL(l.pttl), fmtTTL(t.pttl))}
	}
	return verdict{cat: TTL, detail: fmt.Sprintf("legacy ttl %s, target ttl %s", fmtTTL(l.pttl), fmtTTL(t.pttl))}
}

// expiryClose reports whether two observations expire within tol
// milliseconds of each other (no expiry only matches no expiry).
func expiryClose(a, b side, tol int64) bool {
	if a.pttl < 0 || b.pttl < 0 {
		return a.pttl < 0 && b.pttl < 0
	}
	d := a.expireAt - b.expireAt
	if d < 0 {
		d = -d
	}
	return d <= tol
}

func fmtTTL(ms int64) string {
	if ms < 0 {
		return "none"
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

// types asks TYPE on each side whose payload type is unknown.
func (e *engine) types(ctx context.Context, bucket, key, lt, tt string) (string, string, error) {
	if lt == "" {
		if err := e.budget.wait(ctx, 1); err != nil {
			return "", "", err
		}
		v, err := e.o.Legacy.Type(ctx, key).Result()
		if err != nil {
			return "", "", redisconn.Explain(err, "legacy", e.o.Legacy.Options().Addr)
		}
		lt = v
	}
	if tt == "" {
		t := e.o.Targets[bucket]
		v, err := t.Client.Type(ctx, key).Result()
		if err != nil {
			return "", "", redisconn.Explain(err, "target "+bucket, t.Describe())
		}
		tt = v
	}
	return lt, tt, nil
}

// addCandidate keeps a differing key for re-checks, or counts it beyond the cap.
func (e *engine) addCandidate(key string, c *candidate) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, dup := e.cands[key]; dup {
		return
	}
	if len(e.cands) >= e.o.MaxDiffs {
		e.overflow[c.bucket].add(c.cat, 1)
		return
	}
	e.cands[key] = c
}

// isForeign reports whether key is on bucket's refusal list.
func (e *engine) isForeign(bucket, key string) bool {
	_, ok := e.foreign[bucket][key]
	return ok
}

// foreignDetail is the detail of a Foreign difference whose comparison
// gave v.
func foreignDetail(v verdict) string {
	what := string(v.cat)
	switch {
	case v.cat == Missing:
		what = "absent on the target now"
	case v.cat == Extra:
		what = "legacy no longer holds it"
	case v.detail != "":
		what += ": " + v.detail
	}
	return "existed on the target before the migration; migrate refused to overwrite it (--allow-nonempty); " + what
}

// addFixed records a difference that is final at its first observation,
// or counts it beyond the cap.
func (e *engine) addFixed(key string, c *candidate) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, dup := e.fixed[key]; dup {
		return
	}
	if len(e.fixed) >= e.o.MaxDiffs {
		e.overflow[c.bucket].add(c.cat, 1)
		return
	}
	e.fixed[key] = c
}

// scanFactor: one target SCAN asks for this many batches' worth of keys.
// The target pass is a SCAN → look up → SCAN loop per master; fewer,
// larger SCANs mean fewer round trips waited for.
const scanFactor = 8

// targetPass scans the target of bucket: for a bucket checked for parity
// it adds every key the plan routes there to the bucket's onTarget digest
// (extras are found later, by resolvePass, where the digests disagree);
// for a rolled-back bucket it looks for copies of legacy's keys
// (rolledBackBatch).
func (e *engine) targetPass(ctx context.Context, bucket string, t *store.Redis) error {
	return e.scanTarget(ctx, bucket, t, func(ctx context.Context, c *redis.Client, keys []string) error {
		mine, err := e.routedHere(ctx, bucket, c, keys)
		if err != nil {
			return err
		}
		atomic.AddInt64(e.tkeys[bucket], int64(len(mine)))
		if e.o.RolledBack[bucket] {
			return e.rolledBackBatch(ctx, bucket, c, singleNode(t.Client), mine)
		}
		d := e.onTarget[bucket]
		for _, k := range mine {
			d.add(e.hash.of(k))
		}
		return nil
	})
}

// scanTarget SCANs every master of t and hands each batch to fn.
func (e *engine) scanTarget(ctx context.Context, bucket string, t *store.Redis, fn func(ctx context.Context, c *redis.Client, keys []string) error) error {
	return t.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, "", int64(e.o.Batch*scanFactor)).Result()
			if err != nil {
				return redisconn.Explain(err, "target "+bucket, c.Options().Addr)
			}
			if err := fn(ctx, c, keys); err != nil {
				return err
			}
			cursor = next
			if cursor == 0 {
				return nil
			}
		}
	})
}

// routedHere returns the keys of one target SCAN batch that are sampled,
// not redisplit's own, and routed by the plan to bucket.
func (e *engine) routedHere(ctx context.Context, bucket string, c *redis.Client, keys []string) ([]string, error) {
	types, err := migrate.TypesOf(ctx, c, e.o.Router, keys, nil)
	if err != nil {
		return nil, redisconn.Explain(err, "target "+bucket, c.Options().Addr)
	}
	mine := make([]string, 0, len(keys))
	for i, k := range keys {
		if !e.sampler.In(k) || strings.HasPrefix(k, migrate.OwnPrefix) || types[i] == "none" {
			continue
		}
		if b, _ := e.route(k, types[i]); b == bucket {
			mine = append(mine, k)
		}
	}
	return mine, nil
}

// resolvePass finds the extras of bucket in the partitions where its
// digests disagree (mismatch): it scans the target again and asks legacy
// (EXISTS) about each key of those partitions that the plan routes to the
// bucket. Legacy is asked after both passes, so a key created on legacy
// while verify ran is never a false extra. A key legacy lacks is read on
// the target and kept as an Extra candidate (re-checked in later rounds
// like every difference), or as Foreign when it is on the refusal list.
func (e *engine) resolvePass(ctx context.Context, bucket string, t *store.Redis, mismatch map[uint32]bool) error {
	mget := singleNode(t.Client)
	return e.scanTarget(ctx, bucket, t, func(ctx context.Context, c *redis.Client, keys []string) error {
		in := keys[:0:0]
		for _, k := range keys {
			if mismatch[partition(e.hash.of(k))] {
				in = append(in, k)
			}
		}
		if len(in) == 0 {
			return nil
		}
		mine, err := e.routedHere(ctx, bucket, c, in)
		if err != nil || len(mine) == 0 {
			return err
		}
		if err := e.budget.wait(ctx, len(mine)); err != nil {
			return err
		}
		p := e.o.Legacy.Pipeline()
		ex := make([]*redis.IntCmd, len(mine))
		for i, k := range mine {
			ex[i] = p.Exists(ctx, k)
		}
		if _, err := p.Exec(ctx); err != nil {
			return redisconn.Explain(err, "legacy", e.o.Legacy.Options().Addr)
		}
		var absent []string
		for i, k := range mine {
			if ex[i].Val() == 0 {
				absent = append(absent, k)
			}
		}
		if len(absent) == 0 {
			return nil
		}
		tgt := make([]side, len(absent))
		if _, err := readSides(ctx, c, mget, absent, nil, tgt); err != nil {
			return redisconn.Explain(err, "target "+bucket, c.Options().Addr)
		}
		for i, k := range absent {
			switch {
			case !tgt[i].exists:
			case e.isForeign(bucket, k):
				e.addFixed(k, &candidate{bucket: bucket, cat: Foreign, target: tgt[i], detail: foreignDetail(verdict{cat: Extra}), rounds: 1})
			default:
				e.addCandidate(k, &candidate{bucket: bucket, cat: Extra, target: tgt[i], rounds: 1})
			}
		}
		return nil
	})
}

// rolledBackBatch checks one target SCAN batch of a rolled-back bucket.
// Rollback removed the journal, so what survives as evidence of redisplit's
// copies is legacy itself: a target key the plan routes to the bucket that
// holds exactly legacy's type and content (whatever its expiry: legacy's
// may have moved since) is a copy left behind (LeftBehind); any other
// (legacy lacks it, or holds another value) is kept (counted as Foreign).
// A copy whose legacy key changed or disappeared since is indistinguishable
// from a foreign key and passes; a foreign key equal to legacy's is
// reported. Keys on the bucket's refusal list, if one is left, are kept.
func (e *engine) rolledBackBatch(ctx context.Context, bucket string, c *redis.Client, mget bool, mine []string) error {
	for start := 0; start < len(mine); start += e.o.Batch {
		chunk := mine[start:min(start+e.o.Batch, len(mine))]
		tgt := make([]side, len(chunk))
		if _, err := readSides(ctx, c, mget, chunk, nil, tgt); err != nil {
			return redisconn.Explain(err, "target "+bucket, c.Options().Addr)
		}
		l := make([]side, len(chunk))
		if err := e.legacyRead(ctx, chunk, l); err != nil {
			return err
		}
		vs, err := e.judgeBatch(ctx, bucket, chunk, l, tgt)
		if err != nil {
			return err
		}
		var kept int64
		for i, k := range chunk {
			switch {
			case !tgt[i].exists: // gone since the SCAN
			case !l[i].exists || (vs[i].cat != "" && vs[i].cat != TTL) || e.isForeign(bucket, k):
				kept++
			default:
				e.addFixed(k, &candidate{bucket: bucket, cat: LeftBehind, legacy: l[i], target: tgt[i], rounds: 1,
					detail: fmt.Sprintf("same type and content as legacy's key (legacy ttl %s, target ttl %s): a copy rollback did not delete, or a foreign key equal to legacy's", fmtTTL(l[i].pttl), fmtTTL(tgt[i].pttl))})
			}
		}
		e.mu.Lock()
		e.counts[bucket].Foreign += kept
		e.mu.Unlock()
	}
	return nil
}

// recheck re-reads every candidate on both sides and judges it again.
func (e *engine) recheck(ctx context.Context) error {
	type item struct {
		key string
		c   *candidate
	}
	byBucket := map[string][]item{}
	for k, c := range e.cands {
		byBucket[c.bucket] = append(byBucket[c.bucket], item{k, c})
	}
	for b, items := range byBucket {
		for start := 0; start < len(items); start += e.o.Batch {
			chunk := items[start:min(start+e.o.Batch, len(items))]
			keys := make([]string, len(chunk))
			for i, it := range chunk {
				keys[i] = it.key
			}
			l := make([]side, len(keys))
			t := make([]side, len(keys))
			if err := e.legacyRead(ctx, keys, l); err != nil {
				return err
			}
			if err := e.targetRead(ctx, b, keys, l, t); err != nil {
				return err
			}
			vs, err := e.judgeBatch(ctx, b, keys, l, t)
			if err != nil {
				return err
			}
			for i, it := range chunk {
				cat, detail := vs[i].cat, vs[i].detail
				if cat == "" {
					delete(e.cands, it.key)
					continue
				}
				c := it.c
				c.changed = c.changed || legacyChanged(c.legacy, l[i], e.o.TTLTolerance)
				c.cat, c.detail, c.legacy, c.target = cat, detail, l[i], t[i]
				c.rounds++
			}
		}
	}
	return nil
}

// legacyChanged reports whether legacy's key changed between two
// observations: created, deleted, another value, or another absolute expiry
// (beyond tol).
func legacyChanged(a, b side, tol time.Duration) bool {
	if a.exists != b.exists {
		return true
	}
	if !a.exists {
		return false
	}
	if a.raw != b.raw || a.dump != b.dump {
		return true
	}
	if (a.pttl < 0) != (b.pttl < 0) {
		return true
	}
	return !expiryClose(a, b, tol.Milliseconds())
}

// finish turns the candidates into the Result.
func (e *engine) finish(ctx context.Context, res *Result) error {
	evicted := map[string]int64{}
	for b, t := range e.o.Targets {
		br := BucketResult{Bucket: b, Target: t.Describe(), Check: ParityCheck, TargetKeys: *e.tkeys[b]}
		if e.o.RolledBack[b] {
			br.Check = RolledBackCheck
		}
		info, err := t.Info(ctx)
		if err != nil {
			return err
		}
		br.EvictedKeys, br.EvictionPolicy = info.EvictedKeys, info.MaxMemoryPolicy
		if br.Check == ParityCheck && !e.o.AllowEvicting[b] {
			br.Refusal = evictionRefusal(b, br.Target, info.MaxMemoryPolicy)
		}
		evicted[b] = info.EvictedKeys
		res.Buckets = append(res.Buckets, br)
	}
	sort.Slice(res.Buckets, func(i, j int) bool { return bucketOrder(res.Buckets[i].Bucket) < bucketOrder(res.Buckets[j].Bucket) })

	// Cache keys missing on a target that evicted at least that many keys
	// are evictions, not losses.
	missing := map[string]int64{}
	for _, c := range e.cands {
		if c.cat == Missing && !(e.o.Rounds > 1 && c.changed) {
			missing[c.bucket]++
		}
	}
	for k, c := range e.cands {
		cat := c.cat
		if e.o.Rounds > 1 && c.changed {
			cat = InFlux
		}
		if cat == Missing && c.bucket == string(classify.Cache) && missing[c.bucket]+e.overflow[c.bucket].Missing <= evicted[c.bucket] {
			cat = Evicted
		}
		res.Differences = append(res.Differences, Difference{Key: k, Bucket: c.bucket, Category: cat,
			Legacy: c.legacy.facts(), Target: c.target.facts(), Detail: c.detail, Rounds: c.rounds})
	}
	for k, c := range e.fixed {
		res.Differences = append(res.Differences, Difference{Key: k, Bucket: c.bucket, Category: c.cat,
			Legacy: c.legacy.facts(), Target: c.target.facts(), Detail: c.detail, Rounds: c.rounds})
	}
	sort.Slice(res.Differences, func(i, j int) bool {
		a, b := res.Differences[i], res.Differences[j]
		if a.Bucket != b.Bucket {
			return bucketOrder(a.Bucket) < bucketOrder(b.Bucket)
		}
		if a.Category != b.Category {
			return a.Category < b.Category
		}
		return a.Key < b.Key
	})
	for i := range res.Buckets {
		br := &res.Buckets[i]
		cnt := *e.counts[br.Bucket]
		for _, d := range res.Differences {
			if d.Bucket == br.Bucket {
				cnt.add(d.Category, 1)
			}
		}
		ov := e.overflow[br.Bucket]
		for _, cat := range Categories {
			cnt.add(cat, ov.Of(cat))
		}
		res.Unlisted += ov.Persistent()
		br.Counts = cnt
		if br.Check == RolledBackCheck {
			br.OK = cnt.Persistent() == 0
			br.Statement = rolledBackStatement(cnt, e.o.Sample)
		} else {
			br.Parity = cnt.Persistent() == 0
			br.OK = br.Parity && br.Refusal == ""
		}
		if m := missing[br.Bucket] + ov.Missing; m > 0 {
			switch {
			case br.Bucket == string(classify.Cache) && cnt.Evicted > 0:
				br.Notes = append(br.Notes, fmt.Sprintf("%d keys missing on the target are accounted for by its %d evictions (maxmemory-policy %s): reported as evicted, not lost", cnt.Evicted, br.EvictedKeys, br.EvictionPolicy))
			case br.EvictedKeys > 0:
				br.Notes = append(br.Notes, fmt.Sprintf("the target evicted %d keys (maxmemory-policy %s); %d keys are missing", br.EvictedKeys, br.EvictionPolicy, m))
			}
		}
		if br.Check == ParityCheck && cnt.NotWarmed > 0 {
			br.Notes = append(br.Notes, fmt.Sprintf("%d cache keys were left on legacy on purpose by the copy policy (targets.cache.copy %s): reported as not warmed, not missing", cnt.NotWarmed, e.o.Warm.Policy))
		}
		if br.Check == ParityCheck && cnt.Foreign > 0 {
			br.Notes = append(br.Notes, fmt.Sprintf("%d keys existed on the target before the migration and migrate refused to overwrite them (--allow-nonempty): reported as foreign, not a parity failure", cnt.Foreign))
		}
		if ov.Persistent() > 0 {
			br.Notes = append(br.Notes, fmt.Sprintf("%d differing keys beyond the cap of %d were counted from the first round only, not re-checked and not listed", ov.Persistent(), e.o.MaxDiffs))
		}
		if br.Check == ParityCheck && ov.Foreign > 0 {
			br.Notes = append(br.Notes, fmt.Sprintf("%d foreign keys beyond the cap of %d were counted, not listed", ov.Foreign, e.o.MaxDiffs))
		}
		if cnt.InFlux > 0 {
			br.Notes = append(br.Notes, fmt.Sprintf("%d keys changed on legacy between re-check rounds: not proven either way; re-run verify when writes settle (or while dual-write runs)", cnt.InFlux))
		}
		if e.o.Sample < 100 && br.Check == ParityCheck {
			br.Confidence = confidence(e.o.Sample, cnt.Compared, cnt.Persistent())
		}
	}
	res.CapHit = res.Unlisted > 0
	res.OK, res.Parity = !res.CapHit, !res.CapHit
	for _, br := range res.Buckets {
		res.OK = res.OK && br.OK
		res.Parity = res.Parity && br.Check == ParityCheck && br.OK
	}
	res.LegacyKeys = e.scanned.Load()
	res.Unrouted = e.unrouted.Load()
	if res.Differences == nil {
		res.Differences = []Difference{}
	}
	return nil
}

// evictionRefusal says why bucket may not be marked verified on a target
// whose maxmemory-policy is policy ("" when it may): the profile's policy
// check (layout.Policy, the one `targets check` and migrate's preflight
// run) blocks it — every bucket but the cache must lose no key, so its
// target must not evict. An unknown policy ("": INFO did not say) is not
// judged.
func evictionRefusal(bucket, target, policy string) string {
	if !layout.Policy(bucket, policy).Blocks {
		return ""
	}
	return fmt.Sprintf("bucket %s: target %s has maxmemory-policy %s, which evicts %s keys when memory is full: not marked verified; set maxmemory-policy noeviction on it (CONFIG SET and its config file), or accept the risk with migrate --allow-evicting-target %s",
		bucket, target, policy, bucket, bucket)
}

// rolledBackStatement says what a rolled-back check proved.
func rolledBackStatement(c Counts, sample float64) string {
	of := ""
	if sample < 100 {
		of = fmt.Sprintf(" (in a %.4g%% sample of its keys)", sample)
	}
	if c.LeftBehind == 0 {
		return fmt.Sprintf("rolled back: target holds none of redisplit's keys%s; %d foreign keys kept", of, c.Foreign)
	}
	return fmt.Sprintf("NOT rolled back: target holds %d keys%s with exactly legacy's content (left_behind): copies rollback did not delete (delete them on the target), or foreign keys equal to legacy's; %d other keys kept", c.LeftBehind, of, c.Foreign)
}

func bucketOrder(b string) int {
	for i, x := range classify.Buckets {
		if string(x) == b {
			return i
		}
	}
	return len(classify.Buckets)
}
