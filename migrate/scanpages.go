package migrate

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/redisconn"
)

type page struct {
	keys  []string // redisplit's own keys removed
	types []string // from a spill: the types the plan needed (nil: none, or read them)
	next  uint64   // cursor after this page; 0 = last page
}

// scanPages SCANs c from cursor in a goroutine, one page ahead of the
// consumer (the next SCAN overlaps the classification of the current
// page), under the ops budget and the retry policy. The channel closes
// after the last page, on error or when ctx ends; then errFn tells why.
func scanPages(ctx context.Context, c *redis.Client, cursor uint64, o Options) (<-chan page, func() error) {
	ch := make(chan page, 2)
	var err error
	go func() {
		defer close(ch)
		lim := o.limiter()
		for {
			if err = waitN(ctx, lim, 1); err != nil {
				return
			}
			var keys []string
			var next uint64
			err = o.Retry.Do(ctx, func() error {
				var e error
				keys, next, e = c.Scan(ctx, cursor, "", int64(o.ScanCount)).Result()
				return e
			})
			if err != nil {
				err = redisconn.Explain(err, "legacy", c.Options().Addr)
				return
			}
			select {
			case ch <- page{keys: dropOwn(keys), next: next}:
			case <-ctx.Done():
				err = context.Cause(ctx)
				return
			}
			if next == 0 {
				return
			}
			cursor = next
		}
	}()
	// err is written before close(ch) and read after the range over ch ends
	return ch, func() error { return err }
}

// spill holds the pages of the pre-pass's SCAN (names, the types the plan
// needed, the cursor after each page) in a file of the state directory,
// so that a run whose backfill starts from cursor 0 copies what the
// pre-pass saw instead of SCANning legacy a second time: one SCAN per run.
// Its cursors are legacy's own, so the checkpoints of a pass fed by it
// resume with a real SCAN like any other. A key created after the pre-pass
// visited its slot is not in it: without --dual-write a backfill copies
// the keys SCAN sees (the copy SCAN misses those created behind its cursor
// all the same), and --dual-write, whose change capture must start before
// the backfill's SCAN, never uses a spill (spillFor).
//
// A spill is replayed only if the copy starts within spillFresh of the
// pre-pass's end (fresh): an operator who took longer to confirm gets a
// backfill that SCANs again, as the keys created meanwhile would be missed.
type spill struct {
	f     *os.File
	w     *bufio.Writer
	pages int
	err   error     // the first write error: the spill is then not used
	done  time.Time // when the pre-pass ended (finish)
}

// spillFresh: see spill.
const spillFresh = 30 * time.Second

// fresh reports whether the spill may be replayed now.
func (s *spill) fresh() bool { return s != nil && time.Since(s.done) < spillFresh }

// newSpill creates the spill file in dir (0600), first removing the
// spills of runs that were killed (the lease lets one run at a time use
// the state directory).
func newSpill(dir string) (*spill, error) {
	if old, err := filepath.Glob(filepath.Join(dir, "prepass-*.pages")); err == nil {
		for _, p := range old {
			os.Remove(p)
		}
	}
	f, err := os.CreateTemp(dir, "prepass-*.pages")
	if err != nil {
		return nil, err
	}
	return &spill{f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

// add appends one SCAN page (types may be nil: the plan needs none).
func (s *spill) add(keys, types []string, next uint64) {
	if s == nil || s.err != nil {
		return
	}
	var b [binary.MaxVarintLen64]byte
	put := func(x uint64) { s.w.Write(b[:binary.PutUvarint(b[:], x)]) }
	put(next)
	put(uint64(len(keys)))
	hasTypes := uint64(0)
	if types != nil {
		hasTypes = 1
	}
	put(hasTypes)
	for i, k := range keys {
		put(uint64(len(k)))
		s.w.WriteString(k)
		if types != nil {
			put(uint64(len(types[i])))
			s.w.WriteString(types[i])
		}
	}
	s.pages++
	if _, err := s.w.Write(nil); err != nil {
		s.err = err
	}
}

// finish flushes the spill; after an error it is not used.
func (s *spill) finish() error {
	if s == nil {
		return nil
	}
	if s.err == nil {
		s.err = s.w.Flush()
	}
	s.done = time.Now()
	return s.err
}

// remove deletes the spill file.
func (s *spill) remove() {
	if s != nil {
		s.f.Close()
		os.Remove(s.f.Name())
	}
}

// pages replays the spill as scanPages would SCAN legacy from cursor 0: the
// same channel and error contract, no command to legacy.
func (s *spill) replay(ctx context.Context) (<-chan page, func() error) {
	ch := make(chan page, 2)
	var err error
	go func() {
		defer close(ch)
		if _, err = s.f.Seek(0, io.SeekStart); err != nil {
			return
		}
		r := bufio.NewReaderSize(s.f, 256<<10)
		str := func() (string, error) {
			n, err := binary.ReadUvarint(r)
			if err != nil {
				return "", err
			}
			b := make([]byte, n)
			_, err = io.ReadFull(r, b)
			return string(b), err
		}
		for i := 0; i < s.pages; i++ {
			var pg page
			var n, hasTypes uint64
			if pg.next, err = binary.ReadUvarint(r); err != nil {
				return
			}
			if n, err = binary.ReadUvarint(r); err != nil {
				return
			}
			if hasTypes, err = binary.ReadUvarint(r); err != nil {
				return
			}
			pg.keys = make([]string, n)
			if hasTypes == 1 {
				pg.types = make([]string, n)
			}
			for j := range pg.keys {
				if pg.keys[j], err = str(); err != nil {
					return
				}
				if pg.types != nil {
					if pg.types[j], err = str(); err != nil {
						return
					}
				}
			}
			select {
			case ch <- pg:
			case <-ctx.Done():
				err = context.Cause(ctx)
				return
			}
		}
	}()
	return ch, func() error {
		if err != nil {
			return fmt.Errorf("reading the pre-pass's pages back from %s: %w", s.f.Name(), err)
		}
		return nil
	}
}
