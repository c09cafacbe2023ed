// Package scan reads every key of a live legacy Redis once, classifies it,
// and aggregates what a migration needs to know: per bucket keys, bytes,
// type mix and TTL bands; the key patterns; proposals for keys no rule
// routes; preflight verdicts and sizing advice. It never writes to Redis.
//
// Cost on legacy: one SCAN per batch plus one pipeline per batch of TYPE,
// PTTL, OBJECT ENCODING and MEMORY USAGE key SAMPLES 0 (the latter on every
// key, or on a deterministic hash-selected sample), optionally capped by an
// ops/s budget; and, for at most 3 keys per unknown pattern over the whole
// scan, one bounded read by type (evidence.go: GETRANGE, LINDEX,
// HRANDFIELD or HSCAN, ZRANGE, XRANGE; values are never kept). A
// restart of legacy during the scan is detected (run_id) and reported.
// Memory in the process is bounded whatever the keyspace size:
// keys are streamed, patterns are capped (MaxPatterns, the rest folded into
// one "(other patterns)" entry per bucket) and each pattern keeps at most 5
// sample names; the cache skew forecast (forecast.go) is a fixed-size
// structure per worker.
package scan

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/layout/skew"
	"github.com/redisplit/redisplit/redisconn"
	"github.com/redisplit/redisplit/store"
)

// Options tune a scan. The zero value of a field means its default.
type Options struct {
	// Count is the SCAN COUNT hint (default 1000).
	Count int
	// MaxOps caps the commands per second sent to legacy (0: no cap). SCAN and
	// every pipelined command count as one each.
	MaxOps int
	// SamplePercent is the share of keys, in (0, 100], that get MEMORY USAGE;
	// the others' bytes are extrapolated per pattern. Selection is a hash of
	// the key name, so the same keys are sampled on every run. Default 100.
	SamplePercent float64
	// MaxPatterns caps the distinct patterns tracked (default 10000).
	MaxPatterns int
	// Workers is the number of pipelines in flight (default 4).
	Workers int
	// KeysOut, when set, is the path of the per-key JSON-lines export.
	KeysOut string
	// CacheMasters is the master count of the cache cluster whose skew the
	// report forecasts (forecast.go; default DefaultCacheMasters).
	CacheMasters int
	// Progress, when set, is called with the number of keys done so far.
	Progress func(done int64)
	// Started, when set, is called once with DBSIZE before the first SCAN.
	Started func(dbsize int64)
}

func (o *Options) defaults() {
	if o.Count <= 0 {
		o.Count = 1000
	}
	if o.SamplePercent <= 0 || o.SamplePercent > 100 {
		o.SamplePercent = 100
	}
	if o.MaxPatterns <= 0 {
		o.MaxPatterns = 10000
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.CacheMasters <= 0 {
		o.CacheMasters = DefaultCacheMasters
	}
}

// caps is what the connected user may run, learned by preflight.
type caps struct {
	memoryUsage    bool
	objectEncoding bool
	sniffRefused   [nSniffCmds]bool // evidence reads refused by ACL (evidence.go)
	noModules      bool             // no module is loaded: "raw" encodes only strings
}

// Run scans the database c is connected to, routing each key with cl, and
// returns the report. Errors name legacy's address, never a password. It runs
// the preflight checks first; a command scan cannot do without (SCAN, TYPE,
// PTTL) refused by ACL is an error naming it, while a refused MEMORY USAGE or
// OBJECT ENCODING degrades the report (bytes or encodings unknown) and says
// so in a verdict.
func Run(ctx context.Context, c *redis.Client, cl *classify.Classifier, opts Options) (*Report, error) {
	opts.defaults()
	addr := c.Options().Addr
	start := time.Now()
	pf, err := preflight(ctx, c)
	if err != nil {
		return nil, err
	}
	dbsize, err := c.DBSize(ctx).Result()
	if err != nil {
		return nil, redisconn.Explain(err, "legacy", addr)
	}
	if opts.Started != nil {
		opts.Started(dbsize)
	}
	var ko *keysOut
	if opts.KeysOut != "" {
		if ko, err = newKeysOut(opts.KeysOut); err != nil {
			return nil, err
		}
		defer ko.abort()
	}
	s := &scanner{c: c, cl: cl, opts: opts, caps: pf.caps, ko: ko, addr: addr,
		perKey: 2, sampleCut: uint64(opts.SamplePercent * 100), sniff: newSniffState(opts.MaxPatterns)}
	for i, no := range pf.caps.sniffRefused {
		s.sniff.refused[i].Store(no)
	}
	if pf.caps.memoryUsage {
		s.perKey++
	}
	if opts.MaxOps > 0 {
		s.lim = rate.NewLimiter(rate.Limit(opts.MaxOps), opts.MaxOps)
	}
	agg, err := s.run(ctx)
	if err != nil {
		return nil, err
	}
	r := buildReport(agg, s, pf, dbsize)
	r.StartedAt = start.UTC()
	// A SCAN cursor is only valid on the server that issued it: a restart or
	// a failover behind the address mid-scan can miss or repeat keys.
	if info, err := c.Info(ctx, "server").Result(); err == nil {
		if id := store.ParseInfo(info)["run_id"]; id != "" && pf.Info["run_id"] != "" && id != pf.Info["run_id"] {
			r.Preflight = append(r.Preflight, Verdict{"restart", StatusFail,
				"legacy restarted or failed over during the scan (run_id changed): keys may be missing or counted twice; scan again"})
		}
	}
	fc := s.fc
	var notForecast int64
	if ko != nil {
		if err := ko.finish(r.acceptedRules(), fc); err != nil {
			return nil, err
		}
		r.KeysOut = opts.KeysOut
	} else {
		for _, b := range r.Buckets {
			if b.Bucket == string(classify.Cache) {
				notForecast = b.KeysByProposals
			}
		}
	}
	r.CacheForecast = cacheForecast(fc, notForecast)
	r.Preflight = append(r.Preflight, r.CacheForecast.verdict())
	r.DurationMs = time.Since(start).Milliseconds()
	return r, nil
}

type scanner struct {
	c         *redis.Client
	cl        *classify.Classifier
	opts      Options
	caps      caps
	ko        *keysOut
	addr      string
	lim       *rate.Limiter
	perKey    int    // pipelined commands per key, TYPE follow-ups aside
	sampleCut uint64 // keys with hash%10000 < sampleCut get MEMORY USAGE

	fcMu sync.Mutex
	fc   *skew.Forecaster // the cache skew forecast (forecast.go), under fcMu

	done    atomic.Int64
	expired atomic.Int64
	sniff   *sniffState // the evidence layer's reads (evidence.go)
}

// wait takes n tokens of the ops budget, in pieces no larger than its burst.
func (s *scanner) wait(ctx context.Context, n int) error {
	if s.lim == nil {
		return nil
	}
	for n > 0 {
		k := min(n, s.lim.Burst())
		if err := s.lim.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// sampled reports whether key gets MEMORY USAGE.
func (s *scanner) sampled(key string) bool {
	if !s.caps.memoryUsage {
		return false
	}
	if s.sampleCut >= 10000 {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	return h.Sum64()%10000 < s.sampleCut
}

// run streams SCAN batches to the workers. SCAN of the next batch runs while
// the workers pipeline the previous ones (the channel holds a few batches),
// so legacy is never idle waiting for this process and memory stays bounded
// by Workers+2 batches.
func (s *scanner) run(ctx context.Context) (*aggregator, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	batches := make(chan []string, s.opts.Workers+1)
	go func() {
		defer close(batches)
		var cursor uint64
		for {
			if err := s.wait(ctx, 1); err != nil {
				cancel(err)
				return
			}
			keys, next, err := s.c.Scan(ctx, cursor, "", int64(s.opts.Count)).Result()
			if err != nil {
				cancel(redisconn.Explain(err, "legacy", s.addr))
				return
			}
			if len(keys) > 0 {
				select {
				case batches <- keys:
				case <-ctx.Done():
					return
				}
			}
			if next == 0 {
				return
			}
			cursor = next
		}
	}()
	aggs := make([]*aggregator, s.opts.Workers)
	s.fc = skew.New(s.opts.CacheMasters)
	var wg sync.WaitGroup
	for i := range aggs {
		aggs[i] = newAggregator(s.opts.MaxPatterns)
		wg.Add(1)
		go func(a *aggregator) {
			defer wg.Done()
			w := &worker{s: s, agg: a, rc: redisconn.NewRawConn(s.c.Options())}
			defer w.rc.Close()
			for keys := range batches {
				if ctx.Err() != nil {
					continue // drain
				}
				if err := w.batch(ctx, keys); err != nil {
					cancel(err)
				}
			}
		}(aggs[i])
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	total := aggs[0]
	for _, a := range aggs[1:] {
		total.merge(a)
	}
	if s.ko != nil {
		if err := s.ko.flush(); err != nil {
			return nil, err
		}
	}
	return total, nil
}

type worker struct {
	s      *scanner
	agg    *aggregator
	cache  []int // indexes in info of the batch's cache keys (forecast.go)
	norm   normaliser
	line   []byte
	rc     *redisconn.RawConn // the per-key pipelines
	info   []KeyInfo
	sniffs []sniffReq
	flat   [][]byte // reply buffers of the evidence reads
	tail   [][]byte
	// needType holds the indexes in info of keys whose encoding did not
	// tell their type.
	needType []int
}

// batch pipelines the per-key commands of one SCAN batch and aggregates. A
// broken connection is redialled and the batch (read-only) retried twice.
func (w *worker) batch(ctx context.Context, keys []string) error {
	s := w.s
	if err := s.wait(ctx, len(keys)*s.perKey); err != nil {
		return err
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = ctx.Err(); err != nil {
			return err
		}
		if err = w.fetch(ctx, keys); !redisconn.IsNetErr(err) {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	if err != nil {
		return s.cmdErr(err)
	}
	w.line = w.line[:0]
	w.sniffs = w.sniffs[:0]
	w.cache = w.cache[:0]
	for i := range w.info {
		ki := &w.info[i]
		if ki.Type == "" { // gone between SCAN and the pipeline
			s.expired.Add(1)
			continue
		}
		m := s.cl.Classify(ki.Key, ki.Type)
		rule := ""
		if m.Rule != nil {
			rule = m.Rule.String()
		}
		w.norm.normalize(ki.Key)
		pa := w.agg.add(ki, m.Bucket, rule, &w.norm)
		if m.Bucket == classify.Cache {
			w.cache = append(w.cache, i)
		}
		if s.ko != nil {
			w.line = appendKeyLine(w.line, ki, m.Bucket, rule)
		}
		if pa == nil || m.Bucket != classify.Unknown || pa.sniffDone {
			continue
		}
		if shape := shapeOf(ki); pa.sniffSpent&(1<<shape) == 0 {
			if r := (sniffReq{key: ki.Key, typ: ki.Type, shape: shape, pa: pa}); s.sniff.plan(&r) {
				switch ok, done, shapeDone := s.sniff.take(w.norm.text, ki); {
				case ok:
					w.sniffs = append(w.sniffs, r)
				case done:
					pa.sniffDone = true // this pattern's reads are spent (by any worker)
				case shapeDone:
					pa.sniffSpent |= 1 << shape // this class's reads are spent
				}
			}
		}
	}
	w.forecastCache()
	if len(w.sniffs) > 0 {
		if err := w.sniffValues(ctx); err != nil {
			return s.cmdErr(err)
		}
	}
	if s.ko != nil {
		if err := s.ko.write(w.line); err != nil {
			return err
		}
	}
	n := s.done.Add(int64(len(keys)))
	if s.opts.Progress != nil {
		s.opts.Progress(n)
	}
	return nil
}

// fetch reads the facts of keys into w.info; a key found missing (TYPE
// none, PTTL -2, nil OBJECT ENCODING or MEMORY USAGE) gets Type "".
//
// Legacy's CPU is what bounds a scan, so each key costs it as few commands
// as possible: one pipeline of PTTL, OBJECT ENCODING and MEMORY USAGE, where
// the encoding gives the type for most keys (int, embstr, raw, quicklist,
// intset, skiplist, stream each belong to one type), then a second pipeline
// of TYPE for the keys whose encoding several types share (listpack,
// hashtable, ziplist, raw when modules are loaded). Without OBJECT ENCODING
// (refused by ACL) every key gets TYPE in the first pipeline. Every reply is
// read even after an error reply, so the connection stays in step.
func (w *worker) fetch(ctx context.Context, keys []string) error {
	s := w.s
	byEnc := s.caps.objectEncoding
	mem := make([]bool, len(keys))
	w.info = w.info[:0]
	w.needType = w.needType[:0]
	var first error // first error reply; returned once every reply is read
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	err := w.rc.Exchange(ctx, len(keys), func(rc *redisconn.Raw) {
		for i, k := range keys {
			if !byEnc {
				rc.Command("TYPE", k)
			}
			rc.Command("PTTL", k)
			if byEnc {
				rc.Command("OBJECT", "ENCODING", k)
			}
			if mem[i] = s.sampled(k); mem[i] {
				rc.Command("MEMORY", "USAGE", k, "SAMPLES", "0")
			}
		}
	}, func(rc *redisconn.Raw) error {
		for i, k := range keys {
			ki := KeyInfo{Key: k, PTTL: -1, Bytes: -1}
			gone := false
			if !byEnc {
				b, _, _, err := rc.Reply()
				switch {
				case redisconn.IsNetErr(err):
					return err
				case err != nil:
					keep(err)
				default:
					ki.Type = intern(b)
					gone = ki.Type == "none"
				}
			}
			_, n, _, err := rc.Reply()
			switch {
			case redisconn.IsNetErr(err):
				return err
			case err != nil:
				keep(err)
			case n == -2:
				gone = true
			case n >= 0:
				ki.PTTL = n
			}
			if byEnc {
				b, _, null, err := rc.Reply()
				switch {
				case redisconn.IsNetErr(err):
					return err
				case err != nil && !strings.Contains(err.Error(), "no such key"):
					keep(err)
				case err != nil || null:
					gone = true
				default:
					ki.Encoding = intern(b)
					ki.Type = typeOfEncoding(ki.Encoding, s.caps.noModules)
				}
			}
			if mem[i] {
				_, n, null, err := rc.Reply()
				switch {
				case redisconn.IsNetErr(err):
					return err
				case err != nil:
					keep(err)
				case null:
					gone = true
				default:
					ki.Bytes = n
				}
			}
			switch {
			case gone:
				ki.Type = ""
			case ki.Type == "":
				w.needType = append(w.needType, i)
			}
			w.info = append(w.info, ki)
		}
		return first
	})
	if err != nil || len(w.needType) == 0 {
		return err
	}
	if err := s.wait(ctx, len(w.needType)); err != nil {
		return err
	}
	return w.rc.Exchange(ctx, len(w.needType), func(rc *redisconn.Raw) {
		for _, i := range w.needType {
			rc.Command("TYPE", keys[i])
		}
	}, func(rc *redisconn.Raw) error {
		for _, i := range w.needType {
			b, _, _, err := rc.Reply()
			switch {
			case redisconn.IsNetErr(err):
				return err
			case err != nil:
				keep(err)
			case string(b) == "none": // gone since the first pipeline
				w.info[i].Type = ""
			default:
				w.info[i].Type = intern(b)
			}
		}
		return first
	})
}

// typeOfEncoding returns the only type an OBJECT ENCODING reply can belong
// to, or "" when several types share the encoding and TYPE must tell.
func typeOfEncoding(enc string, noModules bool) string {
	switch enc {
	case "int", "embstr":
		return "string"
	case "raw": // module values report "raw" too
		if noModules {
			return "string"
		}
	case "quicklist", "linkedlist":
		return "list"
	case "intset":
		return "set"
	case "skiplist":
		return "zset"
	case "stream":
		return "stream"
	}
	return "" // listpack, ziplist, hashtable, unknown encodings
}

func (s *scanner) cmdErr(err error) error {
	return fmt.Errorf("scan: %w", redisconn.Explain(err, "legacy", s.addr))
}
