package cmd

import "github.com/redisplit/redisplit/state"

// openState opens the state directory. readOnly is for the commands and
// modes that write nothing (status, --dry-run): they create nothing, and a
// state directory that does not exist reads as an empty state.
func openState(dir string, readOnly bool) (*state.Dir, error) {
	if readOnly {
		return state.OpenReadOnly(dir)
	}
	return state.Open(dir)
}
