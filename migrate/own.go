package migrate

import (
	"context"
	"hash/maphash"
	"sync"

	"github.com/redisplit/redisplit/store"
)

// ownSet is the set of keys this migration journaled for one bucket
// (--allow-nonempty): a key in it exists on the target because redisplit
// wrote it, so it is rewritten, never refused. Safe for concurrent use.
//
// It holds 64-bit hashes, not names, so that memory stays bounded by the
// key count whatever the key sizes: about 10 to 20 bytes a key (100 to 200
// MB for 10 million journaled keys), and only with --allow-nonempty. The
// seed is per process: the set is rebuilt from the journal by every run.
//
// A collision makes a foreign key look like one of redisplit's, which
// would then be overwritten (and journaled). For n journaled keys and f
// foreign keys the probability that any foreign key collides is at most
// f·n/2^64: below 10^-5 for 10^8 journaled and 10^6 foreign keys.
type ownSet struct {
	seed maphash.Seed
	mu   sync.RWMutex
	m    map[uint64]struct{}
}

func newOwnSet() *ownSet {
	return &ownSet{seed: maphash.MakeSeed(), m: map[uint64]struct{}{}}
}

func (s *ownSet) add(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		s.m[maphash.String(s.seed, k)] = struct{}{}
	}
}

func (s *ownSet) has(key string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.m[maphash.String(s.seed, key)]
	return ok
}

// admit is the bucket's filter in front of its sink with --allow-nonempty
// (the copier's Admit; pipeline.go contract 6): it keeps out every key
// this migration never journaled that exists on the target, for writes and
// deletes alike. A present one is refused: listed in the refusal journal
// (once) and never written; a tombstone is not sent (the target's key is
// not redisplit's to delete). A key refused before stays refused.
func (b *bucketRun) admit(ctx context.Context, entries []*store.Entry) ([]*store.Entry, error) {
	keep := entries[:0:0]
	var check []*store.Entry
	b.mu.Lock() // refused grows concurrently (other workers)
	for _, e := range entries {
		switch _, refused := b.refused[e.Key]; {
		case refused:
		case b.own.has(e.Key):
			keep = append(keep, e)
		default:
			check = append(check, e)
		}
	}
	b.mu.Unlock()
	if len(check) == 0 {
		return keep, nil
	}
	names := make([]string, len(check))
	for i, e := range check {
		names[i] = e.Key
	}
	exists, err := b.t.Existing(ctx, names, b.retry)
	if err != nil {
		return nil, err
	}
	var foreign []string
	for i, e := range check {
		switch {
		case !exists[i]:
			if !e.Absent() {
				keep = append(keep, e) // not on the target: ours from now on
			} // absent on both sides: nothing to delete
		case !e.Absent():
			foreign = append(foreign, e.Key)
		}
	}
	if len(foreign) == 0 {
		return keep, nil
	}
	if _, err := b.refusedJ.Append(foreign...); err != nil {
		return nil, err
	}
	b.mu.Lock()
	for _, k := range foreign {
		b.refused[k] = struct{}{}
	}
	b.mu.Unlock()
	return keep, nil
}
