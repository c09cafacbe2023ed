package state

import "time"

// LiveStale is how old a running live phase's figures may be before they
// are taken for those of a migrate that no longer runs (it saves them
// about once a second; kill -9 leaves Running set).
const LiveStale = 5 * time.Second

// Fresh reports whether l is the figures of a migrate --dual-write that
// is running now: Running, and saved within LiveStale of now. It is the
// one rule status and verify read the live phase by.
func (l *Live) Fresh(now time.Time) bool {
	return l != nil && l.Running && now.Sub(l.UpdatedAt) <= LiveStale
}
