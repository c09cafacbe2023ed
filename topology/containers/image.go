package containers

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// LocalRepo is the pseudo-registry repository of images built from the
// host's redis-server binary: redisplit.local/redis:<version>. The dotted
// name can never be pulled from Docker Hub by mistake.
const LocalRepo = "redisplit.local/redis"

// ensureImage makes o.Image (or the host-built image) available locally and
// returns the reference to run. Order for BuildAuto: image present → use it;
// pull succeeds → use it; else build from the host binary.
func ensureImage(ctx context.Context, p *testcontainers.DockerProvider, o *Options) (ref string, how string, err error) {
	cli := p.Client()
	if o.Build != BuildAlways {
		if _, err := cli.ImageInspect(ctx, o.Image); err == nil {
			return o.Image, "present", nil
		}
		perr := pull(ctx, cli, o.Image)
		if perr == nil {
			return o.Image, "pulled", nil
		}
		if o.Build == BuildNever {
			return "", "", fmt.Errorf("image %s is not present and cannot be pulled (%v); use a reachable registry, "+
				"docker load the image, or let redisplit build %s:<version> from the host's redis-server (build: auto)",
				o.Image, perr, LocalRepo)
		}
		o.logf("image %s unavailable (%v); building %s from the host's redis-server", o.Image, perr, LocalRepo)
	}
	ref, built, err := buildHostImage(ctx, p, o)
	if err != nil {
		return "", "", err
	}
	if !built {
		return ref, HowHostImage + ", already present", nil
	}
	return ref, HowHostImage, nil
}

// HowHostImage is Backend.How for the image built from the host's redis-server.
const HowHostImage = "built from host redis-server"

func pull(ctx context.Context, cli client.APIClient, ref string) error {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	rc, err := cli.ImagePull(pctx, ref, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	// The pull only completes when the progress stream is drained; errors
	// (e.g. manifest unknown) arrive inside the stream.
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	if i := bytes.Index(b, []byte(`"error"`)); i >= 0 {
		return fmt.Errorf("pull %s: %s", ref, strings.TrimSpace(string(b[i:min(len(b), i+300)])))
	}
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		return fmt.Errorf("pull %s: image still absent after pull: %w", ref, err)
	}
	return nil
}

var versionRe = regexp.MustCompile(`v=([0-9][0-9A-Za-z.\-]*)`)

// hostBinary returns the path of the host's redis-server ($REDIS_SERVER or
// PATH) and its version.
func hostBinary() (bin, version string, err error) {
	bin = os.Getenv("REDIS_SERVER")
	if bin == "" {
		if bin, err = exec.LookPath("redis-server"); err != nil {
			return "", "", fmt.Errorf("no Redis image available and no redis-server on this host to build one from "+
				"(install redis-server, or set REDIS_SERVER): %w", err)
		}
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "", "", fmt.Errorf("%s --version: %w", bin, err)
	}
	m := versionRe.FindSubmatch(out)
	if m == nil {
		return "", "", fmt.Errorf("%s --version: unexpected output %q", bin, out)
	}
	return bin, string(m[1]), nil
}

// buildHostImage builds redisplit.local/redis:<version>: a FROM scratch image
// holding the host's redis-server (symlinks resolved, named redis-server so
// that Redis runs in server mode) and the shared libraries ldd lists. An
// image of that tag that already exists is reused.
func buildHostImage(ctx context.Context, p *testcontainers.DockerProvider, o *Options) (ref string, built bool, err error) {
	bin, version, err := hostBinary()
	if err != nil {
		return "", false, err
	}
	ref = LocalRepo + ":" + version
	if _, err := p.Client().ImageInspect(ctx, ref); err == nil {
		return ref, false, nil
	}
	archive, err := hostImageContext(bin)
	if err != nil {
		return "", false, err
	}
	req := &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		ContextArchive: bytes.NewReader(archive),
		Dockerfile:     "Dockerfile",
		Repo:           LocalRepo,
		Tag:            version,
		KeepImage:      true,
	}}
	if _, err := p.BuildImage(ctx, req); err != nil {
		return "", false, fmt.Errorf("build %s from %s: %w", ref, bin, err)
	}
	return ref, true, nil
}

const hostDockerfile = `FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu:/usr/lib:/lib
WORKDIR /data
ENTRYPOINT ["/usr/local/bin/redis-server"]
`

// hostImageContext returns the docker build context (a tar archive) of the
// host image.
func hostImageContext(bin string) ([]byte, error) {
	libs, err := lddLibs(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("Dockerfile", 0o644, []byte(hostDockerfile)); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(bin) // follows symlinks, as cp -L
	if err != nil {
		return nil, err
	}
	if err := add("rootfs/usr/local/bin/redis-server", 0o755, data); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, l := range libs {
		dst := l
		if !strings.HasPrefix(l, "/lib64/") {
			dst = "/usr/lib/x86_64-linux-gnu/" + path.Base(l)
		}
		if seen[dst] {
			continue
		}
		seen[dst] = true
		data, err := os.ReadFile(l)
		if err != nil {
			return nil, fmt.Errorf("copy library %s: %w", l, err)
		}
		if err := add("rootfs"+dst, 0o755, data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// lddLibs lists the absolute paths of the shared libraries bin loads,
// including the dynamic loader.
func lddLibs(bin string) ([]string, error) {
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command("ldd", real).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", real, err)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0])
		}
	}
	return libs, nil
}
