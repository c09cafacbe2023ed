package cmd

import (
	"context"
	"errors"
	"strings"

	"github.com/redisplit/redisplit/classify"
	"github.com/redisplit/redisplit/config"
	"github.com/redisplit/redisplit/safety"
)

// Exit codes, stable and documented in docs/exit-codes.md.
const (
	ExitOK          = 0
	ExitRuntime     = 1
	ExitUsage       = 2
	ExitDifferences = 3
	ExitRefused     = 4
	// ExitProfile: targets check found a target failing its workload profile.
	ExitProfile = 5
)

// ExitError ends a command with a given code. Silent means the command has
// already printed what the user needs (e.g. verify's report).
type ExitError struct {
	Code   int
	Err    error
	Silent bool
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return "exit"
	}
	return e.Err.Error()
}
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode maps an error to its exit code, in this one place.
func ExitCode(err error) int {
	var ee *ExitError
	var ce *config.Error
	var re *safety.Refusal
	var rule *classify.RuleError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &re):
		return ExitRefused
	case errors.As(err, &ce), errors.As(err, &rule):
		return ExitUsage
	case strings.HasPrefix(err.Error(), "unknown command"), strings.Contains(err.Error(), "arg(s)"),
		strings.HasPrefix(err.Error(), "requires at least"):
		return ExitUsage
	case errors.Is(err, context.Canceled):
		return ExitRuntime
	default:
		return ExitRuntime
	}
}
