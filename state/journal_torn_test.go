package state

import (
	"os"
	"strings"
	"testing"
)

// A journal whose last record was torn by a crash is cut back to its last
// complete record when it is opened for appending: appended records are read
// back exactly, after the complete ones.
func TestJournalTornRecordRecoveredOnOpen(t *testing.T) {
	long := strings.Repeat("L", 300) // a two-byte length prefix
	complete := []string{"a", "bin\x00\xff key", ""}
	for _, tc := range []struct {
		name string
		cut  int // bytes removed from the end of the last record (long)
	}{
		{"inside the key", 100},
		{"all of the key", 300},
		{"inside the length", 301},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, open := range []struct {
				name   string
				open   func(d *Dir) (*Journal, error)
				path   func(d *Dir) string
				readFn func(d *Dir, fn func(string) error) error
			}{
				{"journal", func(d *Dir) (*Journal, error) { return d.OpenJournal("cache") }, func(d *Dir) string { return d.JournalPath("cache") },
					func(d *Dir, fn func(string) error) error { return d.ReadJournal("cache", fn) }},
				{"refused", func(d *Dir) (*Journal, error) { return d.OpenRefused("cache") }, func(d *Dir) string { return d.RefusedPath("cache") },
					func(d *Dir, fn func(string) error) error { return d.ReadRefused("cache", fn) }},
			} {
				d, err := Open(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				j, err := open.open(d)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := j.Append(complete...); err != nil {
					t.Fatal(err)
				}
				end := j.Size()
				if _, err := j.Append(long); err != nil {
					t.Fatal(err)
				}
				full := j.Size()
				j.Close()
				if err := os.Truncate(open.path(d), full-int64(tc.cut)); err != nil {
					t.Fatal(err)
				}

				j, err = open.open(d)
				if err != nil {
					t.Fatal(err)
				}
				if j.Size() != end {
					t.Errorf("%s: reopened at %d bytes, want %d (the end of the last complete record)", open.name, j.Size(), end)
				}
				off, err := j.Append("new:1", "new:2")
				if err != nil {
					t.Fatal(err)
				}
				if off != end {
					t.Errorf("%s: appended at offset %d, want %d", open.name, off, end)
				}
				j.Close()

				var got []string
				if err := open.readFn(d, func(k string) error { got = append(got, k); return nil }); err != nil {
					t.Fatal(err)
				}
				want := append(append([]string{}, complete...), "new:1", "new:2")
				if strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("%s: read back %q, want %q", open.name, got, want)
				}
			}
		})
	}
}

// A complete journal is reopened untouched.
func TestJournalCompleteReopenedAsIs(t *testing.T) {
	d, _ := Open(t.TempDir())
	j, _ := d.OpenJournal("q")
	j.Append("x", "y")
	size := j.Size()
	j.Close()
	j, err := d.OpenJournal("q")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if st, _ := os.Stat(d.JournalPath("q")); j.Size() != size || st.Size() != size {
		t.Fatalf("size %d (file %d), want %d", j.Size(), st.Size(), size)
	}
}
