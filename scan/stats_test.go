package scan

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/redisplit/redisplit/classify"
)

func TestTTLBand(t *testing.T) {
	tests := []struct {
		pttl int64
		band string
	}{
		{-1, "no expiry"}, {0, "<1h"}, {hour - 1, "<1h"}, {hour, "1-4h"}, {4 * hour, "4-12h"},
		{day - 1, "12-24h"}, {day, "1-7d"}, {7 * day, "7d-1mo"}, {30 * day, ">1mo"},
	}
	for _, tt := range tests {
		if got := TTLBands[ttlBand(tt.pttl)]; got != tt.band {
			t.Errorf("ttlBand(%d) = %s, want %s", tt.pttl, got, tt.band)
		}
	}
}

// TestAggregatorBounded: beyond the cap, patterns fold into one "other"
// entry per bucket, every key is still counted, and merging keeps the cap.
func TestAggregatorBounded(t *testing.T) {
	var n normaliser
	a, b := newAggregator(10), newAggregator(10)
	for i := 0; i < 1000; i++ {
		k := &KeyInfo{Key: fmt.Sprintf("p%c%c:%d", 'a'+i%26, 'a'+i/26%26, i), Type: "string", PTTL: -1, Bytes: 10}
		n.normalize(k.Key)
		agg := a
		if i%2 == 1 {
			agg = b
		}
		agg.add(k, classify.Unknown, "", &n)
	}
	a.merge(b)
	if a.nPatterns != 10 {
		t.Fatalf("tracked %d patterns, cap 10", a.nPatterns)
	}
	var inPatterns int64
	a.each(func(p *patternAgg) {
		inPatterns += p.Stats.Keys
		if len(p.Samples) > maxSamples {
			t.Fatalf("%d samples", len(p.Samples))
		}
	})
	other := a.other[classify.Unknown].Stats.Keys
	if inPatterns+other != 1000 || a.buckets[classify.Unknown].Keys != 1000 || a.folded != other {
		t.Fatalf("patterns %d + other %d (folded %d), bucket %d: want 1000", inPatterns, other, a.folded, a.buckets[classify.Unknown].Keys)
	}
}

func TestEstimatedBytes(t *testing.T) {
	s := &Stats{}
	for i := 0; i < 1000; i++ {
		b := int64(-1)
		if i%10 == 0 {
			b = int64(100 + i%7)
		}
		s.add(&KeyInfo{Type: "string", PTTL: -1, Bytes: b})
	}
	if s.Measured != 100 {
		t.Fatalf("measured %d", s.Measured)
	}
	est := s.EstimatedBytes()
	if est < 100000 || est > 107000 {
		t.Fatalf("estimate %d, want about 100k-107k", est)
	}
	if m := s.Margin95(); m <= 0 || m > est/10 {
		t.Fatalf("margin %d for estimate %d", m, est)
	}
	exact := keys(10, "string", -1, "raw")
	if exact.EstimatedBytes() != 1000 || exact.Margin95() != 0 {
		t.Fatalf("exact: %d ± %d", exact.EstimatedBytes(), exact.Margin95())
	}
}

func TestKeyLineJSON(t *testing.T) {
	tests := []KeyInfo{
		{Key: "plain:key", Type: "string", PTTL: -1, Bytes: 56},
		{Key: "quote\"back\\slash\nnl\x01ctl", Type: "hash", PTTL: 1500, Bytes: -1},
		{Key: "bin\xff\x00name", Type: "list", PTTL: 10, Bytes: 3},
		{Key: "ünïcödé:🔑", Type: "set", PTTL: -1, Bytes: 0},
	}
	for _, k := range tests {
		line := appendKeyLine(nil, &k, classify.Queue, `preset x (y): glob "a*"`)
		var kl KeyLine
		if err := json.Unmarshal(line, &kl); err != nil {
			t.Fatalf("%q: %v: %s", k.Key, err, line)
		}
		name := kl.Key
		if kl.KeyB64 != "" {
			raw, _ := base64Decode(kl.KeyB64)
			name = raw
		}
		if name != k.Key || kl.Type != k.Type || kl.TTLMs != k.PTTL || kl.Bucket != "queue" {
			t.Fatalf("round trip of %q: %+v", k.Key, kl)
		}
		if (kl.Bytes == nil) != (k.Bytes < 0) || kl.Bytes != nil && *kl.Bytes != k.Bytes {
			t.Fatalf("bytes of %q: %v", k.Key, kl.Bytes)
		}
	}
}

func base64Decode(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	return string(b), err
}

// TestStratified: two patterns of very different sizes, each sampled at 10%:
// the stratified estimate is within its margin of the truth; a pattern with
// no measured key borrows the bucket's mean; all measured is exact.
func TestStratified(t *testing.T) {
	small, big, none := &Stats{}, &Stats{}, &Stats{}
	var truth int64
	for i := 0; i < 5000; i++ {
		sb, bb := int64(50+i%10), int64(5000+i%1000)
		truth += sb + bb
		ms, mb := int64(-1), int64(-1)
		if i%10 == 0 {
			ms, mb = sb, bb
		}
		small.add(&KeyInfo{Type: "string", PTTL: -1, Bytes: ms})
		big.add(&KeyInfo{Type: "hash", PTTL: -1, Bytes: mb})
	}
	all := &Stats{}
	all.merge(small)
	all.merge(big)
	est, margin := stratified([]*Stats{small, big}, all)
	if d := est - truth; margin <= 0 || d > margin || -d > margin {
		t.Fatalf("estimate %d ± %d, truth %d", est, margin, truth)
	}
	if margin > all.Margin95() {
		t.Errorf("stratified margin %d wider than unstratified %d", margin, all.Margin95())
	}
	none.add(&KeyInfo{Type: "string", PTTL: -1, Bytes: -1})
	all.merge(none)
	if est2, _ := stratified([]*Stats{small, big, none}, all); est2 <= est {
		t.Errorf("unmeasured pattern added nothing: %d vs %d", est2, est)
	}
	exact := keys(10, "string", -1, "raw")
	if b, m := stratified([]*Stats{exact}, exact); b != 1000 || m != 0 {
		t.Errorf("exact: %d ± %d", b, m)
	}
	unmeasured := &Stats{}
	unmeasured.add(&KeyInfo{Type: "string", PTTL: -1, Bytes: -1})
	if b, _ := stratified([]*Stats{unmeasured}, unmeasured); b != -1 {
		t.Errorf("nothing measured: %d, want -1", b)
	}
}
