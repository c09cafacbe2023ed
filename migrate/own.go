package migrate

import (
	"hash/maphash"
	"sync"
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
