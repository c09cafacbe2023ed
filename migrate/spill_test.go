package migrate

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// The spill gives back the pre-pass's pages as they were added: names
// (binary ones too), the types when there were any, the cursors; it is
// replayed only while fresh.
func TestSpillReplaysPages(t *testing.T) {
	sp, err := newSpill(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.remove()
	want := []page{
		{keys: []string{"a", "bin\x00\xff\r\nkey", ""}, next: 17},
		{keys: []string{"typed"}, types: []string{"hash"}, next: 9},
		{keys: []string{}, next: 0},
	}
	for _, p := range want {
		sp.add(p.keys, p.types, p.next)
	}
	if err := sp.finish(); err != nil {
		t.Fatal(err)
	}
	if !sp.fresh() {
		t.Fatal("a spill just finished is not fresh")
	}
	pages, errFn := sp.replay(context.Background())
	var got []page
	for p := range pages {
		got = append(got, p)
	}
	if err := errFn(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("replayed %#v, want %#v", got, want)
	}
	sp.done = time.Now().Add(-spillFresh - time.Second)
	if sp.fresh() {
		t.Fatal("a spill older than spillFresh is still replayed")
	}
	var none *spill
	if none.fresh() {
		t.Fatal("no spill is fresh")
	}
}
