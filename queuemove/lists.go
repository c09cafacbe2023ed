package queuemove

import (
	"slices"

	"github.com/redisplit/redisplit/state"
)

// Lists returns, sorted, every list bucket's queue journal records a move
// of (the lists of its sources, delayed sets included by their list): the
// lists Verify, Rollback and a resumed Run must be given even when legacy
// no longer has them (Redis deletes an emptied list). No journal → none.
func Lists(dir *state.Dir, bucket string) ([]string, error) {
	if bucket == "" {
		bucket = "queue"
	}
	js, err := replay(dir, bucket, false)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range js.sources {
		if s.seen && s.list != "" {
			out = append(out, s.list)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
