package verify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/redisplit/redisplit/redisconn"
)

// server reads observations of keys on one Redis server. The per-key hot
// path goes over raw connections (redisconn.Raw: go-redis's per-command
// objects cost the verifier as much CPU as everything else), one per
// goroutine at a time, kept in a free list of at most Workers; any error on
// it (a network error, a redirection during resharding, a refused command)
// makes the batch be read again through go-redis, which retries, follows
// redirections, and whose error is the one reported.
type server struct {
	gr   redis.Cmdable  // go-redis: the fallback, and what is reported
	opt  *redis.Options // raw connections' settings; nil: go-redis only
	mget bool           // one server: multi-key commands may name any keys
	mu   sync.Mutex
	free []*redisconn.RawConn
	max  int // connections kept in free
}

func newServer(gr redis.Cmdable, opt *redis.Options, mget bool, max int) *server {
	return &server{gr: gr, opt: opt, mget: mget, max: max}
}

func (s *server) get() *redisconn.RawConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.free); n > 0 {
		rc := s.free[n-1]
		s.free = s.free[:n-1]
		return rc
	}
	return redisconn.NewRawConn(s.opt)
}

func (s *server) put(rc *redisconn.RawConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.free) < s.max {
		s.free = append(s.free, rc)
		return
	}
	rc.Close()
}

// close closes the raw connections (not the go-redis client).
func (s *server) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rc := range s.free {
		rc.Close()
	}
	s.free = nil
}

// read observes keys (see readSides for what is read, and extra). mget
// false forces one GET per string (legacy's ACL refused MGET).
func (s *server) read(ctx context.Context, mget bool, keys []string, tryGet []bool, out []side) (extra int, err error) {
	mget = mget && s.mget
	if s.opt != nil {
		rc := s.get()
		extra, err = readRaw(ctx, rc, mget, keys, tryGet, out)
		s.put(rc)
		if err == nil {
			return extra, nil
		}
	}
	return readSides(ctx, s.gr, mget, keys, tryGet, out)
}

// legacyRead observes keys on legacy within the ops budget (a key's value
// and PTTL count two commands, paid before; a DUMP of a key MGET found not
// to be a string one more, paid after).
func (e *engine) legacyRead(ctx context.Context, keys []string, out []side) error {
	if err := e.budget.wait(ctx, 2*len(keys)); err != nil {
		return err
	}
	mget := !e.noMGET.Load()
	extra, err := e.legacy.read(ctx, mget, keys, nil, out)
	if mget && redisconn.Classify(err) == redisconn.NoPerm {
		// The ACL grants GET but not MGET (what the permissions page
		// asked for before verify used MGET): one GET per key from now
		// on.
		e.noMGET.Store(true)
		extra, err = e.legacy.read(ctx, false, keys, nil, out)
	}
	if err != nil {
		return redisconn.Explain(err, "legacy", e.o.Legacy.Options().Addr)
	}
	return e.budget.wait(ctx, extra)
}

// target is how verify reads one bucket's target: one server, or a
// cluster's masters (found per key from the client's slot map, kept as
// they are met).
type target struct {
	bucket  string
	desc    string
	single  *server
	cluster *redis.ClusterClient
	workers int
	mu      sync.Mutex
	nodes   map[string]*server
}

func newTarget(bucket, desc string, c redis.UniversalClient, sentinel bool, workers int) *target {
	t := &target{bucket: bucket, desc: desc, workers: workers}
	switch c := c.(type) {
	case *redis.ClusterClient:
		t.cluster, t.nodes = c, map[string]*server{}
	case *redis.Client:
		var opt *redis.Options
		if !sentinel { // a Sentinel's master is found through the sentinels: go-redis only
			opt = c.Options()
		}
		t.single = newServer(c, opt, true, workers)
	default:
		t.single = newServer(c, nil, false, workers)
	}
	return t
}

func (t *target) node(c *redis.Client) *server {
	addr := c.Options().Addr
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.nodes[addr]
	if s == nil {
		s = newServer(c, c.Options(), false, t.workers)
		t.nodes[addr] = s
	}
	return s
}

func (t *target) close() {
	if t.single != nil {
		t.single.close()
	}
	for _, s := range t.nodes {
		s.close()
	}
}

// read observes keys on the target; tryGet says which keys to read as
// strings. On a cluster, keys are read master by master; a batch that
// meets a redirection (resharding) or any other error is read again
// through the cluster client, which follows it.
func (t *target) read(ctx context.Context, keys []string, tryGet []bool, out []side) error {
	if t.single != nil {
		_, err := t.single.read(ctx, true, keys, tryGet, out)
		return err
	}
	byNode := map[*redis.Client][]int{}
	for i, k := range keys {
		c, err := t.cluster.MasterForKey(ctx, k)
		if err != nil {
			return err
		}
		byNode[c] = append(byNode[c], i)
	}
	g, ctx := errgroup.WithContext(ctx)
	for c, idx := range byNode {
		g.Go(func() error { return t.readNode(ctx, c, keys, tryGet, idx, out) })
	}
	return g.Wait()
}

// readNode reads the keys idx of keys on the cluster master c into out.
func (t *target) readNode(ctx context.Context, c *redis.Client, keys []string, tryGet []bool, idx []int, out []side) error {
	nk := make([]string, len(idx))
	var ng []bool
	if tryGet != nil {
		ng = make([]bool, len(idx))
	}
	for j, i := range idx {
		nk[j] = keys[i]
		if tryGet != nil {
			ng[j] = tryGet[i]
		}
	}
	no := make([]side, len(idx))
	s := t.node(c)
	rc := s.get()
	_, err := readRaw(ctx, rc, false, nk, ng, no)
	s.put(rc)
	if err != nil {
		if _, err := readSides(ctx, t.cluster, false, nk, ng, no); err != nil {
			return err
		}
	}
	for j, i := range idx {
		out[i] = no[j]
	}
	return nil
}

// targetRead reads keys on bucket's target; legacy holds the legacy
// observations, whose types choose a string read or DUMP.
func (e *engine) targetRead(ctx context.Context, bucket string, keys []string, legacy, out []side) error {
	t := e.targets[bucket]
	tryGet := make([]bool, len(keys))
	for i := range keys {
		tryGet[i] = legacy[i].raw
	}
	if err := t.read(ctx, keys, tryGet, out); err != nil {
		return redisconn.Explain(err, "target "+bucket, t.desc)
	}
	return nil
}

// readSides reads each key's value and PTTL in one pipelined round trip,
// through go-redis. Keys that are (or may be) strings are read with one
// MGET for all of them when mget is set (a single server: MGET costs the
// server and the client far less than one GET per key, and a cluster node
// refuses it across slots), else with GET; the others with DUMP, which
// serializes, checksums and compresses. A key the string read finds to be
// of another type (nil from MGET for a key PTTL finds, WRONGTYPE from GET)
// is DUMPed in a second round trip. tryGet nil means: try a string read
// for every key. extra is the number of commands of that second round
// trip. readRaw is the same over a raw connection.
func readSides(ctx context.Context, c redis.Cmdable, mget bool, keys []string, tryGet []bool, out []side) (extra int, err error) {
	t0 := time.Now()
	p := c.Pipeline()
	vals := make([]*redis.StringCmd, len(keys)) // GET or DUMP; nil: in the MGET
	ttls := make([]*redis.IntCmd, len(keys))
	var mg *redis.SliceCmd
	var inMGET []int
	for i, k := range keys {
		switch str := tryGet == nil || tryGet[i]; {
		case str && mget:
			inMGET = append(inMGET, i)
		case str:
			vals[i] = p.Get(ctx, k)
		default:
			vals[i] = p.Dump(ctx, k)
		}
	}
	if len(inMGET) > 0 {
		mk := make([]string, len(inMGET))
		for j, i := range inMGET {
			mk[j] = keys[i]
		}
		mg = p.MGet(ctx, mk...)
	}
	for i, k := range keys {
		ttls[i] = redis.NewIntCmd(ctx, "pttl", k)
		_ = p.Process(ctx, ttls[i])
	}
	if _, err := p.Exec(ctx); err != nil && !isReply(err) {
		return 0, err
	}
	mid := t0.Add(time.Since(t0) / 2).UnixMilli()
	pttl := func(i int) int64 {
		if ttls[i].Err() != nil {
			return -2
		}
		return ttls[i].Val()
	}
	var again []int
	if mg != nil {
		if err := mg.Err(); err != nil {
			return 0, err
		}
		vs := mg.Val()
		if len(vs) != len(inMGET) {
			return 0, fmt.Errorf("MGET answered %d values for %d keys", len(vs), len(inMGET))
		}
		for j, i := range inMGET {
			switch v, ok := vs[j].(string); {
			case ok:
				out[i] = observed(v, true, pttl(i), mid)
			case pttl(i) != -2:
				again = append(again, i) // not a string
			default:
				out[i] = side{}
			}
		}
	}
	for i := range keys {
		if vals[i] == nil {
			continue
		}
		raw := tryGet == nil || tryGet[i]
		v, err := vals[i].Result()
		switch {
		case errors.Is(err, redis.Nil):
			out[i] = side{}
			continue
		case raw && redisconn.ReplyCode(err) == "WRONGTYPE":
			again = append(again, i)
			continue
		case err != nil:
			return 0, err
		}
		out[i] = observed(v, raw, pttl(i), mid)
	}
	if len(again) == 0 {
		return 0, nil
	}
	p = c.Pipeline()
	dumps := make([]*redis.StringCmd, len(again))
	for j, i := range again {
		dumps[j] = p.Dump(ctx, keys[i])
	}
	if _, err := p.Exec(ctx); err != nil && !isReply(err) {
		return len(again), err
	}
	for j, i := range again {
		v, err := dumps[j].Result()
		switch {
		case errors.Is(err, redis.Nil):
			out[i] = side{}
			continue
		case err != nil:
			return len(again), err
		}
		out[i] = observed(v, false, pttl(i), mid)
	}
	return len(again), nil
}

// readRaw is readSides over a raw connection: the same commands, in the
// same order, with replies read straight into the sides (a value's bytes
// are the one allocation per key). Any error is returned for the caller
// to read the batch again through go-redis.
func readRaw(ctx context.Context, rc *redisconn.RawConn, mget bool, keys []string, tryGet []bool, out []side) (extra int, err error) {
	var inMGET []int
	vals := make([]string, len(keys))
	state := make([]byte, len(keys)) // 0 value, 'n' null, 'w' not a string
	ttls := make([]int64, len(keys))
	str := func(i int) bool { return tryGet == nil || tryGet[i] }
	t0 := time.Now()
	err = rc.Exchange(ctx, 2*len(keys), func(r *redisconn.Raw) {
		if mget {
			args := make([]string, 1, len(keys)+1)
			args[0] = "MGET"
			for i, k := range keys {
				if str(i) {
					inMGET = append(inMGET, i)
					args = append(args, k)
				}
			}
			if len(inMGET) > 0 {
				r.Command(args...)
			}
		}
		for i, k := range keys {
			switch {
			case mget && str(i):
			case str(i):
				r.Command("GET", k)
			default:
				r.Command("DUMP", k)
			}
		}
		for _, k := range keys {
			r.Command("PTTL", k)
		}
	}, func(r *redisconn.Raw) error {
		var first error // every reply is read, so the connection stays in step
		keep := func(err error) {
			if first == nil {
				first = err
			}
		}
		if len(inMGET) > 0 {
			n, err := r.ArrayLen()
			switch {
			case redisconn.IsNetErr(err):
				return err
			case err != nil:
				keep(err)
			case n != len(inMGET):
				return fmt.Errorf("MGET answered %d values for %d keys", n, len(inMGET))
			default:
				for _, i := range inMGET {
					v, null, err := rawValue(r)
					if err != nil {
						return err // inside an array: no error reply expected
					}
					vals[i] = v
					if null {
						state[i] = 'n'
					}
				}
			}
		}
		for i := range keys {
			if mget && str(i) {
				continue
			}
			v, null, err := rawValue(r)
			switch {
			case redisconn.IsNetErr(err):
				return err
			case err != nil && str(i) && redisconn.ReplyCode(err) == "WRONGTYPE":
				state[i] = 'w'
			case err != nil:
				keep(err)
			case null:
				state[i] = 'n'
			default:
				vals[i] = v
			}
		}
		for i := range keys {
			_, n, _, err := r.Reply()
			switch {
			case redisconn.IsNetErr(err):
				return err
			case err != nil:
				keep(err)
			}
			ttls[i] = n
		}
		return first
	})
	if err != nil {
		return 0, err
	}
	mid := t0.Add(time.Since(t0) / 2).UnixMilli()
	var again []int
	for i := range keys {
		switch {
		case state[i] == 'w', state[i] == 'n' && str(i) && mget && ttls[i] != -2:
			again = append(again, i) // not a string
		case state[i] == 'n':
			out[i] = side{}
		default:
			out[i] = observed(vals[i], str(i), ttls[i], mid)
		}
	}
	if len(again) == 0 {
		return 0, nil
	}
	err = rc.Exchange(ctx, len(again), func(r *redisconn.Raw) {
		for _, i := range again {
			r.Command("DUMP", keys[i])
		}
	}, func(r *redisconn.Raw) error {
		var first error
		for _, i := range again {
			v, null, err := rawValue(r)
			switch {
			case redisconn.IsNetErr(err):
				return err
			case err != nil:
				if first == nil {
					first = err
				}
			case null:
				out[i] = side{}
			default:
				out[i] = observed(v, false, ttls[i], mid)
			}
		}
		return first
	})
	return len(again), err
}

// rawValue reads a bulk string reply as a string (aliasing Raw's fresh
// buffer, which nothing else holds), or a null.
func rawValue(r *redisconn.Raw) (v string, null bool, err error) {
	b, _, null, err := r.Reply()
	if err != nil || null {
		return "", null, err
	}
	return unsafe.String(unsafe.SliceData(b), len(b)), false, nil
}

// observed builds a side from a value (raw: a string's value, else a DUMP
// payload) and its PTTL reply read at mid (Unix ms); pttl -2: the key
// vanished between the reads (or PTTL failed).
func observed(v string, raw bool, pttl, mid int64) side {
	if pttl == -2 {
		return side{}
	}
	s := side{dump: v, raw: raw, exists: true, pttl: pttl}
	if pttl >= 0 {
		s.expireAt = mid + pttl
	}
	return s
}

// singleNode reports whether c talks to one server (standalone, or a
// Sentinel's master), where a multi-key command may name any keys.
func singleNode(c redis.UniversalClient) bool {
	_, cluster := c.(*redis.ClusterClient)
	return !cluster
}
