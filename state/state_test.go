package state

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestLoadEmpty(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.Load()
	if err != nil || s.Buckets == nil || s.PlanHash != "" {
		t.Fatalf("Load = %+v, %v", s, err)
	}
	st, _ := os.Stat(d.Path())
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", st.Mode().Perm())
	}
}

func TestUpdateConcurrentAndMode(t *testing.T) {
	d, _ := Open(t.TempDir())
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.Update(func(s *State) error {
				b := s.Buckets["cache"]
				if b == nil {
					b = &Bucket{Phase: Copying}
					s.Buckets["cache"] = b
				}
				b.KeysCopied++
				return nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	s, _ := d.Load()
	if s.Buckets["cache"].KeysCopied != 20 {
		t.Fatalf("lost updates: %d", s.Buckets["cache"].KeysCopied)
	}
	st, _ := os.Stat(filepath.Join(d.Path(), "state.json"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("state mode %v", st.Mode().Perm())
	}
	// an error from fn saves nothing
	boom := errors.New("boom")
	if err := d.Update(func(s *State) error { s.PlanHash = "x"; return boom }); err != boom {
		t.Fatal(err)
	}
	if s, _ := d.Load(); s.PlanHash != "" {
		t.Fatal("failed update was saved")
	}
}

func TestJournalBinaryTornAndReset(t *testing.T) {
	d, _ := Open(t.TempDir())
	j, err := d.OpenJournal("session")
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"a", "", "bin\x00\xff\n key", string(make([]byte, 300))}
	off, err := j.Append(keys[:2]...)
	if err != nil || off != 0 {
		t.Fatal(off, err)
	}
	off2, _ := j.Append(keys[2:]...)
	if off2 != 3 {
		t.Fatalf("second offset %d", off2)
	}
	j.Close()
	// a torn record at the end is ignored
	f, _ := os.OpenFile(d.JournalPath("session"), os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{10, 'x', 'y'})
	f.Close()
	var got []string
	if err := d.ReadJournal("session", func(k string) error { got = append(got, k); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(keys) {
		t.Fatalf("got %d keys", len(got))
	}
	for i := range keys {
		if got[i] != keys[i] {
			t.Fatalf("key %d = %q", i, got[i])
		}
	}
	got = nil
	d.ReadJournalFrom("session", off2, func(k string) error { got = append(got, k); return nil })
	if len(got) != 2 || got[0] != keys[2] {
		t.Fatalf("from offset: %q", got)
	}
	st, _ := os.Stat(d.JournalPath("session"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("journal mode %v", st.Mode().Perm())
	}
	d.Update(func(s *State) error {
		s.Buckets["session"] = &Bucket{Phase: RolledBack, Cursor: 42, KeysCopied: 3}
		return nil
	})
	if err := d.ResetBucket("session"); err != nil {
		t.Fatal(err)
	}
	n := 0
	d.ReadJournal("session", func(string) error { n++; return nil })
	s, _ := d.Load()
	if n != 0 || s.Buckets["session"].Cursor != 0 || s.Buckets["session"].KeysCopied != 0 || s.Buckets["session"].Phase != RolledBack {
		t.Fatalf("after reset: %d keys, %+v", n, s.Buckets["session"])
	}
	if err := d.ReadJournal("nothing", func(string) error { return errors.New("called") }); err != nil {
		t.Fatal(err)
	}
}
