package migrate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redisplit/redisplit/migrate"
)

// The control socket lives in the state directory unless its path does
// not fit a unix socket address (108 bytes); then both ends compute the
// same short path under the temp directory.
func TestControlSocketPath(t *testing.T) {
	short := t.TempDir()
	if got := migrate.ControlSocket(short); got != filepath.Join(short, "control.sock") {
		t.Errorf("short state dir: %s", got)
	}
	long := filepath.Join(short, strings.Repeat("d", 120))
	got := migrate.ControlSocket(long)
	if len(got) >= 108 || !strings.HasPrefix(got, os.TempDir()) || got != migrate.ControlSocket(long) {
		t.Errorf("long state dir: %q (%d bytes)", got, len(got))
	}
	if other := migrate.ControlSocket(long + "x"); other == got {
		t.Errorf("two state dirs share the socket %s", got)
	}
}
