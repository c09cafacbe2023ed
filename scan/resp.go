package scan

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// respConn is a minimal RESP2 connection used only for the per-key pipeline
// (TYPE, PTTL, OBJECT ENCODING, MEMORY USAGE), where the general client's
// per-command objects cost as much CPU as everything else scan does. It
// speaks to the same server with the same settings as the go-redis client
// (address, TLS, user, password, database); everything else, SCAN included,
// goes through go-redis. Not safe for concurrent use: one per worker.
type respConn struct {
	opt  *redis.Options
	conn net.Conn
	r    *bufio.Reader
	w    []byte
}

// respError is an error reply from the server ("NOPERM ...", "ERR ...").
type respError string

func (e respError) Error() string { return string(e) }

func dialResp(ctx context.Context, opt *redis.Options) (*respConn, error) {
	network := opt.Network
	if network == "" {
		network = "tcp"
	}
	d := net.Dialer{Timeout: opt.DialTimeout, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, network, opt.Addr)
	if err != nil {
		return nil, err
	}
	if opt.TLSConfig != nil {
		tc := tls.Client(conn, opt.TLSConfig.Clone())
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	c := &respConn{opt: opt, conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	user, pass := opt.Username, opt.Password
	if opt.CredentialsProvider != nil {
		user, pass = opt.CredentialsProvider()
	}
	n := 0
	switch {
	case pass != "" && user != "":
		c.command("AUTH", user, pass)
		n++
	case pass != "":
		c.command("AUTH", pass)
		n++
	}
	if opt.DB != 0 {
		c.command("SELECT", strconv.Itoa(opt.DB))
		n++
	}
	if n > 0 {
		if err := c.flush(opt.DialTimeout + opt.ReadTimeout); err != nil {
			conn.Close()
			return nil, err
		}
		for i := 0; i < n; i++ {
			if _, _, _, err := c.reply(); err != nil {
				conn.Close()
				return nil, err
			}
		}
	}
	return c, nil
}

func (c *respConn) Close() error { return c.conn.Close() }

// command appends one command to the write buffer.
func (c *respConn) command(args ...string) {
	c.w = append(c.w, '*')
	c.w = strconv.AppendInt(c.w, int64(len(args)), 10)
	c.w = append(c.w, '\r', '\n')
	for _, a := range args {
		c.w = append(c.w, '$')
		c.w = strconv.AppendInt(c.w, int64(len(a)), 10)
		c.w = append(c.w, '\r', '\n')
		c.w = append(c.w, a...)
		c.w = append(c.w, '\r', '\n')
	}
}

// flush sends the buffered commands; replies must then be read within
// timeout (the deadline covers the whole batch).
func (c *respConn) flush(timeout time.Duration) error {
	if err := c.conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := c.conn.Write(c.w)
	c.w = c.w[:0]
	return err
}

// reply reads one reply: a simple or bulk string (s, valid until the next
// read), an integer (n), a null (null true) or an error reply (a respError).
// Arrays are not expected here and are an error.
func (c *respConn) reply() (s []byte, n int64, null bool, err error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return nil, 0, false, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, 0, false, fmt.Errorf("redis protocol: malformed line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return body, 0, false, nil
	case '-':
		return nil, 0, false, respError(body)
	case ':':
		n, err := strconv.ParseInt(string(body), 10, 64)
		return nil, n, false, err
	case '$':
		size, err := strconv.Atoi(string(body))
		if err != nil {
			return nil, 0, false, err
		}
		if size < 0 {
			return nil, 0, true, nil
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, 0, false, err
		}
		return buf[:size], 0, false, nil
	case '*':
		if string(body) == "-1" {
			return nil, 0, true, nil
		}
	}
	return nil, 0, false, fmt.Errorf("redis protocol: unexpected reply %q", line)
}

// intern returns a constant string for the common TYPE and OBJECT ENCODING
// replies, so that per-key facts do not allocate.
func intern(b []byte) string {
	switch string(b) {
	case "string":
		return "string"
	case "hash":
		return "hash"
	case "list":
		return "list"
	case "set":
		return "set"
	case "zset":
		return "zset"
	case "stream":
		return "stream"
	case "none":
		return "none"
	case "int":
		return "int"
	case "embstr":
		return "embstr"
	case "raw":
		return "raw"
	case "listpack":
		return "listpack"
	case "quicklist":
		return "quicklist"
	case "hashtable":
		return "hashtable"
	case "intset":
		return "intset"
	case "skiplist":
		return "skiplist"
	case "ziplist":
		return "ziplist"
	}
	return string(b)
}

// isNetErr reports whether err broke the connection (as opposed to an error
// reply): the batch can be retried on a new connection.
func isNetErr(err error) bool {
	if err == nil {
		return false
	}
	_, reply := err.(respError)
	return !reply
}
