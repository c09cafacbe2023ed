// Package safety holds the error by which a command refuses to act because
// acting could lose or overwrite data (exit code 4): a non-empty target, a
// lock held by another run, unknown keys, a plan that changed.
package safety

import "fmt"

// Refusal is a refusal for safety. Hint says how to proceed deliberately.
type Refusal struct {
	Reason string
	Hint   string
}

func (r *Refusal) Error() string {
	if r.Hint == "" {
		return "refused: " + r.Reason
	}
	return "refused: " + r.Reason + " (" + r.Hint + ")"
}

// Refusef returns a *Refusal.
func Refusef(hint, format string, args ...any) error {
	return &Refusal{Reason: fmt.Sprintf(format, args...), Hint: hint}
}
