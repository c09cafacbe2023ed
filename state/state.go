// Package state is redisplit's migration state directory (DESIGN.md §5): the
// plan hash, the phase and counters of every bucket, the SCAN checkpoint,
// the last verify result, and a write-ahead journal per bucket of every key
// redisplit wrote to that bucket's target.
//
// Layout of the directory (mode 0700; every file 0600):
//
//	state.json           State, replaced atomically (temp file + fsync + rename)
//	.lock                flock(2) taken by Update, so processes never lose updates
//	journal/BUCKET.wal   the journal: length-prefixed key names, append-only
//	journal/BUCKET.refused  keys redisplit refused to overwrite (same format)
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/redisplit/redisplit/safety"
)

// Phase is the workflow phase of a bucket:
// planned → copying → syncing → verified → cutover → completed, with
// rolled-back reachable from every phase before completed, and failed when a
// run stopped the bucket on an error it could not get past.
type Phase string

// The phases.
const (
	Planned    Phase = "planned"
	Copying    Phase = "copying"
	Syncing    Phase = "syncing"
	Verified   Phase = "verified"
	Cutover    Phase = "cutover"
	Completed  Phase = "completed"
	RolledBack Phase = "rolled-back"
	Failed     Phase = "failed"
)

// State is the whole persisted state.
type State struct {
	PlanHash   string             `json:"plan_hash"`
	Buckets    map[string]*Bucket `json:"buckets"`
	LastVerify *VerifyRecord      `json:"last_verify,omitempty"`
	UpdatedAt  time.Time          `json:"updated_at"`
}

// Bucket is the state of one bucket.
type Bucket struct {
	Phase        Phase     `json:"phase"`
	Target       string    `json:"target"` // store.Redis.Describe()
	KeysCopied   int64     `json:"keys_copied"`
	BytesCopied  int64     `json:"bytes_copied"`
	KeysSkipped  int64     `json:"keys_skipped"` // absent/expired at read time
	Errors       int64     `json:"errors"`
	LastError    string    `json:"last_error,omitempty"`
	CheckpointAt time.Time `json:"checkpoint_at"`

	// KeysRefused counts keys that already existed on the target, that
	// redisplit did not write, and that it therefore left alone
	// (--allow-nonempty); they are listed in journal/BUCKET.refused.
	KeysRefused int64 `json:"keys_refused,omitempty"`
	// Cursor is the legacy SCAN cursor up to which every key of this bucket
	// has been acknowledged by the target; 0 with Copied false means "from
	// the start".
	Cursor uint64 `json:"cursor"`
	// Copied is true once a full SCAN pass has been copied (the backfill is
	// complete); the phase stays copying until dual-write takes over.
	Copied   bool      `json:"copied"`
	CopiedAt time.Time `json:"copied_at,omitzero"`
	// JournalResume is the journal offset from which entries may belong to
	// keys after Cursor (written, or about to be, when the checkpoint was
	// saved); a resumed run treats those keys as its own.
	JournalResume int64 `json:"journal_resume"`
	// StartedAt is when the first copy of this bucket started.
	StartedAt time.Time `json:"started_at,omitzero"`

	// AllowEvicting: migrate --allow-evicting-target accepted an evicting target for this bucket.
	AllowEvicting bool `json:"allow_evicting,omitempty"`
}

// VerifyRecord is the result of the last verify.
type VerifyRecord struct {
	At      time.Time               `json:"at"`
	Parity  bool                    `json:"parity"`
	Buckets map[string]VerifyCounts `json:"buckets"`
}

// VerifyCounts are the per-bucket counts of a verify.
type VerifyCounts struct {
	Compared int64 `json:"compared"`
	Missing  int64 `json:"missing"`
	Extra    int64 `json:"extra"`
	Type     int64 `json:"type"`
	Value    int64 `json:"value"`
	TTL      int64 `json:"ttl"`
	InFlux   int64 `json:"in_flux"`
	Evicted  int64 `json:"evicted"`
	Foreign  int64 `json:"foreign"` // keys migrate refused to overwrite (--allow-nonempty); not a parity failure
	// RolledBack: the bucket was rolled back and verify checked rollback's
	// promise instead of parity; LeftBehind counts the target keys holding
	// exactly legacy's content (redisplit's copies, not deleted).
	RolledBack bool  `json:"rolled_back,omitempty"`
	LeftBehind int64 `json:"left_behind,omitempty"`
}

// Dir is an open state directory. Its methods are safe for concurrent use
// by goroutines and processes (Update serialises through flock).
type Dir struct {
	path     string
	readOnly bool
}

// Open opens (creating, mode 0700) the state directory; files are written
// 0600, atomically (temp + rename).
func Open(dir string) (*Dir, error) {
	if dir == "" {
		return nil, errors.New("state: empty state directory path")
	}
	if err := os.MkdirAll(filepath.Join(dir, "journal"), 0o700); err != nil {
		return nil, fmt.Errorf("state: cannot create %s: %w", dir, err)
	}
	_ = os.Chmod(dir, 0o700)
	return &Dir{path: dir}, nil
}

// OpenReadOnly opens the state directory for commands that write nothing
// (status, migrate --dry-run, rollback --dry-run): it creates nothing, a
// directory that does not exist reads as an empty state, and every method
// that would write (Update, ResetBucket, OpenJournal, OpenRefused) fails
// with ErrReadOnly.
func OpenReadOnly(dir string) (*Dir, error) {
	if dir == "" {
		return nil, errors.New("state: empty state directory path")
	}
	return &Dir{path: dir, readOnly: true}, nil
}

// ErrReadOnly is returned by the writing methods of a Dir opened with
// OpenReadOnly.
var ErrReadOnly = errors.New("state: the state directory was opened read-only")

// CheckPlan refuses (a *safety.Refusal, exit 4) when the migration recorded
// in s was started with another plan and a bucket still holds what
// redisplit wrote (any phase but planned or rolled-back): routing must stay
// fixed from the first write until every bucket is rolled back. It is the
// one plan check of migrate, verify and rollback.
func (s *State) CheckPlan(planHash string) error {
	if s.PlanHash == "" || s.PlanHash == planHash {
		return nil
	}
	for _, b := range slices.Sorted(maps.Keys(s.Buckets)) {
		if p := s.Buckets[b].Phase; p != Planned && p != RolledBack && p != "" {
			return safety.Refusef("run with the plan the migration started with (--plan, or the same config rules); another plan can be used once every bucket is rolled back",
				"the plan changed since the migration started (state has plan %.12s, this run %.12s) and bucket %s is %s",
				s.PlanHash, planHash, b, p)
		}
	}
	return nil
}

// Path returns the directory's path.
func (d *Dir) Path() string { return d.path }

func (d *Dir) stateFile() string { return filepath.Join(d.path, "state.json") }

// JournalPath returns the path of bucket's journal file.
func (d *Dir) JournalPath(bucket string) string {
	return filepath.Join(d.path, "journal", bucket+".wal")
}

// RefusedPath returns the path of the file listing the keys redisplit
// refused to overwrite on bucket's target.
func (d *Dir) RefusedPath(bucket string) string {
	return filepath.Join(d.path, "journal", bucket+".refused")
}

// Load reads the state; it returns a non-nil empty State (Buckets non-nil)
// when nothing was saved yet.
func (d *Dir) Load() (*State, error) {
	b, err := os.ReadFile(d.stateFile())
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Buckets: map[string]*Bucket{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("state: %s is corrupt: %w", d.stateFile(), err)
	}
	if s.Buckets == nil {
		s.Buckets = map[string]*Bucket{}
	}
	return &s, nil
}

// Update loads the state, calls fn and saves the result, holding an
// exclusive flock on the directory for the whole sequence so that
// concurrent processes never lose each other's updates. When fn returns an
// error nothing is saved. The save is atomic: readers see the old or the new
// state, never a mix, even after a crash.
func (d *Dir) Update(fn func(*State) error) error {
	if d.readOnly {
		return ErrReadOnly
	}
	lf, err := os.OpenFile(filepath.Join(d.path, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("state: lock %s: %w", d.path, err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN) //nolint:errcheck
	s, err := d.Load()
	if err != nil {
		return err
	}
	if err := fn(s); err != nil {
		return err
	}
	s.UpdatedAt = time.Now().UTC()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return writeAtomic(d.stateFile(), append(b, '\n'))
}

// writeAtomic writes data to path through a synced temp file and a rename,
// then syncs the directory so the rename survives a crash.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if df, err := os.Open(filepath.Dir(path)); err == nil {
		_ = df.Sync()
		df.Close()
	}
	return nil
}

// ResetBucket removes the bucket's journal, its refusal list and its
// checkpoint (cursor, copied flag, counters), after a rollback: a later
// migrate starts the bucket clean. The phase is left as the caller set it.
func (d *Dir) ResetBucket(bucket string) error {
	if d.readOnly {
		return ErrReadOnly
	}
	for _, p := range []string{d.JournalPath(bucket), d.RefusedPath(bucket)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("state: %w", err)
		}
	}
	return d.Update(func(s *State) error {
		b := s.Buckets[bucket]
		if b == nil {
			return nil
		}
		*b = Bucket{Phase: b.Phase, Target: b.Target}
		return nil
	})
}
