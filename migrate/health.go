package migrate

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/redisplit/redisplit/store"
)

// health follows the transient failures of one server (a bucket's target,
// or legacy) so that a degraded server is reported while it is retried:
// an episode starts with the first retried error and ends with a success
// at least healthyAfter after its last error (workers whose keys live on
// other nodes of a cluster may succeed in between: that is not recovery).
type health struct {
	since    atomic.Int64 // unix ns of the episode's first error; 0 = healthy
	lastFail atomic.Int64 // unix ns of the latest error
	retries  atomic.Int64 // retries in this run

	mu   sync.Mutex
	last string
}

// wrap returns r reporting its retries to h.
func (h *health) wrap(r store.Retry) store.Retry {
	r.OnRetry = h.note
	return r
}

// healthyAfter is longer than the longest back-off wait (store.Retry.Max,
// 2 s by default), so a server still being retried is never called healthy.
const healthyAfter = 5 * time.Second

func (h *health) note(err error) {
	now := time.Now().UnixNano()
	h.lastFail.Store(now)
	h.since.CompareAndSwap(0, now)
	h.retries.Add(1)
	h.mu.Lock()
	h.last = err.Error()
	h.mu.Unlock()
}

// ok records a success: it ends the current episode once no error has been
// seen for healthyAfter.
func (h *health) ok() {
	if h.since.Load() != 0 && time.Since(time.Unix(0, h.lastFail.Load())) >= healthyAfter {
		h.since.Store(0)
	}
}

func (h *health) lastError() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// retrying reports the current episode.
func (h *health) retrying() (Retrying, bool) {
	since := h.since.Load()
	if since == 0 {
		return Retrying{}, false
	}
	return Retrying{Since: time.Unix(0, since), Last: time.Unix(0, h.lastFail.Load()),
		Retries: h.retries.Load(), LastError: h.lastError()}, true
}
