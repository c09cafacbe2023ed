package scan

import (
	"testing"

	"github.com/redisplit/redisplit/classify"
)

// TestFamilyProposals: a family routed to one durable bucket takes its open
// patterns along, over weaker evidence for another durable bucket, never
// over cache evidence and never into cache.
func TestFamilyProposals(t *testing.T) {
	props := map[string]*Proposal{
		"rq:job:{uuid}":             {Bucket: classify.Queue, Confidence: 0.99, Accepted: true},
		"rq:queue:default":          {Bucket: classify.Queue, Confidence: 0.7, Accepted: true},
		"rq:clean_registries:{var}": {Bucket: classify.RateLimit, Confidence: 0.5, Reason: "below", Fix: "x"},
		"rq:results:{uuid}":         {Bucket: classify.Unknown, Reason: "none", Fix: "x"},
		"rq:cached:{n}":             {Bucket: classify.Unknown, Reason: "weak", Fix: "x", cacheEv: true},
		"views:{n}":                 {Bucket: classify.Cache, Confidence: 0.8, Accepted: true},
		"views:fragment:{n}":        {Bucket: classify.Cache, Confidence: 0.8, Accepted: true},
		"views:{hex}":               {Bucket: classify.Unknown, Reason: "none", Fix: "x"},
		"mixed:a":                   {Bucket: classify.Queue, Confidence: 0.9, Accepted: true},
		"mixed:b":                   {Bucket: classify.Session, Confidence: 0.9, Accepted: true},
		"mixed:{n}":                 {Bucket: classify.Unknown, Reason: "none", Fix: "x"},
	}
	routed := map[string]classify.Bucket{}
	for text := range props {
		routed[text] = classify.Unknown
	}
	familyProposals(props, routed)
	for text, want := range map[string]classify.Bucket{
		"rq:clean_registries:{var}": classify.Queue,
		"rq:results:{uuid}":         classify.Queue,
		"rq:cached:{n}":             classify.Unknown,
		"views:{hex}":               classify.Unknown,
		"mixed:{n}":                 classify.Unknown,
	} {
		p := props[text]
		if p.Bucket != want {
			t.Errorf("%s: %s, want %s (%q)", text, p.Bucket, want, p.Evidence)
		}
		if want != classify.Unknown && (!p.Accepted || p.Reason != "" || p.DecidedBy == "") {
			t.Errorf("%s: accepted=%v reason=%q decided=%q", text, p.Accepted, p.Reason, p.DecidedBy)
		}
	}
}
