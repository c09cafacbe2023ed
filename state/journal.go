package state

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
)

// Journal record format: uvarint(len(key)) followed by the key's bytes.
// Binary-safe; a torn final record (the process died inside a write) is
// ignored by readers and cut off when the file is next opened for appending.
// Duplicates are allowed.

// maxKeyLen bounds a record so that a corrupt length cannot make a reader
// allocate without limit (Redis keys are at most 512 MB).
const maxKeyLen = 512 << 20

// ReadJournal streams every key name journaled for bucket, in append order,
// to fn; it stops at fn's first error and returns it. No journal → nil.
// It holds one key in memory at a time.
func (d *Dir) ReadJournal(bucket string, fn func(key string) error) error {
	return d.ReadJournalFrom(bucket, 0, fn)
}

// ReadJournalFrom is ReadJournal starting at byte offset off (an offset
// returned by Journal.Append or recorded in Bucket.JournalResume).
func (d *Dir) ReadJournalFrom(bucket string, off int64, fn func(key string) error) error {
	return readRecords(d.JournalPath(bucket), off, fn)
}

// ReadRefused streams the keys redisplit refused to overwrite on bucket's
// target (they existed there and redisplit had not written them).
func (d *Dir) ReadRefused(bucket string, fn func(key string) error) error {
	return readRecords(d.RefusedPath(bucket), 0, fn)
}

func readRecords(path string, off int64, fn func(key string) error) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer f.Close()
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return fmt.Errorf("state: %w", err)
		}
	}
	r := bufio.NewReaderSize(f, 256<<10)
	var buf []byte
	for {
		n, err := binary.ReadUvarint(r)
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil // end, or a torn length
		}
		if err != nil {
			return fmt.Errorf("state: journal %s: %w", path, err)
		}
		if n > maxKeyLen {
			return fmt.Errorf("state: journal %s is corrupt (record of %d bytes)", path, n)
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil // torn final record: its write never happened
		}
		if err := fn(string(buf)); err != nil {
			return err
		}
	}
}

// Journal appends key names to one bucket's journal file. Append is one
// write(2) per call, so a key is in the file (page cache) before the caller
// writes it to the target, which survives a kill -9 of the process; Sync
// makes it survive a machine crash. Safe for concurrent use.
type Journal struct {
	mu   sync.Mutex
	f    *os.File
	size int64
	buf  []byte
}

// OpenJournal opens bucket's journal for appending, creating it (0600).
func (d *Dir) OpenJournal(bucket string) (*Journal, error) {
	if d.readOnly {
		return nil, ErrReadOnly
	}
	return openAppend(d.JournalPath(bucket))
}

// OpenRefused opens bucket's refusal list for appending.
func (d *Dir) OpenRefused(bucket string) (*Journal, error) {
	if d.readOnly {
		return nil, ErrReadOnly
	}
	return openAppend(d.RefusedPath(bucket))
}

// openAppend opens path for appending. A torn last record (the process
// died inside a write) is cut off first, so that appended records follow the
// last complete one: readers would otherwise take the torn record's length
// prefix and the new bytes for one record, and misread every record after.
func openAppend(path string) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("state: %w", err)
	}
	size, err := completeLength(f, path)
	if err == nil && size < st.Size() {
		if err = f.Truncate(size); err == nil {
			err = f.Sync()
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("state: journal %s: %w", path, err)
	}
	return &Journal{f: f, size: size}, nil
}

// completeLength returns the length of f up to the end of its last
// complete record. It reads f from the start (one sequential pass, nothing
// held in memory) and leaves f's offset undefined; f is opened O_APPEND, so
// later writes go to the end anyway.
func completeLength(f *os.File, path string) (int64, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	r := bufio.NewReaderSize(f, 256<<10)
	var off int64
	for {
		n, err := binary.ReadUvarint(r)
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return off, nil // the end, or a torn length
		}
		if err != nil {
			return 0, err
		}
		if n > maxKeyLen {
			return 0, fmt.Errorf("corrupt (record of %d bytes at offset %d)", n, off)
		}
		if d, err := r.Discard(int(n)); err != nil || uint64(d) != n {
			return off, nil // torn key bytes
		}
		off += int64(uvarintLen(n)) + int64(n)
	}
}

func uvarintLen(n uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], n)
}

// Append writes keys as one write and returns the offset of the first record.
func (j *Journal) Append(keys ...string) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.buf = j.buf[:0]
	for _, k := range keys {
		j.buf = binary.AppendUvarint(j.buf, uint64(len(k)))
		j.buf = append(j.buf, k...)
	}
	off := j.size
	n, err := j.f.Write(j.buf)
	j.size += int64(n)
	if err != nil {
		return off, fmt.Errorf("state: journal: %w", err)
	}
	return off, nil
}

// Size returns the journal's current length in bytes.
func (j *Journal) Size() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.size
}

// Sync flushes the journal to stable storage.
func (j *Journal) Sync() error {
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("state: journal: %w", err)
	}
	return nil
}

// Close syncs and closes the journal.
func (j *Journal) Close() error {
	err := j.f.Sync()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}
