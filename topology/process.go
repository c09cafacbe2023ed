package topology

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ProcessBackend runs servers as local redis-server processes, each with its
// own directory under Dir.
type ProcessBackend struct {
	Binary string // redis-server; default: $REDIS_SERVER or redis-server on PATH
	Dir    string // base directory; must exist

	mu      sync.Mutex
	servers []*process
}

// NewProcessBackend returns a backend that keeps its files under dir.
func NewProcessBackend(dir string) (*ProcessBackend, error) {
	bin := os.Getenv("REDIS_SERVER")
	if bin == "" {
		p, err := exec.LookPath("redis-server")
		if err != nil {
			return nil, fmt.Errorf("redis-server not found on PATH (install redis-server, or set REDIS_SERVER): %w", err)
		}
		bin = p
	}
	return &ProcessBackend{Binary: bin, Dir: dir}, nil
}

type process struct {
	b    *ProcessBackend
	spec ServerSpec
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartServer implements Backend.
func (b *ProcessBackend) StartServer(ctx context.Context, spec ServerSpec) (Server, error) {
	dir := filepath.Join(b.Dir, fmt.Sprintf("%s-%d", spec.Name, spec.Port))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p := &process{b: b, spec: spec, dir: dir}
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.servers = append(b.servers, p)
	b.mu.Unlock()
	return p, nil
}

// Close kills every server.
func (b *ProcessBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.servers {
		_ = p.Kill()
	}
	b.servers = nil
	return nil
}

func (p *process) Name() string { return p.spec.Name }
func (p *process) Port() int    { return p.spec.Port }
func (p *process) Addr() string { return fmt.Sprintf("127.0.0.1:%d", p.spec.Port) }

func (p *process) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return nil // running
		}
	}
	args := append([]string{}, p.spec.Args...)
	if p.spec.Sentinel {
		conf := filepath.Join(p.dir, "sentinel.conf")
		if _, err := os.Stat(conf); err != nil { // keep the file a sentinel rewrote
			if err := os.WriteFile(conf, []byte(p.spec.SentinelConf), 0o644); err != nil {
				return err
			}
		}
		args = append([]string{conf, "--sentinel"}, args...)
	}
	args = append(args, "--dir", p.dir)
	logf, err := os.OpenFile(filepath.Join(p.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.b.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.spec.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	p.cmd, p.done = cmd, done

	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- WaitPing(wctx, p.Addr(), "") }()
	select {
	case err := <-ready:
		if err != nil {
			_ = cmd.Process.Kill()
			return fmt.Errorf("%s: %w; log: %s", p.spec.Name, err, p.logTail())
		}
		return nil
	case <-done:
		cancel()
		return fmt.Errorf("%s exited at start: %s", p.spec.Name, p.logTail())
	}
}

func (p *process) logTail() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "server.log"))
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return string(b)
}

func (p *process) signal(sig os.Signal, wait time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
		return nil
	}
}

func (p *process) Stop(ctx context.Context) error { return p.signal(syscall.SIGTERM, 10*time.Second) }
func (p *process) Kill() error                    { return p.signal(syscall.SIGKILL, 5*time.Second) }
