package verify

import (
	"hash/maphash"
	"sync/atomic"
)

// digestBits sets the number of partitions of a keyDigest (2^digestBits):
// a mismatch sends only the target keys of its partitions to the
// resolution pass, about keys/2^digestBits per mismatched partition.
const digestBits = 14

// keyDigest summarizes a set of keys in constant memory (196 KB, whatever
// the keyspace): the 64-bit hash space is cut into 2^digestBits partitions,
// and for each it keeps the number of keys and the sum (mod 2^64) of their
// hashes. Two digests of the same set, added to in any order and from any
// number of goroutines, are equal; a partition whose count or sum differs
// holds at least one key of one set that the other lacks. Two different
// sets agree on a partition only when their differing hashes cancel out:
// for one key against another, when their hashes are equal in the 50 bits
// the partition does not fix (about 2⁻⁵⁰).
type keyDigest struct {
	n   [1 << digestBits]uint32
	sum [1 << digestBits]uint64
}

// keyHash is the hash of a key name the digests and partitions use: one
// seed per verify, so that both sides of a comparison agree.
type keyHash struct{ seed maphash.Seed }

func newKeyHash() keyHash { return keyHash{seed: maphash.MakeSeed()} }

func (k keyHash) of(key string) uint64 { return maphash.String(k.seed, key) }

// partition is the partition of a hash.
func partition(h uint64) uint32 { return uint32(h & (1<<digestBits - 1)) }

// add counts a key by its hash; safe for concurrent use.
func (d *keyDigest) add(h uint64) {
	p := partition(h)
	atomic.AddUint32(&d.n[p], 1)
	atomic.AddUint64(&d.sum[p], h)
}

// mismatch returns the partitions where d and o differ, as a set (nil when
// none), to be read once both are complete.
func (d *keyDigest) mismatch(o *keyDigest) map[uint32]bool {
	var out map[uint32]bool
	for p := range d.n {
		if d.n[p] != o.n[p] || d.sum[p] != o.sum[p] {
			if out == nil {
				out = map[uint32]bool{}
			}
			out[uint32(p)] = true
		}
	}
	return out
}
