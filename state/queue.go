package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The queue journal of a bucket moved to SQS (package queuemove) and its
// status snapshot live beside the key journal:
//
//	journal/BUCKET.queue       one record per item event (same record format
//	                           as the key journal; queuemove encodes the
//	                           payload), append-only
//	journal/BUCKET.queue.json  the mover's latest per-queue counters, for
//	                           status; replaced atomically

// QueueJournalPath returns the path of bucket's queue journal.
func (d *Dir) QueueJournalPath(bucket string) string {
	return filepath.Join(d.path, "journal", bucket+".queue")
}

func (d *Dir) queueStatusPath(bucket string) string {
	return filepath.Join(d.path, "journal", bucket+".queue.json")
}

// OpenQueueJournal opens bucket's queue journal for appending (0600); a
// torn final record is cut off first, as for the key journal.
func (d *Dir) OpenQueueJournal(bucket string) (*Journal, error) {
	if d.readOnly {
		return nil, ErrReadOnly
	}
	return openAppend(d.QueueJournalPath(bucket))
}

// ReadQueueJournal streams every record of bucket's queue journal, in
// append order, to fn (one record in memory at a time); no journal → nil.
func (d *Dir) ReadQueueJournal(bucket string, fn func(rec string) error) error {
	return readRecords(d.QueueJournalPath(bucket), 0, fn)
}

// WriteQueueStatus replaces bucket's queue status snapshot with v (JSON).
func (d *Dir) WriteQueueStatus(bucket string, v any) error {
	if d.readOnly {
		return ErrReadOnly
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return writeAtomic(d.queueStatusPath(bucket), append(b, '\n'))
}

// ReadQueueStatus decodes bucket's queue status snapshot into v; it
// reports false when there is none.
func (d *Dir) ReadQueueStatus(bucket string, v any) (bool, error) {
	b, err := os.ReadFile(d.queueStatusPath(bucket))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("state: %s is corrupt: %w", d.queueStatusPath(bucket), err)
	}
	return true, nil
}
