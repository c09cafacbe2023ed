package migrate

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/redisplit/redisplit/safety"
)

// The control channel: how `cutover`, `complete` and `rollback` hand a
// transition to the running migrate --dual-write (it holds the lease and
// runs the mirrors). Contracts:
//
//  1. The channel is a unix socket, mode 0600, at ControlSocket(state
//     dir): <state dir>/control.sock, or, when that path does not fit a
//     socket address (108 bytes, sun_path), redisplit-<hash of the
//     absolute state dir>.sock under os.TempDir(). Both ends compute the
//     path the same way; nothing has to be looked up. migrate removes a
//     stale socket (left by kill -9) before it listens (it holds the
//     lease: no other migrate can be listening) and removes its own when
//     it stops.
//  2. One request per connection: one JSON line ControlRequest, answered
//     by one JSON line ControlResponse once the transition is done (or
//     refused, or failed). Transitions run one at a time.
//  3. A transition is recorded in the state (state.Bucket.Transition)
//     before its first step and cleared when it is done: a client whose
//     connection breaks (migrate killed) gets an error saying so, and the
//     next migrate --dual-write finishes the transition.

// ControlRequest is a transition handed to migrate --dual-write.
type ControlRequest struct {
	Op      string         `json:"op"` // OpCutover, OpComplete, OpRollback
	Bucket  string         `json:"bucket"`
	Options ControlOptions `json:"options"`
}

// Operations of the control channel.
const (
	OpCutover  = "cutover"
	OpComplete = "complete"
	OpRollback = "rollback"
)

// ControlOptions are the options of a transition (zero: the defaults).
type ControlOptions struct {
	DryRun       bool          `json:"dry_run,omitempty"`
	MaxLag       time.Duration `json:"max_lag,omitempty"`        // cutover; default DefaultMaxLag
	MaxVerifyAge time.Duration `json:"max_verify_age,omitempty"` // cutover; default DefaultMaxVerifyAge
	Quiet        time.Duration `json:"quiet,omitempty"`          // complete; cutover of the queue bucket (no pop seen for this long); default DefaultQuiet
	// ConsumersStopped: cutover of the queue bucket skips the check that
	// no list was popped on legacy within Quiet (dualwrite.PopWatch).
	ConsumersStopped bool          `json:"consumers_stopped,omitempty"`
	Timeout          time.Duration `json:"timeout,omitempty"` // complete: how long to wait for the quiet period; default 3×Quiet+30s
	Purge            bool          `json:"purge,omitempty"`   // complete --purge-legacy
	PurgeMaxOps      int           `json:"purge_max_ops,omitempty"`
}

// Defaults of the transitions' options.
const (
	DefaultMaxLag       = time.Second
	DefaultMaxVerifyAge = 15 * time.Minute
	DefaultQuiet        = 10 * time.Second
)

// ControlResponse is migrate's answer. ExitCode is the exit status the
// command ends with (0 done, 1 failed, 4 refused).
type ControlResponse struct {
	OK       bool            `json:"ok"`
	ExitCode int             `json:"exit_code"`
	Message  string          `json:"message"`
	Hint     string          `json:"hint,omitempty"`
	Details  json.RawMessage `json:"details,omitempty"`
}

// ErrNotRunning is returned by Control when no migrate --dual-write
// listens for the state directory.
var ErrNotRunning = errors.New("no migrate --dual-write is running")

// ControlSocket returns the control socket's path for a state directory
// (contract 1).
func ControlSocket(stateDir string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	p := filepath.Join(abs, "control.sock")
	if len(p) < 100 {
		return p
	}
	h := sha256.Sum256([]byte(abs))
	return filepath.Join(os.TempDir(), "redisplit-"+hex.EncodeToString(h[:8])+".sock")
}

// Control sends req to the migrate --dual-write running for stateDir and
// waits for its answer (as long as ctx allows). It returns an error
// wrapping ErrNotRunning when none runs.
func Control(ctx context.Context, stateDir string, req ControlRequest) (*ControlResponse, error) {
	path := ControlSocket(stateDir)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w for %s (nothing listens on %s)", ErrNotRunning, stateDir, path)
		}
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("migrate --dual-write stopped before it answered (%v): the %s of %s is recorded in the state; rerun migrate --dual-write and it finishes it", err, req.Op, req.Bucket)
	}
	var resp ControlResponse
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("control socket %s: bad answer %q: %w", path, line, err)
	}
	return &resp, nil
}

// listenControl opens the control socket (contract 1).
func listenControl(stateDir string) (net.Listener, string, error) {
	path := ControlSocket(stateDir)
	_ = os.Remove(path) // stale, from a killed migrate (we hold the lease)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, path, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, path, fmt.Errorf("control socket %s: %w", path, err)
	}
	return ln, path, nil
}

// serveControl answers requests on ln with handle until ln is closed;
// after is called once each answer is written.
func serveControl(ctx context.Context, ln net.Listener, handle func(context.Context, ControlRequest) ControlResponse, after func()) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			line, err := bufio.NewReader(conn).ReadBytes('\n')
			if err != nil {
				return
			}
			var req ControlRequest
			var resp ControlResponse
			if err := json.Unmarshal(line, &req); err != nil {
				resp = ControlResponse{ExitCode: 2, Message: fmt.Sprintf("bad request %q: %v", line, err)}
			} else {
				resp = handle(ctx, req)
			}
			b, _ := json.Marshal(resp)
			_, _ = conn.Write(append(b, '\n'))
			if after != nil {
				after()
			}
		}()
	}
}

// respond turns a transition's outcome into its response.
func respond(msg string, details any, err error) ControlResponse {
	if err != nil {
		var r *safety.Refusal
		if errors.As(err, &r) {
			return ControlResponse{ExitCode: 4, Message: r.Reason, Hint: r.Hint}
		}
		return ControlResponse{ExitCode: 1, Message: err.Error()}
	}
	resp := ControlResponse{OK: true, Message: msg}
	if details != nil {
		resp.Details, _ = json.Marshal(details)
	}
	return resp
}
