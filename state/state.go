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
//	journal/BUCKET.queue    queue items moved to SQS (queue.go)
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

	"github.com/redisplit/redisplit/keyname"
	"github.com/redisplit/redisplit/safety"
)

// Phase is the workflow phase of a bucket:
// planned → copying → syncing → verified → cutover → completed, with
// rolled-back reachable from every phase before completed. A failure does
// not change the phase: it is recorded beside it (Bucket.Failed), so the
// phase a bucket failed in is never lost.
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
)

// legacyFailed is the phase that state files written before Bucket.Failed
// existed give a failed bucket; Load reads it as Copying with Failed set
// (only the copy could fail then).
const legacyFailed Phase = "failed"

// State is the whole persisted state.
type State struct {
	PlanHash   string             `json:"plan_hash"`
	Buckets    map[string]*Bucket `json:"buckets"`
	LastVerify *VerifyRecord      `json:"last_verify,omitempty"`
	// Notify is legacy's notify-keyspace-events as migrate --dual-write
	// found it, saved before it is changed and cleared once it is put back:
	// while it is set, legacy may still hold redisplit's value (also after
	// kill -9), and the next migrate puts the old one back.
	Notify *Notify `json:"notify,omitempty"`
	// Live holds the figures of the live phase (migrate --dual-write), saved
	// about once a second while it runs and once more when it stops.
	Live      *Live     `json:"live,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Notify is what migrate --dual-write found and did to legacy's
// notify-keyspace-events (dualwrite.NotifySetting, as saved).
type Notify struct {
	Old    string    `json:"old"`           // the value before the migration ("" is a value: off)
	Known  bool      `json:"known"`         // Old was read (CONFIG GET allowed)
	Set    string    `json:"set,omitempty"` // the value redisplit set; "" when it changed nothing
	Probed bool      `json:"probed,omitempty"`
	At     time.Time `json:"at"` // when it was first recorded
}

// Live is the live phase's figures: migrate.LiveStats is this struct, so
// that status, a metrics exporter and migrate's own output read one thing.
type Live struct {
	// Running is set while a migrate --dual-write mirrors; it stays set
	// after kill -9, and the next run treats the time since UpdatedAt as a
	// gap. PID and Host name the process.
	Running   bool      `json:"running"`
	PID       int       `json:"pid"`
	Host      string    `json:"host"`
	StartedAt time.Time `json:"started_at"`
	StoppedAt time.Time `json:"stopped_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at"`
	// NoTouch: the copier reads legacy with CLIENT NO-TOUCH (its eviction
	// order is left alone); false on servers without it (Redis < 7.2).
	NoTouch bool `json:"no_touch"`
	// Backlog is the copier's dirty set: keys marked and not yet copied,
	// shared by every bucket.
	Backlog      int     `json:"backlog"`
	Events       int64   `json:"events"`         // change events marked since the start
	EventsPerSec float64 `json:"events_per_sec"` // over the last second or so
	Copies       int64   `json:"copies"`         // keys written or deleted on targets
	CopiesPerSec float64 `json:"copies_per_sec"`
	// FeedDown is why the change feed is not whole right now ("" when it
	// is): events may be lost until it is, and a rescan follows.
	FeedDown string                 `json:"feed_down,omitempty"`
	Buckets  map[string]*LiveBucket `json:"buckets"`
	// Stages is where the copier's time went over the last second or so
	// (copier's stages: wait for a worker, read from legacy, write to the
	// targets), per key copied; nil before the first copy.
	Stages *Stages `json:"stages,omitempty"`
}

// Stages are the copier's stage latencies per key copied (package copier,
// stages.go), as quantiles in milliseconds: a bucket's upper bound, within
// 25% above the true value.
type Stages struct {
	Keys  int64    `json:"keys"` // keys copied in the interval
	Wait  Quantile `json:"wait"`
	Read  Quantile `json:"read"`
	Write Quantile `json:"write"`
}

// Quantile is one stage's p50, p90, p99 and maximum, in milliseconds.
type Quantile struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// LiveBucket is one bucket's live figures.
type LiveBucket struct {
	// BackfillDone: the bucket's backfill is complete (every key legacy had
	// when the SCAN started is copied).
	BackfillDone bool `json:"backfill_done"`
	// CaughtUp: a marker written on legacy came back through the change
	// feed and every change delivered before it has been applied, with the
	// backfill done and no rescan pending; false again after a gap until
	// its rescan is done and a later marker proves it.
	CaughtUp bool `json:"caught_up"`
	// LagMs is the last marker's round trip: from its write on legacy to
	// the moment every change delivered before it was applied to the
	// targets.
	LagMs int64 `json:"lag_ms"`
	// Backlog is the keys waiting in the copier's dirty set that may
	// belong to the bucket by their name (copier.Backlog: the set is
	// shared, and a key waiting has no type yet); BacklogEstimated when it
	// is estimated from a sample (more than copier.BacklogSample keys
	// waiting). Live.Backlog is every key waiting.
	Backlog          int     `json:"backlog"`
	BacklogEstimated bool    `json:"backlog_estimated,omitempty"`
	Events           int64   `json:"events"` // change events for keys of the bucket (by name)
	EventsPerSec     float64 `json:"events_per_sec"`
	Copies           int64   `json:"copies"` // keys of the bucket written or deleted, by every producer
	CopiesPerSec     float64 `json:"copies_per_sec"`
	Gaps             int64   `json:"gaps"`    // gaps in the change feed so far
	Rescans          int64   `json:"rescans"` // rescans started so far
	// RescanPending: a gap (or a restart of migrate) is not healed yet.
	RescanPending bool `json:"rescan_pending"`
	// Evicted counts legacy's own evictions of the bucket's keys during the
	// live phase (by name).
	Evicted int64 `json:"evicted,omitempty"`
	// CaughtUpAt is the last proof of catch-up; MarkerWrittenAt is when the
	// marker that proved it was written on legacy: every write legacy
	// executed before it is on the target.
	CaughtUpAt      time.Time `json:"caught_up_at,omitzero"`
	MarkerWrittenAt time.Time `json:"marker_written_at,omitzero"`
	// Reads counts the bucket's keys read and handed to its target since
	// the copier started (every producer: backfill, change capture,
	// rescans); Marks the dirty marks those reads covered. Marks − Reads
	// is what coalescing saved (copier.Figures).
	Reads int64 `json:"reads,omitempty"`
	Marks int64 `json:"marks,omitempty"`
	// HotKeys are the keys of the bucket copied most often, most first
	// (copier.HotKeys: a bounded counter; Hot marks the keys copied
	// unusually often).
	HotKeys []HotKey `json:"hot_keys,omitempty"`
	// Window is set while the bucket is in its switch window (cut over,
	// mirrored both ways).
	Window *Window `json:"window,omitempty"`
}

// HotKey is one of a bucket's most copied keys (copier.HotKey).
type HotKey struct {
	keyname.JSON
	// Copies is the copies counted since Since, a lower bound for the run;
	// the key may have had up to Over more before Since.
	Copies int64     `json:"copies"`
	Over   int64     `json:"over,omitempty"`
	Since  time.Time `json:"since"`
	PerSec float64   `json:"copies_per_sec"` // Copies over the time since Since (at least 1 s)
	Hot    bool      `json:"hot"`            // copied unusually often (copier.IsHot)
}

// Window is a bucket's figures in its switch window: the reverse mirror
// (target → legacy) beside the forward one.
type Window struct {
	Directions string    `json:"directions"` // "forward+reverse"
	Since      time.Time `json:"since"`      // the reverse mirror's start
	// ReverseCopies counts the keys the reverse mirror wrote or deleted on
	// legacy; Suppressed the copies of both directions not written
	// because the destination already held them (echoes).
	ReverseCopies int64 `json:"reverse_copies"`
	Suppressed    int64 `json:"suppressed"`
	// AppWrites counts the application's writes that still reached legacy
	// (forward copies of the bucket actually written, not echoes) since
	// the window opened; LastAppWriteAt is the latest.
	AppWrites      int64     `json:"app_writes_on_legacy"`
	LastAppWriteAt time.Time `json:"last_app_write_on_legacy,omitzero"`
	ReverseGaps    int64     `json:"reverse_gaps"`
	// QueueDuplicates counts the queue jobs this run's window may have
	// made run twice after a migrate kill (dualwrite.QueueLists contract 6).
	QueueDuplicates int64 `json:"queue_possible_duplicates,omitempty"`
	ReverseRescans  int64 `json:"reverse_rescans"`
	// ReverseCaughtUp: a marker written on the target came back through
	// the reverse feed with every change before it applied to legacy
	// (ReverseLagMs its round trip).
	ReverseCaughtUp bool  `json:"reverse_caught_up"`
	ReverseLagMs    int64 `json:"reverse_lag_ms"`
}

// Bucket is the state of one bucket.
//
// Key counts are over the whole migration of the bucket (every run since it
// started or was rolled back) and cover exactly the SCAN batches up to
// Cursor: each key the copy pass saw is counted once, in one of KeysCopied,
// KeysExpired, KeysGone or KeysRefused. Keys of batches after Cursor are
// counted by the run that gets past them.
type Bucket struct {
	Phase  Phase  `json:"phase"`
	Target string `json:"target"` // store.Redis.Describe()
	// PlannedKeys is the number of keys the plan routes to the bucket, by the
	// pre-pass of the latest migrate that copied it.
	PlannedKeys int64 `json:"planned_keys,omitempty"`
	KeysCopied  int64 `json:"keys_copied"`
	// KeysLogical counts the keys of KeysCopied that went the logical path.
	KeysLogical int64 `json:"keys_logical,omitempty"`
	// BytesCopied is the bytes written: DUMP payloads, and the values read
	// for logical copies (not MEMORY USAGE).
	BytesCopied int64 `json:"bytes_copied"`
	// KeysExpired counts keys read with their expiry already reached.
	KeysExpired int64 `json:"keys_expired"`
	// KeysGone counts keys absent when read (deleted, or expired and
	// reclaimed, between the SCAN and the read).
	KeysGone int64 `json:"keys_gone"`
	// KeysRefused counts keys that already existed on the target, that
	// redisplit did not write, and that it therefore left alone
	// (--allow-nonempty); they are listed in journal/BUCKET.refused.
	KeysRefused int64 `json:"keys_refused,omitempty"`
	// KeysNotWarmed counts cache keys the copy policy (Warm) left on
	// legacy on purpose: not copied, and not a loss.
	KeysNotWarmed int64 `json:"keys_not_warmed,omitempty"`
	// WarmedBytes is the MEMORY USAGE (on legacy, when admitted) of the
	// cache keys a hot policy warmed: what its budget has spent.
	WarmedBytes int64 `json:"warmed_bytes,omitempty"`
	// Warm is the cache's copy policy and its selection, recorded before
	// the first key is copied (nil: every key is copied). A resumed run
	// keeps it, so that every run of the migration selects the same keys;
	// verify reads it to tell the keys left on purpose from lost ones.
	Warm *Warm `json:"warm,omitempty"`

	// Failed is set when a run stopped the bucket on an error it could not
	// get past (LastError says which, FailedAt when); the phase stays the
	// one the bucket failed in. The next migrate that resumes the bucket
	// clears it. Errors counts the failures over the migration.
	Failed       bool      `json:"failed,omitempty"`
	FailedAt     time.Time `json:"failed_at,omitzero"`
	Errors       int64     `json:"errors"`
	LastError    string    `json:"last_error,omitempty"`
	CheckpointAt time.Time `json:"checkpoint_at"`

	// TargetPolicy is the target's maxmemory-policy when migrate last
	// started copying the bucket.
	TargetPolicy string `json:"target_policy,omitempty"`
	// AllowEvictingTarget is set when migrate copied the bucket into a
	// target that evicts (TargetPolicy is not noeviction) because
	// --allow-evicting-target named it: the operator accepted that the
	// target may lose keys. Without it verify refuses to mark a bucket whose
	// target evicts as verified.
	AllowEvictingTarget bool `json:"allow_evicting_target,omitempty"`

	// Cursor is the legacy SCAN cursor up to which every key of this bucket
	// has been acknowledged by the target; 0 with Copied false means "from
	// the start".
	Cursor uint64 `json:"cursor"`
	// Copied is true once a full SCAN pass has been copied (the backfill is
	// complete); the phase stays copying until dual-write takes over.
	Copied   bool      `json:"copied"`
	CopiedAt time.Time `json:"copied_at,omitzero"`
	// StartedAt is when the first copy of this bucket started.
	StartedAt time.Time `json:"started_at,omitzero"`

	// The switch window (cutover, complete, rollback after cutover; see
	// docs/runbook.md). CutoverAt is when the bucket's target became
	// authoritative, CompletedAt when the window ended.
	CutoverAt   time.Time `json:"cutover_at,omitzero"`
	CompletedAt time.Time `json:"completed_at,omitzero"`
	// Transition is a cutover, complete or rollback handed to migrate
	// --dual-write and not finished: recorded before its first step
	// (intent) and cleared when it is done, so that a migrate started
	// after a kill -9 finishes it.
	Transition *Transition `json:"transition,omitempty"`
	// TargetNotify is the target servers' notify-keyspace-events as the
	// reverse mirror found them (by server), saved before it changes them
	// and cleared once they are put back.
	TargetNotify map[string]*Notify `json:"target_notify,omitempty"`
}

// Transition is a phase change in progress (Bucket.Transition).
type Transition struct {
	Op string    `json:"op"` // "cutover", "complete" or "rollback"
	At time.Time `json:"at"` // when the intent was recorded
	// Switched: the control key already names the new phase (the
	// application may already follow it).
	Switched bool `json:"switched,omitempty"`
	// Purge: complete --purge-legacy (the purge is part of the transition).
	Purge bool `json:"purge,omitempty"`
}

// Warm is the copy policy of a cache bucket that is warmed rather than
// copied whole (targets.cache.copy), and the threshold its selection chose.
type Warm struct {
	Policy string `json:"policy"` // config.CopyHot or config.CopyNone
	// Metric is what ranks the keys of a hot selection: "idle" (OBJECT
	// IDLETIME, seconds: smaller is hotter; legacy's maxmemory-policy is
	// not LFU) or "freq" (OBJECT FREQ, the LFU counter: larger is hotter).
	Metric string `json:"metric,omitempty"`
	// Threshold: a key is hot when its idle time is at most Threshold plus
	// the seconds since SelectedAt (the clock moves on while the backfill
	// runs), or its LFU counter is at least Threshold. -1: no key is hot
	// (policy none, or no cache key).
	Threshold int64 `json:"threshold"`
	// Budget is the byte budget (MEMORY USAGE on legacy) the threshold was
	// chosen for; HotKeys and HotBytes what the selection pass found at or
	// above it, of CacheKeys and CacheBytes in all (HotBytes exceeds Budget
	// when not even the hottest keys fit it: the backfill copies as many
	// of them as fit).
	Budget     int64     `json:"budget_bytes,omitempty"`
	HotKeys    int64     `json:"hot_keys,omitempty"`
	HotBytes   int64     `json:"hot_bytes,omitempty"`
	CacheKeys  int64     `json:"cache_keys,omitempty"`
	CacheBytes int64     `json:"cache_bytes,omitempty"`
	SelectedAt time.Time `json:"selected_at,omitzero"`
}

// upgrade maps what older state files said to the current representation:
// phase "failed" (the copy failed) and keys_skipped (absent or expired when
// read).
func upgrade(raw []byte, s *State) {
	var old struct {
		Buckets map[string]struct {
			KeysSkipped int64 `json:"keys_skipped"`
		} `json:"buckets"`
	}
	_ = json.Unmarshal(raw, &old) // raw already parsed once
	for name, b := range s.Buckets {
		if b == nil {
			continue
		}
		if b.Phase == legacyFailed {
			b.Phase, b.Failed = Copying, true
		}
		if n := old.Buckets[name].KeysSkipped; n > 0 && b.KeysGone == 0 && b.KeysExpired == 0 {
			b.KeysGone = n
		}
	}
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
	// NotWarmed: cache keys the copy policy left on legacy on purpose
	// (targets.cache.copy hot or none); not a parity failure.
	NotWarmed int64 `json:"not_warmed,omitempty"`
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
	upgrade(b, &s)
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

// ResetBucket removes the bucket's journal, its refusal list, its queue
// journal and status snapshot, and its checkpoint (cursor, copied flag,
// counters), after a rollback: a later migrate starts the bucket clean. The phase is left as the caller set it.
func (d *Dir) ResetBucket(bucket string) error {
	if d.readOnly {
		return ErrReadOnly
	}
	for _, p := range []string{d.JournalPath(bucket), d.RefusedPath(bucket), d.QueueJournalPath(bucket), d.queueStatusPath(bucket), d.QueueBasesPath(bucket)} {
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
