// Package layout builds the workload-separated target layout from a scan
// report and checks live targets against their workload's profile.
//
// Generate is pure: from a scan report and Options it returns every file of
// the layout as a value (server configs, cluster and sentinel setup, ACL
// files, SQS queue definitions, the targets section of redisplit.yaml, a
// compose file); Write puts them in a directory. Check runs the live checks
// of one connected target against its bucket's profile and returns
// verdicts; it never writes to a target. The profile of each bucket is
// defined once, here, and both generation and checks read it: a layout
// Generate wrote passes Check by construction.
package layout

// profile is what a bucket's store must be, per DESIGN.md §1.
type profile struct {
	// policy is the maxmemory-policy the layout sets.
	policy string
	// evicts: an evicting policy is the profile (cache); else noeviction is
	// required and any evicting policy fails the check.
	evicts bool
	// aof: AOF with fsync is required (session, queue); cache expects no
	// persistence; ratelimit leaves it optional.
	aof         persistence
	headroom    float64 // maxmemory over the bucket's bytes that scan advises
	description string
}

type persistence int

const (
	persistNone     persistence = iota // nothing on disk expected (cache)
	persistAOF                         // AOF appendfsync everysec or always required
	persistOptional                    // either is fine (ratelimit)
)

// Headroom factors: scan's sizing advice (docs/scan-report.md) applies the
// same ones; minFit is the factor below which a noeviction store is too small
// to hold its bucket at all (fragmentation alone takes 10-30%).
const (
	headroomCache   = 1.5
	headroomDurable = 2.0
	minFit          = 1.25
	// fullShare: a noeviction store using this share of its maxmemory is
	// about to refuse writes.
	fullShare = 0.9
)

var profiles = map[string]profile{
	"cache": {policy: "allkeys-lru", evicts: true, aof: persistNone, headroom: headroomCache,
		description: "losing a key costs a slower response: evicts, keeps nothing on disk"},
	"session": {policy: "noeviction", aof: persistAOF, headroom: headroomDurable,
		description: "losing a key logs a user out: never evicts, AOF everysec, a replica behind Sentinel"},
	"queue": {policy: "noeviction", aof: persistAOF, headroom: headroomDurable,
		description: "losing a key loses a job: never evicts, AOF everysec"},
	"ratelimit": {policy: "noeviction", aof: persistOptional, headroom: headroomDurable,
		description: "losing a key lifts a security limit: never evicts; counters rebuild within one window, so persistence is optional"},
}
