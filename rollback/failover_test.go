package rollback_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisplit/redisplit/state"
	"github.com/redisplit/redisplit/topology"
	"github.com/redisplit/redisplit/verify/verifytest"
)

// A rollback into a Sentinel target whose replica has not received the
// deletes yet, then a SENTINEL FAILOVER right after the deletes: rollback
// may only report success (and remove the journal) once the replica
// acknowledged them, so the promoted replica holds none of redisplit's keys.
//
// The replica lags deterministically: it replicates through a TCP proxy in
// front of the master (sentinels and clients reach the master through it
// too), and the test holds back the master's replication stream to the
// replica while rollback deletes. Without WAIT, rollback finishes at once
// and the failover brings every key back; with it, rollback waits, retries
// through the failover on the new master and finishes there.
func TestRollbackDeletesSurviveFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pb, err := topology.NewProcessBackend(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := &proxiedMaster{Backend: pb}
	defer b.Close()
	sent, err := topology.StartSentinel(ctx, b, "fo", "fomaster")
	if err != nil {
		t.Fatal(err)
	}
	px := b.proxy

	env.Flush(t)
	lc := env.LegacyClient(t)
	const n = 300
	p := lc.Pipeline()
	for i := 0; i < n; i++ {
		p.Set(ctx, fmt.Sprintf("sess:fo:%d", i), "session data", time.Hour)
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "redisplit.yaml")
	y := fmt.Sprintf("legacy: {url: \"redis://%s\"}\nstate_dir: %q\n%stargets:\n  session: {kind: sentinel, master: fomaster, sentinels: [%s]}\n",
		env.Legacy.Addr(), filepath.Join(dir, "state"), verifytest.Rules, strings.Join(sent.SentinelAddrs(), ", "))
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	verifytest.Migrate(t, cfg)

	master := verifytest.Client(t, px.target) // the master itself, not through the proxy
	replica := verifytest.Client(t, sent.Replica.Addr())
	if got := countKeys(t, master); got != n {
		t.Fatalf("master holds %d keys after migrate, want %d", got, n)
	}
	if got := countKeys(t, replica); got != n {
		t.Fatalf("replica holds %d keys after migrate (WAIT acknowledged them), want %d", got, n)
	}

	px.freeze()
	done := make(chan string, 1)
	go func() {
		code, out, errs := verifytest.Run(t, "rollback", "--config", cfg, "--yes")
		done <- fmt.Sprintf("%d\n%s%s", code, out, errs)
	}()
	deadline := time.Now().Add(time.Minute)
	for countKeys(t, master) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("rollback did not delete from the master")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := countKeys(t, replica); got != n {
		t.Fatalf("the replica already has the deletes (%d keys left): the test cannot tell", got)
	}
	nm, err := sent.Failover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failover to %s right after rollback's deletes", nm)
	var r string
	select {
	case r = <-done:
	case <-time.After(150 * time.Second):
		t.Fatal("rollback did not finish after the failover")
	}
	if !strings.HasPrefix(r, "0\n") {
		t.Fatalf("rollback: exit %s", r)
	}
	cur, err := sent.CurrentMaster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := countKeys(t, verifytest.Client(t, cur)); got != 0 {
		t.Fatalf("after rollback and a failover the new master %s holds %d of redisplit's keys again", cur, got)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "journal", "session.wal")); !os.IsNotExist(err) {
		t.Errorf("journal still there: %v", err)
	}
	sd, _ := state.Open(filepath.Join(dir, "state"))
	if st, _ := sd.Load(); st.Buckets["session"] == nil || st.Buckets["session"].Phase != state.RolledBack {
		t.Errorf("session state after rollback: %+v", st.Buckets["session"])
	}
}

func countKeys(t *testing.T, c *redis.Client) int {
	t.Helper()
	keys, err := c.Keys(context.Background(), "sess:fo:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// proxiedMaster is a topology backend that puts a pausable TCP proxy in
// front of the first server named *-master and hands the proxy's address
// out as that server's address: the replica, the sentinels and the clients
// all reach the master through it.
type proxiedMaster struct {
	topology.Backend
	proxy *pausingProxy
}

func (b *proxiedMaster) StartServer(ctx context.Context, spec topology.ServerSpec) (topology.Server, error) {
	s, err := b.Backend.StartServer(ctx, spec)
	if err != nil || b.proxy != nil || !strings.HasSuffix(spec.Name, "-master") {
		return s, err
	}
	px, err := newPausingProxy(s.Addr())
	if err != nil {
		return nil, err
	}
	b.proxy = px
	return proxiedServer{s, px}, nil
}

func (b *proxiedMaster) Close() error {
	if b.proxy != nil {
		b.proxy.close()
	}
	return b.Backend.Close()
}

type proxiedServer struct {
	topology.Server
	px *pausingProxy
}

func (s proxiedServer) Addr() string { return s.px.ln.Addr().String() }
func (s proxiedServer) Port() int    { return s.px.ln.Addr().(*net.TCPAddr).Port }

// pausingProxy forwards TCP connections to target. freeze holds back what
// the master sends on replication connections (those on which the client
// sent PSYNC) until thaw; held data is dropped when the connection closes,
// as a master's unsent replication stream is lost when its replica is
// promoted.
type pausingProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	thawed chan struct{} // closed while not frozen
	conns  []net.Conn
}

func newPausingProxy(target string) (*pausingProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &pausingProxy{ln: ln, target: target, thawed: make(chan struct{})}
	close(p.thawed)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.handle(c)
		}
	}()
	return p, nil
}

func (p *pausingProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.thawed = make(chan struct{})
}

func (p *pausingProxy) gate() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.thawed
}

func (p *pausingProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *pausingProxy) handle(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, client, server)
	p.mu.Unlock()
	var replication atomic.Bool
	closed := make(chan struct{})
	go func() { // client → server
		defer close(closed)
		buf := make([]byte, 32<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				if bytes.Contains(bytes.ToUpper(buf[:n]), []byte("PSYNC")) {
					replication.Store(true)
				}
				if _, werr := server.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		client.Close()
		server.Close()
	}()
	buf := make([]byte, 32<<10)
	for { // server → client
		n, err := server.Read(buf)
		if n > 0 {
			if replication.Load() {
				select {
				case <-p.gate():
				case <-closed:
					return // dropped
				}
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	client.Close()
	server.Close()
}
