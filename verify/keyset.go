package verify

import (
	"hash/maphash"
	"slices"
	"sync"
)

// keySet is the set of legacy keys seen by the legacy pass, as 64-bit
// hashes (8 bytes a key), bounded by max entries. The target pass asks it
// whether legacy held a target key; a key it does not know (not seen, or
// the set overflowed) is asked of legacy itself. A hash collision (about
// n²/2⁶⁵: 3·10⁻⁸ for a million keys) could hide one extra key.
type keySet struct {
	seed  maphash.Seed
	max   int
	mu    sync.Mutex
	h     []uint64
	full  bool
	ready bool
	// idx[b] is the position in h of the first hash whose top bits are b:
	// hashes are uniform, so a lookup scans a handful of neighbours instead
	// of binary-searching the whole set (one cache miss instead of twenty).
	idx  []uint32
	bits uint
}

func newKeySet(max int) *keySet { return &keySet{seed: maphash.MakeSeed(), max: max} }

func (s *keySet) appendHash(dst []uint64, key string) []uint64 {
	return append(dst, maphash.String(s.seed, key))
}

// add records hashes; past max the set is given up (full).
func (s *keySet) add(hashes []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full {
		return
	}
	if len(s.h)+len(hashes) > s.max {
		s.full, s.h = true, nil
		return
	}
	s.h = append(s.h, hashes...)
}

// seal sorts the set; has may be called after it.
func (s *keySet) seal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	slices.Sort(s.h)
	s.bits = 1
	for 1<<s.bits < len(s.h)/4 {
		s.bits++
	}
	s.idx = make([]uint32, 1<<s.bits+1)
	j := 0
	for b := range s.idx {
		for j < len(s.h) && s.h[j]>>(64-s.bits) < uint64(b) {
			j++
		}
		s.idx[b] = uint32(j)
	}
	s.ready = true
}

// has reports whether key was seen (false when the set overflowed).
func (s *keySet) has(key string) bool {
	if !s.ready || s.full {
		return false
	}
	h := maphash.String(s.seed, key)
	b := h >> (64 - s.bits)
	for _, x := range s.h[s.idx[b]:s.idx[b+1]] {
		if x == h {
			return true
		}
		if x > h {
			return false
		}
	}
	return false
}
