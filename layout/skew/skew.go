// Package skew forecasts how a keyspace will spread over the masters of a
// Redis Cluster before anything is copied: the slot of every key (CRC16 of
// the key or of its hash tag, as Redis computes it), keys and bytes per
// node, the hottest slots, and the patterns responsible for an imbalance
// (hash tags that pin a family of keys to one slot, big keys).
//
// It is pure computation with bounded memory whatever the keyspace size:
// 16384 slot counters, at most maxTags hash tags (the smallest are dropped
// when the table fills, so a tag's figures are "at least") and the
// topBigKeys biggest keys. It imports nothing of redisplit, so that scan
// (per key, while it scans) and targets init (from scan's --keys-out
// export) share it.
package skew

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Slots is the number of hash slots of a Redis Cluster.
const Slots = 16384

// HashTag returns the part of key that Redis hashes: the bytes between the
// first '{' and the first '}' after it, when that is not empty; else the
// whole key (ok false).
func HashTag(key string) (tag string, ok bool) {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key, false
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 { // no '}' or "{}": the whole key is hashed
		return key, false
	}
	return key[i+1 : i+1+j], true
}

// Slot returns the cluster slot of key: CRC16 (XMODEM) of its hash tag, or
// of the whole key, modulo 16384 — what CLUSTER KEYSLOT answers.
func Slot(key string) int {
	h, _ := HashTag(key)
	return int(crc16(h) & (Slots - 1))
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), the checksum
// Redis Cluster uses.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^s[i]]
	}
	return crc
}

var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for b := 0; b < 8; b++ {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// Range is a contiguous slot range [First, Last].
type Range struct{ First, Last int }

func (r Range) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// Ranges returns the slot range of each of n masters as `redis-cli
// --cluster create` assigns them (16384/n slots each, rounded the same way:
// 3 masters get 0-5460, 5461-10922, 10923-16383).
func Ranges(n int) []Range {
	if n < 1 {
		n = 1
	}
	per := float64(Slots) / float64(n)
	out := make([]Range, 0, n)
	first, cursor := 0, 0.0
	for i := 0; i < n; i++ {
		last := int(roundHalfAway(cursor + per - 1))
		if last > Slots || i == n-1 {
			last = Slots - 1
		}
		if last < first {
			last = first
		}
		out = append(out, Range{first, last})
		first = last + 1
		cursor += per
	}
	return out
}

// roundHalfAway rounds as C's lround does (redis-cli uses it).
func roundHalfAway(f float64) float64 {
	if f < 0 {
		return -roundHalfAway(-f)
	}
	return float64(int64(f + 0.5))
}

// Thresholds of the forecast's warnings.
const (
	// OverShare: a node holding more than OverShare times its fair share
	// (1/masters) of the bytes or keys is warned about.
	OverShare = 1.2
	// FamilyShare: a hash tag whose keys hold at least this share of the
	// bytes or keys is reported as pinning a family to one slot.
	FamilyShare = 0.005
	// BigKeyShare: a key holding at least this share of the bytes is a big
	// key worth naming.
	BigKeyShare = 0.01
	// KeyOverhead is what a cluster node spends on each key beyond what
	// MEMORY USAGE reports for it on a standalone server: Redis 7 links every
	// key into its slot's list (two pointers in the dict entry). The
	// forecast adds it, so that a node's bytes are what MEMORY USAGE sums to
	// on the cluster.
	KeyOverhead = 16
	maxTags     = 100000
	keepTags    = 10000
	topBigKeys  = 10
	topSlots    = 10
	topTags     = 10
)

// Forecaster accumulates keys; Forecast gives the result. Not safe for
// concurrent use: give each worker its own and Merge them.
type Forecaster struct {
	masters int
	ranges  []Range
	owner   [Slots]uint16 // node index of each slot
	keys    [Slots]int64
	mbytes  [Slots]int64 // measured bytes
	mkeys   [Slots]int64 // measured keys
	tags    map[string]*tagAgg
	dropped bool // the tag table was pruned: tag figures are lower bounds
	big     []Key
}

type tagAgg struct {
	keys, mkeys, mbytes int64
	sample              string // the family's smallest key name: the same whatever the order keys arrive in
}

// New returns a forecaster for a cluster of n masters whose slots are split
// as `redis-cli --cluster create` splits them (Ranges).
func New(n int) *Forecaster { return NewWithRanges(Ranges(n)) }

// NewWithRanges returns a forecaster for masters owning the given slot
// ranges (one per master, e.g. read from CLUSTER SLOTS of a live cluster).
func NewWithRanges(ranges []Range) *Forecaster {
	f := &Forecaster{masters: len(ranges), ranges: ranges, tags: map[string]*tagAgg{}}
	for i, r := range ranges {
		for s := max(r.First, 0); s <= r.Last && s < Slots; s++ {
			f.owner[s] = uint16(i)
		}
	}
	return f
}

// Add counts one key. bytes < 0 means not measured (sampling): the key gets
// the mean of the measured keys in the result.
func (f *Forecaster) Add(key string, bytes int64) {
	tag, tagged := HashTag(key)
	s := int(crc16(tag) & (Slots - 1))
	f.keys[s]++
	if bytes >= 0 {
		f.mbytes[s] += bytes
		f.mkeys[s]++
	}
	if tagged {
		t := f.tags[tag]
		if t == nil {
			if len(f.tags) >= maxTags {
				f.pruneTags()
			}
			t = &tagAgg{sample: key}
			f.tags[tag] = t
		}
		t.keys++
		if key < t.sample {
			t.sample = key
		}
		if bytes >= 0 {
			t.mkeys++
			t.mbytes += bytes
		}
	}
	if bytes >= 0 {
		bytes += KeyOverhead
	}
	if bytes > 0 && (len(f.big) < topBigKeys || bytes > f.big[len(f.big)-1].Bytes) {
		f.big = append(f.big, Key{Key: key, Bytes: bytes, Slot: s})
		sort.SliceStable(f.big, func(i, j int) bool { return f.big[i].Bytes > f.big[j].Bytes })
		if len(f.big) > topBigKeys {
			f.big = f.big[:topBigKeys]
		}
	}
}

// Merge adds what o counted into f (both for the same slot ranges): workers
// that scan in parallel each fill their own Forecaster and merge at the end.
func (f *Forecaster) Merge(o *Forecaster) {
	for s := 0; s < Slots; s++ {
		f.keys[s] += o.keys[s]
		f.mbytes[s] += o.mbytes[s]
		f.mkeys[s] += o.mkeys[s]
	}
	for tag, a := range o.tags {
		t := f.tags[tag]
		if t == nil {
			if len(f.tags) >= maxTags {
				f.pruneTags()
			}
			t = &tagAgg{sample: a.sample}
			f.tags[tag] = t
		}
		t.keys += a.keys
		if a.sample < t.sample {
			t.sample = a.sample
		}
		t.mkeys += a.mkeys
		t.mbytes += a.mbytes
	}
	f.dropped = f.dropped || o.dropped
	f.big = append(f.big, o.big...)
	sort.SliceStable(f.big, func(i, j int) bool { return f.big[i].Bytes > f.big[j].Bytes })
	if len(f.big) > topBigKeys {
		f.big = f.big[:topBigKeys]
	}
}

// pruneTags keeps the keepTags tags with the most keys: a family big enough
// to matter keeps accumulating and is never pruned in practice; small ones
// may be dropped and counted again from zero.
func (f *Forecaster) pruneTags() {
	type kv struct {
		tag string
		n   int64
	}
	all := make([]kv, 0, len(f.tags))
	for t, a := range f.tags {
		all = append(all, kv{t, a.keys})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n })
	for _, x := range all[keepTags:] {
		delete(f.tags, x.tag)
	}
	f.dropped = true
}

// Forecast is the predicted distribution of a keyspace over a cluster.
type Forecast struct {
	Masters int   `json:"masters"`
	Keys    int64 `json:"keys"`
	Bytes   int64 `json:"bytes"`
	// BytesEstimated is true when some keys had no measured bytes (scan
	// --sample): they count as the mean measured key.
	BytesEstimated bool      `json:"bytes_estimated"`
	Nodes          []Node    `json:"nodes"`
	HotSlots       []HotSlot `json:"hot_slots"`
	HashTags       []Tag     `json:"hash_tags"`
	BigKeys        []Key     `json:"big_keys"`
	// TagsLowerBound: the tag table was pruned; tag figures are at least
	// those given.
	TagsLowerBound bool `json:"tags_lower_bound,omitempty"`
	// Warnings: first one line per Overloaded node, in that order, then one
	// per hash-tagged family of HashTags.
	Warnings []string `json:"warnings"`
}

// Node is one master's predicted share.
type Node struct {
	Node      int     `json:"node"` // 1-based, in slot order
	Slots     string  `json:"slots"`
	Keys      int64   `json:"keys"`
	Bytes     int64   `json:"bytes"`
	KeyShare  float64 `json:"key_share"`
	ByteShare float64 `json:"byte_share"`
}

// HotSlot is one of the slots holding the most bytes.
type HotSlot struct {
	Slot  int     `json:"slot"`
	Node  int     `json:"node"`
	Keys  int64   `json:"keys"`
	Bytes int64   `json:"bytes"`
	XMean float64 `json:"x_mean"` // bytes as a multiple of the mean slot
	// Cause names what fills the slot, when known: a hash tag or a big key.
	Cause string `json:"cause,omitempty"`
}

// Tag is a hash-tagged family: every key carrying {Tag} lands on one slot.
// Names (Tag, Sample, Key) are given as text when valid UTF-8, else in
// standard base64 in the *B64 field, as in scan's key export.
type Tag struct {
	Tag       string  `json:"tag,omitempty"`
	TagB64    string  `json:"tag_b64,omitempty"`
	Sample    string  `json:"sample,omitempty"`
	SampleB64 string  `json:"sample_b64,omitempty"`
	Slot      int     `json:"slot"`
	Node      int     `json:"node"`
	Keys      int64   `json:"keys"`
	Bytes     int64   `json:"bytes"`
	KeyShare  float64 `json:"key_share"`
	ByteShare float64 `json:"byte_share"`
}

// Key is one big key.
type Key struct {
	Key    string  `json:"key,omitempty"`
	KeyB64 string  `json:"key_b64,omitempty"`
	Bytes  int64   `json:"bytes"`
	Slot   int     `json:"slot"`
	Node   int     `json:"node"`
	Share  float64 `json:"share"`
}

// Forecast computes the result so far.
func (f *Forecaster) Forecast() Forecast {
	var keys, mkeys, mbytes int64
	for s := 0; s < Slots; s++ {
		keys += f.keys[s]
		mkeys += f.mkeys[s]
		mbytes += f.mbytes[s]
	}
	mean := 0.0
	if mkeys > 0 {
		mean = float64(mbytes) / float64(mkeys)
	}
	slotBytes := func(s int) int64 {
		return f.mbytes[s] + int64(float64(f.keys[s]-f.mkeys[s])*mean+0.5) + KeyOverhead*f.keys[s]
	}
	out := Forecast{Masters: f.masters, Keys: keys, BytesEstimated: mkeys < keys, TagsLowerBound: f.dropped,
		Nodes: []Node{}, HotSlots: []HotSlot{}, HashTags: []Tag{}, BigKeys: []Key{}, Warnings: []string{}}
	out.Nodes = make([]Node, f.masters)
	for i, r := range f.ranges {
		out.Nodes[i] = Node{Node: i + 1, Slots: r.String()}
	}
	slots := make([]HotSlot, 0, Slots)
	for s := 0; s < Slots; s++ {
		n := &out.Nodes[f.owner[s]]
		b := slotBytes(s)
		n.Keys += f.keys[s]
		n.Bytes += b
		out.Bytes += b
		if f.keys[s] > 0 {
			slots = append(slots, HotSlot{Slot: s, Node: int(f.owner[s]) + 1, Keys: f.keys[s], Bytes: b})
		}
	}
	share := func(a, b int64) float64 {
		if b <= 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	for i := range out.Nodes {
		out.Nodes[i].KeyShare = share(out.Nodes[i].Keys, keys)
		out.Nodes[i].ByteShare = share(out.Nodes[i].Bytes, out.Bytes)
	}

	// Families and big keys first: they explain the hot slots.
	var tags []Tag
	for t, a := range f.tags {
		if a.keys < 2 {
			continue
		}
		s := int(crc16(t) & (Slots - 1))
		b := a.mbytes + int64(float64(a.keys-a.mkeys)*mean+0.5) + KeyOverhead*a.keys
		tg := Tag{Tag: t, Slot: s, Node: int(f.owner[s]) + 1, Keys: a.keys, Bytes: b,
			KeyShare: share(a.keys, keys), ByteShare: share(b, out.Bytes)}
		tg.Sample, tg.SampleB64 = name(a.sample)
		tg.Tag, tg.TagB64 = name(t)
		if tg.KeyShare >= FamilyShare || tg.ByteShare >= FamilyShare {
			tags = append(tags, tg)
		}
	}
	sort.Slice(tags, func(i, j int) bool {
		if tags[i].Bytes != tags[j].Bytes {
			return tags[i].Bytes > tags[j].Bytes
		}
		if tags[i].Keys != tags[j].Keys {
			return tags[i].Keys > tags[j].Keys
		}
		return tags[i].Tag < tags[j].Tag
	})
	if len(tags) > topTags {
		tags = tags[:topTags]
	}
	out.HashTags = append(out.HashTags, tags...)
	for _, k := range f.big {
		k.Node = int(f.owner[k.Slot]) + 1
		k.Key, k.KeyB64 = name(k.Key)
		k.Share = share(k.Bytes, out.Bytes)
		if k.Share >= BigKeyShare {
			out.BigKeys = append(out.BigKeys, k)
		}
	}

	sort.Slice(slots, func(i, j int) bool {
		if slots[i].Bytes != slots[j].Bytes {
			return slots[i].Bytes > slots[j].Bytes
		}
		return slots[i].Slot < slots[j].Slot
	})
	if len(slots) > topSlots {
		slots = slots[:topSlots]
	}
	meanSlot := float64(out.Bytes) / Slots
	for _, s := range slots {
		if meanSlot > 0 {
			s.XMean = float64(s.Bytes) / meanSlot
		}
		s.Cause = out.cause(s.Slot)
		out.HotSlots = append(out.HotSlots, s)
	}

	fair := 1 / float64(max(f.masters, 1))
	for _, n := range out.Overloaded() {
		what, got := "bytes", n.ByteShare
		if n.KeyShare > n.ByteShare {
			what, got = "keys", n.KeyShare
		}
		w := fmt.Sprintf("node %d (slots %s) would hold %.0f%% of the cache %s, %.1fx its share of %.0f%%",
			n.Node, n.Slots, 100*got, what, got/fair, 100*fair)
		if c := out.causesOn(n.Node); c != "" {
			w += ": " + c
		}
		out.Warnings = append(out.Warnings, w)
	}
	for _, t := range out.HashTags {
		out.Warnings = append(out.Warnings, fmt.Sprintf("hash tag {%s} pins %d keys (%.1f%% of the keys, %.1f%% of the bytes) to slot %d on node %d, e.g. %s",
			Text(t.Tag, t.TagB64), t.Keys, 100*t.KeyShare, 100*t.ByteShare, t.Slot, t.Node, strconv.Quote(Text(t.Sample, t.SampleB64))))
	}
	return out
}

// Overloaded returns the nodes that would hold more than OverShare times
// their fair share (1/masters) of the keys or of the bytes, in node order:
// the nodes the forecast warns about. None for fewer than 2 masters or no
// keys.
func (o *Forecast) Overloaded() []Node {
	var out []Node
	if o.Masters < 2 || o.Keys == 0 {
		return out
	}
	fair := 1 / float64(o.Masters)
	for _, n := range o.Nodes {
		if max(n.KeyShare, n.ByteShare) > fair*OverShare {
			out = append(out, n)
		}
	}
	return out
}

// name returns s as text when it is valid UTF-8, else as base64.
func name(s string) (text, b64 string) {
	if utf8.ValidString(s) {
		return s, ""
	}
	return "", base64.StdEncoding.EncodeToString([]byte(s))
}

// Text returns a name for humans: quoted when not plainly printable.
func Text(text, b64 string) string {
	if b64 != "" {
		raw, _ := base64.StdEncoding.DecodeString(b64)
		return strconv.Quote(string(raw))
	}
	for _, r := range text {
		if !unicode.IsPrint(r) || r == '"' {
			return strconv.Quote(text)
		}
	}
	return text
}

// cause names the tag or big key that fills slot s, if one is known.
func (o *Forecast) cause(s int) string {
	for _, t := range o.HashTags {
		if t.Slot == s {
			return fmt.Sprintf("hash tag {%s} (%d keys)", Text(t.Tag, t.TagB64), t.Keys)
		}
	}
	for _, k := range o.BigKeys {
		if k.Slot == s {
			return "big key " + strconv.Quote(Text(k.Key, k.KeyB64))
		}
	}
	return ""
}

// causesOn lists the families and big keys on node n.
func (o *Forecast) causesOn(n int) string {
	var c []string
	for _, t := range o.HashTags {
		if t.Node == n {
			c = append(c, fmt.Sprintf("hash tag {%s} pins %d keys (%.1f%% of the bytes) to slot %d", Text(t.Tag, t.TagB64), t.Keys, 100*t.ByteShare, t.Slot))
		}
	}
	for _, k := range o.BigKeys {
		if k.Node == n {
			c = append(c, fmt.Sprintf("big key %s (%.1f%% of the bytes, slot %d)", strconv.Quote(Text(k.Key, k.KeyB64)), 100*k.Share, k.Slot))
		}
	}
	return strings.Join(c, "; ")
}
