package loadgen

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-redis/cache/v9"
)

// Family is one key family of the load: a naming scheme, the Redis type its
// keys hold, the bucket the built-in presets (and bench's rules) route it
// to, and how the version of a key's state is read.
//
// Every key name starts with its family's Prefix, and no Prefix is a prefix
// of another family's keys: the watcher tells a key's family, and so how to
// decode it, from the name alone.
type Family struct {
	Name   string
	Prefix string
	Type   string // string, hash, list, set, zset, stream
	Bucket string // cache, session, queue, ratelimit
	// Expiring families' keys get a short TTL and are never written again.
	Expiring bool
	codec    codec
	// Example is a key name of the family (for routing checks and docs).
	Example string
}

// codec says how a key's version is encoded in its state; see version.go.
type codec int

const (
	codecSeqString codec = iota // string ending in "#<seq>"
	codecCounter                // string holding the integer itself
	codecGoCache                // go-redis/cache item whose Seq field is the version
	codecRate                   // redis_rate GCRA state: the TAT, a float in seconds
	codecHash                   // hash with field "seq"
	codecList                   // list of "job#<n>", newest at the head: head<<32 | tail
	codecSet                    // set of "m<n>": max<<32 | min
	codecZSet                   // sorted set whose highest score is the version
	codecStream                 // stream whose last entry has field "seq"
)

// Families of the load, in a fixed order (Families returns a copy).
//
// Names follow the frameworks rehearse's synthetic keyspace imitates, so that
// zero configuration routes them (keyv → cache, connect-redis sess: →
// session, Sidekiq queue:* lists and BullMQ bull: → queue, rl: and redis_rate
// rate: → ratelimit), and none collides with bench's keyspace
// (cache:api:..., sess:<12 hex>, rl:login:..., queue:jobs:..., user:*:tags,
// lb:...).
var families = []Family{
	{Name: "cache-string", Prefix: "keyv:lg:item:", Type: "string", Bucket: "cache", codec: codecSeqString, Example: "keyv:lg:item:17"},
	{Name: "cache-hot", Prefix: "keyv:lg:hot:", Type: "string", Bucket: "cache", codec: codecSeqString, Example: "keyv:lg:hot:0"},
	{Name: "cache-expiring", Prefix: "keyv:lg:tmp:", Type: "string", Bucket: "cache", Expiring: true, codec: codecSeqString, Example: "keyv:lg:tmp:1-42"},
	{Name: "cache-stage", Prefix: "keyv:lg:stage:", Type: "string", Bucket: "cache", codec: codecSeqString, Example: "keyv:lg:stage:1-42"},
	{Name: "cache-tags", Prefix: "keyv:lg:tags:", Type: "set", Bucket: "cache", codec: codecSet, Example: "keyv:lg:tags:17"},
	{Name: "cache-board", Prefix: "keyv:lg:board:", Type: "zset", Bucket: "cache", codec: codecZSet, Example: "keyv:lg:board:17"},
	{Name: "cache-go-redis-cache", Prefix: "keyv:lg:gocache:", Type: "string", Bucket: "cache", codec: codecGoCache, Example: "keyv:lg:gocache:17"},
	{Name: "session-hash", Prefix: "sess:lg-h-", Type: "hash", Bucket: "session", codec: codecHash, Example: "sess:lg-h-17"},
	{Name: "session-expiring", Prefix: "sess:lg-x-", Type: "hash", Bucket: "session", Expiring: true, codec: codecHash, Example: "sess:lg-x-1-42"},
	{Name: "session-renamed", Prefix: "sess:lg-r-", Type: "string", Bucket: "session", codec: codecSeqString, Example: "sess:lg-r-1-42"},
	{Name: "queue-list", Prefix: "queue:lg:", Type: "list", Bucket: "queue", codec: codecList, Example: "queue:lg:17"},
	{Name: "queue-stream", Prefix: "bull:lg:events:", Type: "stream", Bucket: "queue", codec: codecStream, Example: "bull:lg:events:17"},
	{Name: "ratelimit-counter", Prefix: "rl:lg:", Type: "string", Bucket: "ratelimit", Expiring: true, codec: codecCounter, Example: "rl:lg:17:1700000000"},
	{Name: "ratelimit-redis-rate", Prefix: "rate:lg:", Type: "string", Bucket: "ratelimit", codec: codecRate, Example: "rate:lg:17"},
}

// Families returns the key families of the load.
func Families() []Family { return append([]Family(nil), families...) }

// family indexes, for the generator.
const (
	fString = iota
	fHot
	fTmp
	fStage
	fTags
	fBoard
	fGoCache
	fSession
	fSessTmp
	fRenamed
	fQueue
	fStream
	fCounter
	fRate
)

// FamilyOf returns the family of key, or nil when key is not the load's.
func FamilyOf(key string) *Family {
	if len(key) < 3 {
		return nil
	}
	for i := range families {
		if strings.HasPrefix(key, families[i].Prefix) {
			return &families[i]
		}
	}
	return nil
}

// goCacheItem is the value the go-redis/cache writer stores; Seq is its
// version.
type goCacheItem struct {
	Seq  uint64
	Name string
	Bio  string
}

// goCacheCodec marshals like the writer's cache.Cache (msgpack, s2 above 64
// bytes); it has no Redis and no local cache: it only decodes.
var goCacheCodec = cache.New(&cache.Options{})

// seqString is the value of a seq-string write: filler then "#<seq>".
func seqString(fill string, seq uint64) string { return fill + "#" + strconv.FormatUint(seq, 10) }

// appendPiece is what APPEND adds: the value keeps ending in "#<seq>".
func appendPiece(seq uint64) string { return "#" + strconv.FormatUint(seq, 10) }

func jobItem(n uint64) string   { return "job#" + strconv.FormatUint(n, 10) }
func member(n uint64) string    { return "m" + strconv.FormatUint(n, 10) }
func pack(hi, lo uint64) uint64 { return hi<<32 | lo&0xffffffff }

// rateVersion turns redis_rate's TAT (seconds since 2017, as Lua formats a
// number) into microseconds: it grows by the emission interval on every
// allowed request, so it orders the key's writes.
func rateVersion(s string) (uint64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("redis_rate state %q", s)
	}
	return uint64(f * 1e6), nil
}

// lastSeq parses the number after the last '#'.
func lastSeq(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, '#')
	if i < 0 {
		return 0, fmt.Errorf("no #seq in %.40q", b)
	}
	return strconv.ParseUint(string(b[i+1:]), 10, 64)
}
