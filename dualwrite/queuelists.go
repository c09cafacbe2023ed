package dualwrite

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/store"
)

// QueueLists is the switch window of a queue bucket's lists (DESIGN.md §8).
// A list is consumed destructively, so the state copy the other buckets'
// windows make (the most recent write a mirror observed wins) would run a
// job twice or lose it as soon as producers still push to legacy while
// consumers pop the target: a whole-list copy from legacy brings back the
// jobs the target's consumers already took, and a whole-list copy from the
// target drops the jobs pushed to legacy since. QueueLists replaces both
// directions' copies of the bucket's lists with one merge per key. Its
// contracts:
//
//  1. Precondition (cutover's consumer check, LiveConsumers and PopsSeen):
//     nothing pops or rewrites the lists on legacy during the window; the
//     only writers there are producers pushing (LPUSH or RPUSH) and this
//     merge. Under that precondition every job pushed to either side runs
//     exactly once, on the target's consumers.
//  2. For each list it remembers the base: the length and digest of the
//     elements legacy and the target last agreed on (what the merge last
//     wrote to legacy, or read there and forwarded). Legacy holding the
//     base plus elements at its head (LPUSH) or its tail (RPUSH) means
//     those elements were pushed there since: they are pushed onto the
//     target at the same end, in their order, and the target's state right
//     after (read in the same MULTI) is then written to legacy (WATCHed:
//     a push that lands in between makes the write fail and the merge run
//     again, which forwards only that push). Legacy always ends as a copy
//     of the target for a rollback; the echo of that write finds nothing
//     to forward and nothing to write.
//  3. Legacy holding anything else than base plus pushes (a pop, LREM, LSET
//     or LTRIM on legacy: the precondition was broken) is a conflict: the
//     target wins (its consumers are the ones that run), legacy is
//     overwritten with it, and OnConflict is told. Elements legacy's own
//     consumer took ran there once; nothing is forwarded twice; but an
//     element pushed to legacy since the last merge is then not forwarded
//     either (the report names the list): the precondition is what keeps
//     it from happening.
//  4. Start takes the bases from the target, once, while nothing but the
//     forward mirror writes it (cutover opens the window before the
//     application switches): until then Take holds back the lists it is
//     given (Deferred) and Start merges them afterwards, so that no base
//     is taken while a whole-list copy is still in flight.
//  5. Take and Start are called with the keys' KeyLocks held (the
//     directions' copiers hold them from read to write), so one key is
//     never merged twice at once. Expiries of queue lists are not copied
//     (queues have none); order among elements pushed to both sides in the
//     same moment is best effort, exactly-once is the guarantee.
//  6. Persist, when set, is given every base before legacy is rewritten to
//     it (with the base legacy held until then as Prev), after the rewrite
//     (without), before a forward (with the number of elements in flight)
//     and after it: a migrate killed during the window gives the saved
//     bases to Start (Loaded), and the merge then forwards what producers
//     pushed to legacy while it was down instead of losing it. Where the
//     rewrite's outcome is unknown the older base is tried first (an
//     older base forwards again what the target already had: duplicates,
//     never a loss); those and a forward cut by the crash are counted as
//     possible duplicates and told to OnDuplicate.
type QueueLists struct {
	Legacy *redis.Client
	Target redis.UniversalClient
	// OnConflict is told of each conflict (contract 3). It must not block.
	OnConflict func(key, why string)
	// Journal, when set, is given a list's name before a merge writes it
	// on either side (the bucket's journal, as the reverse copier's: a
	// rollback deletes from the target what redisplit or the application
	// wrote there).
	Journal store.Journal
	// Forwarded, when set, is called with the number of elements pushed
	// from legacy to the target (application writes that reached legacy).
	Forwarded func(n int)
	// Persist, when set, saves the bases (contract 6); an error fails the
	// merge (nothing is rewritten on legacy without its base saved first).
	Persist func(map[string]state.QueueBase) error
	// Loaded are the bases a previous run saved, taken by Start.
	Loaded map[string]state.QueueBase
	// Reopened: the window reopens after a restart. A list without a
	// loaded base is then merged once by content (contract 6): legacy's
	// elements the target does not hold are forwarded, and counted as
	// possible duplicates (the target's consumers may have run them).
	Reopened bool
	// OnDuplicate is told of elements a crash may have made run twice
	// (contract 6). It must not block.
	OnDuplicate func(key string, n int, why string)

	persistMu sync.Mutex
	mu        sync.Mutex
	base      map[string]listBase
	ready     bool
	deferred  map[string]struct{}
	settled   map[string]bool // merged since Start (Reopened)

	merges, forwarded, conflicts, duplicates atomic.Int64
}

// listBase is what both sides last agreed on: n elements with digest sum.
// lpush is the end producers push to, once seen (nil: not seen yet).
type listBase struct {
	n     int
	sum   [32]byte
	lpush *bool
	// after a restart (contract 6): the base legacy held before a rewrite
	// whose outcome is unknown, and the elements a forward had in flight
	prev     *listBase
	inflight int
}

func (b listBase) saved() state.QueueBase {
	s := state.QueueBase{N: b.n, Sum: b.sum, LPush: b.lpush, Inflight: b.inflight}
	if b.prev != nil {
		p := b.prev.saved()
		s.Prev = &p
	}
	return s
}

func loadedBase(s state.QueueBase) listBase {
	b := listBase{n: s.N, sum: s.Sum, lpush: s.LPush, inflight: s.Inflight}
	if s.Prev != nil {
		p := loadedBase(*s.Prev)
		b.prev = &p
	}
	return b
}

// persist saves the bases, with over in place of key's when not nil
// (contract 6). One save at a time, each from a snapshot taken inside it:
// the last save holds the latest bases.
func (q *QueueLists) persist(key string, over *listBase) error {
	if q.Persist == nil {
		return nil
	}
	q.persistMu.Lock()
	defer q.persistMu.Unlock()
	q.mu.Lock()
	m := make(map[string]state.QueueBase, len(q.base)+1)
	for k, b := range q.base {
		m[k] = b.saved()
	}
	q.mu.Unlock()
	if over != nil {
		m[key] = over.saved()
	}
	if err := q.Persist(m); err != nil {
		return fmt.Errorf("saving the merge bases of the queue lists (%s): %w", key, err)
	}
	return nil
}

// QueueListStats are a window's figures.
type QueueListStats struct {
	Merges    int64 `json:"merges"`
	Forwarded int64 `json:"forwarded"`
	Conflicts int64 `json:"conflicts"`
	// Duplicates counts the elements a migrate crash may have made run
	// twice (contract 6).
	Duplicates int64 `json:"possible_duplicates,omitempty"`
}

// Stats returns the figures so far.
func (q *QueueLists) Stats() QueueListStats {
	return QueueListStats{Merges: q.merges.Load(), Forwarded: q.forwarded.Load(), Conflicts: q.conflicts.Load(), Duplicates: q.duplicates.Load()}
}

// maxMergeTries bounds the WATCH retries of one merge under a stream of
// pushes on legacy.
const maxMergeTries = 50

// listScript reads a key's type and, for a list, its elements, atomically.
var listScript = redis.NewScript(`
local t = redis.call('TYPE', KEYS[1])['ok']
if t ~= 'list' then return {t} end
return {t, redis.call('LRANGE', KEYS[1], 0, -1)}`)

func readList(ctx context.Context, c redis.Cmdable, key string) (typ string, elems []string, err error) {
	v, err := listScript.Run(ctx, c, []string{key}).Slice()
	if err != nil {
		return "", nil, err
	}
	typ, _ = v[0].(string)
	if len(v) > 1 {
		raw, _ := v[1].([]any)
		elems = make([]string, len(raw))
		for i, r := range raw {
			elems[i], _ = r.(string)
		}
	}
	return typ, elems, nil
}

func digest(elems []string) [32]byte {
	h := sha256.New()
	for _, e := range elems {
		fmt.Fprintf(h, "%d:%s,", len(e), e)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// Take merges the lists among entries (contract 2) and returns the entries
// it did not handle (not lists on either side), for the ordinary copy.
// Before Start it holds back every list and absent entry (contract 4).
func (q *QueueLists) Take(ctx context.Context, entries []*store.Entry) ([]*store.Entry, error) {
	rest := entries[:0:0]
	for _, e := range entries {
		if e.Type != "list" && !e.Absent() {
			rest = append(rest, e)
			continue
		}
		q.mu.Lock()
		if !q.ready {
			if q.deferred == nil {
				q.deferred = map[string]struct{}{}
			}
			q.deferred[e.Key] = struct{}{}
			q.mu.Unlock()
			continue
		}
		q.mu.Unlock()
		mine, err := q.merge(ctx, e.Key)
		if err != nil {
			return nil, err
		}
		if !mine {
			rest = append(rest, e)
		}
	}
	return rest, nil
}

// Start takes the bases of the lists the target holds (keys, each locked
// with lock while it is read), then merges the lists Take held back;
// the deferred keys that are no lists are returned (copy them again).
func (q *QueueLists) Start(ctx context.Context, keys []string, lock func([]string) func()) ([]string, error) {
	// the bases a killed run saved come first (contract 6): the target's
	// list is no base once its consumers popped it
	q.mu.Lock()
	if q.base == nil {
		q.base = map[string]listBase{}
	}
	if q.deferred == nil {
		q.deferred = map[string]struct{}{}
	}
	for k, b := range q.Loaded {
		q.base[k] = loadedBase(b)
		q.deferred[k] = struct{}{} // merged below
	}
	q.mu.Unlock()
	for _, k := range keys {
		if _, ok := q.Loaded[k]; ok {
			continue
		}
		unlock := lock([]string{k})
		typ, elems, err := readList(ctx, q.Target, k)
		if err == nil && typ == "list" {
			q.setBase(k, elems, nil)
		}
		unlock()
		if err != nil {
			return nil, err
		}
	}
	if err := q.persist("", nil); err != nil { // the bases taken (contract 6)
		return nil, err
	}
	q.mu.Lock()
	q.ready = true
	held := q.deferred
	q.deferred = nil
	q.mu.Unlock()
	var others []string
	for k := range held {
		unlock := lock([]string{k})
		mine, err := q.merge(ctx, k)
		unlock()
		if err != nil {
			return nil, err
		}
		if !mine {
			others = append(others, k)
		}
	}
	return others, nil
}

func (q *QueueLists) setBase(key string, elems []string, lpush *bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.base == nil {
		q.base = map[string]listBase{}
	}
	if lpush == nil {
		lpush = q.base[key].lpush
	}
	if len(elems) == 0 && lpush == nil {
		delete(q.base, key)
		return
	}
	q.base[key] = listBase{n: len(elems), sum: digest(elems), lpush: lpush}
}

// merge is contract 2 for key. mine is false when neither side holds a
// list (nor nothing): the key is not a list, the ordinary copy handles it.
func (q *QueueLists) merge(ctx context.Context, key string) (mine bool, err error) {
	for try := 0; try < maxMergeTries; try++ {
		err = q.Legacy.Watch(ctx, func(tx *redis.Tx) error {
			ltyp, lel, err := readList(ctx, tx, key)
			if err != nil {
				return err
			}
			ttyp, tel, err := readList(ctx, q.Target, key)
			if err != nil {
				return err
			}
			if (ltyp != "list" && ltyp != "none") || (ttyp != "list" && ttyp != "none") {
				return errNotList
			}
			mine = true
			q.mu.Lock()
			b := q.base[key]
			q.mu.Unlock()
			dupWhy, dups := "", 0
			if b.prev != nil { // the rewrite's outcome is unknown (contract 6)
				cur := b
				cur.prev, cur.inflight = nil, 0
				if p := *b.prev; suffixIs(lel, p) || prefixIs(lel, p) {
					if suffixIs(lel, cur) || prefixIs(lel, cur) {
						dups, dupWhy = max(0, cur.n-p.n), "migrate stopped while legacy was rewritten: the older base is taken"
					}
					p.inflight = b.inflight
					b = p
				} else {
					cur.inflight = b.inflight
					b = cur
				}
			}
			if b.inflight > 0 {
				dups += b.inflight
				if dupWhy != "" {
					dupWhy += "; "
				}
				dupWhy += "migrate stopped while forwarding elements to the target"
				b.inflight = 0
			}
			var pushed []string
			lpush := b.lpush
			q.mu.Lock()
			_, loaded := q.Loaded[key]
			unsure := q.Reopened && !loaded && !q.settled[key]
			q.mu.Unlock()
			switch head, tail := suffixIs(lel, b), prefixIs(lel, b); {
			case unsure: // no base known after a restart: by content
				pushed = missing(lel, tel)
				if lpush == nil {
					lpush = ptr(true)
				}
				if len(pushed) > 0 {
					dups = len(pushed)
					dupWhy = "no merge base was saved for it before migrate stopped: every job legacy holds that the target does not is forwarded, including any the target's consumers ran meanwhile"
				}
			case head && tail && len(lel) > b.n: // no base: which end is unknown
				pushed = lel[b.n:]
				if lpush != nil && *lpush {
					pushed = lel[:len(lel)-b.n]
				}
			case head:
				pushed, lpush = lel[:len(lel)-b.n], ptr(true)
			case tail:
				pushed, lpush = lel[b.n:], ptr(false)
			default:
				q.conflicts.Add(1)
				if q.OnConflict != nil {
					q.OnConflict(key, fmt.Sprintf("legacy holds %d elements that are not the %d it last agreed on with the target plus pushes (something popped or rewrote it on legacy): the target's list wins", len(lel), b.n))
				}
			}
			journaled := false
			journal := func() error {
				if q.Journal == nil || journaled {
					return nil
				}
				journaled = true
				return q.Journal([]string{key})
			}
			if len(pushed) > 0 {
				if err := journal(); err != nil {
					return err
				}
				if dups > 0 {
					dups = min(dups, len(pushed))
					q.duplicates.Add(int64(dups))
					if q.OnDuplicate != nil {
						q.OnDuplicate(key, dups, dupWhy)
					}
					dups = 0
				}
				fl := b
				fl.inflight = len(pushed)
				if err := q.persist(key, &fl); err != nil {
					return err
				}
				var push *redis.IntCmd
				var after *redis.StringSliceCmd
				_, err := q.Target.TxPipelined(ctx, func(pl redis.Pipeliner) error {
					if lpush != nil && *lpush {
						args := make([]any, len(pushed))
						for i, v := range pushed { // LPUSH a b puts b first: oldest first
							args[len(pushed)-1-i] = v
						}
						push = pl.LPush(ctx, key, args...)
					} else {
						args := make([]any, len(pushed))
						for i, v := range pushed {
							args[i] = v
						}
						push = pl.RPush(ctx, key, args...)
					}
					after = pl.LRange(ctx, key, 0, -1)
					return nil
				})
				if err == nil {
					err = push.Err()
				}
				if err != nil {
					return fmt.Errorf("forwarding %d jobs of %s to the target: %w", len(pushed), key, err)
				}
				tel = after.Val()
				// forwarded: legacy's current elements are all known to the
				// target now (a retry of the write below forwards only
				// what is pushed after)
				q.setBase(key, lel, lpush)
				q.settle(key) // a retry merges from this base, not by content
				if err := q.persist(key, nil); err != nil {
					return err
				}
				q.forwarded.Add(int64(len(pushed)))
				if q.Forwarded != nil {
					q.Forwarded(len(pushed))
				}
			}
			if slices.Equal(lel, tel) {
				q.mu.Lock()
				old, had := q.base[key]
				q.mu.Unlock()
				q.setBase(key, tel, lpush)
				if !had || old.n != len(tel) || old.sum != digest(tel) || old.prev != nil || old.inflight != 0 || (old.lpush == nil) != (lpush == nil) {
					return q.persist(key, nil)
				}
				return nil
			}
			if err := journal(); err != nil {
				return err
			}
			// the new base is saved before legacy is rewritten, with the
			// one legacy holds until then (contract 6)
			held := listBase{n: len(lel), sum: digest(lel), lpush: lpush}
			pend := listBase{n: len(tel), sum: digest(tel), lpush: lpush, prev: &held}
			if err := q.persist(key, &pend); err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(pl redis.Pipeliner) error {
				pl.Del(ctx, key)
				for i := 0; i < len(tel); i += 1000 {
					chunk := tel[i:min(i+1000, len(tel))]
					args := make([]any, len(chunk))
					for j, v := range chunk {
						args[j] = v
					}
					pl.RPush(ctx, key, args...)
				}
				return nil
			})
			if err == nil {
				q.setBase(key, tel, lpush)
				err = q.persist(key, nil)
			}
			return err
		}, key)
		switch {
		case errors.Is(err, errNotList):
			return false, nil
		case errors.Is(err, redis.TxFailedErr):
			continue // a push landed on legacy meanwhile: merge again
		}
		if err == nil {
			q.merges.Add(1)
			q.settle(key)
		}
		return mine, err
	}
	return mine, fmt.Errorf("merging queue list %s: legacy changed under %d attempts in a row", key, maxMergeTries)
}

var errNotList = errors.New("not a list")

// settle records that key's base is known since Start (Reopened).
func (q *QueueLists) settle(key string) {
	if !q.Reopened {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.settled == nil {
		q.settled = map[string]bool{}
	}
	q.settled[key] = true
}

// missing returns the elements of l that t does not hold (as a multiset),
// in l's order.
func missing(l, t []string) []string {
	have := make(map[string]int, len(t))
	for _, v := range t {
		have[v]++
	}
	var out []string
	for _, v := range l {
		if have[v] > 0 {
			have[v]--
			continue
		}
		out = append(out, v)
	}
	return out
}

func ptr(b bool) *bool { return &b }

// suffixIs: l ends with the base's elements (pushes at the head).
func suffixIs(l []string, b listBase) bool {
	return len(l) >= b.n && digest(l[len(l)-b.n:]) == b.sum || b.n == 0 && b.sum == [32]byte{}
}

// prefixIs: l starts with the base's elements (pushes at the tail).
func prefixIs(l []string, b listBase) bool {
	return len(l) >= b.n && digest(l[:b.n]) == b.sum || b.n == 0 && b.sum == [32]byte{}
}
