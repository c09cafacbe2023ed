package cmd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// confirm asks question on the terminal (app.Err, answered on app.In):
// "y" or "yes" goes on; anything else, or no answer, is the refusal
// declined (exit 4, saying what was left alone).
func confirm(app *App, question, declined string) error {
	fmt.Fprint(app.Err, question)
	line, err := bufio.NewReader(app.In).ReadString('\n')
	if err != nil && err != io.EOF {
		return err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return &ExitError{Code: ExitRefused, Err: errors.New(declined)}
}
