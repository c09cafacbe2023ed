package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// QueueBase is the merge base of one queue list in the switch window
// (dualwrite.QueueLists): the length and digest of the elements legacy
// and the target last agreed on, and the end producers push at. It is
// kept in journal/BUCKET.qbases.json (replaced atomically, fsync'd) so that
// a migrate killed during the window reopens it with the base instead of
// overwriting legacy's unforwarded pushes.
//
// Ordering contract (the writer's): a base is saved before legacy is
// rewritten to it, with Prev naming the base legacy held until then (the
// rewrite may or may not have happened when the process dies), and after
// the rewrite without Prev; Inflight is saved before a forward to the
// target (the number of elements that may be forwarded twice if the
// process dies before the base after the forward is saved).
type QueueBase struct {
	N        int        `json:"n"`
	Sum      [32]byte   `json:"sum"`
	LPush    *bool      `json:"lpush,omitempty"`
	Prev     *QueueBase `json:"prev,omitempty"`
	Inflight int        `json:"inflight,omitempty"`
}

// QueueBasesPath returns the path of bucket's queue-list merge bases.
func (d *Dir) QueueBasesPath(bucket string) string {
	return filepath.Join(d.path, "journal", bucket+".qbases.json")
}

// LoadQueueBases returns bucket's saved merge bases (nil when none).
func (d *Dir) LoadQueueBases(bucket string) (map[string]QueueBase, error) {
	b, err := os.ReadFile(d.QueueBasesPath(bucket))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var m map[string]QueueBase
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("state: queue bases %s: %w", d.QueueBasesPath(bucket), err)
	}
	return m, nil
}

// SaveQueueBases replaces bucket's merge bases (durably: temp file, fsync,
// rename, directory fsync).
func (d *Dir) SaveQueueBases(bucket string, m map[string]QueueBase) error {
	if d.readOnly {
		return ErrReadOnly
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(d.QueueBasesPath(bucket)), 0o700); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return writeAtomic(d.QueueBasesPath(bucket), b)
}

// RemoveQueueBases removes bucket's merge bases (a window that opens
// fresh starts without them).
func (d *Dir) RemoveQueueBases(bucket string) error {
	if d.readOnly {
		return ErrReadOnly
	}
	if err := os.Remove(d.QueueBasesPath(bucket)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}
