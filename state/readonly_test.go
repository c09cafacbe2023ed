package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redisplit/redisplit/safety"
)

func TestOpenReadOnlyCreatesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fresh")
	d, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := d.Load()
	if err != nil || s.Buckets == nil || s.PlanHash != "" {
		t.Fatalf("Load = %+v, %v", s, err)
	}
	if err := d.ReadJournal("cache", func(string) error { return errors.New("called") }); err != nil {
		t.Fatal(err)
	}
	if err := d.Update(func(*State) error { return nil }); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Update: %v", err)
	}
	if err := d.ResetBucket("cache"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("ResetBucket: %v", err)
	}
	if _, err := d.OpenJournal("cache"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("OpenJournal: %v", err)
	}
	if _, err := d.OpenRefused("cache"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("OpenRefused: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the read-only open created %s: %v", dir, err)
	}
}

func TestCheckPlan(t *testing.T) {
	for _, tc := range []struct {
		name    string
		st      State
		refused bool
	}{
		{"no migration yet", State{}, false},
		{"same plan", State{PlanHash: "p1", Buckets: map[string]*Bucket{"cache": {Phase: Copying}}}, false},
		{"other plan, bucket copying", State{PlanHash: "p0", Buckets: map[string]*Bucket{"cache": {Phase: Copying}}}, true},
		{"other plan, bucket past cutover", State{PlanHash: "p0", Buckets: map[string]*Bucket{"cache": {Phase: Cutover, LastError: "OOM"}}}, true},
		{"other plan, every bucket rolled back or planned", State{PlanHash: "p0", Buckets: map[string]*Bucket{"cache": {Phase: RolledBack}, "queue": {Phase: Planned}}}, false},
	} {
		err := tc.st.CheckPlan("p1")
		var r *safety.Refusal
		if got := errors.As(err, &r); got != tc.refused || (err != nil && !got) {
			t.Errorf("%s: CheckPlan = %v, want refused %v", tc.name, err, tc.refused)
		}
		if tc.refused && !strings.Contains(err.Error(), "plan changed") {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
