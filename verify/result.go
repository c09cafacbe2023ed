package verify

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/redisplit/redisplit/keyname"
)

// Category is the kind of a difference between legacy and a target.
type Category string

// The categories. Missing, Extra, Type, Value and TTL are persistent
// differences: they break parity. InFlux keys changed on legacy between
// re-check rounds, so no verdict is possible; Evicted keys are cache
// keys missing on a target whose evictions account for them; Foreign keys
// existed on the target before the migration and migrate refused to
// overwrite them (--allow-nonempty; the bucket's refusal list), so they
// are not expected to equal legacy's. NotWarmed keys are cache keys the
// cache's copy policy (migrate's targets.cache.copy hot or none) left on
// legacy on purpose. None of these four breaks parity; all are reported. LeftBehind is the category of a rolled-back bucket's
// check (RolledBackCheck): a target key holding exactly legacy's content,
// a copy rollback did not delete; it fails the check.
const (
	Missing    Category = "missing"
	Extra      Category = "extra"
	Type       Category = "type"
	Value      Category = "value"
	TTL        Category = "ttl"
	InFlux     Category = "in_flux"
	Evicted    Category = "evicted"
	Foreign    Category = "foreign"
	NotWarmed  Category = "not_warmed"
	LeftBehind Category = "left_behind"
)

// Categories lists every category in report order.
var Categories = []Category{Missing, Extra, Type, Value, TTL, InFlux, Evicted, Foreign, NotWarmed, LeftBehind}

// Persistent reports whether c fails its bucket's check.
func (c Category) Persistent() bool {
	return c != InFlux && c != Evicted && c != Foreign && c != NotWarmed
}

// Facts describe one side of a key at its last observation.
type Facts struct {
	Exists bool   `json:"exists"`
	Type   string `json:"type,omitempty"`
	// TTLms is the remaining time to live in milliseconds, -1 for none;
	// meaningless when Exists is false.
	TTLms int64 `json:"ttl_ms,omitempty"`
	// Bytes is the size of the value of a string, of the DUMP payload of
	// other types; Digest a CRC64 of the same bytes.
	Bytes  int    `json:"bytes,omitempty"`
	Digest string `json:"digest,omitempty"`
}

// Difference is one key that differs between legacy and its bucket's target
// after every round.
type Difference struct {
	Key      string   // raw key name (any bytes)
	Bucket   string   // bucket the plan routes the key to
	Category Category // what differs
	Legacy   Facts
	Target   Facts
	Detail   string // where the content diverges, for value and type differences
	Rounds   int    // number of rounds in which the key differed
}

// differenceJSON is the JSON form of a Difference.
type differenceJSON struct {
	keyname.JSON
	Bucket   string   `json:"bucket"`
	Category Category `json:"category"`
	Legacy   Facts    `json:"legacy"`
	Target   Facts    `json:"target"`
	Detail   string   `json:"detail,omitempty"`
	Rounds   int      `json:"rounds"`
}

// UnmarshalJSON reads what MarshalJSON writes (key or key_b64).
func (d *Difference) UnmarshalJSON(b []byte) error {
	var o differenceJSON
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	key, err := o.Name()
	if err != nil {
		return err
	}
	*d = Difference{Key: key, Bucket: o.Bucket, Category: o.Category, Legacy: o.Legacy, Target: o.Target, Detail: o.Detail, Rounds: o.Rounds}
	return nil
}

// MarshalJSON writes the key by the keyname rule ("key" or "key_b64").
func (d Difference) MarshalJSON() ([]byte, error) {
	return json.Marshal(differenceJSON{JSON: keyname.Of(d.Key), Bucket: d.Bucket, Category: d.Category, Legacy: d.Legacy, Target: d.Target, Detail: d.Detail, Rounds: d.Rounds})
}

// Counts are the per-bucket counts of a verify. Compared counts legacy keys
// compared with the target; the others count keys per category (for a
// rolled-back bucket, Foreign counts the keys kept on the target, which are
// not listed).
type Counts struct {
	Compared   int64 `json:"compared"`
	Missing    int64 `json:"missing"`
	Extra      int64 `json:"extra"`
	Type       int64 `json:"type"`
	Value      int64 `json:"value"`
	TTL        int64 `json:"ttl"`
	InFlux     int64 `json:"in_flux"`
	Evicted    int64 `json:"evicted"`
	Foreign    int64 `json:"foreign"`
	NotWarmed  int64 `json:"not_warmed"`
	LeftBehind int64 `json:"left_behind"`
}

// field returns the counter of category cat (nil for none).
func (c *Counts) field(cat Category) *int64 {
	switch cat {
	case Missing:
		return &c.Missing
	case Extra:
		return &c.Extra
	case Type:
		return &c.Type
	case Value:
		return &c.Value
	case TTL:
		return &c.TTL
	case InFlux:
		return &c.InFlux
	case Evicted:
		return &c.Evicted
	case Foreign:
		return &c.Foreign
	case NotWarmed:
		return &c.NotWarmed
	case LeftBehind:
		return &c.LeftBehind
	}
	return nil
}

func (c *Counts) add(cat Category, n int64) {
	if f := c.field(cat); f != nil {
		*f += n
	}
}

// Of returns the count of category cat.
func (c Counts) Of(cat Category) int64 {
	if f := c.field(cat); f != nil {
		return *f
	}
	return 0
}

// Persistent is the number of keys that fail the bucket's check.
func (c Counts) Persistent() int64 {
	var n int64
	for _, cat := range Categories {
		if cat.Persistent() {
			n += c.Of(cat)
		}
	}
	return n
}

// Confidence states what a sampled verify proves.
type Confidence struct {
	Percent float64 `json:"percent"`
	Sampled int64   `json:"sampled_keys"` // legacy keys compared
	// UpperRate is the upper bound, at 95% confidence, of the fraction of
	// the bucket's keys that differ, given what the sample found (rule of
	// three when nothing differed; Wilson score bound otherwise).
	UpperRate float64 `json:"upper_rate_95"`
	Statement string  `json:"statement"`
}

// confidence computes the 95% upper bound of the difference rate of a
// bucket from n sampled keys of which d differ.
func confidence(percent float64, n, d int64) *Confidence {
	c := &Confidence{Percent: percent, Sampled: n}
	switch {
	case n == 0:
		c.UpperRate = 1
		c.Statement = "no key was sampled: the sample proves nothing"
		return c
	case d == 0:
		c.UpperRate = math.Min(1, 3/float64(n))
	default:
		// Wilson score interval, one-sided 95% (z = 1.645).
		z := 1.645
		p := float64(d) / float64(n)
		nn := float64(n)
		c.UpperRate = math.Min(1, (p+z*z/(2*nn)+z*math.Sqrt(p*(1-p)/nn+z*z/(4*nn*nn)))/(1+z*z/nn))
	}
	c.Statement = fmt.Sprintf("sampled %.4g%% of keys (%d compared, %d differ): with 95%% confidence at most %.3g%% of this bucket's keys differ",
		percent, n, d, 100*c.UpperRate)
	return c
}

// Check is what verify proves for a bucket.
type Check string

// The checks. ParityCheck: legacy and the target hold the same keys.
// RolledBackCheck, for a bucket whose state is rolled-back: the target
// holds none of redisplit's copies (no key the plan routes to the bucket
// with exactly legacy's content), and the keys it kept are counted.
const (
	ParityCheck     Check = "parity"
	RolledBackCheck Check = "rolled_back"
)

// BucketResult is the verify result of one bucket.
type BucketResult struct {
	Bucket string `json:"bucket"`
	Target string `json:"target"`
	Check  Check  `json:"check"`
	Counts Counts `json:"counts"`
	// TargetKeys is the number of target keys the plan routes to this
	// bucket, scanned for extras (for a rolled-back bucket: checked).
	TargetKeys int64 `json:"target_keys_scanned"`
	// EvictedKeys is the target's evicted_keys counter (summed over
	// masters) and EvictionPolicy its maxmemory-policy.
	EvictedKeys    int64  `json:"target_evicted_keys"`
	EvictionPolicy string `json:"target_maxmemory_policy,omitempty"`
	// Parity is true when a parity check found no persistent difference
	// (false for a rolled-back check).
	Parity bool `json:"parity"`
	// Refusal, when set, is why the bucket is not marked verified although
	// it may be in parity: its target's maxmemory-policy evicts keys of a
	// bucket that must not lose any, and the migration did not accept it
	// (migrate --allow-evicting-target).
	Refusal string `json:"refusal,omitempty"`
	// OK is true when the bucket passed its check: in parity and not
	// refused, or, rolled back, with nothing left behind.
	OK bool `json:"ok"`
	// Statement says what a rolled-back check proved.
	Statement  string      `json:"statement,omitempty"`
	Notes      []string    `json:"notes,omitempty"`
	Confidence *Confidence `json:"sample,omitempty"`
}

// Result is the outcome of a verify.
type Result struct {
	// Parity is true when every bucket was checked for parity, is in
	// parity and is not refused (the targets may be marked verified).
	Parity bool `json:"parity"`
	// OK is true when every bucket passed its check (parity, or rollback's
	// promise for the rolled-back ones) and the cap was not hit.
	OK          bool           `json:"ok"`
	Buckets     []BucketResult `json:"buckets"`
	Differences []Difference   `json:"differences"`
	// CapHit is true when more keys differed in the first round than
	// MaxDiffs: the keys beyond the cap were counted but neither re-checked
	// nor listed (Unlisted of them), and parity and ok are false.
	CapHit   bool  `json:"cap_hit"`
	Unlisted int64 `json:"unlisted"`
	MaxDiffs int   `json:"max_diffs"`
	// LegacyKeys is the number of legacy keys scanned (sampled ones only);
	// Unrouted those that no rule routes to any bucket.
	LegacyKeys int64         `json:"legacy_keys_scanned"`
	Unrouted   int64         `json:"unrouted_keys"`
	Rounds     int           `json:"rounds"`
	Interval   time.Duration `json:"-"`
	IntervalMs int64         `json:"interval_ms"` // Interval, as used between rounds
	Sample     float64       `json:"sample_percent"`
	Started    time.Time     `json:"started"`
	Duration   time.Duration `json:"-"`
	Seconds    float64       `json:"seconds"`
	// Phases are the seconds from the start to the end of the legacy pass
	// (legacy → targets) and of the target pass (the targets' key digests),
	// which run at the same time, then the seconds of the resolution of
	// the partitions where the digests disagreed (extras); the rest is
	// re-check rounds.
	Phases struct {
		Legacy  float64 `json:"legacy_pass"`
		Target  float64 `json:"target_pass"`
		Resolve float64 `json:"resolve_pass"`
	} `json:"phase_seconds"`
	// ResolvedPartitions is the number of digest partitions (of 2^14 per
	// bucket) whose target keys were looked up on legacy one by one: 0
	// when every target holds exactly the keys the legacy pass found
	// there.
	ResolvedPartitions int `json:"resolved_partitions"`
}
