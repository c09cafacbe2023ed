// Package containers is the container backend of package topology: every
// redis-server and sentinel runs in its own Docker container through
// testcontainers-go, so topology.Standalone, topology.StartCluster and
// topology.StartSentinel work unchanged on containers.
//
// Guarantees:
//   - Host networking: every server listens on its own 127.0.0.1 port and
//     announces it, exactly as a local process would (no bridge addresses).
//   - Each server's data directory is a host directory bind-mounted at /data:
//     Stop/Kill then Start keep the port and the data; a sentinel's config file
//     lives there and stays writable.
//   - Containers carry the labels org.testcontainers=true and
//     io.redisplit.run=<run id> and are named redisplit-<run>-<server>-<port>.
//     Close removes every container the backend started, whatever state they
//     are in, with its own timeout (it works after the caller's context is
//     cancelled, e.g. on Ctrl-C).
//   - The image is a setting (Options.Image, default an official image); when
//     it is absent and cannot be pulled, BuildAuto builds
//     redisplit.local/redis:<version> from the host's redis-server binary.
package containers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/redisplit/redisplit/topology"
)

// DefaultImage is the Redis image used when Options.Image is empty.
const DefaultImage = "redis:7.4"

// Build policies for the Redis image.
const (
	// BuildAuto uses Options.Image when present or pullable, else builds
	// redisplit.local/redis:<version> from the host's redis-server.
	BuildAuto = "auto"
	// BuildNever fails when Options.Image is absent and cannot be pulled.
	BuildNever = "never"
	// BuildAlways ignores Options.Image and uses the host-built image.
	BuildAlways = "always"
)

// RunLabel is the label naming the run a container belongs to.
const RunLabel = "io.redisplit.run"

// Options configure a Backend.
type Options struct {
	Image  string // Redis image; default DefaultImage
	Build  string // BuildAuto (default), BuildNever or BuildAlways
	Dir    string // host directory for the servers' data; default a new temp dir, removed by Close
	Logger *slog.Logger

	keepDir bool
}

func (o *Options) logf(format string, args ...any) {
	if o.Logger != nil {
		o.Logger.Info(fmt.Sprintf(format, args...))
	}
}

// Backend starts Redis servers in containers. It is safe for concurrent use.
type Backend struct {
	RunID string // identifies this backend's containers (label io.redisplit.run)
	Image string // the image actually used
	How   string // how the image was obtained: present, pulled, built from host redis-server

	opts     Options
	provider *testcontainers.DockerProvider

	mu      sync.Mutex
	servers []*server
	closed  bool
}

// SetEnvDefaults sets the testcontainers-go environment this backend needs
// when the user has not set it: no Ryuk reaper (its image needs a registry;
// Close removes the containers instead) and 127.0.0.1 as the Docker host
// (servers use host networking). It must run before any testcontainers call;
// New calls it.
func SetEnvDefaults() {
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		_ = os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
}

// New connects to the Docker daemon and makes the Redis image available
// (see Options.Build). Call Close when done.
func New(ctx context.Context, o Options) (*Backend, error) {
	SetEnvDefaults()
	if o.Image == "" {
		o.Image = DefaultImage
	}
	switch o.Build {
	case "":
		o.Build = BuildAuto
	case BuildAuto, BuildNever, BuildAlways:
	default:
		return nil, fmt.Errorf("image build policy %q is not auto, never or always", o.Build)
	}
	var logger tclog.Logger = tclog.NewNoopLogger()
	if o.Logger != nil {
		logger = slogAdapter{o.Logger}
	}
	tclog.SetDefault(logger)
	p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	if _, err := p.Client().Ping(ctx, client.PingOptions{}); err != nil {
		p.Close()
		return nil, fmt.Errorf("docker daemon not reachable (is dockerd running? DOCKER_HOST?): %w", err)
	}
	ref, how, err := ensureImage(ctx, p, &o)
	if err != nil {
		p.Close()
		return nil, err
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "redisplit-containers-"); err != nil {
			p.Close()
			return nil, err
		}
	} else {
		o.keepDir = true
	}
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	return &Backend{RunID: hex.EncodeToString(id), Image: ref, How: how, opts: o, provider: p}, nil
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Printf(format string, v ...any) {
	a.l.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

type server struct {
	b    *Backend
	spec topology.ServerSpec
	dir  string
	c    *testcontainers.DockerContainer
	name string

	starts int // times Start was called; the log holds one "Running mode=" line per bound start
}

// StartServer implements topology.Backend: it starts spec in a container and
// returns once the server answers PING. A server that exits at start (e.g.
// its port was taken) is removed and reported with its log.
func (b *Backend) StartServer(ctx context.Context, spec topology.ServerSpec) (topology.Server, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errors.New("container backend is closed")
	}
	b.mu.Unlock()
	dir := filepath.Join(b.opts.Dir, fmt.Sprintf("%s-%d", spec.Name, spec.Port))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, err
	}
	_ = os.Chmod(dir, 0o777) // images may run redis as a non-root user
	var cmd []string
	if spec.Sentinel {
		conf := filepath.Join(dir, "sentinel.conf")
		if err := os.WriteFile(conf, []byte(spec.SentinelConf), 0o666); err != nil {
			return nil, err
		}
		_ = os.Chmod(conf, 0o666)
		cmd = append(cmd, "/data/sentinel.conf", "--sentinel")
	}
	cmd = append(cmd, spec.Args...)
	cmd = append(cmd, "--dir", "/data")
	name := fmt.Sprintf("redisplit-%s-%s-%d", b.RunID, spec.Name, spec.Port)
	req := testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:      b.Image,
			Name:       name,
			Entrypoint: []string{"redis-server"},
			Cmd:        cmd,
			Labels:     map[string]string{RunLabel: b.RunID, "io.redisplit.server": spec.Name},
			HostConfigModifier: func(hc *container.HostConfig) {
				hc.NetworkMode = "host"
				hc.Binds = append(hc.Binds, dir+":/data")
			},
		},
		Started: false,
	}
	c, err := testcontainers.GenericContainer(ctx, req)
	var dc *testcontainers.DockerContainer
	if c != nil {
		dc, _ = c.(*testcontainers.DockerContainer)
	}
	if dc != nil {
		// Registered before Start so that Close removes it whatever happens next.
		b.mu.Lock()
		b.servers = append(b.servers, &server{b: b, spec: spec, dir: dir, c: dc, name: name})
		s := b.servers[len(b.servers)-1]
		b.mu.Unlock()
		if err == nil {
			err = s.Start(ctx)
		}
		if err != nil {
			b.remove(s)
			return nil, fmt.Errorf("%s: %w", spec.Name, err)
		}
		return s, nil
	}
	if err == nil {
		err = errors.New("unexpected container type")
	}
	return nil, fmt.Errorf("create container %s: %w", name, err)
}

// remove terminates s and forgets it.
func (b *Backend) remove(s *server) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = s.c.Terminate(ctx, testcontainers.StopTimeout(0))
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, x := range b.servers {
		if x == s {
			b.servers = append(b.servers[:i], b.servers[i+1:]...)
			break
		}
	}
}

// Close removes every container of this backend (killed, not stopped: the
// data is thrown away) and its data directory unless Options.Dir was given.
// It uses its own timeout, so it works after the caller's context ended.
func (b *Backend) Close() error {
	b.mu.Lock()
	b.closed = true
	servers := b.servers
	b.servers = nil
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.c.Terminate(ctx, testcontainers.StopTimeout(0)); err != nil {
				errs[i] = fmt.Errorf("remove %s: %w", s.name, err)
			}
		}()
	}
	wg.Wait()
	// Belt and braces: anything labelled with this run that Terminate missed.
	errs = append(errs, RemoveRun(ctx, b.provider.Client(), b.RunID))
	if !b.opts.keepDir {
		_ = os.RemoveAll(b.opts.Dir)
	}
	b.provider.Close()
	return errors.Join(errs...)
}

// RemoveRun force-removes every container labelled io.redisplit.run=runID.
func RemoveRun(ctx context.Context, cli client.APIClient, runID string) error {
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", RunLabel+"="+runID),
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range res.Items {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Containers lists the IDs of this backend's containers, running or not.
func (b *Backend) Containers(ctx context.Context) ([]string, error) {
	res, err := b.provider.Client().ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", RunLabel+"="+b.RunID),
	})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range res.Items {
		ids = append(ids, c.ID)
	}
	return ids, nil
}

func (s *server) Name() string { return s.spec.Name }
func (s *server) Port() int    { return s.spec.Port }
func (s *server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.spec.Port) }

// DataDir is the host directory mounted at /data in the container (RDB
// snapshots, nodes.conf, sentinel.conf).
func (s *server) DataDir() string { return s.dir }

// Start starts the (stopped or new) container and waits until the server
// has bound its port (its log says so once per start: a PING alone could be
// answered by whoever already holds the port) and answers PING. It fails
// early with the container's log if the server exits.
func (s *server) Start(ctx context.Context) error {
	if err := s.c.Start(ctx); err != nil {
		return err
	}
	s.starts++
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := s.c.State(ctx)
		if err == nil && !st.Running && st.Status != "created" {
			return fmt.Errorf("exited at start (code %d): %s", st.ExitCode, s.logTail(ctx))
		}
		if s.boundStarts(ctx) >= s.starts {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("did not start within 20s: %s", s.logTail(ctx))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	// A server loading a big RDB answers LOADING for as long as it takes:
	// that is progress, not a failure, so only other errors count against
	// the 20 s deadline.
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: time.Second, MaxRetries: -1, DisableIdentity: true})
	defer c.Close()
	deadline = time.Now().Add(20 * time.Second)
	for {
		err := c.Ping(ctx).Err()
		switch {
		case err == nil, strings.HasPrefix(err.Error(), "NOAUTH"), strings.HasPrefix(err.Error(), "WRONGPASS"):
			return nil
		case strings.HasPrefix(err.Error(), "LOADING"):
			deadline = time.Now().Add(20 * time.Second)
		case time.Now().After(deadline):
			return fmt.Errorf("%s did not answer PING: %v; log: %s", s.Addr(), err, s.logTail(ctx))
		}
		if st, serr := s.c.State(ctx); serr == nil && !st.Running {
			return fmt.Errorf("exited at start (code %d): %s", st.ExitCode, s.logTail(ctx))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// boundStarts counts the "Running mode=" lines of the container's log: Redis
// writes one after binding its port, in server and sentinel mode alike.
func (s *server) boundStarts(ctx context.Context) int {
	rc, err := s.c.Logs(ctx)
	if err != nil {
		return 0
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return strings.Count(string(b), "Running mode=")
}

func (s *server) logTail(ctx context.Context) string {
	rc, err := s.c.Logs(ctx)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return strings.TrimSpace(string(b))
}

// Stop stops the container gracefully (SIGTERM, SIGKILL after 10 s).
func (s *server) Stop(ctx context.Context) error {
	d := 10 * time.Second
	return s.c.Stop(ctx, &d)
}

// Kill kills the container at once (SIGKILL).
func (s *server) Kill() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := s.b.provider.Client().ContainerKill(ctx, s.c.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"})
	if err != nil && strings.Contains(err.Error(), "is not running") {
		return nil
	}
	if err != nil {
		return err
	}
	// Wait until Docker reports it stopped so that a later Start is clean.
	for i := 0; i < 100; i++ {
		st, err := s.c.State(ctx)
		if err != nil || !st.Running {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// DataDir returns the host data directory of a server started by a Backend,
// or "" for servers of other backends.
func DataDir(s topology.Server) string {
	if x, ok := s.(*server); ok {
		return x.dir
	}
	return ""
}
