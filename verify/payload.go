package verify

import (
	"encoding/hex"
)

// payloadType returns the Redis type of a DUMP payload from its first byte
// (the RDB object type), or "" when the byte is unknown (a module type, or
// an RDB version newer than this table). DUMP payloads end with a 2-byte RDB
// version and an 8-byte CRC64, so an empty or short payload is "" too.
func payloadType(p string) string {
	if len(p) < 11 {
		return ""
	}
	switch p[0] {
	case 0:
		return "string"
	case 1, 10, 14, 18: // list, ziplist, quicklist, quicklist 2
		return "list"
	case 2, 11, 20: // set, intset, listpack
		return "set"
	case 3, 5, 12, 17: // zset, zset 2, ziplist, listpack
		return "zset"
	case 4, 9, 13, 16, 22, 23, 24, 25: // hash, zipmap, ziplist, listpack, with field TTLs
		return "hash"
	case 15, 19, 21: // stream listpacks 1..3
		return "stream"
	}
	return ""
}

// payloadDigest is the CRC64 trailer of a DUMP payload, in hex: a cheap
// fingerprint of the key's value (it changes when the value changes).
func payloadDigest(p string) string {
	if len(p) < 10 {
		return ""
	}
	return hex.EncodeToString([]byte(p[len(p)-8:]))
}

// Sampler decides deterministically whether a key is in a sample of
// Percent percent of the keyspace: the decision is a pure function of the
// key name (FNV-1a), so legacy and targets sample the same keys and a
// re-run samples the same keys again.
type Sampler struct {
	threshold uint64 // keys with hash%1_000_000 < threshold are in
	all       bool
}

// NewSampler returns a sampler of percent percent; percent ≤ 0 or ≥ 100
// samples every key.
func NewSampler(percent float64) Sampler {
	if percent <= 0 || percent >= 100 {
		return Sampler{all: true}
	}
	return Sampler{threshold: uint64(percent * 10_000)}
}

// In reports whether key is in the sample.
func (s Sampler) In(key string) bool {
	if s.all {
		return true
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return h%1_000_000 < s.threshold
}
